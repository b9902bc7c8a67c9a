#pragma once

#include <cstdint>

#include "zapd/core/clock.hpp"
#include "zapd/http/principal.hpp"
#include "zapd/http/router.hpp"

namespace zapd::http {

struct schedule_routes_deps {
  authenticator auth;
  std::int64_t min_interval_seconds = 60;  // schedule.min_interval_seconds
  const clock& clk;
};

/// `POST /api/v1/schedule/preview {cron | intervalSeconds, timezone}` -> `{"next": [5 RFC 3339
/// times]}`, or 400 naming the bad field (the editor's cron field calls it; signed-in only).
/// `deps` must outlive the router.
void add_schedule_routes(router& r, const schedule_routes_deps& deps);

}  // namespace zapd::http
