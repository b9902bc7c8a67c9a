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
  std::int64_t published_ms = 0;  // a published row whose lease passed: when it was last published
};

// The rows `q` selects (id, run_id, step_index, lane, then `outbox.run_at` or
// `outbox_published.published_at`, as `table` says).
result<std::vector<row>> collect(store::statement& q, std::string_view table) {
  const bool published = table == "outbox_published";
  std::vector<row> out;
  for (;;) {
    auto more = q.step();
    if (!more) return std::move(more).err();
    if (!*more) return out;
    row r;
    r.id = q.int64(0);
    r.spec.outbox_id = r.id;
    r.spec.run_id = q.text(1);
    r.spec.step_index = static_cast<int>(q.int64(2));
    auto l = queue::parse_lane(q.text(3));
    if (!l) return make_error(errc::internal, fmt::format("{} row {}: unknown lane '{}'", table, r.id, q.text(3)));
    r.spec.lane = *l;
    if (published)
      r.published_ms = q.int64(4);
    else if (!q.is_null(4))
      r.spec.run_at_ms = q.int64(4);  // after a delay step
    out.push_back(std::move(r));
  }
}

// The oldest `limit` outbox rows, through `c` (the writer's or a reader's connection).
// With `due_by`, only rows due by then (Unix ms): for a queue that cannot hold a job until later.
result<std::vector<row>> read_rows(store::connection& c, std::size_t limit, std::optional<std::int64_t> due_by = {}) {
  auto q = c.prepare(due_by ? "SELECT id, run_id, step_index, lane, run_at FROM outbox WHERE run_at IS NULL OR run_at <= ? "
                              "ORDER BY id LIMIT ?"
                            : "SELECT id, run_id, step_index, lane, run_at FROM outbox ORDER BY id LIMIT ?");
  if (!q) return std::move(q).err();
  if (due_by) q->bind(1, *due_by);
  q->bind(due_by ? 2 : 1, static_cast<std::int64_t>(limit));
  return collect(*q, "outbox");
}

// Published rows whose step has no recorded attempt `republish_after` after their publishing,
// oldest lease first: their message was lost (retention, a result that did not open).
result<std::vector<row>> read_expired(store::connection& c, std::size_t limit, std::int64_t now) {
  auto q = c.prepare("SELECT id, run_id, step_index, lane, published_at FROM outbox_published WHERE republish_at <= ? "
                     "ORDER BY republish_at LIMIT ?");
  if (!q) return std::move(q).err();
  q->bind(1, now);
  q->bind(2, static_cast<std::int64_t>(limit));
  return collect(*q, "outbox_published");
}

