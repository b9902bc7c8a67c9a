// The schedule trigger through the real binary: slots fire once each (also across SIGKILL),
// catchUp last/none after downtime, disabling and deleting stop it, the preview endpoint, and
// save-time validation.
#include <signal.h>

#include <algorithm>
#include <chrono>
#include <ctime>
#include <iomanip>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <catch2/catch.hpp>

#include "api_helpers.hpp"
#include "db_view.hpp"
#include "http_sink.hpp"
#include "zapd_process.hpp"

using namespace zapd::test;
using json = nlohmann::json;
using namespace std::chrono_literals;

namespace {

std::vector<std::string> fast_args(std::initializer_list<const char*> more = {}) {
  std::vector<std::string> a = serve_args({"actions.http.allow=127.0.0.1", "schedule.min_interval_seconds=1", "outbox.poll_ms=200"});
  for (const char* s : more) {
    a.push_back("--set");
    a.push_back(s);
  }
  return a;
}

json schedule_zap(json trigger, json actions = json::array(), const std::string& name = "every second") {
  return {{"name", name}, {"availableTriggerId", "schedule"}, {"triggerMetadata", std::move(trigger)}, {"actions", std::move(actions)}};
}

std::string create(const zapd_process& z, const account& a, const json& body) {
  auto r = z.request("POST", "/api/v1/zap", body.dump(), bearer(a.token));
  INFO(r.body);
  REQUIRE(r.status == 200);
  CHECK(r.json()["webhookUrl"].is_null());
  return r.json()["zapId"];
}

std::int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

// "2026-11-30T10:00:01Z" -> Unix ms (the slots' form: whole seconds, UTC).
std::int64_t slot_ms(const std::string& s) {
  std::tm tm{};
  std::istringstream in(s);
  in >> std::get_time(&tm, "%Y-%m-%dT%H:%M:%SZ");
  REQUIRE(!in.fail());
  REQUIRE(s.size() == 20);
  return static_cast<std::int64_t>(timegm(&tm)) * 1000;
}

struct slot_row {
  std::string run_id;
  std::string dedup_key;
  std::int64_t scheduled_ms = 0;
  std::string fired_at;
};

// Every run of `zap` in the database, by slot order.
std::vector<slot_row> slots_of(const std::string& data, const std::string& zap) {
  db_view v(data + "/zapd.db");
  auto st = v.raw().prepare("SELECT id, dedup_key, \"trigger\" FROM runs WHERE zap_id = ?1");
  REQUIRE(st.ok());
  st->bind_all(zap);
  std::vector<slot_row> out;
  while (*st->step()) {
    auto t = json::parse(st->text(2));
    REQUIRE(t["body"]["scheduledFor"] == t["scheduledFor"]);
    out.push_back({st->text(0), st->text(1), slot_ms(t["scheduledFor"]), t["firedAt"]});
  }
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.scheduled_ms < b.scheduled_ms; });
  return out;
}

void wait_runs(const std::string& data, const std::string& zap, std::size_t n, std::chrono::milliseconds timeout = 15s) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline && slots_of(data, zap).size() < n) std::this_thread::sleep_for(50ms);
  REQUIRE(slots_of(data, zap).size() >= n);
}

// No slot has two runs: dedup keys and scheduledFor values distinct, each key naming its slot.
void check_once_per_slot(const std::vector<slot_row>& rows) {
  std::set<std::string> keys;
  std::set<std::int64_t> slots;
  for (const auto& r : rows) {
    CHECK(r.scheduled_ms % 1000 == 0);
    CHECK(keys.insert(r.dedup_key).second);
    CHECK(slots.insert(r.scheduled_ms).second);
    CHECK(r.dedup_key.starts_with("schedule:"));
  }
}

}  // namespace

