// The cron module: every syntax, the errors it names, next fire times across month and year
// ends, leap years, both DST transitions in Europe/Paris and America/New_York, intervals.
#include <sstream>
#include <string>
#include <vector>

#include <catch2/catch.hpp>
#include <date/date.h>

#include "zapd/cron/cron.hpp"

using zapd::cron::schedule;
using Catch::Matchers::Contains;

namespace {

std::int64_t at(const std::string& rfc3339) {
  std::istringstream in(rfc3339);
  date::sys_seconds tp;
  in >> date::parse("%Y-%m-%dT%H:%M:%SZ", tp);
  REQUIRE(!in.fail());
  return std::chrono::duration_cast<std::chrono::milliseconds>(tp.time_since_epoch()).count();
}

schedule cron(const std::string& expr, const std::string& tz = "UTC") {
  auto s = schedule::parse_cron(expr, tz);
  INFO(expr << " in " << tz << ": " << (s ? "" : s.err().message));
  REQUIRE(s);
  return *s;
}

// The next `n` fire times after `from`, as RFC 3339.
std::vector<std::string> fires(const schedule& s, const std::string& from, int n) {
  std::vector<std::string> out;
  std::int64_t t = at(from);
  for (int i = 0; i < n; ++i) {
    auto next = s.next_after(t);
    REQUIRE(next);
    REQUIRE(*next > t);
    out.push_back(zapd::cron::rfc3339(*next));
    t = *next;
  }
  return out;
}

std::string parse_error(const std::string& expr, const std::string& tz = "UTC") {
  auto s = schedule::parse_cron(expr, tz);
  INFO(expr);
  REQUIRE_FALSE(s);
  CHECK(s.err().code == zapd::errc::invalid_argument);
  return s.err().message;
}

using list = std::vector<std::string>;

}  // namespace

TEST_CASE("cron: numbers, lists, ranges and steps") {
  CHECK(fires(cron("*/5 * * * *"), "2026-11-30T10:02:00Z", 3) ==
        list{"2026-11-30T10:05:00Z", "2026-11-30T10:10:00Z", "2026-11-30T10:15:00Z"});
  CHECK(fires(cron("1-10/2 * * * *"), "2026-11-30T10:00:00Z", 6) ==
        list{"2026-11-30T10:01:00Z", "2026-11-30T10:03:00Z", "2026-11-30T10:05:00Z", "2026-11-30T10:07:00Z",
             "2026-11-30T10:09:00Z", "2026-11-30T11:01:00Z"});
  CHECK(fires(cron("5/20 * * * *"), "2026-11-30T10:00:00Z", 4) ==
        list{"2026-11-30T10:05:00Z", "2026-11-30T10:25:00Z", "2026-11-30T10:45:00Z", "2026-11-30T11:05:00Z"});
  CHECK(fires(cron("0,30 8,20 * * *"), "2026-11-30T08:00:00Z", 4) ==
        list{"2026-11-30T08:30:00Z", "2026-11-30T20:00:00Z", "2026-11-30T20:30:00Z", "2026-12-01T08:00:00Z"});
  CHECK(fires(cron("  15   3  *  *  *  "), "2026-11-30T00:00:00Z", 1) == list{"2026-11-30T03:15:00Z"});
  CHECK(fires(cron("* * * * *"), "2026-11-30T10:00:00Z", 2) == list{"2026-11-30T10:01:00Z", "2026-11-30T10:02:00Z"});
}

TEST_CASE("cron: a slot is strictly after the given instant, to the millisecond") {
  auto s = cron("* * * * *");
  CHECK(*s.next_after(at("2026-11-30T10:00:00Z")) == at("2026-11-30T10:01:00Z"));
  CHECK(*s.next_after(at("2026-11-30T10:00:00Z") - 1) == at("2026-11-30T10:00:00Z"));
  CHECK(*s.next_after(at("2026-11-30T10:00:59Z") + 999) == at("2026-11-30T10:01:00Z"));
}

TEST_CASE("cron: month and day names, any case, in ranges, and 7 is Sunday") {
  // 2026-11-30 is a Monday.
  CHECK(fires(cron("0 9 * * MON-FRI"), "2026-12-04T10:00:00Z", 2) ==
        list{"2026-12-07T09:00:00Z", "2026-12-08T09:00:00Z"});
  CHECK(fires(cron("0 9 * * mon,wed"), "2026-11-30T10:00:00Z", 2) == list{"2026-12-02T09:00:00Z", "2026-12-07T09:00:00Z"});
  CHECK(fires(cron("0 0 1 jan-Mar *"), "2026-11-30T00:00:00Z", 4) ==
        list{"2027-01-01T00:00:00Z", "2027-02-01T00:00:00Z", "2027-03-01T00:00:00Z", "2028-01-01T00:00:00Z"});
  CHECK(fires(cron("0 12 * * 7"), "2026-11-30T00:00:00Z", 1) == fires(cron("0 12 * * SUN"), "2026-11-30T00:00:00Z", 1));
  CHECK(fires(cron("0 12 * * 0"), "2026-11-30T00:00:00Z", 1) == list{"2026-12-06T12:00:00Z"});
  CHECK(fires(cron("0 0 * * 5-7"), "2026-11-30T00:00:00Z", 3) ==
        list{"2026-12-04T00:00:00Z", "2026-12-05T00:00:00Z", "2026-12-06T00:00:00Z"});
}

