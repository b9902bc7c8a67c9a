#pragma once

#include "zapd/http/router.hpp"
#include "zapd/metrics/registry.hpp"

namespace zapd::http {

/// GET /metrics: the registry in Prometheus text format (version 0.0.4), without
/// authentication. `m` must outlive the router.
void add_metrics_route(router& r, metrics::registry& m);

}  // namespace zapd::http
