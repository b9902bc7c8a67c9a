// The `filter` step ("only continue if"): its catalog entry and its executor. Pure: the
// worker renders `left`/`right` with keep_type (a lone placeholder keeps its JSON type, a
// missing one is null), this file compares them.
#include <algorithm>
#include <charconv>
#include <chrono>
#include <cmath>

#include <fmt/format.h>
#include <re2/re2.h>

#include "zapd/actions/catalog.hpp"
#include "zapd/actions/executor.hpp"
#include "zapd/core/json.hpp"

namespace zapd::actions {

using nlohmann::json;

spec filter_action_spec() {
  spec s;
  s.id = "filter";
  s.name = "Filter";
  s.description = "Only continue if the conditions hold; otherwise the run ends as filtered (not a failure).";
  s.aliases = {"only-continue-if"};
  s.fields = {
      {.name = "match",
       .type = field_type::choice,
       .default_value = "all",
       .help = "Continue when all conditions hold, or when any one does",
       .choices = {"all", "any"}},
      {.name = "conditions",
       .type = field_type::conditions,
       .required = true,
       .help = "Rows of {left, op, right}; left and right are values or templates such as {{body.status}}",
       .templates = true},
  };
  s.icon_svg =
      R"(<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 24 24" width="24" height="24" fill="none" stroke="#e67700" stroke-width="2" stroke-linejoin="round"><path d="M3 4h18l-7 8v6l-4 2v-8z"/></svg>)";
  return s;
}

namespace {

// A value as text: strings as they are, null as "", anything else as compact JSON.
std::string as_text(const json& v) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_null()) return "";
  return dump_safe(v);
}

// A number: a JSON number, or a string that is exactly a decimal number ("42", " -1.5e3 ").
std::optional<double> as_number(const json& v) {
  if (v.is_number()) return v.get<double>();
  if (!v.is_string()) return std::nullopt;
  auto t = trim(v.get_ref<const std::string&>());
  if (t.empty()) return std::nullopt;
  double d = 0;
  auto [end, ec] = std::from_chars(t.data(), t.data() + t.size(), d);
  if (ec != std::errc() || end != t.data() + t.size() || !std::isfinite(d)) return std::nullopt;
  return d;
}

// An RFC 3339 time as Unix ms.
std::optional<std::int64_t> as_time(const json& v) {
  if (!v.is_string()) return std::nullopt;
  return parse_rfc3339_ms(v.get_ref<const std::string&>());
}

bool is_empty_value(const json& v) {
  return v.is_null() || (v.is_string() && v.get_ref<const std::string&>().empty()) ||
         (v.is_structured() && v.empty());
}

bool truthy_word(const json& v, bool want) {
  if (v.is_boolean()) return v.get<bool>() == want;
  if (!v.is_string()) return false;
  return to_lower(std::string(trim(v.get_ref<const std::string&>()))) == (want ? "true" : "false");
}

bool equal_values(const json& l, const json& r) {
  auto ln = as_number(l), rn = as_number(r);
  if (ln && rn) return *ln == *rn;
  // true equals "true" (and "TRUE"), false equals "false".
  if (l.is_boolean() || r.is_boolean())
    return (truthy_word(l, true) && truthy_word(r, true)) || (truthy_word(l, false) && truthy_word(r, false));
  return as_text(l) == as_text(r);
}

bool contains_value(const json& l, const json& r) {
  if (l.is_array()) {
    for (const auto& item : l)
      if (equal_values(item, r)) return true;
    return false;
  }
  if (l.is_object()) return r.is_string() && l.contains(r.get<std::string>());
  return as_text(l).find(as_text(r)) != std::string::npos;
}

struct outcome {
  bool holds = false;
  std::string note;   // why it could not be decided as asked (not comparable, bad pattern)
  bool bad = false;   // a configuration error: the step fails rather than filters
};

