#include "zapd_process.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <regex>
#include <sstream>
#include <stdexcept>
#include <thread>

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>

#ifndef ZAPD_BINARY
#error "ZAPD_BINARY must name the zapd executable"
#endif
// A cross build's tests run zapd through CMAKE_CROSSCOMPILING_EMULATOR (e.g. "qemu-aarch64";
// words separated by spaces): without binfmt the kernel cannot exec an arm64 binary itself.
#ifndef ZAPD_EMULATOR
#define ZAPD_EMULATOR ""
#endif

namespace zapd::test {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = asio::ip::tcp;

std::string temp_dir(const std::string& prefix) {
  std::string tmpl = "/tmp/" + prefix + "-XXXXXX";
  std::vector<char> buf(tmpl.begin(), tmpl.end());
  buf.push_back('\0');
  if (!mkdtemp(buf.data())) throw std::runtime_error("mkdtemp failed");
  return buf.data();
}

nlohmann::json http_reply::json() const {
  auto j = nlohmann::json::parse(body, nullptr, false);
  if (j.is_discarded()) throw std::runtime_error("not JSON: " + body);
  return j;
}

std::string http_reply::header(const std::string& lower_name) const {
  auto it = headers.find(lower_name);
  return it == headers.end() ? std::string() : it->second;
}

http_reply http_request(std::uint16_t port, const std::string& method, const std::string& target,
                        const std::string& body, const std::map<std::string, std::string>& headers) {
  asio::io_context ioc;
  tcp::socket sock(ioc);
  sock.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port));
  bhttp::request<bhttp::string_body> req{bhttp::string_to_verb(method), target, 11};
  if (req.method() == bhttp::verb::unknown) req.method_string(method);
  req.set(bhttp::field::host, "127.0.0.1");
  req.set(bhttp::field::connection, "close");
  bool has_type = false;
  for (const auto& [k, v] : headers) {
    req.set(k, v);
    has_type = has_type || beast::iequals(k, "content-type");
  }
  if (!body.empty() && !has_type) req.set(bhttp::field::content_type, "application/json");
  req.body() = body;
  req.prepare_payload();
  bhttp::write(sock, req);
  beast::flat_buffer buf;
  bhttp::response_parser<bhttp::string_body> parser;
  parser.body_limit(64 * 1024 * 1024);
  bhttp::read(sock, buf, parser);
  auto res = parser.release();
  http_reply out;
  out.status = static_cast<int>(res.result_int());
  out.body = res.body();
  for (const auto& f : res) {
    std::string name(f.name_string());
    for (auto& ch : name) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    out.headers[name] = std::string(f.value());
  }
  return out;
}

std::string raw_exchange(std::uint16_t port, const std::string& bytes) {
  asio::io_context ioc;
  tcp::socket sock(ioc);
  sock.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port));
  asio::write(sock, asio::buffer(bytes));
  std::string out;
  std::array<char, 4096> chunk{};
  for (;;) {
    boost::system::error_code ec;
    auto n = sock.read_some(asio::buffer(chunk), ec);
    out.append(chunk.data(), n);
    if (ec) break;
  }
  return out;
}

