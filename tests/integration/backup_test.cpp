// `zapd backup`, `zapd restore` and `zapd healthcheck` against the real binary and a real
// server: a backup taken under webhook load holds every run acknowledged before it started,
// and restore refuses what it must.
#include <sys/stat.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <thread>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <catch2/catch.hpp>

#include "api_helpers.hpp"
#include "http_sink.hpp"
#include "zapd/store/connection.hpp"
#include "zapd_process.hpp"

using namespace zapd::test;
namespace fs = std::filesystem;
using clock_type = std::chrono::steady_clock;

namespace {

// No rate limits (the load thread fires as fast as the server answers), fast hashing, a local sink.
std::vector<std::string> load_args() {
  return serve_args({"actions.http.allow=127.0.0.1", "hooks.free_zap_rate=0", "hooks.free_user_rate=0",
                     "store.synchronous=normal"});
}

account sign_in(const zapd_process& z, const std::string& email) {
  auto in = z.request("POST", "/api/v1/user/signin",
                      nlohmann::json{{"username", email}, {"password", "correct horse battery"}}.dump());
  REQUIRE(in.status == 200);
  account a;
  a.token = in.json()["token"];
  return a;
}

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

unsigned mode_of(const std::string& path) {
  struct stat st{};
  REQUIRE(::stat(path.c_str(), &st) == 0);
  return st.st_mode & 0777;
}

// A data dir holding a few runs, its server stopped: what the refusal tests restore into.
struct stopped_server {
  std::string data_dir;
  std::string backup;
};
stopped_server server_with_backup() {
  std::string dir = temp_dir("zapd-backup");
  stopped_server out{dir + "/data", dir + "/zapd.backup"};
  zapd_process z(k_fast_hashing, {}, out.data_dir);
  auto a = sign_up(z, "owner@example.com");
  auto zap = make_zap(z, a, nlohmann::json::array());
  for (int i = 0; i < 3; ++i) fire(z, a, zap);
  auto b = run_zapd({"--data-dir", out.data_dir, "backup", out.backup});
  INFO(b.err);
  REQUIRE(b.exit_code == 0);
  REQUIRE(z.terminate() == 0);
  return out;
}

}  // namespace

TEST_CASE("backup: taken under webhook load, restored into a new data dir, holds every run acknowledged before it started") {
  http_sink sink;
  std::string dir = temp_dir("zapd-backup");
  std::string file = dir + "/zapd.backup";
  zapd_process z(load_args(), {}, dir + "/data");
  auto a = sign_up(z, "load@example.com");
  auto zap = make_zap(z, a, nlohmann::json::array({{{"availableActionId", "http"}, {"actionMetadata", {{"url", sink.url("/hook")}}}}}));
  const std::string hook = "/hooks/catch/" + a.user_id + "/" + zap;
  // ~2 KiB per run: a few MB of database, so the copy takes several steps and shows progress.
  const std::string body = nlohmann::json{{"comment", {{"email", "ada@example.com"}, {"text", std::string(2000, 'x')}}}}.dump();

  struct acked {
    std::string run_id;
    clock_type::time_point at;
  };
  std::mutex mu;
  std::vector<acked> runs;
  std::atomic<bool> stop{false};
  std::atomic<int> errors{0};
  std::thread load([&] {
    while (!stop) {
      try {
        auto r = http_request(z.port(), "POST", hook, body, {{"Content-Type", "application/json"}});
        auto at = clock_type::now();
        if (r.status != 200) {
          ++errors;
          continue;
        }
        std::lock_guard<std::mutex> lk(mu);
        runs.push_back({r.json()["runId"], at});
      } catch (const std::exception&) {
        ++errors;
      }
    }
  });
  auto count = [&] {
    std::lock_guard<std::mutex> lk(mu);
    return runs.size();
  };
  auto deadline = clock_type::now() + std::chrono::seconds(60);
  while (count() < 2000 && clock_type::now() < deadline) std::this_thread::sleep_for(std::chrono::milliseconds(20));

  const auto started = clock_type::now();
  auto b = run_zapd({"--data-dir", z.data_dir(), "backup", file});
  const auto finished = clock_type::now();
  std::this_thread::sleep_for(std::chrono::milliseconds(300));  // load continues after the backup
  stop = true;
  load.join();
  INFO(b.err);
  REQUIRE(b.exit_code == 0);
  CHECK(errors == 0);
  CHECK(b.err.find("backup: 100% (") != std::string::npos);  // progress for a multi-step copy
  CHECK(b.out.find("backed up ") != std::string::npos);
  CHECK(mode_of(file) == 0600);
  CHECK_FALSE(fs::exists(file + ".tmp"));
  REQUIRE(z.terminate() == 0);

  std::vector<std::string> before, after;
  for (const auto& r : runs) {
    if (r.at < started) before.push_back(r.run_id);
    if (r.at > finished) after.push_back(r.run_id);
  }
  INFO("runs acknowledged before the backup: " << before.size() << ", after it: " << after.size());
  REQUIRE(before.size() >= 2000);
  REQUIRE_FALSE(after.empty());

  std::string fresh = temp_dir("zapd-restored") + "/data";
  auto r = run_zapd({"--data-dir", fresh, "restore", file});
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  CHECK(mode_of(fresh + "/zapd.db") == 0600);
  zapd_process restored(load_args(), {}, fresh);
  auto again = sign_in(restored, "load@example.com");
  std::size_t missing = 0;
  for (const auto& id : before) missing += restored.request("GET", "/api/v1/runs/" + id, "", bearer(again.token)).status == 200 ? 0 : 1;
  CHECK(missing == 0);
  // A snapshot: what was acknowledged after the backup had finished is not in it.
  std::size_t present = 0;
  for (const auto& id : after) present += restored.request("GET", "/api/v1/runs/" + id, "", bearer(again.token)).status == 200 ? 1 : 0;
  CHECK(present == 0);
}

