// The Kafka fleet through real processes (issue 15): a primary `zapd serve` with
// queue.backend = kafka, `zapd worker` processes, librdkafka's mock cluster in its own
// process (tests/support/kafka_mock.hpp) and a real HTTP sink.
#include <sys/stat.h>

#include <atomic>
#include <chrono>
#include <fstream>
#include <map>
#include <regex>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "api_helpers.hpp"
#include "http_sink.hpp"
#include "kafka_mock.hpp"
#include "zapd_process.hpp"

using namespace zapd::test;
using json = nlohmann::json;
using namespace std::chrono_literals;

namespace {

// Runs per scenario: ZAPD_FLEET_RUNS, default `fallback` (a quarter under AddressSanitizer,
// where every process of the fleet runs several times slower).
int runs_or(int fallback) {
  if (const char* v = std::getenv("ZAPD_FLEET_RUNS"); v && *v) return std::max(1, std::atoi(v));
#if defined(__SANITIZE_ADDRESS__)
  return fallback / 4;
#else
  return fallback;
#endif
}

std::string write_key(const std::string& dir, char fill) {
  std::string path = dir + "/other.key";
  std::ofstream(path) << std::string(64, fill) << "\n";
  chmod(path.c_str(), 0600);
  return path;
}

kafka_mock_options three_brokers() {
  return kafka_mock_options{3, {{"zapd.steps.free", 4, 3}, {"zapd.steps.paid", 4, 3}, {"zapd.results", 4, 3}}};
}

struct fleet {
  kafka_mock mock;
  http_sink sink;
  std::string data_dir = temp_dir("zapd-fleet") + "/data";
  std::unique_ptr<zapd_process> primary;
  std::vector<std::unique_ptr<worker_process>> workers;

  std::vector<std::pair<std::string, std::string>> env() const {
    return {{"ZAPD_QUEUE_BACKEND", "kafka"},
            {"ZAPD_KAFKA_BROKERS", mock.bootstrap()},
            {"ZAPD_KAFKA_CREATE_TOPICS", "off"},
            // The mock answers a fetch only when its wait ends: keep each hop short.
            {"ZAPD_KAFKA_PROPERTIES", "fetch.wait.max.ms=10"}};
  }

  explicit fleet(kafka_mock_options cluster = three_brokers(), std::vector<std::string> primary_args = {})
      : mock(std::move(cluster)) {
    // Step 1's answer is read by step 2.
    sink.on("/one", sink_reply::json(R"({"n":42})"));
    start_primary(std::move(primary_args));
  }

  void start_primary(std::vector<std::string> extra = {}) {
    auto args = serve_args({"worker.enabled=off", "hooks.free_zap_rate=0", "hooks.free_user_rate=0", "worker.retry_base_ms=50",
                            "outbox.poll_ms=200"});
    for (auto& e : extra) args.push_back(e);
    primary.reset();  // one primary per data dir
    primary = std::make_unique<zapd_process>(args, env(), data_dir);
  }

  std::unique_ptr<worker_process> make_worker(const std::string& key_file = "", bool wait = true,
                                              std::vector<std::string> extra = {}) {
    std::vector<std::string> args = {"--set", "actions.http.allow=127.0.0.1", "--set",
                                     "kafka.fleet_key_file=" + (key_file.empty() ? data_dir + "/fleet.key" : key_file)};
    for (auto& e : extra) args.push_back(std::move(e));
    return std::make_unique<worker_process>(args, env(), wait);
  }
  void add_worker() { workers.push_back(make_worker()); }
};

// A two-step zap: step 2 reads step 1's output and a secret.
std::string two_step_zap(const zapd_process& z, const account& a, const http_sink& sink) {
  REQUIRE(z.request("POST", "/api/v1/secrets", json{{"name", "TOKEN"}, {"value", "s3cr3t-value"}}.dump(), bearer(a.token)).status ==
          200);
  return make_zap(z, a,
                  json::array({http_step(sink.url("/one"), {{"body", "{{trigger.body.i}}"}}),
                               http_step(sink.url("/two"), {{"body", "{{steps.1.body.n}}:{{secrets.TOKEN}}:{{trigger.body.i}}"}})}));
}

// Every run succeeded; each step reached the sink for every run, any repeat with the same
// Idempotency-Key as the first (a redelivered step), and step 2 saw step 1's output and the secret.
void check_all_delivered(const zapd_process& z, const account& a, const http_sink& sink, const std::vector<std::string>& runs,
                         std::chrono::seconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  std::size_t done = 0;
  std::map<std::string, std::string> status;
  for (const auto& id : runs) {
    for (;;) {
      std::string s = get_run(z, a, id)["status"];
      if (s == "succeeded" || s == "failed" || std::chrono::steady_clock::now() > deadline) {
        status[id] = s;
        break;
      }
      std::this_thread::sleep_for(50ms);
    }
    if (status[id] == "succeeded") ++done;
  }
  INFO("runs succeeded: " << done << " of " << runs.size());
  CHECK(done == runs.size());
  std::map<std::string, std::set<std::string>> keys;  // path -> Idempotency-Keys
  std::size_t without_key = 0, wrong_body = 0;
  std::string sample;
  for (const auto& r : sink.requests()) {
    const std::string k = r.header("Idempotency-Key");
    if (k.empty()) ++without_key;
    keys[r.path()].insert(k);
    if (r.path() == "/two") {
      if (r.body.find("42:") != 0 || r.body.find("s3cr3t-value") == std::string::npos) {
        ++wrong_body;
        sample = r.body;
      }
    }
  }
  CHECK(without_key == 0);
  INFO("a body step 2 sent: " << sample);
  CHECK(wrong_body == 0);
  std::set<std::string> want1, want2;
  for (const auto& id : runs) {
    want1.insert(id + ":1");
    want2.insert(id + ":2");
  }
  CHECK(keys["/one"] == want1);
  CHECK(keys["/two"] == want2);
}

std::vector<std::string> fire_many(const zapd_process& z, const account& a, const std::string& zap, int n) {
  std::vector<std::string> ids;
  for (int i = 0; i < n; ++i) ids.push_back(fire(z, a, zap, json{{"i", i}}.dump()));
  return ids;
}

}  // namespace

