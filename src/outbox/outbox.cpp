#include "zapd/outbox/outbox.hpp"

#include "zapd/queue/queue.hpp"
#include "zapd/store/connection.hpp"

namespace zapd::outbox {

status enqueue(store::connection& c, queue::store_publisher* jobs, const std::string& run_id, int step_index,
               queue::lane lane, std::int64_t now_ms, std::int64_t run_at_ms) {
  if (jobs && jobs->direct()) return jobs->publish_in(c, {queue::job_spec{run_id, step_index, lane, run_at_ms}});
  if (run_at_ms > now_ms)
    return c.run("INSERT INTO outbox (run_id, step_index, lane, created_at, run_at) VALUES (?, ?, ?, ?, ?)", run_id,
                 step_index, queue::lane_name(lane), now_ms, run_at_ms);
  return c.run("INSERT INTO outbox (run_id, step_index, lane, created_at) VALUES (?, ?, ?, ?)", run_id, step_index,
               queue::lane_name(lane), now_ms);
}

result<backlog> measure(store::connection& c, std::int64_t now_ms) {
  auto q = c.prepare("SELECT count(*), min(created_at) FROM outbox WHERE run_at IS NULL OR run_at <= ?");
  if (!q) return std::move(q).err();
  q->bind(1, now_ms);
  auto row = q->step();
  if (!row) return std::move(row).err();
  backlog b;
  if (*row) {
    b.depth = q->int64(0);
    b.oldest_ms = q->is_null(1) ? 0 : q->int64(1);
  }
  return b;
}

status drop_run(store::connection& c, const std::string& run_id) {
  return c.run("DELETE FROM outbox WHERE run_id = ?", run_id);
}

status settle(store::connection& c, std::int64_t id) {
  if (id <= 0) return {};
  // Both: the recorder may record a step before the relay has moved its row (a fast worker).
  if (auto st = c.run("DELETE FROM outbox_published WHERE id = ?", id); !st) return st;
  return c.run("DELETE FROM outbox WHERE id = ?", id);
}

status settle_step(store::connection& c, const std::string& run_id, int step_index) {
  return c.run("DELETE FROM outbox_published WHERE run_id = ? AND step_index = ?", run_id, step_index);
}

namespace {
result<std::int64_t> scalar(store::connection& c, const char* sql, std::int64_t arg) {
  auto q = c.prepare(sql);
  if (!q) return std::move(q).err();
  if (arg >= 0) q->bind(1, arg);
  auto row = q->step();
  if (!row) return std::move(row).err();
  return *row ? q->int64(0) : 0;
}
}  // namespace

result<bool> pending(store::connection& c, std::int64_t id) {
  auto n = scalar(c, "SELECT (SELECT count(*) FROM outbox WHERE id = ?1) + (SELECT count(*) FROM outbox_published WHERE id = ?1)", id);
  if (!n) return std::move(n).err();
  return *n > 0;
}

result<std::int64_t> in_flight(store::connection& c) { return scalar(c, "SELECT count(*) FROM outbox_published", -1); }

}  // namespace zapd::outbox
