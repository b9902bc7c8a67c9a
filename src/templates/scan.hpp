#pragma once

#include <cstddef>
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

/// A piece of a template: literal text (a view into the template) or a placeholder.
struct token {
  bool is_placeholder = false;
  std::string_view text;              ///< literal text, or the placeholder's path as written (trimmed)
  std::vector<std::string> segments;  ///< the path split: "a.b[0]" -> {"a","b","0"}
  bool legacy = false;                ///< written `{path}` (legacy single brace)
  bool at_start = false;              ///< nothing precedes it in the template
  bool in_json_string = false;        ///< json mode: it sits inside a "..." literal of the template
};

/// Splits `tmpl` into literal runs and placeholders, following the rules in README.md
/// (escapes, unterminated braces, legacy single braces, JSON string tracking in json mode).
std::vector<token> tokenize(std::string_view tmpl, const options& o, warning_list& warn);

/// Splits a trimmed path (`a.b.0`, `a.b[0].c`, `[0].id`) into segments. False when `s` is not
/// a path (empty, spaces, quotes, backslashes, braces, empty segments, bad brackets).
bool parse_path(std::string_view s, std::vector<std::string>& out);

}  // namespace zapd::templates::detail
