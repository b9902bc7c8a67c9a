#pragma once

#include <functional>
#include <string>

#include "zapd/actions/catalog.hpp"
#include "zapd/http/principal.hpp"
#include "zapd/http/router.hpp"
#include "zapd/secrets/secrets.hpp"
#include "zapd/store/database.hpp"
#include "zapd/zaps/zaps.hpp"

namespace zapd::http {

struct zap_routes_deps {
  store::database& db;
  const actions::catalog& catalog;
  const secrets::box& box;
  authenticator auth;
  std::string public_url;
  zaps::limits limits;
  /// Called after a request changed a user's zaps or secrets (may be empty).
  std::function<void(const std::string& user_id)> changed;
};

/// The catalog (no auth), icons, zap CRUD/versions/export/import and secrets routes.
/// `deps` must outlive the router.
void add_zap_routes(router& r, const zap_routes_deps& deps);

}  // namespace zapd::http
