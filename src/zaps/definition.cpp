#include "zapd/zaps/definition.hpp"

#include "zapd/core/json.hpp"

namespace zapd::zaps {
namespace {

using json = nlohmann::json;

json object_or_empty(const json& parent, const char* key) {
  auto it = parent.find(key);
  return it != parent.end() && it->is_object() ? *it : json::object();
}

}  // namespace

json retry_override::to_json() const {
  json r = json::object();
  if (attempts) r["attempts"] = *attempts;
  if (base_delay_ms) r["baseDelayMs"] = *base_delay_ms;
  return r;
}

const step* definition::step_at(int index) const {
  if (index < 1 || static_cast<std::size_t>(index) > steps.size()) return nullptr;
  return &steps[static_cast<std::size_t>(index - 1)];
}

json definition::to_json() const {
  json acts = json::array();
  for (const auto& s : steps)
    acts.push_back({{"id", s.id}, {"actionId", s.action_id}, {"sortingOrder", s.sorting_order}, {"metadata", s.metadata}});
  json out = {{"trigger", {{"id", trigger.id}, {"triggerId", trigger.trigger_id}, {"metadata", trigger.metadata}}},
              {"actions", std::move(acts)}};
  if (!retry.empty()) out["retry"] = retry.to_json();
  return out;
}

result<definition> parse_definition(const json& stored) {
  if (!stored.is_object()) return make_error(errc::internal, "a zap definition must be a JSON object");
  definition d;
  const json t = object_or_empty(stored, "trigger");
  d.trigger.id = string_field(t, "id");
  d.trigger.trigger_id = string_field(t, "triggerId");
  d.trigger.metadata = object_or_empty(t, "metadata");
  if (auto a = stored.find("actions"); a != stored.end() && a->is_array()) {
    d.steps.reserve(a->size());
    int order = 0;
    for (const auto& item : *a) {
      step s;
      s.sorting_order = order++;
      if (item.is_object()) {
        s.id = string_field(item, "id");
        s.action_id = string_field(item, "actionId");
        if (auto o = item.find("sortingOrder"); o != item.end() && o->is_number_integer()) s.sorting_order = o->get<int>();
        s.metadata = object_or_empty(item, "metadata");
      }
      d.steps.push_back(std::move(s));  // an unreadable step still counts: it fails when run
    }
  }
  if (auto r = stored.find("retry"); r != stored.end() && r->is_object()) {
    if (auto n = r->find("attempts"); n != r->end() && n->is_number_integer()) d.retry.attempts = n->get<int>();
    if (auto b = r->find("baseDelayMs"); b != r->end() && b->is_number_integer()) d.retry.base_delay_ms = b->get<std::int64_t>();
  }
  return d;
}

result<definition> parse_definition_text(std::string_view stored_text) {
  auto j = parse_json_or_discarded(stored_text, json_depth::stored);
  if (j.is_discarded() || !j.is_object()) return make_error(errc::internal, "the stored zap definition is unreadable");
  return parse_definition(j);
}

}  // namespace zapd::zaps
