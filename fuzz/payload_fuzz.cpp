// libFuzzer target for webhook payloads: hooks::check_body, trigger_payload_text,
// trigger_payload and value_at (include/zapd/hooks/payload.hpp). See README.md.
//
// Input: one flags byte, then three parts ended by NUL and the body (the rest, NULs and all):
//   dedup path \0 query string \0 header lines ("Name: value\n"...) \0 body
// flags bits 0-2: the Content-Type (table below); bits 3-4: max_depth (0, 2, 64, 1000: the
// default and the largest hooks.max_depth).
//
// Checked: no crash, sanitizer report or exception. And:
//   - JSON types: check_body succeeds exactly when the body is blank or valid JSON no deeper
//     than max_depth (reference: nlohmann's SAX parser, no document built, and no NUL byte:
//     nlohmann stops at one, JSON has none); json_text is the
//     body; with parse_json the value is that document;
//   - form: an object of strings; other types: the body as one string (null when empty);
//   - trigger_payload_text is valid JSON under json_depth::stored, its "body" is the checked
//     body, and it is the same document as trigger_payload (the document path);
//   - no credential header (authorization, cookie, ...) in the payload's headers;
//   - value_at on the body and on the whole payload: no crash, and for a path of one object
//     key it agrees with a direct lookup.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "json_reference.hpp"
#include "zapd/core/json.hpp"
#include "zapd/hooks/payload.hpp"

namespace {

using nlohmann::json;
namespace hooks = zapd::hooks;

constexpr std::string_view k_types[] = {
    "application/json",
    "application/json; charset=utf-8",
    "application/x-www-form-urlencoded",
    "text/plain",
    "application/vnd.example+json",
    "Application/X-WWW-Form-Urlencoded ; charset=UTF-8",
    "text/json",
    "",
};
constexpr std::size_t k_depths[] = {0, 2, 64, 1000};

[[noreturn]] void fail(const char* what, std::string_view ct, std::string_view body, const std::string& more = {}) {
  std::fprintf(stderr, "payload_fuzz: %s\ncontent-type: %.*s\nbody: %.*s\n%s\n", what, static_cast<int>(ct.size()),
               ct.data(), static_cast<int>(body.size() > 2000 ? 2000 : body.size()), body.data(), more.c_str());
  std::abort();
}

using fuzz_ref::depth_counter;

std::string_view next_part(std::string_view& rest) {
  auto nul = rest.find('\0');
  auto part = rest.substr(0, nul);
  rest = nul == std::string_view::npos ? std::string_view{} : rest.substr(nul + 1);
  return part;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const auto flags = data[0];
  const std::string_view ct = k_types[flags & 7];
  const std::size_t max_depth = k_depths[(flags >> 3) & 3];
  std::string_view rest(reinterpret_cast<const char*>(data) + 1, size - 1);
  const std::string_view dedup_path = next_part(rest);
  const std::string_view query_text = next_part(rest);
  const std::string_view header_text = next_part(rest);
  const std::string_view body = rest;

  std::map<std::string, std::string> query;
  for (auto pair : zapd::split(query_text, '&')) {
    auto eq = pair.find('=');
    query[std::string(pair.substr(0, eq))] = eq == std::string_view::npos ? "" : std::string(pair.substr(eq + 1));
  }
  std::vector<std::pair<std::string, std::string>> headers;
  for (auto line : zapd::split(header_text, '\n')) {
    auto colon = line.find(':');
    if (colon == std::string_view::npos) continue;
    headers.emplace_back(std::string(line.substr(0, colon)), std::string(zapd::trim(line.substr(colon + 1))));
  }

  const bool json_type = (flags & 7) == 0 || (flags & 7) == 1 || (flags & 7) == 4 || (flags & 7) == 6;
  const bool form_type = (flags & 7) == 2 || (flags & 7) == 5;
  // check_body drops a leading UTF-8 BOM from a JSON body (finding F2); so does the model.
  std::string_view jbody = body;
  if (json_type && jbody.starts_with("\xEF\xBB\xBF")) jbody.remove_prefix(3);
  // nlohmann skips a mark at the start of its input; a second one is no JSON (F5, README).
  const bool second_bom = jbody.starts_with("\xEF\xBB\xBF");
  const bool blank = jbody.find_first_not_of(" \t\r\n") == std::string_view::npos;
  depth_counter ref;
  const bool valid = json_type && !second_bom && jbody.find('\0') == std::string_view::npos &&
                     json::sax_parse(jbody, &ref, json::input_format_t::json, true);

  for (bool parse : {false, true}) {
    auto r = hooks::check_body(ct, body, max_depth, parse);
    if (json_type) {
      const bool should = blank || (valid && ref.deepest <= max_depth);
      if (static_cast<bool>(r) != should) fail(r ? "JSON body accepted" : "JSON body refused", ct, body, r ? "" : r.err().message);
      if (!r) continue;
      if (blank) {
        if (r->json_text || !r->value.is_null()) fail("blank JSON body is not null", ct, body);
      } else {
        if (!r->json_text || *r->json_text != jbody) fail("json_text is not the body", ct, body);
        if (parse && r->value != json::parse(jbody)) fail("parsed value differs", ct, body);
      }
    } else {
      if (!r) fail("non-JSON body refused", ct, body, r.err().message);
      if (r->json_text) fail("json_text for a non-JSON type", ct, body);
      if (form_type) {
        if (!r->value.is_object()) fail("form body is not an object", ct, body);
        for (const auto& [k, v] : r->value.items())
          if (!v.is_string()) fail("form value is not a string", ct, body, k);
      } else if (body.empty() ? !r->value.is_null() : !r->value.is_string()) {
        fail("text body is not its string", ct, body);
      }
    }

    const auto& cb = *r;
    const std::string text = hooks::trigger_payload_text("POST", cb, ct, query, headers, 1'700'000'000'123);
    auto payload = zapd::parse_json(text, zapd::json_depth::stored, "trigger payload");
    if (!payload) fail("trigger payload text is not valid JSON", ct, body, text.substr(0, 2000));
    if (!payload->is_object() || !payload->contains("body") || !(*payload)["headers"].is_object())
      fail("trigger payload shape", ct, body, text.substr(0, 2000));
    json expected_body = cb.json_text ? json::parse(*cb.json_text) : cb.value;
    if ((*payload)["body"] != expected_body) fail("payload body is not the checked body", ct, body, text.substr(0, 2000));
    for (const auto& [k, v] : (*payload)["headers"].items())
      if (!hooks::kept_header(k)) fail("a dropped header is in the payload", ct, body, k);

    auto doc = hooks::trigger_payload("POST", expected_body, ct, query, headers, 1'700'000'000'123);
    if (doc != *payload) fail("trigger_payload_text and trigger_payload differ", ct, body, text.substr(0, 2000));
    (void)zapd::dump_safe(doc);

    // Dedup path: over the body (as ingestion does) and over the whole payload.
    const json& b = (*payload)["body"];
    auto v = hooks::value_at(b, dedup_path);
    (void)hooks::value_at(*payload, dedup_path);
    if (b.is_object() && !dedup_path.empty() && dedup_path.find('.') == std::string_view::npos) {
      auto it = b.find(std::string(dedup_path));
      const bool present = it != b.end() && !it->is_null();
      if (present != v.has_value()) fail("value_at disagrees with a direct lookup", ct, body, std::string(dedup_path));
      if (present && it->is_string() && *v != it->get<std::string>())
        fail("value_at string differs", ct, body, std::string(dedup_path));
    }
  }
  return 0;
}
