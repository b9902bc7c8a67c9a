// The scheduler's decisions on fixed times (what a (re)load does with missed slots, the latest
// missed slot, the run a slot makes) and its write against a real SQLite file.
#include <catch2/catch.hpp>

#include "zapd/schedule/scheduler.hpp"
#include "zapd/store/database.hpp"
#include "zapd/zaps/zaps.hpp"

using namespace zapd;
using json = nlohmann::json;

namespace {

constexpr std::int64_t k_t0 = 1'796'032'800'000;  // 2026-11-30T10:00:00Z

zaps::schedule_config every(std::int64_t seconds, bool last) {
  auto c = zaps::schedule_of(json{{"intervalSeconds", seconds}, {"catchUp", last ? "last" : "none"}});
  REQUIRE(c);
  return *c;
}

std::unique_ptr<store::database> fresh_db() {
  char tmpl[] = "/tmp/zapd-schedule-XXXXXX";
  store::database::options o;
  o.path = std::string(mkdtemp(tmpl)) + "/zapd.db";
  auto db = store::database::open(o);
  REQUIRE(db.ok());
  return std::move(db).value();
}

}  // namespace

TEST_CASE("schedule plan: a new or edited zap starts from now, without catch-up") {
  auto none = every(60, false);
  auto p = schedule::plan_on_load(none, std::nullopt, 1, k_t0 + 30'000);
  CHECK(p.baseline == k_t0 + 30'000);
  CHECK(p.next == k_t0 + 60'000);
  CHECK_FALSE(p.fire_now);
  // Edited (another version) after a long downtime, with catchUp last: still no catch-up.
  auto last = every(60, true);
  p = schedule::plan_on_load(last, schedule::slot_state{1, k_t0 - 3'600'000, std::nullopt}, 2, k_t0 + 30'000);
  CHECK(p.baseline == k_t0 + 30'000);
  CHECK_FALSE(p.fire_now);
  CHECK_FALSE(p.missed);
  CHECK(p.next == k_t0 + 60'000);
}

TEST_CASE("schedule plan: nothing missed goes on with the next slot") {
  auto p = schedule::plan_on_load(every(60, true), schedule::slot_state{3, k_t0, k_t0}, 3, k_t0 + 59'000);
  CHECK_FALSE(p.baseline);
  CHECK_FALSE(p.fire_now);
  CHECK_FALSE(p.missed);
  CHECK(p.next == k_t0 + 60'000);
}

TEST_CASE("schedule plan: missed slots, catchUp none skips them, last fires the latest once") {
  const schedule::slot_state row{3, k_t0, k_t0};
  const std::int64_t now = k_t0 + 5 * 60'000 + 10'000;  // down for five slots
  auto skip = schedule::plan_on_load(every(60, false), row, 3, now);
  CHECK(skip.missed);
  CHECK_FALSE(skip.fire_now);
  CHECK(skip.next == k_t0 + 6 * 60'000);
  auto last = schedule::plan_on_load(every(60, true), row, 3, now);
  CHECK(last.missed);
  CHECK(last.fire_now == k_t0 + 5 * 60'000);
  CHECK(last.next == k_t0 + 6 * 60'000);
}

TEST_CASE("schedule plan: the latest slot in a window, cron and interval, bounded") {
  auto hourly = cron::schedule::parse_cron("0 * * * *");
  REQUIRE(hourly);
  CHECK(schedule::latest_slot(*hourly, k_t0 - 1, k_t0 + 3 * 3'600'000 + 5) == k_t0 + 3 * 3'600'000);
  CHECK(schedule::latest_slot(*hourly, k_t0, k_t0 + 3'599'999) == std::nullopt);
  // Once a year, missed years ago: found through the growing windows.
  auto yearly = cron::schedule::parse_cron("@yearly");
  REQUIRE(yearly);
  CHECK(schedule::latest_slot(*yearly, 0, k_t0) == 1'767'225'600'000);  // 2026-01-01
  // Every minute, down a year: the walk stays bounded and lands on the last minute.
  auto minutely = cron::schedule::parse_cron("* * * * *");
  REQUIRE(minutely);
  CHECK(schedule::latest_slot(*minutely, k_t0 - 366LL * 86'400'000, k_t0 + 59'999) == k_t0);
  auto sec = cron::schedule::every(7);
  REQUIRE(sec);
  CHECK(schedule::latest_slot(*sec, 0, 20'999) == 14'000);
  CHECK(schedule::latest_slot(*sec, 14'000, 20'999) == std::nullopt);
}

TEST_CASE("schedule: a slot's run carries {scheduledFor, firedAt} and the slot as dedup key") {
  schedule::slot_run s{"zap-1", "user-1", 4, 2, queue::lane::paid, k_t0, k_t0 + 12};
  auto r = schedule::make_run(s);
  CHECK(r.dedup_key == "schedule:2026-11-30T10:00:00Z");
  auto t = json::parse(r.trigger_json);
  CHECK(t["body"]["scheduledFor"] == "2026-11-30T10:00:00Z");
  CHECK(t["body"]["firedAt"] == "2026-11-30T10:00:00.012Z");
  CHECK(t["scheduledFor"] == t["body"]["scheduledFor"]);
  CHECK(r.zap_version == 4);
  CHECK(r.actions == 2);
  CHECK(r.lane == queue::lane::paid);
}

TEST_CASE("schedule: fire writes the run and the slot once, and disabled, edited or deleted zaps do not fire") {
  auto db = fresh_db();
  auto zap = db->writes().execute<zaps::zap_record>([](store::connection& c) {
    auto v = zaps::validate(json{{"availableTriggerId", "schedule"}, {"triggerMetadata", {{"intervalSeconds", 60}}},
                                 {"actions", json::array()}},
                            actions::catalog::builtin(), {}, {});
    REQUIRE(v);
    return zaps::create(c, "user-1", *v);
  });
  REQUIRE(zap);
  schedule::slot_run s{zap->id, "user-1", zap->version, 0, queue::lane::free, k_t0, k_t0 + 5};
  auto fire = [&](schedule::slot_run r) {
    auto out = db->writes().execute<schedule::fire_result>([r](store::connection& c) { return schedule::fire(c, nullptr, r); });
    REQUIRE(out);
    return *out;
  };
  CHECK(fire(s) == schedule::fire_result::fired);
  CHECK(fire(s) == schedule::fire_result::already_fired);  // same slot again (a restart)
  auto earlier = s;
  earlier.slot_ms -= 60'000;
  CHECK(fire(earlier) == schedule::fire_result::already_fired);
  auto later = s;
  later.slot_ms += 60'000;
  CHECK(fire(later) == schedule::fire_result::fired);
  auto states = db->reads().with([](store::connection& c) { return schedule::load_states(c); });
  REQUIRE(states);
  CHECK(states->at(zap->id).through_ms == k_t0 + 60'000);
  CHECK(states->at(zap->id).last_slot_ms == k_t0 + 60'000);
  auto runs = db->reads().with([](store::connection& c) {
    auto st = c.prepare("SELECT count(*), count(DISTINCT dedup_key) FROM runs");
    REQUIRE(st);
    REQUIRE(*st->step());
    return std::pair{st->int64(0), st->int64(1)};
  });
  CHECK(runs == std::pair<std::int64_t, std::int64_t>{2, 2});

  auto stale = later;
  stale.slot_ms += 60'000;
  stale.zap_version -= 1;
  CHECK(fire(stale) == schedule::fire_result::stale);
  auto off = db->writes().execute<zaps::zap_record>(
      [&](store::connection& c) { return zaps::patch(c, "user-1", zap->id, std::nullopt, false); });
  REQUIRE(off);
  auto disabled = stale;
  disabled.zap_version = off->version;
  CHECK(fire(disabled) == schedule::fire_result::disabled);
  auto gone = disabled;
  gone.user_id = "someone-else";
  CHECK(fire(gone) == schedule::fire_result::gone);
  // Baselines never move through_ms backwards; rows of zaps no longer there are dropped.
  REQUIRE(db->writes().execute<bool>([&](store::connection& c) -> result<bool> {
    if (auto st = schedule::set_baseline(c, zap->id, 9, k_t0); !st) return std::move(st).err();
    return true;
  }));
  states = db->reads().with([](store::connection& c) { return schedule::load_states(c); });
  REQUIRE(states);
  CHECK(states->at(zap->id).through_ms == k_t0 + 60'000);
  CHECK(states->at(zap->id).zap_version == 9);
  REQUIRE(db->writes().execute<bool>([&](store::connection& c) -> result<bool> {
    if (auto st = schedule::drop_others(c, {}); !st) return std::move(st).err();
    return true;
  }));
  states = db->reads().with([](store::connection& c) { return schedule::load_states(c); });
  REQUIRE(states);
  CHECK(states->empty());
}
