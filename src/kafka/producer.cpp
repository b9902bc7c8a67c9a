#include <array>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <unordered_set>

#include <fmt/format.h>

#include "client.hpp"
#include "zapd/core/log.hpp"
#include "zapd/kafka/kafka.hpp"

namespace zapd::kafka {

namespace {
constexpr auto close_flush = std::chrono::seconds(5);
constexpr auto purge_wait = std::chrono::seconds(2);
constexpr int poll_ms = 100;
}  // namespace

/// Every `done` not called yet is in `pending` (its heap copy is the message opaque). Whoever
/// erases it from `pending` calls it: the delivery report, or the destructor for what
/// librdkafka never reported. That makes each call exactly once, and nothing leaks.
struct producer::impl : detail::link_state {
  impl(std::string n, metrics::registry& reg) : link_state(std::move(n)), m(reg) {}

  metrics::registry& m;
  std::uint64_t collector = 0;
  detail::handle_ptr rk;
  std::thread poller;
  std::atomic<bool> stop{false};

  std::mutex mu;
  std::condition_variable idle;                // notified when `unfinished` drops
  std::unordered_set<delivered_fn*> pending;   // guarded by mu
  std::size_t unfinished = 0;                  // pending + callbacks running; guarded by mu

  /// Takes `fn` out of `pending` (false when it was not there) ...
  bool claim(delivered_fn* fn) {
    std::lock_guard lk(mu);
    return pending.erase(fn) == 1;
  }
  /// ... and after its call, counts it finished.
  void finished_one() {
    {
      std::lock_guard lk(mu);
      --unfinished;
    }
    idle.notify_all();
  }
  void call(delivered_fn* raw, status st) {
    std::unique_ptr<delivered_fn> fn(raw);
    try {
      (*fn)(std::move(st));
    } catch (const std::exception& e) {
      log::error("kafka.delivered_callback_threw", {{"client", name}, {"error", e.what()}});
    } catch (...) {
      log::error("kafka.delivered_callback_threw", {{"client", name}});
    }
    fn.reset();
    finished_one();
  }
  bool wait_idle(std::chrono::milliseconds wait) {
    std::unique_lock lk(mu);
    return idle.wait_for(lk, wait, [this] { return unfinished == 0; });
  }

