#include "zapd/core/dl.hpp"

#include <dlfcn.h>

namespace zapd::dl {

library::library(const char* soname, std::string what) : what_(std::move(what)) {
  handle_ = dlopen(soname, RTLD_NOW | RTLD_LOCAL);
  if (handle_ == nullptr) {
    const char* why = dlerror();
    error_ = why != nullptr ? why : soname;
  }
}

void* library::symbol(const char* name) {
  if (handle_ == nullptr) return nullptr;
  dlerror();
  void* f = dlsym(handle_, name);
  if (f == nullptr && error_.empty()) {
    const char* why = dlerror();
    error_ = why != nullptr ? why : std::string(name) + ": no such symbol";
  }
  return f;
}

std::optional<std::string> library::failure() const {
  if (error_.empty()) return std::nullopt;
  return what_ + ": " + error_;
}

}  // namespace zapd::dl
