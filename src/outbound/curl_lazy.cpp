// libcurl, loaded on first use (include/zapd/outbound/curl_lazy.hpp says why).
//
// These are the definitions of exactly the curl_* functions zapd calls, with C linkage, so
// the rest of the code includes <curl/curl.h> and calls curl as usual while the binary has
// no DT_NEEDED on libcurl. Each forwards to the function of the same name in the library
// dlopen()ed (RTLD_LOCAL: its symbols do not leak into the global namespace) by the first
// call. A function zapd starts to call must be added here (the link fails until it is).

// <curl/curl.h> turns curl_easy_setopt & co. into type-checking macros under GCC; here we
// define the functions themselves.
#define CURL_DISABLE_TYPECHECK 1
#include <curl/curl.h>

#include <cstdarg>
#include <mutex>
#include <string>

#include "zapd/core/dl.hpp"
#include "zapd/core/log.hpp"
#include "zapd/outbound/curl_lazy.hpp"

namespace {

constexpr const char* library = "libcurl.so.4";  // libcurl4's soname (Depends: in the .deb)
constexpr const char* not_loaded = "libcurl could not be loaded";

struct api {
  decltype(&::curl_global_init) global_init = nullptr;
  decltype(&::curl_easy_init) easy_init = nullptr;
  decltype(&::curl_easy_cleanup) easy_cleanup = nullptr;
  decltype(&::curl_easy_setopt) easy_setopt = nullptr;
  decltype(&::curl_easy_getinfo) easy_getinfo = nullptr;
  decltype(&::curl_easy_strerror) easy_strerror = nullptr;
  decltype(&::curl_slist_append) slist_append = nullptr;
  decltype(&::curl_slist_free_all) slist_free_all = nullptr;
  decltype(&::curl_url) url = nullptr;
  decltype(&::curl_url_set) url_set = nullptr;
  decltype(&::curl_url_get) url_get = nullptr;
  decltype(&::curl_url_cleanup) url_cleanup = nullptr;
  decltype(&::curl_url_strerror) url_strerror = nullptr;
  decltype(&::curl_free) free = nullptr;
  decltype(&::curl_multi_init) multi_init = nullptr;
  decltype(&::curl_multi_cleanup) multi_cleanup = nullptr;
  decltype(&::curl_multi_setopt) multi_setopt = nullptr;
  decltype(&::curl_multi_add_handle) multi_add_handle = nullptr;
  decltype(&::curl_multi_remove_handle) multi_remove_handle = nullptr;
  decltype(&::curl_multi_socket_action) multi_socket_action = nullptr;
  decltype(&::curl_multi_timeout) multi_timeout = nullptr;
  decltype(&::curl_multi_info_read) multi_info_read = nullptr;
  decltype(&::curl_multi_strerror) multi_strerror = nullptr;
};

struct loaded {
  api fn;
  bool ok = false;
  CURLcode init_rc = CURLE_FAILED_INIT;
  std::string error;  // "libcurl could not be loaded: ..." when !ok
};

loaded g;
std::once_flag g_once;

void load() {
  zapd::dl::library lib(library, not_loaded);
  api& f = g.fn;
#define ZAPD_CURL_RESOLVE(member, name) lib.resolve(f.member, #name)
  ZAPD_CURL_RESOLVE(global_init, curl_global_init);
  ZAPD_CURL_RESOLVE(easy_init, curl_easy_init);
  ZAPD_CURL_RESOLVE(easy_cleanup, curl_easy_cleanup);
  ZAPD_CURL_RESOLVE(easy_setopt, curl_easy_setopt);
  ZAPD_CURL_RESOLVE(easy_getinfo, curl_easy_getinfo);
  ZAPD_CURL_RESOLVE(easy_strerror, curl_easy_strerror);
  ZAPD_CURL_RESOLVE(slist_append, curl_slist_append);
  ZAPD_CURL_RESOLVE(slist_free_all, curl_slist_free_all);
  ZAPD_CURL_RESOLVE(url, curl_url);
  ZAPD_CURL_RESOLVE(url_set, curl_url_set);
  ZAPD_CURL_RESOLVE(url_get, curl_url_get);
  ZAPD_CURL_RESOLVE(url_cleanup, curl_url_cleanup);
  ZAPD_CURL_RESOLVE(url_strerror, curl_url_strerror);
  ZAPD_CURL_RESOLVE(free, curl_free);
  ZAPD_CURL_RESOLVE(multi_init, curl_multi_init);
  ZAPD_CURL_RESOLVE(multi_cleanup, curl_multi_cleanup);
  ZAPD_CURL_RESOLVE(multi_setopt, curl_multi_setopt);
  ZAPD_CURL_RESOLVE(multi_add_handle, curl_multi_add_handle);
  ZAPD_CURL_RESOLVE(multi_remove_handle, curl_multi_remove_handle);
  ZAPD_CURL_RESOLVE(multi_socket_action, curl_multi_socket_action);
  ZAPD_CURL_RESOLVE(multi_timeout, curl_multi_timeout);
  ZAPD_CURL_RESOLVE(multi_info_read, curl_multi_info_read);
  ZAPD_CURL_RESOLVE(multi_strerror, curl_multi_strerror);
#undef ZAPD_CURL_RESOLVE
  if (auto why = lib.failure()) {
    // Not there, or too old a libcurl: never call into half of it. The library stays mapped (harmless).
    g.fn = api{};
    g.error = *why;
  } else {
    // Once per process, before the first handle; never cleaned up.
    g.init_rc = g.fn.global_init(CURL_GLOBAL_DEFAULT);
    if (g.init_rc != CURLE_OK) {
      g.error = std::string(not_loaded) + ": curl_global_init failed (" + g.fn.easy_strerror(g.init_rc) + ")";
      g.fn = api{};
    } else {
      g.ok = true;
    }
  }
  if (!g.ok) zapd::log::error("outbound.curl_load_failed", {{"error", g.error}});
}

/// The functions when libcurl is usable, else nullptr. Loads it on the first call.
const api* curl() {
  std::call_once(g_once, load);
  return g.ok ? &g.fn : nullptr;
}

/// How curl_easy_setopt and curl_multi_setopt read their one variadic argument: by the
/// option's type range (<curl/curl.h>: CURLOPTTYPE_*, the same for CURLMoption).
enum class arg_kind { long_value, pointer, function, off_t_value };

constexpr arg_kind kind_of(int option) {
  if (option < CURLOPTTYPE_OBJECTPOINT) return arg_kind::long_value;        // LONG, VALUES
  if (option < CURLOPTTYPE_FUNCTIONPOINT) return arg_kind::pointer;         // OBJECT/STRING/SLIST/CBPOINT
  if (option < CURLOPTTYPE_OFF_T) return arg_kind::function;                // FUNCTIONPOINT
  if (option < CURLOPTTYPE_BLOB) return arg_kind::off_t_value;              // OFF_T
  return arg_kind::pointer;                                                 // BLOB: struct curl_blob*
}

using any_fn = void (*)();

// curl_url_get takes `const CURLU*` since curl 8.x, `CURLU*` before: define it as declared.
template <class F>
struct first_arg;
template <class R, class A, class... Rest>
struct first_arg<R (*)(A, Rest...)> {
  using type = A;
};
using url_get_handle = first_arg<decltype(&::curl_url_get)>::type;

}  // namespace

