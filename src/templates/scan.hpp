#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "zapd/templates/template.hpp"

namespace zapd::templates::detail {

/// Collects warnings for one render: repeats dropped (a placeholder used 1000 times warns
/// once) and at most `max_kept` kept, then one line counting the rest.
class warning_list {
 public:
  static constexpr std::size_t max_kept = 100;
  explicit warning_list(std::vector<std::string>& out) : out_(out) {}
  void add(std::string w);
  /// Appends the "N more" line, if any were dropped. Call once, at the end.
  void finish();

 private:
  std::vector<std::string>& out_;
  std::size_t dropped_ = 0;
};

/// An argument of a filter: a double-quoted string (escapes resolved) or an integer.
struct filter_arg {
  bool is_int = false;
  std::int64_t i = 0;
  std::string s;
};

/// One `| name:arg:arg` of a placeholder, as written (not yet checked against the known filters).
struct filter_call {
  std::string name;
  std::vector<filter_arg> args;
};

/// Filters one placeholder may chain (a bound on the work one placeholder can ask for).
inline constexpr std::size_t max_filters = 32;

/// A piece of a template: literal text (a view into the template) or a placeholder.
struct token {
  bool is_placeholder = false;
  std::string_view text;              ///< literal text, or the placeholder's path as written (trimmed)
  std::string_view whole;             ///< placeholder: path and filters as written (trimmed), for messages
  std::vector<std::string> segments;  ///< the path split: "a.b[0]" -> {"a","b","0"}
  std::vector<filter_call> filters;   ///< `{{path | f | g:"x"}}`: applied left to right
  bool legacy = false;                ///< written `{path}` (legacy single brace)
  bool at_start = false;              ///< nothing precedes it in the template
  bool in_json_string = false;        ///< json mode: it sits inside a "..." literal of the template
};

/// Splits `tmpl` into literal runs and placeholders, following the rules in README.md
/// (escapes, unterminated braces, legacy single braces, JSON string tracking in json mode,
/// filter chains). A `{{path | ...}}` whose filter part does not parse stays text with a
/// warning; its problem is also appended to `filter_errors` when given (for `check`).
std::vector<token> tokenize(std::string_view tmpl, const options& o, warning_list& warn,
                            std::vector<std::string>* filter_errors = nullptr);

/// Parses a filter chain: `s` starts at the first `|` (spaces allowed around every part).
/// False with `err` set when it is not `| name(:arg)*` repeated, an argument string is
/// unterminated, an integer does not fit, or there are more than `max_filters`.
bool parse_filters(std::string_view s, std::vector<filter_call>& out, std::string& err);

/// Splits a trimmed path (`a.b.0`, `a.b[0].c`, `[0].id`) into segments. False when `s` is not
/// a path (empty, spaces, quotes, backslashes, braces, empty segments, bad brackets).
bool parse_path(std::string_view s, std::vector<std::string>& out);

}  // namespace zapd::templates::detail
