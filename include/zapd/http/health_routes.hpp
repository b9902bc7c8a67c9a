#pragma once

#include "zapd/http/router.hpp"
#include "zapd/store/database.hpp"

namespace zapd::http {

/// GET /healthz (the process answers) and GET /readyz (a write through the writer commits).
void add_health_routes(router& r, store::database& db);

}  // namespace zapd::http
