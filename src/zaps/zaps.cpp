#include "zapd/zaps/zaps.hpp"

#include "zapd/core/json.hpp"

#include <tuple>

#include <fmt/format.h>

#include "zapd/core/ids.hpp"
#include "zapd/zaps/schedule.hpp"

namespace zapd::zaps {
namespace {

constexpr std::size_t k_max_name = 200;
const char* const k_select = "SELECT id, user_id, name, enabled, version, definition, created_at, updated_at FROM zaps ";

zap_record read_row(store::statement& q) {
  zap_record z;
  z.id = q.text(0);
  z.user_id = q.text(1);
  z.name = q.text(2);
  z.enabled = q.int64(3) != 0;
  z.version = q.int64(4);
  // An unreadable definition (never written by zapd) reads as an empty one.
  if (auto d = parse_definition_text(q.text(5))) z.definition = std::move(*d);
  z.created_at = q.text(6);
  z.updated_at = q.text(7);
  return z;
}

status record_version(store::connection& c, const zap_record& z) {
  auto q = c.prepare("INSERT INTO zap_versions(zap_id, version, name, enabled, definition) VALUES(?, ?, ?, ?, ?)");
  if (!q) return std::move(q).err();
  return q->bind_all(z.id, z.version, z.name, z.enabled ? 1 : 0, z.definition.to_json().dump()).run();
}

// Saves `z` (already at its new version) to zaps and zap_versions, then reads it back.
result<zap_record> save(store::connection& c, const zap_record& z, bool insert) {
  if (insert) {
    auto q = c.prepare("INSERT INTO zaps(id, user_id, name, enabled, version, definition) VALUES(?, ?, ?, ?, ?, ?)");
    if (!q) return std::move(q).err();
    auto st = q->bind_all(z.id, z.user_id, z.name, z.enabled ? 1 : 0, z.version, z.definition.to_json().dump()).run();
    if (!st) return std::move(st).err();
  } else {
    auto q = c.prepare(
        "UPDATE zaps SET name = ?, enabled = ?, version = ?, definition = ?, "
        "updated_at = strftime('%Y-%m-%dT%H:%M:%fZ','now') WHERE id = ? AND user_id = ?");
    if (!q) return std::move(q).err();
    auto st = q->bind_all(z.name, z.enabled ? 1 : 0, z.version, z.definition.to_json().dump(), z.id, z.user_id).run();
    if (!st) return std::move(st).err();
  }
  auto st = record_version(c, z);
  if (!st) return std::move(st).err();
  return get(c, z.user_id, z.id);
}

std::string trimmed(std::string s) {
  s.erase(0, s.find_first_not_of(" \t\r\n"));
  s.erase(s.find_last_not_of(" \t\r\n") + 1);
  return s;
}

}  // namespace

result<validated> validate(const nlohmann::json& body, const actions::catalog& cat, const std::set<std::string>& secrets,
                           const limits& lim) {
  std::vector<field_error> errs;
  auto fail = [&errs]() -> result<validated> {
    error e = make_error(errc::invalid_argument,
                         errs.size() == 1 ? fmt::format("{}: {}", errs[0].path, errs[0].message)
                                          : fmt::format("{} problems in the zap; see details", errs.size()));
    e.details = errs;
    return e;
  };
  if (!body.is_object()) {
    errs.push_back({"", "the body must be a JSON object"});
    return fail();
  }
  if (body.dump().size() > lim.max_definition_bytes) {
    errs.push_back({"", fmt::format("the zap is larger than {} bytes", lim.max_definition_bytes)});
    return fail();
  }

  validated v;
  v.name = "Untitled zap";
  if (body.contains("name") && !body["name"].is_null()) {
    if (!body["name"].is_string()) {
      errs.push_back({"name", "must be a string"});
    } else {
      auto n = trimmed(body["name"].get<std::string>());
      if (n.empty() || n.size() > k_max_name) errs.push_back({"name", fmt::format("must be 1..{} characters", k_max_name)});
      v.name = n;
    }
  }

  if (!body.contains("availableTriggerId") || !body["availableTriggerId"].is_string()) {
    errs.push_back({"availableTriggerId", body.contains("availableTriggerId") ? "must be a string" : "required"});
  } else {
    auto id = body["availableTriggerId"].get<std::string>();
    const auto* spec = cat.find_trigger(id);
    if (!spec) {
      errs.push_back({"availableTriggerId", fmt::format("unknown trigger '{}'", id)});
    } else {
      auto meta = actions::validate_config(*spec, body.value("triggerMetadata", nlohmann::json::object()),
                                           "triggerMetadata", secrets, errs);
      if (spec->id == k_schedule_trigger) check_schedule(meta, "triggerMetadata", lim.min_schedule_interval_seconds, errs);
      v.definition.trigger = {new_uuid(), spec->id, std::move(meta)};
    }
  }

  if (!body.contains("actions") || !body["actions"].is_array()) {
    errs.push_back({"actions", body.contains("actions") ? "must be a list" : "required"});
  } else if (body["actions"].size() > lim.max_actions) {
    errs.push_back({"actions", fmt::format("at most {} actions", lim.max_actions)});
  } else {
    const auto& list = body["actions"];
    for (std::size_t i = 0; i < list.size(); ++i) {
      std::string path = fmt::format("actions[{}]", i);
      const auto& a = list[i];
      if (!a.is_object()) {
        errs.push_back({path, "must be an object"});
        continue;
      }
      if (!a.contains("availableActionId") || !a["availableActionId"].is_string()) {
        errs.push_back({path + ".availableActionId", a.contains("availableActionId") ? "must be a string" : "required"});
        continue;
      }
      auto id = a["availableActionId"].get<std::string>();
      const auto* spec = cat.find_action(id);
      if (!spec) {
        errs.push_back({path + ".availableActionId", fmt::format("unknown action '{}'", id)});
        continue;
      }
      auto meta = actions::validate_config(*spec, a.value("actionMetadata", nlohmann::json::object()),
                                           path + ".actionMetadata", secrets, errs);
      v.definition.steps.push_back({new_uuid(), spec->id, static_cast<int>(i), std::move(meta)});
    }
  }
  // Optional per-zap retry policy: {"attempts": 1..20, "baseDelayMs": 100..3600000}.
  if (body.contains("retry") && !body["retry"].is_null()) {
    const auto& r = body["retry"];
    if (!r.is_object()) {
      errs.push_back({"retry", "must be an object {attempts, baseDelayMs}"});
    } else {
      for (const auto& [key, lo, hi] : {std::tuple{"attempts", 1, 20}, std::tuple{"baseDelayMs", 100, 3'600'000}}) {
        if (!r.contains(key)) continue;
        auto n = actions::bounded_integer(r[key], lo, hi);  // the catalog's integer rule
        if (!n) {
          errs.push_back({fmt::format("retry.{}", key), n.err().message});
        } else if (std::string_view(key) == "attempts") {
          v.definition.retry.attempts = static_cast<int>(*n);
        } else {
          v.definition.retry.base_delay_ms = *n;
        }
      }
      for (const auto& [key, _] : r.items())
        if (key != "attempts" && key != "baseDelayMs") errs.push_back({"retry." + key, "unknown field"});
    }
  }
  if (!errs.empty()) return fail();
  return v;
}

result<zap_record> create(store::connection& c, const std::string& user_id, const validated& v) {
  zap_record z;
  z.id = new_uuid();
  z.user_id = user_id;
  z.name = v.name;
  z.enabled = true;
  z.version = 1;
  z.definition = v.definition;
  return save(c, z, true);
}

result<zap_record> replace(store::connection& c, const std::string& user_id, const std::string& zap_id, const validated& v) {
  auto z = get(c, user_id, zap_id);
  if (!z) return z;
  z->name = v.name;
  z->definition = v.definition;
  z->version += 1;
  return save(c, *z, false);
}

result<zap_record> patch(store::connection& c, const std::string& user_id, const std::string& zap_id,
                         const std::optional<std::string>& name, std::optional<bool> enabled) {
  auto z = get(c, user_id, zap_id);
  if (!z) return z;
  if (name) z->name = *name;
  if (enabled) z->enabled = *enabled;
  z->version += 1;
  return save(c, *z, false);
}

status remove(store::connection& c, const std::string& user_id, const std::string& zap_id) {
  auto q = c.prepare("DELETE FROM zaps WHERE id = ? AND user_id = ?");
  if (!q) return std::move(q).err();
  auto st = q->bind_all(zap_id, user_id).run();
  if (!st) return st;
  if (c.changes() == 0) return make_error(errc::not_found, "zap not found");
  return {};
}

result<zap_record> get(store::connection& c, const std::string& user_id, const std::string& zap_id) {
  auto q = c.prepare(std::string(k_select) + "WHERE id = ? AND user_id = ?");
  if (!q) return std::move(q).err();
  q->bind_all(zap_id, user_id);
  auto row = q->step();
  if (!row) return std::move(row).err();
  if (!*row) return make_error(errc::not_found, "zap not found");
  return read_row(*q);
}

result<std::vector<zap_record>> list(store::connection& c, const std::string& user_id) {
  auto q = c.prepare(std::string(k_select) + "WHERE user_id = ? ORDER BY created_at DESC, id");
  if (!q) return std::move(q).err();
  q->bind(1, user_id);
  return q->collect<zap_record>(read_row);
}

result<std::vector<version_record>> versions(store::connection& c, const std::string& user_id, const std::string& zap_id) {
  auto z = get(c, user_id, zap_id);
  if (!z) return std::move(z).err();
  auto q = c.prepare(
      "SELECT version, name, enabled, definition, created_at FROM zap_versions WHERE zap_id = ? ORDER BY version DESC");
  if (!q) return std::move(q).err();
  q->bind(1, zap_id);
  return q->collect<version_record>([](store::statement& r) {
    auto def = parse_definition_text(r.text(3));
    return version_record{r.int64(0), r.text(1), r.int64(2) != 0, def ? std::move(*def) : definition{}, r.text(4)};
  });
}

std::string webhook_url(const std::string& public_url, const std::string& user_id, const std::string& zap_id) {
  return fmt::format("{}/hooks/catch/{}/{}", public_url, user_id, zap_id);
}

namespace {
// The zap's retry override as the API shows it: {attempts?, baseDelayMs?} or null.
nlohmann::json retry_json(const definition& d) { return d.retry.empty() ? nlohmann::json(nullptr) : d.retry.to_json(); }
// Only a webhook zap has a URL to call; a schedule zap answers its would-be URL with 409.
nlohmann::json webhook_json(const zap_record& z, const std::string& public_url) {
  if (z.definition.trigger.trigger_id != "webhook") return nullptr;
  return webhook_url(public_url, z.user_id, z.id);
}
nlohmann::json next_fire_json(const zap_record& z, std::int64_t now_ms) {
  auto next = next_fire_at(z.definition, z.enabled, now_ms);
  return next ? nlohmann::json(cron::rfc3339(*next)) : nlohmann::json(nullptr);
}
}  // namespace

nlohmann::json to_json(const zap_record& z, const actions::catalog& cat, const std::string& public_url, std::int64_t now_ms) {
  const auto& t = z.definition.trigger;
  nlohmann::json trigger = {{"id", t.id}, {"triggerId", t.trigger_id}, {"metadata", t.metadata}};
  if (const auto* s = cat.find_trigger(t.trigger_id)) trigger["type"] = cat.type_json(*s, public_url);
  nlohmann::json acts = nlohmann::json::array();
  for (const auto& a : z.definition.steps) {
    nlohmann::json j = {{"id", a.id}, {"actionId", a.action_id}, {"sortingOrder", a.sorting_order}, {"metadata", a.metadata}};
    if (const auto* s = cat.find_action(a.action_id)) j["type"] = cat.type_json(*s, public_url);
    acts.push_back(std::move(j));
  }
  return {{"id", z.id},          {"name", z.name},           {"enabled", z.enabled},
          {"version", z.version}, {"createdAt", z.created_at}, {"updatedAt", z.updated_at},
          {"userId", z.user_id},  {"webhookUrl", webhook_json(z, public_url)},
          {"trigger", trigger},   {"actions", acts},
          {"retry", retry_json(z.definition)}, {"nextFireAt", next_fire_json(z, now_ms)}};
}

nlohmann::json export_json(const zap_record& z) {
  nlohmann::json acts = nlohmann::json::array();
  for (const auto& a : z.definition.steps) acts.push_back({{"availableActionId", a.action_id}, {"actionMetadata", a.metadata}});
  return {{"format", "zapd.zap"},
          {"formatVersion", 1},
          {"name", z.name},
          {"availableTriggerId", z.definition.trigger.trigger_id},
          {"triggerMetadata", z.definition.trigger.metadata},
          {"actions", acts},
          {"retry", retry_json(z.definition)}};
}

result<stored_version> version_at(store::connection& c, const std::string& zap_id, std::int64_t version) {
  auto q = c.prepare("SELECT definition, name FROM zap_versions WHERE zap_id = ? AND version = ?");
  if (!q) return std::move(q).err();
  q->bind_all(zap_id, version);
  auto row = q->step();
  if (!row) return std::move(row).err();
  if (!*row) return make_error(errc::not_found, fmt::format("zap {} has no version {}", zap_id, version));
  auto d = parse_definition_text(q->text(0));
  if (!d) return make_error(errc::internal, fmt::format("zap {} version {} is unreadable", zap_id, version));
  return stored_version{std::move(*d), q->text(1)};
}

result<std::optional<current_state>> state_of(store::connection& c, const std::string& zap_id) {
  auto q = c.prepare("SELECT user_id, enabled, version FROM zaps WHERE id = ?");
  if (!q) return std::move(q).err();
  q->bind_all(zap_id);
  auto row = q->step();
  if (!row) return std::move(row).err();
  if (!*row) return std::optional<current_state>{};
  return std::optional<current_state>(current_state{q->text(0), q->int64(1) != 0, q->int64(2)});
}

result<std::vector<triggered_zap>> with_trigger(store::connection& c, std::string_view trigger_id) {
  auto q = c.prepare(
      "SELECT id, user_id, enabled, version, definition FROM zaps WHERE json_extract(definition, '$.trigger.triggerId') = ?");
  if (!q) return std::move(q).err();
  q->bind_all(std::string(trigger_id));
  std::vector<triggered_zap> out;
  for (;;) {
    auto row = q->step();
    if (!row) return std::move(row).err();
    if (!*row) break;
    auto d = parse_definition_text(q->text(4));
    if (!d) continue;  // unreadable (never written by zapd): nothing to run
    out.push_back({q->text(0), {{q->text(1), q->int64(2) != 0, q->int64(3)}, std::move(*d)}});
  }
  return out;
}

result<std::optional<current_zap>> current(store::connection& c, const std::string& zap_id) {
  auto q = c.prepare("SELECT user_id, enabled, version, definition FROM zaps WHERE id = ?");
  if (!q) return std::move(q).err();
  q->bind_all(zap_id);
  auto row = q->step();
  if (!row) return std::move(row).err();
  if (!*row) return std::optional<current_zap>{};
  auto d = parse_definition_text(q->text(3));
  if (!d) return make_error(errc::internal, fmt::format("zap {} has an unreadable definition", zap_id));
  return std::optional<current_zap>(current_zap{{q->text(0), q->int64(1) != 0, q->int64(2)}, std::move(*d)});
}

}  // namespace zapd::zaps
