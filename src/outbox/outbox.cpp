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

}  // namespace zapd::outbox
