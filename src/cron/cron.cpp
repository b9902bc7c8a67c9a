#include "zapd/cron/cron.hpp"

#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>
#include <chrono>
#include <limits>
#include <vector>

#include <date/date.h>
#include <date/tz.h>
#include <fmt/format.h>

namespace zapd::cron {
namespace {

using namespace std::chrono;

constexpr std::array<const char*, 12> k_month_names = {"JAN", "FEB", "MAR", "APR", "MAY", "JUN",
                                                       "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"};
constexpr std::array<const char*, 7> k_day_names = {"SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"};
// Most days each month can have (February in a leap year).
constexpr std::array<int, 13> k_month_days = {0, 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
// Loop bound of one `next_after`; the walk needs a few thousand steps at most (see next_cron).
constexpr int k_max_steps = 200'000;

struct field_def {
  const char* name;
  int lo, hi;
  const char* const* names;  // 3-letter names for lo.. (months from 1, weekdays from 0), or null
  int name_count;
};

const field_def k_fields[5] = {
    {"minute", 0, 59, nullptr, 0},
    {"hour", 0, 23, nullptr, 0},
    {"day-of-month", 1, 31, nullptr, 0},
    {"month", 1, 12, k_month_names.data(), 12},
    {"day-of-week", 0, 7, k_day_names.data(), 7},
};

error bad(const field_def& f, std::string message) {
  return make_error(errc::invalid_argument, fmt::format("{} field: {}", f.name, message));
}

// Only printable ASCII of user input goes into messages.
std::string shown(std::string_view s) {
  std::string out;
  for (char c : s) out += (c >= 0x20 && c < 0x7f) ? c : '?';
  return out;
}

// One value of a field: a number or (month, day-of-week) a name. Range-checked.
result<int> parse_value(const field_def& f, std::string_view tok) {
  if (tok.empty()) return bad(f, "a value is missing");
  if (std::isdigit(static_cast<unsigned char>(tok[0]))) {
    int v = 0;
    auto [p, ec] = std::from_chars(tok.data(), tok.data() + tok.size(), v);
    if (ec == std::errc::result_out_of_range) return bad(f, fmt::format("{} is out of {}-{}", shown(tok), f.lo, f.hi));
    if (ec != std::errc{} || p != tok.data() + tok.size()) return bad(f, fmt::format("'{}' is not a number", shown(tok)));
    if (v < f.lo || v > f.hi) return bad(f, fmt::format("{} is out of {}-{}", v, f.lo, f.hi));
    return v;
  }
  if (f.names && tok.size() == 3) {
    for (int i = 0; i < f.name_count; ++i) {
      bool same = true;
      for (int k = 0; k < 3; ++k)
        same = same && std::toupper(static_cast<unsigned char>(tok[k])) == f.names[i][k];
      if (same) return f.lo == 1 ? i + 1 : i;
    }
  }
  if (f.names)
    return bad(f, fmt::format("'{}' is not a number or a name ({}-{})", shown(tok), f.names[0], f.names[f.name_count - 1]));
  return bad(f, fmt::format("'{}' is not a number", shown(tok)));
}

// A whole field (comma list of items) into the set of values it matches.
result<std::vector<bool>> parse_field(const field_def& f, std::string_view text) {
  std::vector<bool> set(static_cast<std::size_t>(f.hi + 1), false);
  std::size_t start = 0;
  while (start <= text.size()) {
    std::size_t comma = text.find(',', start);
    std::string_view item = text.substr(start, comma == std::string_view::npos ? std::string_view::npos : comma - start);
    if (item.empty()) return bad(f, fmt::format("empty item in '{}'", shown(text)));
    std::string_view base = item;
    int step = 1;
    bool stepped = false;
    if (auto slash = item.find('/'); slash != std::string_view::npos) {
      base = item.substr(0, slash);
      std::string_view st = item.substr(slash + 1);
      int n = 0;
      auto [p, ec] = std::from_chars(st.data(), st.data() + st.size(), n);
      if (st.empty() || ec != std::errc{} || p != st.data() + st.size())
        return bad(f, fmt::format("step '{}' is not a number", shown(st)));
      const int span = f.hi - f.lo + (f.hi == 7 ? 0 : 1);  // day-of-week 7 is Sunday again
      if (n < 1 || n > span) return bad(f, fmt::format("step {} is out of 1-{}", n, span));
      step = n;
      stepped = true;
    }
    int lo = 0, hi = 0;
    if (base == "*") {
      lo = f.lo;
      hi = f.hi == 7 ? 6 : f.hi;
    } else if (auto dash = base.find('-'); dash != std::string_view::npos) {
      auto a = parse_value(f, base.substr(0, dash));
      if (!a) return std::move(a).err();
      auto b = parse_value(f, base.substr(dash + 1));
      if (!b) return std::move(b).err();
      if (*a > *b) return bad(f, fmt::format("range {} is backwards (write the smaller value first)", shown(base)));
      lo = *a;
      hi = *b;
    } else {
      auto a = parse_value(f, base);
      if (!a) return std::move(a).err();
      lo = *a;
      hi = stepped ? f.hi : *a;  // `a/n`: from a to the field's end
    }
    for (int v = lo; v <= hi; v += step) set[static_cast<std::size_t>(v)] = true;
    if (comma == std::string_view::npos) break;
    start = comma + 1;
  }
  return set;
}

std::string_view macro(std::string_view e) {
  if (e == "@yearly" || e == "@annually") return "0 0 1 1 *";
  if (e == "@monthly") return "0 0 1 * *";
  if (e == "@weekly") return "0 0 * * 0";
  if (e == "@daily" || e == "@midnight") return "0 0 * * *";
  if (e == "@hourly") return "0 * * * *";
  return {};
}

std::int64_t to_ms(sys_seconds s) { return duration_cast<milliseconds>(s.time_since_epoch()).count(); }

}  // namespace

result<const date::time_zone*> find_zone(std::string_view name) {
  if (name.empty() || name.size() > k_max_expression)
    return make_error(errc::invalid_argument, fmt::format("time zone must be 1..{} characters", k_max_expression));
  const bool plain = std::all_of(name.begin(), name.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '/' || c == '_' || c == '-' || c == '+';
  });
  if (!plain || name.find("..") != std::string_view::npos || name.front() == '/')
    return make_error(errc::invalid_argument, fmt::format("'{}' is not an IANA time zone name", shown(name)));
  try {
    return date::locate_zone(name);
  } catch (const std::exception&) {
    // UTC needs no tzdata: a system without the tzdata package still runs UTC schedules.
    if (name == "UTC" || name == "Etc/UTC") return static_cast<const date::time_zone*>(nullptr);
    return make_error(errc::invalid_argument,
                      fmt::format("unknown time zone '{}' (use an IANA name such as Europe/Paris or UTC)", shown(name)));
  }
}

std::string rfc3339(std::int64_t unix_ms) {
  auto s = floor<seconds>(sys_time<milliseconds>(milliseconds(unix_ms)));
  return date::format("%Y-%m-%dT%H:%M:%SZ", s);
}

result<schedule> schedule::parse_cron(std::string_view expression, std::string_view tz) {
  schedule s;
  if (expression.size() > k_max_expression)
    return make_error(errc::invalid_argument, fmt::format("the expression is longer than {} characters", k_max_expression));
  while (!expression.empty() && std::isspace(static_cast<unsigned char>(expression.front()))) expression.remove_prefix(1);
  while (!expression.empty() && std::isspace(static_cast<unsigned char>(expression.back()))) expression.remove_suffix(1);
  s.expression_ = std::string(expression);
  std::string_view text = expression;
  if (text.starts_with('@')) {
    text = macro(expression);
    if (text.empty())
      return make_error(errc::invalid_argument,
                        fmt::format("unknown macro '{}' (use @yearly, @annually, @monthly, @weekly, @daily, @midnight or @hourly)",
                                    shown(expression)));
  }
  std::vector<std::string_view> parts;
  for (std::size_t i = 0; i < text.size();) {
    while (i < text.size() && std::isspace(static_cast<unsigned char>(text[i]))) ++i;
    std::size_t j = i;
    while (j < text.size() && !std::isspace(static_cast<unsigned char>(text[j]))) ++j;
    if (j > i) parts.push_back(text.substr(i, j - i));
    i = j;
  }
  if (parts.size() != 5)
    return make_error(errc::invalid_argument,
                      fmt::format("expected 5 fields (minute hour day-of-month month day-of-week), got {}", parts.size()));
  std::vector<bool> sets[5];
  for (int i = 0; i < 5; ++i) {
    auto set = parse_field(k_fields[i], parts[static_cast<std::size_t>(i)]);
    if (!set) return std::move(set).err();
    sets[i] = std::move(*set);
  }
  for (int v = 0; v < 60; ++v) s.minutes_[v] = sets[0][v];
  for (int v = 0; v < 24; ++v) s.hours_[v] = sets[1][v];
  for (int v = 1; v <= 31; ++v) s.days_[v] = sets[2][v];
  for (int v = 1; v <= 12; ++v) s.months_[v] = sets[3][v];
  for (int v = 0; v <= 6; ++v) s.weekdays_[v] = sets[4][v];
  if (sets[4][7]) s.weekdays_[0] = true;  // 7 is Sunday
  s.dom_star_ = parts[2].starts_with('*');
  s.dow_star_ = parts[4].starts_with('*');

  // Only day-of-month decides the day (day-of-week is `*`): some chosen month must have a
  // chosen day, else nothing ever fires ("0 0 30 2 *").
  if (!s.dom_star_ && s.dow_star_) {
    bool occurs = false;
    for (int m = 1; m <= 12 && !occurs; ++m)
      for (int d = 1; d <= k_month_days[m] && !occurs; ++d) occurs = s.months_[m] && s.days_[d];
    if (!occurs)
      return make_error(errc::invalid_argument,
                        fmt::format("day-of-month field: '{}' never occurs in month field '{}' (February has at most 29 days; "
                                    "April, June, September and November 30)",
                                    shown(parts[2]), shown(parts[3])));
  }
  auto zone = find_zone(tz.empty() ? "UTC" : tz);
  if (!zone) return std::move(zone).err();
  s.tz_name_ = std::string(tz.empty() ? "UTC" : tz);
  s.tz_ = *zone;
  return s;
}

result<schedule> schedule::every(std::int64_t seconds, std::string_view tz) {
  if (seconds < 1) return make_error(errc::invalid_argument, "intervalSeconds must be at least 1");
  auto zone = find_zone(tz.empty() ? "UTC" : tz);
  if (!zone) return std::move(zone).err();
  schedule s;
  s.interval_s_ = seconds;
  s.tz_name_ = std::string(tz.empty() ? "UTC" : tz);
  s.tz_ = *zone;
  return s;
}

bool schedule::day_matches(int dom, int dow) const {
  const bool d = days_[static_cast<std::size_t>(dom)];
  const bool w = weekdays_[static_cast<std::size_t>(dow)];
  if (dom_star_ || dow_star_) return d && w;  // a `*` field matches every day
  return d || w;                              // both restricted: either (Vixie cron)
}

std::optional<std::int64_t> schedule::next_after(std::int64_t after_ms) const {
  if (interval_s_ > 0) {
    const std::int64_t step = interval_s_ * 1000;
    std::int64_t k = after_ms / step;
    if (after_ms < 0 && after_ms % step != 0) --k;  // floor
    return (k + 1) * step;
  }
  return next_cron(after_ms);
}

// Walks local (wall-clock) minutes forward, jumping over months, days, hours and minutes that
// cannot match, and maps each matching local minute to an instant in the zone. The map never
// goes backwards (a gap maps to its end, a repeated hour to its first pass), so the first
// candidate whose instant lies after `after_ms` is the answer. Steps: at most ~120 month jumps,
// ~3,700 day steps in k_search_years, and per matching day 24 hour jumps and 60 minute steps
// (a repeated hour may map up to 60 candidates to instants already past).
std::optional<std::int64_t> schedule::next_cron(std::int64_t after_ms) const {
  const auto after = floor<seconds>(sys_time<milliseconds>(milliseconds(after_ms)));
  const date::local_seconds local_after =
      tz_ ? tz_->to_local(after) : date::local_seconds(after.time_since_epoch());
  // A slot at `after`'s own local minute is not after it (slots are whole minutes).
  date::local_time<minutes> m = floor<minutes>(local_after) + minutes(1);
  const date::local_days limit = floor<date::days>(m) + date::days(366 * k_search_years + 2);
  for (int i = 0; i < k_max_steps; ++i) {
    const date::local_days d = floor<date::days>(m);
    if (d > limit) return std::nullopt;
    const date::year_month_day ymd(d);
    const int month = static_cast<int>(static_cast<unsigned>(ymd.month()));
    if (!months_[static_cast<std::size_t>(month)]) {
      const auto ym = date::year_month(ymd.year(), ymd.month()) + date::months(1);
      m = date::local_days(ym / 1);
      continue;
    }
    const int dom = static_cast<int>(static_cast<unsigned>(ymd.day()));
    if (!day_matches(dom, static_cast<int>(date::weekday(d).c_encoding()))) {
      m = d + date::days(1);
      continue;
    }
    const auto since_midnight = m - d;
    const int h = static_cast<int>(duration_cast<hours>(since_midnight).count());
    const int mi = static_cast<int>((since_midnight - hours(h)).count());
    if (!hours_[static_cast<std::size_t>(h)]) {
      int h2 = h + 1;
      while (h2 < 24 && !hours_[static_cast<std::size_t>(h2)]) ++h2;
      m = h2 < 24 ? d + hours(h2) : d + date::days(1);
      continue;
    }
    if (!minutes_[static_cast<std::size_t>(mi)]) {
      int m2 = mi + 1;
      while (m2 < 60 && !minutes_[static_cast<std::size_t>(m2)]) ++m2;
      m = m2 < 60 ? d + hours(h) + minutes(m2) : d + hours(h + 1);
      continue;
    }
    // A matching local minute: its instant in the zone.
    const date::local_seconds ls = m;
    sys_seconds at(ls.time_since_epoch());  // UTC
    if (tz_) {
      const auto info = tz_->get_info(ls);
      switch (info.result) {
        case date::local_info::unique:
        case date::local_info::ambiguous:  // fall back: the first pass of the repeated hour
          at = sys_seconds(ls.time_since_epoch()) - info.first.offset;
          break;
        case date::local_info::nonexistent:  // spring forward: the first instant after the gap
          at = info.second.begin;
          break;
      }
    }
    if (at > after) return to_ms(at);
    m += minutes(1);
  }
  return std::nullopt;
}

std::int64_t schedule::min_gap_seconds(int probe) const {
  if (interval_s_ > 0) return interval_s_;
  schedule wall = *this;
  wall.tz_ = nullptr;  // the wall-clock pattern, without DST
  std::int64_t best = std::numeric_limits<std::int64_t>::max();
  auto prev = wall.next_after(to_ms(sys_seconds(date::sys_days(date::year(2000) / 1 / 1))));
  for (int i = 0; prev && i < probe && best > 60; ++i) {
    auto next = wall.next_after(*prev);
    if (!next) break;
    best = std::min(best, (*next - *prev) / 1000);
    prev = next;
  }
  return best == std::numeric_limits<std::int64_t>::max() ? 366LL * 86400 : best;
}

}  // namespace zapd::cron
