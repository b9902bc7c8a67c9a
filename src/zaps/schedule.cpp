#include "zapd/zaps/schedule.hpp"

#include <fmt/format.h>

#include "zapd/actions/catalog.hpp"

namespace zapd::zaps {
namespace {

error invalid(std::vector<field_error> errs) {
  error e = make_error(errc::invalid_argument, errs.size() == 1 ? fmt::format("{}: {}", errs[0].path, errs[0].message)
                                                                : fmt::format("{} problems in the schedule; see details", errs.size()));
  e.details = std::move(errs);
  return e;
}

std::string sub(const std::string& path, const char* key) { return path.empty() ? key : path + "." + key; }

// Parses without the frequency rule; problems go to `out`.
std::optional<schedule_config> parse(const nlohmann::json& meta, const std::string& path, std::vector<field_error>& out) {
  if (!meta.is_object()) {
    out.push_back({path, "must be an object"});
    return std::nullopt;
  }
  const auto cron_it = meta.find("cron");
  const bool has_cron = cron_it != meta.end() && !cron_it->is_null() &&
                        !(cron_it->is_string() && cron_it->get_ref<const std::string&>().empty());
  const auto every_it = meta.find("intervalSeconds");
  const bool has_every = every_it != meta.end() && !every_it->is_null();
  if (has_cron && has_every) {
    out.push_back({sub(path, "intervalSeconds"), "give cron or intervalSeconds, not both"});
    return std::nullopt;
  }
  if (!has_cron && !has_every) {
    out.push_back({sub(path, "cron"), "required: a cron expression such as */15 * * * *, or intervalSeconds"});
    return std::nullopt;
  }
  std::string tz = "UTC";
  if (auto t = meta.find("timezone"); t != meta.end() && !t->is_null()) {
    if (!t->is_string()) {
      out.push_back({sub(path, "timezone"), "must be a string"});
      return std::nullopt;
    }
    if (!t->get_ref<const std::string&>().empty()) tz = t->get<std::string>();
  }
  if (auto zone = cron::find_zone(tz); !zone) {
    out.push_back({sub(path, "timezone"), zone.err().message});
    return std::nullopt;
  }
  schedule_config c{*cron::schedule::every(1), false};
  if (auto k = meta.find("catchUp"); k != meta.end() && k->is_string()) c.catch_up_last = k->get_ref<const std::string&>() == "last";
  if (has_cron) {
    if (!cron_it->is_string()) {
      out.push_back({sub(path, "cron"), "must be a string"});
      return std::nullopt;
    }
    auto s = cron::schedule::parse_cron(cron_it->get_ref<const std::string&>(), tz);
    if (!s) {
      out.push_back({sub(path, "cron"), s.err().message});
      return std::nullopt;
    }
    c.when = std::move(*s);
    return c;
  }
  auto n = actions::bounded_integer(*every_it, 1, 31'536'000);  // the catalog field's range
  if (!n) {
    out.push_back({sub(path, "intervalSeconds"), n.err().message});
    return std::nullopt;
  }
  auto s = cron::schedule::every(*n, tz);
  if (!s) {
    out.push_back({sub(path, "intervalSeconds"), s.err().message});
    return std::nullopt;
  }
  c.when = std::move(*s);
  return c;
}

}  // namespace

result<schedule_config> schedule_of(const nlohmann::json& metadata, const std::string& path) {
  std::vector<field_error> errs;
  auto c = parse(metadata, path, errs);
  if (!c) return invalid(std::move(errs));
  return std::move(*c);
}

void check_schedule(const nlohmann::json& metadata, const std::string& path, std::int64_t min_interval_seconds,
                    std::vector<field_error>& out) {
  auto c = parse(metadata, path, out);
  if (!c) return;
  // A cron slot is a whole minute: nothing to walk (this runs inside the writer's transaction).
  if (!c->when.is_interval() && min_interval_seconds <= 60) return;
  const std::int64_t gap = c->when.min_gap_seconds();
  if (gap < min_interval_seconds)
    out.push_back({sub(path, c->when.is_interval() ? "intervalSeconds" : "cron"),
                   fmt::format("fires every {} s; schedule.min_interval_seconds allows at most one run per {} s", gap,
                               min_interval_seconds)});
}

std::optional<std::int64_t> next_fire_at(const definition& d, bool enabled, std::int64_t now_ms) {
  if (!enabled || d.trigger.trigger_id != k_schedule_trigger) return std::nullopt;
  auto c = schedule_of(d.trigger.metadata);
  if (!c) return std::nullopt;
  return c->when.next_after(now_ms);
}

result<std::vector<std::int64_t>> preview(const nlohmann::json& body, std::int64_t min_interval_seconds, std::int64_t now_ms,
                                          int count) {
  std::vector<field_error> errs;
  const auto* spec = actions::catalog::builtin().find_trigger(k_schedule_trigger);
  nlohmann::json meta = body;
  if (spec && body.is_object()) {
    // The catalog's per-field rules (types, lengths, unknown fields), then the schedule's own.
    nlohmann::json only = nlohmann::json::object();
    for (const auto& [k, v] : body.items())
      if (k != "catchUp") only[k] = v;
    meta = actions::validate_config(*spec, only, "", {}, errs);
    for (auto& e : errs)
      if (e.path.starts_with('.')) e.path.erase(0, 1);
  }
  if (errs.empty()) check_schedule(meta, "", min_interval_seconds, errs);
  if (!errs.empty()) return invalid(std::move(errs));
  auto c = parse(meta, "", errs);
  std::vector<std::int64_t> out;
  std::int64_t t = now_ms;
  for (int i = 0; c && i < count; ++i) {
    auto next = c->when.next_after(t);
    if (!next) break;
    out.push_back(*next);
    t = *next;
  }
  return out;
}

}  // namespace zapd::zaps
