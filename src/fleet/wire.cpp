#include "zapd/fleet/wire.hpp"

#include <fmt/format.h>

#include "zapd/core/json.hpp"
#include "zapd/secrets/secrets.hpp"

namespace zapd::fleet {
namespace {

using json = nlohmann::json;
constexpr std::string_view k_prefix = "zf1:";

std::string_view verdict_name(actions::verdict v) {
  switch (v) {
    case actions::verdict::succeeded: return "succeeded";
    case actions::verdict::retry: return "retry";
    case actions::verdict::failed: return "failed";
    case actions::verdict::filtered: return "filtered";
  }
  return "failed";
}

std::optional<actions::verdict> parse_verdict(std::string_view s) {
  if (s == "succeeded") return actions::verdict::succeeded;
  if (s == "retry") return actions::verdict::retry;
  if (s == "failed") return actions::verdict::failed;
  if (s == "filtered") return actions::verdict::filtered;
  return std::nullopt;
}

json result_to_json(const actions::step_result& r) {
  json j = {{"verdict", verdict_name(r.v)}, {"output", r.output}, {"error", r.error}, {"durationMs", r.duration.count()}};
  if (r.retry_after) j["retryAfterMs"] = r.retry_after->count();
  if (r.resume_at_ms) j["resumeAtMs"] = *r.resume_at_ms;
  return j;
}

// Field readers that name what is wrong.
struct reader {
  const json& j;
  std::string what;
  status err;

