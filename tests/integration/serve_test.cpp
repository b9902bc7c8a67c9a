// The real zapd binary, started on 127.0.0.1:0 with a temp data dir, driven over HTTP.
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <thread>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>
#include <catch2/catch.hpp>

#include "raw_http.hpp"
#include "api_helpers.hpp"
#include "zapd/store/connection.hpp"
#include "zapd_process.hpp"

using namespace zapd::test;
namespace fs = std::filesystem;

TEST_CASE("serve: health, readiness and JSON errors") {
  zapd_process z;
  struct scenario {
    const char* name;
    const char* method;
    const char* target;
    int status;
    const char* code;  // expected error.code, or "" for success
  };
  std::vector<scenario> table = {
      {"healthz", "GET", "/healthz", 200, ""},
      {"readyz writes through the writer", "GET", "/readyz", 200, ""},
      {"unknown API path", "GET", "/api/v1/no/such/path", 404, "not_found"},  // other paths are the web UI (ui_test)
      {"wrong method", "DELETE", "/healthz", 405, "method_not_allowed"},
  };
  for (const auto& s : table) {
    INFO(s.name);
    auto r = z.request(s.method, s.target);
    CHECK(r.status == s.status);
    CHECK(r.header("content-type") == "application/json");
    auto j = r.json();
    if (*s.code) {
      CHECK(j["error"]["code"] == s.code);
      CHECK(j["error"]["message"].is_string());
    } else {
      CHECK_FALSE(j.contains("error"));
    }
  }
  CHECK(z.request("DELETE", "/healthz").header("allow") == "GET");
  // The request log names method, path, status and duration.
  auto log = z.log();
  CHECK(log.find("http.request method=GET path=/api/v1/no/such/path status=404 ms=") != std::string::npos);
  CHECK(fs::exists(z.data_dir() + "/zapd.db"));
}

TEST_CASE("serve: /readyz answers 503 while the database refuses writes, 200 again after") {
  zapd_process z;
  REQUIRE(z.request("GET", "/readyz").status == 200);
  {
    // Another process holds SQLite's write lock: zapd's writer waits its busy timeout (5 s)
    // and gives up, as it would on a locked or broken database file.
    auto other = zapd::store::connection::open(z.data_dir() + "/zapd.db", zapd::store::open_mode::read_write_create);
    REQUIRE(other.ok());
    REQUIRE(other->exec("BEGIN IMMEDIATE").ok());
    auto r = z.request("GET", "/readyz");
    INFO(r.body);
    CHECK(r.status == 503);
    CHECK(r.json()["error"]["code"] == "unavailable");
    CHECK(r.json()["error"]["message"].get<std::string>().starts_with("database is not writable"));
    CHECK(z.request("GET", "/healthz").status == 200);  // the process itself is fine
    REQUIRE(other->exec("ROLLBACK").ok());
  }
  CHECK(z.request("GET", "/readyz").status == 200);
}

TEST_CASE("serve: an oversized body gets 413 and the server keeps serving") {
  zapd_process z({"--set", "server.body_limit=1024"});
  auto r = z.request("POST", "/healthz", std::string(4096, 'x'));
  CHECK(r.status == 413);
  CHECK(r.json()["error"]["code"] == "payload_too_large");
  CHECK(z.request("GET", "/healthz").status == 200);
}

TEST_CASE("serve: malformed requests get 400 JSON, not a crash") {
  zapd_process z;
  for (std::string bad : {"GARBAGE\r\n\r\n", "GET /healthz HTTP/9.9\r\n\r\n", "GET /x HTTP/1.1\r\nBad Header\r\n\r\n",
                          "POST /healthz HTTP/1.1\r\nContent-Length: abc\r\n\r\n"}) {
    INFO(bad);
    auto answer = raw_exchange(z.port(), bad);
    CHECK(answer.rfind("HTTP/1.1 400", 0) == 0);
    CHECK(answer.find(R"("code":"invalid_argument")") != std::string::npos);
  }
  CHECK(z.request("GET", "/healthz").status == 200);
}

