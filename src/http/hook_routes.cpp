#include "zapd/http/hook_routes.hpp"

#include <array>

#include <fmt/format.h>

#include "zapd/hooks/admit.hpp"
#include "zapd/http/store_await.hpp"

namespace zapd::http {
namespace {

namespace asio = boost::asio;
using json = nlohmann::json;

constexpr int k_stale_retries = 3;  // re-reads of a zap edited while its webhook was in flight

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

// The reason follows from the error's code: each code means one thing (core/errc.hpp).
reason reason_for(errc e) {
  switch (e) {
    case errc::not_found: return reason::not_found;
    case errc::disabled: return reason::disabled;
    case errc::unauthorized: return reason::signature;
    case errc::invalid_argument: return reason::bad_body;
    case errc::too_many_requests: return reason::rate_limited;
    case errc::overloaded:
    case errc::unavailable: return reason::overloaded;
    default: return reason::error;
  }
}

// What the handler got, in the hooks module's terms. `req` must outlive the result (the body is a view).
hooks::inbound inbound_of(const request& req) {
  auto param = [&req](const char* name) {
    auto it = req.params.find(name);
    return it == req.params.end() ? std::string{} : it->second;
  };
  hooks::inbound in;
  in.user_id = param("userId");
  in.zap_id = param("zapId");
  in.method = std::string(req.msg.method_string());
  in.content_type = req.header("Content-Type");
  in.body = req.body();
  for (const auto& f : req.msg) in.headers.emplace_back(std::string(f.name_string()), std::string(f.value()));
  in.query = req.query_params();
  return in;
}

// `{"message":"webhook received","runId":…}`, written as text: every accepted webhook
// answers it, and a run id is a UUID (hex digits and dashes), which needs no escaping.
response received_answer(const std::string& run_id, bool duplicate) {
  if (run_id.find_first_not_of("0123456789abcdef-") != std::string::npos) {
    json answer = {{"message", "webhook received"}, {"runId", run_id}};
    if (duplicate) answer["duplicate"] = true;
    return response::json(200, answer);
  }
  // The keys in the order the JSON library writes them (sorted), so the bytes are the same.
  response r;
  r.body.reserve(112);
  r.body.append(duplicate ? R"({"duplicate":true,"message":"webhook received","runId":")"
                          : R"({"message":"webhook received","runId":")")
      .append(run_id)
      .append(R"("})");
  return r;
}

asio::awaitable<response> ingest(const hook_routes_deps& d, hook_metrics& m, request& req) {
  const hooks::inbound in = inbound_of(req);
  auto rejected = [&m](reason r, response res) {
    m.reject(r);
    return res;
  };
  auto refused = [&m](const error& e) {
    m.reject(reason_for(e.code));
    return error_response(e);
  };
  hooks::admit_options ao;
  ao.max_depth = d.max_depth;

  for (int attempt = 0;; ++attempt) {
    auto cached = d.zaps.get(in.zap_id);
    if (!cached) co_return rejected(reason::error, error_response(cached.err()));
    const std::shared_ptr<const hooks::zap_info> z = *cached;

    auto run = hooks::admit(z.get(), in, d.clk.now_ms(), ao);
    if (!run) co_return refused(run.err());

    // After admit, so after the signature: unsigned requests must not spend the real sender's tokens.
    if (attempt == 0) {
      const auto& rates = z->lane == queue::lane::paid ? d.paid : d.free;
      if (auto wait = d.limiter.take("zap:" + in.zap_id, rates.zap, "user:" + in.user_id, rates.user); wait > 0) {
        auto res = refused(make_error(errc::too_many_requests,
                                      fmt::format("rate limit reached for zap {}; retry in {} s", in.zap_id, wait)));
        res.with_header("Retry-After", std::to_string(wait));
        co_return res;
      }
    }

    if (attempt == 0 && d.backlogged && d.backlogged()) {
      // Nothing recorded: the sender keeps the webhook and tries again.
      auto res = rejected(reason::overloaded,
                          error_response(errc::overloaded, "the queue is not taking steps (its brokers are unreachable) and "
                                                           "the outbox is full (outbox.max_depth); retry later"));
      res.with_header("Retry-After", "5");
      co_return res;
    }

    const std::int64_t window = d.dedup_window_ms;
    auto job = [run = std::move(*run), window, jobs = d.jobs](store::connection& c) {
      return hooks::record(c, jobs, run, window);
    };
    auto done = co_await write<hooks::recorded>(d.db.writes(), std::move(job));
    if (!done) co_return refused(done.err());
    if (done->stale) {
      d.zaps.forget(in.zap_id);
      if (attempt + 1 < k_stale_retries) continue;
      co_return rejected(reason::overloaded, error_response(errc::unavailable, "the zap is being edited; retry"));
    }
    if (done->duplicate) {
      m.duplicates.inc();
    } else {
      m.ingested.inc();
      if (z->actions > 0 && d.recorded) d.recorded();
    }
    co_return received_answer(done->run_id, done->duplicate);
  }
}

}  // namespace

void add_hook_routes(router& r, const hook_routes_deps& d) {
  auto m = std::make_shared<hook_metrics>(d.metrics);
  auto h = [&d, m](request& req) -> asio::awaitable<response> { co_return co_await ingest(d, *m, req); };
  for (auto v : {bhttp::verb::post, bhttp::verb::put, bhttp::verb::patch, bhttp::verb::get})
    r.add(v, "/hooks/catch/{userId}/{zapId}", h);
}

}  // namespace zapd::http
