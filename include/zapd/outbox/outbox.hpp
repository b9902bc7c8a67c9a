#pragma once

#include <cstdint>
#include <string>

#include "zapd/core/result.hpp"
#include "zapd/queue/job.hpp"

namespace zapd::store {
class connection;
}
namespace zapd::queue {
class store_publisher;
}

namespace zapd::outbox {

/// The outbox table's writes for the other modules (the module owns `outbox`; the relay
/// reads and deletes rows, these add and drop them). Each runs in the caller's write
/// transaction, so a step is enqueued exactly when the change that made it due commits.

/// Step `step_index` of `run_id` is due. With a queue in the store that takes jobs directly
/// (`jobs && jobs->direct()`), its job is written here, in the caller's transaction; otherwise
/// an outbox row, which the relay hands to the queue after the commit. The caller rings the
/// relay's bell for a row once its transaction commits (`step_due` in app); a job written
/// here is handed to a free worker slot or rung for by the queue itself (`rings_ready`).
/// `run_at_ms` > 0: the job is not claimable before then (the step after a delay).
status enqueue(store::connection& c, queue::store_publisher* jobs, const std::string& run_id, int step_index,
               queue::lane lane, std::int64_t now_ms, std::int64_t run_at_ms = 0);

/// What waits in the outbox for the queue: rows due by `now_ms` (a delay's or a retry's row
/// waiting for its time is not backlog), and the creation time of the oldest (Unix ms, 0 when none).
struct backlog {
  std::int64_t depth = 0;
  std::int64_t oldest_ms = 0;
};
result<backlog> measure(store::connection& c, std::int64_t now_ms);

/// Drops the run's steps not handed to the queue yet (a cancelled or pruned run). A step
/// published and not settled stays in `outbox_published`: its result (or its republishing)
/// finds the run final and settles it.
status drop_run(store::connection& c, const std::string& run_id);

/// With a queue that reports each step's outcome later (the Kafka fleet; relay option
/// `republish_after`), a published row waits in `outbox_published` until its step's attempt
/// is recorded, and is published again if that takes longer than the lease.

/// Outbox row `id`'s step has its attempt recorded, or needs none (its step or run is final):
/// the row is done, wherever it is (outbox or outbox_published). 0 does nothing.
status settle(store::connection& c, std::int64_t id);
/// The published rows of the step, for an attempt recorded from a result that does not name
/// its row (a worker from before `outboxId`, during a rolling upgrade). Scans the table: rare.
status settle_step(store::connection& c, const std::string& run_id, int step_index);
/// Whether outbox row `id` still waits for its step: in the outbox, or published and not settled.
result<bool> pending(store::connection& c, std::int64_t id);
/// Published rows waiting for their step's result.
result<std::int64_t> in_flight(store::connection& c);

}  // namespace zapd::outbox