namespace {

using exchange = zapd::test::raw_answer;

// Sends `bytes` on a new connection and reads until the server closes it or 5 s pass.
exchange send_raw(std::uint16_t port, const std::string& bytes) { return zapd::test::send_raw_until_close(port, bytes); }

std::size_t count_of(const std::string& text, const std::string& what) {
  std::size_t n = 0;
  for (auto at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

}  // namespace

TEST_CASE("serve: framing a proxy could read differently is refused with 400 and the connection closed") {
  zapd_process z;
  struct scenario {
    const char* name;
    std::string header;  // the request up to its blank line
    std::string body;
    const char* message;  // part of error.message
  };
  const std::string post = "POST /healthz HTTP/1.1\r\nHost: x\r\n";
  const std::string chunk = "5\r\nhello\r\n0\r\n\r\n";
  std::vector<scenario> table = {
      {"chunked after another coding", post + "Transfer-Encoding: gzip, chunked\r\n", chunk, "Transfer-Encoding must be exactly chunked"},
      {"chunked before another coding", post + "Transfer-Encoding: chunked, gzip\r\n", chunk, "Transfer-Encoding must be exactly chunked"},
      {"another coding alone", post + "Transfer-Encoding: gzip\r\n", chunk, "Transfer-Encoding must be exactly chunked"},
      {"identity", post + "Transfer-Encoding: identity\r\n", chunk, "Transfer-Encoding must be exactly chunked"},
      {"two lines", post + "Transfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n", chunk, "Transfer-Encoding must be exactly chunked"},
      {"chunked then Content-Length", post + "Transfer-Encoding: chunked\r\nContent-Length: 5\r\n", chunk, "both Content-Length and Transfer-Encoding"},
      {"Content-Length then chunked", post + "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n", chunk, "both Content-Length and Transfer-Encoding"},
      {"another coding with Content-Length", post + "Transfer-Encoding: gzip\r\nContent-Length: 5\r\n", "hello", "both Content-Length and Transfer-Encoding"},
      {"folded with a space", "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Note: a\r\n b\r\n", "", "folded header lines"},
      {"folded with a tab", "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Note: a\r\n\tb\r\n", "", "folded header lines"},
      {"folded from an empty first line", "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Note:\r\n b\r\n", "", "folded header lines"},
      {"folded Transfer-Encoding", post + "Transfer-Encoding:\r\n chunked\r\n", chunk, "folded header lines"},
  };
  // What a front proxy might take as the body: if zapd read it as a second request, it answers twice.
  const std::string smuggled = "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n";
  for (const auto& s : table) {
    INFO(s.name);
    auto r = send_raw(z.port(), s.header + "\r\n" + s.body + smuggled);
    INFO(r.answer);
    CHECK(r.answer.starts_with("HTTP/1.1 400"));
    CHECK(r.answer.find(R"("code":"invalid_argument")") != std::string::npos);
    CHECK(r.answer.find(s.message) != std::string::npos);
    CHECK(r.answer.find("Connection: close") != std::string::npos);
    CHECK(count_of(r.answer, "HTTP/1.1 ") == 1);
    CHECK(r.closed);
  }
  // Plain chunked, in any case and with whitespace around it, is still fine.
  auto ok = send_raw(z.port(), post + "Connection: close\r\nTransfer-Encoding: \t CHUNKED \r\n\r\n" + chunk);
  INFO(ok.answer);
  CHECK(ok.answer.starts_with("HTTP/1.1 405"));  // framed fine; /healthz takes no POST
  CHECK(z.request("GET", "/healthz").status == 200);
}

TEST_CASE("serve: the database files are owner-only and the access log does not name a webhook's zap") {
  const std::string dir = temp_dir("zapd-private") + "/data";
  fs::create_directories(dir);
  fs::permissions(dir, fs::perms(0755), fs::perm_options::replace);
  const std::vector<std::string> files = {dir + "/zapd.db", dir + "/zapd.db-wal", dir + "/zapd.db-shm"};
  auto mode_of = [](const std::string& path) {
    struct stat st{};
    REQUIRE(::stat(path.c_str(), &st) == 0);
    return st.st_mode & 0777;
  };
  struct umask_guard {
    mode_t saved = ::umask(022);  // zapd inherits it
    ~umask_guard() { ::umask(saved); }
  } guard;
  std::string zap;
  std::string user_id;
  {
    zapd_process z(k_fast_hashing, {}, dir);
    auto a = sign_up(z, "ada@example.com");
    user_id = a.user_id;
    zap = make_zap(z, a, nlohmann::json::array());
    fire(z, a, zap);
    auto extra = z.request("POST", "/hooks/catch/" + a.user_id + "/" + zap + "/more?token=querysecret", "{}");
    CHECK(extra.status == 404);
    for (const auto& f : files) {
      INFO(f);
      CHECK(mode_of(f) == 0600);
    }
    // The access line is written after the answer is sent: wait for the last one.
    const std::string line404 = "path=/hooks/catch/" + a.user_id + "/\u2026 status=404";
    auto log = z.log();
    for (int i = 0; i < 200 && log.find(line404) == std::string::npos; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
      log = z.log();
    }
    CHECK(log.find("path=/hooks/catch/" + a.user_id + "/\u2026 status=200") != std::string::npos);
    CHECK(log.find(line404) != std::string::npos);
    CHECK(log.find(zap) == std::string::npos);
    CHECK(log.find("querysecret") == std::string::npos);
    REQUIRE(z.terminate() == 0);
  }
  // Files an older zapd (or a crash) left readable by others are made owner-only at start.
  {
    std::ofstream(files[1]) << "";  // SQLite ignores an empty WAL
    std::ofstream(files[2]) << "";
    for (const auto& f : files) fs::permissions(f, fs::perms(0644), fs::perm_options::replace);
    zapd_process z(k_fast_hashing, {}, dir);
    CHECK(z.request("GET", "/readyz").status == 200);
    for (const auto& f : files) {
      INFO(f);
      CHECK(mode_of(f) == 0600);
    }
  }
}

TEST_CASE("serve: SIGTERM lets an in-flight request finish, then exits 0") {
  zapd_process z;
  namespace asio = boost::asio;
  asio::io_context ioc;
  asio::ip::tcp::socket sock(ioc);
  sock.connect({asio::ip::make_address("127.0.0.1"), z.port()});
  // Headers and half the body: the request is in flight when the signal arrives.
  std::string head = "POST /healthz HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n\r\n12345";
  asio::write(sock, asio::buffer(head));
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  kill(z.pid(), SIGTERM);
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  asio::write(sock, asio::buffer(std::string("67890")));
  std::string answer;
  std::array<char, 4096> buf{};
  boost::system::error_code ec;
  for (;;) {
    auto n = sock.read_some(asio::buffer(buf), ec);
    answer.append(buf.data(), n);
    if (ec) break;
  }
  CHECK(answer.rfind("HTTP/1.1 405", 0) == 0);
  CHECK(answer.find("Connection: close") != std::string::npos);
  CHECK(z.terminate(0) == 0);  // already signalled: just wait
  auto log = z.log();
  CHECK(log.find("zapd.stopping signal=SIGTERM") != std::string::npos);
  CHECK(log.find("zapd.stopped") != std::string::npos);
}

TEST_CASE("serve: SIGINT with idle keep-alive connections exits 0 promptly") {
  zapd_process z;
  namespace asio = boost::asio;
  asio::io_context ioc;
  asio::ip::tcp::socket sock(ioc);
  sock.connect({asio::ip::make_address("127.0.0.1"), z.port()});
  asio::write(sock, asio::buffer(std::string("GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")));
  std::array<char, 1024> buf{};
  sock.read_some(asio::buffer(buf));  // answered; the connection stays open and idle
  auto t0 = std::chrono::steady_clock::now();
  CHECK(z.terminate(SIGINT) == 0);
  CHECK(std::chrono::steady_clock::now() - t0 < std::chrono::seconds(5));
}

TEST_CASE("cli: bad configuration exits 2 with one line, before anything is written") {
  auto dir = temp_dir("zapd-cli");
  auto data = dir + "/data";
  struct scenario {
    const char* name;
    std::vector<std::string> args;
    std::vector<std::pair<std::string, std::string>> env;
    std::string message_has;
  };
  std::ofstream(dir + "/broken.toml") << "[server\n";
  std::ofstream(dir + "/unknown.toml") << "[server]\nlisten_on = \"x\"\n";
  std::ofstream(dir + "/plainfile") << "x";
  std::vector<scenario> table = {
      {"unparsable file", {"--config", dir + "/broken.toml", "--data-dir", data, "serve"}, {}, dir + "/broken.toml:1"},
      {"unknown key", {"--config", dir + "/unknown.toml", "--data-dir", data, "serve"}, {}, "unknown key 'server.listen_on'"},
      {"bad port flag", {"--listen", "127.0.0.1:70000", "--data-dir", data, "serve"}, {}, "bad port '70000'"},
      {"bad port env", {"--data-dir", data, "serve"}, {{"ZAPD_SERVER_LISTEN", "127.0.0.1:http"}}, "bad port 'http'"},
      {"unknown flag", {"--colour", "serve"}, {}, "unknown flag '--colour'"},
      {"unwritable data dir", {"--data-dir", dir + "/plainfile/data", "serve"}, {}, dir + "/plainfile/data"},
      {"config file via env", {"--data-dir", data, "serve"}, {{"ZAPD_CONFIG", dir + "/unknown.toml"}}, "unknown key"},
  };
  for (const auto& s : table) {
    INFO(s.name);
    auto r = run_zapd(s.args, "", s.env);
    CHECK(r.exit_code == 2);
    CHECK(r.err.find(s.message_has) != std::string::npos);
    CHECK(std::count(r.err.begin(), r.err.end(), '\n') <= 2);
    CHECK_FALSE(fs::exists(data));
  }
}

TEST_CASE("cli: config check prints effective values and their sources") {
  auto r = run_zapd({"--listen", "0.0.0.0:9000", "config", "check"}, "", {{"ZAPD_STORE_READERS", "2"}});
  REQUIRE(r.exit_code == 0);
  CHECK(r.out.find("listen = \"0.0.0.0:9000\"  # flag") != std::string::npos);
  CHECK(r.out.find("readers = 2  # env") != std::string::npos);
  CHECK(r.out.find("data_dir = \"./data\"  # default") != std::string::npos);
  CHECK_FALSE(fs::exists("./data"));  // config check writes nothing (run_zapd uses a temp cwd)
}

TEST_CASE("cli: version, help and migrate") {
  auto v = run_zapd({"version"});
  CHECK(v.exit_code == 0);
  CHECK(v.out.rfind("zapd ", 0) == 0);
  for (std::string cmd : {"serve", "migrate", "config", "version"}) {
    INFO(cmd);
    auto h = run_zapd({cmd, "--help"});
    CHECK(h.exit_code == 0);
    CHECK(h.out.find("usage: zapd " + cmd) != std::string::npos);
  }
  auto top = run_zapd({"--help"});
  CHECK(top.exit_code == 0);
  CHECK(top.out.find("commands:") != std::string::npos);
  CHECK(run_zapd({"frobnicate"}).exit_code == 2);

  auto dir = temp_dir("zapd-migrate");
  auto status = run_zapd({"--data-dir", dir, "migrate", "status"});
  CHECK(status.exit_code == 0);
  CHECK(status.out.find("0001_init") != std::string::npos);
  CHECK(status.out.find("pending") != std::string::npos);
  auto up = run_zapd({"--data-dir", dir, "migrate", "up"});
  CHECK(up.exit_code == 0);
  CHECK(up.out.find("applied") != std::string::npos);
  auto again = run_zapd({"--data-dir", dir, "migrate"});
  CHECK(again.out.find("applied 0 migration(s)") != std::string::npos);
  auto after = run_zapd({"--data-dir", dir, "migrate", "status"});
  CHECK(after.out.find("0 pending") != std::string::npos);
}

TEST_CASE("serve: a second start on the same data dir reuses the database and secret") {
  auto dir = temp_dir("zapd-restart");
  std::string secret;
  {
    zapd_process z({}, {}, dir + "/data");
    CHECK(z.request("GET", "/readyz").status == 200);
    std::ifstream(dir + "/data/secret.key") >> secret;
    CHECK(z.terminate() == 0);
  }
  struct stat st{};
  REQUIRE(stat((dir + "/data/secret.key").c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);
  zapd_process z2({}, {}, dir + "/data");
  CHECK(z2.request("GET", "/readyz").status == 200);
  std::string again;
  std::ifstream(dir + "/data/secret.key") >> again;
  CHECK(again == secret);
  CHECK(z2.terminate() == 0);
}

TEST_CASE("serve: a second zapd on a data dir in use is refused with a clear error") {
  auto dir = temp_dir("zapd-lock");
  zapd_process z({}, {}, dir + "/data");
  auto second = run_zapd({"--listen", "127.0.0.1:0", "--data-dir", dir + "/data", "serve"});
  CHECK(second.exit_code == 2);
  CHECK_THAT(second.err, Catch::Contains("another zapd is using this data dir"));
  CHECK(z.request("GET", "/readyz").status == 200);
  // A killed process leaves no stale lock behind.
  REQUIRE(z.terminate(SIGKILL) == 128 + SIGKILL);
  zapd_process again({}, {}, dir + "/data");
  CHECK(again.request("GET", "/readyz").status == 200);
}

TEST_CASE("serve: a bad actions.http.allow list stops start-up naming the key") {
  auto r = run_zapd({"--listen", "127.0.0.1:0", "--data-dir", temp_dir("zapd-allow") + "/data", "--set",
                     "actions.http.allow=10.0.0.0/33", "serve"});
  CHECK(r.exit_code == 2);
  CHECK_THAT(r.err, Catch::Contains("actions.http.allow"));
}
