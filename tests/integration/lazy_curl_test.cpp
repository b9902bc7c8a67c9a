// libcurl is loaded on first use (src/outbound/curl_lazy.cpp, docs/BENCHMARKS.md "Footprint"):
// through the real binary, a server that has only run zaps without an HTTP or email step has
// no libcurl mapped; the first HTTP step loads it and succeeds.
#include <string>

#include <catch2/catch.hpp>

#include "api_helpers.hpp"
#include "http_sink.hpp"
#include "proc_maps.hpp"
#include "zapd_process.hpp"

using namespace zapd::test;
using json = nlohmann::json;

namespace {

/// The lines of /proc/<pid>/maps that map a libcurl file.
std::string curl_mappings(pid_t pid) { return zapd::test::mappings(pid, "/libcurl"); }

json step(const std::string& kind, json meta) { return {{"availableActionId", kind}, {"actionMetadata", std::move(meta)}}; }

}  // namespace

TEST_CASE("libcurl is mapped only once a step calls out") {
  http_sink sink;
  sink.on("/", sink_reply::json(R"({"ok":true})"));
  zapd_process z(serve_args({"actions.http.allow=127.0.0.1", "hooks.free_zap_rate=0", "hooks.free_user_rate=0"}));

  // Started and ready: the outbound driver, the http client and the email executor exist.
  {
    INFO(libraries(z.pid()));
    CHECK(curl_mappings(z.pid()).empty());
  }

  // A run through a zap without an HTTP or email step.
  auto a = sign_up(z, "lazy@example.com");
  auto quiet = make_zap(z, a, json::array({step("formatter", {{"fields", {{"who", "{{comment.name}}"}}}})}));
  auto run = wait_final(z, a, fire(z, a, quiet));
  {
    INFO(run.dump(2));
    REQUIRE(run["status"] == "succeeded");
  }
  {
    INFO(libraries(z.pid()));
    CHECK(curl_mappings(z.pid()).empty());
  }
  CHECK(sink.requests().empty());

  // The first HTTP step loads libcurl and is delivered.
  auto loud = make_zap(z, a, json::array({step("http", {{"url", sink.url("/hook")}, {"method", "POST"}})}));
  run = wait_final(z, a, fire(z, a, loud));
  {
    INFO(run.dump(2));
    REQUIRE(run["status"] == "succeeded");
    CHECK(run["steps"][0]["status"] == "succeeded");
  }
  REQUIRE(sink.wait_for(1));
  CHECK(sink.requests()[0].target == "/hook");
  {
    INFO(libraries(z.pid()));
    CHECK_FALSE(curl_mappings(z.pid()).empty());
  }
  CHECK(z.terminate() == 0);
}