TEST_CASE("cron: macros") {
  const std::string from = "2026-11-30T10:00:00Z";
  CHECK(fires(cron("@hourly"), from, 1) == list{"2026-11-30T11:00:00Z"});
  CHECK(fires(cron("@daily"), from, 1) == list{"2026-12-01T00:00:00Z"});
  CHECK(fires(cron("@midnight"), from, 1) == list{"2026-12-01T00:00:00Z"});
  CHECK(fires(cron("@weekly"), from, 1) == list{"2026-12-06T00:00:00Z"});
  CHECK(fires(cron("@monthly"), from, 1) == list{"2026-12-01T00:00:00Z"});
  CHECK(fires(cron("@yearly"), from, 1) == list{"2027-01-01T00:00:00Z"});
  CHECK(fires(cron("@annually"), from, 1) == list{"2027-01-01T00:00:00Z"});
  CHECK_THAT(parse_error("@reboot"), Contains("unknown macro '@reboot'"));
}

TEST_CASE("cron: day-of-month and day-of-week, OR when both are restricted (Vixie)") {
  // Friday the 13th style: the 13th OR any Friday.
  CHECK(fires(cron("0 0 13 * FRI"), "2026-11-30T00:00:00Z", 4) ==
        list{"2026-12-04T00:00:00Z", "2026-12-11T00:00:00Z", "2026-12-13T00:00:00Z", "2026-12-18T00:00:00Z"});
  // A field starting with `*` is unrestricted: then both must match (odd days that are Mondays).
  CHECK(fires(cron("0 0 */2 * MON"), "2026-11-30T00:00:00Z", 2) == list{"2026-12-07T00:00:00Z", "2026-12-21T00:00:00Z"});
  CHECK(fires(cron("0 0 1 * *"), "2026-11-30T00:00:00Z", 1) == list{"2026-12-01T00:00:00Z"});
  // Feb 30 never occurs, but with a weekday the OR rule makes it fire on Mondays.
  CHECK(fires(cron("0 0 30 2 MON"), "2026-11-30T00:00:00Z", 1) == list{"2027-02-01T00:00:00Z"});
}

TEST_CASE("cron: errors name the field and the problem") {
  CHECK(parse_error("61 * * * *") == "minute field: 61 is out of 0-59");
  CHECK(parse_error("* 24 * * *") == "hour field: 24 is out of 0-23");
  CHECK(parse_error("* * 0 * *") == "day-of-month field: 0 is out of 1-31");
  CHECK(parse_error("* * * 13 *") == "month field: 13 is out of 1-12");
  CHECK(parse_error("* * * * 8") == "day-of-week field: 8 is out of 0-7");
  CHECK(parse_error("99999999999 * * * *") == "minute field: 99999999999 is out of 0-59");
  CHECK(parse_error("x * * * *") == "minute field: 'x' is not a number");
  CHECK(parse_error("* * * FOO *") == "month field: 'FOO' is not a number or a name (JAN-DEC)");
  CHECK(parse_error("* * * * MONDAY") == "day-of-week field: 'MONDAY' is not a number or a name (SUN-SAT)");
  CHECK(parse_error("*/0 * * * *") == "minute field: step 0 is out of 1-60");
  CHECK(parse_error("*/61 * * * *") == "minute field: step 61 is out of 1-60");
  CHECK(parse_error("*/x * * * *") == "minute field: step 'x' is not a number");
  CHECK_THAT(parse_error("10-5 * * * *"), Contains("minute field: range 10-5 is backwards"));
  CHECK(parse_error("1,,2 * * * *") == "minute field: empty item in '1,,2'");
  CHECK(parse_error("* * * *") == "expected 5 fields (minute hour day-of-month month day-of-week), got 4");
  CHECK(parse_error("* * * * * *") == "expected 5 fields (minute hour day-of-month month day-of-week), got 6");
  CHECK(parse_error("") == "expected 5 fields (minute hour day-of-month month day-of-week), got 0");
  CHECK_THAT(parse_error(std::string(201, '*')), Contains("longer than 200 characters"));
  CHECK_THAT(parse_error("1-\x01 * * * *"), Contains("'?' is not a number"));
}

