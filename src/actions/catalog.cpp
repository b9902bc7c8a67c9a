#include "zapd/actions/catalog.hpp"

namespace zapd::actions {

const catalog& catalog::builtin() {
  static const catalog c = [] {
    catalog k;
    k.triggers_.push_back(webhook_trigger_spec());
    k.triggers_.push_back(schedule_trigger_spec());
    k.actions_.push_back(http_action_spec());
    k.actions_.push_back(email_action_spec());
    k.actions_.push_back(filter_action_spec());
    k.actions_.push_back(delay_action_spec());
    k.actions_.push_back(formatter_action_spec());
    return k;
  }();
  return c;
}

namespace {
const spec* find_in(const std::vector<spec>& all, std::string_view id) {
  for (const auto& s : all) {
    if (s.id == id) return &s;
    for (const auto& a : s.aliases)
      if (a == id) return &s;
  }
  return nullptr;
}
}  // namespace

const spec* catalog::find_trigger(std::string_view id) const { return find_in(triggers_, id); }
const spec* catalog::find_action(std::string_view id) const { return find_in(actions_, id); }

const std::string* catalog::icon(std::string_view id) const {
  for (const auto* all : {&triggers_, &actions_})
    for (const auto& s : *all)
      if (s.id == id) return &s.icon_svg;
  return nullptr;
}

nlohmann::json catalog::type_json(const spec& s, const std::string& public_url) const {
  return {{"id", s.id}, {"name", s.name}, {"image", public_url + "/static/icons/" + s.id + ".svg"}};
}

nlohmann::json catalog::entry_json(const spec& s, const std::string& public_url) const {
  auto j = type_json(s, public_url);
  j["description"] = s.description;
  j["configSchema"] = config_schema_json(s);
  return j;
}

}  // namespace zapd::actions