  const json* get(const char* k, json::value_t t) {
    if (!err) return nullptr;
    auto it = j.find(k);
    const bool ok = it != j.end() && (it->type() == t || (t == json::value_t::number_integer && it->is_number_integer()));
    if (!ok) {
      err = make_error(errc::invalid_argument, fmt::format("{}: field '{}' is missing or of the wrong type", what, k));
      return nullptr;
    }
    return &*it;
  }
  std::string str(const char* k) {
    auto v = get(k, json::value_t::string);
    return v ? v->get<std::string>() : std::string();
  }
  std::int64_t num(const char* k) {
    auto v = get(k, json::value_t::number_integer);
    return v ? v->get<std::int64_t>() : 0;
  }
};

result<actions::step_result> result_from_json(const json& j, const std::string& what) {
  if (!j.is_object()) return make_error(errc::invalid_argument, what + ": not an object");
  reader r{j, what, {}};
  actions::step_result out;
  auto v = parse_verdict(r.str("verdict"));
  out.error = r.str("error");
  out.duration = std::chrono::milliseconds(r.num("durationMs"));
  if (!r.err) return std::move(r.err).err();
  if (!v) return make_error(errc::invalid_argument, what + ": unknown verdict");
  out.v = *v;
  out.output = j.contains("output") ? j["output"] : json(nullptr);
  if (auto it = j.find("retryAfterMs"); it != j.end() && it->is_number_integer())
    out.retry_after = std::chrono::milliseconds(it->get<std::int64_t>());
  if (auto it = j.find("resumeAtMs"); it != j.end() && it->is_number_integer()) out.resume_at_ms = it->get<std::int64_t>();
  return out;
}

result<json> parse_object(std::string_view text, std::string_view what) {
  auto j = parse_json(text, json_depth::stored + 16, what);
  if (!j) return std::move(j).err();
  if (!j->is_object()) return make_error(errc::invalid_argument, fmt::format("{}: not a JSON object", what));
  return std::move(*j);
}

// "outboxId": absent in messages from before it existed (0: nothing to settle).
std::int64_t optional_id(const json& j) {
  auto it = j.find("outboxId");
  return it != j.end() && it->is_number_integer() ? it->get<std::int64_t>() : 0;
}

}  // namespace

std::string encode(const step_message& m) {
  json j = {{"v", 1},
            {"run", m.run_id},
            {"step", m.step_index},
            {"attempt", m.attempt},
            {"lane", queue::lane_name(m.lane)},
            {"action", m.action_id},
            {"zapName", m.request.zap_name},
            {"config", m.request.config},
            {"idempotencyKey", m.request.idempotency_key},
            {"secrets", m.secret_values},
            {"meta", m.meta},
            {"publishedMs", m.published_ms}};
  if (m.outbox_id > 0) j["outboxId"] = m.outbox_id;
  if (m.precomputed) j["precomputed"] = result_to_json(*m.precomputed);
  return dump_safe(j);
}

std::string encode(const result_message& m) {
  json j = {{"v", 1},
            {"run", m.run_id},
            {"step", m.step_index},
            {"attempt", m.attempt},
            {"lane", queue::lane_name(m.lane)},
            {"result", result_to_json(m.result)},
            {"startedMs", m.started_ms},
            {"worker", m.worker},
            {"meta", m.meta},
            {"publishedMs", m.published_ms}};
  if (m.outbox_id > 0) j["outboxId"] = m.outbox_id;
  return dump_safe(j);
}

result<step_message> decode_step(std::string_view text) {
  auto j = parse_object(text, "step message");
  if (!j) return std::move(j).err();
  reader r{*j, "step message", {}};
  step_message m;
  m.run_id = r.str("run");
  m.step_index = static_cast<int>(r.num("step"));
  m.attempt = static_cast<int>(r.num("attempt"));
  auto lane = queue::parse_lane(r.str("lane"));
  m.action_id = r.str("action");
  m.request.zap_name = r.str("zapName");
  m.request.idempotency_key = r.str("idempotencyKey");
  m.published_ms = r.num("publishedMs");
  auto secrets = r.get("secrets", json::value_t::array);
  if (!r.err) return std::move(r.err).err();
  if (!lane) return make_error(errc::invalid_argument, "step message: unknown lane");
  m.lane = *lane;
  for (const auto& s : *secrets)
    if (s.is_string()) m.secret_values.push_back(s.get<std::string>());
  m.request.run_id = m.run_id;
  m.request.step_index = m.step_index;
  m.request.attempt = m.attempt;
  m.request.config = j->value("config", json::object());
  m.meta = j->value("meta", json::object());
  m.outbox_id = optional_id(*j);
  if (auto it = j->find("precomputed"); it != j->end()) {
    auto pre = result_from_json(*it, "step message's precomputed result");
    if (!pre) return std::move(pre).err();
    m.precomputed = std::move(*pre);
  }
  return m;
}

result<result_message> decode_result(std::string_view text) {
  auto j = parse_object(text, "result message");
  if (!j) return std::move(j).err();
  reader r{*j, "result message", {}};
  result_message m;
  m.run_id = r.str("run");
  m.step_index = static_cast<int>(r.num("step"));
  m.attempt = static_cast<int>(r.num("attempt"));
  auto lane = queue::parse_lane(r.str("lane"));
  m.started_ms = r.num("startedMs");
  m.worker = r.str("worker");
  auto res = r.get("result", json::value_t::object);
  if (!r.err) return std::move(r.err).err();
  if (!lane) return make_error(errc::invalid_argument, "result message: unknown lane");
  m.lane = *lane;
  auto rr = result_from_json(*res, "result message's result");
  if (!rr) return std::move(rr).err();
  m.result = std::move(*rr);
  m.meta = j->value("meta", json::object());
  m.outbox_id = optional_id(*j);
  if (auto it = j->find("publishedMs"); it != j->end() && it->is_number_integer()) m.published_ms = it->get<std::int64_t>();
  return m;
}

json meta_to_json(const worker::step_meta& m) {
  return {{"action", m.action_id},
          {"steps", m.steps},
          {"retry", {{"baseMs", m.retry.base.count()}, {"maxAttempts", m.retry.max_attempts}, {"jitter", m.retry.jitter}}},
          {"input", m.input},
          {"warnings", m.warnings}};
}

worker::step_meta meta_from_json(const json& j, const worker::retry_policy& fallback) {
  worker::step_meta m;
  m.retry = fallback;
  if (!j.is_object()) return m;
  if (auto it = j.find("action"); it != j.end() && it->is_string()) m.action_id = it->get<std::string>();
  if (auto it = j.find("steps"); it != j.end() && it->is_number_unsigned()) m.steps = it->get<std::size_t>();
  if (auto it = j.find("retry"); it != j.end() && it->is_object()) {
    const json& r = *it;
    if (auto b = r.find("baseMs"); b != r.end() && b->is_number_integer()) m.retry.base = std::chrono::milliseconds(b->get<std::int64_t>());
    if (auto a = r.find("maxAttempts"); a != r.end() && a->is_number_integer()) m.retry.max_attempts = a->get<int>();
    if (auto x = r.find("jitter"); x != r.end() && x->is_number()) m.retry.jitter = x->get<double>();
  }
  if (auto it = j.find("input"); it != j.end()) m.input = *it;
  if (auto it = j.find("warnings"); it != j.end() && it->is_array()) m.warnings = *it;
  return m;
}

sealer::sealer(const secrets::box& key) : key_(key), fingerprint_(key.fingerprint()) {}

std::string sealer::seal(std::string_view kind, std::string_view plaintext) const {
  std::string out(k_prefix);
  out += fingerprint_;
  out += ':';
  out += key_.seal("zapd-fleet", kind, plaintext);
  return out;
}

result<std::string> sealer::open(std::string_view kind, std::string_view sealed) const {
  if (sealed.substr(0, k_prefix.size()) != k_prefix || sealed.size() < k_prefix.size() + 17 ||
      sealed[k_prefix.size() + 16] != ':')
    return make_error(errc::invalid_argument, "not a sealed zapd fleet message");
  const std::string_view fp = sealed.substr(k_prefix.size(), 16);
  if (fp != fingerprint_)
    return make_error(errc::forbidden,
                      fmt::format("fleet key mismatch: the message was sealed with key {}, this process holds key {} "
                                  "(give every worker a copy of the primary's kafka.fleet_key_file)",
                                  fp, fingerprint_));
  auto plain = key_.open("zapd-fleet", kind, sealed.substr(k_prefix.size() + 17));
  if (!plain) return make_error(errc::invalid_argument, "a fleet message did not open: " + plain.err().message);
  return plain;
}

}  // namespace zapd::fleet