  static void on_delivery(rd_kafka_t*, const rd_kafka_message_t* msg, void* opaque) {
    auto* self = static_cast<impl*>(static_cast<detail::link_state*>(opaque));
    auto* fn = static_cast<delivered_fn*>(msg->_private);
    if (!fn || !self->claim(fn)) return;
    if (msg->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
      if (!self->fatal) self->connected = true;
      self->call(fn, {});
      return;
    }
    const char* topic = msg->rkt ? rd_kafka_topic_name(msg->rkt) : "?";
    log::warn("kafka.delivery_failed", {{"client", self->name}, {"topic", topic}, {"code", rd_kafka_err2name(msg->err)}});
    self->call(fn, make_error(errc::unavailable, fmt::format("kafka delivery to {} failed: {}", topic,
                                                           rd_kafka_err2str(msg->err))));
  }
};

result<std::unique_ptr<producer>> producer::open(const settings& s, std::string name, metrics::registry& m) {
  auto conf = detail::make_conf(s, {
                                       {"enable.idempotence", "true"},
                                       {"acks", "all"},
                                       {"linger.ms", "1"},
                                       {"statistics.interval.ms", "1000"},
                                   });
  if (!conf) return std::move(conf).err();
  auto p = std::make_unique<impl>(std::move(name), m);
  detail::install_callbacks(conf->get(), p.get());
  rd_kafka_conf_set_dr_msg_cb(conf->get(), &impl::on_delivery);
  auto rk = detail::make_handle(RD_KAFKA_PRODUCER, std::move(*conf));
  if (!rk) return std::move(rk).err();
  p->rk = std::move(*rk);
  p->collector = detail::add_connected_gauge(m, *p);
  p->poller = std::thread([self = p.get()] {
    while (!self->stop.load(std::memory_order_acquire)) rd_kafka_poll(self->rk.get(), poll_ms);
  });
  return std::unique_ptr<producer>(new producer(std::move(p)));
}

producer::producer(std::unique_ptr<impl> p) : impl_(std::move(p)) {}

producer::~producer() {
  auto& p = *impl_;
  p.m.remove_collector(p.collector);
  flush(close_flush);
  if (!p.wait_idle(std::chrono::milliseconds(0))) {
    // Give up on the rest: purged messages get their reports (an error) on the poll thread.
    rd_kafka_purge(p.rk.get(), RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
    p.wait_idle(purge_wait);
  }
  p.stop.store(true, std::memory_order_release);
  p.poller.join();
  p.rk.reset();
  // Whatever librdkafka never reported: the error here, on this thread.
  std::unordered_set<delivered_fn*> left;
  {
    std::lock_guard lk(p.mu);
    left.swap(p.pending);
  }
  if (!left.empty()) log::warn("kafka.undelivered", {{"client", p.name}, {"messages", left.size()}});
  for (auto* fn : left)
    p.call(fn, make_error(errc::unavailable, "kafka producer closed before the message was delivered"));
}

status producer::produce(const std::string& topic, std::string_view key, std::string value, delivered_fn done) {
  auto& p = *impl_;
  if (p.fatal) return make_error(errc::unavailable, fmt::format("kafka producer {} hit a fatal error", p.name));
  auto fn = std::make_unique<delivered_fn>(std::move(done));
  auto* raw = fn.get();
  {
    std::lock_guard lk(p.mu);
    p.pending.insert(raw);
    ++p.unfinished;
  }
  (void)fn.release();  // owned through `pending` now
  // rd_kafka_produceva, not the variadic rd_kafka_producev: librdkafka is loaded at run time
  // (rdkafka_lazy.cpp), and a variadic call cannot be forwarded.
  std::array<rd_kafka_vu_t, 5> vu{};
  vu[0].vtype = RD_KAFKA_VTYPE_TOPIC;
  vu[0].u.cstr = topic.c_str();
  vu[1].vtype = RD_KAFKA_VTYPE_KEY;
  vu[1].u.mem.ptr = key.empty() ? nullptr : const_cast<char*>(key.data());  // copied (F_COPY), never written
  vu[1].u.mem.size = key.size();
  vu[2].vtype = RD_KAFKA_VTYPE_VALUE;
  vu[2].u.mem.ptr = value.data();
  vu[2].u.mem.size = value.size();
  vu[3].vtype = RD_KAFKA_VTYPE_MSGFLAGS;
  vu[3].u.i = RD_KAFKA_MSG_F_COPY;
  vu[4].vtype = RD_KAFKA_VTYPE_OPAQUE;
  vu[4].u.ptr = raw;
  auto err = RD_KAFKA_RESP_ERR_NO_ERROR;
  if (rd_kafka_error_t* e = rd_kafka_produceva(p.rk.get(), vu.data(), vu.size())) {
    err = rd_kafka_error_code(e);
    rd_kafka_error_destroy(e);
  }
  if (err == RD_KAFKA_RESP_ERR_NO_ERROR) return {};
  // Not queued: no report will come, and `done` must not be called.
  {
    std::lock_guard lk(p.mu);
    p.pending.erase(raw);
    --p.unfinished;
  }
  delete raw;  // NOLINT: the one owner, taken back from `pending`
  p.idle.notify_all();
  switch (err) {
    case RD_KAFKA_RESP_ERR__QUEUE_FULL:
      return make_error(errc::overloaded, "kafka producer queue is full");
    case RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE:
      return make_error(errc::payload_too_large, fmt::format("kafka message for {} is too large", topic));
    case RD_KAFKA_RESP_ERR__FATAL:
      p.fatal = true;
      return make_error(errc::unavailable, fmt::format("kafka producer {} hit a fatal error", p.name));
    default:
      return make_error(errc::unavailable, fmt::format("kafka produce to {} failed: {}", topic, rd_kafka_err2str(err)));
  }
}

void producer::flush(std::chrono::milliseconds wait) { impl_->wait_idle(wait); }

bool producer::connected() const { return impl_->connected && !impl_->fatal; }

}  // namespace zapd::kafka
