#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "zapd/core/result.hpp"

namespace zapd::hooks {

/// A webhook body as the run's trigger sees it (no JSON document is built unless asked):
/// - JSON content types (application/json, anything +json) are validated (syntax, UTF-8,
///   nesting up to `max_depth`); failures are `invalid_argument`. An empty body is null.
/// - application/x-www-form-urlencoded becomes an object of strings (last value wins).
/// - anything else is kept as its text (invalid UTF-8 replaced).
struct checked_body {
  /// For JSON content types: the request's own bytes, validated (syntax, UTF-8, depth).
  std::optional<std::string_view> json_text;
  /// Form -> object, other types -> text, empty -> null; for JSON only when `parse_json`.
  nlohmann::json value;
};
/// `raw` must outlive the result.
result<checked_body> check_body(std::string_view content_type, std::string_view raw, std::size_t max_depth, bool parse_json);

/// trigger_payload, serialised, with a JSON body copied as its text (no document round trip).
std::string trigger_payload_text(std::string_view method, const checked_body& body, std::string_view content_type,
                                 const std::map<std::string, std::string>& query,
                                 const std::vector<std::pair<std::string, std::string>>& headers, std::int64_t received_ms);

/// Whether a request header is kept in the run's trigger payload. Credentials
/// (Authorization, Cookie, Proxy-Authorization, X-Api-Key) and hop-by-hop headers are not.
bool kept_header(std::string_view lower_case_name);

/// The trigger payload a run records:
/// {"method","body","query","headers","contentType","receivedAt"} (receivedAt ISO-8601 UTC).
nlohmann::json trigger_payload(std::string_view method, nlohmann::json body, std::string_view content_type,
                               const std::map<std::string, std::string>& query,
                               const std::vector<std::pair<std::string, std::string>>& headers, std::int64_t received_ms);

/// The value at a dotted path ("event.id", "items.0.id") of a body, as text, for dedup.
/// Nullopt when the path is absent or leads to null.
std::optional<std::string> value_at(const nlohmann::json& body, std::string_view dotted_path);

}  // namespace zapd::hooks
