// The built-in steps' executors on already-rendered configs (issue 17): every filter operator
// and its edge cases (types, times, bad patterns), the delay on the fake clock, the formatter,
// and parse_duration.
#include <catch2/catch.hpp>

#include "fake_clock.hpp"
#include "zapd/actions/catalog.hpp"
#include "zapd/actions/executor.hpp"

using namespace zapd::actions;
using json = nlohmann::json;
using namespace std::chrono_literals;

namespace {

step_result run(executor& ex, json config) {
  step_request req;
  req.run_id = "run-1";
  req.config = std::move(config);
  std::optional<step_result> got;
  ex.execute(std::move(req), [&](step_result r) { got = std::move(r); });
  REQUIRE(got);  // built-in steps answer at once, on the calling thread
  return std::move(*got);
}

verdict filter_one(const json& left, const std::string& op, const json& right = nullptr) {
  auto ex = make_filter_executor();
  json c = {{"left", left}, {"op", op}};
  if (!right.is_null()) c["right"] = right;
  return run(*ex, {{"match", "all"}, {"conditions", json::array({c})}}).v;
}

}  // namespace

TEST_CASE("filter: operators on typed operands") {
  const auto ok = verdict::succeeded, no = verdict::filtered;
  CHECK(filter_one(0, "exists") == ok);
  CHECK(filter_one("", "exists") == ok);
  CHECK(filter_one(nullptr, "exists") == no);
  CHECK(filter_one(nullptr, "notExists") == ok);
  CHECK(filter_one(42, "equals", "42") == ok);
  CHECK(filter_one(42, "equals", "42.0") == ok);
  CHECK(filter_one("a", "equals", "A") == no);
  CHECK(filter_one(true, "equals", "true") == ok);
  CHECK(filter_one(false, "equals", "true") == no);
  CHECK(filter_one(json{{"a", 1}}, "equals", R"({"a":1})") == ok);
  CHECK(filter_one("x", "notEquals", "y") == ok);
  CHECK(filter_one(json::array({1, 2}), "contains", "2") == ok);
  CHECK(filter_one(json::array({"a", "b"}), "contains", "c") == no);
  CHECK(filter_one(json{{"k", 1}}, "contains", "k") == ok);
  CHECK(filter_one("hello world", "contains", "o w") == ok);
  CHECK(filter_one("hello", "notContains", "z") == ok);
  CHECK(filter_one("INV-1", "startsWith", "INV") == ok);
  CHECK(filter_one("INV-1", "endsWith", "-1") == ok);
  CHECK(filter_one("INV-1", "endsWith", "-2") == no);
  CHECK(filter_one(10, "gt", "9") == ok);
  CHECK(filter_one("10", "gt", "9") == ok);  // numbers, not text ("10" < "9" as text)
  CHECK(filter_one(10, "gte", "10") == ok);
  CHECK(filter_one(-1.5, "lt", "-1") == ok);
  CHECK(filter_one(3, "lte", "2") == no);
  CHECK(filter_one("2026-03-29T01:30:00Z", "lt", "2026-03-29T03:30:00+02:00") == no);  // equal instants
  CHECK(filter_one("2026-03-29T01:30:00Z", "lte", "2026-03-29T03:30:00+02:00") == ok);
  CHECK(filter_one("2026-03-29T01:30:00.250Z", "gt", "2026-03-29T01:30:00Z") == ok);
  CHECK(filter_one("abc", "gt", "abd") == no);  // not comparable: neither numbers nor times
  CHECK(filter_one("order-123", "matches", R"(^order-\d+$)") == ok);
  CHECK(filter_one("ORDER-123", "matches", R"(^order-\d+$)") == no);
  CHECK(filter_one("ORDER-123", "matches", R"((?i)^order-\d+$)") == ok);
  CHECK(filter_one(true, "isTrue") == ok);
  CHECK(filter_one(" True ", "isTrue") == ok);
  CHECK(filter_one(1, "isTrue") == no);
  CHECK(filter_one("false", "isFalse") == ok);
  CHECK(filter_one(nullptr, "isFalse") == no);
  CHECK(filter_one(nullptr, "isEmpty") == ok);
  CHECK(filter_one("", "isEmpty") == ok);
  CHECK(filter_one(json::object(), "isEmpty") == ok);
  CHECK(filter_one(0, "isEmpty") == no);
}

