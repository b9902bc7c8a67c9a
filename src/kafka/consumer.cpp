#include <algorithm>
#include <mutex>

#include <fmt/format.h>

#include "client.hpp"
#include "zapd/core/log.hpp"
#include "zapd/kafka/kafka.hpp"
#include "zapd/kafka/offset_tracker.hpp"

namespace zapd::kafka {

namespace {

struct list_deleter {
  void operator()(rd_kafka_topic_partition_list_t* l) const noexcept { rd_kafka_topic_partition_list_destroy(l); }
};
using list_ptr = std::unique_ptr<rd_kafka_topic_partition_list_t, list_deleter>;

struct message_deleter {
  void operator()(rd_kafka_message_t* m) const noexcept { rd_kafka_message_destroy(m); }
};

std::string describe(const rd_kafka_topic_partition_list_t* parts) {
  std::string out;
  for (int i = 0; parts && i < parts->cnt; ++i) {
    if (!out.empty()) out += ',';
    out += fmt::format("{}[{}]", parts->elems[i].topic, parts->elems[i].partition);
  }
  return out;
}

// How long close() serves the group leave and final commit before giving up on them.
constexpr std::chrono::milliseconds close_wait{12'000};

}  // namespace

/// `rk` is used by `poll`/`close` on the polling thread and by `done` on any thread under
/// `mu` after checking `closed`, so `close` can destroy it once no `done` is inside.
struct consumer::impl : detail::link_state {
  impl(std::string n, metrics::registry& reg) : link_state(std::move(n)), m(reg) {}

  metrics::registry& m;
  std::uint64_t collector = 0;
  rd_kafka_t* rk = nullptr;  // owned; destroyed by close()
  std::atomic<bool> closing{false};

  std::mutex mu;
  bool closed = false;      // guarded by mu
  offset_tracker tracker;   // guarded by mu

  // Runs inside rd_kafka_consumer_poll / rd_kafka_consumer_close, on the polling thread.
  static void on_rebalance(rd_kafka_t* rk, rd_kafka_resp_err_t err, rd_kafka_topic_partition_list_t* parts,
                           void* opaque) {
    auto* self = static_cast<impl*>(static_cast<detail::link_state*>(opaque));
    bool cooperative = std::string_view(rd_kafka_rebalance_protocol(rk)) == "COOPERATIVE";
    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
      log::info("kafka.assigned", {{"client", self->name}, {"partitions", describe(parts)}});
      if (cooperative) {
        if (auto* e = rd_kafka_incremental_assign(rk, parts)) {
          log::error("kafka.assign_failed", {{"client", self->name}, {"reason", rd_kafka_error_string(e)}});
          rd_kafka_error_destroy(e);
        }
      } else {
        rd_kafka_assign(rk, parts);
      }
      return;
    }
    if (err != RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS)
      log::error("kafka.rebalance_error", {{"client", self->name}, {"code", rd_kafka_err2name(err)}});
    {
      // Their in-flight messages belong to the next owner now (storing for them would fail).
      std::lock_guard lk(self->mu);
      for (int i = 0; i < parts->cnt; ++i) self->tracker.drop(parts->elems[i].topic, parts->elems[i].partition);
    }
    log::info("kafka.revoked", {{"client", self->name},
                                {"partitions", describe(parts)},
                                {"lost", rd_kafka_assignment_lost(rk) ? "true" : "false"}});
    // Unassigning commits the offsets stored for them (enable.auto.commit).
    if (cooperative) {
      if (auto* e = rd_kafka_incremental_unassign(rk, parts)) {
        log::error("kafka.unassign_failed", {{"client", self->name}, {"reason", rd_kafka_error_string(e)}});
        rd_kafka_error_destroy(e);
      }
    } else {
      rd_kafka_assign(rk, nullptr);
    }
  }
};

result<std::unique_ptr<consumer>> consumer::open(const settings& s, std::string group, std::vector<std::string> topics,
                                                 std::string name, metrics::registry& m) {
  if (group.empty()) group = s.group;
  if (topics.empty()) return make_error(errc::invalid_argument, "kafka consumer needs at least one topic");
  auto conf = detail::make_conf(s, {
                                       {"group.id", group},
                                       {"partition.assignment.strategy", "range,roundrobin"},
                                       {"enable.auto.commit", "true"},
                                       {"auto.commit.interval.ms", "1000"},
                                       {"enable.auto.offset.store", "false"},
                                       {"auto.offset.reset", "earliest"},
                                       {"session.timeout.ms", "6000"},
                                       {"heartbeat.interval.ms", "1000"},
                                       {"statistics.interval.ms", "1000"},
                                       // A request the brokers do not answer (a group leave or commit
                                       // at close) is given up after 10 s, not the default 60 s:
                                       // rd_kafka_destroy waits for it, bounding how long a stop takes.
                                       {"socket.timeout.ms", "10000"},
                                   });
  if (!conf) return std::move(conf).err();
  auto c = std::make_unique<impl>(std::move(name), m);
  detail::install_callbacks(conf->get(), c.get());
  rd_kafka_conf_set_rebalance_cb(conf->get(), &impl::on_rebalance);
  auto rk = detail::make_handle(RD_KAFKA_CONSUMER, std::move(*conf));
  if (!rk) return std::move(rk).err();
  // Every event (rebalances, errors, statistics) is served by rd_kafka_consumer_poll.
  rd_kafka_poll_set_consumer(rk->get());

  list_ptr subs(rd_kafka_topic_partition_list_new(static_cast<int>(topics.size())));
  for (const auto& t : topics) rd_kafka_topic_partition_list_add(subs.get(), t.c_str(), RD_KAFKA_PARTITION_UA);
  if (auto err = rd_kafka_subscribe(rk->get(), subs.get()); err != RD_KAFKA_RESP_ERR_NO_ERROR)
    return make_error(errc::invalid_argument, fmt::format("kafka subscribe failed: {}", rd_kafka_err2str(err)));

  c->rk = rk->release();
  c->collector = detail::add_connected_gauge(m, *c);
  return std::unique_ptr<consumer>(new consumer(std::move(c)));
}

consumer::consumer(std::unique_ptr<impl> p) : impl_(std::move(p)) {}

consumer::~consumer() {
  close();
  impl_->m.remove_collector(impl_->collector);
}

std::optional<consumer::message> consumer::poll(std::chrono::milliseconds wait) {
  auto& c = *impl_;
  if (c.closing) return std::nullopt;
  auto deadline = std::chrono::steady_clock::now() + wait;
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    std::unique_ptr<rd_kafka_message_t, message_deleter> msg(
        rd_kafka_consumer_poll(c.rk, static_cast<int>(std::max<std::int64_t>(0, left.count()))));
    if (!msg) return std::nullopt;
    if (msg->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
      message out;
      out.topic = rd_kafka_topic_name(msg->rkt);
      out.partition = msg->partition;
      out.offset = msg->offset;
      if (msg->key) out.key.assign(static_cast<const char*>(msg->key), msg->key_len);
      if (msg->payload) out.value.assign(static_cast<const char*>(msg->payload), msg->len);
      {
        std::lock_guard lk(c.mu);
        c.tracker.started(out.topic, out.partition, out.offset);
      }
      return out;
    }
    if (msg->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
      log::warn("kafka.consume_error", {{"client", c.name},
                                        {"topic", msg->rkt ? rd_kafka_topic_name(msg->rkt) : ""},
                                        {"partition", msg->partition},
                                        {"code", rd_kafka_err2name(msg->err)},
                                        {"reason", rd_kafka_message_errstr(msg.get())}});
    if (std::chrono::steady_clock::now() >= deadline) return std::nullopt;
  }
}

void consumer::done(const message& m) {
  auto& c = *impl_;
  std::lock_guard lk(c.mu);
  if (c.closed) return;
  auto next = c.tracker.finished(m.topic, m.partition, m.offset);
  if (!next) return;
  list_ptr list(rd_kafka_topic_partition_list_new(1));
  rd_kafka_topic_partition_list_add(list.get(), m.topic.c_str(), m.partition)->offset = *next;
  auto err = rd_kafka_offsets_store(c.rk, list.get());
  if (err == RD_KAFKA_RESP_ERR_NO_ERROR) err = list->elems[0].err;
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR)
    // Typically a partition revoked meanwhile: its next owner redelivers from the commit.
    log::debug("kafka.store_failed", {{"client", c.name},
                                      {"topic", m.topic},
                                      {"partition", m.partition},
                                      {"offset", *next},
                                      {"code", rd_kafka_err2name(err)}});
}

