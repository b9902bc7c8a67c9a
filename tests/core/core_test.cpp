#include <sys/stat.h>

#include <atomic>
#include <cstdio>
#include <ctime>
#include <limits>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <regex>
#include <set>
#include <thread>

#include <catch2/catch.hpp>

#include "zapd/core/clock.hpp"
#include "zapd/core/crypto.hpp"
#include "zapd/core/files.hpp"
#include "zapd/core/ids.hpp"
#include "zapd/core/json.hpp"
#include "zapd/core/lifeline.hpp"
#include "zapd/core/result.hpp"

namespace fs = std::filesystem;

namespace {
std::string fresh_dir() {
  char tmpl[] = "/tmp/zapd-core-XXXXXX";
  return mkdtemp(tmpl);
}
}  // namespace

TEST_CASE("result carries a value or an error") {
  zapd::result<int> ok = 7;
  REQUIRE(ok.ok());
  CHECK(*ok == 7);
  zapd::result<int> bad = zapd::make_error(zapd::errc::not_found, "no such zap");
  REQUIRE_FALSE(bad.ok());
  CHECK(bad.err().code == zapd::errc::not_found);
  CHECK(bad.err().message == "no such zap");
  zapd::status fine;
  CHECK(fine.ok());
}

TEST_CASE("uuid v7 ids sort in creation order, within a millisecond and when the clock steps back") {
  std::vector<std::string> ids;
  for (int i = 0; i < 5000; ++i) ids.push_back(zapd::new_uuid_v7(4'000'000'000'000));  // > 4096 in one ms
  ids.push_back(zapd::new_uuid_v7(1'700'000'000'000));                                 // clock went back
  ids.push_back(zapd::new_uuid_v7(4'100'000'000'000));
  for (std::size_t i = 1; i < ids.size(); ++i) {
    INFO(i << ": " << ids[i - 1] << " then " << ids[i]);
    REQUIRE(ids[i - 1] < ids[i]);
  }
  for (const auto& id : ids) {
    REQUIRE(id.size() == 36);
    CHECK(id[14] == '7');
    CHECK((id[19] == '8' || id[19] == '9' || id[19] == 'a' || id[19] == 'b'));
  }
  CHECK(ids.front().substr(0, 18) == "03a35294-4000-7000");  // 4e12 ms in the first 48 bits, counter 0
}

TEST_CASE("uuids are v4, distinct and well-formed") {
  std::regex v4("^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$");
  std::set<std::string> seen;
  for (int i = 0; i < 1000; ++i) {
    auto id = zapd::new_uuid();
    REQUIRE(std::regex_match(id, v4));
    seen.insert(id);
  }
  CHECK(seen.size() == 1000);
  CHECK(zapd::random_hex(16).size() == 32);
}

// Ids draw their random bytes from a pool per thread (ids.cpp): threads must not hand out the
// same bytes, and a pool's refill must not repeat what it gave before.
TEST_CASE("uuids made on several threads at once are all distinct") {
  constexpr int k_threads = 4, k_each = 3000;  // 6,000 ids of 16 bytes: ~375 refills of a 256-byte pool each
  std::vector<std::vector<std::string>> made(k_threads);
  std::vector<std::thread> ts;
  for (int t = 0; t < k_threads; ++t)
    ts.emplace_back([&made, t] {
      for (int i = 0; i < k_each; ++i) {
        made[static_cast<std::size_t>(t)].push_back(zapd::new_uuid());
        // The same millisecond for every v7 id: only the random tail (after the counter) is compared.
        made[static_cast<std::size_t>(t)].push_back(zapd::new_uuid_v7(4'000'000'000'000).substr(19));
      }
    });
  for (auto& th : ts) th.join();
  std::set<std::string> seen;
  for (const auto& v : made) seen.insert(v.begin(), v.end());
  CHECK(seen.size() == static_cast<std::size_t>(2 * k_threads * k_each));
}

TEST_CASE("data dir: created when missing, refused when it cannot be written") {
  auto base = fresh_dir();
  SECTION("missing directory is created with mode 0700") {
    auto d = base + "/a/b";
    REQUIRE(zapd::ensure_writable_dir(d).ok());
    CHECK(fs::is_directory(d));
    struct stat st{};
    REQUIRE(stat(d.c_str(), &st) == 0);
    CHECK((st.st_mode & 0777) == 0700);
  }
  SECTION("a path below a regular file is an error naming the directory") {
    std::ofstream(base + "/file") << "x";
    auto st = zapd::ensure_writable_dir(base + "/file/data");
    REQUIRE_FALSE(st.ok());
    CHECK(st.err().message.find(base + "/file/data") != std::string::npos);
  }
  SECTION("a regular file is not a data dir") {
    std::ofstream(base + "/plain") << "x";
    CHECK_FALSE(zapd::ensure_writable_dir(base + "/plain").ok());
  }
}