TEST_CASE("cron: a day that never occurs is refused at parse time") {
  CHECK_THAT(parse_error("0 0 30 2 *"), Contains("day-of-month field: '30' never occurs in month field '2'"));
  CHECK_THAT(parse_error("0 0 31 APR,JUN,SEP,NOV *"), Contains("never occurs"));
  CHECK_THAT(parse_error("0 0 30-31 FEB *"), Contains("never occurs"));
  CHECK(schedule::parse_cron("0 0 29 2 *"));   // leap days occur
  CHECK(schedule::parse_cron("0 0 31 1-2 *"));  // January has a 31st
}

TEST_CASE("cron: time zones are IANA names from the system tzdata") {
  CHECK(parse_error("* * * * *", "Mars/Olympus") ==
        "unknown time zone 'Mars/Olympus' (use an IANA name such as Europe/Paris or UTC)");
  CHECK_THAT(parse_error("* * * * *", "../../etc/passwd"), Contains("is not an IANA time zone name"));
  CHECK_THAT(parse_error("* * * * *", "Europe/Paris\n"), Contains("is not an IANA time zone name"));
  CHECK(cron("0 9 * * *", "").timezone() == "UTC");
  // Tokyo has no DST: 09:00 JST is 00:00 UTC every day.
  CHECK(fires(cron("0 9 * * *", "Asia/Tokyo"), "2026-11-30T00:00:00Z", 2) ==
        list{"2026-12-01T00:00:00Z", "2026-12-02T00:00:00Z"});
  CHECK(fires(cron("0 9 * * *", "Europe/Paris"), "2026-11-30T00:00:00Z", 1) == list{"2026-11-30T08:00:00Z"});
}

TEST_CASE("cron: month and year ends") {
  CHECK(fires(cron("0 0 1 * *"), "2026-12-15T00:00:00Z", 2) == list{"2027-01-01T00:00:00Z", "2027-02-01T00:00:00Z"});
  CHECK(fires(cron("59 23 31 12 *"), "2026-12-31T23:59:00Z", 1) == list{"2027-12-31T23:59:00Z"});
  CHECK(fires(cron("0 0 31 * *"), "2026-01-31T00:00:00Z", 3) ==
        list{"2026-03-31T00:00:00Z", "2026-05-31T00:00:00Z", "2026-07-31T00:00:00Z"});
  CHECK(fires(cron("30 23 * * *"), "2026-12-31T23:30:00Z", 1) == list{"2027-01-01T23:30:00Z"});
  // New Year in Paris is 23:00 UTC the day before.
  CHECK(fires(cron("0 0 1 1 *", "Europe/Paris"), "2026-06-01T00:00:00Z", 1) == list{"2026-12-31T23:00:00Z"});
}

TEST_CASE("cron: leap years") {
  CHECK(fires(cron("0 12 29 2 *"), "2026-01-01T00:00:00Z", 2) == list{"2028-02-29T12:00:00Z", "2032-02-29T12:00:00Z"});
  // 2100 is not a leap year: the next leap day after 2096 is in 2104, eight years on.
  CHECK(fires(cron("0 12 29 2 *"), "2096-03-01T00:00:00Z", 1) == list{"2104-02-29T12:00:00Z"});
  CHECK(fires(cron("0 0 28-29 FEB *"), "2027-02-27T00:00:00Z", 3) ==
        list{"2027-02-28T00:00:00Z", "2028-02-28T00:00:00Z", "2028-02-29T00:00:00Z"});
}

// Europe/Paris 2026: 29 March 02:00 CET -> 03:00 CEST (01:00 UTC); 25 October 03:00 CEST ->
// 02:00 CET (01:00 UTC), so 02:00-02:59 happens twice.
TEST_CASE("cron: DST in Europe/Paris, spring forward and fall back") {
  SECTION("a 02:30 slot in the gap fires once, at 03:00 local") {
    CHECK(fires(cron("30 2 * * *", "Europe/Paris"), "2026-03-27T12:00:00Z", 3) ==
          list{"2026-03-28T01:30:00Z", "2026-03-29T01:00:00Z", "2026-03-30T00:30:00Z"});
  }
  SECTION("slots every 15 minutes in the gap collapse into one fire, then the next day") {
    CHECK(fires(cron("*/15 2 * * *", "Europe/Paris"), "2026-03-28T23:00:00Z", 2) ==
          list{"2026-03-29T01:00:00Z", "2026-03-30T00:00:00Z"});
  }
  SECTION("a 03:00 slot and gap slots on the same day fire once at 03:00") {
    CHECK(fires(cron("30 2,3 * * *", "Europe/Paris"), "2026-03-28T23:00:00Z", 2) ==
          list{"2026-03-29T01:00:00Z", "2026-03-29T01:30:00Z"});
  }
  SECTION("a 02:30 slot in the repeated hour fires once, at its first occurrence") {
    CHECK(fires(cron("30 2 * * *", "Europe/Paris"), "2026-10-24T12:00:00Z", 3) ==
          list{"2026-10-25T00:30:00Z", "2026-10-26T01:30:00Z", "2026-10-27T01:30:00Z"});
    // From inside the second pass of the hour: nothing more that day.
    CHECK(fires(cron("30 2 * * *", "Europe/Paris"), "2026-10-25T01:10:00Z", 1) == list{"2026-10-26T01:30:00Z"});
  }
  SECTION("hourly on the fall-back day: the repeated hour fires once") {
    CHECK(fires(cron("0 * * * *", "Europe/Paris"), "2026-10-24T23:30:00Z", 4) ==
          list{"2026-10-25T00:00:00Z", "2026-10-25T02:00:00Z", "2026-10-25T03:00:00Z", "2026-10-25T04:00:00Z"});
  }
}

