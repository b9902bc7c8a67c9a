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
  /// Where a run's first step goes (`outbox::enqueue`): the queue's job directly when it is
  /// in the store and direct, else an outbox row. Null: always an outbox row.
  queue::store_publisher* jobs = nullptr;
  /// Called after a commit that recorded a run with a first step (wakes the relay for an
  /// outbox row; for a job the queue wakes the workers itself: `step_due` in app).
  std::function<void()> recorded;
  /// When set and true, webhooks answer 503 + Retry-After before recording anything: the
  /// outbox holds more than outbox.max_depth steps the queue is not taking (Kafka down).
  std::function<bool()> backlogged;
};

/// Webhook ingestion: POST/PUT/PATCH/GET /hooks/catch/{userId}/{zapId}.
/// A 200 {"message":"webhook received","runId"} is sent only after the transaction holding
/// the run and its first step (job or outbox row) committed; every other answer recorded nothing.
/// `deps` (and what it refers to) must outlive the router.
void add_hook_routes(router& r, const hook_routes_deps& deps);

}  // namespace zapd::http
