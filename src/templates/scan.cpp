#include "scan.hpp"

#include <fmt/format.h>

#include <algorithm>

#include "zapd/core/json.hpp"
#include "escape.hpp"

namespace zapd::templates::detail {

namespace {

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

// A byte of a bare segment. Quotes and backslashes are refused so that, in json mode, a
// placeholder can never swallow the quote that ends a JSON string; `|` starts the filters.
bool segment_byte(unsigned char c) {
  return c > 0x20 && c != 0x7F && c != '.' && c != '[' && c != ']' && c != '{' && c != '}' && c != '"' && c != '\\' &&
         c != '|';
}

bool name_byte(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_'; }

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

bool parse_filters(std::string_view s, std::vector<filter_call>& out, std::string& err) {
  out.clear();
  std::size_t i = 0;
  auto skip = [&] {
    while (i < s.size() && is_space(s[i])) ++i;
  };
  for (;;) {
    skip();
    if (i == s.size()) return true;
    if (s[i] != '|') {
      err = fmt::format("expected | before '{}'", s.substr(i, 20));
      return false;
    }
    ++i;
    skip();
    auto n = i;
    while (i < s.size() && name_byte(s[i])) ++i;
    if (n == i) {
      err = "expected a filter name after |";
      return false;
    }
    if (out.size() == max_filters) {
      err = fmt::format("more than {} filters", max_filters);
      return false;
    }
    filter_call call{.name = std::string(s.substr(n, i - n))};
    for (;;) {
      skip();
      if (i == s.size() || s[i] != ':') break;
      ++i;
      skip();
      filter_arg arg;
      if (i < s.size() && s[i] == '"') {
        // A string: backslash escapes (\n \t \r, any other byte as itself), ends at its quote.
        bool closed = false;
        for (++i; i < s.size(); ++i) {
          char c = s[i];
          if (c == '"') {
            closed = true;
            ++i;
            break;
          }
          if (c == '\\' && i + 1 < s.size()) {
            c = s[++i];
            c = c == 'n' ? '\n' : c == 't' ? '\t' : c == 'r' ? '\r' : c;
          }
          arg.s += c;
        }
        if (!closed) {
          err = fmt::format("unterminated argument string of {} (a placeholder ends at the first }}}}; write \\}} for a brace)",
                            call.name);
          return false;
        }
      } else {
        auto d = i;
        if (i < s.size() && s[i] == '-') ++i;
        auto digits = i;
        while (i < s.size() && s[i] >= '0' && s[i] <= '9') ++i;
        if (digits == i) {
          err = fmt::format("argument of {} must be a \"string\" or an integer", call.name);
          return false;
        }
        if (i - digits > 18) {
          err = fmt::format("integer argument of {} too large", call.name);
          return false;
        }
        arg.is_int = true;
        arg.i = std::stoll(std::string(s.substr(d, i - d)));
      }
      call.args.push_back(std::move(arg));
    }
    out.push_back(std::move(call));
  }
}

std::vector<token> tokenize(std::string_view t, const options& o, warning_list& warn, std::vector<std::string>* filter_errors) {
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
    if (!legacy && after != end && t[after] == '|' && parse_path(p.text, p.segments)) {
      std::string err;
      if (!parse_filters(t.substr(after, end - after), p.filters, err)) {
        // A path with a broken filter chain: text, like any other non-placeholder.
        auto shown = trim(t.substr(a, std::min(end - a, max_warning_bytes)));
        warn.add(fmt::format("{{{{{}}}}}: {}; left as text", shown, err));
        if (filter_errors != nullptr) filter_errors->push_back(fmt::format("{{{{{}}}}}: {}", shown, err));
        ++i;
        continue;
      }
      after = end;
    }
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
    p.whole = trim(t.substr(a, end - a));
    flush(i);
    out.push_back(std::move(p));
    i = end + close.size();
    run = i;
  }
  flush(t.size());
  return out;
}

}  // namespace zapd::templates::detail
