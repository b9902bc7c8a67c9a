#include <cstdlib>

#include <catch2/catch.hpp>

#include "zapd/actions/catalog.hpp"
#include "zapd/secrets/secrets.hpp"
#include "zapd/store/database.hpp"
#include "zapd/zaps/zaps.hpp"

using namespace zapd;
using json = nlohmann::json;

namespace {

const json k_seed_body = json::parse(R"({"availableTriggerId":"webhook","triggerMetadata":{},
  "actions":[{"availableActionId":"email","actionMetadata":{"email":"{comment.email}","body":"hi"}}]})");

std::vector<field_error> problems(const json& body, std::set<std::string> secrets = {}, zaps::limits lim = {}) {
  auto v = zaps::validate(body, actions::catalog::builtin(), secrets, lim);
  if (v.ok()) return {};
  REQUIRE(v.err().code == errc::invalid_argument);
  return v.err().details;
}

bool has(const std::vector<field_error>& errs, const std::string& path, const std::string& msg_part) {
  for (const auto& e : errs)
    if (e.path == path && e.message.find(msg_part) != std::string::npos) return true;
  return false;
}

}  // namespace

TEST_CASE("catalog: webhook trigger, http and email actions with config schemas") {
  const auto& cat = actions::catalog::builtin();
  REQUIRE(cat.find_trigger("webhook"));
  REQUIRE(cat.find_action("http"));
  REQUIRE(cat.find_action("email"));
  CHECK(cat.find_action("send-email") == cat.find_action("email"));
  CHECK(cat.find_action("nope") == nullptr);
  auto e = cat.entry_json(*cat.find_action("http"), "http://h:1");
  CHECK(e["image"] == "http://h:1/static/icons/http.svg");
  bool url_required = false;
  for (const auto& f : e["configSchema"]["fields"]) {
    REQUIRE(f.contains("type"));
    REQUIRE(f.contains("help"));
    REQUIRE(f.contains("templates"));
    if (f["name"] == "url") url_required = f["required"] == true && f["templates"] == true;
  }
  CHECK(url_required);
  for (const auto* all : {&cat.triggers(), &cat.actions()})
    for (const auto& s : *all) CHECK(cat.icon(s.id)->find("<svg") == 0);
}

TEST_CASE("validate: the seeds' exact body is accepted, email becomes to") {
  auto v = zaps::validate(k_seed_body, actions::catalog::builtin(), {}, {});
  REQUIRE(v.ok());
  REQUIRE(v->definition.steps.size() == 1);
  const auto& a = v->definition.steps[0];
  CHECK(a.action_id == "email");
  CHECK(a.metadata["to"] == "{comment.email}");
  CHECK_FALSE(a.metadata.contains("email"));
  CHECK(v->definition.trigger.trigger_id == "webhook");
  auto alias = k_seed_body;
  alias["actions"][0]["availableActionId"] = "send-email";
  auto v2 = zaps::validate(alias, actions::catalog::builtin(), {}, {});
  REQUIRE(v2.ok());
  CHECK(v2->definition.steps.at(0).action_id == "email");
}

