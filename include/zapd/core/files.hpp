#pragma once

#include <string>

#include "zapd/core/result.hpp"

namespace zapd {

/// Creates `dir` (and parents, mode 0700) if missing and proves it is a writable directory.
/// The error names the directory and the reason.
status ensure_writable_dir(const std::string& dir);

/// Reads the hex secret in `path`, or creates it (32 random bytes, hex, mode 0600) when the
/// file does not exist. Refuses a file that is empty, malformed, or readable by others.
result<std::string> load_or_create_secret(const std::string& path);

/// Makes `path` readable and writable by its owner only (mode 0600, whatever the umask), first
/// creating it empty when `create` is set; a missing file is left missing otherwise.
status make_owner_only(const std::string& path, bool create);

/// An exclusive advisory lock (flock) held while the object lives; released on destruction
/// or when the process dies, so a crash never leaves a stale lock behind.
class file_lock {
 public:
  file_lock() = default;
  file_lock(file_lock&& o) noexcept : fd_(o.fd_) { o.fd_ = -1; }
  file_lock& operator=(file_lock&&) = delete;
  file_lock(const file_lock&) = delete;
  ~file_lock();

 private:
  friend result<file_lock> lock_file(const std::string& path);
  explicit file_lock(int fd) : fd_(fd) {}
  int fd_ = -1;
};

/// Takes `path`'s lock without waiting (creating the file, mode 0600). `unavailable` when
/// another process holds it.
result<file_lock> lock_file(const std::string& path);

}  // namespace zapd
