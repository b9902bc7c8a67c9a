#include "kafka_mock.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <fstream>
#include <sstream>
#include <stdexcept>

#ifndef ZAPD_KAFKA_MOCK_BINARY
#error "ZAPD_KAFKA_MOCK_BINARY must name the kafka_mock executable"
#endif

namespace zapd::test {

namespace {

std::string make_dir() {
  char tmpl[] = "/tmp/zapd-kafka-mock-XXXXXX";
  if (!mkdtemp(tmpl)) throw std::runtime_error("mkdtemp failed");
  return tmpl;
}

int wait_exit(pid_t pid) {
  int st = 0;
  while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
  }
  if (WIFEXITED(st)) return WEXITSTATUS(st);
  if (WIFSIGNALED(st)) return 128 + WTERMSIG(st);
  return -1;
}

}  // namespace

kafka_mock::kafka_mock(kafka_mock_options o) : brokers_(o.brokers) {
  dir_ = make_dir();
  std::vector<std::string> args = {ZAPD_KAFKA_MOCK_BINARY, "--brokers", std::to_string(o.brokers)};
  for (const auto& t : o.topics) {
    std::string spec = t.name + ":" + std::to_string(t.partitions);
    if (t.replication != -1) spec += ":" + std::to_string(t.replication);
    args.insert(args.end(), {"--topic", spec});
  }
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);

  // One socket for the helper's stdin and stdout: send(MSG_NOSIGNAL) cannot kill the test
  // with SIGPIPE if the helper died, and CLOEXEC keeps our end out of other children (a zapd
  // started later must not hold it open, or closing it would not end the helper).
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) throw std::runtime_error("socketpair failed");
  const std::string log_path = dir_ + "/kafka_mock.log";
  const int log_fd = open(log_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  pid_ = fork();
  if (pid_ < 0) {
    close(sv[0]);
    close(sv[1]);
    close(log_fd);
    throw std::runtime_error("fork failed");
  }
  if (pid_ == 0) {
    dup2(sv[1], 0);
    dup2(sv[1], 1);
    if (log_fd >= 0) dup2(log_fd, 2);
    execv(argv[0], argv.data());
    _exit(127);
  }
  close(sv[1]);
  close(log_fd);
  to_child_ = from_child_ = sv[0];

  std::string line;
  try {
    line = read_line(std::chrono::seconds(10));
  } catch (const std::exception& e) {
    kill(pid_, SIGKILL);
    wait_exit(pid_);
    pid_ = -1;
    close(sv[0]);
    to_child_ = from_child_ = -1;
    throw std::runtime_error(std::string("kafka_mock did not start (") + e.what() + "): " + ZAPD_KAFKA_MOCK_BINARY +
                             "\n" + log());
  }
  static const std::string prefix = "bootstrap ";
  if (line.rfind(prefix, 0) != 0) {
    kill(pid_, SIGKILL);
    wait_exit(pid_);
    pid_ = -1;
    throw std::runtime_error("kafka_mock said " + line + " instead of its bootstrap line\n" + log());
  }
  bootstrap_ = line.substr(prefix.size());
}

kafka_mock::~kafka_mock() {
  if (pid_ > 0) {
    kill(pid_, SIGKILL);
    wait_exit(pid_);
  }
  if (to_child_ >= 0) close(to_child_);
}

std::string kafka_mock::read_line(std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    if (auto nl = pending_.find('\n'); nl != std::string::npos) {
      std::string line = pending_.substr(0, nl);
      pending_.erase(0, nl + 1);
      return line;
    }
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) throw std::runtime_error("no answer within " + std::to_string(timeout.count()) + " ms");
    pollfd p{from_child_, POLLIN, 0};
    const int r = poll(&p, 1, static_cast<int>(left.count()));
    if (r < 0 && errno != EINTR) throw std::runtime_error("poll failed");
    if (r <= 0) continue;
    char chunk[4096];
    const ssize_t n = read(from_child_, chunk, sizeof chunk);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) throw std::runtime_error("kafka_mock exited");
    pending_.append(chunk, static_cast<std::size_t>(n));
  }
}

bool kafka_mock::command(const std::string& line, std::chrono::milliseconds timeout) {
  if (pid_ <= 0) throw std::runtime_error("kafka_mock is not running");
  if (line.find('\n') != std::string::npos) throw std::invalid_argument("a kafka_mock command is one line");
  const std::string out = line + "\n";
  for (std::size_t sent = 0; sent < out.size();) {
    const ssize_t n = send(to_child_, out.data() + sent, out.size() - sent, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) throw std::runtime_error("kafka_mock is gone (" + line + ")\n" + log());
    sent += static_cast<std::size_t>(n);
  }
  std::string answer;
  try {
    answer = read_line(timeout);
  } catch (const std::exception& e) {
    throw std::runtime_error("kafka_mock: " + line + ": " + e.what() + "\n" + log());
  }
  if (answer == "ok") {
    last_error_.clear();
    return true;
  }
  last_error_ = answer.rfind("error ", 0) == 0 ? answer.substr(6) : answer;
  return false;
}

int kafka_mock::stop() {
  if (pid_ <= 0) return -1;
  send(to_child_, "quit\n", 5, MSG_NOSIGNAL);
  return reap();
}

int kafka_mock::terminate(int sig) {
  if (pid_ <= 0) return -1;
  kill(pid_, sig);
  return reap();
}

// Waits up to 10 s for the helper to exit, then kills it.
int kafka_mock::reap() {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  int st = 0;
  pid_t r = 0;
  while ((r = waitpid(pid_, &st, WNOHANG)) == 0 && std::chrono::steady_clock::now() < deadline)
    usleep(10 * 1000);
  int code = -1;
  if (r == pid_) {
    code = WIFEXITED(st) ? WEXITSTATUS(st) : WIFSIGNALED(st) ? 128 + WTERMSIG(st) : -1;
  } else {
    kill(pid_, SIGKILL);
    wait_exit(pid_);
    code = -1;  // it did not exit by itself
  }
  pid_ = -1;
  return code;
}

std::string kafka_mock::log() const {
  std::ifstream in(dir_ + "/kafka_mock.log");
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace zapd::test