TEST_CASE("validate: each problem names its field") {
  SECTION("unknown trigger and action ids") {
    auto b = k_seed_body;
    b["availableTriggerId"] = "cron";
    b["actions"][0]["availableActionId"] = "fax";
    auto errs = problems(b);
    CHECK(has(errs, "availableTriggerId", "unknown trigger 'cron'"));
    CHECK(has(errs, "actions[0].availableActionId", "unknown action 'fax'"));
  }
  SECTION("missing required field") {
    auto b = json::parse(R"({"availableTriggerId":"webhook","actions":[{"availableActionId":"http","actionMetadata":{}}]})");
    CHECK(has(problems(b), "actions[0].actionMetadata.url", "required"));
  }
  SECTION("wrong types") {
    auto b = json::parse(R"({"availableTriggerId":"webhook","actions":[
        {"availableActionId":"http","actionMetadata":{"url":"https://x.org","timeoutMs":"soon","headers":{"a":1}}}]})");
    auto errs = problems(b);
    CHECK(has(errs, "actions[0].actionMetadata.timeoutMs", "integer"));
    CHECK(has(errs, "actions[0].actionMetadata.headers.a", "string"));
  }
  SECTION("literal values are checked; templates are left to run time") {
    auto b = json::parse(R"({"availableTriggerId":"webhook","actions":[
        {"availableActionId":"http","actionMetadata":{"url":"ftp://x.org","method":"BREW"}},
        {"availableActionId":"email","actionMetadata":{"to":["ok@x.org","not an address"],"body":"x"}},
        {"availableActionId":"http","actionMetadata":{"url":"{{comment.link}}"}}]})");
    auto errs = problems(b);
    CHECK(has(errs, "actions[0].actionMetadata.url", "http://"));
    CHECK(has(errs, "actions[0].actionMetadata.method", "one of"));
    CHECK(has(errs, "actions[1].actionMetadata.to[1]", "not an email address"));
    CHECK(errs.size() == 3);
  }
  SECTION("unknown field, too many actions, oversized") {
    auto b = k_seed_body;
    b["actions"][0]["actionMetadata"]["colour"] = "red";
    CHECK(has(problems(b), "actions[0].actionMetadata.colour", "unknown field"));
    auto many = k_seed_body;
    for (int i = 0; i < 5; ++i) many["actions"].push_back(k_seed_body["actions"][0]);
    CHECK(has(problems(many, {}, {.max_actions = 3}), "actions", "at most 3"));
    auto big = k_seed_body;
    big["actions"][0]["actionMetadata"]["body"] = std::string(70000, 'x');
    CHECK(has(problems(big), "", "larger than"));
  }
  SECTION("secret references must exist") {
    auto b = json::parse(R"({"availableTriggerId":"webhook","actions":[
        {"availableActionId":"http","actionMetadata":{"url":"https://x.org","headers":{"Authorization":"Bearer {{ secrets.API_KEY }}"}}}]})");
    CHECK(has(problems(b), "actions[0].actionMetadata", "unknown secret 'API_KEY'"));
    CHECK(problems(b, {"API_KEY"}).empty());
  }
  SECTION("not an object, missing actions, bad name") {
    CHECK(has(problems(json::array()), "", "JSON object"));
    CHECK(has(problems(json::parse(R"({"availableTriggerId":"webhook"})")), "actions", "required"));
    auto b = k_seed_body;
    b["name"] = 42;
    CHECK(has(problems(b), "name", "string"));
  }
}

TEST_CASE("validate: numbers out of range and bad header names are refused with the field and the range") {
  auto http = [](const json& meta) {
    json m = meta;
    m["url"] = "https://x.org";
    return json{{"availableTriggerId", "webhook"}, {"actions", json::array({{{"availableActionId", "http"}, {"actionMetadata", m}}})}};
  };
  for (const char* bad : {"-5", "0", "300001", "9223372036854775808"}) {
    INFO(bad);
    auto errs = problems(http({{"timeoutMs", json::parse(bad)}}));
    REQUIRE(errs.size() == 1);
    CHECK(errs[0].path == "actions[0].actionMetadata.timeoutMs");
    CHECK(errs[0].message == "must be between 1 and 300000");
  }
  CHECK(problems(http({{"timeoutMs", 300000}})).empty());
  CHECK(has(problems(http({{"headers", {{"X-A\r\nB", "v"}}}})), "actions[0].actionMetadata.headers.X-A\r\nB", "not a valid header name"));
  CHECK(has(problems(http({{"headers", {{"X-A", "v\r\nB: c"}}}})), "actions[0].actionMetadata.headers.X-A", "line break"));

  // The zap's retry policy follows the same integer rule.
  auto with_retry = [&](const json& retry) {
    auto b = k_seed_body;
    b["retry"] = retry;
    return b;
  };
  for (const char* bad : {"0", "21", "9223372036854775808", "-9223372036854775808"}) {
    INFO(bad);
    CHECK(has(problems(with_retry({{"attempts", json::parse(bad)}})), "retry.attempts", "must be between 1 and 20"));
  }
  CHECK(has(problems(with_retry({{"attempts", 2.5}})), "retry.attempts", "must be an integer between 1 and 20"));
  CHECK(has(problems(with_retry({{"baseDelayMs", 99}})), "retry.baseDelayMs", "must be between 100 and 3600000"));
  CHECK(has(problems(with_retry({{"baseDelayMs", json::parse("1e19")}})), "retry.baseDelayMs", "must be between 100 and 3600000"));
  auto ok = zaps::validate(with_retry({{"attempts", 20}, {"baseDelayMs", json::parse("100.0")}}), actions::catalog::builtin(), {}, {});
  REQUIRE(ok.ok());
  CHECK(ok->definition.retry.attempts == 20);
  CHECK(ok->definition.retry.base_delay_ms == 100);
  CHECK(ok->definition.to_json()["retry"]["baseDelayMs"].is_number_integer());
}

