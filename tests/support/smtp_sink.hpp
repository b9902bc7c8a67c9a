#pragma once
// A real SMTP server for tests: tests/support/smtp_sink.py (Debian's python3-aiosmtpd) run by
// /usr/bin/python3 (the PATH python may be one without aiosmtpd) on 127.0.0.1:0. Each
// accepted message is one JSON object (see the script): envelope, AUTH login, raw content and
// the parsed message (decoded subject, headers, text, html).
#include <signal.h>
#include <spawn.h>
#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "zapd_process.hpp"

extern char** environ;

namespace zapd::test {

struct smtp_sink_options {
  std::vector<std::string> reject;  // RCPT answered 550
  std::vector<std::string> defer;   // RCPT answered 451
  std::string auth;                 // "user:password": AUTH required
};

class smtp_sink {
 public:
  explicit smtp_sink(smtp_sink_options o = {}) {
    out_ = temp_dir("zapd-smtp") + "/messages.jsonl";
    std::vector<std::string> args = {"/usr/bin/python3", std::string(ZAPD_SOURCE_DIR) + "/tests/support/smtp_sink.py", "--out", out_};
    for (const auto& a : o.reject) args.insert(args.end(), {"--reject", a});
    for (const auto& a : o.defer) args.insert(args.end(), {"--defer", a});
    if (!o.auth.empty()) args.insert(args.end(), {"--auth", o.auth});
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    int fds[2];
    if (pipe(fds) != 0) throw std::runtime_error("pipe failed");
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, fds[1], 1);
    posix_spawn_file_actions_addclose(&fa, fds[0]);
    posix_spawn_file_actions_addopen(&fa, 2, (out_ + ".stderr").c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    const int rc = posix_spawn(&pid_, argv[0], &fa, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&fa);
    close(fds[1]);
    if (rc != 0) {
      close(fds[0]);
      throw std::runtime_error("cannot start /usr/bin/python3 (python3-aiosmtpd: packaging/install-deps.sh)");
    }
    std::string line;
    char c;
    while (read(fds[0], &c, 1) == 1 && c != '\n') line += c;
    close(fds[0]);
    if (line.empty()) {
      std::ifstream err(out_ + ".stderr");
      std::string text((std::istreambuf_iterator<char>(err)), {});
      throw std::runtime_error("smtp_sink.py did not start: " + text);
    }
    port_ = static_cast<std::uint16_t>(std::stoi(line));
  }
  ~smtp_sink() { stop(); }
  smtp_sink(const smtp_sink&) = delete;
  smtp_sink& operator=(const smtp_sink&) = delete;

  void stop() {
    if (pid_ <= 0) return;
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }

  std::uint16_t port() const { return port_; }
  std::string url() const { return "smtp://127.0.0.1:" + std::to_string(port_); }

  std::vector<nlohmann::json> messages() const {
    std::vector<nlohmann::json> out;
    std::ifstream in(out_);
    std::string line;
    while (std::getline(in, line))
      if (!line.empty()) out.push_back(nlohmann::json::parse(line));
    return out;
  }

  /// Waits until at least `n` messages arrived (or `timeout`).
  std::vector<nlohmann::json> wait_for(std::size_t n, std::chrono::milliseconds timeout = std::chrono::seconds(10)) const {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    auto m = messages();
    while (m.size() < n && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
      m = messages();
    }
    return m;
  }

 private:
  std::string out_;
  pid_t pid_ = -1;
  std::uint16_t port_ = 0;
};

}  // namespace zapd::test
