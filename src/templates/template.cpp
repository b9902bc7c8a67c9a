#include "zapd/templates/template.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <utility>

#include "zapd/core/json.hpp"
#include "zapd/templates/mask.hpp"
#include "escape.hpp"
#include "scan.hpp"

namespace zapd::templates {

namespace {

using nlohmann::json;
using namespace detail;

// Deeper values are left out: dumping them recurses once per level, and a webhook body of
// nested brackets must not overflow a worker's stack.
constexpr std::size_t max_value_depth = 256;
// Deeper configs are copied unrendered (render_config recurses once per level).
constexpr std::size_t max_config_depth = 64;

const json* child(const json* p, const std::string& key) {
  if (p == nullptr) return nullptr;
  if (p->is_object()) {
    auto it = p->find(key);
    return it == p->end() ? nullptr : &*it;
  }
  if (p->is_array()) {
    // Canonical decimal only ("0", "12"; not "01"), short enough not to overflow.
    if (key.empty() || key.size() > 18 || (key.size() > 1 && key[0] == '0')) return nullptr;
    if (!std::all_of(key.begin(), key.end(), [](char c) { return c >= '0' && c <= '9'; })) return nullptr;
    auto idx = std::stoull(key);
    return idx < p->size() ? &(*p)[idx] : nullptr;
  }
  return nullptr;
}

struct found {
  const json* v = nullptr;
  std::string why;  // when not found
  bool secret = false;
  std::string missing_secret;  // {{secrets.NAME}} naming no secret: NAME
};

found resolve(const std::vector<std::string>& segs, const json& ctx) {
  const json* root = ctx.is_object() ? &ctx : nullptr;
  const auto& first = segs.front();
  if (first == "secrets") {
    if (segs.size() != 2) return {nullptr, "name one secret, as {{secrets.NAME}}"};
    const json* v = child(child(root, "secrets"), segs[1]);
    if (v == nullptr) return {nullptr, fmt::format("no secret named {}", segs[1]), false, segs[1]};
    return {v, {}, true};
  }
  const json* cur = nullptr;
  std::size_t from = 1;
  std::string where;
  if (first == "trigger") {
    cur = child(root, "trigger");
    where = segs.size() > 1 && segs[1] == "body" ? "the trigger body" : "the trigger";
  } else if (first == "steps") {
    cur = child(root, "steps");
    if (segs.size() > 1 && child(cur, segs[1]) == nullptr)
      return {nullptr, fmt::format("no output of step {} (steps are numbered from 1; only earlier steps have one)", segs[1])};
    where = segs.size() > 1 ? fmt::format("step {}'s output", segs[1]) : "the steps";
  } else if (first == "run") {
    cur = child(root, "run");
    where = "the run";
  } else {
    cur = child(child(root, "trigger"), "body");
    from = 0;
    where = "the trigger body";
  }
  for (auto i = from; i < segs.size() && cur != nullptr; ++i) cur = child(cur, segs[i]);
  if (cur == nullptr) return {nullptr, "no such field in " + where};
  return {cur, {}, false};
}

bool deeper_than(const json& v, std::size_t limit) {
  if (!v.is_structured()) return false;
  std::vector<std::pair<const json*, std::size_t>> todo{{&v, 1}};
  while (!todo.empty()) {
    auto [p, d] = todo.back();
    todo.pop_back();
    if (d > limit) return true;
    for (const auto& item : *p)
      if (item.is_structured()) todo.emplace_back(&item, d + 1);
  }
  return false;
}

// A value as text: strings as they are, null as nothing, the rest as JSON.
std::string plain(const json& v) {
  if (v.is_string()) return v.get_ref<const std::string&>();
  if (v.is_null()) return {};
  return dump_safe(v);
}

struct piece {
  std::string text;
  std::string masked;
};

piece render_value(const token& t, const json* v, bool secret, const masker& mk, mode m) {
  const bool json_value = m == mode::json && !t.in_json_string;
  if (v == nullptr) return json_value ? piece{"null", "null"} : piece{};
  if (json_value) {
    // A JSON value position: the value's own JSON, so the document stays valid.
    return {dump_safe(*v), secret ? fmt::format("\"{}\"", mask_text) : mk.empty() ? dump_safe(*v) : dump_safe(mk.value(*v))};
  }
  std::string raw = plain(*v);
  piece p;
  switch (m) {
    case mode::json:
      // Masked before escaping: a mask cutting an escape sequence (a secret `n` in `\n`)
      // would make the masked document invalid JSON.
      p.text = json_string_content(raw);
      p.masked = secret ? std::string(mask_text) : mk.empty() ? p.text : json_string_content(mk.str(raw));
      return p;
    case mode::url:
      // Masked after encoding (the masker knows the encoded forms), so the mask reads
      // `********`, not `%2A%2A...`.
      p.text = t.at_start ? url_whole(raw) : url_component(raw);
      break;
    case mode::text:
    case mode::header: p.text = std::move(raw); break;  // header: the whole output is cleaned at the end
  }
  p.masked = secret ? std::string(mask_text) : mk.empty() ? p.text : mk.str(p.text);
  return p;
}

// Appends to `text` and `masked` until either would pass the cap.
class output {
 public:
  output(rendered& r, std::size_t cap, warning_list& warn) : r_(r), cap_(cap), warn_(warn) {}
  bool put(std::string_view text, std::string_view masked) {
    if (r_.text.size() + text.size() > cap_ || r_.masked.size() + masked.size() > cap_) {
      r_.truncated = true;
      warn_.add(fmt::format("output reached the {}-byte limit; the rest of the template was left out", cap_));
      return false;
    }
    r_.text += text;
    r_.masked += masked;
    return true;
  }

