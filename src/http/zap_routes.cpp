#include "zapd/http/zap_routes.hpp"

#include <fmt/format.h>

#include "zapd/core/clock.hpp"
#include "zapd/http/store_await.hpp"
#include "zapd/runs/runs.hpp"

namespace zapd::http {
namespace {

namespace asio = boost::asio;
using json = nlohmann::json;

/// `{id, status, createdAt}` of the zap's newest run, or null (the UI's "last run" column).
result<json> last_run(store::connection& c, const std::string& user_id, const std::string& zap_id) {
  auto r = runs::latest(c, user_id, zap_id);
  if (!r) return std::move(r).err();
  if (!*r) return json(nullptr);
  return json{{"id", (*r)->id}, {"status", (*r)->status}, {"createdAt", iso_time_ms((*r)->created_at)}};
}

// Validates `body` as a zap and hands `apply` the result, all inside one writer request so the
// user's secret names are read in the same transaction that saves the zap.
template <class Apply>
asio::awaitable<result<zaps::zap_record>> validated_write(const zap_routes_deps& d, const principal& who, json body,
                                                          Apply apply) {
  // Jobs are named locals: GCC 12 mis-destroys capturing lambda temporaries in co_await.
  auto job = [&d, user = who.user_id, body = std::move(body), apply](store::connection& c) -> result<zaps::zap_record> {
    auto names = secrets::names(c, user);
    if (!names) return std::move(names).err();
    auto v = zaps::validate(body, d.catalog, *names, d.limits);
    if (!v) return std::move(v).err();
    return apply(c, user, *v);
  };
  co_return co_await write<zaps::zap_record>(d.db.writes(), std::move(job));
}

// Tells `d.changed` (ingestion's zap cache) about a user whose zaps or secrets a 2xx changed.
principal_handler notifying(const zap_routes_deps& d, principal_handler h) {
  return [&d, h = std::move(h)](request& req, const principal& who) -> asio::awaitable<response> {
    response res = co_await h(req, who);
    if (res.status < 300 && d.changed) d.changed(who.user_id);
    co_return res;
  };
}

}  // namespace

void add_zap_routes(router& r, const zap_routes_deps& d) {
  using bhttp::verb;

  // Catalog: the seeds' editor calls these before sign-in.
  r.add(verb::get, "/api/v1/trigger/available", [&d](request&) -> asio::awaitable<response> {
    json list = json::array();
    for (const auto& s : d.catalog.triggers()) list.push_back(d.catalog.entry_json(s, d.public_url));
    co_return response::json(200, {{"availableTriggers", list}});
  });
  r.add(verb::get, "/api/v1/action/available", [&d](request&) -> asio::awaitable<response> {
    json list = json::array();
    for (const auto& s : d.catalog.actions()) list.push_back(d.catalog.entry_json(s, d.public_url));
    co_return response::json(200, {{"availableActions", list}});
  });
  r.add(verb::get, "/static/icons/{file}", [&d](request& req) -> asio::awaitable<response> {
    const std::string& file = req.params["file"];
    const std::string* svg = file.ends_with(".svg") ? d.catalog.icon(file.substr(0, file.size() - 4)) : nullptr;
    if (!svg) co_return error_response(errc::not_found, fmt::format("no icon named '{}'", file));
    response res;
    res.content_type = "image/svg+xml";
    res.body = *svg;
    res.with_header("Cache-Control", "public, max-age=86400");
    co_return res;
  });

  // Zaps.
  auto create = [&d](request& req, const principal& who) -> asio::awaitable<response> {
    auto body = parse_json_body(req);
    if (!body) co_return error_response(body.err());
    auto apply = [](store::connection& c, const std::string& user, const zaps::validated& v) { return zaps::create(c, user, v); };
    auto z = co_await validated_write(d, who, std::move(*body), apply);
    if (!z) co_return error_response(z.err());
    json zap = zaps::to_json(*z, d.catalog, d.public_url, real_clock().now_ms());
    json url = zap["webhookUrl"];  // null for a schedule zap
    co_return response::json(200, {{"zapId", z->id}, {"webhookUrl", std::move(url)}, {"zap", std::move(zap)}});
  };
  r.add(verb::post, "/api/v1/zap", authed(d.auth, notifying(d, create)));
  r.add(verb::post, "/api/v1/zap/import", authed(d.auth, notifying(d, create)));

  r.add(verb::get, "/api/v1/zap", authed(d.auth, [&d](request&, const principal& who) -> asio::awaitable<response> {
    const std::int64_t now = real_clock().now_ms();
    auto list = d.db.reads().with([&](store::connection& c) -> result<json> {
      auto all = zaps::list(c, who.user_id);
      if (!all) return std::move(all).err();
      json out = json::array();
      for (const auto& z : *all) {
        auto last = last_run(c, who.user_id, z.id);
        if (!last) return std::move(last).err();
        out.push_back(zaps::to_json(z, d.catalog, d.public_url, now));
        out.back()["lastRun"] = std::move(*last);
      }
      return out;
    });
    if (!list) co_return error_response(list.err());
    co_return response::json(200, {{"zaps", std::move(*list)}});
  }));

  r.add(verb::get, "/api/v1/zap/{id}", authed(d.auth, [&d](request& req, const principal& who) -> asio::awaitable<response> {
    auto zap = d.db.reads().with([&](store::connection& c) -> result<json> {
      auto z = zaps::get(c, who.user_id, req.params["id"]);
      if (!z) return std::move(z).err();
      auto last = last_run(c, who.user_id, z->id);
      if (!last) return std::move(last).err();
      json out = zaps::to_json(*z, d.catalog, d.public_url, real_clock().now_ms());
      out["lastRun"] = std::move(*last);
      return out;
    });
    if (!zap) co_return error_response(zap.err());
    co_return response::json(200, {{"zap", std::move(*zap)}});
  }));

  r.add(verb::put, "/api/v1/zap/{id}", authed(d.auth, notifying(d, [&d](request& req, const principal& who) -> asio::awaitable<response> {
    auto body = parse_json_body(req);
    if (!body) co_return error_response(body.err());
    std::string id = req.params["id"];
    auto apply = [id](store::connection& c, const std::string& user, const zaps::validated& v) { return zaps::replace(c, user, id, v); };
    auto z = co_await validated_write(d, who, std::move(*body), apply);
    if (!z) co_return error_response(z.err());
    co_return response::json(200, {{"zap", zaps::to_json(*z, d.catalog, d.public_url, real_clock().now_ms())}});
  })));

  r.add(verb::patch, "/api/v1/zap/{id}", authed(d.auth, notifying(d, [&d](request& req, const principal& who) -> asio::awaitable<response> {
    auto body = parse_json_body(req);
    if (!body) co_return error_response(body.err());
    std::vector<field_error> errs;
    std::optional<std::string> name;
    std::optional<bool> enabled;
    if (!body->is_object()) body = json::object({{"", nullptr}});
    for (const auto& [k, v] : body->items()) {
      if (k == "name") {
        if (!v.is_string() || v.get<std::string>().empty() || v.get<std::string>().size() > 200)
          errs.push_back({"name", "must be a string of 1..200 characters"});
        else
          name = v.get<std::string>();
      } else if (k == "enabled") {
        if (!v.is_boolean()) errs.push_back({"enabled", "must be true or false"});
        else enabled = v.get<bool>();
      } else if (k.empty()) {
        errs.push_back({"", "the body must be a JSON object"});
      } else {
        errs.push_back({k, "unknown field; PATCH changes name and enabled (use PUT for the rest)"});
      }
    }
    if (errs.empty() && !name && !enabled) errs.push_back({"", "nothing to change: give name and/or enabled"});
    if (!errs.empty()) {
      auto e = make_error(errc::invalid_argument, fmt::format("{}: {}", errs[0].path, errs[0].message));
      e.details = errs;
      co_return error_response(e);
    }
    auto job = [user = who.user_id, id = req.params["id"], name, enabled](store::connection& c) {
      return zaps::patch(c, user, id, name, enabled);
    };
    auto z = co_await write<zaps::zap_record>(d.db.writes(), std::move(job));
    if (!z) co_return error_response(z.err());
    co_return response::json(200, {{"zap", zaps::to_json(*z, d.catalog, d.public_url, real_clock().now_ms())}});
  })));

  r.add(verb::delete_, "/api/v1/zap/{id}", authed(d.auth, notifying(d, [&d](request& req, const principal& who) -> asio::awaitable<response> {
    auto job = [user = who.user_id, id = req.params["id"]](store::connection& c) -> result<bool> {
      auto s = zaps::remove(c, user, id);
      if (!s) return std::move(s).err();
      return true;
    };
    auto st = co_await write<bool>(d.db.writes(), std::move(job));
    if (!st) co_return error_response(st.err());
    co_return response::json(200, {{"message", "zap deleted"}, {"zapId", req.params["id"]}});
  })));

  r.add(verb::get, "/api/v1/zap/{id}/versions", authed(d.auth, [&d](request& req, const principal& who) -> asio::awaitable<response> {
    auto vs = d.db.reads().with([&](store::connection& c) { return zaps::versions(c, who.user_id, req.params["id"]); });
    if (!vs) co_return error_response(vs.err());
    json list = json::array();
    for (const auto& v : *vs)
      list.push_back({{"version", v.version}, {"name", v.name}, {"enabled", v.enabled}, {"createdAt", v.created_at},
                      {"definition", v.definition.to_json()}});
    co_return response::json(200, {{"versions", list}});
  }));

  r.add(verb::get, "/api/v1/zap/{id}/export", authed(d.auth, [&d](request& req, const principal& who) -> asio::awaitable<response> {
    auto z = d.db.reads().with([&](store::connection& c) { return zaps::get(c, who.user_id, req.params["id"]); });
    if (!z) co_return error_response(z.err());
    co_return response::json(200, zaps::export_json(*z));
  }));

  // Secrets: values are write-only.
  r.add(verb::post, "/api/v1/secrets", authed(d.auth, notifying(d, [&d](request& req, const principal& who) -> asio::awaitable<response> {
    auto body = parse_json_body(req);
    if (!body) co_return error_response(body.err());
    std::vector<field_error> errs;
    std::string name, value;
    if (!body->is_object() || !(*body)["name"].is_string() || !secrets::valid_name((*body)["name"].get<std::string>()))
      errs.push_back({"name", "required: 1..64 letters, digits, '_' or '-'"});
    else
      name = (*body)["name"].get<std::string>();
    if (!body->is_object() || !(*body)["value"].is_string() || (*body)["value"].get<std::string>().empty() ||
        (*body)["value"].get<std::string>().size() > secrets::k_max_value_bytes)
      errs.push_back({"value", fmt::format("required: a string of 1..{} bytes", secrets::k_max_value_bytes)});
    else
      value = (*body)["value"].get<std::string>();
    if (!errs.empty()) {
      auto e = make_error(errc::invalid_argument, fmt::format("{}: {}", errs[0].path, errs[0].message));
      e.details = errs;
      co_return error_response(e);
    }
    auto job = [&d, user = who.user_id, name, value](store::connection& c) -> result<bool> {
      auto s = secrets::put(c, d.box, user, name, value);
      if (!s) return std::move(s).err();
      return true;
    };
    auto st = co_await write<bool>(d.db.writes(), std::move(job));
    if (!st) co_return error_response(st.err());
    co_return response::json(200, {{"message", "secret saved"}, {"name", name}});
  })));

  r.add(verb::get, "/api/v1/secrets", authed(d.auth, [&d](request&, const principal& who) -> asio::awaitable<response> {
    auto all = d.db.reads().with([&](store::connection& c) { return secrets::list(c, who.user_id); });
    if (!all) co_return error_response(all.err());
    json list = json::array();
    for (const auto& s : *all) list.push_back({{"name", s.name}, {"createdAt", s.created_at}, {"updatedAt", s.updated_at}});
    co_return response::json(200, {{"secrets", list}});
  }));

  r.add(verb::delete_, "/api/v1/secrets/{name}", authed(d.auth, notifying(d, [&d](request& req, const principal& who) -> asio::awaitable<response> {
    auto job = [user = who.user_id, name = req.params["name"]](store::connection& c) -> result<bool> {
      auto s = secrets::remove(c, user, name);
      if (!s) return std::move(s).err();
      return true;
    };
    auto st = co_await write<bool>(d.db.writes(), std::move(job));
    if (!st) co_return error_response(st.err());
    co_return response::json(200, {{"message", "secret deleted"}});
  })));
}

}  // namespace zapd::http
