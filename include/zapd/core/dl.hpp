#pragma once

#include <optional>
#include <string>

namespace zapd::dl {

/// A shared library opened at run time, for the lazy loaders (outbound's libcurl,
/// kafka's librdkafka): dlopen(RTLD_NOW | RTLD_LOCAL), never closed. Functions are looked
/// up in that library only, never through the default lookup, so a program that also links
/// the library directly (the Kafka tests) still gets the library's function and not the
/// loader's forwarding definition of the same name.
class library {
 public:
  /// Opens `soname`; `what` prefixes every failure ("libcurl could not be loaded").
  library(const char* soname, std::string what);

  /// Sets `out` to the function `name`, or to nullptr (the first missing name is kept for
  /// failure()).
  template <class F>
  void resolve(F& out, const char* name) {
    out = reinterpret_cast<F>(symbol(name));
  }

  /// Nothing when the library opened and every resolve found its function; otherwise
  /// "<what>: <dlerror() or the missing name>". A library missing a function must not be
  /// called at all (too old a version): the caller forgets every function it resolved.
  std::optional<std::string> failure() const;

 private:
  void* symbol(const char* name);

  void* handle_ = nullptr;
  std::string what_;
  std::string error_;  // the first failure, without the prefix
};

}  // namespace zapd::dl
