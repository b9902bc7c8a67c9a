#pragma once

#include <functional>

#include "zapd/core/clock.hpp"
#include "zapd/http/principal.hpp"
#include "zapd/http/router.hpp"
#include "zapd/queue/queue.hpp"
#include "zapd/store/database.hpp"

namespace zapd::http {

struct run_routes_deps {
  store::database& db;
  authenticator auth;
  const clock& clk;
  /// Called after a commit that put a step into the outbox (retry, replay): wakes the relay.
  std::function<void()> enqueued;
  /// The queue when it lives in the store (cancel and retry settle the run's jobs in their
  /// write), else null.
  queue::store_publisher* jobs = nullptr;
};

/// Run history: GET /api/v1/runs, GET /api/v1/runs/{id}, POST /api/v1/runs/{id}/replay,
/// POST /api/v1/runs/{id}/retry, POST /api/v1/runs/{id}/cancel. Another user's run is 404.
/// `deps` must outlive the router.
void add_run_routes(router& r, const run_routes_deps& deps);

}  // namespace zapd::http
