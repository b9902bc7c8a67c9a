// The catalog's config validation (actions::validate_config): numeric bounds and HTTP headers.
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "zapd/actions/catalog.hpp"

using namespace zapd;
using json = nlohmann::json;

namespace {

constexpr const char* k_path = "actions[0].actionMetadata";

const actions::spec& http_spec() {
  const auto* s = actions::catalog::builtin().find_action("http");
  REQUIRE(s);
  return *s;
}

struct checked {
  json normal;
  std::vector<field_error> errs;
};

checked validate(const actions::spec& s, const json& config) {
  checked c;
  c.normal = actions::validate_config(s, config, k_path, {}, c.errs);
  return c;
}

/// The http action's config with `field` set to `v` (url given, so only `field` can be wrong).
checked http_with(const std::string& field, const json& v) {
  json cfg = {{"url", "https://example.org/in"}};
  cfg[field] = v;
  return validate(http_spec(), cfg);
}

std::string describe(const std::vector<field_error>& errs) {
  std::string out;
  for (const auto& e : errs) out += e.path + ": " + e.message + "\n";
  return out;
}

/// The configSchema entry of `s`'s field `name`.
json schema_field(const actions::spec& s, const std::string& name) {
  const json schema = actions::config_schema_json(s);
  for (const auto& f : schema["fields"])
    if (f["name"] == name) return f;
  FAIL("no field " << name << " in " << s.id);
  return nullptr;
}

/// The number JSON text `text` parses to (2^63 as written in a request body is unsigned).
json number(const std::string& text) { return json::parse(text); }

}  // namespace

TEST_CASE("every integer field in the catalog advertises minimum and maximum, and its default is inside") {
  const auto& cat = actions::catalog::builtin();
  int integers = 0;
  for (const auto* all : {&cat.triggers(), &cat.actions()})
    for (const auto& s : *all) {
      const json schema = actions::config_schema_json(s);
      for (const auto& f : schema["fields"]) {
        if (f["type"] != "integer") continue;
        ++integers;
        INFO(s.id << "." << f["name"].get<std::string>());
        REQUIRE(f.contains("minimum"));
        REQUIRE(f.contains("maximum"));
        CHECK(f["minimum"].get<std::int64_t>() <= f["maximum"].get<std::int64_t>());
        if (!f["default"].is_null()) {
          CHECK(f["default"].get<std::int64_t>() >= f["minimum"].get<std::int64_t>());
          CHECK(f["default"].get<std::int64_t>() <= f["maximum"].get<std::int64_t>());
        }
      }
    }
  CHECK(integers >= 1);  // http.timeoutMs
}

TEST_CASE("every integer field in the catalog refuses values outside its bounds and takes its bounds") {
  const auto& cat = actions::catalog::builtin();
  for (const auto* all : {&cat.triggers(), &cat.actions()})
    for (const auto& s : *all)
      for (const auto& f : s.fields) {
        if (f.type != actions::field_type::integer) continue;
        REQUIRE(f.minimum);
        REQUIRE(f.maximum);
        const std::int64_t lo = *f.minimum, hi = *f.maximum;
        const std::string path = std::string(k_path) + "." + f.name;
        const std::string range = "must be between " + std::to_string(lo) + " and " + std::to_string(hi);
        json base = json::object();
        for (const auto& other : s.fields)  // required fields get a valid value
          if (other.required && other.name != f.name) base[other.name] = other.format == actions::field_format::url ? "https://example.org" : "x";
        auto with = [&](const json& v) {
          json cfg = base;
          cfg[f.name] = v;
          return validate(s, cfg);
        };
        DYNAMIC_SECTION(s.id << "." << f.name << " at its bounds is accepted") {
          for (std::int64_t ok : {lo, hi}) {
            auto c = with(ok);
            INFO(ok << "\n" << describe(c.errs));
            CHECK(c.errs.empty());
            CHECK(c.normal[f.name] == ok);
          }
        }
        DYNAMIC_SECTION(s.id << "." << f.name << " outside its bounds is refused, naming the field and the range") {
          std::vector<json> bad = {number("9223372036854775808"), number("18446744073709551615"), number("1e19"),
                                   number("-9223372036854775809"), json(std::numeric_limits<std::int64_t>::min())};
          if (lo > std::numeric_limits<std::int64_t>::min()) bad.push_back(lo - 1);
          if (hi < std::numeric_limits<std::int64_t>::max()) bad.push_back(hi + 1);
          for (const auto& v : bad) {
            auto c = with(v);
            INFO(v.dump() << "\n" << describe(c.errs));
            REQUIRE(c.errs.size() == 1);
            CHECK(c.errs[0].path == path);
            CHECK(c.errs[0].message == range);
          }
        }
        DYNAMIC_SECTION(s.id << "." << f.name << " that is not an integer is refused") {
          for (const json& v : {json(static_cast<double>(lo) + 0.5), json("5000"), json(true), json(nullptr), json::array({lo})}) {
            auto c = with(v);
            INFO(v.dump() << "\n" << describe(c.errs));
            REQUIRE(c.errs.size() == 1);
            CHECK(c.errs[0].path == path);
            CHECK(c.errs[0].message == "must be an integer between " + std::to_string(lo) + " and " + std::to_string(hi));
          }
        }
      }
}

