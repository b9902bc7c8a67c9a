#pragma once
// Small helpers for tests that drive the real server's API (tests/support/zapd_process.hpp).

#include <algorithm>
#include <cstdlib>
#include <initializer_list>
#include <chrono>
#include <map>
#include <thread>
#include <string>
#include <vector>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "zapd_process.hpp"

namespace zapd::test {

/// Fast password hashing for tests (the production default is sized for a Raspberry Pi).
inline const std::vector<std::string> k_fast_hashing = {"--set", "auth.hash_memlimit_kib=8192", "--set",
                                                        "auth.hash_opslimit=1"};

/// k_fast_hashing plus one `--set key=value` per item.
inline std::vector<std::string> serve_args(std::initializer_list<const char*> sets) {
  std::vector<std::string> a = k_fast_hashing;
  for (const char* s : sets) {
    a.push_back("--set");
    a.push_back(s);
  }
  return a;
}

/// Rounds of a crash test: ZAPD_CHAOS_ROUNDS, default 5.
inline int chaos_rounds() {
  const char* v = std::getenv("ZAPD_CHAOS_ROUNDS");
  return v ? std::max(1, std::atoi(v)) : 5;
}

inline std::map<std::string, std::string> bearer(const std::string& token) {
  return {{"Authorization", "Bearer " + token}};
}

struct account {
  std::string token;
  std::string user_id;
};

/// Signs up and in.
inline account sign_up(const zapd_process& z, const std::string& email) {
  using json = nlohmann::json;
  auto up = z.request("POST", "/api/v1/user/signup",
                      json{{"username", email}, {"password", "correct horse battery"}, {"name", "Test"}}.dump());
  REQUIRE(up.status == 200);
  auto in = z.request("POST", "/api/v1/user/signin", json{{"username", email}, {"password", "correct horse battery"}}.dump());
  REQUIRE(in.status == 200);
  account a;
  a.token = in.json()["token"];
  auto me = z.request("GET", "/api/v1/user", "", bearer(a.token));
  REQUIRE(me.status == 200);
  a.user_id = me.json()["user"]["id"];
  return a;
}

/// Creates a zap with a webhook trigger and `actions`; returns its id.
inline std::string make_zap(const zapd_process& z, const account& a, nlohmann::json actions, const std::string& name = "") {
  nlohmann::json body = {{"availableTriggerId", "webhook"}, {"triggerMetadata", nlohmann::json::object()}, {"actions", actions}};
  if (!name.empty()) body["name"] = name;
  auto r = z.request("POST", "/api/v1/zap", body.dump(), bearer(a.token));
  INFO(r.body);
  REQUIRE(r.status == 200);
  return r.json()["zapId"];
}

/// A POST step of the `http` action to `url`, with `extra` merged into its config.
inline nlohmann::json http_step(const std::string& url, nlohmann::json extra = nlohmann::json::object()) {
  nlohmann::json meta = {{"url", url}, {"method", "POST"}};
  meta.update(extra);
  return {{"availableActionId", "http"}, {"actionMetadata", meta}};
}

inline const char* const k_comment_body = R"({"comment":{"email":"ada@example.com","name":"Ada"}})";

/// Posts the JSON `body` to the zap's webhook; whatever it answers.
inline http_reply post_hook(const zapd_process& z, const account& a, const std::string& zap,
                            const std::string& body = k_comment_body) {
  return z.request("POST", "/hooks/catch/" + a.user_id + "/" + zap, body, {{"Content-Type", "application/json"}});
}

/// Posts `body` to the zap's webhook; returns the run id of the 200.
inline std::string fire(const zapd_process& z, const account& a, const std::string& zap,
                        const std::string& body = k_comment_body) {
  auto r = post_hook(z, a, zap, body);
  REQUIRE(r.status == 200);
  return r.json()["runId"];
}

inline nlohmann::json get_run(const zapd_process& z, const account& a, const std::string& id) {
  auto r = z.request("GET", "/api/v1/runs/" + id, "", bearer(a.token));
  REQUIRE(r.status == 200);
  return r.json()["run"];
}

/// Polls the run until it is final: succeeded, failed, filtered or cancelled (fails the test after `timeout`).
inline nlohmann::json wait_final(const zapd_process& z, const account& a, const std::string& id,
                                 std::chrono::milliseconds timeout = std::chrono::seconds(20)) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  nlohmann::json run;
  while (std::chrono::steady_clock::now() < deadline) {
    run = get_run(z, a, id);
    std::string s = run["status"];
    if (s == "succeeded" || s == "failed" || s == "filtered" || s == "cancelled") return run;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  FAIL("run " << id << " did not finish: " << run.dump());
  return run;
}

/// The value of an unlabelled metric on the process's /metrics, -1 when it is not there.
inline double metric_value(const zapd_process& z, const std::string& name) {
  const std::string text = z.request("GET", "/metrics").body;
  for (std::size_t at = 0; (at = text.find(name + " ", at)) != std::string::npos; at += name.size()) {
    if (at > 0 && text[at - 1] != '\n') continue;
    return std::stod(text.substr(at + name.size() + 1));
  }
  return -1;
}

}  // namespace zapd::test
