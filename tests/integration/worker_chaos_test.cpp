// Crash test for execution (CTest label `chaos`, issue #6): webhooks into a two-step zap whose
// HTTP actions call a sink; zapd is SIGKILLed during processing and restarted, several times.
// Every accepted run must reach a final state (leases of the killed process expire and are
// claimed again); duplicate deliveries seen by the sink (same Idempotency-Key) are counted.
// Rounds: ZAPD_CHAOS_ROUNDS (default 5).
#include <signal.h>

#include <cstdlib>
#include <map>
#include <random>
#include <thread>

#include <catch2/catch.hpp>

#include "api_helpers.hpp"
#include "http_sink.hpp"
#include "db_view.hpp"
#include "zapd_process.hpp"

using namespace zapd::test;
using json = nlohmann::json;
using namespace std::chrono_literals;

namespace {

std::vector<std::string> args() {
  return serve_args({"actions.http.allow=127.0.0.1", "queue.lease_ms=5000", "worker.retry_base_ms=50", "hooks.free_zap_rate=0",
                     "hooks.free_user_rate=0", "outbox.poll_ms=200"});
}

std::map<std::string, std::int64_t> statuses(const std::string& db) {
  db_view v(db);
  auto st = v.raw().prepare("SELECT status, count(*) FROM runs GROUP BY status");
  REQUIRE(st.ok());
  std::map<std::string, std::int64_t> out;
  while (*st->step()) out[st->text(0)] = st->int64(1);
  return out;
}

}  // namespace

TEST_CASE("chaos: SIGKILL while steps execute, every accepted run still finishes") {
  http_sink sink;
  sink.on("/", sink_reply::json(R"({"id":1})").after(20ms));
  const std::string data = temp_dir("zapd-worker-chaos") + "/data";
  account who;
  std::string hook;
  {
    zapd_process z(args(), {}, data);
    who = sign_up(z, "chaos@example.com");
    json zap = {{"availableTriggerId", "webhook"},
                {"triggerMetadata", json::object()},
                {"actions", json::array({json{{"availableActionId", "http"}, {"actionMetadata", {{"url", sink.url("/one")}}}},
                                         json{{"availableActionId", "http"},
                                              {"actionMetadata", {{"url", sink.url("/two/{{steps.1.body.id}}")}}}}})}};
    auto r = z.request("POST", "/api/v1/zap", zap.dump(), bearer(who.token));
    REQUIRE(r.status == 200);
    hook = "/hooks/catch/" + who.user_id + "/" + r.json()["zapId"].get<std::string>();
    REQUIRE(z.terminate(SIGTERM) == 0);
  }

  std::mt19937 rng(std::random_device{}());
  std::vector<std::string> accepted;
  for (int round = 1; round <= chaos_rounds(); ++round) {
    zapd_process z(args(), {}, data);
    for (int i = 0; i < 150; ++i) {
      auto r = z.request("POST", hook, R"({"n":1})");
      REQUIRE(r.status == 200);
      accepted.push_back(r.json()["runId"]);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(std::uniform_int_distribution<int>(50, 600)(rng)));
    REQUIRE(z.terminate(SIGKILL) == 128 + SIGKILL);
    auto s = statuses(data + "/zapd.db");
    WARN("round " << round << ": killed with " << s["succeeded"] << " succeeded, " << s["running"] << " running, "
                  << s["queued"] << " queued");
  }

  // A last start runs everything left: expired leases are claimed again.
  zapd_process z(args(), {}, data);
  auto deadline = std::chrono::steady_clock::now() + 90s;
  std::map<std::string, std::int64_t> s;
  while (std::chrono::steady_clock::now() < deadline) {
    s = statuses(data + "/zapd.db");
    if (s["succeeded"] == static_cast<std::int64_t>(accepted.size())) break;
    std::this_thread::sleep_for(100ms);
  }
  CHECK(s["succeeded"] == static_cast<std::int64_t>(accepted.size()));
  CHECK(s["failed"] == 0);

  std::map<std::string, int> seen;  // Idempotency-Key -> deliveries
  for (const auto& r : sink.requests()) ++seen[r.header("Idempotency-Key")];
  std::size_t duplicates = 0;
  for (const auto& [key, n] : seen) duplicates += static_cast<std::size_t>(n - 1);
  WARN(accepted.size() << " runs, " << seen.size() << " distinct steps delivered, " << duplicates
                       << " duplicate deliveries (same Idempotency-Key) after " << chaos_rounds() << " kills");
  CHECK(seen.size() == accepted.size() * 2);  // every step of every run reached the sink
}