 private:
  rendered& r_;
  std::size_t cap_;
  warning_list& warn_;
};

void render_into(rendered& r, std::string_view tmpl, const json& ctx, const options& o, const masker& mk) {
  warning_list warn(r.warnings);
  output out(r, o.max_output, warn);
  for (const auto& t : tokenize(tmpl, o, warn)) {
    if (!t.is_placeholder) {
      if (!out.put(t.text, t.text)) break;
      continue;
    }
    auto shown = t.legacy ? fmt::format("{{{}}}", t.text) : fmt::format("{{{{{}}}}}", t.text);
    auto f = resolve(t.segments, ctx);
    if (f.v != nullptr && deeper_than(*f.v, max_value_depth)) {
      f = {nullptr, fmt::format("value nested deeper than {} levels; left out", max_value_depth)};
    }
    if (f.v == nullptr) warn.add(fmt::format("{}: {}", shown, f.why));
    if (!f.missing_secret.empty() &&
        std::find(r.missing_secrets.begin(), r.missing_secrets.end(), f.missing_secret) == r.missing_secrets.end())
      r.missing_secrets.push_back(f.missing_secret);
    auto p = render_value(t, f.v, f.secret, mk, o.m);
    if (!out.put(p.text, p.masked)) break;
  }
  if (o.m == mode::header) {
    bool changed = clean_header(r.text);
    clean_header(r.masked);
    if (changed) warn.add("control characters (line breaks) in the header value were replaced by spaces");
  }
  warn.finish();
}

struct config_walk {
  const json& ctx;
  const field_options& for_field;
  const masker& mk;
  rendered_json& r;

  void operator()(const json& in, json& out, json& masked, std::string& field, std::size_t depth) {
    if (depth > max_config_depth) {
      out = masked = in;
      add_warning(field, fmt::format("nested deeper than {} levels; left as it is", max_config_depth));
      return;
    }
    if (in.is_string()) {
      rendered one;
      render_into(one, in.get_ref<const std::string&>(), ctx, for_field ? for_field(field) : options{}, mk);
      out = std::move(one.text);
      masked = std::move(one.masked);
      for (auto& w : one.warnings) add_warning(field, w);
      for (auto& name : one.missing_secrets)
        if (std::find(r.missing_secrets.begin(), r.missing_secrets.end(), name) == r.missing_secrets.end())
          r.missing_secrets.push_back(std::move(name));
      return;
    }
    const auto len = field.size();
    if (in.is_object()) {
      out = masked = json::object();
      for (const auto& [k, v] : in.items()) {
        if (len > 0) field += '.';
        field += k;
        (*this)(v, out[k], masked[k], field, depth + 1);
        field.resize(len);
      }
      return;
    }
    if (in.is_array()) {
      out = masked = json::array();
      for (std::size_t i = 0; i < in.size(); ++i) {
        field += fmt::format("[{}]", i);
        out.push_back(nullptr);
        masked.push_back(nullptr);
        (*this)(in[i], out.back(), masked.back(), field, depth + 1);
        field.resize(len);
      }
      return;
    }
    out = masked = in;
  }

  void add_warning(const std::string& field, const std::string& w) {
    auto line = field.empty() ? w : fmt::format("{}: {}", field, w);
    if (std::find(r.warnings.begin(), r.warnings.end(), line) == r.warnings.end()) r.warnings.push_back(std::move(line));
  }
};

}  // namespace

rendered render(std::string_view tmpl, const json& ctx, const options& o) {
  rendered r;
  render_into(r, tmpl, ctx, o, masker::from_context(ctx));
  return r;
}

rendered_json render_config(const json& config, const json& ctx, const field_options& for_field) {
  rendered_json r;
  const auto mk = masker::from_context(ctx);
  std::string field;
  config_walk{ctx, for_field, mk, r}(config, r.value, r.masked, field, 0);
  return r;
}

std::vector<std::string> referenced_secrets(const json& config) {
  options o;
  o.legacy_single_brace = true;  // finds {secrets.X} too: a superset of what any field renders
  std::vector<std::string> ignored;
  warning_list warn(ignored);
  std::vector<std::string> out;
  std::vector<const json*> todo{&config};
  while (!todo.empty()) {
    const json* p = todo.back();
    todo.pop_back();
    if (p->is_structured()) {
      for (const auto& item : *p) todo.push_back(&item);
      continue;
    }
    if (!p->is_string()) continue;
    const auto& s = p->get_ref<const std::string&>();
    if (s.find('{') == std::string::npos) continue;
    for (const auto& t : tokenize(s, o, warn))
      if (t.is_placeholder && t.segments.size() == 2 && t.segments[0] == "secrets") out.push_back(t.segments[1]);
    ignored.clear();
  }
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

std::vector<std::string> referenced_paths(std::string_view tmpl, const options& o) {
  std::vector<std::string> ignored;
  warning_list warn(ignored);
  std::vector<std::string> out;
  for (const auto& t : tokenize(tmpl, o, warn)) {
    if (t.is_placeholder && std::find(out.begin(), out.end(), t.text) == out.end()) out.emplace_back(t.text);
  }
  return out;
}

}  // namespace zapd::templates
