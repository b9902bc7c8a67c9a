#include "filters.hpp"

#include <date/tz.h>
#include <fmt/format.h>

#include <array>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <exception>
#include <limits>
#include <optional>
#include <sstream>

#include "zapd/core/crypto.hpp"
#include "zapd/core/json.hpp"
#include "escape.hpp"

namespace zapd::templates::detail {

namespace {

using nlohmann::json;

// `split` makes at most this many items (a string of commas must not become millions of
// JSON values).
constexpr std::size_t max_items = 100000;
// `round:N` digits either side of the decimal point.
constexpr std::int64_t max_round_digits = 15;
// Unix seconds accepted by `date`: years 0001 to 9999, what RFC 3339 can write.
constexpr std::int64_t min_unix = -62135596800;
constexpr std::int64_t max_unix = 253402300799;

enum class arg_kind { string, integer, any };

struct filter_def {
  std::string_view name;
  std::size_t min_args = 0;
  std::size_t max_args = 0;
  std::array<arg_kind, 2> kinds{arg_kind::string, arg_kind::string};
  std::string_view usage;
};

constexpr std::array<filter_def, 17> defs{{
    {"lower", 0, 0, {}, "lower"},
    {"upper", 0, 0, {}, "upper"},
    {"trim", 0, 0, {}, "trim"},
    {"default", 1, 1, {arg_kind::any}, "default:\"text\" or default:0"},
    {"json", 0, 0, {}, "json"},
    {"urlencode", 0, 0, {}, "urlencode"},
    {"base64", 0, 0, {}, "base64"},
    {"truncate", 1, 1, {arg_kind::integer}, "truncate:N"},
    {"replace", 2, 2, {arg_kind::string, arg_kind::string}, "replace:\"from\":\"to\""},
    {"split", 1, 1, {arg_kind::string}, "split:\",\""},
    {"join", 1, 1, {arg_kind::string}, "join:\", \""},
    {"first", 0, 0, {}, "first"},
    {"last", 0, 0, {}, "last"},
    {"length", 0, 0, {}, "length"},
    {"number", 0, 0, {}, "number"},
    {"round", 0, 1, {arg_kind::integer}, "round or round:N"},
    {"date", 0, 2, {arg_kind::string, arg_kind::string}, "date, date:\"FORMAT\" or date:\"FORMAT\":\"Time/Zone\""},
}};

const filter_def* find_def(std::string_view name) {
  for (const auto& d : defs)
    if (d.name == name) return &d;
  return nullptr;
}

std::string known_names() {
  std::string out;
  for (const auto& d : defs) {
    if (!out.empty()) out += ", ";
    out += d.name;
  }
  return out;
}

bool continuation(char c) { return (static_cast<unsigned char>(c) & 0xC0) == 0x80; }

// Code points of UTF-8 text: bytes that do not continue a sequence.
std::size_t code_points(std::string_view s) {
  std::size_t n = 0;
  for (char c : s) n += continuation(c) ? 0 : 1;
  return n;
}

// Byte offset where code point `n` (0-based) starts, or the size.
std::size_t code_point_offset(std::string_view s, std::size_t n) {
  if (n == 0) return 0;
  std::size_t seen = 0;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (continuation(s[i])) continue;
    if (seen == n) return i;
    ++seen;
  }
  return s.size();
}

// A value as the text it renders: strings as they are, the rest as JSON (null is handled
// by each filter before).
std::string text_of(const json& v) { return v.is_string() ? v.get<std::string>() : dump_safe(v); }

std::string too_big(std::size_t max_bytes) { return fmt::format("the result would pass {} bytes; left unchanged", max_bytes); }

std::string_view type_of(const json& v) {
  switch (v.type()) {
    case json::value_t::object: return "an object";
    case json::value_t::array: return "an array";
    case json::value_t::string: return "a string";
    case json::value_t::boolean: return "a boolean";
    case json::value_t::null: return "null";
    default: return "a number";
  }
}

// A decimal number as written by people and JSON: optional sign, digits, optional fraction
// and exponent. Integers that fit stay integers.
std::optional<json> parse_number(std::string_view s) {
  s = trim(s);
  if (!s.empty() && s.front() == '+') s.remove_prefix(1);
  std::size_t i = 0;
  if (i < s.size() && s[i] == '-') ++i;
  auto digits = [&] {
    auto from = i;
    while (i < s.size() && s[i] >= '0' && s[i] <= '9') ++i;
    return i - from;
  };
  auto whole = digits();
  bool integral = true;
  std::size_t frac = 0;
  if (i < s.size() && s[i] == '.') {
    ++i;
    frac = digits();
    integral = false;
  }
  if (whole + frac == 0) return std::nullopt;
  if (i < s.size() && (s[i] == 'e' || s[i] == 'E')) {
    ++i;
    if (i < s.size() && (s[i] == '+' || s[i] == '-')) ++i;
    if (digits() == 0) return std::nullopt;
    integral = false;
  }
  if (i != s.size()) return std::nullopt;
  if (integral) {
    std::int64_t n = 0;
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), n);
    if (ec == std::errc() && p == s.data() + s.size()) return json(n);
  }
  double d = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), d);
  if (ec != std::errc() || p != s.data() + s.size() || !std::isfinite(d)) return std::nullopt;
  return json(d);
}

