// libFuzzer target for the zap validator: zaps::validate (include/zapd/zaps/zaps.hpp) over
// the built-in catalog, on a body parsed as the API parses it (parse_json, json_depth::api).
// See README.md.
//
// Input: one flags byte, then the JSON body of POST/PUT /api/v1/zap.
//   flags bit 0: the user has secrets token, stripe_key, SIGNING (else none);
//   bit 1: small limits (2 actions, 600 bytes) instead of the defaults.
//
// Checked: no crash, sanitizer report or exception. And (zap_checks.hpp):
//   - a refusal is invalid_argument with details, all valid UTF-8;
//   - a zap that passes has a known trigger, at most max_actions known actions with object
//     metadata, references only the user's secrets, dumps strictly, parses back under
//     json_depth::stored, and its API shape (to_json) builds;
//   - idempotence: the saved zap, sent back as a create body (name, availableTriggerId,
//     triggerMetadata, actions[].availableActionId/actionMetadata, retry), validates to the
//     same definition (ids aside).
#include <cstddef>
#include <cstdint>
#include <exception>
#include <string_view>

#include "zap_checks.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace zap_fuzz;
  if (size == 0) return 0;
  const auto flags = data[0];
  const std::string_view in(reinterpret_cast<const char*>(data) + 1, size - 1);
  auto body = zapd::parse_json(in, zapd::json_depth::api, "request body");
  if (!body) return 0;
  const auto& secrets = secret_names(flags);
  const auto lim = limits_for(flags);
  const auto& cat = zapd::actions::catalog::builtin();
  try {
    auto v = zaps::validate(*body, cat, secrets, lim);
    check_outcome("zap_validate_fuzz", in, v, secrets, lim);
    if (!v) return 0;

    const json def = v->definition.to_json();
    json again = {{"name", v->name},
                  {"availableTriggerId", def["trigger"]["triggerId"]},
                  {"triggerMetadata", def["trigger"]["metadata"]},
                  {"actions", json::array()}};
    for (const auto& a : def["actions"])
      again["actions"].push_back({{"availableActionId", a["actionId"]}, {"actionMetadata", a["metadata"]}});
    if (def.contains("retry")) again["retry"] = def["retry"];
    if (again.dump().size() > lim.max_definition_bytes) return 0;  // grew past the limit (defaults, name): see README
    auto v2 = zaps::validate(again, cat, secrets, lim);
    if (!v2) fail("zap_validate_fuzz", "a saved zap does not validate again", in, v2.err().message + "\n" + again.dump());
    if (v2->name != v->name || without_ids(v2->definition.to_json()) != without_ids(v->definition.to_json()))
      fail("zap_validate_fuzz", "validation is not idempotent", in, v->definition.to_json().dump() + "\n" + v2->definition.to_json().dump());
  } catch (const std::exception& e) {
    fail("zap_validate_fuzz", "exception", in, e.what());
  }
  return 0;
}
