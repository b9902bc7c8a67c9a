#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "zapd/core/result.hpp"

namespace zapd::zaps {

/// A zap version's definition, parsed once into a type. Every module that needs to know what
/// a zap does (ingestion, the worker, replay, the API) reads this, never the stored JSON, so
/// the defaults for a document written by an older zapd live in one place: `parse_definition`.
///
/// Stored form (zaps.definition, zap_versions.definition):
///   {"trigger": {"id", "triggerId", "metadata"},
///    "actions": [{"id", "actionId", "sortingOrder", "metadata"}, ...],
///    "retry": {"attempts", "baseDelayMs"}}          (retry only when the zap overrides it)
/// New step kinds and triggers go here: a step is (catalog id, config), whatever its kind.
struct trigger {
  std::string id;          // generated at save
  std::string trigger_id;  // catalog id ("webhook")
  nlohmann::json metadata = nlohmann::json::object();  // the trigger's config, an object
};

struct step {
  std::string id;         // generated at save
  std::string action_id;  // catalog id ("http", "email")
  int sorting_order = 0;
  nlohmann::json metadata = nlohmann::json::object();  // the step's config (templates), an object
};

/// The zap's own retry policy; an unset field uses the worker's (config `worker.*`).
struct retry_override {
  std::optional<int> attempts;
  std::optional<std::int64_t> base_delay_ms;
  bool empty() const { return !attempts && !base_delay_ms; }
  /// The stored and API form: {"attempts"?, "baseDelayMs"?}.
  nlohmann::json to_json() const;
};

struct definition {
  zaps::trigger trigger;
  std::vector<step> steps;
  retry_override retry;

  /// Runs of this definition have this many steps (1-based step indexes 1..count).
  std::size_t step_count() const { return steps.size(); }
  /// Step `index` (1-based), or null when the definition has no such step.
  const step* step_at(int index) const;
  /// The stored form (see above).
  nlohmann::json to_json() const;
};

/// Reads a stored definition. Lenient where an older zapd wrote less (a missing `actions`
/// is no steps, a missing or non-object `metadata` is {}, a retry value that is not an
/// integer is unset); `internal` when it is not a JSON object at all (unreadable data).
result<definition> parse_definition(const nlohmann::json& stored);
/// The same from the stored text (parsed with the `json_depth::stored` limit).
result<definition> parse_definition_text(std::string_view stored_text);

}  // namespace zapd::zaps
