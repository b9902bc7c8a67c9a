#include "zapd/http/run_routes.hpp"

#include <charconv>

#include <fmt/format.h>

#include "zapd/http/store_await.hpp"
#include "zapd/runs/runs.hpp"

namespace zapd::http {
namespace {

namespace asio = boost::asio;
using json = nlohmann::json;

result<runs::filter> parse_filter(const request& req) {
  runs::filter f;
  auto q = req.query_params();
  if (auto it = q.find("zapId"); it != q.end() && !it->second.empty()) f.zap_id = it->second;
  if (auto it = q.find("status"); it != q.end() && !it->second.empty()) f.status = it->second;
  if (auto it = q.find("cursor"); it != q.end() && !it->second.empty()) f.cursor = it->second;
  if (auto it = q.find("limit"); it != q.end()) {
    const std::string& v = it->second;
    auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), f.limit);
    if (ec != std::errc{} || p != v.data() + v.size())
      return make_error(errc::invalid_argument, fmt::format("limit '{}' is not a number", v));
  }
  return f;
}

}  // namespace

void add_run_routes(router& r, const run_routes_deps& d) {
  using bhttp::verb;

  r.add(verb::get, "/api/v1/runs", authed(d.auth, [&d](request& req, const principal& who) -> asio::awaitable<response> {
    auto f = parse_filter(req);
    if (!f) co_return error_response(f.err());
    auto p = d.db.reads().with([&](store::connection& c) { return runs::list(c, who.user_id, *f); });
    if (!p) co_return error_response(p.err());
    json list = json::array();
    for (const auto& run : p->runs) list.push_back(runs::to_json(run, false));
    co_return response::json(200, {{"runs", list}, {"nextCursor", p->next_cursor ? json(*p->next_cursor) : json(nullptr)}});
  }));

  r.add(verb::get, "/api/v1/runs/{id}", authed(d.auth, [&d](request& req, const principal& who) -> asio::awaitable<response> {
    auto run = d.db.reads().with([&](store::connection& c) { return runs::get(c, who.user_id, req.params["id"]); });
    if (!run) co_return error_response(run.err());
    co_return response::json(200, {{"run", runs::to_json(*run, true)}});
  }));

  // cancel and retry: one write that changes the run, then the run with its steps.
  using run_op = result<runs::run_record> (*)(store::connection&, queue::store_publisher*, const std::string&, const std::string&,
                                              std::int64_t);
  auto operation = [&d](run_op op, bool enqueues) {
    return authed(d.auth, [&d, op, enqueues](request& req, const principal& who) -> asio::awaitable<response> {
      auto job = [op, jobs = d.jobs, user = who.user_id, id = req.params["id"], now = d.clk.now_ms()](store::connection& c) {
        return op(c, jobs, user, id, now);
      };
      auto run = co_await write<runs::run_record>(d.db.writes(), std::move(job));
      if (!run) co_return error_response(run.err());
      if (enqueues && d.enqueued) d.enqueued();
      co_return response::json(200, {{"run", runs::to_json(*run, true)}});
    });
  };
  r.add(verb::post, "/api/v1/runs/{id}/cancel", operation(&runs::cancel, false));
  r.add(verb::post, "/api/v1/runs/{id}/retry", operation(&runs::retry, true));

  r.add(verb::post, "/api/v1/runs/{id}/replay", authed(d.auth, [&d](request& req, const principal& who) -> asio::awaitable<response> {
    auto q = req.query_params();
    const bool original = q.count("version") && q["version"] == "original";
    if (q.count("version") && !original)
      co_return error_response(errc::invalid_argument, "version must be 'original' or left out (the zap's current version)");
    auto job = [jobs = d.jobs, user = who.user_id, id = req.params["id"], original, now = d.clk.now_ms()](store::connection& c) {
      return runs::replay(c, jobs, user, id, original, now);
    };
    auto new_id = co_await write<std::string>(d.db.writes(), std::move(job));
    if (!new_id) co_return error_response(new_id.err());
    if (d.enqueued) d.enqueued();
    co_return response::json(200, {{"message", "run replayed"}, {"runId", *new_id}});
  }));
}

}  // namespace zapd::http
