#pragma once

#include <bitset>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "zapd/core/result.hpp"

namespace date {
class time_zone;
}

namespace zapd::cron {

/// The longest cron expression or time zone name accepted (bounds the parse work).
inline constexpr std::size_t k_max_expression = 200;
/// How far `next_after` looks for a cron slot. A leap day is at most 8 years away (2096 ->
/// 2104), so 10 years finds every slot an accepted expression has; nothing is searched beyond.
inline constexpr int k_search_years = 10;

/// When a schedule fires: a 5-field cron expression in an IANA time zone, or every N seconds.
/// Pure and immutable after `parse_*`; safe to share between threads.
///
/// Cron: `minute hour day-of-month month day-of-week`, each field `*`, a number, a name
/// (JAN-DEC, SUN-SAT, any case), a range `a-b`, a step `*/n`, `a-b/n` or `a/n` (a to the
/// field's end), or a comma list of those; day-of-week 0-7 (0 and 7 are Sunday). Macros:
/// @yearly/@annually, @monthly, @weekly, @daily/@midnight, @hourly. Day rule as Vixie cron:
/// when day-of-month and day-of-week are both restricted (neither starts with `*`) a day
/// matching EITHER fires; otherwise both must match (a `*` matches every day).
///
/// Time zones (DST), for local slots that a transition skips or repeats:
///   - spring forward: slots inside the gap (02:30 when 02:00 jumps to 03:00) fire once, at the
///     first valid instant after the gap (03:00 local); several slots in the gap fire once.
///   - fall back: a slot in the repeated hour (01:30 when 02:00 goes back to 01:00) fires
///     once, at its first occurrence; the second pass of that hour fires nothing.
///
/// Interval: every `seconds` on a grid anchored at the Unix epoch (slot = k * seconds), so a
/// restart keeps the same slots; the time zone plays no part.
class schedule {
 public:
  /// A cron expression in `tz` ("UTC" when empty). invalid_argument naming the field and the
  /// problem ("minute field: 61 is out of 0-59"), an unknown time zone, or a day that never
  /// occurs ("day-of-month 30-31 never occurs in FEB").
  static result<schedule> parse_cron(std::string_view expression, std::string_view tz = "UTC");
  /// Every `seconds` (>= 1), on the epoch grid. `tz` is checked and kept for display only.
  static result<schedule> every(std::int64_t seconds, std::string_view tz = "UTC");

  /// The first slot strictly after `after_ms` (Unix ms; slots are whole seconds), or nullopt
  /// when none lies within `k_search_years` (cannot happen for a parsed cron; kept as a bound).
  std::optional<std::int64_t> next_after(std::int64_t after_ms) const;

  /// The shortest time between two consecutive slots, in seconds, on the wall clock (a DST
  /// transition may bring two slots closer once a year). Cron: found by walking up to
  /// `probe` slots from 2000-01-01 UTC; its granularity makes it at least 60.
  std::int64_t min_gap_seconds(int probe = 2000) const;

  bool is_interval() const { return interval_s_ > 0; }
  std::int64_t interval_seconds() const { return interval_s_; }
  const std::string& timezone() const { return tz_name_; }
  /// The expression as given (cron), or empty.
  const std::string& expression() const { return expression_; }

 private:
  schedule() = default;
  bool day_matches(int dom, int dow) const;
  std::optional<std::int64_t> next_cron(std::int64_t after_ms) const;

  std::string expression_;
  std::string tz_name_ = "UTC";
  const date::time_zone* tz_ = nullptr;  // null: UTC (no lookup needed)
  std::int64_t interval_s_ = 0;
  std::bitset<60> minutes_;
  std::bitset<24> hours_;
  std::bitset<32> days_;    // 1..31
  std::bitset<13> months_;  // 1..12
  std::bitset<7> weekdays_; // 0..6, Sunday = 0
  bool dom_star_ = false;   // the field starts with `*` (Vixie's rule)
  bool dow_star_ = false;
};

/// Looks up an IANA time zone ("Europe/Paris", "UTC"); invalid_argument when unknown. The
/// returned pointer lives as long as the process (the system tzdata, loaded once); it is null
/// for UTC when the system has no tzdata (UTC needs none).
result<const date::time_zone*> find_zone(std::string_view name);

/// RFC 3339 UTC with seconds: "2026-11-30T10:00:00Z" (slots are whole seconds).
std::string rfc3339(std::int64_t unix_ms);

}  // namespace zapd::cron