TEST_CASE("schedule: intervalSeconds=1 fires once per slot, also across a SIGKILL and a restart") {
  http_sink sink;
  sink.on("/", sink_reply::json(R"({"ok":true})"));
  const std::string data = temp_dir("zapd-schedule") + "/data";
  account who;
  std::string zap;
  {
    zapd_process z(fast_args(), {}, data);
    who = sign_up(z, "sched@example.com");
    json step = {{"availableActionId", "http"},
                 {"actionMetadata", {{"url", sink.url("/tick")}, {"method", "POST"},
                                     {"body", R"({"slot":"{{scheduledFor}}","fired":"{{firedAt}}"})"}}}};
    zap = create(z, who, schedule_zap({{"intervalSeconds", 1}}, json::array({step})));
    auto got = z.request("GET", "/api/v1/zap/" + zap, "", bearer(who.token)).json()["zap"];
    CHECK(got["webhookUrl"].is_null());
    REQUIRE(got["nextFireAt"].is_string());
    CHECK(slot_ms(got["nextFireAt"]) % 1000 == 0);
    wait_runs(data, zap, 3);
    REQUIRE(z.terminate(SIGKILL) == 128 + SIGKILL);
  }
  const auto before = slots_of(data, zap);
  {
    zapd_process z(fast_args(), {}, data);
    wait_runs(data, zap, before.size() + 3);
    REQUIRE(z.terminate(SIGKILL) == 128 + SIGKILL);
  }
  {
    // A third start to see the runs through (the sink hears every step).
    zapd_process z(fast_args(), {}, data);
    wait_runs(data, zap, slots_of(data, zap).size() + 1);
    REQUIRE(z.terminate(SIGTERM) == 0);
  }
  const auto rows = slots_of(data, zap);
  REQUIRE(rows.size() >= before.size() + 4);
  check_once_per_slot(rows);
  // Slots follow on the grid; only a restart leaves a gap.
  int gaps = 0;
  for (std::size_t i = 1; i < rows.size(); ++i) gaps += rows[i].scheduled_ms - rows[i - 1].scheduled_ms != 1000;
  CHECK(gaps <= 2);
  // The step saw the slot through a bare template path, like a webhook's body field.
  REQUIRE(sink.wait_for(before.size(), 10s));
  std::set<std::string> sent;
  for (const auto& r : sink.requests()) sent.insert(json::parse(r.body)["slot"].get<std::string>());
  std::size_t matched = 0;
  for (const auto& r : rows) {
    char buf[32];
    std::time_t t = r.scheduled_ms / 1000;
    std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&t));
    matched += sent.count(buf);
  }
  CHECK(matched >= before.size());
  CHECK(matched <= rows.size());
}

TEST_CASE("schedule: after 5 s down, catchUp=last fires once for the missed slots and catchUp=none fires none") {
  const std::string data = temp_dir("zapd-schedule-catchup") + "/data";
  account who;
  std::string last, none;
  {
    zapd_process z(fast_args(), {}, data);
    who = sign_up(z, "catchup@example.com");
    last = create(z, who, schedule_zap({{"intervalSeconds", 1}, {"catchUp", "last"}}, json::array(), "last"));
    none = create(z, who, schedule_zap({{"intervalSeconds", 1}, {"catchUp", "none"}}, json::array(), "none"));
    wait_runs(data, last, 2);
    wait_runs(data, none, 2);
    REQUIRE(z.terminate(SIGTERM) == 0);
  }
  const auto last_before = slots_of(data, last);
  const auto none_before = slots_of(data, none);
  std::this_thread::sleep_for(5s);
  {
    zapd_process z(fast_args(), {}, data);
    wait_runs(data, none, none_before.size() + 2);
    wait_runs(data, last, last_before.size() + 2);
    REQUIRE(z.terminate(SIGTERM) == 0);
  }
  const auto last_rows = slots_of(data, last);
  const auto none_rows = slots_of(data, none);
  check_once_per_slot(last_rows);
  check_once_per_slot(none_rows);
  std::vector<std::int64_t> last_after, none_after;
  for (const auto& r : last_rows)
    if (r.scheduled_ms > last_before.back().scheduled_ms) last_after.push_back(r.scheduled_ms);
  for (const auto& r : none_rows)
    if (r.scheduled_ms > none_before.back().scheduled_ms) none_after.push_back(r.scheduled_ms);
  REQUIRE(!last_after.empty());
  REQUIRE(!none_after.empty());
  // Both were loaded by the same pass at the same time. `none` starts at the first slot after
  // the restart, at least 5 s after its last one; `last` made exactly one run for a missed
  // slot: the latest, the one right before `none`'s first.
  CHECK(none_after.front() - none_before.back().scheduled_ms >= 5000);
  CHECK(last_after.front() == none_after.front() - 1000);
  std::size_t missed_runs = 0;
  for (auto s : last_after) missed_runs += s < none_after.front();
  CHECK(missed_runs == 1);
}

