// libFuzzer target for the import document: the body of POST /api/v1/zap/import as its
// handler reads it (http::parse_json_body on the request, then zaps::validate), and the
// export -> import round trip. See README.md.
//
// Input: one flags byte (as zap_validate_fuzz: bit 0 secrets, bit 1 small limits), then the
// request body (an export document: format, formatVersion, name, availableTriggerId,
// triggerMetadata, actions, retry).
//
// Checked: no crash, sanitizer report or exception. And:
//   - parse_json_body refuses an empty body and anything parse_json(api) refuses, with a
//     400-class error naming the request body;
//   - every validate() outcome as in zap_validate_fuzz (zap_checks.hpp);
//   - round trip: the export document of an imported zap (export_json) is itself an import
//     body that parse_json_body accepts, that validates to the same name and definition
//     (ids aside), and whose export is the same document.
#include <cstddef>
#include <cstdint>
#include <exception>
#include <string>
#include <string_view>

#include "zap_checks.hpp"
#include "zapd/http/message.hpp"

namespace {

zapd::http::request import_request(std::string body) {
  zapd::http::request req;
  req.msg.method(boost::beast::http::verb::post);
  req.msg.target("/api/v1/zap/import");
  req.msg.set(boost::beast::http::field::content_type, "application/json");
  req.msg.body() = std::move(body);
  req.msg.prepare_payload();
  req.path = "/api/v1/zap/import";
  return req;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace zap_fuzz;
  constexpr const char* T = "zap_import_fuzz";
  if (size == 0) return 0;
  const auto flags = data[0];
  const std::string_view in(reinterpret_cast<const char*>(data) + 1, size - 1);
  const auto& secrets = secret_names(flags);
  const auto lim = limits_for(flags);
  const auto& cat = zapd::actions::catalog::builtin();
  try {
    auto req = import_request(std::string(in));
    auto body = zapd::http::parse_json_body(req);
    const bool should_parse = !in.empty() && static_cast<bool>(zapd::parse_json(in, zapd::json_depth::api));
    if (static_cast<bool>(body) != should_parse) fail(T, "parse_json_body disagrees with parse_json", in);
    if (!body) {
      if (zapd::http::status_for(body.err().code) != 400) fail(T, "a bad body is not a 400", in, body.err().message);
      if (body.err().message.find("request body") == std::string::npos) fail(T, "message does not name the body", in, body.err().message);
      return 0;
    }
    auto v = zaps::validate(*body, cat, secrets, lim);
    check_outcome(T, in, v, secrets, lim);
    if (!v) return 0;

    const json doc = exported(*v);
    if (doc.value("format", "") != "zapd.zap" || doc.value("formatVersion", 0) != 1) fail(T, "export without its format", in, doc.dump());
    if (doc.dump().size() > lim.max_definition_bytes) return 0;  // the export grew past the limit: see README
    auto req2 = import_request(doc.dump());
    auto body2 = zapd::http::parse_json_body(req2);
    if (!body2) fail(T, "an export document is not an import body", in, body2.err().message + "\n" + doc.dump());
    auto v2 = zaps::validate(*body2, cat, secrets, lim);
    if (!v2) fail(T, "an export document does not import", in, v2.err().message + "\n" + doc.dump());
    if (v2->name != v->name || without_ids(v2->definition.to_json()) != without_ids(v->definition.to_json()))
      fail(T, "export -> import changes the zap", in, v->definition.to_json().dump() + "\n" + v2->definition.to_json().dump());
    if (exported(*v2) != doc) fail(T, "export of the re-imported zap differs", in, doc.dump() + "\n" + exported(*v2).dump());
  } catch (const std::exception& e) {
    fail(T, "exception", in, e.what());
  }
  return 0;
}