TEST_CASE("fleet: a primary and two workers run every step of 2,000 two-step runs, secrets sealed", "[kafka]") {
  fleet f;
  f.add_worker();
  f.add_worker();
  auto a = sign_up(*f.primary, "fleet@example.com");
  auto zap = two_step_zap(*f.primary, a, f.sink);
  auto runs = fire_many(*f.primary, a, zap, runs_or(2000));
  check_all_delivered(*f.primary, a, f.sink, runs, 120s);

  // The history shows who ran each step and never the secret's value.
  auto run = get_run(*f.primary, a, runs.front());
  REQUIRE(run["steps"].size() == 2);
  CHECK(run["steps"][1]["input"]["body"].get<std::string>().find("********") != std::string::npos);
  CHECK(run.dump().find("s3cr3t-value") == std::string::npos);
  // Each step record says which worker ran it (host:pid of a `zapd worker`).
  std::set<std::string> ran_by;
  for (const auto& id : runs) {
    const json r = get_run(*f.primary, a, id);
    for (const auto& st : r["steps"])
      if (st["worker"].is_string()) ran_by.insert(st["worker"].get<std::string>());
  }
  CHECK(ran_by.size() == 2);
  // Both workers took part (4 partitions per topic split between them).
  auto metrics = f.primary->request("GET", "/metrics").body;
  CHECK(metrics.find("zapd_fleet_results_total{outcome=\"succeeded\"} " + std::to_string(2 * runs.size())) != std::string::npos);
  for (auto& w : f.workers) CHECK(w->log().find("kafka.assigned") != std::string::npos);
  // Nothing in clear on the broker: the messages are sealed (checked on a step message body).
  CHECK(f.primary->log().find("s3cr3t-value") == std::string::npos);
}

TEST_CASE("fleet: kill -9 of a worker mid-flight three times loses no acknowledged run", "[kafka]") {
  fleet f;
  f.sink.on("/one", sink_reply::json(R"({"n":42})").after(20ms));  // keep steps in flight
  f.add_worker();
  f.add_worker();
  auto a = sign_up(*f.primary, "kill@example.com");
  auto zap = two_step_zap(*f.primary, a, f.sink);
  const int per_round = runs_or(2000) / 8 + 50;
  std::vector<std::string> runs;
  for (int round = 0; round < 3; ++round) {
    auto more = fire_many(*f.primary, a, zap, per_round);
    runs.insert(runs.end(), more.begin(), more.end());
    std::this_thread::sleep_for(300ms);
    REQUIRE(f.workers[0]->terminate(9) == 128 + 9);
    f.workers.erase(f.workers.begin());
    f.add_worker();  // a new member joins: the group rebalances again
  }
  check_all_delivered(*f.primary, a, f.sink, runs, 120s);
}