TEST_CASE("filter: all/any, the output names what failed, a bad pattern fails the step") {
  auto ex = make_filter_executor();
  json rows = json::array({{{"left", "paid"}, {"op", "equals"}, {"right", "paid"}},
                           {{"left", 20}, {"op", "gte"}, {"right", "50"}}});
  auto all = run(*ex, {{"match", "all"}, {"conditions", rows}});
  CHECK(all.v == verdict::filtered);
  CHECK(all.output["passed"] == false);
  CHECK(all.output["stoppedBy"] == "condition 2 did not hold");
  CHECK(all.output["conditions"][1] == json{{"index", 2}, {"left", 20}, {"op", "gte"}, {"right", "50"}, {"result", false}});
  auto any = run(*ex, {{"match", "any"}, {"conditions", rows}});
  CHECK(any.v == verdict::succeeded);
  CHECK(any.output["passed"] == true);
  auto not_comparable = run(*ex, {{"conditions", json::array({{{"left", "x"}, {"op", "gt"}, {"right", "y"}}})}});
  CHECK(not_comparable.v == verdict::filtered);
  CHECK(not_comparable.output["conditions"][0]["note"] == "not comparable: give two numbers or two RFC 3339 times");
  auto bad = run(*ex, {{"conditions", json::array({{{"left", "x"}, {"op", "matches"}, {"right", "(a"}}})}});
  CHECK(bad.v == verdict::failed);
  CHECK_THAT(bad.error, Catch::Contains("condition 1: not a valid regular expression"));
  // A pathological pattern for backtracking engines is linear in RE2.
  std::string long_a(20'000, 'a');
  auto redos = run(*ex, {{"conditions", json::array({{{"left", long_a + "!"}, {"op", "matches"}, {"right", "^(a+)+$"}}})}});
  CHECK(redos.v == verdict::filtered);
}

TEST_CASE("filter: the catalog validates rows and names the field") {
  const spec* s = catalog::builtin().find_action("filter");
  REQUIRE(s);
  std::vector<zapd::field_error> errs;
  validate_config(*s,
                  {{"conditions", json::array({json{{"left", "{{a}}"}, {"op", "exists"}, {"right", "x"}}, json{{"op", "gt"}},
                                               json{{"left", "a"}, {"op", "equals"}, {"right", "b"}, {"extra", 1}}, "row"})}},
                  "p", {}, errs);
  std::vector<std::string> paths;
  for (const auto& e : errs) paths.push_back(e.path);
  CHECK(paths == std::vector<std::string>{"p.conditions[0].right", "p.conditions[1].left", "p.conditions[1].right",
                                          "p.conditions[2].extra", "p.conditions[3]"});
  errs.clear();
  validate_config(*s, {{"conditions", json::array({json{{"left", "{{a}}"}, {"op", "matches"}, {"right", "{{pattern}}"}}})}}, "p",
                  {}, errs);
  CHECK(errs.empty());  // a templated pattern is checked when it renders
  auto schema = config_schema_json(*s);
  CHECK(schema["fields"][1]["type"] == "conditions");
  CHECK(schema["fields"][1]["ops"].size() == condition_ops().size());
}

TEST_CASE("delay: for and until on the fake clock, bounded") {
  zapd::test::fake_clock clk(1'800'000'000'000);
  auto ex = make_delay_executor(clk, std::chrono::days(30));
  auto r = run(*ex, {{"for", "90s"}});
  CHECK(r.v == verdict::succeeded);
  CHECK(r.resume_at_ms == 1'800'000'090'000);
  CHECK(r.output["delayMs"] == 90'000);
  r = run(*ex, {{"until", "2027-01-15T09:00:00Z"}});
  CHECK(r.resume_at_ms == 1'800'003'600'000);
  r = run(*ex, {{"until", "2001-01-01T00:00:00Z"}});  // passed: continue at once
  CHECK(r.resume_at_ms == 1'800'000'000'000);
  r = run(*ex, {{"for", "31d"}});
  CHECK(r.v == verdict::failed);
  CHECK_THAT(r.error, Catch::Contains("max_delay_days"));
  r = run(*ex, {{"until", "soon"}});
  CHECK(r.v == verdict::failed);
}

TEST_CASE("formatter: the output is the rendered fields") {
  auto ex = make_formatter_executor();
  auto r = run(*ex, {{"fields", {{"n", 3}, {"s", "x"}, {"o", {{"a", 1}}}}}});
  CHECK(r.v == verdict::succeeded);
  CHECK(r.output == json{{"n", 3}, {"s", "x"}, {"o", {{"a", 1}}}});
  CHECK(ex->render_options("fields.n", {}).keep_type);
}

TEST_CASE("parse_duration: units, ISO 8601, errors") {
  CHECK(parse_duration("90s").value() == 90s);
  CHECK(parse_duration("5m").value() == 5min);
  CHECK(parse_duration("2h").value() == 2h);
  CHECK(parse_duration("1d").value() == 24h);
  CHECK(parse_duration("500ms").value() == 500ms);
  CHECK(parse_duration(" 10 s ").value() == 10s);
  CHECK(parse_duration("PT5M").value() == 5min);
  CHECK(parse_duration("PT1H30M").value() == 90min);
  CHECK(parse_duration("P1DT2H").value() == 26h);
  CHECK(parse_duration("P2W").value() == std::chrono::hours(24 * 14));
  for (const char* bad : {"", "s", "5", "5 fortnights", "PT", "P1M", "PT5M1H", "PT1H1H", "-5s", "1.5h", "99999999999999d",
                          "PT5", "P1Y"}) {
    INFO(bad);
    CHECK_FALSE(parse_duration(bad));
  }
  CHECK_THAT(parse_duration("5 fortnights").err().message, Catch::Contains("unknown unit"));
}