TEST_CASE("secrets: sealed at rest, bound to user and name") {
  auto b = secrets::box::from_hex(std::string(64, 'a'));
  REQUIRE(b.ok());
  auto sealed = b->seal("u1", "API_KEY", "s3cr3t-value");
  CHECK(sealed.find("s3cr3t") == std::string::npos);
  auto back = b->open("u1", "API_KEY", sealed);
  REQUIRE(back.ok());
  CHECK(*back == "s3cr3t-value");
  CHECK_FALSE(b->open("u2", "API_KEY", sealed).ok());  // copied to another user
  CHECK_FALSE(b->open("u1", "OTHER", sealed).ok());    // renamed
  auto other = secrets::box::from_hex(std::string(64, 'b'));
  CHECK_FALSE(other->open("u1", "API_KEY", sealed).ok());
  std::string tampered = sealed;
  tampered[tampered.size() / 2] = tampered[tampered.size() / 2] == 'A' ? 'B' : 'A';
  CHECK_FALSE(b->open("u1", "API_KEY", tampered).ok());
  CHECK(secrets::valid_name("API_KEY-2"));
  CHECK_FALSE(secrets::valid_name("has space"));
  CHECK_FALSE(secrets::valid_name(""));
}

TEST_CASE("zaps in the store: versions on every change, isolation by user") {
  char tmpl[] = "/tmp/zapd-zaps-XXXXXX";
  store::database::options o;
  o.path = std::string(mkdtemp(tmpl)) + "/zapd.db";
  auto db = store::database::open(o);
  REQUIRE(db.ok());
  auto& w = (*db)->writes();
  auto v = zaps::validate(k_seed_body, actions::catalog::builtin(), {}, {});
  REQUIRE(v.ok());

  auto z = w.execute<zaps::zap_record>([&](store::connection& c) { return zaps::create(c, "alice", *v); });
  REQUIRE(z.ok());
  CHECK(z->version == 1);
  auto renamed = w.execute<zaps::zap_record>(
      [&](store::connection& c) { return zaps::patch(c, "alice", z->id, std::string("Renamed"), false); });
  REQUIRE(renamed.ok());
  CHECK(renamed->version == 2);
  CHECK_FALSE(renamed->enabled);
  auto replaced = w.execute<zaps::zap_record>([&](store::connection& c) { return zaps::replace(c, "alice", z->id, *v); });
  REQUIRE(replaced.ok());
  CHECK(replaced->version == 3);

  auto vs = (*db)->reads().with([&](store::connection& c) { return zaps::versions(c, "alice", z->id); });
  REQUIRE(vs.ok());
  REQUIRE(vs->size() == 3);
  CHECK((*vs)[0].version == 3);
  CHECK((*vs)[1].name == "Renamed");

  // Bob sees nothing of Alice's zap, on every operation.
  auto bob_get = (*db)->reads().with([&](store::connection& c) { return zaps::get(c, "bob", z->id); });
  CHECK(bob_get.err().code == errc::not_found);
  auto bob_patch = w.execute<zaps::zap_record>(
      [&](store::connection& c) { return zaps::patch(c, "bob", z->id, std::string("x"), std::nullopt); });
  CHECK(bob_patch.err().code == errc::not_found);
  auto bob_del = w.execute<bool>([&](store::connection& c) -> result<bool> {
    auto st = zaps::remove(c, "bob", z->id);
    if (!st) return std::move(st).err();
    return true;
  });
  CHECK(bob_del.err().code == errc::not_found);
  auto bob_list = (*db)->reads().with([&](store::connection& c) { return zaps::list(c, "bob"); });
  CHECK(bob_list->empty());

  // Export -> validate (import) gives the same trigger and actions.
  auto doc = zaps::export_json(*replaced);
  auto again = zaps::validate(doc, actions::catalog::builtin(), {}, {});
  REQUIRE(again.ok());
  CHECK(again->definition.steps.at(0).metadata == replaced->definition.steps.at(0).metadata);
  CHECK(again->name == replaced->name);
}

