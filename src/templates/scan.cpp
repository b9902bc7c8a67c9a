#include "scan.hpp"

#include <fmt/format.h>

#include <algorithm>

#include "zapd/core/json.hpp"
#include "escape.hpp"

namespace zapd::templates::detail {

namespace {

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

// A byte of a bare segment. Quotes and backslashes are refused so that, in json mode, a
// placeholder can never swallow the quote that ends a JSON string.
bool segment_byte(unsigned char c) {
  return c > 0x20 && c != 0x7F && c != '.' && c != '[' && c != ']' && c != '{' && c != '}' && c != '"' && c != '\\';
}

// Bytes of a path: segment bytes and the separators.
bool path_byte(unsigned char c) { return segment_byte(c) || c == '.' || c == '[' || c == ']'; }

// Longer warnings are cut (a path can be as long as the template).
constexpr std::size_t max_warning_bytes = 300;

}  // namespace

void warning_list::add(std::string w) {
  if (w.size() > max_warning_bytes) {
    w.resize(max_warning_bytes);
    w += "...";
  }
  // Warnings end up in JSON records: make them valid UTF-8 (a path may hold any byte).
  if (!valid_utf8(w)) {
    w = json_string(w).get<std::string>();  // invalid sequences -> U+FFFD
  }
  if (std::find(out_.begin(), out_.end(), w) != out_.end()) return;
  if (out_.size() >= max_kept) {
    ++dropped_;
    return;
  }
  out_.push_back(std::move(w));
}

void warning_list::finish() {
  if (dropped_ > 0) out_.push_back(fmt::format("... and {} more warnings", dropped_));
  dropped_ = 0;
}

bool parse_path(std::string_view s, std::vector<std::string>& out) {
  out.clear();
  if (s.empty()) return false;
  std::size_t i = 0;
  for (;;) {
    // A segment: [digits] or a bare name.
    if (s[i] == '[') {
      auto close = s.find(']', i);
      if (close == std::string_view::npos || close == i + 1) return false;
      auto idx = s.substr(i + 1, close - i - 1);
      if (!std::all_of(idx.begin(), idx.end(), [](char c) { return c >= '0' && c <= '9'; })) return false;
      out.emplace_back(idx);
      i = close + 1;
    } else {
      auto j = i;
      while (j < s.size() && segment_byte(static_cast<unsigned char>(s[j]))) ++j;
      if (j == i) return false;
      out.emplace_back(s.substr(i, j - i));
      i = j;
    }
    if (i == s.size()) return true;
    // Between segments: '.' before a name, or a bracket directly.
    if (s[i] == '.') {
      if (++i == s.size() || s[i] == '[') return false;
    } else if (s[i] != '[') {
      return false;
    }
  }
}

std::vector<token> tokenize(std::string_view t, const options& o, warning_list& warn) {
  const bool json = o.m == mode::json;
  const bool legacy = o.legacy_single_brace && t.find("{{") == std::string_view::npos;
  const std::string_view open = legacy ? "{" : "{{";
  const std::string_view close = legacy ? "}" : "}}";

  std::vector<token> out;
  std::size_t run = 0;  // start of the literal run not yet pushed
  auto flush = [&](std::size_t end) {
    if (end > run) out.push_back(token{.text = t.substr(run, end - run)});
  };
  bool in_string = false;
  std::size_t next_close = std::string_view::npos;
  std::size_t i = 0;
  while (i < t.size()) {
    const char c = t[i];
    if (c == '\\') {
      if (t.substr(i + 1, open.size()) == open) {
        // `\{{` (legacy: `\{`): the braces are text; drop the backslash.
        flush(i);
        run = i + 1;
        i += 1 + open.size();
      } else {
        // Inside a JSON string a backslash escapes the next byte (`\"` does not end it).
        i += (json && in_string) ? 2 : 1;
      }
      continue;
    }
    if (c == '"' && json) {
      in_string = !in_string;
      ++i;
      continue;
    }
    if (c != '{' || t.substr(i, open.size()) != open) {
      ++i;
      continue;
    }
    // The first close at or after the content's start. It only moves forward, so a template
    // of many `{{` that are not placeholders is still scanned in linear time.
    if (next_close == std::string_view::npos || next_close < i + open.size()) next_close = t.find(close, i + open.size());
    if (next_close == std::string_view::npos) {
      // Nothing after can close a placeholder either: the rest is text.
      if (!legacy) warn.add(fmt::format("unterminated {{{{ at offset {}; left as text", i));
      break;
    }
    const auto end = next_close;
    // The path, scanned forward only and stopping at the first byte no path has (a brace,
    // a space), so no byte is looked at again by the attempts of later braces.
    auto a = i + open.size();
    while (a < end && is_space(t[a])) ++a;
    auto b = a;
    while (b < end && path_byte(static_cast<unsigned char>(t[b]))) ++b;
    auto after = b;
    while (after < end && is_space(t[after])) ++after;
    token p{.is_placeholder = true, .text = t.substr(a, b - a), .legacy = legacy, .at_start = i == 0, .in_json_string = in_string};
    if (after != end || !parse_path(p.text, p.segments)) {
      // Not a placeholder: this brace is text, and scanning goes on right after it, so
      // `{{{a}}}` renders `{` + a + `}` and quotes inside are tracked. Legacy braces are
      // ordinary prose, so they are not worth a warning.
      if (!legacy && t[a] != '{') {
        auto shown = trim(t.substr(a, std::min(end - a, max_warning_bytes)));
        warn.add(fmt::format("{{{{{}}}}}: not a field path; left as text", shown));
      }
      ++i;
      continue;
    }
    flush(i);
    out.push_back(std::move(p));
    i = end + close.size();
    run = i;
  }
  flush(t.size());
  return out;
}

}  // namespace zapd::templates::detail
