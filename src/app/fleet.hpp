#pragma once
// queue.backend = "kafka" (issue 15): what `serve` (the primary) and `zapd worker` build.

#include <memory>
#include <optional>
#include <string>

#include "zapd/actions/executor.hpp"
#include "zapd/config/config.hpp"
#include "zapd/core/result.hpp"
#include "zapd/core/wakeup.hpp"
#include "zapd/fleet/fleet.hpp"
#include "zapd/kafka/kafka.hpp"
#include "zapd/metrics/registry.hpp"
#include "zapd/secrets/secrets.hpp"
#include "zapd/worker/step.hpp"

namespace zapd::store {
class database;
}

namespace zapd::app {

/// `[kafka]` as the kafka module takes it: `invalid_argument` naming a malformed
/// kafka.properties entry or an unreadable kafka.properties_file.
result<kafka::settings> kafka_settings(const config::settings& s);

/// The fallible part, done before anything runs: the settings, the fleet key (created 0600 by
/// the primary when missing; a worker must be given the primary's), the topics (created when
/// kafka.create_topics is on), the producer.
struct fleet_prepared {
  kafka::settings settings;
  secrets::box key;
  std::unique_ptr<fleet::sealer> seal;
  std::unique_ptr<kafka::producer> producer;
};
result<std::unique_ptr<fleet_prepared>> prepare_fleet(const config::settings& s, bool primary, metrics::registry& m);

/// The fleet's parts in the primary: the relay's queue (renders, seals and produces due
/// steps), the result recorder, and (worker.enabled) a worker of the fleet.
struct fleet_primary {
  fleet_primary(fleet_prepared& f, store::database& db, const secrets::box& user_secrets, const actions::executors& ex,
                metrics::registry& m, wakeup& outbox_ready, const config::settings& s);
  worker::preparer prep;
  fleet::lane_progress progress;
  fleet::step_queue steps;
  fleet::recorder recorder;
  fleet::node node;
};


}  // namespace zapd::app