TEST_CASE("fleet: a worker with another fleet key refuses work and exits 2, the others finish every run", "[kafka]") {
  fleet f;
  f.add_worker();
  auto dir = temp_dir("zapd-fleet-key");
  auto wrong = f.make_worker(write_key(dir, 'b'));
  auto a = sign_up(*f.primary, "key@example.com");
  auto zap = two_step_zap(*f.primary, a, f.sink);
  std::this_thread::sleep_for(4s);  // both members hold partitions
  auto runs = fire_many(*f.primary, a, zap, 200);
  const int wrong_exit = wrong->wait_exit_for(60s);
  INFO("the refusing worker's log: " << wrong->log());
  CHECK(wrong_exit == 2);
  CHECK(wrong->log().find("fleet key mismatch") != std::string::npos);
  check_all_delivered(*f.primary, a, f.sink, runs, 120s);
}

TEST_CASE("fleet: kill -9 of the primary under load, then a restart, loses nothing and leaves nothing stuck", "[kafka]") {
  fleet f;
  f.add_worker();
  f.add_worker();
  auto a = sign_up(*f.primary, "primary@example.com");
  auto zap = two_step_zap(*f.primary, a, f.sink);
  auto runs = fire_many(*f.primary, a, zap, 300);
  REQUIRE(f.primary->terminate(9) == 128 + 9);
  f.start_primary();
  auto more = fire_many(*f.primary, a, zap, 100);
  runs.insert(runs.end(), more.begin(), more.end());
  check_all_delivered(*f.primary, a, f.sink, runs, 120s);
}

TEST_CASE("fleet: zapd worker refuses to start without a fleet key or the kafka backend", "[kafka]") {
  auto r = run_zapd({"--set", "queue.backend=kafka", "--set", "kafka.brokers=127.0.0.1:1", "worker"});
  CHECK(r.exit_code == 2);
  CHECK(r.err.find("kafka.fleet_key_file") != std::string::npos);
  auto r2 = run_zapd({"worker"});
  CHECK(r2.exit_code == 2);
  CHECK(r2.err.find("queue.backend") != std::string::npos);
  auto r3 = run_zapd({"--set", "queue.backend=kafka", "--set", "kafka.brokers=127.0.0.1:1", "--set",
                      "kafka.fleet_key_file=/nonexistent/fleet.key", "worker"});
  CHECK(r3.exit_code == 2);
  CHECK(r3.err.find("does not exist") != std::string::npos);
  // A malformed librdkafka property is named by its place, never echoed (it may be a password).
  auto r4 = run_zapd({"--set", "queue.backend=kafka", "--set", "kafka.brokers=127.0.0.1:1", "--set",
                      "kafka.properties=sasl.username=u;pa55word", "worker"});
  CHECK(r4.exit_code == 2);
  CHECK(r4.err.find("kafka.properties entry 2 is not name=value") != std::string::npos);
  CHECK(r4.err.find("pa55word") == std::string::npos);
}

TEST_CASE("fleet: a broker down for 8 s under load: webhooks keep getting 200, nothing is lost", "[kafka]") {
  fleet f;
  f.add_worker();
  f.add_worker();
  auto a = sign_up(*f.primary, "broker@example.com");
  auto zap = two_step_zap(*f.primary, a, f.sink);
  std::vector<std::string> runs;
  int refused = 0;
  const auto start = std::chrono::steady_clock::now();
  bool down = false, up = false;
  for (int i = 0; std::chrono::steady_clock::now() - start < 13s; ++i) {
    const auto t = std::chrono::steady_clock::now() - start;
    if (!down && t > 2s) {
      REQUIRE(f.mock.broker_down(1));  // leads some partitions of every topic: no failover in the mock
      down = true;
    }
    if (!up && t > 10s) {
      REQUIRE(f.mock.broker_up(1));
      up = true;
    }
    auto r = post_hook(*f.primary, a, zap, json{{"i", i}}.dump());
    if (r.status == 200) runs.push_back(r.json()["runId"]);
    else ++refused;
    std::this_thread::sleep_for(20ms);
  }
  INFO("accepted " << runs.size() << ", refused " << refused);
  CHECK(refused == 0);
  CHECK(runs.size() > 100);  // about 13 s at one webhook every 20 ms, fewer on a loaded box
  check_all_delivered(*f.primary, a, f.sink, runs, 120s);
}