TEST_CASE("backup: refuses an existing file unless --force, and a data dir without a database") {
  auto s = server_with_backup();
  const std::string before = slurp(s.backup);
  auto again = run_zapd({"--data-dir", s.data_dir, "backup", s.backup});
  CHECK(again.exit_code == 2);
  CHECK(again.err.find("exists (use --force") != std::string::npos);
  CHECK(slurp(s.backup) == before);
  auto forced = run_zapd({"--data-dir", s.data_dir, "backup", "--force", s.backup});
  INFO(forced.err);
  CHECK(forced.exit_code == 0);

  auto none = run_zapd({"--data-dir", temp_dir("zapd-empty"), "backup", s.backup + ".2"});
  CHECK(none.exit_code == 2);
  CHECK(none.err.find("no database at") != std::string::npos);
  CHECK_FALSE(fs::exists(s.backup + ".2"));
  CHECK(run_zapd({"backup"}).exit_code == 2);  // no FILE
}

TEST_CASE("restore: refuses while a server holds the data dir") {
  auto s = server_with_backup();
  zapd_process z(k_fast_hashing, {}, s.data_dir);
  auto r = run_zapd({"--data-dir", s.data_dir, "restore", s.backup});
  CHECK(r.exit_code == 2);
  CHECK(r.err.find("refusing: a zapd process is using") != std::string::npos);
  for (const auto& e : fs::directory_iterator(s.data_dir)) CHECK(e.path().filename().string().find("before-restore") == std::string::npos);
  CHECK(z.request("GET", "/readyz").status == 200);
}

