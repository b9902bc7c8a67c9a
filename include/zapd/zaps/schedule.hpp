#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "zapd/core/result.hpp"
#include "zapd/cron/cron.hpp"
#include "zapd/zaps/definition.hpp"

namespace zapd::zaps {

/// The catalog id of the schedule trigger.
inline constexpr std::string_view k_schedule_trigger = "schedule";

/// What a schedule trigger's config means: when it fires and what to do with missed slots.
struct schedule_config {
  cron::schedule when;
  bool catch_up_last = false;  // catchUp = last: one run for the latest slot missed while down
};

/// Reads a schedule trigger's config (`triggerMetadata`: cron | intervalSeconds, timezone,
/// catchUp; absent fields take their catalog defaults). invalid_argument with `details`
/// (paths under `path`, e.g. "triggerMetadata.cron") when it is not a valid schedule.
result<schedule_config> schedule_of(const nlohmann::json& metadata, const std::string& path = "triggerMetadata");

/// The save-time rules across fields, appended to `out` under `path`: exactly one of cron /
/// intervalSeconds, a valid expression, a known time zone, and no two slots closer than
/// `min_interval_seconds` (config `schedule.min_interval_seconds`).
void check_schedule(const nlohmann::json& metadata, const std::string& path, std::int64_t min_interval_seconds,
                    std::vector<field_error>& out);

/// The zap's next slot strictly after `now_ms`, or nullopt when it is disabled or not a
/// schedule zap (or its stored schedule no longer parses).
std::optional<std::int64_t> next_fire_at(const definition& d, bool enabled, std::int64_t now_ms);

/// `POST /api/v1/schedule/preview`: the next `count` slots after `now_ms` of a body
/// {cron | intervalSeconds, timezone}, validated like a schedule trigger's config (paths
/// without a prefix: "cron", "intervalSeconds", "timezone").
result<std::vector<std::int64_t>> preview(const nlohmann::json& body, std::int64_t min_interval_seconds, std::int64_t now_ms,
                                          int count = 5);

}  // namespace zapd::zaps
