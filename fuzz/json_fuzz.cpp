// libFuzzer target for the JSON entry point: zapd::parse_json / parse_json_or_discarded /
// nesting_depth (include/zapd/core/json.hpp). See README.md.
//
// Input: one byte choosing the depth limit, then the JSON text.
//   byte < 240: max_depth = byte % 80; else one of 0, json_depth::api, ::remote, ::stored.
//
// Checked: no crash, sanitizer report or exception. And, against a reference that builds no
// document (nlohmann's SAX parser counting depth, iterative; a text holding a NUL byte is
// not JSON, whatever nlohmann says):
//   - parse_json succeeds exactly when the text is valid JSON and nests no deeper than max_depth;
//   - parse_json_or_discarded is discarded exactly when parse_json fails; same document otherwise;
//   - nesting_depth(text, stop) is the real depth when that is <= stop, and > stop otherwise;
//   - a parsed document's depth (walked iteratively) is the reference depth, <= max_depth;
//   - dump_safe of it parses again under the same limit and dumps to the same text;
//   - a failure's message is valid UTF-8 and names the limit when the depth was the reason.
// And json_string on the raw bytes (the text without its first byte) holds exactly what a
// round trip through nlohmann's replacing dump gives: the bytes themselves when they are
// valid UTF-8, U+FFFD for each invalid sequence otherwise.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "json_reference.hpp"
#include "zapd/core/json.hpp"

namespace {

using nlohmann::json;

[[noreturn]] void fail(const char* what, std::string_view text, std::size_t max_depth, const std::string& more = {}) {
  std::fprintf(stderr, "json_fuzz: %s (max_depth %zu)\ntext: %.*s\n%s\n", what, max_depth,
               static_cast<int>(text.size() > 2000 ? 2000 : text.size()), text.data(), more.c_str());
  std::abort();
}

// Depth of a JSON text by SAX events: no document is built, no recursion.
using fuzz_ref::depth_counter;

// Depth of a document, walked with an explicit stack.
std::size_t document_depth(const json& root) {
  std::size_t deepest = 0;
  std::vector<std::pair<const json*, std::size_t>> todo{{&root, 0}};
  while (!todo.empty()) {
    auto [j, d] = todo.back();
    todo.pop_back();
    if (!j->is_structured()) continue;
    if (d + 1 > deepest) deepest = d + 1;
    for (const auto& child : *j) todo.emplace_back(&child, d + 1);
  }
  return deepest;
}

bool valid_utf8(const std::string& s) {
  try {
    (void)json(s).dump();
    return true;
  } catch (const json::exception&) {
    return false;
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  static constexpr std::size_t named[] = {0, zapd::json_depth::api, zapd::json_depth::remote, zapd::json_depth::stored};
  const std::size_t max_depth = data[0] < 240 ? data[0] % 80 : named[data[0] % 4];
  const std::string_view text(reinterpret_cast<const char*>(data) + 1, size - 1);

  // json_string's fast path (simdjson's UTF-8 check) against the round trip it replaces.
  const json kept = zapd::json_string(text);
  const json round_trip = json::parse(zapd::dump_safe(json(std::string(text))));
  if (!kept.is_string() || kept != round_trip)
    fail("json_string differs from the replacing round trip", text, max_depth, zapd::dump_safe(kept));
  if ((kept.get_ref<const std::string&>() == text) != valid_utf8(std::string(text)))
    fail("json_string changed valid UTF-8 or kept invalid UTF-8", text, max_depth);

  // nlohmann's lexer takes a NUL byte for the end of the input ("1\0garbage" passes
  // accept()); JSON has no raw NUL anywhere, so such a text is not JSON.
  depth_counter ref;
  const bool valid = text.find('\0') == std::string_view::npos &&
                     json::sax_parse(text, &ref, json::input_format_t::json, /*strict=*/true);
  const std::size_t real_depth = ref.deepest;

  // nesting_depth: exact for valid JSON up to stop_at, and past stop_at when deeper.
  if (valid) {
    for (std::size_t stop : {max_depth, real_depth, real_depth == 0 ? 0 : real_depth - 1}) {
      const std::size_t d = zapd::nesting_depth(text, stop);
      if (real_depth <= stop ? d != real_depth : d <= stop)
        fail("nesting_depth disagrees with the parser", text, max_depth,
             "stop " + std::to_string(stop) + " got " + std::to_string(d) + " real " + std::to_string(real_depth));
    }
  }

  auto r = zapd::parse_json(text, max_depth, "fuzz input");
  const bool should_parse = valid && real_depth <= max_depth;
  if (static_cast<bool>(r) != should_parse)
    fail(r ? "parse_json accepted what it must refuse" : "parse_json refused valid JSON within the limit", text, max_depth,
         r ? "" : r.err().message);

  json d = zapd::parse_json_or_discarded(text, max_depth);
  if (d.is_discarded() == static_cast<bool>(r)) fail("parse_json_or_discarded disagrees with parse_json", text, max_depth);

  if (!r) {
    const auto& msg = r.err().message;
    if (!valid_utf8(msg)) fail("error message is not valid UTF-8", text, max_depth, msg);
    if (valid && msg.find(std::to_string(max_depth)) == std::string::npos)
      fail("a depth refusal does not name the limit", text, max_depth, msg);
    return 0;
  }

  const json& j = *r;
  if (j != d) fail("parse_json_or_discarded built another document", text, max_depth);
  if (document_depth(j) != real_depth) fail("document depth differs from the text's", text, max_depth);

  const std::string once = zapd::dump_safe(j);
  auto again = zapd::parse_json(once, max_depth, "dump");
  if (!again) fail("dump_safe output does not parse under the same limit", text, max_depth, once);
  const std::string twice = zapd::dump_safe(*again);
  if (once != twice) fail("dump_safe does not round-trip", text, max_depth, once + "\n" + twice);
  return 0;
}
