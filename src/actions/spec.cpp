#include "zapd/actions/spec.hpp"

#include <regex>

#include <fmt/format.h>

namespace zapd::actions {
namespace {

std::string_view type_name(field_type t) {
  switch (t) {
    case field_type::string: return "string";
    case field_type::text: return "text";
    case field_type::integer: return "integer";
    case field_type::boolean: return "boolean";
    case field_type::choice: return "choice";
    case field_type::string_map: return "string_map";
    case field_type::string_list: return "string_list";
  }
  return "string";
}

bool has_template(std::string_view s) { return s.find("{{") != std::string_view::npos; }

// The seeds' single-brace form {comment.email} is a template too (email fields render it).
bool has_any_template(std::string_view s) {
  static const std::regex single(R"(\{[A-Za-z_][A-Za-z0-9_.\[\]-]*\})");
  return has_template(s) || std::regex_search(s.begin(), s.end(), single);
}

void check_string(const field_spec& f, const std::string& v, const std::string& path, std::vector<field_error>& out) {
  if (!f.templates && has_template(v)) {
    out.push_back({path, "templates are not allowed in this field"});
    return;
  }
  if (f.max_length && v.size() > f.max_length) {
    out.push_back({path, fmt::format("longer than {} characters", f.max_length)});
    return;
  }
  if (f.required && v.empty()) {
    out.push_back({path, "required"});
    return;
  }
  if (v.empty() || has_any_template(v)) return;  // a template is checked when it renders
  if (f.format == field_format::url && !(v.starts_with("http://") || v.starts_with("https://")))
    out.push_back({path, "must be an http:// or https:// URL"});
  if (f.format == field_format::email && !looks_like_email(v))
    out.push_back({path, fmt::format("'{}' is not an email address", v)});
  if (f.type == field_type::choice) {
    bool ok = false;
    for (const auto& c : f.choices) ok = ok || c == v;
    if (!ok) out.push_back({path, fmt::format("must be one of {}", fmt::join(f.choices, ", "))});
  }
}

void check_value(const field_spec& f, const nlohmann::json& v, const std::string& path, std::vector<field_error>& out) {
  switch (f.type) {
    case field_type::string:
    case field_type::text:
    case field_type::choice:
      if (!v.is_string()) return out.push_back({path, "must be a string"});
      return check_string(f, v.get<std::string>(), path, out);
    case field_type::integer:
      if (!v.is_number_integer()) out.push_back({path, "must be an integer"});
      return;
    case field_type::boolean:
      if (!v.is_boolean()) out.push_back({path, "must be true or false"});
      return;
    case field_type::string_map:
      if (!v.is_object()) return out.push_back({path, "must be an object of strings"});
      for (const auto& [k, item] : v.items()) {
        if (!item.is_string()) {
          out.push_back({path + "." + k, "must be a string"});
          continue;
        }
        check_string(f, item.get<std::string>(), path + "." + k, out);
      }
      return;
    case field_type::string_list:
      if (v.is_string()) {
        // A comma-separated list is accepted too: "a@x.org, b@y.org".
        std::string s = v.get<std::string>();
        if (f.required && s.empty()) return out.push_back({path, "required"});
        std::size_t start = 0;
        while (start <= s.size()) {
          auto comma = s.find(',', start);
          std::string item = s.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
          item.erase(0, item.find_first_not_of(' '));
          item.erase(item.find_last_not_of(' ') + 1);
          if (!item.empty()) check_string(f, item, path, out);
          if (comma == std::string::npos) break;
          start = comma + 1;
        }
        return;
      }
      if (!v.is_array()) return out.push_back({path, "must be a string or a list of strings"});
      if (f.required && v.empty()) return out.push_back({path, "required"});
      for (std::size_t i = 0; i < v.size(); ++i) {
        auto p = fmt::format("{}[{}]", path, i);
        if (!v[i].is_string()) {
          out.push_back({p, "must be a string"});
          continue;
        }
        check_string(f, v[i].get<std::string>(), p, out);
      }
      return;
  }
}

void collect_secrets(const nlohmann::json& j, std::set<std::string>& out) {
  static const std::regex ref(R"(\{\{\s*secrets\.([A-Za-z0-9_-]+)\s*\}\})");
  if (j.is_string()) {
    const auto& s = j.get_ref<const std::string&>();
    for (auto it = std::sregex_iterator(s.begin(), s.end(), ref); it != std::sregex_iterator(); ++it) out.insert((*it)[1]);
  } else if (j.is_structured()) {
    for (const auto& item : j) collect_secrets(item, out);
  }
}

}  // namespace

bool looks_like_email(std::string_view s) {
  static const std::regex re(R"(^[^\s@<>,;"]+@[^\s@<>,;"]+\.[^\s@<>,;"]+$)");
  return std::regex_match(s.begin(), s.end(), re);
}

std::set<std::string> secret_references(const nlohmann::json& j) {
  std::set<std::string> out;
  collect_secrets(j, out);
  return out;
}

nlohmann::json config_schema_json(const spec& s) {
  nlohmann::json fields = nlohmann::json::array();
  for (const auto& f : s.fields) {
    if (!f.alias_of.empty()) continue;  // input-only spellings are not advertised
    nlohmann::json j = {{"name", f.name},         {"type", type_name(f.type)}, {"required", f.required},
                        {"default", f.default_value}, {"help", f.help},      {"templates", f.templates}};
    if (!f.choices.empty()) j["choices"] = f.choices;
    if (f.format == field_format::url) j["format"] = "url";
    if (f.format == field_format::email) j["format"] = "email";
    fields.push_back(std::move(j));
  }
  return {{"fields", fields}};
}

nlohmann::json validate_config(const spec& s, const nlohmann::json& config, const std::string& path,
                               const std::set<std::string>& known_secrets, std::vector<field_error>& out) {
  if (config.is_null()) return validate_config(s, nlohmann::json::object(), path, known_secrets, out);
  if (!config.is_object()) {
    out.push_back({path, "must be an object"});
    return nlohmann::json::object();
  }
  nlohmann::json normal = nlohmann::json::object();
  for (const auto& [key, value] : config.items()) {
    const field_spec* f = nullptr;
    for (const auto& cand : s.fields)
      if (cand.name == key) f = &cand;
    if (!f) {
      out.push_back({path + "." + key, fmt::format("unknown field for {}", s.id)});
      continue;
    }
    std::string target = f->alias_of.empty() ? f->name : f->alias_of;
    if (!f->alias_of.empty() && config.contains(f->alias_of)) {
      out.push_back({path + "." + key, fmt::format("give either '{}' or '{}', not both", key, f->alias_of)});
      continue;
    }
    check_value(*f, value, path + "." + key, out);
    normal[target] = value;
  }
  for (const auto& f : s.fields) {
    if (!f.required || !f.alias_of.empty() || normal.contains(f.name)) continue;
    out.push_back({path + "." + f.name, "required"});
  }
  for (const auto& name : secret_references(normal)) {
    if (!known_secrets.count(name)) out.push_back({path, fmt::format("unknown secret '{}'; create it first", name)});
  }
  return normal;
}

}  // namespace zapd::actions
