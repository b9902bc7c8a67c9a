#include "zapd/http/health_routes.hpp"

#include "zapd/http/store_await.hpp"

namespace zapd::http {

void add_health_routes(router& r, store::database& db) {
  r.add(bhttp::verb::get, "/healthz", [](request&) -> boost::asio::awaitable<response> {
    co_return response::json(200, {{"status", "ok"}});
  });
  r.add(bhttp::verb::get, "/readyz", [&db](request&) -> boost::asio::awaitable<response> {
    auto probe = [](store::connection& c) -> result<bool> {
      if (auto st = store::readiness_probe(c); !st) return std::move(st).err();
      return true;
    };
    auto res = co_await write<bool>(db.writes(), std::move(probe));
    if (!res) {
      auto e = res.err();
      e.code = errc::unavailable;
      e.message = "database is not writable: " + e.message;
      co_return error_response(e);
    }
    co_return response::json(200, {{"status", "ready"}});
  });
}

}  // namespace zapd::http
