#pragma once
// What a process has mapped, from /proc/<pid>/maps: the lazy-loading tests
// (lazy_curl_test, lazy_rdkafka_test) check which shared libraries a real zapd loaded.
#include <sys/types.h>

#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>

namespace zapd::test {

/// The lines of /proc/<pid>/maps that name `needle` (e.g. "/libcurl"); empty when none does.
/// Throws when the process is gone, so that "nothing mapped" is never read off a dead one.
inline std::string mappings(pid_t pid, const std::string& needle) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/maps");
  if (!in) throw std::runtime_error("no /proc/" + std::to_string(pid) + "/maps: the process is gone");
  std::string line, found;
  while (std::getline(in, line))
    if (line.find(needle) != std::string::npos) found += line + "\n";
  return found;
}

/// Every shared object mapped, one path a line (to show what the process had when a check fails).
inline std::string libraries(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/maps");
  std::ostringstream all;
  std::string line;
  while (std::getline(in, line))
    if (line.find(".so") != std::string::npos) all << line.substr(line.find('/')) << "\n";
  return all.str();
}

}  // namespace zapd::test