TEST_CASE("schedule: disabling stops it, deleting stops it, and its webhook URL answers 409") {
  const std::string data = temp_dir("zapd-schedule-disable") + "/data";
  zapd_process z(fast_args(), {}, data);
  auto who = sign_up(z, "disable@example.com");
  auto zap = create(z, who, schedule_zap({{"intervalSeconds", 1}}));
  wait_runs(data, zap, 2);

  auto hook = z.request("POST", "/hooks/catch/" + who.user_id + "/" + zap, "{}", {{"Content-Type", "application/json"}});
  CHECK(hook.status == 409);
  CHECK(hook.json()["error"]["code"] == "invalid_state");
  CHECK_THAT(hook.json()["error"]["message"].get<std::string>(), Catch::Contains("schedule"));

  auto off = z.request("PATCH", "/api/v1/zap/" + zap, R"({"enabled":false})", bearer(who.token));
  REQUIRE(off.status == 200);
  CHECK(off.json()["zap"]["nextFireAt"].is_null());
  const auto n = slots_of(data, zap).size();
  std::this_thread::sleep_for(2500ms);
  CHECK(slots_of(data, zap).size() == n);

  auto on = z.request("PATCH", "/api/v1/zap/" + zap, R"({"enabled":true})", bearer(who.token));
  REQUIRE(on.status == 200);
  CHECK(on.json()["zap"]["nextFireAt"].is_string());
  wait_runs(data, zap, n + 2);

  REQUIRE(z.request("DELETE", "/api/v1/zap/" + zap, "", bearer(who.token)).status == 200);
  const auto m = slots_of(data, zap).size();
  std::this_thread::sleep_for(2500ms);
  CHECK(slots_of(data, zap).size() == m);
  check_once_per_slot(slots_of(data, zap));
  db_view v(data + "/zapd.db");
  CHECK(v.count("SELECT count(*) FROM schedules WHERE zap_id = ?1", zap) == 0);
}

