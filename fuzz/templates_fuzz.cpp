// libFuzzer target for zapd::templates (see README.md).
//
// Input: one flags byte, then the template, then optionally a NUL and a JSON context.
//   flags bit 0: legacy_single_brace; bit 1: a 64-byte output cap (exercises truncation);
//   bit 2: keep_type (render_value, and render_config's fields);
//   bit 3: the template is a filter chain: `{{PATH | <template>}}` is rendered instead, PATH
//   picked by bits 4-6 among values of every JSON type, a secret and a missing path, so the
//   fuzzer explores filters and their arguments on each type directly.
// Without a context (or with one that is not a JSON object) a fixed context is used, whose
// only `Q`s are in its secret and that secret's echo, so masking can be checked.
//
// Checked for every mode: no crash, no sanitizer report, no exception. And:
//   json:   a template that is valid JSON renders valid JSON (unless truncated), masked too;
//   header: no CR or LF in the output (template text included);
//   url:    no space, control or non-ASCII byte in the output unless the template has one;
//   masks:  with the fixed context and a template without `Q` or `K`, `masked` is the same
//           as with a twin context whose secret (and its echo) is `KKKKKKKKKK` instead of
//           `QQQQQQQQQQ`: the masked twin does not depend on the secret, through any filter;
//   always: output within the cap, warnings valid UTF-8; `check` never throws and its
//           messages are valid UTF-8.
// render_value (keep_type when bit 2) on the template: no exception; the masked value does not
// depend on the secret either; `missing` only for a lone placeholder.
// A JSON value after the NUL is also rendered as a config (render_config) against the fixed
// context; its masked twin must not depend on the secret (twin context) unless the config
// holds `Q` or `K`.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "zapd/templates/template.hpp"