std::optional<json> as_number(const json& v) {
  if (v.is_number()) return v;
  if (v.is_boolean()) return json(v.get<bool>() ? 1 : 0);
  if (v.is_string()) return parse_number(v.get_ref<const std::string&>());
  return std::nullopt;
}

json rounded(const json& n, std::int64_t digits) {
  if (n.is_number_integer() && digits >= 0) return n;
  const double x = n.get<double>();
  const double scale = std::pow(10.0, static_cast<double>(digits < 0 ? -digits : digits));
  const double r = digits >= 0 ? std::round(x * scale) / scale : std::round(x / scale) * scale;
  if (!std::isfinite(r)) return n;
  // A whole result within int64 is an integer (round:0 of 2.5 is 3, not 3.0).
  if ((digits <= 0 || r == std::trunc(r)) && std::fabs(r) < 9.2e18) return json(static_cast<std::int64_t>(r));
  return json(r);
}

// RFC 3339 (`2024-05-01T10:00:00Z`, `...T12:00:00.5+02:00`, `t`/`z`/space accepted) or a
// full date (`2024-05-01`, midnight UTC). Fractions of a second are dropped.
std::optional<date::sys_seconds> parse_rfc3339(std::string_view s) {
  auto num = [&](std::size_t at, std::size_t n, int& out) {
    if (at + n > s.size()) return false;
    out = 0;
    for (std::size_t k = at; k < at + n; ++k) {
      if (s[k] < '0' || s[k] > '9') return false;
      out = out * 10 + (s[k] - '0');
    }
    return true;
  };
  int y = 0, mo = 0, d = 0, h = 0, mi = 0, sec = 0;
  if (!num(0, 4, y) || s.size() < 10 || s[4] != '-' || !num(5, 2, mo) || s[7] != '-' || !num(8, 2, d)) return std::nullopt;
  const date::year_month_day ymd{date::year{y}, date::month{static_cast<unsigned>(mo)}, date::day{static_cast<unsigned>(d)}};
  if (!ymd.ok()) return std::nullopt;
  const auto day = date::sys_days{ymd};
  if (s.size() == 10) return date::sys_seconds{day};
  if (s[10] != 'T' && s[10] != 't' && s[10] != ' ') return std::nullopt;
  if (!num(11, 2, h) || s.size() < 19 || s[13] != ':' || !num(14, 2, mi) || s[16] != ':' || !num(17, 2, sec)) return std::nullopt;
  if (h > 23 || mi > 59 || sec > 60) return std::nullopt;
  sec = std::min(sec, 59);  // a leap second is the second before it
  std::size_t i = 19;
  if (i < s.size() && s[i] == '.') {
    auto from = ++i;
    while (i < s.size() && s[i] >= '0' && s[i] <= '9') ++i;
    if (i == from) return std::nullopt;
  }
  int offset_minutes = 0;
  if (i < s.size() && (s[i] == 'Z' || s[i] == 'z')) {
    ++i;
  } else if (i < s.size() && (s[i] == '+' || s[i] == '-')) {
    int oh = 0, om = 0;
    if (!num(i + 1, 2, oh) || i + 3 >= s.size() || s[i + 3] != ':' || !num(i + 4, 2, om) || oh > 23 || om > 59) return std::nullopt;
    offset_minutes = (oh * 60 + om) * (s[i] == '-' ? -1 : 1);
    i += 6;
  } else {
    return std::nullopt;
  }
  if (i != s.size()) return std::nullopt;
  using namespace std::chrono;
  return date::sys_seconds{day} + hours{h} + minutes{mi} + seconds{sec} - minutes{offset_minutes};
}

