// Crash test (CTest label `chaos`, issue #5): clients send webhooks as fast as they can and
// log every runId they got a 2xx for; zapd is SIGKILLed at a random moment and restarted;
// every logged runId must exist with its first step in the queue or the outbox.
// Rounds: ZAPD_CHAOS_ROUNDS (default 5).
#include <signal.h>

#include <atomic>
#include <cstdlib>
#include <mutex>
#include <random>
#include <thread>

#include <catch2/catch.hpp>

#include "api_helpers.hpp"
#include "db_view.hpp"
#include "zapd_process.hpp"

using namespace zapd::test;
using json = nlohmann::json;

namespace {

std::vector<std::string> args() { return serve_args({"hooks.free_zap_rate=0", "hooks.free_user_rate=0"}); }

struct verdict {
  std::int64_t runs = 0;
  std::int64_t lost = 0;        // 2xx answered, run missing or without its first step
  std::int64_t orphaned = 0;    // runs (with actions) with neither job nor outbox row
};

verdict check(const std::string& db_path, const std::vector<std::string>& acknowledged) {
  db_view db(db_path);
  verdict v;
  v.runs = db.count("SELECT count(*) FROM runs");
  for (const auto& id : acknowledged) {
    bool ok = db.count("SELECT count(*) FROM runs WHERE id = ?1", id) == 1 &&
              db.count("SELECT (SELECT count(*) FROM jobs WHERE run_id = ?1) + (SELECT count(*) FROM outbox WHERE run_id = ?1)",
                       id) == 1;
    if (!ok) ++v.lost;
  }
  v.orphaned = db.count(
      "SELECT count(*) FROM runs r WHERE NOT EXISTS (SELECT 1 FROM jobs j WHERE j.run_id = r.id) "
      "AND NOT EXISTS (SELECT 1 FROM outbox o WHERE o.run_id = r.id)");
  return v;
}

}  // namespace

TEST_CASE("chaos: SIGKILL during a webhook flood loses no acknowledged run") {
  const std::string data = temp_dir("zapd-chaos") + "/data";
  account who;
  std::string hook;
  {
    zapd_process z(args(), {}, data);
    who = sign_up(z, "chaos@example.com");
    auto r = z.request("POST", "/api/v1/zap",
                       R"({"availableTriggerId":"webhook","triggerMetadata":{},"actions":[{"availableActionId":"http","actionMetadata":{"url":"https://example.com/x"}}]})",
                       bearer(who.token));
    REQUIRE(r.status == 200);
    hook = "/hooks/catch/" + who.user_id + "/" + r.json()["zapId"].get<std::string>();
    REQUIRE(z.terminate(SIGTERM) == 0);
  }

  std::mt19937 rng(std::random_device{}());
  std::vector<std::string> acknowledged;  // every runId a client got a 200 for, all rounds
  for (int round = 1; round <= chaos_rounds(); ++round) {
    zapd_process z(args(), {}, data);
    std::atomic<bool> stop{false};
    std::mutex mu;
    std::vector<std::thread> clients;
    std::atomic<int> ok{0};
    for (int t = 0; t < 16; ++t)
      clients.emplace_back([&] {
        while (!stop) {
          try {
            auto r = z.request("POST", hook, R"({"event":"chaos","n":1})");
            if (r.status == 200) {
              ++ok;
              std::lock_guard lk(mu);
              acknowledged.push_back(r.json()["runId"]);
            }
          } catch (const std::exception&) {
            return;  // the server is gone
          }
        }
      });
    std::this_thread::sleep_for(std::chrono::milliseconds(std::uniform_int_distribution<int>(200, 1200)(rng)));
    REQUIRE(z.terminate(SIGKILL) == 128 + SIGKILL);
    stop = true;
    for (auto& c : clients) c.join();

    auto v = check(data + "/zapd.db", acknowledged);
    WARN("round " << round << ": " << ok << " acknowledged this round, " << acknowledged.size() << " in all, " << v.runs
                  << " runs on disk");
    CHECK(ok > 0);
    CHECK(v.lost == 0);
    CHECK(v.orphaned == 0);
    CHECK(v.runs >= static_cast<std::int64_t>(acknowledged.size()));
  }

  // A last clean start: the relay moves whatever the kills left in the outbox.
  zapd_process z(args(), {}, data);
  db_view db(data + "/zapd.db");
  std::int64_t left = -1;
  for (int i = 0; i < 200 && left != 0; ++i) {
    left = db.count("SELECT count(*) FROM outbox");
    if (left != 0) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  CHECK(left == 0);
  CHECK(check(data + "/zapd.db", acknowledged).lost == 0);
}