// America/New_York 2026: 8 March 02:00 EST -> 03:00 EDT (07:00 UTC); 1 November 02:00 EDT ->
// 01:00 EST (06:00 UTC), so 01:00-01:59 happens twice.
TEST_CASE("cron: DST in America/New_York, spring forward and fall back") {
  SECTION("spring forward: 02:30 fires at 03:00 EDT") {
    CHECK(fires(cron("30 2 * * *", "America/New_York"), "2026-03-06T12:00:00Z", 3) ==
          list{"2026-03-07T07:30:00Z", "2026-03-08T07:00:00Z", "2026-03-09T06:30:00Z"});
  }
  SECTION("fall back: 01:30 fires once, at 01:30 EDT") {
    CHECK(fires(cron("30 1 * * *", "America/New_York"), "2026-10-31T12:00:00Z", 3) ==
          list{"2026-11-01T05:30:00Z", "2026-11-02T06:30:00Z", "2026-11-03T06:30:00Z"});
    // 06:10 UTC is 01:10 EST, the second pass: the 01:30 slot already fired at 05:30 UTC.
    CHECK(fires(cron("30 1 * * *", "America/New_York"), "2026-11-01T06:10:00Z", 1) == list{"2026-11-02T06:30:00Z"});
    // From just before the first pass it is the first pass.
    CHECK(fires(cron("30 1 * * *", "America/New_York"), "2026-11-01T05:29:00Z", 1) == list{"2026-11-01T05:30:00Z"});
  }
  SECTION("every minute across the fall-back hour: no instant fires twice, none goes backwards") {
    auto s = cron("* * * * *", "America/New_York");
    auto got = fires(s, "2026-11-01T05:58:00Z", 3);
    // 01:58, 01:59 EDT, then 01:00-01:59 EST are skipped: 02:00 EST is 07:00 UTC.
    CHECK(got == list{"2026-11-01T05:59:00Z", "2026-11-01T07:00:00Z", "2026-11-01T07:01:00Z"});
  }
}

TEST_CASE("intervalSeconds: slots on the epoch grid") {
  auto one = schedule::every(1);
  REQUIRE(one);
  CHECK(*one->next_after(1500) == 2000);
  CHECK(*one->next_after(2000) == 3000);
  CHECK(*one->next_after(-1) == 0);
  auto minute = schedule::every(60, "Europe/Paris");
  REQUIRE(minute);
  CHECK(minute->is_interval());
  CHECK(minute->timezone() == "Europe/Paris");
  CHECK(fires(*minute, "2026-11-30T10:00:30Z", 2) == list{"2026-11-30T10:01:00Z", "2026-11-30T10:02:00Z"});
  auto seven = schedule::every(7);
  REQUIRE(seven);
  CHECK(*seven->next_after(0) == 7000);
  CHECK(*seven->next_after(13999) == 14000);
  CHECK(seven->min_gap_seconds() == 7);
  CHECK(schedule::every(0).err().message == "intervalSeconds must be at least 1");
  CHECK_FALSE(schedule::every(60, "Nowhere/Town"));
}

TEST_CASE("cron: the shortest gap between slots") {
  CHECK(cron("* * * * *").min_gap_seconds() == 60);
  CHECK(cron("*/5 * * * *").min_gap_seconds() == 300);
  CHECK(cron("0 * * * *").min_gap_seconds() == 3600);
  CHECK(cron("0,1 * * * *").min_gap_seconds() == 60);
  CHECK(cron("55 */2 * * *").min_gap_seconds() == 7200);
  CHECK(cron("@daily").min_gap_seconds() == 86400);
  CHECK(cron("0 0 1 * *").min_gap_seconds() == 28 * 86400);
}
