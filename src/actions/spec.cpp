#include "zapd/actions/spec.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <regex>
#include <sstream>

#include <date/date.h>

#include <fmt/format.h>
#include <re2/re2.h>

#include "zapd/core/json.hpp"
#include "zapd/templates/template.hpp"

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
    case field_type::conditions: return "conditions";
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
  // Unknown filters, bad filter arguments: a 400 at save rather than a warning on every run.
  if (has_template(v))
    for (auto& problem : templates::check(v)) out.push_back({path, std::move(problem)});
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
  if (f.format == field_format::duration)
    if (auto d = parse_duration(v); !d) out.push_back({path, d.err().message});
  if (f.format == field_format::email && !looks_like_email(v))
    out.push_back({path, fmt::format("'{}' is not an email address", v)});
  if (f.type == field_type::choice) {
    bool ok = false;
    for (const auto& c : f.choices) ok = ok || c == v;
    if (!ok) out.push_back({path, fmt::format("must be one of {}", fmt::join(f.choices, ", "))});
  }
}

// A header name as it can be shown in a message: ASCII, control and non-ASCII bytes escaped
// (a cut cannot split a UTF-8 sequence), long names cut.
std::string printable(std::string_view s) {
  constexpr std::size_t k_shown = 64;
  std::string out;
  for (char c : s.substr(0, k_shown)) {
    const auto u = static_cast<unsigned char>(c);
    if (c == '\r') out += "\\r";
    else if (c == '\n') out += "\\n";
    else if (u < 0x20 || u >= 0x7F) out += fmt::format("\\x{:02x}", u);
    else out += c;
  }
  if (s.size() > k_shown) out += "...";
  return out;
}

// The http action's headers: a name that is not a token, or a value with CR/LF/NUL, would be
// refused by the HTTP client on every attempt (or split the request); refuse it at save.
bool check_header(const std::string& name, const std::string& value, const std::string& path, std::vector<field_error>& out) {
  if (name.empty()) {
    out.push_back({path, "a header name cannot be empty"});
    return false;
  }
  if (!is_http_token(name)) {
    out.push_back({path, fmt::format("'{}' is not a valid header name (letters, digits and !#$%&'*+-.^_`|~ only)", printable(name))});
    return false;
  }
  if (value.find_first_of(std::string_view("\r\n\0", 3)) != std::string::npos) {
    out.push_back({path, fmt::format("the value of header '{}' contains a line break or NUL", name)});
    return false;
  }
  return true;
}

// An integer field's value against its bounds (a field without them: anything in int64).
result<std::int64_t> field_integer(const field_spec& f, const nlohmann::json& v) {
  return bounded_integer(v, f.minimum.value_or(std::numeric_limits<std::int64_t>::min()),
                         f.maximum.value_or(std::numeric_limits<std::int64_t>::max()));
}

// The filter step's rows: [{left, op, right}], left/right templates, op from condition_ops.
void check_conditions(const field_spec& f, const nlohmann::json& v, const std::string& path, std::vector<field_error>& out) {
  if (!v.is_array()) return out.push_back({path, "must be a list of {left, op, right} conditions"});
  if (f.required && v.empty()) return out.push_back({path, "add at least one condition"});
  if (v.size() > k_max_conditions) return out.push_back({path, fmt::format("at most {} conditions", k_max_conditions)});
  const field_spec operand{.name = "operand", .type = field_type::string, .templates = true, .max_length = 4096};
  for (std::size_t i = 0; i < v.size(); ++i) {
    const auto p = fmt::format("{}[{}]", path, i);
    const auto& row = v[i];
    if (!row.is_object()) {
      out.push_back({p, "must be an object {left, op, right}"});
      continue;
    }
    for (const auto& [k, item] : row.items())
      if (k != "left" && k != "op" && k != "right") out.push_back({p + "." + k, "unknown field (a condition has left, op, right)"});
    auto op = row.find("op");
    if (op == row.end() || !op->is_string()) {
      out.push_back({p + ".op", fmt::format("required: one of {}", fmt::join(condition_ops(), ", "))});
      continue;
    }
    const auto& name = op->get_ref<const std::string&>();
    if (std::find(condition_ops().begin(), condition_ops().end(), name) == condition_ops().end()) {
      out.push_back({p + ".op", fmt::format("'{}' is not an operator; use one of {}", printable(name), fmt::join(condition_ops(), ", "))});
      continue;
    }
    auto left = row.find("left");
    if (left == row.end() || !left->is_string() || left->get_ref<const std::string&>().empty())
      out.push_back({p + ".left", "required: a value or a template such as {{body.status}}"});
    else
      check_string(operand, left->get<std::string>(), p + ".left", out);
    auto right = row.find("right");
    const bool unary = condition_op_is_unary(name);
    if (right != row.end() && !right->is_string() && !(unary && right->is_null())) {
      out.push_back({p + ".right", "must be a string"});
      continue;
    }
    if (unary) {
      if (right != row.end() && right->is_string() && !right->get_ref<const std::string&>().empty())
        out.push_back({p + ".right", fmt::format("'{}' takes no right-hand value", name)});
      continue;
    }
    if (right == row.end()) {
      out.push_back({p + ".right", fmt::format("required: '{}' compares with a right-hand value", name)});
      continue;
    }
    const auto& r = right->get_ref<const std::string&>();
    check_string(operand, r, p + ".right", out);
    if (name == "matches" && !has_template(r)) {
      RE2::Options o;
      o.set_log_errors(false);
      o.set_max_mem(k_regex_max_mem);
      RE2 re(r, o);
      if (!re.ok()) out.push_back({p + ".right", fmt::format("not a valid regular expression (RE2 syntax): {}", re.error())});
    }
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
      if (auto n = field_integer(f, v); !n) out.push_back({path, n.err().message});
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
        if (f.format == field_format::headers && !check_header(k, item.get_ref<const std::string&>(), path + "." + k, out)) continue;
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
    case field_type::conditions:
      return check_conditions(f, v, path, out);
  }
}