TEST_CASE("fleet: brokers down past outbox.max_depth: 503 with Retry-After, then every accepted run completes", "[kafka]") {
  fleet f;
  f.start_primary({"--set", "outbox.max_depth=40"});
  f.add_worker();
  auto a = sign_up(*f.primary, "outage@example.com");
  auto zap = two_step_zap(*f.primary, a, f.sink);
  auto first = fire_many(*f.primary, a, zap, 5);  // the fleet works before the outage
  REQUIRE(f.sink.wait_for(10, 30s));
  REQUIRE(f.mock.broker_down(-1));
  std::vector<std::string> runs = first;
  http_reply refusal;
  for (int i = 0; i < 2000 && refusal.status == 0; ++i) {
    auto r = post_hook(*f.primary, a, zap, json{{"i", i}}.dump());
    if (r.status == 200) runs.push_back(r.json()["runId"]);
    else refusal = r;
    std::this_thread::sleep_for(5ms);
  }
  INFO(refusal.body);
  REQUIRE(refusal.status == 503);
  CHECK(refusal.header("retry-after") == "5");
  CHECK(refusal.json()["error"]["code"] == "overloaded");
  CHECK(runs.size() >= 40);
  auto metrics = f.primary->request("GET", "/metrics").body;
  CHECK(metrics.find("zapd_outbox_depth 0") == std::string::npos);
  CHECK(f.primary->log().find("outbox.backlog_full") != std::string::npos);

  REQUIRE(f.mock.broker_up(-1));
  check_all_delivered(*f.primary, a, f.sink, runs, 120s);
  // Ingestion answers 200 again once the backlog is gone.
  std::this_thread::sleep_for(1s);
  auto after = fire_many(*f.primary, a, zap, 3);
  CHECK(after.size() == 3);
}

