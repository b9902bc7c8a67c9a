#include <chrono>
#include <functional>
#include <string>
#include <vector>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "zapd/templates/mask.hpp"
#include "zapd/templates/template.hpp"

namespace t = zapd::templates;
using nlohmann::json;

namespace {

// A run context shaped like the worker builds it.
json context() {
  return json::parse(R"({
    "trigger": {
      "body": {
        "comment": {"email": "ann@example.com", "text": "say \"hi\"\\now\nX-Evil: 1"},
        "items": [{"id": 7, "name": "first"}, {"id": 8, "name": "second"}],
        "count": 3, "price": 9.5, "paid": true, "none": null,
        "path": "a b/c?d=e&f",
        "run": "the body's own run field"
      },
      "query": {"page": "2"},
      "headers": {"x-request-id": "req-1"},
      "method": "POST",
      "receivedAt": "2024-05-01T10:00:00Z"
    },
    "steps": {
      "1": {"status": 201, "body": {"id": "c-42", "next": "https://api.example.com/v1/items?cursor=abc",
                                    "echo": "token was s3cr3t-t0ken"}},
      "2": {"rows": [[1, 2], [3, 4]]}
    },
    "run": {"id": "run-9", "zapId": "zap-3"},
    "secrets": {"API_KEY": "s3cr3t-t0ken", "EMPTY": ""}
  })");
}

t::rendered render(std::string_view tmpl, t::mode m = t::mode::text) {
  t::options o;
  o.m = m;
  return t::render(tmpl, context(), o);
}

bool has_warning_with(const t::rendered& r, std::string_view part) {
  for (const auto& w : r.warnings)
    if (w.find(part) != std::string::npos) return true;
  return false;
}

}  // namespace

TEST_CASE("a bare path reads the trigger body") {
  auto r = render("To: {{comment.email}}");
  CHECK(r.text == "To: ann@example.com");
  CHECK(r.warnings.empty());
  CHECK(render("{{trigger.body.comment.email}}").text == "ann@example.com");
}

TEST_CASE("each root reads its part of the context") {
  CHECK(render("{{trigger.method}} {{trigger.query.page}} {{trigger.headers.x-request-id}}").text == "POST 2 req-1");
  CHECK(render("{{trigger.receivedAt}}").text == "2024-05-01T10:00:00Z");
  CHECK(render("{{steps.1.body.id}} {{steps.1.status}}").text == "c-42 201");
  CHECK(render("{{run.id}}/{{run.zapId}}").text == "run-9/zap-3");
  CHECK(render("{{secrets.API_KEY}}").text == "s3cr3t-t0ken");
  // A root name wins over a body field of the same name; the body is still reachable.
  CHECK(render("{{run}}").text == R"({"id":"run-9","zapId":"zap-3"})");
  CHECK(render("{{trigger.body.run}}").text == "the body's own run field");
}

TEST_CASE("array indexes as numeric segments and as brackets") {
  CHECK(render("{{items.0.id}}-{{items.1.name}}").text == "7-second");
  CHECK(render("{{items[0].id}}-{{items[1].name}}").text == "7-second");
  CHECK(render("{{steps.2.rows[1][0]}}{{steps.2.rows.0.1}}").text == "32");
  auto out_of_range = render("[{{items[2].id}}]");
  CHECK(out_of_range.text == "[]");
  CHECK(has_warning_with(out_of_range, "{{items[2].id}}"));
  // "01" is not an index: no silent aliasing of item 1.
  CHECK(render("{{items.01.id}}").text.empty());
}

TEST_CASE("a missing path renders empty and warns, naming where it looked") {
  auto r = render("Hi {{comment.emial}}!");
  CHECK(r.text == "Hi !");
  REQUIRE(r.warnings.size() == 1);
  CHECK(r.warnings[0] == "{{comment.emial}}: no such field in the trigger body");

  auto step = render("{{steps.5.body.id}}");
  CHECK(step.text.empty());
  CHECK(has_warning_with(step, "no output of step 5"));
  CHECK(has_warning_with(render("{{run.nope}}"), "no such field in the run"));
  // A path through a string is missing, not a crash or the string.
  CHECK(render("{{comment.email.x}}").text.empty());
  // The same missing placeholder used many times warns once.
  CHECK(render("{{nope}}{{nope}}{{nope}}").warnings.size() == 1);
}

TEST_CASE("whitespace inside the braces is ignored") {
  CHECK(render("{{ comment.email }}|{{\tcount\n}}").text == "ann@example.com|3");
  CHECK(t::referenced_paths("a {{ comment.email }} {{steps.1.body.id}} {{ comment.email}}") ==
        std::vector<std::string>{"comment.email", "steps.1.body.id"});
}

TEST_CASE("values render by type in text mode") {
  CHECK(render("{{count}} {{price}} {{paid}} [{{none}}]").text == "3 9.5 true []");
  CHECK(render("{{items}}").text == R"([{"id":7,"name":"first"},{"id":8,"name":"second"}])");
  CHECK(render("{{items[0]}}").text == R"({"id":7,"name":"first"})");
  CHECK(render("{{comment.text}}").text == "say \"hi\"\\now\nX-Evil: 1");
}

TEST_CASE("json mode escapes values inside strings and the body parses") {
  auto r = render(R"({"text": "{{comment.text}}", "email": "<{{comment.email}}>", "obj": "{{items[0]}}"})", t::mode::json);
  auto body = json::parse(r.text);  // throws (fails the test) if invalid
  CHECK(body["text"] == "say \"hi\"\\now\nX-Evil: 1");
  CHECK(body["email"] == "<ann@example.com>");
  CHECK(body["obj"] == R"({"id":7,"name":"first"})");
  // An escaped quote or backslash in the template does not confuse the string tracking.
  auto tricky = render(R"({"a": "x\"{{count}}\\", "b": {{count}}, "c": "\\{{comment.email}}"})", t::mode::json);
  auto j = json::parse(tricky.text);
  CHECK(j["a"] == "x\"3\\");
  CHECK(j["b"] == 3);
  CHECK(j["c"] == "\\ann@example.com");
}

