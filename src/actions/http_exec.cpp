// The `http` action's executor: one outbound request per attempt.
#include <fmt/format.h>

#include "zapd/actions/executor.hpp"
#include "zapd/core/clock.hpp"
#include "zapd/core/crypto.hpp"
#include "zapd/core/json.hpp"
#include "zapd/outbound/http_client.hpp"

namespace zapd::actions {
namespace {

using json = nlohmann::json;



bool looks_like_json(std::string_view body) {
  auto p = body.find_first_not_of(" \t\r\n");
  return p != std::string_view::npos && (body[p] == '{' || body[p] == '[');
}


class http_executor final : public executor {
 public:
  http_executor(outbound::http_client& c, http_options o) : client_(c), opts_(std::move(o)) {}

  templates::options render_options(std::string_view field, const json& raw) const override {
    templates::options o;
    if (field == "url") {
      o.m = templates::mode::url;
    } else if (field.starts_with("headers.")) {
      o.m = templates::mode::header;
    } else if (field == "body") {
      bool json_type = false;
      if (auto h = raw.find("headers"); h != raw.end() && h->is_object())
        for (const auto& [k, v] : h->items())
          if (to_lower(k) == "content-type" && v.is_string()) json_type = to_lower(v.get<std::string>()).find("json") != std::string::npos;
      o.m = json_type || looks_like_json(string_field(raw, "body")) ? templates::mode::json : templates::mode::text;
    } else if (field == "signingSecret") {
      o.m = templates::mode::text;
    }
    return o;
  }

  void execute(step_request req, done_fn done) override {
    const json& cfg = req.config;
    outbound::request r;
    r.method = string_field(cfg, "method", "POST");
    r.url = string_field(cfg, "url");
    r.body = string_field(cfg, "body");
    r.max_body = opts_.max_body;
    if (auto t = cfg.find("timeoutMs"); t != cfg.end() && t->is_number_integer() && t->get<std::int64_t>() > 0)
      r.timeout = std::chrono::milliseconds(t->get<std::int64_t>());
    if (auto f = cfg.find("followRedirects"); f != cfg.end() && f->is_boolean()) r.follow_redirects = f->get<bool>();
    bool has_type = false;
    if (auto h = cfg.find("headers"); h != cfg.end() && h->is_object())
      for (const auto& [k, v] : h->items()) {
        if (!v.is_string()) continue;
        has_type = has_type || to_lower(k) == "content-type";
        r.headers.emplace_back(k, v.get<std::string>());
      }
    if (!has_type && !r.body.empty()) r.headers.emplace_back("Content-Type", looks_like_json(r.body) ? "application/json" : "text/plain");
    r.headers.emplace_back("Idempotency-Key", req.idempotency_key);
    r.headers.emplace_back("User-Agent", opts_.user_agent);
    if (auto secret = string_field(cfg, "signingSecret"); !secret.empty()) {
      // Standard Webhooks: the id is stable across attempts, like the idempotency key.
      const std::int64_t ts = real_clock().now_ms() / 1000;
      std::string key = secret;
      if (secret.starts_with("whsec_"))
        if (auto k = base64_decode(secret.substr(6))) key = *k;
      r.headers.emplace_back("webhook-id", req.idempotency_key);
      r.headers.emplace_back("webhook-timestamp", std::to_string(ts));
      r.headers.emplace_back("webhook-signature",
                             "v1," + base64_encode(hmac_sha256(key, fmt::format("{}.{}.{}", req.idempotency_key, ts, r.body))));
    }
    const std::string expected = string_field(cfg, "expectedStatus", "2xx");
    // Shared: `send` takes the callback, but when it refuses, `done` must still be called here.
    auto finish = std::make_shared<done_fn>(std::move(done));
    auto st = client_.send(std::move(r), [expected, finish](outbound::outcome oc) { (*finish)(classify(std::move(oc), expected)); });
    if (!st) {
      step_result res;
      res.v = verdict::retry;
      res.error = "outbound HTTP is stopping: " + st.err().message;
      (*finish)(std::move(res));
    }
  }

 private:
  static step_result classify(outbound::outcome oc, const std::string& expected) {
    step_result res;
    if (!oc.ok()) {
      res.v = oc.retryable() ? verdict::retry : verdict::failed;
      res.error = oc.res.err().message;
      res.output = {{"error", res.error}, {"failure", std::string(outbound::failure_name(oc.kind))}};
      return res;
    }
    const outbound::response& resp = *oc.res;
    res.duration = resp.duration;
    json headers = json::object();
    for (const auto& [k, v] : resp.headers) {
      std::string name = to_lower(k);
      if (name == "set-cookie" || headers.size() >= 64) continue;
      headers[json_string(name).get<std::string>()] = json_string(v);
    }
    json body;
    const std::string ctype = to_lower(std::string(resp.header("content-type").value_or("")));
    if (!resp.truncated && ctype.find("json") != std::string::npos) {
      body = parse_json_or_discarded(resp.body, json_depth::remote);
      if (body.is_discarded()) body = json_string(resp.body);
    } else if (!resp.body.empty()) {
      body = json_string(resp.body);
    }
    res.output = {{"status", resp.status},
                  {"headers", std::move(headers)},  // moved, not copied: nlohmann copies lvalues here
                  {"body", std::move(body)},
                  {"truncated", resp.truncated},
                  {"durationMs", resp.duration.count()}};
    if (status_matches(resp.status, expected)) {
      res.v = verdict::succeeded;
      return res;
    }
    res.error = fmt::format("HTTP {} from {} (expected {})", resp.status, resp.effective_url, expected);
    const long s = resp.status;
    res.v = (s == 408 || s == 429 || s >= 500) ? verdict::retry : verdict::failed;
    if (auto ra = resp.header("retry-after"); ra && res.v == verdict::retry)
      res.retry_after = parse_retry_after(*ra, real_clock().now_ms());
    return res;
  }

  outbound::http_client& client_;
  http_options opts_;
};

}  // namespace

std::unique_ptr<executor> make_http_executor(outbound::http_client& client, http_options o) {
  return std::make_unique<http_executor>(client, std::move(o));
}

}  // namespace zapd::actions