TEST_CASE("fleet: a third worker joining mid-load (a rebalance) loses nothing and takes partitions", "[kafka]") {
  fleet f;
  f.sink.on("/one", sink_reply::json(R"({"n":42})").after(10ms));
  f.add_worker();
  f.add_worker();
  auto a = sign_up(*f.primary, "join@example.com");
  auto zap = two_step_zap(*f.primary, a, f.sink);
  auto runs = fire_many(*f.primary, a, zap, 300);
  f.add_worker();  // joins while those run
  auto more = fire_many(*f.primary, a, zap, 300);
  runs.insert(runs.end(), more.begin(), more.end());
  check_all_delivered(*f.primary, a, f.sink, runs, 120s);
  // The newcomer was given partitions (4 per lane topic across 3 members) and ran steps.
  auto deadline = std::chrono::steady_clock::now() + 20s;
  while (f.workers[2]->log().find("kafka.assigned") == std::string::npos && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(100ms);
  CHECK(f.workers[2]->log().find("kafka.assigned") != std::string::npos);
}

TEST_CASE("fleet: the primary decides retries and delays, and a worker stopped by SIGTERM exits 0", "[kafka]") {
  fleet f;
  std::atomic<int> flaky{0};
  f.sink.on("/flaky", [&flaky](const sink_request&) {
    return ++flaky == 1 ? sink_reply::status(503) : sink_reply::json(R"({"ok":true})");
  });
  f.workers.push_back(f.make_worker("", true, {"--set", "worker.listen=127.0.0.1:0"}));
  auto a = sign_up(*f.primary, "later@example.com");
  auto zap = make_zap(*f.primary, a,
                      json::array({http_step(f.sink.url("/flaky")),
                                   {{"availableActionId", "delay"}, {"actionMetadata", {{"for", "2s"}}}},
                                   http_step(f.sink.url("/after"))}));
  const auto fired = std::chrono::steady_clock::now();
  auto id = fire(*f.primary, a, zap);
  // The delay is held by the primary (an outbox row due later), not by a sleeping worker.
  json run;
  for (auto deadline = fired + 30s; std::chrono::steady_clock::now() < deadline;) {
    run = get_run(*f.primary, a, id);
    if (run["status"] == "waiting" || run["status"] == "succeeded") break;
    std::this_thread::sleep_for(20ms);
  }
  CHECK(run["status"] == "waiting");
  run = wait_final(*f.primary, a, id, 60s);
  INFO(run.dump(2));
  REQUIRE(run["status"] == "succeeded");
  CHECK(run["steps"][0]["attempts"] == 2);  // 503 then 200: a retry the primary scheduled
  CHECK(std::chrono::steady_clock::now() - fired >= 2s);
  REQUIRE(f.sink.wait_for(3));
  CHECK(f.sink.requests().back().path() == "/after");
  // worker.listen: health and metrics of the worker process.
  std::smatch m;
  const std::string wlog = f.workers[0]->log();
  REQUIRE(std::regex_search(wlog, m, std::regex(R"(worker\.listening addr=127\.0\.0\.1:(\d+))")));
  const auto port = static_cast<std::uint16_t>(std::stoi(m[1]));
  CHECK(http_request(port, "GET", "/healthz").status == 200);
  CHECK(http_request(port, "GET", "/readyz").status == 200);
  auto wm = http_request(port, "GET", "/metrics").body;
  CHECK(wm.find("zapd_fleet_steps_executed_total{outcome=\"succeeded\"} 3") != std::string::npos);
  CHECK(wm.find("zapd_fleet_steps_executed_total{outcome=\"retry\"} 1") != std::string::npos);
  CHECK(wm.find("zapd_kafka_connected{client=\"worker\"} 1") != std::string::npos);
  CHECK(f.workers[0]->terminate(15) == 0);
  CHECK(f.workers[0]->log().find("worker.stopped") != std::string::npos);
}

TEST_CASE("fleet: with worker.enabled on the primary is a worker of the fleet too", "[kafka]") {
  fleet f;
  f.start_primary({"--set", "worker.enabled=on", "--set", "actions.http.allow=127.0.0.1"});
  auto a = sign_up(*f.primary, "solo@example.com");
  auto zap = two_step_zap(*f.primary, a, f.sink);
  auto runs = fire_many(*f.primary, a, zap, 100);
  check_all_delivered(*f.primary, a, f.sink, runs, 60s);
  auto run = get_run(*f.primary, a, runs.front());
  CHECK(run["steps"][0]["worker"].get<std::string>().find(":" + std::to_string(f.primary->pid())) != std::string::npos);
  CHECK(f.primary->request("GET", "/metrics").body.find("zapd_fleet_steps_executed_total{outcome=\"succeeded\"} 200") !=
        std::string::npos);
}

TEST_CASE("fleet: a step too large for a Kafka message fails saying so, and the runs behind it go on", "[kafka]") {
  fleet f;
  f.add_worker();
  auto a = sign_up(*f.primary, "large@example.com");
  auto zap = make_zap(*f.primary, a, json::array({http_step(f.sink.url("/big"), {{"body", "{{trigger.body.blob}}"}})}));
  // ~700 KB rendered twice (config and the recorded input) and sealed: over the 1 MB limit.
  auto big = fire(*f.primary, a, zap, json{{"blob", std::string(700 * 1024, 'x')}}.dump());
  auto small = fire_many(*f.primary, a, zap, 5);
  auto run = wait_final(*f.primary, a, big, 60s);
  CHECK(run["status"] == "failed");
  CHECK(run["error"].get<std::string>().find("larger than the Kafka message size limit") != std::string::npos);
  for (const auto& id : small) CHECK(wait_final(*f.primary, a, id, 60s)["status"] == "succeeded");
}

TEST_CASE("fleet: steps whose messages the brokers dropped are published again after kafka.republish_after_ms", "[kafka]") {
  // The mock keeps at most 5 MiB per partition and drops the oldest messages beyond that, as
  // topic retention does: 24 steps of about 400 KB each on one partition, published before any
  // worker runs, leave only the newest ones. The outbox keeps every published step until its
  // attempt is recorded, and publishes the others again once their lease passes.
  fleet f(kafka_mock_options{1, {{"zapd.steps.free", 1, 1}, {"zapd.steps.paid", 1, 1}, {"zapd.results", 1, 1}}},
          {"--set", "kafka.republish_after_ms=4000"});
  auto a = sign_up(*f.primary, "lost@example.com");
  auto zap = make_zap(*f.primary, a, json::array({http_step(f.sink.url("/big"), {{"body", "{{trigger.body.blob}}"}})}));
  std::vector<std::string> runs;
  for (int i = 0; i < 24; ++i)
    runs.push_back(fire(*f.primary, a, zap, json{{"i", i}, {"blob", std::string(150 * 1024, static_cast<char>('a' + i % 26))}}.dump()));
  const auto deadline = std::chrono::steady_clock::now() + 30s;
  // Every step delivered to the brokers and its row moved to outbox_published (the move
  // commits after the delivery reports, so wait for the rows, not the counter).
  while (metric_value(*f.primary, "zapd_outbox_in_flight") < 24 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(50ms);
  CHECK(metric_value(*f.primary, "zapd_fleet_steps_published_total") >= 24);
  REQUIRE(metric_value(*f.primary, "zapd_outbox_in_flight") == 24);
  f.add_worker();
  for (const auto& id : runs) CHECK(wait_final(*f.primary, a, id, 90s)["status"] == "succeeded");
  CHECK(metric_value(*f.primary, "zapd_outbox_rows_republished_total") >= 1);
  // Every step reached the sink under its own Idempotency-Key; nothing is left in flight.
  std::set<std::string> keys;
  for (const auto& r : f.sink.requests()) keys.insert(r.header("Idempotency-Key"));
  CHECK(keys.size() == runs.size());
  CHECK(metric_value(*f.primary, "zapd_outbox_in_flight") == 0);
}
