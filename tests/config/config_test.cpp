#include <filesystem>
#include <fstream>
#include <sstream>

#include <catch2/catch.hpp>

#include "zapd/config/config.hpp"
#include "zapd_process.hpp"

using zapd::config::load;
using zapd::config::source;
using zapd::config::sources;

namespace {

std::string write_file(const std::string& text) {
  auto dir = zapd::test::temp_dir("zapd-config");
  auto path = dir + "/zapd.toml";
  std::ofstream(path) << text;
  return path;
}

source origin_of(const zapd::config::loaded& l, const std::string& key) {
  for (const auto& [k, s] : l.origin)
    if (k == key) return s;
  FAIL("no origin for " << key);
  return source::default_value;
}

}  // namespace

TEST_CASE("defaults serve on 127.0.0.1:8080 with data in ./data") {
  auto l = load({});
  REQUIRE(l.ok());
  CHECK(l->values.listen_host == "127.0.0.1");
  CHECK(l->values.listen_port == 8080);
  CHECK(l->values.data_dir == "./data");
  CHECK(l->values.store_synchronous == "full");
  CHECK(origin_of(*l, "server.listen") == source::default_value);
}

TEST_CASE("precedence: defaults < file < env < flags") {
  auto file = write_file(
      "data_dir = \"/srv/zapd\"\n"
      "[server]\nlisten = \"127.0.0.1:1000\"\nthreads = 3\n"
      "[store]\nsynchronous = \"normal\"\n");
  sources s;
  s.file = file;
  s.env = {{"ZAPD_SERVER_LISTEN", "127.0.0.1:2000"}, {"ZAPD_SERVER_THREADS", "5"}, {"HOME", "/root"}};
  s.flags = {{"server.listen", "127.0.0.1:3000"}};
  auto l = load(s);
  REQUIRE(l.ok());
  CHECK(l->values.listen_port == 3000);            // flag beats env and file
  CHECK(l->values.server_threads == 5);            // env beats file
  CHECK(l->values.store_synchronous == "normal");  // file beats default
  CHECK(l->values.data_dir == "/srv/zapd");
  CHECK(l->values.store_readers == 4);  // default stays
  CHECK(origin_of(*l, "server.listen") == source::flag);
  CHECK(origin_of(*l, "server.threads") == source::env);
  CHECK(origin_of(*l, "store.synchronous") == source::file);
}

TEST_CASE("bad config is one error naming the file, key and value") {
  SECTION("a file that does not parse") {
    auto file = write_file("[server\nlisten = 1\n");
    auto l = load({file, {}, {}});
    REQUIRE_FALSE(l.ok());
    CHECK(l.err().message.find(file + ":1") != std::string::npos);
  }
  SECTION("an unknown key, with its line") {
    auto file = write_file("[server]\nlisten = \"127.0.0.1:1\"\nlisen = \"x\"\n");
    auto l = load({file, {}, {}});
    REQUIRE_FALSE(l.ok());
    CHECK(l.err().message == file + ":3: unknown key 'server.lisen'");
  }
  SECTION("a bad port") {
    auto l = load({std::nullopt, {}, {{"server.listen", "127.0.0.1:99999"}}});
    REQUIRE_FALSE(l.ok());
    CHECK(l.err().message.find("server.listen") != std::string::npos);
    CHECK(l.err().message.find("99999") != std::string::npos);
  }
  SECTION("a wrong type in the file") {
    auto file = write_file("[server]\nthreads = \"four\"\n");
    auto l = load({file, {}, {}});
    REQUIRE_FALSE(l.ok());
    CHECK(l.err().message.find("server.threads") != std::string::npos);
  }
  SECTION("a value outside its choices from the environment") {
    auto l = load({std::nullopt, {{"ZAPD_STORE_SYNCHRONOUS", "sometimes"}}, {}});
    REQUIRE_FALSE(l.ok());
    CHECK(l.err().message.find("ZAPD_STORE_SYNCHRONOUS") != std::string::npos);
    CHECK(l.err().message.find("sometimes") != std::string::npos);
  }
  SECTION("a missing file") {
    auto l = load({std::string("/nonexistent/zapd.toml"), {}, {}});
    REQUIRE_FALSE(l.ok());
    CHECK(l.err().message.find("/nonexistent/zapd.toml") != std::string::npos);
  }
}

TEST_CASE("config/zapd.toml documents every key and loads as is") {
  std::string path = std::string(ZAPD_SOURCE_DIR) + "/config/zapd.toml";
  std::ifstream in(path);
  REQUIRE(in.good());
  std::stringstream ss;
  ss << in.rdbuf();
  std::string text = ss.str();
  for (const auto& k : zapd::config::key_table()) {
    auto leaf = k.name.substr(k.name.rfind('.') + 1);
    INFO("key " << k.name);
    CHECK(text.find(leaf + " =") != std::string::npos);
    CHECK(text.find(k.env) != std::string::npos);  // the env name is documented next to it
  }
  auto l = load({path, {}, {}});
  INFO((l.ok() ? std::string() : l.err().message));
  CHECK(l.ok());
}

TEST_CASE("the rendered effective config loads back to the same values") {
  auto l = load({std::nullopt, {}, {{"server.threads", "7"}, {"data_dir", "/var/lib/zapd"}}});
  REQUIRE(l.ok());
  std::string text = zapd::config::render(*l);
  CHECK(text.find("threads = 7  # flag") != std::string::npos);
  auto again = load({write_file(text), {}, {}});
  REQUIRE(again.ok());
  CHECK(again->values.server_threads == 7);
  CHECK(again->values.data_dir == "/var/lib/zapd");
}
