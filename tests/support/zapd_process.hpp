#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

namespace zapd::test {

/// A fresh temporary directory (removed by the caller if it wants; tests leave them in /tmp).
std::string temp_dir(const std::string& prefix = "zapd-test");

struct http_reply {
  int status = 0;
  std::string body;
  std::map<std::string, std::string> headers;  // lower-case names
  nlohmann::json json() const;
  std::string header(const std::string& lower_name) const;
};

/// One HTTP/1.1 request on a new connection to 127.0.0.1:port (Connection: close).
http_reply http_request(std::uint16_t port, const std::string& method, const std::string& target,
                        const std::string& body = "", const std::map<std::string, std::string>& headers = {});

/// Sends raw bytes and returns whatever the server answers before closing.
std::string raw_exchange(std::uint16_t port, const std::string& bytes);

/// The real zapd binary (ZAPD_BINARY) running `serve` on 127.0.0.1:0 with a temp data dir.
/// Its stderr goes to a file in the data dir's parent; the bound port is read from the
/// `zapd.listening` log line. The destructor stops it with SIGKILL if it is still running.
class zapd_process {
 public:
  explicit zapd_process(std::vector<std::string> extra_args = {},
                        std::vector<std::pair<std::string, std::string>> env = {}, std::string data_dir = "");
  ~zapd_process();
  zapd_process(const zapd_process&) = delete;
  zapd_process& operator=(const zapd_process&) = delete;

  std::uint16_t port() const { return port_; }
  const std::string& data_dir() const { return data_dir_; }
  pid_t pid() const { return pid_; }
  std::string log() const;

  http_reply request(const std::string& method, const std::string& target, const std::string& body = "",
                     const std::map<std::string, std::string>& headers = {}) const {
    return http_request(port_, method, target, body, headers);
  }

  /// Sends `sig` (SIGTERM by default), waits, returns the exit code (128+N if killed by N).
  int terminate(int sig = 15);

 private:
  std::string dir_;
  std::string data_dir_;
  std::string log_path_;
  pid_t pid_ = -1;
  std::uint16_t port_ = 0;
};

/// `zapd worker` (a worker of a Kafka fleet) with `args` (--set ...) and `env`. Started: its
/// `fleet.worker_started` log line was seen (throws if it exits first or takes 20 s). The
/// destructor stops it with SIGKILL if it is still running.
class worker_process {
 public:
  explicit worker_process(std::vector<std::string> args, std::vector<std::pair<std::string, std::string>> env = {},
                          bool wait_started = true);
  ~worker_process();
  worker_process(const worker_process&) = delete;
  worker_process& operator=(const worker_process&) = delete;

  pid_t pid() const { return pid_; }
  std::string log() const;
  /// Sends `sig`, waits, returns the exit code (128+N if killed by N).
  int terminate(int sig = 15);
  /// Waits up to `timeout` for it to exit by itself: its exit code, or -1 if still running.
  int wait_exit_for(std::chrono::milliseconds timeout);

 private:
  std::string dir_;
  std::string log_path_;
  pid_t pid_ = -1;
};

struct run_result {
  int exit_code = -1;
  std::string out;
  std::string err;
};

/// Runs the zapd binary to completion with `args`, feeding `stdin_data`.
run_result run_zapd(const std::vector<std::string>& args, const std::string& stdin_data = "",
                    const std::vector<std::pair<std::string, std::string>>& env = {});

}  // namespace zapd::test
