#include "zapd/http/metrics_routes.hpp"

namespace zapd::http {

void add_metrics_route(router& r, metrics::registry& m) {
  r.add(bhttp::verb::get, "/metrics", [&m](request&) -> boost::asio::awaitable<response> {
    response res;
    res.content_type = "text/plain; version=0.0.4";
    res.body = m.render_prometheus();
    co_return res;
  });
}

}  // namespace zapd::http
