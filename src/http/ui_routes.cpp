#include "zapd/http/ui_routes.hpp"

#include <fmt/format.h>

#include "zapd/core/json.hpp"
#include "zapd/ui/assets.hpp"

namespace zapd::http {
namespace {

namespace asio = boost::asio;
using bhttp::verb;

// The page runs only its own bundle: no inline script, nothing from another origin.
constexpr const char* k_csp =
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// Whether `path` belongs to the API side, decided on its first segment the way the router
/// sees it (leading slashes skipped) and percent-decoded, so `//api/x` and `/%61pi/x` get the
/// API's JSON 404 too. Only origin-form targets (`/...`) may reach the UI at all.
bool reserved(std::string_view path) {
  if (!path.starts_with('/')) return true;
  while (!path.empty() && path.front() == '/') path.remove_prefix(1);
  std::string_view raw = path.substr(0, path.find('/'));
  auto decoded = percent_decode(raw, false);
  if (!decoded) return true;
  std::string_view first = *decoded;
  first = first.substr(0, first.find('/'));  // an encoded slash: /api%2Fv1 is still /api
  for (std::string_view p : {"api", "hooks", "static", "metrics", "healthz", "readyz"})
    if (first == p) return true;
  return false;
}

/// Whether an Accept-Encoding value allows gzip (`gzip` or `*`, without q=0).
bool accepts_gzip(std::string_view header) {
  bool star = false, gzip = false, gzip_refused = false, star_refused = false;
  for (auto item : split(header, ',')) {
    auto semi = item.find(';');
    const std::string coding = to_lower(trim(item.substr(0, semi)));
    bool refused = false;
    if (semi != std::string_view::npos) {
      std::string_view param = trim(item.substr(semi + 1));
      if (param.starts_with("q=") || param.starts_with("Q=")) {
        std::string_view q = param.substr(2);
        refused = !q.empty() && q.find_first_not_of("0.") == std::string_view::npos;
      }
    }
    if (coding == "gzip")
      (refused ? gzip_refused : gzip) = true;
    else if (coding == "*")
      (refused ? star_refused : star) = true;
  }
  return gzip || (star && !gzip_refused && !star_refused);
}

/// Whether If-None-Match lists `etag` (quoted, optionally weak) or is `*`.
bool matches(std::string_view if_none_match, std::string_view etag) {
  for (auto tag : split(if_none_match, ',')) {
    if (tag == "*") return true;
    if (tag.starts_with("W/")) tag.remove_prefix(2);
    if (tag == etag) return true;
  }
  return false;
}

response serve(const request& req, const ui::asset& a) {
  const bool gz = !a.gzip.empty() && accepts_gzip(req.header("Accept-Encoding"));
  const std::string etag = fmt::format("\"{}{}\"", a.etag, gz ? "-gz" : "");
  response res;
  res.content_type = std::string(a.content_type);
  res.with_header("ETag", etag);
  res.with_header("Cache-Control", ui::immutable(a) ? "public, max-age=31536000, immutable" : "no-cache");
  if (!a.gzip.empty()) res.with_header("Vary", "Accept-Encoding");
  res.with_header("X-Content-Type-Options", "nosniff");
  if (a.content_type.starts_with("text/html")) {
    res.with_header("Content-Security-Policy", k_csp);
    res.with_header("X-Frame-Options", "DENY");
    res.with_header("Referrer-Policy", "no-referrer");
  }
  if (matches(req.header("If-None-Match"), etag)) {
    res.status = 304;
    res.content_type.clear();
    return res;
  }
  if (gz) res.with_header("Content-Encoding", "gzip");
  res.body = std::string(gz ? a.gzip : a.body);
  return res;
}

}  // namespace

void add_ui_routes(router& r) {
  r.fallback([](request& req) -> asio::awaitable<response> {
    const verb m = req.msg.method();
    const std::string& path = req.path;
    auto no_route = [&] { return error_response(errc::not_found, fmt::format("no route for {}", path)); };
    if ((m != verb::get && m != verb::head) || reserved(path)) co_return no_route();
    if (ui::embedded().empty()) {
      if (path == "/" || path == "/index.html")
        co_return error_response(errc::not_found, "this zapd was built without the web UI (-DZAPD_WITH_UI=OFF); the API is under /api/v1");
      co_return no_route();
    }
    if (const ui::asset* a = ui::find(path == "/" ? "/index.html" : std::string_view(path))) co_return serve(req, *a);
    // A name with an extension, or anything under /assets/, is a file: a missing one is a
    // 404, not the app (a stale bundle must not get HTML back as JavaScript).
    std::string_view last = std::string_view(path).substr(path.rfind('/') + 1);
    if (path.starts_with("/assets/") || last.find('.') != std::string_view::npos)
      co_return error_response(errc::not_found, fmt::format("no file {}", path));
    co_return serve(req, *ui::find("/index.html"));
  });
}

}  // namespace zapd::http
