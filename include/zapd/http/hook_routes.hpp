#pragma once

#include <cstdint>
#include <functional>

#include "zapd/core/clock.hpp"
#include "zapd/hooks/ingest.hpp"
#include "zapd/hooks/rate_limit.hpp"
#include "zapd/http/router.hpp"
#include "zapd/metrics/registry.hpp"
#include "zapd/store/database.hpp"

namespace zapd::http {

struct hook_routes_deps {
  store::database& db;
  hooks::zap_cache& zaps;
  hooks::rate_limiter& limiter;
  metrics::registry& metrics;
  const clock& clk;
  struct plan_rates {
    hooks::rate_limiter::rule zap;
    hooks::rate_limiter::rule user;
  };
  plan_rates free;
  plan_rates paid;
  std::size_t max_depth = 64;
  std::int64_t dedup_window_ms = 86'400'000;
  /// Called after a commit that recorded a run with an outbox row (wakes the relay).
  std::function<void()> recorded;
};

/// Webhook ingestion: POST/PUT/PATCH/GET /hooks/catch/{userId}/{zapId}.
/// A 200 {"message":"webhook received","runId"} is sent only after the transaction holding
/// the run and its outbox row committed; every other answer recorded nothing.
/// `deps` (and what it refers to) must outlive the router.
void add_hook_routes(router& r, const hook_routes_deps& deps);

}  // namespace zapd::http
