#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "zapd/actions/executor.hpp"
#include "zapd/core/result.hpp"
#include "zapd/queue/job.hpp"
#include "zapd/worker/step.hpp"

namespace zapd::secrets {
class box;
}

namespace zapd::fleet {

/// A step for a worker of the fleet: everything it needs to execute (it has no store).
/// Carries secrets in clear: only ever on the wire sealed (`sealer`).
struct step_message {
  std::string run_id;
  int step_index = 1;
  int attempt = 1;
  queue::lane lane = queue::lane::free;
  /// Set when the primary already knows the outcome (a missing secret, an unknown action):
  /// the worker answers it without running anything.
  std::optional<actions::step_result> precomputed;
  std::string action_id;
  actions::step_request request;          // config rendered, secrets in clear
  std::vector<std::string> secret_values;  // masked in everything the worker sends back
  nlohmann::json meta;                    // worker::step_meta, echoed back in the result
  std::int64_t published_ms = 0;
  std::int64_t outbox_id = 0;  // the primary's outbox row, echoed back: settled when recorded
};

/// A step's outcome, masked by the worker, for the primary to record.
struct result_message {
  std::string run_id;
  int step_index = 1;
  int attempt = 1;
  queue::lane lane = queue::lane::free;
  actions::step_result result;
  std::int64_t started_ms = 0;
  std::string worker;  // which worker ran it: host:pid
  nlohmann::json meta;
  std::int64_t outbox_id = 0;     // the step message's
  std::int64_t published_ms = 0;  // the step message's: how far the workers have got
};

std::string encode(const step_message& m);
std::string encode(const result_message& m);
/// `invalid_argument` naming the field when the text is not such a message.
result<step_message> decode_step(std::string_view text);
result<result_message> decode_result(std::string_view text);

nlohmann::json meta_to_json(const worker::step_meta& m);
worker::step_meta meta_from_json(const nlohmann::json& j, const worker::retry_policy& fallback);

/// Seals messages with the fleet key (XChaCha20-Poly1305 through `secrets::box`, the kind
/// bound as associated data): `zf1:<key fingerprint>:<sealed>`. A broker never holds a
/// payload or a secret in clear. Thread-safe.
class sealer {
 public:
  explicit sealer(const secrets::box& key);
  std::string seal(std::string_view kind, std::string_view plaintext) const;
  /// `forbidden` when the message was sealed with another fleet key (its message names both
  /// fingerprints); `invalid_argument` when it is not a sealed message or does not open.
  result<std::string> open(std::string_view kind, std::string_view sealed) const;
  const std::string& fingerprint() const { return fingerprint_; }

 private:
  const secrets::box& key_;
  std::string fingerprint_;
};

}  // namespace zapd::fleet
