#include "zapd/templates/template.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <utility>

#include "zapd/core/json.hpp"
#include "zapd/templates/mask.hpp"
#include "escape.hpp"
#include "filters.hpp"
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

// A placeholder's value after its filters, and the masked twin of it.
struct evaluated {
  json value;   // null when missing
  json masked;  // `value` computed from the masked input and masked again; a secret's: "********"
  bool missing = false;  // the path did not resolve (or the value is too deep)
  bool secret = false;
};

evaluated evaluate(const token& t, const json& ctx, const options& o, const masker& mk, warning_list& warn,
                   std::vector<std::string>& missing_secrets) {
  const auto shown = t.legacy ? fmt::format("{{{}}}", t.whole) : fmt::format("{{{{{}}}}}", t.whole);
  auto f = resolve(t.segments, ctx);
  if (f.v != nullptr && deeper_than(*f.v, max_value_depth)) {
    f = {nullptr, fmt::format("value nested deeper than {} levels; left out", max_value_depth)};
  }
  const bool defaulted = std::any_of(t.filters.begin(), t.filters.end(), is_default);
  // `default` expects a missing value; a missing secret is worth a warning all the same.
  if (f.v == nullptr && (!defaulted || !f.missing_secret.empty())) warn.add(fmt::format("{}: {}", shown, f.why));
  if (!f.missing_secret.empty() &&
      std::find(missing_secrets.begin(), missing_secrets.end(), f.missing_secret) == missing_secrets.end())
    missing_secrets.push_back(f.missing_secret);

  evaluated e;
  e.missing = f.v == nullptr;
  e.secret = f.secret;
  if (f.v != nullptr) e.value = *f.v;
  if (t.filters.empty()) {
    e.masked = e.secret ? json(mask_text) : mk.empty() ? e.value : mk.value(e.value);
    return e;
  }
  // A filter may transform a secret beyond what the masker recognises (`| base64`, `| upper`):
  // the masked twin runs the same filters on the masked input, so it never sees the value.
  if (!e.secret && !mk.empty()) e.masked = mk.value(e.value);
  for (const auto& call : t.filters) {
    auto problem = check_filter(call);
    if (!problem.empty()) {
      warn.add(fmt::format("{}: {}; filter skipped", shown, problem));
      continue;
    }
    if (!apply_filter(call, e.value, o.max_output, problem)) warn.add(fmt::format("{}: {}", shown, problem));
    std::string ignored;
    if (!e.secret && !mk.empty()) apply_filter(call, e.masked, o.max_output, ignored);
  }
  if (e.secret) e.masked = json(mask_text);
  else if (mk.empty()) e.masked = e.value;
  else mk.in_place(e.masked);
  return e;
}

// The masked input of a URL value holds `********`, which encoding turned into `%2A...`:
// the mask reads as itself, as for a secret placeholder.
void unencode_masks(std::string& s) {
  static const std::string encoded = url_component(mask_text);
  for (auto at = s.find(encoded); at != std::string::npos; at = s.find(encoded, at + mask_text.size()))
    s.replace(at, encoded.size(), mask_text);
}

struct piece {
  std::string text;
  std::string masked;
};

piece render_piece(const token& t, const evaluated& e, const masker& mk, mode m) {
  if (m == mode::json && !t.in_json_string) {
    // A JSON value position: the value's own JSON, so the document stays valid.
    return {dump_safe(e.value), dump_safe(e.masked)};
  }
  std::string raw = plain(e.value);
  std::string raw_masked = e.secret ? std::string(mask_text) : plain(e.masked);
  piece p;
  switch (m) {
    case mode::json:
      // Masked before escaping: a mask cutting an escape sequence (a secret `n` in `\n`)
      // would make the masked document invalid JSON.
      p.text = json_string_content(raw);
      p.masked = e.secret ? std::string(mask_text) : json_string_content(mk.empty() ? raw_masked : mk.str(raw_masked));
      return p;
    case mode::url:
      // Masked after encoding (the masker knows the encoded forms), so the mask reads
      // `********`, not `%2A%2A...`.
    {
      // A value that ends with `| urlencode` is encoded already: not encoded twice (only
      // bytes never valid in a URL are, should the filter have failed).
      const bool whole = t.at_start || (!t.filters.empty() && t.filters.back().name == "urlencode");
      p.text = whole ? url_whole(raw) : url_component(raw);
      p.masked = e.secret ? std::string(mask_text) : whole ? url_whole(raw_masked) : url_component(raw_masked);
    }
      if (!e.secret) unencode_masks(p.masked);
      break;
    case mode::text:
    case mode::header:  // header: the whole output is cleaned at the end
      p.text = std::move(raw);
      p.masked = std::move(raw_masked);
      break;
  }
  if (!e.secret && !mk.empty()) p.masked = mk.str(p.masked);
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
    auto p = render_piece(t, evaluate(t, ctx, o, mk, warn, r.missing_secrets), mk, o.m);
    if (!out.put(p.text, p.masked)) break;
  }
  if (o.m == mode::header) {
    bool changed = clean_header(r.text);
    clean_header(r.masked);
    if (changed) warn.add("control characters (line breaks) in the header value were replaced by spaces");
  }
  warn.finish();
}

