#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "zapd/core/result.hpp"

namespace zapd::actions {

enum class field_type {
  string,       // one line of text
  text,         // multi-line text
  integer,
  boolean,
  choice,       // one of `choices`
  string_map,   // object of string -> string (e.g. HTTP headers)
  string_list,  // one string or an array of strings (e.g. email recipients)
  conditions,   // the filter step's rows: an array of {left, op, right} (templates in left/right)
};

/// What a field's values must look like beyond their type. `headers` (on a string_map): each
/// key an HTTP header name (an RFC 9110 token), each value free of CR, LF and NUL.
/// `duration` (on a string): `90s`, `5m`, `2h`, `1d` or ISO 8601 `PT1H30M` (`parse_duration`).
enum class field_format { none, url, email, headers, duration };

/// One config field of a trigger or action: the single source the UI renders forms from and
/// the server validates with.
struct field_spec {
  std::string name;
  field_type type = field_type::string;
  bool required = false;
  nlohmann::json default_value;  // null when none
  std::string help;
  bool templates = false;  // may hold {{...}} templates
  std::vector<std::string> choices;
  field_format format = field_format::none;
  std::size_t max_length = 0;  // 0 = only the zap-wide size limit
  std::string alias_of;        // accepted on input as another name for this field (seeds' `email` = `to`)
  // Inclusive bounds of an integer field, advertised as JSON Schema `minimum`/`maximum`. Every
  // integer field in the catalog has both (a test checks it).
  std::optional<std::int64_t> minimum;
  std::optional<std::int64_t> maximum;
};

/// A catalog entry. `id` is stable and appears in zaps; `aliases` are accepted on input.
struct spec {
  std::string id;
  std::string name;
  std::string description;
  std::vector<std::string> aliases;
  std::vector<field_spec> fields;
  std::string icon_svg;  // served at /static/icons/{id}.svg
  /// Rules across fields (e.g. "give `for` or `until`, not both"), run by `validate_config`
  /// on the normalised config after the per-field checks; appends problems under `path`.
  std::function<void(const nlohmann::json& config, const std::string& path, std::vector<field_error>& out)> check;
};

/// The `configSchema` JSON for a spec (fields with name, type, required, default, help,
/// templates, choices, format, minimum, maximum).
nlohmann::json config_schema_json(const spec& s);

/// Validates `config` against `s.fields`, appending problems under `path` (e.g.
/// "actions[1].actionMetadata"). `known_secrets` are the names `{{secrets.NAME}}` may use.
/// Returns the config normalised: aliases renamed, defaults left out.
nlohmann::json validate_config(const spec& s, const nlohmann::json& config, const std::string& path,
                               const std::set<std::string>& known_secrets, std::vector<field_error>& out);

/// `v` as an integer from `lo` to `hi` (inclusive). A JSON integer, or a number without a
/// fraction (5000.0, 5e3); a fraction, a string, or a number beyond int64 is an
/// invalid_argument whose message says the range ("must be between 1 and 300000").
result<std::int64_t> bounded_integer(const nlohmann::json& v, std::int64_t lo, std::int64_t hi);

/// The filter step's operators (`conditions` rows' `op`), and which take no `right` operand.
const std::vector<std::string>& condition_ops();
bool condition_op_is_unary(std::string_view op);
/// The most rows a `conditions` field holds.
inline constexpr std::size_t k_max_conditions = 50;
/// Memory RE2 may use for one `matches` pattern (compiled program and DFA cache).
inline constexpr std::int64_t k_regex_max_mem = std::int64_t{1} << 20;

/// A duration as the delay step writes it: an integer and a unit (`90s`, `5m`, `2h`, `1d`,
/// also `500ms`), or ISO 8601 (`PT5M`, `PT1H30M`, `P1DT2H`, `P2W`); invalid_argument naming the
/// problem otherwise. At most 10 years (more is an error, not an overflow).
result<std::chrono::milliseconds> parse_duration(std::string_view text);

/// An RFC 3339 time ("2026-11-30T10:00:00Z", "2026-11-30T11:00:00.5+01:00"; `t`/`z` and a
/// space for `T` accepted) as Unix ms; nullopt when it is not one.
std::optional<std::int64_t> parse_rfc3339_ms(std::string_view text);

/// True if `name` is an RFC 9110 token (1*tchar), the grammar of an HTTP header name.
bool is_http_token(std::string_view name);

/// Names of secrets referenced as {{secrets.NAME}} anywhere in `j`'s strings.
std::set<std::string> secret_references(const nlohmann::json& j);

/// A plausible single email address (local@domain.tld, no spaces or angle brackets).
bool looks_like_email(std::string_view s);

}  // namespace zapd::actions