TEST_CASE("http timeoutMs: 1 to 300000 ms") {
  const std::string path = "actions[0].actionMetadata.timeoutMs";
  for (const char* bad : {"-5", "0", "300001", "9223372036854775808", "9223372036854775807", "-9223372036854775808",
                          "18446744073709551616", "1e300"}) {
    auto c = http_with("timeoutMs", json::parse(bad));
    INFO(bad << "\n" << describe(c.errs));
    REQUIRE(c.errs.size() == 1);
    CHECK(c.errs[0].path == path);
    CHECK(c.errs[0].message == "must be between 1 and 300000");
  }
  for (const char* frac : {"0.5", "1000.25", "-1.5"}) {
    auto c = http_with("timeoutMs", json::parse(frac));
    INFO(frac << "\n" << describe(c.errs));
    REQUIRE(c.errs.size() == 1);
    CHECK(c.errs[0].message == "must be an integer between 1 and 300000");
  }
  for (std::int64_t ok : {1, 200, 30000, 300000}) {
    auto c = http_with("timeoutMs", ok);
    INFO(ok << "\n" << describe(c.errs));
    CHECK(c.errs.empty());
    CHECK(c.normal["timeoutMs"] == ok);
  }
  // A whole number written with a fraction part is that integer, stored as one (the
  // executor and the worker read only JSON integers).
  auto whole = http_with("timeoutMs", json::parse("5000.0"));
  CHECK(whole.errs.empty());
  CHECK(whole.normal["timeoutMs"].is_number_integer());
  CHECK(whole.normal["timeoutMs"] == 5000);
  // The schema says so, for the UI.
  const json timeout = schema_field(http_spec(), "timeoutMs");
  CHECK(timeout["minimum"] == 1);
  CHECK(timeout["maximum"] == 300000);
}

TEST_CASE("bounded_integer: integers in range and whole floats, with the range in every refusal") {
  CHECK(*actions::bounded_integer(json(7), 1, 20) == 7);
  CHECK(*actions::bounded_integer(json::parse("20.0"), 1, 20) == 20);
  CHECK(*actions::bounded_integer(json(-3), -5, 5) == -3);
  CHECK(*actions::bounded_integer(json::parse("-9223372036854775808"), std::numeric_limits<std::int64_t>::min(), 0) ==
        std::numeric_limits<std::int64_t>::min());
  CHECK(*actions::bounded_integer(json::parse("9223372036854775807"), 0, std::numeric_limits<std::int64_t>::max()) ==
        std::numeric_limits<std::int64_t>::max());
  // Past int64 either way, even with no bounds to speak of.
  const auto all_lo = std::numeric_limits<std::int64_t>::min(), all_hi = std::numeric_limits<std::int64_t>::max();
  for (const char* over : {"9223372036854775808", "18446744073709551615", "9.3e18", "-9.3e18", "1e300"}) {
    INFO(over);
    auto r = actions::bounded_integer(json::parse(over), all_lo, all_hi);
    REQUIRE_FALSE(r.ok());
    CHECK(r.err().code == errc::invalid_argument);
  }
  auto r = actions::bounded_integer(json(21), 1, 20);
  REQUIRE_FALSE(r.ok());
  CHECK(r.err().message == "must be between 1 and 20");
  auto s = actions::bounded_integer(json("3"), 1, 20);
  REQUIRE_FALSE(s.ok());
  CHECK(s.err().message == "must be an integer between 1 and 20");
}