// A time: RFC 3339 text, or Unix seconds as a number or a string of digits.
std::optional<date::sys_seconds> parse_time(const json& v) {
  std::int64_t unix = 0;
  if (v.is_number_integer()) {
    if (v.is_number_unsigned() && v.get<std::uint64_t>() > static_cast<std::uint64_t>(max_unix)) return std::nullopt;
    unix = v.get<std::int64_t>();
  } else if (v.is_number_float()) {
    const double d = std::floor(v.get<double>());
    if (!(d >= static_cast<double>(min_unix) && d <= static_cast<double>(max_unix))) return std::nullopt;
    unix = static_cast<std::int64_t>(d);
  } else if (v.is_string()) {
    auto s = trim(v.get_ref<const std::string&>());
    auto digits = s.substr(!s.empty() && s.front() == '-' ? 1 : 0);
    if (digits.empty() || digits.size() > 12 || digits.find_first_not_of("0123456789") != std::string_view::npos)
      return parse_rfc3339(s);
    unix = std::stoll(std::string(s));
  } else {
    return std::nullopt;
  }
  if (unix < min_unix || unix > max_unix) return std::nullopt;
  return date::sys_seconds{std::chrono::seconds{unix}};
}

const date::time_zone* zone_named(const std::string& name) {
  try {
    return date::locate_zone(name);
  } catch (const std::exception&) {
    return nullptr;
  }
}

bool apply_date(const filter_call& f, json& v, std::size_t max_bytes, std::string& problem) {
  if (v.is_null()) return true;
  const std::string format = f.args.empty() ? "%Y-%m-%dT%H:%M:%S%Ez" : f.args[0].s;
  const std::string zone_name = f.args.size() < 2 ? "UTC" : f.args[1].s;
  auto tp = parse_time(v);
  if (!tp) {
    problem = fmt::format("date: {} is not a time (an RFC 3339 date-time or Unix seconds); left unchanged", type_of(v));
    return false;
  }
  const auto* zone = zone_named(zone_name);
  if (zone == nullptr) {
    problem = fmt::format("date: unknown time zone \"{}\"; left unchanged", zone_name);
    return false;
  }
  std::ostringstream out;
  out << date::format(format, date::zoned_seconds{zone, *tp});
  auto s = out.str();
  if (s.size() > max_bytes) {
    problem = "date: " + too_big(max_bytes);
    return false;
  }
  v = std::move(s);
  return true;
}

