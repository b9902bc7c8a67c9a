// The `delay` step: the next step is due later. Nothing sleeps: the step succeeds at once
// with `resume_at_ms`, and the run's next job is published due then (durable in the queue).
#include <chrono>

#include <fmt/format.h>

#include "zapd/actions/catalog.hpp"
#include "zapd/actions/executor.hpp"

namespace zapd::actions {

using nlohmann::json;

spec delay_action_spec() {
  spec s;
  s.id = "delay";
  s.name = "Delay";
  s.description = "Waits before the next step: for a duration, or until a time. Survives restarts.";
  s.fields = {
      {.name = "for",
       .help = "How long: 90s, 5m, 2h, 1d, or ISO 8601 like PT1H30M",
       .format = field_format::duration,
       .max_length = 40},
      {.name = "until",
       .help = "Until a time (RFC 3339), e.g. {{body.remindAt}} or 2026-12-24T18:00:00+01:00",
       .templates = true,
       .max_length = 1024},
  };
  s.check = [](const json& config, const std::string& path, std::vector<field_error>& out) {
    const bool has_for = config.contains("for") && config["for"].is_string() && !config["for"].get<std::string>().empty();
    const bool has_until =
        config.contains("until") && config["until"].is_string() && !config["until"].get<std::string>().empty();
    if (has_for == has_until)
      out.push_back({path + (has_for ? ".until" : ".for"), has_for ? "give either `for` or `until`, not both"
                                                                  : "required: `for` (a duration) or `until` (a time)"});
    if (has_until) {
      const auto& u = config["until"].get_ref<const std::string&>();
      if (u.find("{{") == std::string::npos && !parse_rfc3339_ms(u))
        out.push_back({path + ".until", fmt::format("'{}' is not an RFC 3339 time like 2026-12-24T18:00:00Z", u)});
    }
  };
  s.icon_svg =
      R"(<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 24 24" width="24" height="24" fill="none" stroke="#1971c2" stroke-width="2" stroke-linecap="round"><circle cx="12" cy="13" r="8"/><path d="M12 9v4l2 2M9 2h6"/></svg>)";
  return s;
}

namespace {

class delay_executor final : public executor {
 public:
  delay_executor(const clock& clk, std::chrono::milliseconds max) : clock_(clk), max_(max) {}

  void execute(step_request req, done_fn done) override {
    step_result r;
    const std::int64_t now = clock_.now_ms();
    std::int64_t at = now;
    const json& cfg = req.config;
    if (auto f = cfg.find("for"); f != cfg.end() && f->is_string() && !f->get_ref<const std::string&>().empty()) {
      auto d = parse_duration(f->get_ref<const std::string&>());
      if (!d) {
        r.error = d.err().message;
        return done(std::move(r));
      }
      at = now + d->count();
    } else if (auto u = cfg.find("until"); u != cfg.end() && u->is_string()) {
      auto t = parse_rfc3339_ms(u->get_ref<const std::string&>());
      if (!t) {
        r.error = fmt::format("`until` rendered '{}', which is not an RFC 3339 time", u->get<std::string>().substr(0, 100));
        return done(std::move(r));
      }
      at = std::max(now, *t);  // a time already passed: continue at once
    } else {
      r.error = "a delay needs `for` or `until`";
      return done(std::move(r));
    }
    if (at - now > max_.count()) {
      r.error = fmt::format("the delay ends {}, more than {} days from now (worker.max_delay_days)", iso_time_ms(at),
                            max_.count() / 86'400'000);
      return done(std::move(r));
    }
    r.v = verdict::succeeded;
    r.resume_at_ms = at;
    r.output = {{"resumeAt", iso_time_ms(at)}, {"delayMs", at - now}};
    done(std::move(r));
  }

 private:
  const clock& clock_;
  std::chrono::milliseconds max_;
};

}  // namespace

std::unique_ptr<executor> make_delay_executor(const clock& clk, std::chrono::milliseconds max_delay) {
  return std::make_unique<delay_executor>(clk, max_delay);
}

}  // namespace zapd::actions