// The one placeholder of a template that is nothing else (whitespace around it allowed).
const token* lone_placeholder(const std::vector<token>& tokens) {
  const token* found = nullptr;
  for (const auto& t : tokens) {
    if (t.is_placeholder) {
      if (found != nullptr) return nullptr;
      found = &t;
    } else if (!trim(t.text).empty()) {
      return nullptr;
    }
  }
  return found;
}

rendered_value value_of(std::string_view tmpl, const json& ctx, const options& o, const masker& mk) {
  rendered_value r;
  std::vector<std::string> ignored;
  warning_list scan_warn(ignored);
  const auto tokens = tokenize(tmpl, o, scan_warn);
  const token* lone = lone_placeholder(tokens);
  if (lone != nullptr && o.keep_type) {
    warning_list warn(r.warnings);
    auto e = evaluate(*lone, ctx, o, mk, warn, r.missing_secrets);
    warn.finish();
    r.value = std::move(e.value);
    r.masked = std::move(e.masked);
    r.missing = e.missing;
    return r;
  }
  rendered text;
  render_into(text, tmpl, ctx, o, mk);
  r.value = std::move(text.text);
  r.masked = std::move(text.masked);
  r.warnings = std::move(text.warnings);
  r.missing_secrets = std::move(text.missing_secrets);
  r.truncated = text.truncated;
  if (lone != nullptr) {
    auto f = resolve(lone->segments, ctx);
    r.missing = f.v == nullptr || deeper_than(*f.v, max_value_depth);
  }
  return r;
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
      const auto o = for_field ? for_field(field) : options{};
      if (o.keep_type) {
        auto one = value_of(in.get_ref<const std::string&>(), ctx, o, mk);
        out = std::move(one.value);
        masked = std::move(one.masked);
        for (auto& w : one.warnings) add_warning(field, w);
        add_missing(one.missing_secrets);
        if (one.missing) r.missing_fields.push_back(field);
        return;
      }
      rendered one;
      render_into(one, in.get_ref<const std::string&>(), ctx, o, mk);
      out = std::move(one.text);
      masked = std::move(one.masked);
      for (auto& w : one.warnings) add_warning(field, w);
      add_missing(one.missing_secrets);
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

  void add_missing(std::vector<std::string>& names) {
    for (auto& name : names)
      if (std::find(r.missing_secrets.begin(), r.missing_secrets.end(), name) == r.missing_secrets.end())
        r.missing_secrets.push_back(std::move(name));
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

rendered_value render_value(std::string_view tmpl, const json& ctx, const options& o) {
  return value_of(tmpl, ctx, o, masker::from_context(ctx));
}

std::vector<std::string> check(std::string_view tmpl, const options& o) {
  std::vector<std::string> ignored;
  warning_list warn(ignored);
  std::vector<std::string> found;
  const auto tokens = tokenize(tmpl, o, warn, &found);
  for (const auto& t : tokens) {
    if (!t.is_placeholder) continue;
    for (const auto& call : t.filters)
      if (auto problem = check_filter(call); !problem.empty()) found.push_back(fmt::format("{{{{{}}}}}: {}", t.whole, problem));
  }
  // Messages quote the template: keep them valid UTF-8 and without repeats.
  std::vector<std::string> out;
  warning_list clean(out);
  for (auto& p : found) clean.add(std::move(p));
  clean.finish();
  return out;
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
