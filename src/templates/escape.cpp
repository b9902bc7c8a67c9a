#include "escape.hpp"

#include "zapd/core/json.hpp"

namespace zapd::templates::detail {

namespace {

constexpr char hex_digits[] = "0123456789ABCDEF";

void percent(std::string& out, unsigned char c) {
  out += '%';
  out += hex_digits[c >> 4];
  out += hex_digits[c & 0xF];
}

bool unreserved(unsigned char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.' ||
         c == '_' || c == '~';
}

}  // namespace

bool valid_utf8(std::string_view s) {
  auto byte = [&](std::size_t i) { return static_cast<unsigned char>(s[i]); };
  auto in = [](unsigned char c, unsigned char lo, unsigned char hi) { return c >= lo && c <= hi; };
  std::size_t i = 0;
  while (i < s.size()) {
    const auto c = byte(i);
    if (c < 0x80) {
      ++i;
      continue;
    }
    // Lead byte -> number of continuation bytes and the range allowed for the first of them.
    std::size_t more = 0;
    unsigned char lo = 0x80, hi = 0xBF;
    if (in(c, 0xC2, 0xDF)) more = 1;
    else if (c == 0xE0) more = 2, lo = 0xA0;
    else if (in(c, 0xE1, 0xEC) || in(c, 0xEE, 0xEF)) more = 2;
    else if (c == 0xED) more = 2, hi = 0x9F;
    else if (c == 0xF0) more = 3, lo = 0x90;
    else if (in(c, 0xF1, 0xF3)) more = 3;
    else if (c == 0xF4) more = 3, hi = 0x8F;
    else return false;
    if (s.size() - i <= more || !in(byte(i + 1), lo, hi)) return false;
    for (std::size_t k = 2; k <= more; ++k)
      if (!in(byte(i + k), 0x80, 0xBF)) return false;
    i += more + 1;
  }
  return true;
}

std::string json_string_content(std::string_view s) {
  auto quoted = dump_safe(nlohmann::json(std::string(s)));
  return quoted.substr(1, quoted.size() - 2);
}

bool clean_header(std::string& s) {
  bool changed = false;
  for (auto& ch : s) {
    auto c = static_cast<unsigned char>(ch);
    if ((c < 0x20 && c != '\t') || c == 0x7F) {
      ch = ' ';
      changed = true;
    }
  }
  return changed;
}

std::string url_component(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (char ch : s) {
    auto c = static_cast<unsigned char>(ch);
    if (unreserved(c)) out += ch;
    else percent(out, c);
  }
  return out;
}

std::string url_whole(std::string_view s) {
  static constexpr std::string_view never = "\"<>\\^`{|}";
  std::string out;
  out.reserve(s.size());
  for (char ch : s) {
    auto c = static_cast<unsigned char>(ch);
    if (c <= 0x20 || c >= 0x7F || never.find(ch) != std::string_view::npos) percent(out, c);
    else out += ch;
  }
  return out;
}

}  // namespace zapd::templates::detail