void collect_secrets(const nlohmann::json& j, std::set<std::string>& out) {
  static const std::regex ref(R"(\{\{\s*secrets\.([A-Za-z0-9_-]+)\s*(\}\}|\|))");  // `| filter` may follow
  if (j.is_string()) {
    const auto& s = j.get_ref<const std::string&>();
    for (auto it = std::sregex_iterator(s.begin(), s.end(), ref); it != std::sregex_iterator(); ++it) out.insert((*it)[1]);
  } else if (j.is_structured()) {
    for (const auto& item : j) collect_secrets(item, out);
  }
}

}  // namespace

std::optional<std::int64_t> parse_rfc3339_ms(std::string_view text) {
  text = trim(text);
  if (text.size() < 20 || text.size() > 40) return std::nullopt;
  std::string t(text);
  for (auto& c : t) {
    if (c == 't' || c == ' ') c = 'T';
    if (c == 'z') c = 'Z';
  }
  for (const char* f : {"%FT%T%Ez", "%FT%TZ"}) {
    std::istringstream in(t);
    date::sys_time<std::chrono::milliseconds> tp;
    in >> date::parse(f, tp);
    if (!in.fail() && in.peek() == std::char_traits<char>::eof())
      return std::chrono::duration_cast<std::chrono::milliseconds>(tp.time_since_epoch()).count();
  }
  return std::nullopt;
}

const std::vector<std::string>& condition_ops() {
  static const std::vector<std::string> ops = {
      "exists", "notExists", "equals", "notEquals", "contains", "notContains", "startsWith", "endsWith", "gt", "gte",
      "lt",     "lte",       "matches", "isTrue",   "isFalse",  "isEmpty"};
  return ops;
}

bool condition_op_is_unary(std::string_view op) {
  return op == "exists" || op == "notExists" || op == "isTrue" || op == "isFalse" || op == "isEmpty";
}

result<std::chrono::milliseconds> parse_duration(std::string_view text) {
  using std::chrono::milliseconds;
  constexpr std::int64_t k_max_ms = std::int64_t{10} * 366 * 24 * 3600 * 1000;
  auto bad = [&](std::string_view why) {
    return make_error(errc::invalid_argument,
                      fmt::format("'{}' is not a duration ({}); write 90s, 5m, 2h, 1d or ISO 8601 like PT5M",
                                  printable(text), why));
  };
  std::string_view t = text;
  while (!t.empty() && t.front() == ' ') t.remove_prefix(1);
  while (!t.empty() && t.back() == ' ') t.remove_suffix(1);
  if (t.empty()) return bad("empty");
  // One number and its unit: digits then one of ms, s, m, h, d, w.
  auto unit_ms = [](std::string_view u) -> std::int64_t {
    if (u == "ms") return 1;
    if (u == "s" || u == "S") return 1000;
    if (u == "m" || u == "M") return 60'000;
    if (u == "h" || u == "H") return 3'600'000;
    if (u == "d" || u == "D") return 86'400'000;
    if (u == "w" || u == "W") return 604'800'000;
    return 0;
  };
  auto add = [&](std::int64_t& total, std::string_view digits, std::int64_t unit) -> bool {
    if (digits.empty() || digits.size() > 12) return false;
    std::int64_t n = 0;
    for (char c : digits) n = n * 10 + (c - '0');
    if (n > k_max_ms / unit) return false;
    total += n * unit;
    return total <= k_max_ms;
  };
  std::int64_t total = 0;
  if (t.front() == 'P' || t.front() == 'p') {
    // ISO 8601: P[nW] or P[nD][T[nH][nM][nS]], integers only.
    std::size_t i = 1;
    bool in_time = false, any = false;
    std::string order = "WDHMS";
    std::size_t last = 0;
    while (i < t.size()) {
      if (t[i] == 'T' || t[i] == 't') {
        if (in_time) return bad("two T separators");
        in_time = true;
        ++i;
        continue;
      }
      std::size_t j = i;
      while (j < t.size() && t[j] >= '0' && t[j] <= '9') ++j;
      if (j == i || j == t.size()) return bad("expected a number then W, D, H, M or S");
      const char u = static_cast<char>(std::toupper(static_cast<unsigned char>(t[j])));
      std::int64_t unit = 0;
      if (!in_time && u == 'W') unit = 604'800'000;
      else if (!in_time && u == 'D') unit = 86'400'000;
      else if (in_time && u == 'H') unit = 3'600'000;
      else if (in_time && u == 'M') unit = 60'000;
      else if (in_time && u == 'S') unit = 1000;
      else return bad(in_time ? "after T only H, M and S" : "before T only W and D (years and months vary)");
      const auto pos = order.find(u) + 1;
      if (pos <= last) return bad("units out of order or repeated");
      last = pos;
      if (!add(total, t.substr(i, j - i), unit)) return bad("too long; at most 10 years");
      any = true;
      i = j + 1;
    }
    if (!any) return bad("no amount");
    return milliseconds(total);
  }
  std::size_t j = 0;
  while (j < t.size() && t[j] >= '0' && t[j] <= '9') ++j;
  if (j == 0) return bad("it must start with a number");
  auto unit_text = t.substr(j);
  while (!unit_text.empty() && unit_text.front() == ' ') unit_text.remove_prefix(1);
  const std::int64_t unit = unit_ms(unit_text);
  if (unit == 0) return bad(unit_text.empty() ? "no unit" : "unknown unit");
  if (!add(total, t.substr(0, j), unit)) return bad("too long; at most 10 years");
  return milliseconds(total);
}