TEST_CASE("validate: an alias is checked by the rules of the field it stands for (zap_validate_fuzz)") {
  auto p = problems(json::parse(R"({"availableTriggerId":"webhook",
      "actions":[{"availableActionId":"email","actionMetadata":{"email":""}}]})"));
  REQUIRE(p.size() == 1);
  CHECK(p[0].path.find("email") != std::string::npos);
}

TEST_CASE("definition: one parser with the defaults for what an older zapd stored") {
  // What this zapd writes reads back the same.
  auto v = zaps::validate(k_seed_body, actions::catalog::builtin(), {}, {});
  REQUIRE(v.ok());
  v->definition.retry.attempts = 3;
  auto back = zaps::parse_definition_text(v->definition.to_json().dump());
  REQUIRE(back.ok());
  CHECK(back->to_json() == v->definition.to_json());
  CHECK(back->retry.attempts == 3);
  CHECK_FALSE(back->retry.base_delay_ms);

  // Less than that: no actions key, metadata missing or not an object, a retry value of the
  // wrong type, a step that is not an object (it still counts as a step: it fails when run).
  auto old = zaps::parse_definition(json::parse(
      R"({"trigger":{"triggerId":"webhook","metadata":"x"},"retry":{"attempts":"3","baseDelayMs":250}})"));
  REQUIRE(old.ok());
  CHECK(old->trigger.trigger_id == "webhook");
  CHECK(old->trigger.metadata == json::object());
  CHECK(old->step_count() == 0);
  CHECK(old->step_at(1) == nullptr);
  CHECK_FALSE(old->retry.attempts);
  CHECK(old->retry.base_delay_ms == 250);
  CHECK_FALSE(old->to_json()["retry"].contains("attempts"));
  auto odd = zaps::parse_definition(json::parse(R"({"actions":[7,{"actionId":"http","metadata":[]}]})"));
  REQUIRE(odd.ok());
  CHECK(odd->step_count() == 2);
  CHECK(odd->step_at(1)->action_id.empty());
  CHECK(odd->step_at(2)->action_id == "http");
  CHECK(odd->step_at(2)->metadata == json::object());
  CHECK(odd->step_at(2)->sorting_order == 1);
  CHECK(odd->step_at(0) == nullptr);
  CHECK(odd->step_at(3) == nullptr);
  CHECK_FALSE(odd->to_json().contains("retry"));

  // Not an object at all: unreadable data, not a default.
  CHECK(zaps::parse_definition(json::array()).err().code == errc::internal);
  CHECK(zaps::parse_definition_text("{").err().code == errc::internal);
  CHECK(zaps::parse_definition_text("[1]").err().code == errc::internal);
}