TEST_CASE("restore: refuses a damaged file, a file that is not zapd's, and a newer zapd's backup") {
  auto s = server_with_backup();
  const std::string db = s.data_dir + "/zapd.db";
  const std::string original = slurp(db);
  const std::string good = slurp(s.backup);
  const std::string dir = fs::path(s.backup).parent_path().string();
  auto write = [](const std::string& path, const std::string& bytes) { std::ofstream(path, std::ios::binary) << bytes; };

  std::string damaged = good;
  REQUIRE(damaged.size() > 3 * 4096);
  for (std::size_t i = 4096 + 100; i < 3 * 4096; i += 7) damaged[i] = static_cast<char>(i * 31);  // pages 2 and 3
  write(dir + "/damaged.db", damaged);
  write(dir + "/noise.db", std::string(20000, '\x5a'));
  write(dir + "/empty.db", "");
  {
    auto c = zapd::store::connection::open(dir + "/foreign.db", zapd::store::open_mode::read_write_create);
    REQUIRE(c);
    REQUIRE(c->exec("CREATE TABLE t(x)"));
  }
  write(dir + "/newer.db", good);
  {
    auto c = zapd::store::connection::open(dir + "/newer.db", zapd::store::open_mode::read_write_create);
    REQUIRE(c);
    REQUIRE(c->exec("INSERT INTO schema_migrations(version, name) VALUES(9999, 'from_the_future')"));
  }
  struct scenario {
    const char* file;
    const char* says;
  };
  const scenario table[] = {
      {"damaged.db", ""},  // integrity check, or SQLite cannot read it at all: either way refused
      {"noise.db", "not a readable SQLite database"},
      {"empty.db", "not a zapd database"},
      {"foreign.db", "not a zapd database"},
      {"newer.db", "schema version 9999"},
      {"missing.db", "no such file"},
  };
  for (const auto& sc : table) {
    INFO(sc.file);
    auto r = run_zapd({"--data-dir", s.data_dir, "restore", dir + "/" + sc.file});
    INFO(r.err);
    CHECK(r.exit_code == 2);
    CHECK(r.err.find("refusing") != std::string::npos);
    CHECK(r.err.find(sc.says) != std::string::npos);
    CHECK(std::count(r.err.begin(), r.err.end(), '\n') == 1);  // one line
    CHECK(slurp(db) == original);                              // nothing moved, nothing left behind
    CHECK_FALSE(fs::exists(db + ".restoring"));
  }

  // The good one is installed; the database it replaced is kept aside.
  auto ok = run_zapd({"--data-dir", s.data_dir, "restore", s.backup});
  INFO(ok.err);
  REQUIRE(ok.exit_code == 0);
  std::vector<std::string> aside;
  for (const auto& e : fs::directory_iterator(s.data_dir))
    if (e.path().filename().string().starts_with("zapd.db.before-restore-")) aside.push_back(e.path().string());
  REQUIRE(aside.size() == 1);
  CHECK(slurp(aside[0]) == original);
  CHECK(slurp(db) == good);
  CHECK(ok.out.find(aside[0]) != std::string::npos);
  zapd_process z(k_fast_hashing, {}, s.data_dir);  // serves the restored database
  auto a = sign_in(z, "owner@example.com");
  auto list = z.request("GET", "/api/v1/runs", "", bearer(a.token));
  REQUIRE(list.status == 200);
  CHECK(list.json()["runs"].size() == 3);
}

TEST_CASE("healthcheck: 0 when /readyz answers 200, 1 with a one-line reason otherwise") {
  zapd_process z(k_fast_hashing);
  const std::string port = std::to_string(z.port());
  auto ok = run_zapd({"--listen", "127.0.0.1:" + port, "healthcheck"});
  INFO(ok.err);
  CHECK(ok.exit_code == 0);
  CHECK(run_zapd({"--listen", "0.0.0.0:" + port, "healthcheck"}).exit_code == 0);  // a wildcard is asked on loopback
  CHECK(run_zapd({"healthcheck"}, "", {{"ZAPD_SERVER_LISTEN", "127.0.0.1:" + port}}).exit_code == 0);

  http_sink sink;
  sink.on("/readyz", sink_reply::json(R"({"error":{"code":"unavailable"}})", 503));
  auto not_ready = run_zapd({"--listen", "127.0.0.1:" + std::to_string(sink.port()), "healthcheck"});
  CHECK(not_ready.exit_code == 1);
  CHECK(not_ready.err.find("answered 503") != std::string::npos);
  CHECK(std::count(not_ready.err.begin(), not_ready.err.end(), '\n') == 1);

  // A listener that never answers: the timeout ends it.
  boost::asio::io_context ioc;
  boost::asio::ip::tcp::acceptor silent(ioc, {boost::asio::ip::make_address("127.0.0.1"), 0});
  auto t0 = clock_type::now();
  auto hung = run_zapd({"--listen", "127.0.0.1:" + std::to_string(silent.local_endpoint().port()), "healthcheck", "--timeout", "0.5"});
  CHECK(hung.exit_code == 1);
  CHECK(hung.err.find("no answer within 500 ms") != std::string::npos);
  CHECK(clock_type::now() - t0 < std::chrono::seconds(3));

  z.terminate();
  auto down = run_zapd({"--listen", "127.0.0.1:" + port, "healthcheck"});
  CHECK(down.exit_code == 1);
  CHECK(down.err.find("/readyz") != std::string::npos);
  CHECK(run_zapd({"--listen", "nonsense", "healthcheck"}).exit_code == 1);  // never Docker's reserved 2
  CHECK(run_zapd({"healthcheck", "--timeout", "abc"}).exit_code == 2);      // a usage error is still one
}
