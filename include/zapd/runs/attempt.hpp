#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "zapd/core/result.hpp"
#include "zapd/queue/job.hpp"
#include "zapd/queue/queue.hpp"

namespace zapd::store {
class connection;
}

namespace zapd::runs {

/// What executing a step needs to know about its run (read before the step is rendered).
struct step_context {
  std::string status;  // the run's: queued, running, or final
  std::string user_id;
  std::string zap_id;
  std::int64_t zap_version = 0;
  nlohmann::json trigger;                            // the trigger payload (null when unreadable)
  nlohmann::json outputs = nlohmann::json::object();  // "N" -> output of succeeded step N < step_index
};

/// The run's context for running its step `step_index`, or nullopt when the run is gone
/// (pruned). Only the steps before it are in `outputs`: a step's input renders the same on a
/// duplicate delivery as on the first, whatever ran since. On a reader or the writer.
result<std::optional<step_context>> load_for_step(store::connection& c, const std::string& run_id, int step_index);

/// Where one step of a run stands: its row's status and attempts so far (nullopt: no attempt
/// recorded yet). A queue outside the store fences results with it: a result for an attempt
/// not past `attempts`, or for a step already final, is a duplicate.
struct step_progress {
  std::string status;  // running (a retry is due), succeeded, failed, filtered, cancelled
  int attempts = 0;
};
result<std::optional<step_progress>> progress_of(store::connection& c, const std::string& run_id, int step_index);

/// How an attempt ended, as the worker decided it (a retry past the policy's last attempt is
/// already `failed`, with its error saying so).
enum class attempt_verdict { succeeded, retry, failed, filtered };

/// One finished attempt of a step. Everything here is recorded as given: the worker masked
/// secret values in input, output, error and warnings before.
struct attempt_record {
  queue::job job;  // the claim it ran under
  std::string action_id;
  std::size_t steps = 0;  // steps in the run's zap version
  attempt_verdict verdict = attempt_verdict::failed;
  std::int64_t retry_at_ms = 0;  // verdict retry: when the job is claimable again (Unix ms)
  std::int64_t resume_at_ms = 0;  // succeeded (a delay step): the next step is due then, the run `waiting`
  // Stored as JSON text, serialized by whoever builds the record (worker::decide, on the
  // worker's or the recorder's thread), so the single writer thread only binds them.
  std::string input = "null";  // the rendered config (null when it never rendered)
  std::string output = "null";
  std::string warnings = "[]";
  std::string error;  // empty: none
  std::int64_t started_ms = 0;
  std::int64_t now_ms = 0;
  std::int64_t duration_ms = 0;
  std::string worker;  // which worker ran it (host:pid); empty: not known
};

struct attempt_outcome {
  queue::store_publisher::settlement settlement = queue::store_publisher::settlement::acked;  // the job's fate
  bool next_step_enqueued = false;  // an outbox row was written: wake the relay after the commit
};

/// The run/step state machine, in the caller's write transaction:
/// - the step's row is written (attempts, input, output, error, warnings, times; a step to
///   be retried stays `running` with its next attempt's time);
/// - succeeded: the next step goes to the outbox, or the last one ends the run `succeeded`;
///   with `resume_at_ms` (a delay) the next step is due then and the run is `waiting` with
///   `resume_at` until a later step records; filtered (a filter's conditions did not hold):
///   the step is `filtered` and the run ends `filtered`, nothing after it runs;
///   retry: the run is `running`; failed: the run ends `failed` with "step N: error";
///   a run cancelled meanwhile keeps `cancelled` and nothing after the step runs; the step
///   is recorded `succeeded` when its action did succeed, else `cancelled`; a run pruned
///   meanwhile gets no step row (nothing would ever prune it), and its job is acked;
/// - the job is settled through `jobs` (ack, retry at `retry_at_ms`, or dead) in the same
///   transaction when the queue lives in the store: `lease_lost` then means another worker
///   holds the step now, and the caller must let the transaction undo everything. With a
///   queue outside the store (`jobs` null) the caller settles the job after the commit,
///   as `settlement` says.
result<attempt_outcome> record_attempt(store::connection& c, const attempt_record& a, queue::store_publisher* jobs);

}  // namespace zapd::runs
