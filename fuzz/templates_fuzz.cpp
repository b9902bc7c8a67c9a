// libFuzzer target for zapd::templates (see README.md).
//
// Input: one flags byte, then the template, then optionally a NUL and a JSON context.
//   flags bit 0: legacy_single_brace; bit 1: a 64-byte output cap (exercises truncation).
// Without a context (or with one that is not a JSON object) a fixed context is used, whose
// only `Q`s are in its secret, so masking can be checked.
//
// Checked for every mode: no crash, no sanitizer report, no exception. And:
//   json:   a template that is valid JSON renders valid JSON (unless truncated), masked too;
//   header: no CR or LF in the output (template text included);
//   url:    no space, control or non-ASCII byte in the output unless the template has one;
//   masks:  with the fixed context and a template without `Q`, `masked` holds no `Q`;
//   always: output within the cap, warnings valid UTF-8.
// A JSON value after the NUL is also rendered as a config (render_config) against the fixed
// context; its masked twin must hold no `Q` unless the config has one.
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

const json& fixed_context() {
  static const json ctx = [] {
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
    };
    c["trigger"]["query"] = {{"page", "2"}};
    c["trigger"]["headers"] = {{"content-type", "application/json"}};
    c["trigger"]["method"] = "POST";
    c["steps"]["1"] = {{"status", 200},
                       {"body", {{"next", "https://example.com/next?cursor=a b"}, {"echo", "Bearer QQQQQQQQQQ"}}}};
    c["run"] = {{"id", "run-1"}, {"zapId", "zap-1"}};
    c["secrets"] = {{"token", "QQQQQQQQQQ"}, {"blank", ""}};
    return c;
  }();
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
  std::string_view tmpl = in.substr(0, nul);

  json parsed;
  if (nul != std::string_view::npos) parsed = json::parse(in.substr(nul + 1), nullptr, /*allow_exceptions=*/false);
  const bool fixed = !parsed.is_object();
  const json& ctx = fixed ? fixed_context() : parsed;

  t::options o;
  o.legacy_single_brace = (flags & 1) != 0;
  if ((flags & 2) != 0) o.max_output = 64;

  const bool tmpl_is_json = json::accept(tmpl);
  const bool tmpl_has_q = tmpl.find('Q') != std::string_view::npos;
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
    if (fixed && !tmpl_has_q && r.masked.find('Q') != std::string::npos) fail("secret in masked", tmpl, r.masked);
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

  // A parsed context doubles as a config: every string rendered against the fixed context,
  // the mode picked from the field path, so field paths and nesting are fuzzed too.
  if (parsed.is_structured()) {
    auto r = t::render_config(parsed, fixed_context(), [](std::string_view field) {
      t::options fo;
      fo.m = static_cast<t::mode>(field.size() % 4);
      fo.legacy_single_brace = field.size() % 3 == 0;
      return fo;
    });
    if (r.masked.dump(-1, ' ', false, json::error_handler_t::replace).find('Q') != std::string::npos &&
        parsed.dump(-1, ' ', false, json::error_handler_t::replace).find('Q') == std::string::npos)
      fail("secret in a masked config", tmpl, r.masked.dump(-1, ' ', false, json::error_handler_t::replace));
  }
  return 0;
}
