#include "zapd/http/schedule_routes.hpp"

#include "zapd/cron/cron.hpp"
#include "zapd/zaps/schedule.hpp"

namespace zapd::http {

void add_schedule_routes(router& r, const schedule_routes_deps& d) {
  namespace asio = boost::asio;
  r.add(bhttp::verb::post, "/api/v1/schedule/preview",
        authed(d.auth, [&d](request& req, const principal&) -> asio::awaitable<response> {
          auto body = parse_json_body(req);
          if (!body) co_return error_response(body.err());
          auto next = zaps::preview(*body, d.min_interval_seconds, d.clk.now_ms());
          if (!next) co_return error_response(next.err());
          nlohmann::json list = nlohmann::json::array();
          for (auto t : *next) list.push_back(cron::rfc3339(t));
          co_return response::json(200, {{"next", std::move(list)}});
        }));
}

}  // namespace zapd::http
