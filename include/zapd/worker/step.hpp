#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "zapd/actions/executor.hpp"
#include "zapd/queue/job.hpp"
#include "zapd/runs/attempt.hpp"
#include "zapd/worker/retry.hpp"

namespace zapd::secrets {
class box;
}
namespace zapd::store {
class database;
}

namespace zapd::worker {

class version_cache;

/// What recording an attempt needs besides the executor's result: taken when the step was
/// rendered, kept by the embedded pool in memory and carried (sealed) through Kafka.
struct step_meta {
  std::string action_id;
  std::size_t steps = 0;      // steps in the run's zap version
  retry_policy retry;         // the pool's, with the zap's override applied
  nlohmann::json input;       // the rendered config, secrets masked (null when it never rendered)
  nlohmann::json warnings = nlohmann::json::array();
};

/// One step of one run made ready to execute: the half of an attempt that reads the store.
struct prepared_step {
  enum class outcome {
    execute,  // run `request` with the action's executor
    skip,     // nothing to do (the run is gone or final, the step not in its version): settle the job
    fail,     // record `failure` without running anything (missing secret, unknown action, unreadable run)
  };
  outcome what = outcome::execute;
  std::string skip_reason;
  actions::step_result failure;
  step_meta meta;
  std::vector<std::string> secret_values;  // the zap's revealed secrets: mask them in what comes back
  actions::step_request request;           // config rendered with secrets in clear: never record it
};

/// Renders steps: reads the run and the earlier steps' outputs (`runs::load_for_step`), the
/// zap version (cached: versions never change), reveals the secrets the version references
/// and renders the step's config with its executor's escaping. On a reader connection; thread-safe.
/// The embedded pool calls it per claimed job; with Kafka the primary calls it when it
/// publishes the step (a worker of the fleet has no store).
class preparer {
 public:
  preparer(store::database& db, const secrets::box& box, const actions::executors& executors, retry_policy base);
  ~preparer();
  preparer(const preparer&) = delete;
  preparer& operator=(const preparer&) = delete;

  /// Attempt `attempt` (1 on the first) of step `step_index` of run `run_id`.
  prepared_step prepare(const std::string& run_id, int step_index, int attempt) const;

 private:
  store::database& db_;
  const secrets::box& box_;
  const actions::executors& executors_;
  retry_policy base_;
  std::unique_ptr<version_cache> versions_;
};

/// Sets `config.timeoutMs` to the step's own timeout (30 s when absent or out of range), at
/// most `cap_ms`: an attempt must end in time to record its result.
void cap_timeout(nlohmann::json& config, std::int64_t cap_ms);

/// The attempt's record from its (already masked) result: whether to give up (failed, or a
/// retry past the policy's last attempt, its error then saying so) and when a retry is due
/// (`draw` in [0, 1) places the jitter). The embedded pool and the Kafka result recorder both
/// decide through this.
runs::attempt_record decide(const step_meta& m, const queue::job& j, actions::step_result r, std::int64_t started_ms,
                            std::int64_t now_ms, double draw);

}  // namespace zapd::worker