result<std::int64_t> bounded_integer(const nlohmann::json& v, std::int64_t lo, std::int64_t hi) {
  auto out_of_range = [&] { return make_error(errc::invalid_argument, fmt::format("must be between {} and {}", lo, hi)); };
  std::int64_t n = 0;
  if (v.is_number_unsigned()) {
    // JSON reads 9223372036854775808 (2^63) as unsigned: past int64, so out of any range here.
    const auto u = v.get<std::uint64_t>();
    if (u > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) return out_of_range();
    n = static_cast<std::int64_t>(u);
  } else if (v.is_number_integer()) {
    n = v.get<std::int64_t>();
  } else if (v.is_number_float() && std::isfinite(v.get<double>()) && std::trunc(v.get<double>()) == v.get<double>()) {
    // 2^63 is exactly representable as a double; converting it or more to int64 is undefined.
    constexpr double k_two_63 = 9223372036854775808.0;
    const double d = v.get<double>();
    if (d >= k_two_63 || d < -k_two_63) return out_of_range();
    n = static_cast<std::int64_t>(d);
  } else {
    return make_error(errc::invalid_argument, fmt::format("must be an integer between {} and {}", lo, hi));
  }
  if (n < lo || n > hi) return out_of_range();
  return n;
}

bool is_http_token(std::string_view name) {
  // RFC 9110 5.6.2: tchar = "!" / "#" / "$" / "%" / "&" / "'" / "*" / "+" / "-" / "." / "^" /
  // "_" / "`" / "|" / "~" / DIGIT / ALPHA (ASCII only, whatever the locale).
  auto tchar = [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
  };
  return !name.empty() && std::all_of(name.begin(), name.end(), tchar);
}

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
    if (f.format == field_format::headers) j["format"] = "headers";
    if (f.format == field_format::duration) j["format"] = "duration";
    if (f.type == field_type::conditions) {
      j["ops"] = condition_ops();
      nlohmann::json unary = nlohmann::json::array();
      for (const auto& op : condition_ops())
        if (condition_op_is_unary(op)) unary.push_back(op);
      j["unaryOps"] = std::move(unary);
      j["maxItems"] = k_max_conditions;
    }
    if (f.minimum) j["minimum"] = *f.minimum;
    if (f.maximum) j["maximum"] = *f.maximum;
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
    // An alias is checked by the rules of the field it stands for (zap_validate_fuzz: the
    // email action's `email: ""` was saved as `to: ""`, which `to` itself refuses).
    const field_spec* rules = f;
    for (const auto& cand : s.fields)
      if (!f->alias_of.empty() && cand.name == f->alias_of) rules = &cand;
    check_value(*rules, value, path + "." + key, out);
    normal[target] = value;
    // A whole number written 5000.0 is stored as the integer 5000: executors read integers.
    if (rules->type == field_type::integer && value.is_number_float())
      if (auto n = field_integer(*rules, value)) normal[target] = *n;
  }
  for (const auto& f : s.fields) {
    if (!f.required || !f.alias_of.empty() || normal.contains(f.name)) continue;
    out.push_back({path + "." + f.name, "required"});
  }
  if (s.check && out.empty()) s.check(normal, path, out);
  for (const auto& name : secret_references(normal)) {
    if (!known_secrets.count(name)) out.push_back({path, fmt::format("unknown secret '{}'; create it first", name)});
  }
  return normal;
}

}  // namespace zapd::actions