bool apply_text(const filter_call& f, json& v, std::size_t max_bytes, std::string& problem) {
  if (v.is_null()) return true;
  std::string s = text_of(v);
  std::string out;
  const auto& n = f.name;
  if (n == "lower" || n == "upper") {
    out = std::move(s);
    for (auto& c : out) {
      if (n == "lower" && c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
      if (n == "upper" && c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
    }
  } else if (n == "trim") {
    out = std::string(trim(s));
  } else if (n == "urlencode") {
    out = url_component(s);
  } else if (n == "base64") {
    out = base64_encode(s);
  } else if (n == "truncate") {
    out = s.substr(0, code_point_offset(s, static_cast<std::size_t>(f.args[0].i)));
  } else {  // replace
    const auto& from = f.args[0].s;
    const auto& to = f.args[1].s;
    std::size_t start = 0;
    for (;;) {
      auto hit = s.find(from, start);
      out.append(s, start, hit == std::string::npos ? std::string::npos : hit - start);
      if (hit == std::string::npos) break;
      out += to;
      start = hit + from.size();
      if (out.size() > max_bytes) break;
    }
  }
  if (out.size() > max_bytes) {
    problem = fmt::format("{}: {}", f.name, too_big(max_bytes));
    return false;
  }
  v = std::move(out);
  return true;
}

}  // namespace

std::string check_filter(const filter_call& f) {
  const auto* d = find_def(f.name);
  if (d == nullptr) return fmt::format("unknown filter \"{}\" (known: {})", f.name, known_names());
  if (f.args.size() < d->min_args || f.args.size() > d->max_args)
    return fmt::format("{} takes {} (write {})", f.name,
                       d->max_args == 0                ? std::string("no argument")
                       : d->min_args == d->max_args    ? fmt::format("{} argument{}", d->max_args, d->max_args > 1 ? "s" : "")
                       : d->min_args == 0              ? fmt::format("at most {} argument{}", d->max_args, d->max_args > 1 ? "s" : "")
                                                       : fmt::format("{} to {} arguments", d->min_args, d->max_args),
                       d->usage);
  for (std::size_t k = 0; k < f.args.size(); ++k) {
    const auto kind = d->kinds[k];
    if (kind == arg_kind::string && f.args[k].is_int)
      return fmt::format("argument {} of {} must be a \"string\" (write {})", k + 1, f.name, d->usage);
    if (kind == arg_kind::integer && !f.args[k].is_int)
      return fmt::format("argument {} of {} must be an integer (write {})", k + 1, f.name, d->usage);
  }
  if (f.name == "truncate" && f.args[0].i < 0) return "truncate:N needs N >= 0";
  if (f.name == "round" && !f.args.empty() && (f.args[0].i < -max_round_digits || f.args[0].i > max_round_digits))
    return fmt::format("round:N needs N from {} to {}", -max_round_digits, max_round_digits);
  if (f.name == "replace" && f.args[0].s.empty()) return "replace needs a non-empty text to find";
  if (f.name == "split" && f.args[0].s.empty()) return "split needs a non-empty separator";
  if (f.name == "date" && f.args.size() == 2 && zone_named(f.args[1].s) == nullptr)
    return fmt::format("date: unknown time zone \"{}\" (an IANA name such as Europe/Paris or UTC)", f.args[1].s);
  return {};
}

bool apply_filter(const filter_call& f, json& v, std::size_t max_bytes, std::string& problem) {
  try {
    const auto& n = f.name;
    if (n == "default") {
      if (v.is_null() || (v.is_string() && v.get_ref<const std::string&>().empty()))
        v = f.args[0].is_int ? json(f.args[0].i) : json(f.args[0].s);
      return true;
    }
    if (n == "json") {
      auto s = dump_safe(v);
      if (s.size() > max_bytes) {
        problem = "json: " + too_big(max_bytes);
        return false;
      }
      v = std::move(s);
      return true;
    }
    if (n == "length") {
      if (v.is_null()) v = 0;
      else if (v.is_structured()) v = v.size();
      else v = code_points(text_of(v));
      return true;
    }
    if (n == "first" || n == "last") {
      if (v.is_array()) {
        json item = v.empty() ? json() : n == "first" ? v.front() : v.back();
        v = std::move(item);
      } else if (v.is_string()) {
        std::string_view s = v.get_ref<const std::string&>();
        if (n == "first") {
          v = std::string(s.substr(0, code_point_offset(s, 1)));
        } else {
          auto at = s.size();
          while (at > 0 && continuation(s[at - 1])) --at;
          v = std::string(s.substr(at > 0 ? at - 1 : 0));
        }
      }
      return true;
    }
    if (n == "split") {
      if (v.is_null() || v.is_array()) return true;
      const std::string s = text_of(v);
      const auto& sep = f.args[0].s;
      json out = json::array();
      for (std::size_t start = 0;;) {
        if (out.size() == max_items) {
          problem = fmt::format("split: more than {} items; left unchanged", max_items);
          return false;
        }
        auto hit = s.find(sep, start);
        out.push_back(s.substr(start, hit == std::string::npos ? std::string::npos : hit - start));
        if (hit == std::string::npos) break;
        start = hit + sep.size();
      }
      v = std::move(out);
      return true;
    }
    if (n == "join") {
      if (!v.is_array()) return true;
      std::string out;
      for (std::size_t k = 0; k < v.size(); ++k) {
        if (k > 0) out += f.args[0].s;
        if (!v[k].is_null()) out += text_of(v[k]);
        if (out.size() > max_bytes) {
          problem = "join: " + too_big(max_bytes);
          return false;
        }
      }
      v = std::move(out);
      return true;
    }
    if (n == "number" || n == "round") {
      if (v.is_null()) return true;
      auto num = as_number(v);
      if (!num) {
        problem = fmt::format("{}: {} that is not a number; left unchanged", n, type_of(v));
        return false;
      }
      v = n == "round" ? rounded(*num, f.args.empty() ? 0 : f.args[0].i) : std::move(*num);
      return true;
    }
    if (n == "date") return apply_date(f, v, max_bytes, problem);
    return apply_text(f, v, max_bytes, problem);
  } catch (const std::exception& e) {
    problem = fmt::format("{}: failed ({}); left unchanged", f.name, e.what());
    return false;
  }
}

}  // namespace zapd::templates::detail