namespace zapd::outbound {

std::optional<std::string> curl_unavailable() {
  if (curl() != nullptr) return std::nullopt;
  return g.error;
}

}  // namespace zapd::outbound

extern "C" {

CURLcode curl_global_init(long) {
  curl();  // the real curl_global_init ran (or failed) while loading
  return g.ok ? CURLE_OK : (g.init_rc != CURLE_OK ? g.init_rc : CURLE_FAILED_INIT);
}

CURL* curl_easy_init() {
  const api* c = curl();
  return c != nullptr ? c->easy_init() : nullptr;
}

void curl_easy_cleanup(CURL* h) {
  if (const api* c = curl()) c->easy_cleanup(h);
}

CURLcode curl_easy_setopt(CURL* h, CURLoption option, ...) {
  const api* c = curl();
  if (c == nullptr) return CURLE_FAILED_INIT;
  va_list ap;
  va_start(ap, option);
  CURLcode rc = CURLE_OK;
  switch (kind_of(option)) {
    case arg_kind::long_value: rc = c->easy_setopt(h, option, va_arg(ap, long)); break;
    case arg_kind::pointer: rc = c->easy_setopt(h, option, va_arg(ap, void*)); break;
    case arg_kind::function: rc = c->easy_setopt(h, option, va_arg(ap, any_fn)); break;
    case arg_kind::off_t_value: rc = c->easy_setopt(h, option, va_arg(ap, curl_off_t)); break;
  }
  va_end(ap);
  return rc;
}

CURLcode curl_easy_getinfo(CURL* h, CURLINFO info, ...) {
  const api* c = curl();
  if (c == nullptr) return CURLE_FAILED_INIT;
  va_list ap;
  va_start(ap, info);
  void* out = va_arg(ap, void*);  // every CURLINFO_* takes a pointer to where the answer goes
  va_end(ap);
  return c->easy_getinfo(h, info, out);
}

const char* curl_easy_strerror(CURLcode rc) {
  const api* c = curl();
  return c != nullptr ? c->easy_strerror(rc) : not_loaded;
}

struct curl_slist* curl_slist_append(struct curl_slist* list, const char* s) {
  const api* c = curl();
  return c != nullptr ? c->slist_append(list, s) : nullptr;
}

void curl_slist_free_all(struct curl_slist* list) {
  if (const api* c = curl()) c->slist_free_all(list);
}

CURLU* curl_url() {
  const api* c = curl();
  return c != nullptr ? c->url() : nullptr;
}

CURLUcode curl_url_set(CURLU* u, CURLUPart part, const char* content, unsigned int flags) {
  const api* c = curl();
  return c != nullptr ? c->url_set(u, part, content, flags) : CURLUE_BAD_HANDLE;
}

CURLUcode curl_url_get(url_get_handle u, CURLUPart part, char** out, unsigned int flags) {
  const api* c = curl();
  return c != nullptr ? c->url_get(u, part, out, flags) : CURLUE_BAD_HANDLE;
}

void curl_url_cleanup(CURLU* u) {
  if (const api* c = curl()) c->url_cleanup(u);
}

const char* curl_url_strerror(CURLUcode rc) {
  const api* c = curl();
  return c != nullptr ? c->url_strerror(rc) : not_loaded;
}

void curl_free(void* p) {
  if (const api* c = curl()) c->free(p);  // only curl allocates what is freed here
}

CURLM* curl_multi_init() {
  const api* c = curl();
  return c != nullptr ? c->multi_init() : nullptr;
}

CURLMcode curl_multi_cleanup(CURLM* m) {
  const api* c = curl();
  return c != nullptr ? c->multi_cleanup(m) : CURLM_BAD_HANDLE;
}

CURLMcode curl_multi_setopt(CURLM* m, CURLMoption option, ...) {
  const api* c = curl();
  if (c == nullptr) return CURLM_BAD_HANDLE;
  va_list ap;
  va_start(ap, option);
  CURLMcode rc = CURLM_OK;
  switch (kind_of(option)) {
    case arg_kind::long_value: rc = c->multi_setopt(m, option, va_arg(ap, long)); break;
    case arg_kind::pointer: rc = c->multi_setopt(m, option, va_arg(ap, void*)); break;
    case arg_kind::function: rc = c->multi_setopt(m, option, va_arg(ap, any_fn)); break;
    case arg_kind::off_t_value: rc = c->multi_setopt(m, option, va_arg(ap, curl_off_t)); break;
  }
  va_end(ap);
  return rc;
}

CURLMcode curl_multi_add_handle(CURLM* m, CURL* h) {
  const api* c = curl();
  return c != nullptr ? c->multi_add_handle(m, h) : CURLM_BAD_HANDLE;
}

CURLMcode curl_multi_remove_handle(CURLM* m, CURL* h) {
  const api* c = curl();
  return c != nullptr ? c->multi_remove_handle(m, h) : CURLM_BAD_HANDLE;
}

CURLMcode curl_multi_socket_action(CURLM* m, curl_socket_t s, int ev_bitmask, int* running_handles) {
  const api* c = curl();
  return c != nullptr ? c->multi_socket_action(m, s, ev_bitmask, running_handles) : CURLM_BAD_HANDLE;
}

CURLMcode curl_multi_timeout(CURLM* m, long* milliseconds) {
  const api* c = curl();
  return c != nullptr ? c->multi_timeout(m, milliseconds) : CURLM_BAD_HANDLE;
}

CURLMsg* curl_multi_info_read(CURLM* m, int* msgs_in_queue) {
  const api* c = curl();
  return c != nullptr ? c->multi_info_read(m, msgs_in_queue) : nullptr;
}

const char* curl_multi_strerror(CURLMcode rc) {
  const api* c = curl();
  return c != nullptr ? c->multi_strerror(rc) : not_loaded;
}

}  // extern "C"
