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

}  // namespace zapd