TEST_CASE("schedule: the preview endpoint lists the next five times or names the bad field") {
  zapd_process z(serve_args({}));
  auto who = sign_up(z, "preview@example.com");
  auto preview = [&](const json& body) { return z.request("POST", "/api/v1/schedule/preview", body.dump(), bearer(who.token)); };

  auto ok = preview({{"cron", "*/15 * * * *"}, {"timezone", "Europe/Paris"}});
  REQUIRE(ok.status == 200);
  auto next = ok.json()["next"];
  REQUIRE(next.size() == 5);
  std::int64_t prev = now_ms();
  for (const auto& t : next) {
    auto ms = slot_ms(t.get<std::string>());
    CHECK(ms > prev);
    CHECK(ms % (15 * 60'000) == 0);
    prev = ms;
  }
  auto every = preview({{"intervalSeconds", 3600}});
  REQUIRE(every.status == 200);
  CHECK(slot_ms(every.json()["next"][1]) - slot_ms(every.json()["next"][0]) == 3'600'000);

  struct bad {
    json body;
    std::string path;
    std::string message;
  };
  for (const auto& b : std::vector<bad>{
           {{{"cron", "61 * * * *"}}, "cron", "minute field: 61 is out of 0-59"},
           {{{"cron", "0 0 30 2 *"}}, "cron", "never occurs"},
           {{{"cron", "* * * * *"}, {"timezone", "Mars/Olympus"}}, "timezone", "unknown time zone 'Mars/Olympus'"},
           {{{"intervalSeconds", 30}}, "intervalSeconds", "schedule.min_interval_seconds"},
           {{{"intervalSeconds", 0}}, "intervalSeconds", "between 1 and"},
           {{{"cron", "* * * * *"}, {"intervalSeconds", 60}}, "intervalSeconds", "not both"},
           {json::object(), "cron", "required"},
           {{{"cron", 5}}, "cron", "string"},
       }) {
    auto r = preview(b.body);
    INFO(b.body.dump() << " -> " << r.body);
    REQUIRE(r.status == 400);
    auto err = r.json()["error"];
    CHECK(err["code"] == "invalid_argument");
    REQUIRE(err["details"].size() >= 1);
    CHECK(err["details"][0]["path"] == b.path);
    CHECK_THAT(err["details"][0]["message"].get<std::string>(), Catch::Contains(b.message));
  }
  CHECK(z.request("POST", "/api/v1/schedule/preview", R"({"cron":"* * * * *"})").status == 401);
  CHECK(z.request("POST", "/api/v1/schedule/preview", "not json", bearer(who.token)).status == 400);
}

TEST_CASE("schedule: save-time validation names the field, and the catalog lists the trigger") {
  zapd_process z(serve_args({"schedule.min_interval_seconds=120"}));
  auto who = sign_up(z, "validate@example.com");
  struct bad {
    json trigger;
    std::string path;
    std::string message;
  };
  for (const auto& b : std::vector<bad>{
           {json::object(), "triggerMetadata.cron", "required"},
           {{{"cron", "* * * * *"}, {"intervalSeconds", 300}}, "triggerMetadata.intervalSeconds", "not both"},
           {{{"cron", "*/5 * * * * *"}}, "triggerMetadata.cron", "expected 5 fields"},
           {{{"cron", "0 25 * * *"}}, "triggerMetadata.cron", "hour field: 25 is out of 0-23"},
           {{{"cron", "@reboot"}}, "triggerMetadata.cron", "unknown macro"},
           {{{"cron", "@hourly"}, {"timezone", "Europe/Pariss"}}, "triggerMetadata.timezone", "unknown time zone"},
           {{{"cron", "* * * * *"}}, "triggerMetadata.cron", "fires every 60 s"},
           {{{"intervalSeconds", 60}}, "triggerMetadata.intervalSeconds", "schedule.min_interval_seconds"},
           {{{"intervalSeconds", 1.5}}, "triggerMetadata.intervalSeconds", ""},
           {{{"intervalSeconds", 40'000'000}}, "triggerMetadata.intervalSeconds", "between 1 and 31536000"},
           {{{"cron", "@daily"}, {"catchUp", "sometimes"}}, "triggerMetadata.catchUp", ""},
           {{{"cron", "{{secrets.X}}"}}, "triggerMetadata.cron", "templates"},
       }) {
    auto r = z.request("POST", "/api/v1/zap", schedule_zap(b.trigger).dump(), bearer(who.token));
    INFO(b.trigger.dump() << " -> " << r.body);
    REQUIRE(r.status == 400);
    auto details = r.json()["error"]["details"];
    bool found = false;
    for (const auto& d : details)
      found = found || (d["path"] == b.path && d["message"].get<std::string>().find(b.message) != std::string::npos);
    CHECK(found);
  }
  auto ok = z.request("POST", "/api/v1/zap",
                      schedule_zap({{"cron", "30 2 * * *"}, {"timezone", "Europe/Paris"}, {"catchUp", "last"}}).dump(),
                      bearer(who.token));
  REQUIRE(ok.status == 200);
  CHECK(ok.json()["webhookUrl"].is_null());
  CHECK(ok.json()["zap"]["webhookUrl"].is_null());
  CHECK(ok.json()["zap"]["nextFireAt"].is_string());
  auto list = z.request("GET", "/api/v1/zap", "", bearer(who.token));
  REQUIRE(list.status == 200);
  CHECK(list.json()["zaps"][0]["nextFireAt"] == ok.json()["zap"]["nextFireAt"]);
  // A webhook zap keeps its URL and has no next fire time.
  auto hook = make_zap(z, who, json::array());
  auto h = z.request("GET", "/api/v1/zap/" + hook, "", bearer(who.token)).json()["zap"];
  CHECK(h["webhookUrl"].is_string());
  CHECK(h["nextFireAt"].is_null());

  auto cat = z.request("GET", "/api/v1/trigger/available").json()["availableTriggers"];
  json schedule;
  for (const auto& t : cat)
    if (t["id"] == "schedule") schedule = t;
  REQUIRE(schedule.is_object());
  std::set<std::string> fields;
  for (const auto& f : schedule["configSchema"]["fields"]) fields.insert(f["name"].get<std::string>());
  CHECK(fields == std::set<std::string>{"cron", "intervalSeconds", "timezone", "catchUp"});
}
