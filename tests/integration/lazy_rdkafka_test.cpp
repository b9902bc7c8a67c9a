// librdkafka is loaded on first use (src/kafka/rdkafka_lazy.cpp, docs/BENCHMARKS.md
// "Footprint"): through the real binary, a server on the embedded queue has neither librdkafka
// nor the TLS/SASL libraries it needs mapped; a primary and a worker of a Kafka fleet (against
// librdkafka's mock cluster, tests/support/kafka_mock.hpp) load it; and when it cannot be
// loaded, `zapd worker` and `zapd serve` with queue.backend = kafka exit 1 naming it.
#include <sys/stat.h>

#include <string>

#include <catch2/catch.hpp>

#include "api_helpers.hpp"
#include "kafka_mock.hpp"
#include "proc_maps.hpp"
#include "zapd_process.hpp"

using namespace zapd::test;
using json = nlohmann::json;

namespace {

std::size_t count(const std::string& text, const std::string& what) {
  std::size_t n = 0;
  for (auto at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

json step(const std::string& kind, json meta) { return {{"availableActionId", kind}, {"actionMetadata", std::move(meta)}}; }

std::vector<std::pair<std::string, std::string>> kafka_env(const std::string& brokers) {
  return {{"ZAPD_QUEUE_BACKEND", "kafka"}, {"ZAPD_KAFKA_BROKERS", brokers}, {"ZAPD_KAFKA_CREATE_TOPICS", "off"}};
}

/// A directory whose librdkafka.so.1 is an empty file: with it first in LD_LIBRARY_PATH,
/// dlopen("librdkafka.so.1") fails ("file too short").
std::string broken_library_dir() {
  std::string dir = temp_dir("zapd-no-rdkafka");
  std::ofstream(dir + "/librdkafka.so.1").flush();
  return dir;
}

std::string write_key(const std::string& dir) {
  std::string path = dir + "/fleet.key";
  std::ofstream(path) << std::string(64, 'a') << "\n";
  chmod(path.c_str(), 0600);
  return path;
}

}  // namespace

TEST_CASE("lazy librdkafka: a server on the embedded queue never maps it", "[kafka]") {
  zapd_process z(serve_args({"hooks.free_zap_rate=0", "hooks.free_user_rate=0"}));
  auto a = sign_up(z, "lazy-kafka@example.com");
  auto zap = make_zap(z, a, json::array({step("formatter", {{"fields", {{"who", "{{comment.name}}"}}}})}));
  auto run = wait_final(z, a, fire(z, a, zap));
  {
    INFO(run.dump(2));
    REQUIRE(run["status"] == "succeeded");
  }
  INFO(libraries(z.pid()));
  CHECK(mappings(z.pid(), "/librdkafka").empty());
  // What librdkafka alone pulled into every process (libcurl, which needs them too, is lazy).
  CHECK(mappings(z.pid(), "/libcrypto").empty());
  CHECK(mappings(z.pid(), "/libssl").empty());
  CHECK(mappings(z.pid(), "/libsasl2").empty());
  CHECK(z.terminate() == 0);
}

TEST_CASE("lazy librdkafka: a fleet's primary and worker load it", "[kafka]") {
  kafka_mock mock(kafka_mock_options{1, {{"zapd.steps.free", 1, 1}, {"zapd.steps.paid", 1, 1}, {"zapd.results", 1, 1}}});
  auto env = kafka_env(mock.bootstrap());
  std::string data_dir = temp_dir("zapd-lazy-kafka") + "/data";
  zapd_process primary(serve_args({"worker.enabled=off"}), env, data_dir);
  {
    INFO(libraries(primary.pid()));
    CHECK_FALSE(mappings(primary.pid(), "/librdkafka").empty());
  }
  worker_process worker({"--set", "kafka.fleet_key_file=" + data_dir + "/fleet.key"}, env);
  {
    INFO(libraries(worker.pid()));
    CHECK_FALSE(mappings(worker.pid(), "/librdkafka").empty());
  }
  CHECK(worker.terminate() == 0);
  CHECK(primary.terminate() == 0);
}

TEST_CASE("lazy librdkafka: without a loadable library, worker and kafka serve exit 1 naming it", "[kafka]") {
  std::string dir = broken_library_dir();
  std::string key = write_key(dir);
  auto env = kafka_env("127.0.0.1:1");
  env.emplace_back("LD_LIBRARY_PATH", dir);

  auto w = run_zapd({"--set", "kafka.fleet_key_file=" + key, "worker"}, "", env);
  INFO(w.err);
  CHECK(w.exit_code == 1);
  CHECK(w.err.find("librdkafka could not be loaded: " + dir + "/librdkafka.so.1") != std::string::npos);
  CHECK(count(w.err, "kafka.load_failed") == 1);

  std::vector<std::string> serve = {"--listen", "127.0.0.1:0", "--data-dir", dir + "/data"};
  for (const auto& a : serve_args({})) serve.push_back(a);
  serve.push_back("serve");
  auto s = run_zapd(serve, "", env);
  INFO(s.err);
  CHECK(s.exit_code == 1);
  CHECK(s.err.find("librdkafka could not be loaded: " + dir + "/librdkafka.so.1") != std::string::npos);
  CHECK(count(s.err, "kafka.load_failed") == 1);
}
