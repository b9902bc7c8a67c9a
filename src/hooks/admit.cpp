#include "zapd/hooks/admit.hpp"

#include <algorithm>
#include <cctype>

#include <fmt/format.h>

#include "zapd/core/crypto.hpp"
#include "zapd/core/ids.hpp"
#include "zapd/hooks/payload.hpp"
#include "zapd/hooks/signature.hpp"

namespace zapd::hooks {
namespace {

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) == std::tolower(static_cast<unsigned char>(y));
         });
}

}  // namespace

std::string inbound::header(std::string_view name) const {
  for (const auto& [k, v] : headers)
    if (iequals(k, name)) return v;
  return {};
}

std::optional<std::string> dedup_key(const zap_info& zap, const inbound& in, const nlohmann::json& body) {
  std::string key;
  if (auto v = in.header("webhook-id"); !v.empty()) {
    key = "webhook-id:" + v;
  } else if (auto k = in.header("Idempotency-Key"); !k.empty()) {
    key = "idempotency-key:" + k;
  } else if (!zap.dedup_path.empty()) {
    auto v = value_at(body, zap.dedup_path);
    if (!v) return std::nullopt;
    key = "path:" + *v;
  } else {
    return std::nullopt;
  }
  if (key.size() > k_max_dedup_key) key = "sha256:" + hex_encode(sha256(key));
  return key;
}

result<runs::new_run> admit(const zap_info* zap, const inbound& in, std::int64_t now_ms, const admit_options& o) {
  // A zap of another user answers like a missing one: ids are not an oracle.
  if (!zap || zap->user_id != in.user_id)
    return make_error(errc::not_found, fmt::format("no zap {} for user {}", in.zap_id, in.user_id));
  if (!zap->enabled) return disabled_error(in.zap_id);
  // 409, not 404: the zap is the caller's and exists; its trigger is what refuses the request.
  if (!zap->webhook)
    return make_error(errc::invalid_state,
                      fmt::format("zap {} is started by its schedule, not by webhooks: it has no webhook URL", in.zap_id));

  verify_options vo;
  vo.hmac_header = zap->signature_header;
  vo.tolerance = o.signature_tolerance;
  auto lookup = [&in](std::string_view n) { return in.header(n); };
  if (auto sig = verify(zap->sig, zap->secret, lookup, in.body, now_ms / 1000, vo); !sig) return std::move(sig).err();

  // A JSON body is validated and kept as its text; a document is built only for dedupPath.
  auto body = check_body(in.content_type, in.body, o.max_depth, !zap->dedup_path.empty());
  if (!body) return std::move(body).err();

  runs::new_run run;
  run.now_ms = now_ms;
  run.id = new_uuid_v7(now_ms);
  run.zap_id = in.zap_id;
  run.user_id = in.user_id;
  run.zap_version = zap->version;
  run.lane = zap->lane;
  run.actions = zap->actions;
  run.dedup_key = dedup_key(*zap, in, body->value);
  run.trigger_json = trigger_payload_text(in.method, *body, in.content_type, in.query, in.headers, now_ms);
  return run;
}

}  // namespace zapd::hooks