TEST_CASE("signing secret: created once with mode 0600, then reused") {
  auto base = fresh_dir();
  auto path = base + "/secret.key";
  auto first = zapd::load_or_create_secret(path);
  REQUIRE(first.ok());
  CHECK(first->size() == 64);
  struct stat st{};
  REQUIRE(stat(path.c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);
  auto again = zapd::load_or_create_secret(path);
  REQUIRE(again.ok());
  CHECK(*again == *first);

  SECTION("a secret readable by others is refused") {
    chmod(path.c_str(), 0644);
    auto r = zapd::load_or_create_secret(path);
    REQUIRE_FALSE(r.ok());
    CHECK(r.err().message.find("chmod 600") != std::string::npos);
  }
  SECTION("garbage in the secret file is refused") {
    std::ofstream(path, std::ios::trunc) << "short\n";
    CHECK_FALSE(zapd::load_or_create_secret(path).ok());
  }
}

TEST_CASE("trim and split: spaces and tabs go, empty pieces stay") {
  CHECK(zapd::trim(" \t a b \t") == "a b");
  CHECK(zapd::trim("   ").empty());
  CHECK(zapd::trim("\r\n x \r\n") == "x");
  using v = std::vector<std::string_view>;
  CHECK(zapd::split("a, b ,c", ',') == v{"a", "b", "c"});
  CHECK(zapd::split("a,,b,", ',') == v{"a", "", "b", ""});
  CHECK(zapd::split("", ',') == v{""});
  CHECK(zapd::split("v1,x v1,y", ' ') == v{"v1,x", "v1,y"});
}

TEST_CASE("lifeline: a guarded call runs while the owner lives, and does nothing after end()") {
  int calls = 0;
  auto owner = std::make_unique<zapd::lifeline>();
  auto cb = owner->guard([&](int n) { calls += n; });
  auto get = owner->guard_or([&] { return calls; }, -1);
  cb(2);
  CHECK(calls == 2);
  CHECK(get() == 2);
  owner->end();
  cb(5);
  CHECK(calls == 2);
  CHECK(get() == -1);
  owner.reset();  // the wrapped callbacks keep the shared state, not the owner
  cb(7);
  CHECK(calls == 2);
}

TEST_CASE("lifeline: end() waits for a guarded call that is running, and a nested call does not deadlock") {
  zapd::lifeline owner;
  std::atomic<int> stage{0};
  std::atomic<bool> nested_ran{false};
  auto inner = owner.guard([&] { nested_ran = true; });
  auto outer = owner.guard([&] {
    inner();  // nested on the same thread
    stage = 1;
    while (stage.load() != 2) std::this_thread::yield();
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    stage = 3;
  });
  std::thread t([&] { outer(); });
  while (stage.load() != 1) std::this_thread::yield();
  stage = 2;
  owner.end();  // must return only after `outer` finished
  CHECK(stage.load() == 3);
  CHECK(nested_ran);
  t.join();
}

TEST_CASE("base64_decode: only the alphabet's characters, one spelling per value") {
  const std::string good = "mdjDzNvgaYq53+/a/S+EMOgzbxCD0OEYGW1MEndDsLk=";
  REQUIRE(zapd::base64_decode(good));
  std::string bad = good;
  bad[16] = '\xff';  // decoded as '/' by libsodium 1.0.18 (signature_fuzz)
  CHECK_FALSE(zapd::base64_decode(bad));
  bad[16] = '\x80';
  CHECK_FALSE(zapd::base64_decode(bad));
  CHECK_FALSE(zapd::base64_decode("ab_-", zapd::base64_alphabet::standard));
  CHECK(zapd::base64_decode("ab_-", zapd::base64_alphabet::url_no_padding));
  CHECK_FALSE(zapd::base64_decode("ab+/", zapd::base64_alphabet::url_no_padding));
}

TEST_CASE("json_string keeps valid UTF-8 as it is and replaces each invalid sequence, as a replacing round trip does") {
  using nlohmann::json;
  const auto round_trip = [](std::string_view b) { return json::parse(zapd::dump_safe(json(std::string(b)))); };
  const std::string nul_inside("a\0b", 3);
  // Kept: nothing (also a view with no data pointer), ASCII with control bytes and NUL, 2-, 3-
  // and 4-byte forms, the last code point.
  for (std::string_view ok : {std::string_view(), std::string_view(""), std::string_view("text/plain; charset=utf-8"),
                              std::string_view(nul_inside), std::string_view("\t\x01\x1f\x7f\"\\"), std::string_view("caf\xC3\xA9"),
                              std::string_view("\xE2\x82\xAC \xEF\xBF\xBD \xEF\xBB\xBF"), std::string_view("\xF0\x9F\x98\x80"),
                              std::string_view("\xF4\x8F\xBF\xBF"), std::string_view("\xED\x9F\xBF\xEE\x80\x80")}) {
    CAPTURE(ok);
    const json j = zapd::json_string(ok);
    REQUIRE(j.is_string());
    CHECK(j.get<std::string>() == ok);
    CHECK(j == round_trip(ok));
  }
  // Replaced: overlong forms, surrogates, past U+10FFFF, 5-byte leads, lone continuation
  // bytes, truncated sequences (also at the end), 0xFE/0xFF.
  for (std::string_view bad : {std::string_view("\xC0\x80"), std::string_view("\xC1\xBF"), std::string_view("\xE0\x80\x80"),
                               std::string_view("\xE0\x9F\xBF"), std::string_view("\xF0\x80\x80\x80"), std::string_view("\xED\xA0\x80"),
                               std::string_view("\xED\xBF\xBF"), std::string_view("\xF4\x90\x80\x80"), std::string_view("\xF5\x80\x80\x80"),
                               std::string_view("\xF8\x88\x80\x80\x80"), std::string_view("a\x80" "b"), std::string_view("\xC3"),
                               std::string_view("x\xE2\x82"), std::string_view("\xF0\x9F\x98"), std::string_view("\xFE\xFF"),
                               std::string_view("ok \xC3\xA9 then \xC3(")}) {
    CAPTURE(bad);
    const json j = zapd::json_string(bad);
    REQUIRE(j.is_string());
    CHECK(j.get<std::string>() != bad);
    CHECK(j.get<std::string>().find("\xEF\xBF\xBD") != std::string::npos);  // U+FFFD
    CHECK(j == round_trip(bad));
    CHECK_NOTHROW(j.dump());
  }
}

// iso_time_ms formats 1970-9999 itself (the webhook path's receivedAt); it must agree with
// gmtime_r to the millisecond, leap days and year ends included.
TEST_CASE("iso_time_ms agrees with gmtime_r across 1970-9999") {
  auto reference = [](std::int64_t ms) {
    std::time_t secs = static_cast<std::time_t>(ms / 1000);
    std::tm tm{};
    gmtime_r(&secs, &tm);
    char b[64];
    std::snprintf(b, sizeof b, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
                  tm.tm_min, tm.tm_sec, static_cast<int>(ms % 1000));
    return std::string(b);
  };
  CHECK(zapd::iso_time_ms(0) == "1970-01-01T00:00:00.000Z");
  CHECK(zapd::iso_time_ms(1'764'000'000'123) == "2025-11-24T16:00:00.123Z");
  CHECK(zapd::iso_time_ms(951'782'400'000) == "2000-02-29T00:00:00.000Z");
  CHECK(zapd::iso_time_ms(253'402'300'799'999) == "9999-12-31T23:59:59.999Z");
  std::uint64_t x = 0x9E3779B97F4A7C15ull;  // a fixed sequence: the same values every run
  for (int i = 0; i < 200'000; ++i) {
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    const auto ms = static_cast<std::int64_t>(x % 253'402'300'800'000ull);
    INFO(ms);
    REQUIRE(zapd::iso_time_ms(ms) == reference(ms));
  }
  for (std::int64_t day = 0; day < 3'000'000'000'000; day += 86'400'000 * 7 + 1)  // every week's first and last millisecond
    for (std::int64_t ms : {day, day + 86'399'999}) {
      INFO(ms);
      REQUIRE(zapd::iso_time_ms(ms) == reference(ms));
    }
  // Outside 1970-9999: as before (gmtime_r), whatever that gives; no crash.
  CHECK(zapd::iso_time_ms(253'402'300'800'000) == reference(253'402'300'800'000));
  CHECK(zapd::iso_time_ms(-1).size() > 10);
  CHECK(zapd::iso_time_ms(std::numeric_limits<std::int64_t>::max()).size() > 10);
}