void consumer::close() {
  auto& c = *impl_;
  if (c.closing.exchange(true)) return;
  // Leaves the group; the final commit holds every offset `done` stored. Bounded: a group
  // coordinator that does not answer (a membership the brokers already expired, brokers
  // gone) must not hang a stopping process, so the close runs in the background and is
  // served here until it is over or `close_wait` passed; uncommitted offsets are then
  // redelivered to the next owner (at-least-once, as after a crash).
  bool closed = false;
  if (rd_kafka_queue_t* q = rd_kafka_queue_new(c.rk)) {
    if (rd_kafka_error_t* e = rd_kafka_consumer_close_queue(c.rk, q)) {
      log::warn("kafka.close_failed", {{"client", c.name}, {"reason", rd_kafka_error_string(e)}, {"then", "closing in the foreground"}});
      rd_kafka_error_destroy(e);
      rd_kafka_consumer_close(c.rk);  // the unbounded close, rather than no final commit at all
      closed = true;
    } else {
      const auto deadline = std::chrono::steady_clock::now() + close_wait;
      while (!(closed = rd_kafka_consumer_closed(c.rk)) && std::chrono::steady_clock::now() < deadline) {
        // As events (rd_kafka_queue_poll_callback asserts on the close's own reply op): the
        // revoke goes through the rebalance callback, everything else is dropped.
        rd_kafka_event_t* ev = rd_kafka_queue_poll(q, 100);
        if (!ev) continue;
        if (rd_kafka_event_type(ev) == RD_KAFKA_EVENT_REBALANCE)
          impl::on_rebalance(c.rk, rd_kafka_event_error(ev), rd_kafka_event_topic_partition_list(ev),
                             static_cast<detail::link_state*>(&c));
        rd_kafka_event_destroy(ev);
      }
      if (!closed)
        log::warn("kafka.close_timeout", {{"client", c.name}, {"waited_ms", close_wait.count()},
                                          {"note", "left without the final commit; unfinished offsets are redelivered"}});
    }
    rd_kafka_queue_destroy(q);
  }
  {
    std::lock_guard lk(c.mu);
    c.closed = true;
    c.tracker.clear();
  }
  rd_kafka_destroy_flags(c.rk, closed ? 0 : RD_KAFKA_DESTROY_F_NO_CONSUMER_CLOSE);
  c.rk = nullptr;
  c.connected = false;
}

}  // namespace zapd::kafka