// The queue holds the rows' messages: each waits in outbox_published until its step's attempt
// is recorded (outbox::settle), or is published again at now + lease. A row settled meanwhile
// (a fast worker) is not moved: INSERT ... SELECT finds nothing.
status mark_published(store::connection& c, const std::vector<row>& rows, std::int64_t now, std::int64_t lease_ms) {
  for (const auto& r : rows) {
    if (r.published_ms > 0) {
      auto st = c.run("UPDATE outbox_published SET published_at = ?, republish_at = ? WHERE id = ?", now, now + lease_ms, r.id);
      if (!st) return st;
      continue;
    }
    auto st = c.run(
        "INSERT INTO outbox_published (id, run_id, step_index, lane, created_at, published_at, republish_at) "
        "SELECT id, run_id, step_index, lane, created_at, ?, ? FROM outbox WHERE id = ?",
        now, now + lease_ms, r.id);
    if (!st) return st;
    st = c.run("DELETE FROM outbox WHERE id = ?", r.id);
    if (!st) return st;
  }
  return {};
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
      republished_(m.add_counter("zapd_outbox_rows_republished_total",
                                 "Published steps published again: no attempt was recorded within kafka.republish_after_ms")),
      depth_(m.add_gauge("zapd_outbox_depth", "Outbox rows due and not yet in the queue (read at scrape time)")),
      in_flight_(m.add_gauge("zapd_outbox_in_flight", "Published steps whose attempt is not recorded yet (Kafka fleet; read at scrape time)")),
      oldest_age_(m.add_gauge("zapd_outbox_oldest_age_seconds", "Age of the oldest due outbox row (0 when none; read at scrape time)")) {
  if (opts_.batch == 0) opts_.batch = 1;
  collector_id_ = m.add_collector([this] {
    auto b = db_.reads().with([](store::connection& c) { return measure(c, now_ms()); });
    if (!b) return;
    depth_.set(b->depth);
    oldest_age_.set(b->oldest_ms > 0 ? std::max<std::int64_t>(0, (now_ms() - b->oldest_ms) / 1000) : 0);
    if (opts_.republish_after.count() > 0)
      if (auto n = db_.reads().with([](store::connection& c) { return in_flight(c); })) in_flight_.set(*n);
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
      // A queue in the store that rings for its waiting jobs itself needs no second ring
      // (the claim it would wake finds them taken, or handed to a slot already).
      if (*n > 0 && !(in_store_ && in_store_->rings_ready())) jobs_ready_.ring();
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
  const bool leased = opts_.republish_after.count() > 0;
  std::vector<row> waiting;  // expired, but nothing newer of their lane was handled either
  auto rows = db_.reads().with([&](store::connection& c) -> result<std::vector<row>> {
    std::vector<row> out;
    if (leased) {  // lost messages first: they are the oldest steps
      auto expired = read_expired(c, opts_.batch, now_ms());
      if (!expired) return std::move(expired).err();
      const std::int64_t now = now_ms();
      for (auto& r : *expired) {
        if (queue_.handled_past(r.spec.lane, r.published_ms)) {
          out.push_back(std::move(r));
          continue;
        }
        // One probe per lane and lease: if the workers are up and idle (everything they had
        // was lost, or this process restarted and has heard no result yet), its result shows
        // them past the others, which then go too; if they are down, it only waits as well.
        auto& probe = last_probe_ms_[r.spec.lane == queue::lane::paid ? 1 : 0];
        if (now - probe >= opts_.republish_after.count()) {
          probe = now;
          out.push_back(std::move(r));
        } else {
          waiting.push_back(std::move(r));
        }
      }
    }
    if (out.size() < opts_.batch) {
      auto fresh = read_rows(c, opts_.batch - out.size(), due_by);
      if (!fresh) return std::move(fresh).err();
      for (auto& r : *fresh) out.push_back(std::move(r));
    }
    return out;
  });
  if (!rows) return std::move(rows).err();
  if (!waiting.empty()) {
    // Every worker down, or a backlog older than the lease: publishing them again would only
    // double what waits on the brokers. Another lease, from now.
    const std::int64_t until = now_ms() + opts_.republish_after.count();
    auto st = db_.writes().execute<bool>([&](store::connection& c) -> result<bool> {
      for (const auto& r : waiting)
        if (auto s = c.run("UPDATE outbox_published SET republish_at = ? WHERE id = ?", until, r.id); !s) return std::move(s).err();
      return true;
    });
    if (!st) return std::move(st).err();
    log::info("outbox.lease_extended", {{"rows", waiting.size()}, {"run", waiting.front().spec.run_id},
                                        {"reason", "no newer step of the lane handled since"}});
  }
  if (rows->empty()) return std::size_t{0};
  if (leased) {
    std::size_t again = 0;
    for (const auto& r : *rows) again += r.published_ms > 0 ? 1 : 0;
    if (again > 0) {
      const auto& first = *std::find_if(rows->begin(), rows->end(), [](const row& r) { return r.published_ms > 0; });
      log::warn("outbox.republished", {{"rows", again}, {"run", first.spec.run_id}, {"step", first.spec.step_index},
                                       {"published_ms_ago", now_ms() - first.published_ms}});
      republished_.inc(again);
    }
  }
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
  const std::int64_t lease_ms = opts_.republish_after.count();
  auto del = db_.writes().execute<std::size_t>([&rows, lease_ms](store::connection& c) -> result<std::size_t> {
    auto d = lease_ms > 0 ? mark_published(c, *rows, now_ms(), lease_ms) : delete_rows(c, *rows);
    if (!d) return std::move(d).err();
    return rows->size();
  });
  return del;
}

}  // namespace zapd::outbox