TEST_CASE("json mode emits JSON values outside strings") {
  auto r = render(R"({"n": {{count}}, "p": {{price}}, "ok": {{paid}}, "items": {{items}}, "email": {{comment.email}}, "gone": {{nope}}, "nil": {{none}}})",
                  t::mode::json);
  auto j = json::parse(r.text);
  CHECK(j["n"] == 3);
  CHECK(j["p"] == 9.5);
  CHECK(j["ok"] == true);
  CHECK(j["items"][1]["name"] == "second");
  CHECK(j["email"] == "ann@example.com");
  CHECK(j["gone"].is_null());
  CHECK(j["nil"].is_null());
  CHECK(has_warning_with(r, "{{nope}}"));
}

TEST_CASE("header mode removes line breaks and control characters") {
  auto r = render("Note {{comment.text}}", t::mode::header);
  CHECK(r.text.find('\r') == std::string::npos);
  CHECK(r.text.find('\n') == std::string::npos);
  CHECK(r.text == "Note say \"hi\"\\now X-Evil: 1");
  CHECK(has_warning_with(r, "replaced by spaces"));
  json ctx = {{"trigger", {{"body", {{"v", std::string("a\r\nSet-Cookie: x=1\0b", 20)}}}}}};
  t::options o;
  o.m = t::mode::header;
  CHECK(t::render("{{v}}", ctx, o).text == "a  Set-Cookie: x=1 b");
}

TEST_CASE("url mode encodes components and keeps a leading placeholder whole") {
  auto r = render("https://example.com/search?q={{path}}&who={{comment.email}}", t::mode::url);
  CHECK(r.text == "https://example.com/search?q=a%20b%2Fc%3Fd%3De%26f&who=ann%40example.com");
  auto base = render("{{steps.1.body.next}}&page={{trigger.query.page}}", t::mode::url);
  CHECK(base.text == "https://api.example.com/v1/items?cursor=abc&page=2");
  // Kept whole, but a leading value still cannot smuggle spaces or line breaks.
  json ctx = {{"trigger", {{"body", {{"u", "https://x.test/a b\r\n?c=\xc3\xa9"}}}}}};
  t::options o;
  o.m = t::mode::url;
  CHECK(t::render("{{u}}", ctx, o).text == "https://x.test/a%20b%0D%0A?c=%C3%A9");
  // Only the very start counts: after any text the value is a component.
  CHECK(t::render(" {{u}}", ctx, o).text.starts_with(" https%3A%2F%2F"));
}

TEST_CASE("secrets render in text and are masked in masked") {
  auto r = render("Authorization: Bearer {{secrets.API_KEY}}", t::mode::header);
  CHECK(r.text == "Authorization: Bearer s3cr3t-t0ken");
  CHECK(r.masked == "Authorization: Bearer ********");
  // A value echoing the secret is masked too.
  auto echo = render("{{steps.1.body.echo}} / {{steps.1}}");
  CHECK(echo.text.find("s3cr3t-t0ken") != std::string::npos);
  CHECK(echo.masked.find("s3cr3t-t0ken") == std::string::npos);
  CHECK(echo.masked.starts_with("token was ******** / "));
  // In a JSON value position the mask stays valid JSON.
  auto body = render(R"({"key": {{secrets.API_KEY}}, "in": "k={{secrets.API_KEY}}"})", t::mode::json);
  CHECK(json::parse(body.text)["key"] == "s3cr3t-t0ken");
  auto masked = json::parse(body.masked);
  CHECK(masked["key"] == "********");
  CHECK(masked["in"] == "k=********");
  // Without secrets, masked is the text.
  auto plain = render("{{comment.email}}");
  CHECK(plain.masked == plain.text);
}

TEST_CASE("secrets: missing ones warn and the secrets root cannot be dumped") {
  auto missing = render("[{{secrets.NOPE}}]");
  CHECK(missing.text == "[]");
  CHECK(has_warning_with(missing, "no secret named NOPE"));
  auto all = render("{{secrets}}");
  CHECK(all.text.empty());
  CHECK(all.text.find("s3cr3t") == std::string::npos);
  CHECK(has_warning_with(all, "{{secrets.NAME}}"));
}

TEST_CASE("legacy single braces only when asked and only without double braces") {
  t::options on;
  on.legacy_single_brace = true;
  auto legacy = t::render("Hi {comment.email}, {not a path} \\{run.id}", context(), on);
  CHECK(legacy.text == "Hi ann@example.com, {not a path} {run.id}");
  CHECK(legacy.warnings.empty());
  CHECK(t::render("Hi {comment.email}", context()).text == "Hi {comment.email}");
  // One {{ anywhere: single braces are text.
  CHECK(t::render("{comment.email} {{run.id}}", context(), on).text == "{comment.email} run-9");
  CHECK(t::referenced_paths("{a} {b.c}", on) == std::vector<std::string>{"a", "b.c"});
}

TEST_CASE("braces that are not placeholders stay as text") {
  auto unterminated = render("Hi {{comment.email");
  CHECK(unterminated.text == "Hi {{comment.email");
  CHECK(has_warning_with(unterminated, "unterminated"));
  auto later = render("{{count}} and {{ oops");
  CHECK(later.text == "3 and {{ oops");
  auto not_path = render("{{a b}} {{}}");
  CHECK(not_path.text == "{{a b}} {{}}");
  CHECK(has_warning_with(not_path, "not a field path"));
  CHECK(render("\\{{count}} is {{count}}").text == "{{count}} is 3");
  CHECK(render("{{{count}}}").text == "{3}");
}

