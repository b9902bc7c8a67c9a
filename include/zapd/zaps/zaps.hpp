#pragma once

#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "zapd/actions/catalog.hpp"
#include "zapd/core/result.hpp"
#include "zapd/store/connection.hpp"
#include "zapd/zaps/definition.hpp"

namespace zapd::zaps {

struct limits {
  std::size_t max_actions = 50;
  std::size_t max_definition_bytes = 64 * 1024;
  std::int64_t min_schedule_interval_seconds = 60;  // schedule.min_interval_seconds
};

/// One zap as stored: its current version's name, state and definition.
struct zap_record {
  std::string id;
  std::string user_id;
  std::string name;
  bool enabled = true;
  std::int64_t version = 1;
  zaps::definition definition;
  std::string created_at;
  std::string updated_at;
};

struct version_record {
  std::int64_t version;
  std::string name;
  bool enabled;
  zaps::definition definition;
  std::string created_at;
};

/// Validates a create/replace/import body against the catalog, the user's secret names and
/// the limits. On failure: `invalid_argument` with `details` naming each field at fault.
/// On success: {"name", "definition"} with fresh trigger/action ids and canonical catalog ids.
struct validated {
  std::string name;
  zaps::definition definition;
};
result<validated> validate(const nlohmann::json& body, const actions::catalog& cat, const std::set<std::string>& secrets,
                           const limits& lim);

// Store operations. Writes run on the writer thread inside its transaction; reads on a reader.
// Another user's zap is `not_found`, exactly like a missing one.
result<zap_record> create(store::connection& c, const std::string& user_id, const validated& v);
result<zap_record> replace(store::connection& c, const std::string& user_id, const std::string& zap_id, const validated& v);
result<zap_record> patch(store::connection& c, const std::string& user_id, const std::string& zap_id,
                         const std::optional<std::string>& name, std::optional<bool> enabled);
status remove(store::connection& c, const std::string& user_id, const std::string& zap_id);
result<zap_record> get(store::connection& c, const std::string& user_id, const std::string& zap_id);
result<std::vector<zap_record>> list(store::connection& c, const std::string& user_id);
result<std::vector<version_record>> versions(store::connection& c, const std::string& user_id, const std::string& zap_id);

// Reads for the other modules (zaps owns `zaps` and `zap_versions`; nobody else names them).
/// Version `version` of a zap, whoever owns it (versions never change), in one read: its
/// definition and its name (the worker shows it as `run.zapName`). `not_found` when there is
/// no such version (the zap was deleted), `internal` when it is unreadable.
struct stored_version {
  zaps::definition definition;
  std::string name;
};
result<stored_version> version_at(store::connection& c, const std::string& zap_id, std::int64_t version);
/// What ingestion reads: the zap's owner, state and current version with its definition.
struct current_state {
  std::string user_id;
  bool enabled = true;
  std::int64_t version = 0;
};
result<std::optional<current_state>> state_of(store::connection& c, const std::string& zap_id);
struct current_zap {
  current_state state;
  zaps::definition definition;
};
result<std::optional<current_zap>> current(store::connection& c, const std::string& zap_id);
/// Every zap whose trigger is `trigger_id` (the scheduler reads the schedule zaps), enabled or not.
struct triggered_zap {
  std::string id;
  current_zap zap;
};
result<std::vector<triggered_zap>> with_trigger(store::connection& c, std::string_view trigger_id);

/// The API shape of a zap (the seeds' dashboard reads trigger.type.image, actions[].type.image).
/// `webhookUrl` is null unless the trigger is a webhook; `nextFireAt` (RFC 3339) is the next
/// slot of an enabled schedule zap after `now_ms`, else null.
nlohmann::json to_json(const zap_record& z, const actions::catalog& cat, const std::string& public_url, std::int64_t now_ms);
std::string webhook_url(const std::string& public_url, const std::string& user_id, const std::string& zap_id);
/// A portable document: catalog ids and configs (secret references, never values).
nlohmann::json export_json(const zap_record& z);

}  // namespace zapd::zaps