TEST_CASE("http headers: names must be RFC 9110 tokens, values free of CR, LF and NUL, checked at save") {
  const std::string base = "actions[0].actionMetadata.headers.";
  SECTION("valid names and values pass, templates in values included") {
    std::vector<field_error> errs;
    actions::validate_config(http_spec(),
                             {{"url", "https://example.org"},
                              {"headers",
                               {{"X-Custom_1", "a value; with: punctuation"},
                                {"!#$%&'*+-.^_`|~09azAZ", "x"},
                                {"Authorization", "Bearer {{ secrets.K }}"},
                                {"X-Empty", ""}}}},
                             k_path, {"K"}, errs);
    INFO(describe(errs));
    CHECK(errs.empty());
  }
  SECTION("a name that is not a token is refused, naming the header") {
    struct row {
      std::string name;
      std::string shown;  // how the message shows it
    };
    const std::vector<row> bad = {
        {"X-A\r\nInjected: 1", "X-A\\r\\nInjected: 1"},
        {"X-A\nB", "X-A\\nB"},
        {"X-A\rB", "X-A\\rB"},
        {std::string("X-\0A", 4), "X-\\x00A"},
        {"X Bad", "X Bad"},
        {"X-Colon:", "X-Colon:"},
        {"(comment)", "(comment)"},
        {"\"quoted\"", "\"quoted\""},
        {"a/b", "a/b"},
        {"a@b", "a@b"},
        {"{{name}}", "{{name}}"},
        {"X-\t", "X-\\x09"},
        {"X-\x7f", "X-\\x7f"},
        {"X-\xc3\xa9", "X-\\xc3\\xa9"},  // é: not ASCII
    };
    for (const auto& b : bad) {
      auto c = http_with("headers", {{b.name, "v"}});
      INFO(b.shown << "\n" << describe(c.errs));
      REQUIRE(c.errs.size() == 1);
      CHECK(c.errs[0].path == base + b.name);
      CHECK(c.errs[0].message.find("'" + b.shown + "' is not a valid header name") == 0);
      // The message is printable ASCII whatever the name holds.
      for (unsigned char ch : c.errs[0].message) CHECK((ch >= 0x20 && ch < 0x7F));
    }
    auto empty = http_with("headers", {{"", "v"}});
    REQUIRE(empty.errs.size() == 1);
    CHECK(empty.errs[0].path == base);
    CHECK(empty.errs[0].message == "a header name cannot be empty");
    auto long_name = http_with("headers", {{std::string(300, 'x') + " ", "v"}});
    REQUIRE(long_name.errs.size() == 1);
    CHECK(long_name.errs[0].message.size() < 200);
  }
  SECTION("a value with CR, LF or NUL is refused, naming the header") {
    for (const auto& v : {std::string("a\r\nX-Injected: 1"), std::string("a\nb"), std::string("a\rb"), std::string("a\0b", 3),
                          std::string("{{x}}\r\n")}) {
      auto c = http_with("headers", {{"X-Ok", v}});
      INFO(describe(c.errs));
      REQUIRE(c.errs.size() == 1);
      CHECK(c.errs[0].path == base + "X-Ok");
      CHECK(c.errs[0].message == "the value of header 'X-Ok' contains a line break or NUL");
    }
  }
  SECTION("every bad header is reported, not only the first") {
    auto c = http_with("headers", {{"A B", "v"}, {"C", "x\ny"}, {"Good", "v"}});
    CHECK(c.errs.size() == 2);
  }
  SECTION("the schema marks the field as headers") {
    CHECK(schema_field(http_spec(), "headers")["format"] == "headers");
  }
}