namespace {

using nlohmann::json;
namespace t = zapd::templates;

// The fixed context, its secret made of `secret_char` (also echoed by step 1's output).
json make_fixed_context(char secret_char) {
  const std::string secret(10, secret_char);
  {
    json c;
    c["trigger"]["body"] = {
        {"comment", {{"email", "a@b.c"}, {"text", "say \"hi\"\\\r\nX-Injected: 1\t\x01\x7f end"}}},
        {"items", json::array({{{"id", 1}, {"name", "first"}}, {{"id", 2}, {"name", "s\xc3\xa9" "cond"}}})},
        {"bad_utf8", std::string("\xff\xfe ok \xc3")},
        {"n", 42},
        {"f", 1.5},
        {"yes", true},
        {"nothing", nullptr},
        {"path", "a/b?c=d&e#f %20"},
        {"braces", "{{comment.email}}"},
        {"empty", ""},
        {"when", "2024-03-31T01:30:00.5+01:00"},
    };
    c["trigger"]["query"] = {{"page", "2"}};
    c["trigger"]["headers"] = {{"content-type", "application/json"}};
    c["trigger"]["method"] = "POST";
    c["steps"]["1"] = {{"status", 200},
                       {"body", {{"next", "https://example.com/next?cursor=a b"}, {"echo", "Bearer " + secret}}}};
    c["run"] = {{"id", "run-1"}, {"zapId", "zap-1"}};
    c["secrets"] = {{"token", secret}, {"blank", ""}};
    return c;
  }
}

const json& fixed_context() {
  static const json ctx = make_fixed_context('Q');
  return ctx;
}

// The same context with another secret of the same length: a masked twin must not depend on
// the secret's value, whatever filters transformed it (`| base64` of the secret is masked
// only if the twin never saw it).
const json& twin_context() {
  static const json ctx = make_fixed_context('K');
  return ctx;
}

[[noreturn]] void fail(const char* what, std::string_view tmpl, const std::string& out) {
  std::fprintf(stderr, "templates_fuzz: %s\ntemplate: %.*s\noutput: %s\n", what, static_cast<int>(tmpl.size()),
               tmpl.data(), out.c_str());
  std::abort();
}

bool has_url_unsafe(std::string_view s) {
  for (char ch : s) {
    auto c = static_cast<unsigned char>(ch);
    if (c <= 0x20 || c >= 0x7F) return true;
  }
  return false;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const auto flags = data[0];
  std::string_view in(reinterpret_cast<const char*>(data) + 1, size - 1);
  auto nul = in.find('\0');
  std::string chain;
  std::string_view tmpl = in.substr(0, nul);
  if ((flags & 8) != 0) {
    static constexpr std::string_view paths[] = {"comment.text", "items",           "n",
                                                 "when",         "secrets.token",   "steps.1.body.echo",
                                                 "nothing",      "no.such.path"};
    chain = "{{" + std::string(paths[(flags >> 4) & 7]) + " | " + std::string(tmpl) + "}}";
    tmpl = chain;
  }

  json parsed;
  if (nul != std::string_view::npos) parsed = json::parse(in.substr(nul + 1), nullptr, /*allow_exceptions=*/false);
  const bool fixed = !parsed.is_object();
  const json& ctx = fixed ? fixed_context() : parsed;

  t::options o;
  o.legacy_single_brace = (flags & 1) != 0;
  if ((flags & 2) != 0) o.max_output = 64;
  const bool keep_type = (flags & 4) != 0;

  const bool tmpl_is_json = json::accept(tmpl);
  // Letters of the secrets: a template holding them can spell a secret itself.
  const bool tmpl_has_q = tmpl.find_first_of("QK") != std::string_view::npos;
  for (auto m : {t::mode::text, t::mode::json, t::mode::header, t::mode::url}) {
    o.m = m;
    auto r = t::render(tmpl, ctx, o);
    if (r.text.size() > o.max_output || r.masked.size() > o.max_output) fail("output over the cap", tmpl, r.text);
    for (const auto& w : r.warnings) {
      // Warnings go into JSON records: strict dump must not throw on them.
      try {
        (void)json(w).dump();
      } catch (const json::exception&) {
        fail("warning is not valid UTF-8", tmpl, w);
      }
    }
    if (fixed && !tmpl_has_q && r.masked != t::render(tmpl, twin_context(), o).masked)
      fail("masked depends on the secret's value", tmpl, r.masked);
    switch (m) {
      case t::mode::json:
        if (tmpl_is_json && !r.truncated) {
          if (!json::accept(r.text)) fail("json template rendered invalid JSON", tmpl, r.text);
          if (!json::accept(r.masked)) fail("json template rendered invalid masked JSON", tmpl, r.masked);
        }
        break;
      case t::mode::header:
        if (r.text.find_first_of("\r\n") != std::string::npos) fail("line break in a header", tmpl, r.text);
        if (r.masked.find_first_of("\r\n") != std::string::npos) fail("line break in a masked header", tmpl, r.masked);
        break;
      case t::mode::url:
        if (!has_url_unsafe(tmpl) && has_url_unsafe(r.text)) fail("unencoded byte in a URL", tmpl, r.text);
        break;
      case t::mode::text: break;
    }
  }
  (void)t::referenced_paths(tmpl, o);
  for (const auto& problem : t::check(tmpl, o)) {
    try {
      (void)json(problem).dump();
    } catch (const json::exception&) {
      fail("check message is not valid UTF-8", tmpl, problem);
    }
  }

  // One template as a value: typed with keep_type, text otherwise.
  o.m = t::mode::text;
  o.keep_type = keep_type;
  auto v = t::render_value(tmpl, ctx, o);
  const auto masked_text = v.masked.dump(-1, ' ', false, json::error_handler_t::replace);
  if (fixed && !tmpl_has_q && v.masked != t::render_value(tmpl, twin_context(), o).masked)
    fail("masked value depends on the secret's value", tmpl, masked_text);
  if (!keep_type && !v.value.is_string()) fail("render_value without keep_type is not text", tmpl, v.value.dump());
  if (v.missing && tmpl.find("{") == std::string_view::npos) fail("missing without a placeholder", tmpl, masked_text);
  o.keep_type = false;

  // A parsed context doubles as a config: every string rendered against the fixed context,
  // the mode picked from the field path, so field paths and nesting are fuzzed too.
  if (parsed.is_structured()) {
    auto for_field = [keep_type](std::string_view field) {
      t::options fo;
      fo.m = static_cast<t::mode>(field.size() % 4);
      fo.legacy_single_brace = field.size() % 3 == 0;
      fo.keep_type = keep_type && field.size() % 2 == 0;
      return fo;
    };
    auto r = t::render_config(parsed, fixed_context(), for_field);
    if (parsed.dump(-1, ' ', false, json::error_handler_t::replace).find_first_of("QK") == std::string::npos &&
        r.masked != t::render_config(parsed, twin_context(), for_field).masked)
      fail("secret in a masked config", tmpl, r.masked.dump(-1, ' ', false, json::error_handler_t::replace));
  }
  return 0;
}
