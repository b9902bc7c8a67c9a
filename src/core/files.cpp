#include "zapd/core/files.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>

#include <fmt/format.h>

#include "zapd/core/ids.hpp"

namespace zapd {

namespace fs = std::filesystem;

status ensure_writable_dir(const std::string& dir) {
  std::error_code ec;
  if (!fs::exists(dir, ec)) {
    fs::create_directories(dir, ec);
    if (ec) return make_error(errc::invalid_argument, fmt::format("data_dir '{}': cannot create it: {}", dir, ec.message()));
    fs::permissions(dir, fs::perms::owner_all, fs::perm_options::replace, ec);
  } else if (!fs::is_directory(dir, ec)) {
    return make_error(errc::invalid_argument, fmt::format("data_dir '{}': exists and is not a directory", dir));
  }
  // access(W_OK) is always true for root; a real file creation also catches read-only mounts.
  std::string probe = (fs::path(dir) / ".zapd-write-probe").string();
  int fd = ::open(probe.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return make_error(errc::invalid_argument, fmt::format("data_dir '{}': not writable: {}", dir, std::strerror(errno)));
  ::close(fd);
  ::unlink(probe.c_str());
  return {};
}

result<std::string> load_or_create_secret(const std::string& path) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd >= 0) {
    std::string secret = random_hex(32);
    std::string line = secret + "\n";
    bool ok = ::write(fd, line.data(), line.size()) == static_cast<ssize_t>(line.size()) && ::fsync(fd) == 0;
    ::close(fd);
    if (!ok) {
      ::unlink(path.c_str());
      return make_error(errc::unavailable, fmt::format("{}: cannot write the secret: {}", path, std::strerror(errno)));
    }
    return secret;
  }
  if (errno != EEXIST) return make_error(errc::invalid_argument, fmt::format("{}: cannot create: {}", path, std::strerror(errno)));
  struct stat st{};
  if (::stat(path.c_str(), &st) != 0) return make_error(errc::invalid_argument, fmt::format("{}: {}", path, std::strerror(errno)));
  if ((st.st_mode & 077) != 0)
    return make_error(errc::invalid_argument, fmt::format("{}: readable by other users (mode {:o}); run chmod 600 on it", path, st.st_mode & 0777));
  std::ifstream in(path);
  std::string secret;
  std::getline(in, secret);
  if (secret.size() < 32 || secret.find_first_not_of("0123456789abcdef") != std::string::npos)
    return make_error(errc::invalid_argument, fmt::format("{}: not a zapd secret (expected at least 32 hex characters)", path));
  return secret;
}

status make_owner_only(const std::string& path, bool create) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | (create ? O_CREAT : 0), 0600);
  if (fd < 0) {
    if (errno == ENOENT && !create) return {};
    return make_error(errc::unavailable, fmt::format("{}: {}", path, std::strerror(errno)));
  }
  // fchmod, not the open mode: the umask only takes bits away, and an existing file keeps its mode.
  const int rc = ::fchmod(fd, 0600);
  const int e = errno;
  ::close(fd);
  if (rc != 0) return make_error(errc::unavailable, fmt::format("{}: cannot make it owner-only (chmod 600): {}", path, std::strerror(e)));
  return {};
}

file_lock::~file_lock() {
  if (fd_ >= 0) ::close(fd_);
}

result<file_lock> lock_file(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) return make_error(errc::unavailable, fmt::format("{}: {}", path, std::strerror(errno)));
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    const int e = errno;
    ::close(fd);
    if (e == EWOULDBLOCK) return make_error(errc::unavailable, fmt::format("{} is locked: another zapd is using this data dir", path));
    return make_error(errc::unavailable, fmt::format("{}: {}", path, std::strerror(e)));
  }
  return file_lock(fd);
}

}  // namespace zapd
