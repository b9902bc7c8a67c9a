#include "zapd/core/json.hpp"

#include <cctype>

#include <fmt/format.h>
#include <simdjson.h>

namespace zapd {

std::string to_lower(std::string_view s) {
  std::string out(s);
  for (auto& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::string_view trim(std::string_view s) {
  const auto first = s.find_first_not_of(" \t\r\n");
  if (first == std::string_view::npos) return {};
  return s.substr(first, s.find_last_not_of(" \t\r\n") - first + 1);
}

std::vector<std::string_view> split(std::string_view s, char sep) {
  std::vector<std::string_view> out;
  while (true) {
    auto p = s.find(sep);
    out.push_back(trim(s.substr(0, p)));
    if (p == std::string_view::npos) break;
    s.remove_prefix(p + 1);
  }
  return out;
}

std::size_t nesting_depth(std::string_view s, std::size_t stop_at) {
  std::size_t depth = 0;
  std::size_t deepest = 0;
  bool in_string = false;
  for (std::size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (in_string) {
      if (c == '\\') ++i;
      else if (c == '"') in_string = false;
      continue;
    }
    if (c == '"') {
      in_string = true;
    } else if (c == '{' || c == '[') {
      if (++depth > deepest) {
        deepest = depth;
        if (deepest > stop_at) return deepest;
      }
    } else if ((c == '}' || c == ']') && depth > 0) {
      --depth;
    }
  }
  return deepest;
}

result<nlohmann::json> parse_json(std::string_view text, std::size_t max_depth, std::string_view what) {
  if (nesting_depth(text, max_depth) > max_depth)
    return make_error(errc::invalid_argument, fmt::format("{} nests deeper than {} levels, the limit", what, max_depth));
  // nlohmann's lexer takes a NUL byte for the end of the input ("1\0anything" would parse);
  // JSON has no raw NUL anywhere (the fuzzer found this).
  if (text.find('\0') != std::string_view::npos) return make_error(errc::invalid_argument, fmt::format("{} is not valid JSON", what));
  auto j = nlohmann::json::parse(text, nullptr, false);  // the only parse call: see json.hpp
  if (j.is_discarded()) return make_error(errc::invalid_argument, fmt::format("{} is not valid JSON", what));
  return j;
}

nlohmann::json parse_json_or_discarded(std::string_view text, std::size_t max_depth) {
  auto j = parse_json(text, max_depth);
  return j ? std::move(*j) : nlohmann::json(nlohmann::json::value_t::discarded);
}

std::string dump_safe(const nlohmann::json& j) { return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace); }

nlohmann::json json_string(std::string_view bytes) {
  // Valid UTF-8 (nearly every header, query string and body) is kept as it is: a round trip
  // would give the same bytes back. simdjson and nlohmann's dump agree on what is valid
  // (RFC 3629: no overlong forms, no surrogates, nothing past U+10FFFF; json_fuzz compares them).
  if (simdjson::validate_utf8(bytes.data(), bytes.size())) return nlohmann::json(std::string(bytes));
  // Anything else: a round trip through a replacing dump puts U+FFFD for each invalid sequence.
  return nlohmann::json::parse(dump_safe(nlohmann::json(std::string(bytes))));
}

std::string string_field(const nlohmann::json& obj, const char* key, std::string fallback) {
  if (!obj.is_object()) return fallback;
  auto it = obj.find(key);
  return it != obj.end() && it->is_string() ? it->get<std::string>() : fallback;
}

}  // namespace zapd