namespace {

std::string slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// fork + exec of the zapd binary with stdin/stdout/stderr on the given fds.
pid_t spawn(const std::vector<std::string>& args, const std::vector<std::pair<std::string, std::string>>& env,
            int in_fd, int out_fd, int err_fd, const std::string& cwd) {
  pid_t pid = fork();
  if (pid < 0) throw std::runtime_error("fork failed");
  if (pid == 0) {
    dup2(in_fd, 0);
    dup2(out_fd, 1);
    dup2(err_fd, 2);
    if (!cwd.empty() && chdir(cwd.c_str()) != 0) _exit(127);
    for (const auto& [k, v] : env) setenv(k.c_str(), v.c_str(), 1);
    std::vector<std::string> words;
    std::istringstream emulator(ZAPD_EMULATOR);
    for (std::string w; emulator >> w;) words.push_back(w);
    words.push_back(ZAPD_BINARY);
    std::vector<char*> argv;
    for (auto& w : words) argv.push_back(w.data());
    for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    execvp(argv[0], argv.data());
    _exit(127);
  }
  return pid;
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

zapd_process::zapd_process(std::vector<std::string> extra_args, std::vector<std::pair<std::string, std::string>> env,
                           std::string data_dir) {
  dir_ = temp_dir("zapd-serve");
  data_dir_ = data_dir.empty() ? dir_ + "/data" : data_dir;
  log_path_ = dir_ + "/zapd.log";
  std::vector<std::string> args = {"--listen", "127.0.0.1:0", "--data-dir", data_dir_};
  for (auto& a : extra_args) args.push_back(std::move(a));
  args.push_back("serve");
  int null_fd = open("/dev/null", O_RDWR);
  int log_fd = open(log_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  pid_ = spawn(args, env, null_fd, null_fd, log_fd, dir_);
  close(null_fd);
  close(log_fd);

  static const std::regex listening(R"(zapd\.listening addr=127\.0\.0\.1:(\d+))");
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (std::chrono::steady_clock::now() < deadline) {
    std::smatch m;
    std::string text = slurp(log_path_);
    if (std::regex_search(text, m, listening)) {
      port_ = static_cast<std::uint16_t>(std::stoi(m[1]));
      return;
    }
    int st = 0;
    if (waitpid(pid_, &st, WNOHANG) == pid_) {
      pid_ = -1;
      throw std::runtime_error("zapd exited during start-up:\n" + text);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  throw std::runtime_error("zapd did not start listening within 20 s:\n" + slurp(log_path_));
}

zapd_process::~zapd_process() {
  if (pid_ > 0) {
    kill(pid_, SIGKILL);
    wait_exit(pid_);
  }
}

std::string zapd_process::log() const { return slurp(log_path_); }

int zapd_process::terminate(int sig) {
  if (pid_ <= 0) return -1;
  kill(pid_, sig);
  int code = wait_exit(pid_);
  pid_ = -1;
  return code;
}

worker_process::worker_process(std::vector<std::string> args, std::vector<std::pair<std::string, std::string>> env,
                               bool wait_started) {
  dir_ = temp_dir("zapd-worker");
  log_path_ = dir_ + "/worker.log";
  args.push_back("worker");
  int null_fd = open("/dev/null", O_RDWR);
  int log_fd = open(log_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  pid_ = spawn(args, env, null_fd, null_fd, log_fd, dir_);
  close(null_fd);
  close(log_fd);
  if (!wait_started) return;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (std::chrono::steady_clock::now() < deadline) {
    std::string text = slurp(log_path_);
    if (text.find("fleet.worker_started") != std::string::npos) return;
    int st = 0;
    if (waitpid(pid_, &st, WNOHANG) == pid_) {
      pid_ = -1;
      throw std::runtime_error("zapd worker exited during start-up:\n" + text);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  throw std::runtime_error("zapd worker did not start within 20 s:\n" + slurp(log_path_));
}

worker_process::~worker_process() {
  if (pid_ > 0) {
    kill(pid_, SIGKILL);
    wait_exit(pid_);
  }
}

std::string worker_process::log() const { return slurp(log_path_); }

int worker_process::terminate(int sig) {
  if (pid_ <= 0) return -1;
  kill(pid_, sig);
  int code = wait_exit(pid_);
  pid_ = -1;
  return code;
}

int worker_process::wait_exit_for(std::chrono::milliseconds timeout) {
  if (pid_ <= 0) return -1;
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    int st = 0;
    if (waitpid(pid_, &st, WNOHANG) == pid_) {
      pid_ = -1;
      return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return -1;
}

run_result run_zapd(const std::vector<std::string>& args, const std::string& stdin_data,
                    const std::vector<std::pair<std::string, std::string>>& env) {
  std::string dir = temp_dir("zapd-run");
  std::string in_path = dir + "/stdin", out_path = dir + "/stdout", err_path = dir + "/stderr";
  {
    std::ofstream in(in_path);
    in << stdin_data;
  }
  int in_fd = open(in_path.c_str(), O_RDONLY);
  int out_fd = open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  int err_fd = open(err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  pid_t pid = spawn(args, env, in_fd, out_fd, err_fd, dir);
  close(in_fd);
  close(out_fd);
  close(err_fd);
  run_result r;
  r.exit_code = wait_exit(pid);
  r.out = slurp(out_path);
  r.err = slurp(err_path);
  return r;
}

}  // namespace zapd::test
