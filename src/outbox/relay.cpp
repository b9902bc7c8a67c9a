#include "zapd/outbox/relay.hpp"

#include <algorithm>
#include <chrono>
#include <future>
#include <optional>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "zapd/core/log.hpp"
#include "zapd/outbox/outbox.hpp"
#include "zapd/store/database.hpp"

namespace zapd::outbox {
namespace {

std::int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

// The earliest run_at still ahead (Unix ms), 0 when none.
std::int64_t next_due(store::database& db) {
  auto due = db.reads().with([](store::connection& c) -> result<std::int64_t> {
    auto q = c.prepare("SELECT min(run_at) FROM outbox WHERE run_at > ?");
    if (!q) return std::move(q).err();
    q->bind(1, now_ms());
    auto more = q->step();
    if (!more) return std::move(more).err();
    return *more && !q->is_null(0) ? q->int64(0) : 0;
  });
  return due ? *due : 0;
}

struct row {
  std::int64_t id;
  queue::job_spec spec;
};

// The oldest `limit` outbox rows, through `c` (the writer's or a reader's connection).
// With `due_by`, only rows due by then (Unix ms): for a queue that cannot hold a job until later.
result<std::vector<row>> read_rows(store::connection& c, std::size_t limit, std::optional<std::int64_t> due_by = {}) {
  auto q = c.prepare(due_by ? "SELECT id, run_id, step_index, lane, run_at FROM outbox WHERE run_at IS NULL OR run_at <= ? "
                              "ORDER BY id LIMIT ?"
                            : "SELECT id, run_id, step_index, lane, run_at FROM outbox ORDER BY id LIMIT ?");
  if (!q) return std::move(q).err();
  if (due_by) q->bind(1, *due_by);
  q->bind(due_by ? 2 : 1, static_cast<std::int64_t>(limit));
  std::vector<row> out;
  for (;;) {
    auto more = q->step();
    if (!more) return std::move(more).err();
    if (!*more) return out;
    row r;
    r.id = q->int64(0);
    r.spec.run_id = q->text(1);
    r.spec.step_index = static_cast<int>(q->int64(2));
    auto l = queue::parse_lane(q->text(3));
    if (!l) return make_error(errc::internal, fmt::format("outbox row {}: unknown lane '{}'", r.id, q->text(3)));
    r.spec.lane = *l;
    if (!q->is_null(4)) r.spec.run_at_ms = q->int64(4);  // after a delay step
    out.push_back(std::move(r));
  }
}

status delete_rows(store::connection& c, const std::vector<row>& rows) {
  for (const auto& r : rows) {
    auto d = c.prepare("DELETE FROM outbox WHERE id = ?");
    if (!d) return std::move(d).err();
    auto st = d->bind_all(r.id).run();
    if (!st) return st;
  }
  return {};
}

std::vector<queue::job_spec> specs_of(const std::vector<row>& rows) {
  std::vector<queue::job_spec> out;
  out.reserve(rows.size());
  for (const auto& r : rows) out.push_back(r.spec);
  return out;
}

}  // namespace

relay::relay(store::database& db, queue::queue& q, metrics::registry& m, wakeup& outbox_ready, wakeup& jobs_ready, options o)
    : db_(db),
      queue_(q),
      in_store_(dynamic_cast<queue::store_publisher*>(&q)),
      metrics_(m),
      outbox_ready_(outbox_ready),
      jobs_ready_(jobs_ready),
      opts_(o),
      batches_(m.add_counter("zapd_outbox_batches_total", "Outbox batches handed to the queue")),
      rows_(m.add_counter("zapd_outbox_rows_published_total", "Outbox rows handed to the queue and deleted")),
      errors_(m.add_counter("zapd_outbox_errors_total", "Relay passes that failed (retried on the next poll)")),
      wakeups_(m.add_counter("zapd_outbox_wakeups_total", "Relay passes (notify or poll)")),
      depth_(m.add_gauge("zapd_outbox_depth", "Outbox rows due and not yet in the queue (read at scrape time)")),
      oldest_age_(m.add_gauge("zapd_outbox_oldest_age_seconds", "Age of the oldest due outbox row (0 when none; read at scrape time)")) {
  if (opts_.batch == 0) opts_.batch = 1;
  collector_id_ = m.add_collector([this] {
    auto b = db_.reads().with([](store::connection& c) { return measure(c, now_ms()); });
    if (!b) return;
    depth_.set(b->depth);
    oldest_age_.set(b->oldest_ms > 0 ? std::max<std::int64_t>(0, (now_ms() - b->oldest_ms) / 1000) : 0);
  });
  listening_ = outbox_ready_.listen([this] { notify(); });
}

relay::~relay() {
  outbox_ready_.forget(listening_);
  stop();
  metrics_.remove_collector(collector_id_);
}

void relay::start() {
  std::lock_guard lk(mu_);
  if (thread_.joinable() || stopping_) return;
  thread_ = std::thread([this] { run(); });
}

void relay::notify() noexcept {
  {
    std::lock_guard lk(mu_);
    woken_ = true;
  }
  cv_.notify_one();
}

void relay::stop() {
  {
    std::lock_guard lk(mu_);
    stopping_ = true;
    stop_flag_ = true;
  }
  cv_.notify_one();
  if (thread_.joinable()) thread_.join();
}

void relay::run() {
  log::info("outbox.relay_started", {{"batch", opts_.batch}, {"poll_ms", opts_.poll.count()},
                                     {"mode", in_store_ ? "in_store" : "publish"}});
  std::unique_lock lk(mu_);
  while (!stopping_) {
    woken_ = false;  // notifies from here on ask for another pass
    lk.unlock();
    wakeups_.inc();
    bool failed = false;
    while (!stop_flag_) {
      auto n = move_batch();
      if (!n) {
        errors_.inc();
        log::warn("outbox.relay_failed", {{"error", n.err().message}, {"code", errc_name(n.err().code)}});
        failed = true;
        break;
      }
      if (*n > 0) jobs_ready_.ring();
      if (*n < opts_.batch) break;  // drained
    }
    // A queue that cannot hold a job until later gets each row once it is due: wake then.
    auto wait = opts_.poll;
    if (!failed && !queue_.holds_delayed())
      if (const std::int64_t due = next_due(db_); due > 0)
        wait = std::min<std::chrono::milliseconds>(wait, std::chrono::milliseconds(std::max<std::int64_t>(1, due - now_ms())));
    lk.lock();
    // After a failure (writer overloaded, queue down) wait a full poll even if notified,
    // so a burst of notifies does not hammer a struggling dependency.
    if (failed)
      cv_.wait_for(lk, opts_.poll, [this] { return stopping_; });
    else
      cv_.wait_for(lk, wait, [this] { return stopping_ || woken_; });
  }
  log::info("outbox.relay_stopped");
}

result<std::size_t> relay::move_batch() {
  auto n = in_store_ ? move_batch_in_store() : move_batch_via_publish();
  if (n && *n > 0) {
    batches_.inc();
    rows_.inc(*n);
  }
  return n;
}

result<std::size_t> relay::move_batch_in_store() {
  return db_.writes().execute<std::size_t>([this](store::connection& c) -> result<std::size_t> {
    auto rows = read_rows(c, opts_.batch);
    if (!rows) return std::move(rows).err();
    if (rows->empty()) return std::size_t{0};
    // Jobs in and rows out in the same transaction: never both, never neither.
    auto st = in_store_->publish_in(c, specs_of(*rows));
    if (!st) return std::move(st).err();
    st = delete_rows(c, *rows);
    if (!st) return std::move(st).err();
    return rows->size();
  });
}

result<std::size_t> relay::move_batch_via_publish() {
  std::optional<std::int64_t> due_by;
  if (!queue_.holds_delayed()) due_by = now_ms();
  auto rows = db_.reads().with([&](store::connection& c) { return read_rows(c, opts_.batch, due_by); });
  if (!rows) return std::move(rows).err();
  if (rows->empty()) return std::size_t{0};
  auto acked = std::make_shared<std::promise<status>>();  // may be answered after a stop gave up waiting
  auto fut = acked->get_future();
  auto st = queue_.publish(specs_of(*rows), [acked](status s) { acked->set_value(std::move(s)); });
  if (!st) return std::move(st).err();
  // The queue may hold the batch for long (brokers down): a stop does not wait for it; the
  // rows stay in the outbox and are published again by the next start.
  while (fut.wait_for(std::chrono::milliseconds(100)) != std::future_status::ready)
    if (stop_flag_) return make_error(errc::unavailable, "stopping before the queue acknowledged the batch");
  st = fut.get();
  if (!st) return std::move(st).err();
  // The queue holds them now; a crash before this delete publishes them again.
  auto del = db_.writes().execute<std::size_t>([&rows](store::connection& c) -> result<std::size_t> {
    auto d = delete_rows(c, *rows);
    if (!d) return std::move(d).err();
    return rows->size();
  });
  return del;
}

}  // namespace zapd::outbox