TEST_CASE("output is capped with a warning") {
  json ctx = {{"trigger", {{"body", {{"big", std::string(1000, 'x')}}}}}};
  std::string tmpl;
  for (int i = 0; i < 1000; ++i) tmpl += "{{big}}";
  t::options o;
  o.max_output = 10'000;
  auto r = t::render(tmpl, ctx, o);
  CHECK(r.truncated);
  CHECK(r.text.size() == 10'000);
  CHECK(has_warning_with(r, "10000-byte limit"));
  CHECK_FALSE(t::render("{{big}}", ctx, o).truncated);
}

TEST_CASE("deeply nested values are left out, not a stack overflow") {
  std::string deep(100'000, '[');
  deep += std::string(100'000, ']');
  json ctx = {{"trigger", {{"body", {{"deep", json::parse(deep)}}}}}};
  auto r = t::render("<{{deep}}>", ctx);
  CHECK(r.text == "<>");
  CHECK(has_warning_with(r, "nested deeper"));
}

TEST_CASE("render_config renders every string of a nested config") {
  json config = json::parse(R"({
    "url": "{{steps.1.body.next}}&q={{path}}",
    "method": "POST",
    "timeoutMs": 5000,
    "headers": {"Authorization": "Bearer {{secrets.API_KEY}}", "X-Note": "{{comment.text}}"},
    "to": ["{{comment.email}}", "boss@example.com"],
    "body": "{\"id\": \"{{steps.1.body.id}}\", \"n\": {{count}}, \"x\": \"{{missing}}\"}"
  })");
  auto modes = [](std::string_view field) {
    t::options o;
    if (field == "url") o.m = t::mode::url;
    else if (field.starts_with("headers.")) o.m = t::mode::header;
    else if (field == "body") o.m = t::mode::json;
    return o;
  };
  auto r = t::render_config(config, context(), modes);
  CHECK(r.value["url"] == "https://api.example.com/v1/items?cursor=abc&q=a%20b%2Fc%3Fd%3De%26f");
  CHECK(r.value["method"] == "POST");
  CHECK(r.value["timeoutMs"] == 5000);
  CHECK(r.value["headers"]["Authorization"] == "Bearer s3cr3t-t0ken");
  CHECK(r.masked["headers"]["Authorization"] == "Bearer ********");
  CHECK(r.value["headers"]["X-Note"].get<std::string>().find('\n') == std::string::npos);
  CHECK(r.value["to"] == json::array({"ann@example.com", "boss@example.com"}));
  auto body = json::parse(r.value["body"].get<std::string>());
  CHECK(body["id"] == "c-42");
  CHECK(body["n"] == 3);
  CHECK(r.masked.dump().find("s3cr3t") == std::string::npos);
  CHECK(std::find(r.warnings.begin(), r.warnings.end(), "body: {{missing}}: no such field in the trigger body") !=
        r.warnings.end());
}

TEST_CASE("bad contexts and bytes never throw") {
  for (const json& ctx : {json(), json(42), json::array(), json::parse(R"({"trigger": 5, "steps": []})"),
                          json(json::value_t::discarded)}) {
    for (auto m : {t::mode::text, t::mode::json, t::mode::header, t::mode::url}) {
      t::options o;
      o.m = m;
      auto r = t::render("{{a}} {{trigger.body}} {{steps.1.x}} {{secrets.K}}", ctx, o);
      CHECK_FALSE(r.warnings.empty());
    }
  }
  json ctx = {{"trigger", {{"body", {{"v", std::string("\xff\xfe\"")}}}}}};
  t::options o;
  o.m = t::mode::json;
  CHECK(json::accept(t::render(R"({"v": "{{v}}", "w": {{v}}})", ctx, o).text));
}

TEST_CASE("many braces that are not placeholders render in linear time") {
  std::string tmpl;
  for (int i = 0; i < 100'000; ++i) tmpl += "{{a b ";
  tmpl += "}}";
  auto started = std::chrono::steady_clock::now();
  auto r = t::render(tmpl, context());
  auto took = std::chrono::steady_clock::now() - started;
  CHECK(r.text == tmpl);
  CHECK(r.warnings.size() <= 101);  // 100 kept + "... and N more"
  // Quadratic scanning (each brace searching to the far `}}`) takes minutes here.
  CHECK(took < std::chrono::seconds(5));
}

TEST_CASE("warnings are short and valid UTF-8 whatever the path holds") {
  // Bad bytes, an overlong '/', a surrogate, a cut sequence, and a path longer than any warning.
  auto r = render("{{\xff\xfe.x}} {{\xc0\xaf}} {{a\xed\xa0\x80}} {{b\xe2\x82}} {{caf\xc3\xa9}} {{" + std::string(5000, 'p') + "}}");
  REQUIRE(r.warnings.size() == 6);
  CHECK(r.warnings[4] == "{{caf\xc3\xa9}}: no such field in the trigger body");  // valid UTF-8 kept as is
  for (const auto& w : r.warnings) {
    CHECK_NOTHROW(json(w).dump());  // strict: throws on invalid UTF-8
    CHECK(w.size() < 400);
  }
}

TEST_CASE("a missing secret is reported by name, once, in render and render_config") {
  auto r = render("{{secrets.GONE}} {{ secrets.GONE }} {{secrets.API_KEY}} {{secrets.OTHER}}");
  CHECK(r.missing_secrets == std::vector<std::string>{"GONE", "OTHER"});
  CHECK(render("{{secrets.API_KEY}} {{secrets.EMPTY}} {{secrets}}").missing_secrets.empty());  // "" exists
  t::options legacy;
  legacy.legacy_single_brace = true;
  CHECK(t::render("Hi {secrets.GONE}", context(), legacy).missing_secrets == std::vector<std::string>{"GONE"});
  auto c = t::render_config(json{{"signingSecret", "{{secrets.SIGN}}"}, {"h", {{"a", "{{secrets.SIGN}}"}, {"b", "{{secrets.B}}"}}}},
                            context());
  CHECK(c.missing_secrets == std::vector<std::string>{"SIGN", "B"});  // first use, fields in key order: h.a, h.b, signingSecret
}

TEST_CASE("referenced_secrets finds every secret a config names, at any depth") {
  // As deep as any document in the process may be (json_depth::stored; deeper ones are refused
  // at parse time, and copying one recurses once per level).
  const json deep = json::parse(std::string(1040, '[') + R"("{{secrets.DEEP}}")" + std::string(1040, ']'));
  json config = {{"url", "https://x.test/{{ secrets.A }}?k={{secrets.B}}"},
                 {"body", "{secrets.LEGACY} {{secrets}} {{secrets.a.b}} \\{{secrets.ESCAPED}}"},
                 {"n", 5},
                 {"deep", deep}};
  CHECK(t::referenced_secrets(config) == std::vector<std::string>{"A", "B", "DEEP"});
  CHECK(t::referenced_secrets(json{{"body", "{secrets.LEGACY}"}}) == std::vector<std::string>{"LEGACY"});
  CHECK(t::referenced_secrets(json::array()).empty());
}

TEST_CASE("the masker masks values and the forms zapd encodes them into") {
  const std::string secret = "p@th s3c\"ret/é\n";
  t::masker mk({secret, "", "tok"});
  CHECK_FALSE(mk.empty());
  CHECK(t::masker({""}).empty());
  CHECK(mk.str("a " + secret + " b") == "a ******** b");
  CHECK(mk.str(R"(body {"k":"p@th s3c\"ret/é\n"})") == R"(body {"k":"********"})");         // JSON-escaped
  CHECK(mk.str("http://h/p%40th%20s3c%22ret%2F%C3%A9%0A?x") == "http://h/********?x");       // URL component
  CHECK(mk.str("http://h/p%40th%20s3c%22ret%2f%c3%a9%0a?x") == "http://h/********?x");       // lower-case hex
  CHECK(mk.str("q=p%40th+s3c%22ret%2F%C3%A9%0A") == "q=********");                           // form encoding
  CHECK(mk.str("http://h/p@th%20s3c%22ret/%C3%A9%0A") == "http://h/********");               // whole-URL form
  CHECK(mk.str("X-H: p@th s3c\"ret/é ") == "X-H: ********");                                 // header form
  CHECK(mk.str("toktok-tok") == "****************-********");
  CHECK(mk.str("no secret here") == "no secret here");

  json v = {{"tok", {1, "a tok", json::array({{{"k", "tok"}}})}}, {"n", 42}, {"tok2", true}};
  mk.in_place(v);
  CHECK(v == json{{"********", {1, "a ********", json::array({{{"k", "********"}}})}}, {"n", 42}, {"********2", true}});
  // A number spelling a secret exactly is masked; one merely containing its digits is not.
  t::masker pin({"1234"});
  json nums = {{"pin", 1234}, {"other", 12345}, {"s", "pin 1234"}};
  pin.in_place(nums);
  CHECK(nums == json{{"pin", "********"}, {"other", 12345}, {"s", "pin ********"}});
  // A mask made of the secret's own bytes is not searched again.
  CHECK(t::masker({"*"}).str("a*b") == "a********b");
}

TEST_CASE("the masker is linear and iterative on hostile input") {
  // A long secret of one repeated byte against a long run of that byte: quadratic matching
  // (compare at every position) takes minutes here.
  const std::string secret(64 * 1024, 'a');
  t::masker mk({secret + "b"});
  const std::string text(1 << 20, 'a');
  auto started = std::chrono::steady_clock::now();
  CHECK(mk.str(text) == text);
  CHECK(mk.str(text + "b").ends_with("********"));
  CHECK(std::chrono::steady_clock::now() - started < std::chrono::seconds(5));
  // Nesting far deeper than any parsed document: no recursion.
  json deep = json::parse(std::string(100'000, '[') + "\"a" + secret + "b\"" + std::string(100'000, ']'));
  mk.in_place(deep);
  const json* p = &deep;
  while (p->is_array()) p = &(*p)[0];
  CHECK(*p == "a********");
}

TEST_CASE("masked twins: an echoed secret shows as the mask in URLs, and JSON stays valid") {
  // An echoed secret in a URL shows as the mask, not as its percent-encoding.
  t::options url;
  url.m = t::mode::url;
  auto u = t::render("https://x.test/{{steps.1.body.echo}}", context(), url);
  CHECK(u.masked == "https://x.test/token%20was%20********");
  // Inside a JSON string the value is masked before it is escaped, so a short secret cannot
  // cut an escape sequence: the masked body stays valid JSON.
  json ctx = {{"trigger", {{"body", {{"v", "a\nb \"n\""}}}}}, {"secrets", {{"S", "n"}}}};
  t::options js;
  js.m = t::mode::json;
  auto body = t::render(R"({"v": "{{v}}", "w": {{v}}})", ctx, js);
  CHECK(json::parse(body.text)["v"] == "a\nb \"n\"");
  REQUIRE(json::accept(body.masked));
  CHECK(json::parse(body.masked) == json{{"v", "a\nb \"********\""}, {"w", "a\nb \"********\""}});
}

// ---- filters ------------------------------------------------------------------------------

namespace {

// A context with one value of each JSON type, times and a secret.
json filter_context() {
  return json::parse(R"({
    "trigger": {"body": {
      "s": "  Hello World  ", "name": "ann", "empty": "", "none": null,
      "n": 42, "f": 2.345, "neg": -2.5, "yes": true, "numtext": " 12.50 ", "inttext": "7",
      "csv": "a,b,,c", "items": ["x", 2, null, {"k": "v"}], "noitems": [],
      "obj": {"a": 1, "b": [true]}, "uni": "h\u00e9llo w\u00f6rld",
      "q": "a \"b\"\\c", "url": "a b&c=d/e",
      "t": "2024-05-01T10:00:00Z", "t_off": "2024-05-01T12:30:15.987+02:00", "t_date": "2024-05-01",
      "unix": 1714557600, "unix_f": 1714557600.9, "unix_text": "1714557600", "notime": "yesterday"
    }},
    "steps": {"1": {"echo": "token was s3cr3t-t0ken", "big": 123456}},
    "secrets": {"API_KEY": "s3cr3t-t0ken", "NUM": "123456"}
  })");
}

std::string ftext(std::string_view tmpl) { return t::render(tmpl, filter_context()).text; }

json fvalue(std::string_view tmpl) {
  t::options o;
  o.keep_type = true;
  return t::render_value(tmpl, filter_context(), o).value;
}

bool warns(std::string_view tmpl, std::string_view part) {
  auto r = t::render(tmpl, filter_context());
  for (const auto& w : r.warnings)
    if (w.find(part) != std::string::npos) return true;
  return false;
}

}  // namespace

TEST_CASE("filters: lower, upper, trim act on the text of a value, null stays null") {
  CHECK(ftext("{{s | lower}}") == "  hello world  ");
  CHECK(ftext("{{s | upper}}") == "  HELLO WORLD  ");
  CHECK(ftext("{{s | trim}}") == "Hello World");
  CHECK(ftext("[{{s|trim|upper}}]") == "[HELLO WORLD]");  // chains, no spaces needed
  CHECK(ftext("{{uni | upper}}") == "H\u00e9LLO W\u00f6RLD");  // ASCII letters only
  CHECK(fvalue("{{yes | upper}}") == "TRUE");                  // a boolean's text
  CHECK(fvalue("{{n | lower}}") == "42");                      // a number's text, as a string
  CHECK(fvalue("{{obj | upper}}") == R"({"A":1,"B":[TRUE]})");  // compact JSON text
  CHECK(fvalue("{{none | upper}}") == nullptr);
  CHECK(fvalue("{{numtext | trim}}") == "12.50");
}

TEST_CASE("filters: default applies to missing, null and the empty string only") {
  CHECK(ftext("{{nope | default:\"n/a\"}}") == "n/a");
  CHECK(ftext("{{none | default:\"n/a\"}}") == "n/a");
  CHECK(ftext("{{empty | default:\"n/a\"}}") == "n/a");
  CHECK(ftext("{{name | default:\"n/a\"}}") == "ann");
  CHECK(fvalue("{{n | default:\"n/a\"}}") == 42);
  CHECK(fvalue("{{noitems | default:\"n/a\"}}") == json::array());  // an empty array is a value
  CHECK(fvalue("{{nope | default:0}}") == 0);                       // an integer stays a number
  // `default` expects a missing value: no warning for it.
  CHECK(t::render("{{nope | default:\"x\"}}", filter_context()).warnings.empty());
  CHECK(warns("{{nope | upper}}", "no such field"));
  // Escapes in argument strings.
  CHECK(ftext(R"({{nope | default:"say \"hi\"\\ \}\}"}})") == "say \"hi\"\\ }}");
  CHECK(ftext(R"({{nope | default:"a\tb"}})") == "a\tb");
}

TEST_CASE("filters: json, urlencode, base64") {
  CHECK(fvalue("{{name | json}}") == "\"ann\"");
  CHECK(fvalue("{{n | json}}") == "42");
  CHECK(fvalue("{{items | json}}") == R"(["x",2,null,{"k":"v"}])");
  CHECK(fvalue("{{none | json}}") == "null");
  CHECK(fvalue("{{nope | json}}") == "null");
  CHECK(ftext("{{url | urlencode}}") == "a%20b%26c%3Dd%2Fe");
  CHECK(ftext("{{n | urlencode}}") == "42");
  CHECK(ftext("{{name | base64}}") == "YW5u");
  CHECK(ftext("{{obj | base64}}") == "eyJhIjoxLCJiIjpbdHJ1ZV19");  // base64 of {"a":1,"b":[true]}
  CHECK(fvalue("{{none | base64}}") == nullptr);
  // In a JSON string the filtered text is escaped like any value: the body stays valid.
  t::options js;
  js.m = t::mode::json;
  auto body = t::render(R"({"raw": "{{q | json}}", "v": {{obj | json}}})", filter_context(), js);
  REQUIRE(json::accept(body.text));
  CHECK(json::parse(body.text)["raw"] == "\"a \\\"b\\\"\\\\c\"");
  CHECK(json::parse(body.text)["v"] == R"({"a":1,"b":[true]})");  // a string: `json` makes text
}

TEST_CASE("filters: truncate, first, last and length count UTF-8 code points") {
  CHECK(ftext("{{uni | truncate:2}}") == "h\u00e9");
  CHECK(ftext("{{uni | truncate:0}}") == "");
  CHECK(ftext("{{name | truncate:99}}") == "ann");
  CHECK(fvalue("{{n | truncate:1}}") == "4");
  CHECK(fvalue("{{uni | first}}") == "h");
  CHECK(fvalue("{{uni | last}}") == "d");
  CHECK(fvalue("{{uni | truncate:2 | last}}") == "\u00e9");
  CHECK(fvalue("{{items | first}}") == "x");
  CHECK(fvalue("{{items | last}}") == json{{"k", "v"}});
  CHECK(fvalue("{{noitems | first}}") == nullptr);
  CHECK(fvalue("{{empty | first}}") == "");
  CHECK(fvalue("{{obj | first}}") == json{{"a", 1}, {"b", {true}}});  // objects unchanged
  CHECK(fvalue("{{n | last}}") == 42);
  CHECK(fvalue("{{uni | length}}") == 11);
  CHECK(fvalue("{{items | length}}") == 4);
  CHECK(fvalue("{{obj | length}}") == 2);
  CHECK(fvalue("{{n | length}}") == 2);
  CHECK(fvalue("{{none | length}}") == 0);
  CHECK(fvalue("{{nope | length}}") == 0);
  CHECK(ftext("{{items | length}} items") == "4 items");
}

TEST_CASE("filters: urlencode in a URL is not encoded twice") {
  t::options url;
  url.m = t::mode::url;
  auto ctx = filter_context();
  CHECK(t::render("https://x.test/{{url | urlencode}}?q={{url}}", ctx, url).text ==
        "https://x.test/a%20b%26c%3Dd%2Fe?q=a%20b%26c%3Dd%2Fe");
  CHECK(t::render("https://x.test/?k={{secrets.API_KEY | urlencode}}", ctx, url).masked == "https://x.test/?k=********");
  CHECK(t::render("https://x.test/?e={{steps.1.echo | urlencode}}", ctx, url).masked == "https://x.test/?e=token%20was%20********");
}

TEST_CASE("filters: replace, split and join") {
  CHECK(ftext("{{s | replace:\"o\":\"0\"}}") == "  Hell0 W0rld  ");
  CHECK(ftext("{{s | trim | replace:\" \":\"\"}}") == "HelloWorld");
  CHECK(ftext("{{n | replace:\"4\":\"four\"}}") == "four2");
  CHECK(fvalue("{{none | replace:\"a\":\"b\"}}") == nullptr);
  CHECK(fvalue("{{csv | split:\",\"}}") == json{"a", "b", "", "c"});
  CHECK(fvalue("{{name | split:\",\"}}") == json{"ann"});
  CHECK(fvalue("{{items | split:\",\"}}") == json{"x", 2, nullptr, {{"k", "v"}}});  // already a list
  CHECK(fvalue("{{n | split:\"2\"}}") == json{"4", ""});
  CHECK(ftext("{{csv | split:\",\" | join:\" / \"}}") == "a / b /  / c");
  CHECK(ftext("{{items | join:\", \"}}") == "x, 2, , {\"k\":\"v\"}");  // null joins as nothing
  CHECK(fvalue("{{name | join:\",\"}}") == "ann");                   // not a list: unchanged
  CHECK(fvalue("{{csv | split:\",\" | length}}") == 4);
  CHECK(fvalue("{{csv | split:\",\" | last | upper}}") == "C");
}

TEST_CASE("filters: number and round") {
  CHECK(fvalue("{{numtext | number}}") == 12.5);
  CHECK(fvalue("{{inttext | number}}") == 7);
  CHECK(fvalue("{{inttext | number}}").is_number_integer());
  CHECK(fvalue("{{n | number}}") == 42);
  CHECK(fvalue("{{yes | number}}") == 1);
  CHECK(fvalue("{{none | number}}") == nullptr);
  CHECK(fvalue("{{name | number}}") == "ann");  // not a number: unchanged, with a warning
  CHECK(warns("{{name | number}}", "number: a string that is not a number"));
  CHECK(warns("{{items | number}}", "number: an array that is not a number"));
  CHECK(fvalue("{{f | round}}") == 2);
  CHECK(fvalue("{{f | round}}").is_number_integer());
  CHECK(fvalue("{{f | round:2}}") == 2.35);
  CHECK(fvalue("{{f | round:1}}") == 2.3);
  CHECK(fvalue("{{neg | round}}") == -3);  // half away from zero
  CHECK(fvalue("{{n | round:-1}}") == 40);
  CHECK(fvalue("{{numtext | round}}") == 13);
  CHECK(fvalue("{{n | round:2}}") == 42);
  CHECK(ftext("{{f | round:1}}") == "2.3");
  CHECK(fvalue("{{obj | round}}") == json{{"a", 1}, {"b", {true}}});
}

TEST_CASE("filters: date reads RFC 3339 and Unix seconds, formats in a zone") {
  CHECK(ftext("{{t | date}}") == "2024-05-01T10:00:00+00:00");
  CHECK(ftext("{{t | date:\"%Y-%m-%d %H:%M\"}}") == "2024-05-01 10:00");
  CHECK(ftext("{{t | date:\"%Y-%m-%d %H:%M\":\"Europe/Paris\"}}") == "2024-05-01 12:00");
  CHECK(ftext("{{t_off | date:\"%H:%M:%S\":\"UTC\"}}") == "10:30:15");  // offset applied, fraction dropped
  CHECK(ftext("{{t_date | date:\"%d/%m/%Y %H:%M\"}}") == "01/05/2024 00:00");
  CHECK(ftext("{{unix | date:\"%F %T\":\"America/New_York\"}}") == "2024-05-01 06:00:00");
  CHECK(ftext("{{unix_f | date:\"%T\"}}") == "10:00:00");
  CHECK(ftext("{{unix_text | date:\"%T %Z\":\"Asia/Tokyo\"}}") == "19:00:00 JST");
  CHECK(fvalue("{{none | date}}") == nullptr);
}

TEST_CASE("filters: date across daylight saving time changes, in explicit zones") {
  json ctx = {{"trigger",
               {{"body",
                 {{"before_spring", "2024-03-31T00:30:00Z"}, {"after_spring", "2024-03-31T01:30:00Z"},
                  {"before_fall", "2024-10-27T00:30:00Z"}, {"after_fall", "2024-10-27T01:30:00Z"},
                  {"ny_spring", 1710054000}, {"ny_fall_1", "2024-11-03T05:30:00-00:00"}, {"ny_fall_2", "2024-11-03T06:30:00Z"}}}}}};
  auto d = [&](std::string_view tmpl) { return t::render(tmpl, ctx).text; };
  const std::string paris = R"(date:"%Y-%m-%d %H:%M %Z %Ez":"Europe/Paris")";
  // Spring forward: 02:00 CET jumps to 03:00 CEST; an hour apart in UTC, two hours on the clock.
  CHECK(d("{{before_spring | " + paris + "}}") == "2024-03-31 01:30 CET +01:00");
  CHECK(d("{{after_spring | " + paris + "}}") == "2024-03-31 03:30 CEST +02:00");
  // Fall back: 02:30 happens twice, first in CEST then in CET.
  CHECK(d("{{before_fall | " + paris + "}}") == "2024-10-27 02:30 CEST +02:00");
  CHECK(d("{{after_fall | " + paris + "}}") == "2024-10-27 02:30 CET +01:00");
  // New York: 2024-03-10 07:00 UTC is 03:00 EDT (02:00 EST never happened); fall back on 11-03.
  CHECK(d("{{ny_spring | date:\"%H:%M %Z\":\"America/New_York\"}}") == "03:00 EDT");
  CHECK(d("{{ny_fall_1 | date:\"%H:%M %Z\":\"America/New_York\"}}") == "01:30 EDT");
  CHECK(d("{{ny_fall_2 | date:\"%H:%M %Z\":\"America/New_York\"}}") == "01:30 EST");
  // A zone without DST on the same instants: a constant offset.
  CHECK(d("{{after_spring | date:\"%H:%M\":\"Asia/Kolkata\"}}") == "07:00");
}

TEST_CASE("filters: date on what is not a time warns and leaves the value unchanged") {
  CHECK(ftext("{{notime | date:\"%F\"}}") == "yesterday");
  CHECK(warns("{{notime | date:\"%F\"}}", "date: a string is not a time"));
  CHECK(fvalue("{{items | date}}") == json{"x", 2, nullptr, {{"k", "v"}}});
  for (const char* bad : {"2024-02-30T10:00:00Z", "2024-05-01T24:00:00Z", "2024-05-01T10:00:00", "2024-05-01T10:00Z",
                          "2024-05-01T10:00:00+2:00", "2024-05-01 10:00:00 +02:00"}) {
    json ctx = {{"trigger", {{"body", {{"v", bad}}}}}};
    INFO(bad);
    auto r = t::render("{{v | date:\"%F\"}}", ctx);
    CHECK(r.text == bad);
    CHECK(!r.warnings.empty());
  }
  // An unknown zone at render time (the check refuses it at save): unchanged, warned.
  CHECK(ftext("{{t | date:\"%F\":\"Mars/Olympus\"}}") == "2024-05-01T10:00:00Z");
  CHECK(warns("{{t | date:\"%F\":\"Mars/Olympus\"}}", "unknown time zone \"Mars/Olympus\""));
}

TEST_CASE("filters: unknown filters and bad arguments warn at render and are found by check") {
  // Unknown filter: skipped with a warning; the rest of the chain applies.
  auto r = t::render("{{name | uper | upper}}", filter_context());
  CHECK(r.text == "ANN");
  CHECK(has_warning_with(r, "unknown filter \"uper\""));
  auto problems = t::check("Hi {{name | uper}} {{n | truncate}} {{n | round:\"2\"}} {{s | replace:\"a\"}}");
  REQUIRE(problems.size() == 4);
  CHECK(problems[0].starts_with("{{name | uper}}: unknown filter \"uper\" (known: lower, upper,"));
  CHECK(problems[1] == "{{n | truncate}}: truncate takes 1 argument (write truncate:N)");
  CHECK(problems[2] == "{{n | round:\"2\"}}: argument 1 of round must be an integer (write round or round:N)");
  CHECK(problems[3] == "{{s | replace:\"a\"}}: replace takes 2 arguments (write replace:\"from\":\"to\")");
  CHECK(t::check("{{a | lower:1}}") == std::vector<std::string>{"{{a | lower:1}}: lower takes no argument (write lower)"});
  CHECK(t::check("{{a | truncate:-1}}") == std::vector<std::string>{"{{a | truncate:-1}}: truncate:N needs N >= 0"});
  CHECK(t::check("{{a | split:\"\"}}").size() == 1);
  CHECK(t::check("{{a | round:16}}").size() == 1);
  CHECK(t::check("{{a | date:\"%F\":\"Nowhere/City\"}}").at(0).find("unknown time zone") != std::string::npos);
  CHECK(t::check("{{a | date:\"%F\":\"Europe/Paris\":\"x\"}}").size() == 1);
  // Syntax: the placeholder stays text at render time.
  auto unterminated = t::render("{{name | default:\"x}}", filter_context());
  CHECK(unterminated.text == "{{name | default:\"x}}");
  CHECK(has_warning_with(unterminated, "unterminated argument string"));
  CHECK(t::check("{{name | default:\"x}}").at(0).find("unterminated argument string") != std::string::npos);
  CHECK(t::check("{{a | }}").at(0).find("expected a filter name") != std::string::npos);
  CHECK(t::check("{{a | upper lower}}").at(0).find("expected |") != std::string::npos);
  CHECK(t::check("{{a | truncate:x}}").at(0).find("must be a \"string\" or an integer") != std::string::npos);
  CHECK(t::check("{{a | truncate:9999999999999999999}}").at(0).find("too large") != std::string::npos);
  std::string many = "{{a";
  for (int i = 0; i < 33; ++i) many += " | trim";
  CHECK(t::check(many + "}}").at(0).find("more than 32 filters") != std::string::npos);
  // Fine templates, and text that is not a placeholder, have no problems.
  CHECK(t::check("{{a | trim | upper}} {{b|default:\"x\"|json}} {{c | date:\"%F\":\"UTC\"}} {{ a b }} {{}} x").empty());
  CHECK(t::check("{{a | replace:\"}\":\"\\}\\}\"}}").empty());
  // Messages are valid UTF-8 and said once.
  auto bad_bytes = t::check("{{a | \xff\xfe}} {{a | \xff\xfe}}");
  REQUIRE(bad_bytes.size() == 1);
  CHECK_NOTHROW(json(bad_bytes[0]).dump());
}

TEST_CASE("filters: results over the output cap fail with a warning, never grow without bound") {
  json ctx = {{"trigger", {{"body", {{"q", std::string(1000, '"')}, {"list", json::array()}}}}}};
  for (int i = 0; i < 2000; ++i) ctx["trigger"]["body"]["list"].push_back("item");
  t::options o;
  o.max_output = 4096;
  o.keep_type = true;
  std::string chain = "{{q";
  for (int i = 0; i < 30; ++i) chain += " | json";
  chain += "}}";
  auto r = t::render_value(chain, ctx, o);
  CHECK(r.value.get<std::string>().size() <= o.max_output);
  CHECK(std::any_of(r.warnings.begin(), r.warnings.end(), [](const std::string& w) { return w.find("4096 bytes") != std::string::npos; }));
  auto joined = t::render_value("{{list | join:\"------------\"}}", ctx, o);
  CHECK(joined.value.is_array());  // unchanged
  auto replaced = t::render_value("{{q | replace:\"\\\"\":\"0123456789\"}}", ctx, o);
  CHECK(replaced.value == ctx["trigger"]["body"]["q"]);
}

TEST_CASE("keep_type: one placeholder keeps its JSON type after filters") {
  t::options o;
  o.keep_type = true;
  auto ctx = filter_context();
  CHECK(t::render_value("{{items | length}}", ctx, o).value == 4);
  CHECK(t::render_value("  {{obj}}\n", ctx, o).value == json{{"a", 1}, {"b", {true}}});
  CHECK(t::render_value("{{yes}}", ctx, o).value == true);
  CHECK(t::render_value("{{f}}", ctx, o).value == 2.345);
  CHECK(t::render_value("{{none}}", ctx, o).value == nullptr);
  auto missing = t::render_value("{{nope}}", ctx, o);
  CHECK(missing.value == nullptr);
  CHECK(missing.missing);
  CHECK(!missing.warnings.empty());
  // `missing` is about the path: a null value exists; a default does not make a path exist.
  CHECK(!t::render_value("{{none}}", ctx, o).missing);
  auto defaulted = t::render_value("{{nope | default:\"d\"}}", ctx, o);
  CHECK(defaulted.value == "d");
  CHECK(defaulted.missing);
  CHECK(t::render_value("{{steps.3.x}}", ctx, o).missing);
  // Anything else around the placeholder: text.
  CHECK(t::render_value("n={{n}}", ctx, o).value == "n=42");
  CHECK(!t::render_value("n={{nope}}", ctx, o).missing);
  CHECK(t::render_value("{{n}}{{n}}", ctx, o).value == "4242");
  CHECK(t::render_value("plain", ctx, o).value == "plain");
  // Without keep_type: the text, and `missing` still precise.
  t::options text;
  auto as_text = t::render_value("{{items | length}}", ctx, text);
  CHECK(as_text.value == "4");
  CHECK(!as_text.missing);
  CHECK(t::render_value("{{nope}}", ctx, text).missing);
  CHECK(t::render_value("{{nope}}", ctx, text).value == "");
}

TEST_CASE("keep_type in render_config: typed values for the fields that ask, masked twins too") {
  json config = {{"fields", {{"count", "{{items | length}}"}, {"order", "{{obj}}"}, {"label", "n={{n}}"},
                             {"key", "{{secrets.API_KEY}}"}, {"echo", "{{steps.1.echo | split:\" \"}}"},
                             {"num", "{{steps.1.big}}"}, {"gone", "{{nope}}"}}},
                 {"other", "{{items | length}}"}};
  auto r = t::render_config(config, filter_context(), [](std::string_view field) {
    t::options o;
    o.keep_type = field.starts_with("fields.");
    return o;
  });
  CHECK(r.value["fields"]["count"] == 4);
  CHECK(r.value["fields"]["order"] == json{{"a", 1}, {"b", {true}}});
  CHECK(r.value["fields"]["label"] == "n=42");
  CHECK(r.value["fields"]["key"] == "s3cr3t-t0ken");
  CHECK(r.value["fields"]["gone"] == nullptr);
  CHECK(r.value["other"] == "4");
  CHECK(r.masked["fields"]["count"] == 4);
  CHECK(r.masked["fields"]["key"] == "********");
  CHECK(r.masked["fields"]["echo"] == json{"token", "was", "********"});
  CHECK(r.masked["fields"]["num"] == "********");  // a number spelling a secret value
  CHECK(r.masked.dump().find("s3cr3t") == std::string::npos);
  CHECK(std::find(r.warnings.begin(), r.warnings.end(), "fields.gone: {{nope}}: no such field in the trigger body") !=
        r.warnings.end());
  CHECK(r.missing_fields == std::vector<std::string>{"fields.gone"});  // null, and missing
}

TEST_CASE("masking through filters: a transformed secret never reaches the masked twin") {
  auto ctx = filter_context();
  for (const char* tmpl : {"{{secrets.API_KEY | upper}}", "{{secrets.API_KEY | base64}}", "{{secrets.API_KEY | urlencode}}",
                           "{{secrets.API_KEY | split:\"-\" | join:\"+\"}}", "{{secrets.API_KEY | replace:\"3\":\"E\"}}",
                           "{{secrets.API_KEY | json}}", "{{secrets.API_KEY | truncate:6}}", "{{secrets.API_KEY | length}}",
                           "{{secrets.NUM | number}}"}) {
    INFO(tmpl);
    for (auto m : {t::mode::text, t::mode::json, t::mode::header, t::mode::url}) {
      t::options o;
      o.m = m;
      auto r = t::render(std::string("x ") + tmpl, ctx, o);
      CHECK(r.masked.find("********") != std::string::npos);
      CHECK(r.masked.find("S3CR3T") == std::string::npos);
      CHECK(r.masked.find("czNjcjN0") == std::string::npos);  // base64 of the start
      CHECK(r.masked.find("s3cr") == std::string::npos);
      CHECK(r.masked.find("E") == std::string::npos);
    }
    t::options typed;
    typed.keep_type = true;
    CHECK(t::render_value(tmpl, ctx, typed).masked == "********");
  }
  // A value that echoes a secret, transformed: filters run on the masked input.
  auto echo = t::render("{{steps.1.echo | base64}} {{steps.1.echo | upper}}", ctx);
  CHECK(echo.text == "dG9rZW4gd2FzIHMzY3IzdC10MGtlbg== TOKEN WAS S3CR3T-T0KEN");
  CHECK(echo.masked == "dG9rZW4gd2FzICoqKioqKioq TOKEN WAS ********");
  // The URL form of a filtered, masked value still reads as the mask.
  t::options url;
  url.m = t::mode::url;
  CHECK(t::render("https://x.test/?q={{steps.1.echo | upper}}", ctx, url).masked == "https://x.test/?q=TOKEN%20WAS%20********");
}

TEST_CASE("filters: referenced paths and secrets ignore the filters") {
  CHECK(t::referenced_paths("{{ a.b | upper }} {{c|default:\"x\"}}") == std::vector<std::string>{"a.b", "c"});
  CHECK(t::referenced_secrets(json{{"h", "Bearer {{secrets.K | trim}}"}}) == std::vector<std::string>{"K"});
  // A `|` is no longer part of a path.
  CHECK(ftext("{{name|upper}}") == "ANN");
}

TEST_CASE("filters: broken chains and long arguments scan in linear time") {
  // Linear, not quadratic: 4x the input may take about 4x the time (16x if quadratic). A
  // ratio, not an absolute bound, so a slow (sanitized, shared) machine does not fail it;
  // the best of three runs of each size keeps a passing load spike out of the figure.
  auto best_of_3 = [](const std::string& tmpl) {
    auto best = std::chrono::steady_clock::duration::max();
    for (int run = 0; run < 3; ++run) {
      auto started = std::chrono::steady_clock::now();
      auto r = t::render(tmpl, filter_context());
      auto problems = t::check(tmpl);
      CHECK(problems.size() <= 101);
      best = std::min(best, std::chrono::steady_clock::now() - started);
    }
    return std::chrono::duration<double>(best).count();
  };
  auto linear = [&](const std::function<std::string(int)>& make, int n) {
    const double small = best_of_3(make(n));
    const double large = best_of_3(make(4 * n));
    INFO("n = " << n << ": " << small << " s; 4n: " << large << " s");
    CHECK(large < 9 * small + 0.005);
  };
  // Each `{{a|f:"` starts a string that the next one's quote ends; then a broken chain.
  linear([](int n) {
    std::string nested;
    for (int i = 0; i < n; ++i) nested += "{{a|f:\"";
    return nested + "}}";
  }, 5'000);
  // Two chains in opposite phase over one long tail of `|f:"`.
  linear([](int n) {
    std::string phased = "{{a|f:\"{{a|f:\"{{a|f:\"";
    for (int i = 0; i < n; ++i) phased += "|f:\"";
    return phased + "}}";
  }, 200'000);
  // Spaces before a far `}}`, after many `{{`.
  linear([](int n) {
    std::string spaces;
    for (int i = 0; i < n; ++i) spaces += "{{ | ";
    return spaces + std::string(4 * static_cast<std::size_t>(n), ' ') + "}}";
  }, 10'000);
}

TEST_CASE("filters in a json template: argument quotes written as they are, the body stays valid") {
  t::options js;
  js.m = t::mode::json;
  auto r = t::render(R"({"name": "{{nope | default:"anon"}}", "tags": {{csv | split:","}}, "n": {{numtext | number}}, "s": "{{s | trim | replace:"o":"\""}}"})",
                     filter_context(), js);
  INFO(r.text);
  REQUIRE(json::accept(r.text));
  CHECK(json::parse(r.text) == json{{"name", "anon"}, {"tags", {"a", "b", "", "c"}}, {"n", 12.5}, {"s", "Hell\" W\"rld"}});
  REQUIRE(json::accept(r.masked));
}
