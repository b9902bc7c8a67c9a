#include "zapd/http/hook_routes.hpp"

#include <array>

#include <fmt/format.h>

#include "zapd/core/crypto.hpp"
#include "zapd/core/ids.hpp"
#include "zapd/core/log.hpp"
#include "zapd/hooks/payload.hpp"
#include "zapd/http/store_await.hpp"

namespace zapd::http {
namespace {

namespace asio = boost::asio;
using json = nlohmann::json;

constexpr int k_stale_retries = 3;          // re-reads of a zap edited while its webhook was in flight
constexpr std::size_t k_max_dedup_key = 200;  // longer keys are stored as their SHA-256

// Why a webhook got no run, for hooks_rejected_total{reason}.
enum class reason { not_found, disabled, rate_limited, signature, bad_body, overloaded, error, count };
constexpr std::array<const char*, static_cast<std::size_t>(reason::count)> k_reason_names = {
    "not_found", "disabled", "rate_limited", "signature", "bad_body", "overloaded", "error"};

struct hook_metrics {
  metrics::counter& ingested;
  metrics::counter& duplicates;
  std::array<metrics::counter*, static_cast<std::size_t>(reason::count)> rejected{};

  explicit hook_metrics(metrics::registry& m)
      : ingested(m.add_counter("zapd_hooks_ingested_total", "Webhooks recorded as runs")),
        duplicates(m.add_counter("zapd_hooks_duplicates_total", "Webhooks answered with an earlier run (dedup)")) {
    for (std::size_t i = 0; i < rejected.size(); ++i)
      rejected[i] = &m.add_counter("zapd_hooks_rejected_total", "Webhooks refused, by reason", {{"reason", k_reason_names[i]}});
  }
  void reject(reason r) { rejected[static_cast<std::size_t>(r)]->inc(); }
};

reason reason_for(errc e) {
  switch (e) {
    case errc::not_found: return reason::not_found;
    case errc::disabled: return reason::disabled;
    case errc::overloaded:
    case errc::unavailable: return reason::overloaded;
    default: return reason::error;
  }
}

std::optional<std::string> dedup_key(const request& req, const hooks::zap_info& z, const json& body) {
  std::string key;
  if (auto v = req.header("webhook-id"); !v.empty()) key = "webhook-id:" + v;
  else if (auto k = req.header("Idempotency-Key"); !k.empty()) key = "idempotency-key:" + k;
  else if (!z.dedup_path.empty()) {
    auto v = hooks::value_at(body, z.dedup_path);
    if (!v) return std::nullopt;
    key = "path:" + *v;
  } else {
    return std::nullopt;
  }
  if (key.size() > k_max_dedup_key) key = "sha256:" + hex_encode(sha256(key));
  return key;
}

asio::awaitable<response> ingest(const hook_routes_deps& d, hook_metrics& m, request& req) {
  const std::string& user_id = req.params["userId"];
  const std::string& zap_id = req.params["zapId"];
  auto rejected = [&m](reason r, response res) {
    m.reject(r);
    return res;
  };

  for (int attempt = 0;; ++attempt) {
    auto cached = d.zaps.get(zap_id);
    if (!cached) co_return rejected(reason::error, error_response(cached.err()));
    const std::shared_ptr<const hooks::zap_info> z = *cached;
    if (!z || z->user_id != user_id)
      co_return rejected(reason::not_found, error_response(errc::not_found, fmt::format("no zap {} for user {}", zap_id, user_id)));
    if (!z->enabled) co_return rejected(reason::disabled, error_response(hooks::disabled_error(zap_id)));

    hooks::verify_options vo;
    vo.hmac_header = z->signature_header;
    auto sig = hooks::verify(z->sig, z->secret, [&req](std::string_view n) { return req.header(n); }, req.body(),
                             d.clk.now_ms() / 1000, vo);
    if (!sig) co_return rejected(reason::signature, error_response(sig.err()));

    // After the signature: unsigned requests must not spend the real sender's tokens.
    if (attempt == 0) {
      const auto& rates = z->lane == queue::lane::paid ? d.paid : d.free;
      if (auto wait = d.limiter.take("zap:" + zap_id, rates.zap, "user:" + user_id, rates.user); wait > 0) {
        auto res = error_response(errc::too_many_requests, fmt::format("rate limit reached for zap {}; retry in {} s", zap_id, wait));
        res.with_header("Retry-After", std::to_string(wait));
        co_return rejected(reason::rate_limited, std::move(res));
      }
    }

    // A JSON body is validated and kept as its text; a document is built only for dedupPath.
    auto body = hooks::check_body(req.header("Content-Type"), req.body(), d.max_depth, !z->dedup_path.empty());
    if (!body) co_return rejected(reason::bad_body, error_response(body.err()));

    runs::new_run run;
    run.now_ms = d.clk.now_ms();
    run.id = new_uuid_v7(run.now_ms);
    run.zap_id = zap_id;
    run.user_id = user_id;
    run.zap_version = z->version;
    run.lane = z->lane;
    run.actions = z->actions;
    run.dedup_key = dedup_key(req, *z, body->value);
    std::vector<std::pair<std::string, std::string>> headers;
    for (const auto& f : req.msg) headers.emplace_back(std::string(f.name_string()), std::string(f.value()));
    run.trigger_json = hooks::trigger_payload_text(req.msg.method_string(), *body, req.header("Content-Type"),
                                                   req.query_params(), headers, run.now_ms);

    const std::int64_t window = d.dedup_window_ms;
    auto job = [run = std::move(run), window](store::connection& c) { return hooks::record(c, run, window); };
    auto done = co_await write<hooks::recorded>(d.db.writes(), std::move(job));
    if (!done) co_return rejected(reason_for(done.err().code), error_response(done.err()));
    if (done->stale) {
      d.zaps.forget(zap_id);
      if (attempt + 1 < k_stale_retries) continue;
      co_return rejected(reason::overloaded, error_response(errc::unavailable, "the zap is being edited; retry"));
    }
    if (done->duplicate) {
      m.duplicates.inc();
    } else {
      m.ingested.inc();
      if (z->actions > 0 && d.recorded) d.recorded();
    }
    json answer = {{"message", "webhook received"}, {"runId", done->run_id}};
    if (done->duplicate) answer["duplicate"] = true;
    co_return response::json(200, answer);
  }
}

}  // namespace

void add_hook_routes(router& r, const hook_routes_deps& d) {
  auto m = std::make_shared<hook_metrics>(d.metrics);
  auto h = [&d, m](request& req) -> asio::awaitable<response> { co_return co_await ingest(d, *m, req); };
  for (auto v : {bhttp::verb::post, bhttp::verb::put, bhttp::verb::patch, bhttp::verb::get})
    r.add(v, "/hooks/catch/{userId}/{zapId}", h);
}

void add_metrics_route(router& r, metrics::registry& m) {
  r.add(bhttp::verb::get, "/metrics", [&m](request&) -> asio::awaitable<response> {
    response res;
    res.content_type = "text/plain; version=0.0.4";
    res.body = m.render_prometheus();
    co_return res;
  });
}

}  // namespace zapd::http
