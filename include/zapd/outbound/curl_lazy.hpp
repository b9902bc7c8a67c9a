#pragma once

#include <optional>
#include <string>

namespace zapd::outbound {

/// libcurl is not linked into zapd: src/outbound/curl_lazy.cpp defines the curl_* functions
/// zapd calls and, on the first call to any of them, dlopen()s "libcurl.so.4" (once per
/// process, thread-safe), resolves every function and runs the real curl_global_init. An
/// idle server, or one whose zaps never make an HTTP or email call, never maps libcurl and
/// its ~30 dependencies (see docs/BENCHMARKS.md, "Footprint").
///
/// If the library cannot be loaded, that is logged once (`outbound.curl_load_failed`) and
/// every curl_* call fails cleanly: curl_easy_init, curl_multi_init, curl_url and
/// curl_slist_append return nullptr, the others their "failed init"/"bad handle" code.
///
/// Loads libcurl if that has not been tried yet. Nothing when it is usable; otherwise the
/// message to fail a step with: "libcurl could not be loaded: <dlerror()>".
std::optional<std::string> curl_unavailable();

}  // namespace zapd::outbound