outcome evaluate(const std::string& op, const json& l, const json& r) {
  outcome o;
  if (op == "exists") o.holds = !l.is_null();
  else if (op == "notExists") o.holds = l.is_null();
  else if (op == "isEmpty") o.holds = is_empty_value(l);
  else if (op == "isTrue") o.holds = truthy_word(l, true);
  else if (op == "isFalse") o.holds = truthy_word(l, false);
  else if (op == "equals") o.holds = equal_values(l, r);
  else if (op == "notEquals") o.holds = !equal_values(l, r);
  else if (op == "contains") o.holds = contains_value(l, r);
  else if (op == "notContains") o.holds = !contains_value(l, r);
  else if (op == "startsWith") o.holds = as_text(l).starts_with(as_text(r));
  else if (op == "endsWith") o.holds = as_text(l).ends_with(as_text(r));
  else if (op == "gt" || op == "gte" || op == "lt" || op == "lte") {
    int cmp = 0;
    if (auto ln = as_number(l), rn = as_number(r); ln && rn) {
      cmp = *ln < *rn ? -1 : *ln > *rn ? 1 : 0;
    } else if (auto lt = as_time(l), rt = as_time(r); lt && rt) {
      cmp = *lt < *rt ? -1 : *lt > *rt ? 1 : 0;
    } else {
      o.note = "not comparable: give two numbers or two RFC 3339 times";
      return o;
    }
    o.holds = op == "gt" ? cmp > 0 : op == "gte" ? cmp >= 0 : op == "lt" ? cmp < 0 : cmp <= 0;
  } else if (op == "matches") {
    RE2::Options ro;
    ro.set_log_errors(false);
    ro.set_max_mem(k_regex_max_mem);
    RE2 re(as_text(r), ro);
    if (!re.ok()) {
      o.bad = true;
      o.note = fmt::format("not a valid regular expression (RE2 syntax): {}", re.error());
      return o;
    }
    o.holds = RE2::PartialMatch(as_text(l), re);
  } else {
    o.bad = true;
    o.note = fmt::format("unknown operator '{}'", op);
  }
  return o;
}

class filter_executor final : public executor {
 public:
  templates::options render_options(std::string_view field, const json&) const override {
    templates::options o;
    // conditions[i].left / conditions[i].right: the value itself, typed, null when missing.
    if (field.starts_with("conditions[")) o.keep_type = true;
    return o;
  }

  void execute(step_request req, done_fn done) override {
    const auto t0 = std::chrono::steady_clock::now();
    step_result r;
    const json& cfg = req.config;
    const std::string match = cfg.contains("match") && cfg["match"].is_string() ? cfg["match"].get<std::string>() : "all";
    const bool any = match == "any";
    const json none = nullptr;
    json rows = json::array();
    bool passed = !any;
    std::string bad;
    if (auto c = cfg.find("conditions"); c != cfg.end() && c->is_array()) {
      std::size_t i = 0;
      for (const auto& row : *c) {
        ++i;
        if (!row.is_object()) continue;
        const std::string op = row.contains("op") && row["op"].is_string() ? row["op"].get<std::string>() : "";
        const json& l = row.contains("left") ? row["left"] : none;
        const json& rv = row.contains("right") ? row["right"] : none;
        auto o = evaluate(op, l, rv);
        json entry = {{"index", i}, {"left", l}, {"op", op}, {"result", o.holds}};
        if (!condition_op_is_unary(op)) entry["right"] = rv;
        if (!o.note.empty()) entry["note"] = o.note;
        rows.push_back(std::move(entry));
        if (o.bad && bad.empty()) bad = fmt::format("condition {}: {}", i, o.note);
        passed = any ? (passed || o.holds) : (passed && o.holds);
      }
    }
    r.output = {{"passed", passed}, {"match", any ? "any" : "all"}, {"conditions", std::move(rows)}};
    if (!bad.empty()) {
      r.v = verdict::failed;
      r.error = bad;
    } else if (passed) {
      r.v = verdict::succeeded;
    } else {
      r.v = verdict::filtered;
      // Which condition(s) stopped it, in words, for the run's history.
      std::vector<std::string> failed;
      for (const auto& e : r.output["conditions"])
        if (!e["result"].get<bool>()) failed.push_back(std::to_string(e["index"].get<std::size_t>()));
      r.output["stoppedBy"] = any ? "no condition held" : fmt::format("condition {} did not hold", fmt::join(failed, ", "));
    }
    r.duration = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0);
    done(std::move(r));
  }
};

}  // namespace

std::unique_ptr<executor> make_filter_executor() { return std::make_unique<filter_executor>(); }

}  // namespace zapd::actions
