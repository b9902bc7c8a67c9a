#include "zapd/worker/step.hpp"

#include <algorithm>
#include <limits>

#include <fmt/format.h>

#include "zapd/actions/spec.hpp"

#include "zapd/core/json.hpp"
#include "zapd/core/log.hpp"
#include "zapd/secrets/secrets.hpp"
#include "zapd/store/database.hpp"
#include "zapd/templates/template.hpp"
#include "versions.hpp"

namespace zapd::worker {
namespace {

using json = nlohmann::json;

// The step's error when its config names secrets that do not exist (deleted since the zap
// was saved): running it would send an empty string in their place, e.g. an unsigned request.
std::string missing_secrets_error(const std::vector<std::string>& names) {
  std::string list;
  for (const auto& n : names) {
    if (!list.empty()) list += ", ";
    // A name is a template path segment: short in practice, but cut like any echoed input.
    list += fmt::format("\"{}\"", n.size() > 64 ? n.substr(0, 64) + "..." : n);
  }
  return fmt::format("{} {} {}", names.size() == 1 ? "secret" : "secrets", list, names.size() == 1 ? "does not exist" : "do not exist");
}

prepared_step failing(prepared_step p, actions::verdict v, std::string error) {
  p.what = prepared_step::outcome::fail;
  p.failure.v = v;
  p.failure.error = std::move(error);
  return p;
}

}  // namespace

preparer::preparer(store::database& db, const secrets::box& box, const actions::executors& executors, retry_policy base)
    : db_(db), box_(box), executors_(executors), base_(base), versions_(std::make_unique<version_cache>()) {}

preparer::~preparer() = default;

prepared_step preparer::prepare(const std::string& run_id, int step_index, int attempt) const {
  prepared_step p;
  p.meta.retry = base_;

  // The run, then its zap version (cached: versions never change).
  struct loaded {
    runs::step_context run;
    std::shared_ptr<const version_info> version;
  };
  auto data = db_.reads().with([&](store::connection& c) -> result<std::optional<loaded>> {
    auto run = runs::load_for_step(c, run_id, step_index);
    if (!run) return std::move(run).err();
    if (!*run) return std::optional<loaded>{};
    auto version = versions_->get(c, (*run)->zap_id, (*run)->zap_version);
    if (!version) return std::move(version).err();
    return std::optional<loaded>(loaded{std::move(**run), std::move(*version)});
  });
  if (!data) {
    log::warn("worker.load_failed", {{"run", run_id}, {"step", step_index}, {"error", data.err().message}});
    // The zap version is gone (zap deleted) or unreadable: no retry can help. A busy
    // database can.
    const bool permanent = data.err().code == errc::not_found || data.err().code == errc::internal;
    return failing(std::move(p), permanent ? actions::verdict::failed : actions::verdict::retry,
                   "could not read the run: " + data.err().message);
  }
  if (!*data || (*data)->run.status == "cancelled" || (*data)->run.status == "succeeded" || (*data)->run.status == "failed" ||
      (*data)->run.status == "filtered") {
    p.what = prepared_step::outcome::skip;
    p.skip_reason = *data ? "run is " + (*data)->run.status : "run no longer exists";
    return p;
  }
  runs::step_context& d = (*data)->run;
  const version_info& version = *(*data)->version;
  p.meta.retry = base_.with(version.definition.retry);
  p.meta.steps = version.definition.step_count();
  const zaps::step* step = version.definition.step_at(step_index);
  if (!step) {
    p.what = prepared_step::outcome::skip;
    p.skip_reason = fmt::format("step {} is not in zap version {}", step_index, d.zap_version);
    return p;
  }
  p.meta.action_id = step->action_id;
  const json& raw = step->metadata;
  const actions::executor* ex = executors_.find(p.meta.action_id);
  if (!ex)
    return failing(std::move(p), actions::verdict::failed,
                   fmt::format("the '{}' action cannot run in this version of zapd", p.meta.action_id));

  // The trigger payload and the outputs are moved in: `d` is this call's own copy.
  json ctx = {{"trigger", std::move(d.trigger)},
              {"steps", std::move(d.outputs)},
              {"run", {{"id", run_id}, {"zapId", d.zap_id}, {"zapName", version.name}, {"zapVersion", d.zap_version},
                       {"step", step_index}, {"attempt", attempt}}},
              {"secrets", json::object()}};
  if (!version.secrets.empty()) {
    auto found = db_.reads().with([&](store::connection& c) { return secrets::reveal(c, box_, d.user_id, version.secrets); });
    if (!found) return failing(std::move(p), actions::verdict::retry, "could not read secrets: " + found.err().message);
    for (auto& [name, value] : *found) {
      p.secret_values.push_back(value);
      ctx["secrets"][name] = std::move(value);
    }
  }
  auto rendered = templates::render_config(raw, ctx, [&](std::string_view field) { return ex->render_options(field, raw); });
  p.meta.input = std::move(rendered.masked);
  for (auto& w : rendered.warnings) p.meta.warnings.push_back(std::move(w));
  // Permanent: the secret does not come back by itself (a new one with that name is used by a
  // retry or replay of the run).
  if (!rendered.missing_secrets.empty())
    return failing(std::move(p), actions::verdict::failed, missing_secrets_error(rendered.missing_secrets));

  p.request.run_id = run_id;
  p.request.step_index = step_index;
  p.request.attempt = attempt;
  p.request.zap_name = version.name;
  p.request.config = std::move(rendered.value);
  p.request.idempotency_key = fmt::format("{}:{}", run_id, step_index);
  return p;
}

void cap_timeout(nlohmann::json& config, std::int64_t cap_ms) {
  std::int64_t timeout = 30'000;
  // A zap saved before timeoutMs was range-checked may hold anything (2^63 read as int64 was
  // negative, i.e. a 1 ms timeout): out of any sane range means the default.
  if (auto t = config.find("timeoutMs"); t != config.end())
    if (auto v = actions::bounded_integer(*t, 1, std::numeric_limits<std::int32_t>::max())) timeout = *v;
  config["timeoutMs"] = std::clamp<std::int64_t>(timeout, 1, std::max<std::int64_t>(1, cap_ms));
}

runs::attempt_record decide(const step_meta& m, const queue::job& j, actions::step_result r, std::int64_t started_ms,
                            std::int64_t now_ms, double draw) {
  const bool give_up = r.v == actions::verdict::failed || (r.v == actions::verdict::retry && j.attempts >= m.retry.max_attempts);
  const bool schedules_retry = !give_up && r.v == actions::verdict::retry;
  if (give_up && r.v == actions::verdict::retry) r.error = fmt::format("{} (gave up after {} attempts)", r.error, j.attempts);
  if (give_up)
    log::info("worker.step_failed", {{"run", j.run_id}, {"step", j.step_index}, {"attempts", j.attempts}, {"error", r.error}});

  runs::attempt_record rec;
  rec.job = j;
  rec.action_id = m.action_id;
  rec.steps = m.steps;
  rec.verdict = r.v == actions::verdict::succeeded  ? runs::attempt_verdict::succeeded
                : r.v == actions::verdict::filtered ? runs::attempt_verdict::filtered
                : give_up                           ? runs::attempt_verdict::failed
                                                    : runs::attempt_verdict::retry;
  if (r.v == actions::verdict::succeeded && r.resume_at_ms) rec.resume_at_ms = *r.resume_at_ms;
  if (schedules_retry)
    rec.retry_at_ms = now_ms + m.retry.delay_for(j.attempts + 1, draw, r.retry_after).count();
  rec.input = dump_safe(m.input);
  rec.output = dump_safe(r.output);
  rec.warnings = dump_safe(m.warnings);
  rec.error = std::move(r.error);
  rec.started_ms = started_ms;
  rec.now_ms = now_ms;
  rec.duration_ms = r.duration.count();
  return rec;
}

}  // namespace zapd::worker
