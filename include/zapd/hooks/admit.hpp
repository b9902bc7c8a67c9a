#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "zapd/core/result.hpp"
#include "zapd/hooks/ingest.hpp"
#include "zapd/runs/runs.hpp"

namespace zapd::hooks {

/// A webhook request as the HTTP layer received it, without HTTP types.
struct inbound {
  std::string user_id;       // from the path
  std::string zap_id;        // from the path
  std::string method;        // "POST", "GET", ...
  std::string content_type;  // the Content-Type header, or empty
  std::string_view body;     // the request's bytes; must outlive `admit`
  std::vector<std::pair<std::string, std::string>> headers;  // every field, in order (names as sent)
  std::map<std::string, std::string> query;                  // decoded query parameters

  /// The first header named `name` (ASCII case-insensitive), or empty.
  std::string header(std::string_view name) const;
};

struct admit_options {
  std::size_t max_depth = 64;                    // hooks.max_depth: nesting allowed in a JSON body
  std::chrono::seconds signature_tolerance{300};  // standard, stripe: allowed |now - timestamp|
};

/// Longer dedup keys are stored as "sha256:<hex of the key>".
inline constexpr std::size_t k_max_dedup_key = 200;

/// The dedup key of a request: "webhook-id:<v>", else "idempotency-key:<v>", else
/// "path:<value at the zap's dedupPath>" (none when the path is absent or null), else none.
/// `body` is the parsed body (only read for a dedupPath).
std::optional<std::string> dedup_key(const zap_info& zap, const inbound& in, const nlohmann::json& body);

/// Decides whether a webhook becomes a run, and builds that run. Pure: no clock (`now_ms` is
/// the time of arrival), no database, no HTTP; the only outside input is the UUIDv7's
/// randomness. In order, the first failure wins:
///   no zap, or another user's zap          -> not_found ("no zap <id> for user <user>")
///   the zap is disabled                    -> disabled (disabled_error)
///   the zap's trigger is not a webhook     -> invalid_state (a schedule zap: 409)
///   the signature does not verify          -> unauthorized (what was wrong, from `verify`)
///   the body does not fit its content type -> invalid_argument (what was wrong, from `check_body`)
/// On success: the run to record (id a UUIDv7 of `now_ms`, the zap's version, lane and
/// action count, the trigger payload as JSON text, the dedup key). Rate limits are the
/// caller's: they keep state, and come after this so unsigned requests spend no tokens.
/// `zap` may be null (no such zap).
result<runs::new_run> admit(const zap_info* zap, const inbound& in, std::int64_t now_ms, const admit_options& o = {});

}  // namespace zapd::hooks
