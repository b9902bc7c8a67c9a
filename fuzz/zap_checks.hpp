// Checks shared by zap_validate_fuzz and zap_import_fuzz (see README.md).
#pragma once

#include <cstdio>
#include <cstdlib>
#include <set>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "zapd/actions/catalog.hpp"
#include "zapd/actions/spec.hpp"
#include "zapd/core/json.hpp"
#include "zapd/zaps/zaps.hpp"

namespace zap_fuzz {

using nlohmann::json;
namespace zaps = zapd::zaps;

[[noreturn]] inline void fail(const char* target, const char* what, std::string_view input, const std::string& more = {}) {
  std::fprintf(stderr, "%s: %s\ninput: %.*s\n%s\n", target, what, static_cast<int>(input.size() > 4000 ? 4000 : input.size()),
               input.data(), more.c_str());
  std::abort();
}

inline bool strict_dump_ok(const json& j) {
  try {
    (void)j.dump();
    return true;
  } catch (const json::exception&) {
    return false;
  }
}

/// The secret names and limits an input byte selects.
inline const std::set<std::string>& secret_names(unsigned char flags) {
  static const std::set<std::string> none;
  static const std::set<std::string> some = {"token", "stripe_key", "SIGNING"};
  return (flags & 1) ? some : none;
}
inline zaps::limits limits_for(unsigned char flags) {
  zaps::limits l;
  if (flags & 2) {
    l.max_actions = 2;
    l.max_definition_bytes = 600;
  }
  return l;
}

/// A definition without its generated ids (trigger.id, actions[].id).
inline json without_ids(json def) {
  if (def.contains("trigger") && def["trigger"].is_object()) def["trigger"].erase("id");
  if (def.contains("actions") && def["actions"].is_array())
    for (auto& a : def["actions"])
      if (a.is_object()) a.erase("id");
  return def;
}

/// What every validate() outcome must satisfy. `in` is only for messages.
inline void check_outcome(const char* target, std::string_view in, const zapd::result<zaps::validated>& v,
                          const std::set<std::string>& secrets, const zaps::limits& lim) {
  const auto& cat = zapd::actions::catalog::builtin();
  if (!v) {
    const auto& e = v.err();
    if (e.code != zapd::errc::invalid_argument) fail(target, "refusal is not invalid_argument", in, e.message);
    if (e.details.empty()) fail(target, "refusal without details", in, e.message);
    json details = json::array();
    for (const auto& d : e.details) details.push_back({{"path", d.path}, {"message", d.message}});
    if (!strict_dump_ok(json{{"message", e.message}, {"details", details}}))
      fail(target, "refusal is not valid UTF-8", in, zapd::dump_safe(details));
    return;
  }
  const json def = v->definition.to_json();
  if (v->name.empty() || !strict_dump_ok(json(v->name))) fail(target, "bad name", in, v->name);
  if (!strict_dump_ok(def)) fail(target, "definition does not dump", in);
  const std::string text = def.dump();
  if (!zapd::parse_json(text, zapd::json_depth::stored)) fail(target, "definition does not parse back (stored limit)", in, text);
  if (!def["trigger"].is_object() || !def["trigger"]["triggerId"].is_string() ||
      !cat.find_trigger(def["trigger"]["triggerId"].get<std::string>()))
    fail(target, "definition without a known trigger", in, text);
  if (!def["actions"].is_array() || def["actions"].size() > lim.max_actions) fail(target, "actions not a list within the limit", in, text);
  for (const auto& a : def["actions"])
    if (!a["actionId"].is_string() || !cat.find_action(a["actionId"].get<std::string>()) || !a["metadata"].is_object())
      fail(target, "action without a known id or metadata object", in, text);
  for (const auto& name : zapd::actions::secret_references(def))
    if (!secrets.count(name)) fail(target, "a saved zap references an unknown secret", in, name);
  // The API shape of the saved zap must build too.
  zaps::zap_record z;
  z.id = "zap-1";
  z.user_id = "user-1";
  z.name = v->name;
  z.definition = v->definition;
  (void)zapd::dump_safe(zaps::to_json(z, cat, "http://127.0.0.1:8080", 1'700'000'000'000));  // nextFireAt from a fixed now
}

/// The export document of a validated zap.
inline json exported(const zaps::validated& v) {
  zaps::zap_record z;
  z.id = "zap-1";
  z.user_id = "user-1";
  z.name = v.name;
  z.definition = v.definition;
  return zaps::export_json(z);
}

}  // namespace zap_fuzz
