// The web UI served from the binary: every file of web/dist byte for byte, content types,
// caching, gzip, ETags, HEAD, the SPA fallback and the paths it must never shadow.
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <catch2/catch.hpp>

#include "zapd_process.hpp"

using zapd::test::http_reply;
using zapd::test::zapd_process;
namespace fs = std::filesystem;

namespace {

const fs::path k_dist = fs::path(ZAPD_SOURCE_DIR) / "web" / "dist";

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

/// gunzip through the system's gzip (a real decoder, not ours).
std::string gunzip(const std::string& gz) {
  auto dir = zapd::test::temp_dir("zapd-ui");
  std::ofstream(dir + "/body.gz", std::ios::binary) << gz;
  REQUIRE(std::system(("gzip -dc " + dir + "/body.gz > " + dir + "/body 2>/dev/null").c_str()) == 0);
  return slurp(dir + "/body");
}

std::vector<std::pair<std::string, fs::path>> dist_files() {
  std::vector<std::pair<std::string, fs::path>> out;
  for (const auto& e : fs::recursive_directory_iterator(k_dist))
    if (e.is_regular_file()) out.emplace_back("/" + fs::relative(e.path(), k_dist).generic_string(), e.path());
  return out;
}

std::string expected_type(const std::string& path) {
  auto ext = fs::path(path).extension().string();
  if (ext == ".html") return "text/html; charset=utf-8";
  if (ext == ".js") return "text/javascript; charset=utf-8";
  if (ext == ".css") return "text/css; charset=utf-8";
  if (ext == ".svg") return "image/svg+xml";
  if (ext == ".png") return "image/png";
  return "";
}

void check_json_404(const http_reply& r) {
  INFO(r.body);
  CHECK(r.status == 404);
  CHECK(r.header("content-type") == "application/json");
  CHECK(r.json()["error"]["code"] == "not_found");
}

}  // namespace

#if ZAPD_WITH_UI

TEST_CASE("ui: every file of web/dist is served byte for byte with its type and caching") {
  zapd_process z;
  auto files = dist_files();
  REQUIRE(files.size() >= 2);  // index.html and at least its script
  for (const auto& [path, file] : files) {
    INFO(path);
    auto r = z.request("GET", path);
    REQUIRE(r.status == 200);
    CHECK(r.body == slurp(file));
    if (auto t = expected_type(path); !t.empty()) CHECK(r.header("content-type") == t);
    CHECK(r.header("x-content-type-options") == "nosniff");
    CHECK(r.header("etag").size() > 10);
    if (path.starts_with("/assets/"))
      CHECK(r.header("cache-control") == "public, max-age=31536000, immutable");
    else
      CHECK(r.header("cache-control") == "no-cache");
  }
  auto index = z.request("GET", "/");
  REQUIRE(index.status == 200);
  CHECK(index.body == slurp(k_dist / "index.html"));
  CHECK(index.header("cache-control") == "no-cache");
  CHECK(index.header("content-security-policy").find("script-src 'self';") != std::string::npos);
  CHECK(index.header("content-security-policy").find("unsafe") == std::string::npos);
  CHECK(index.header("x-frame-options") == "DENY");
}

TEST_CASE("ui: gzip when accepted, identity otherwise, and 304 for a known ETag") {
  zapd_process z;
  const std::string html = slurp(k_dist / "index.html");
  for (const char* ae : {"gzip", "gzip, deflate, br", "br;q=1.0, GZIP;q=0.5", "*"}) {
    INFO(ae);
    auto r = z.request("GET", "/", "", {{"Accept-Encoding", ae}});
    REQUIRE(r.status == 200);
    CHECK(r.header("content-encoding") == "gzip");
    CHECK(r.header("vary") == "Accept-Encoding");
    CHECK(r.body.size() < html.size());
    CHECK(gunzip(r.body) == html);
  }
  for (const char* ae : {"", "identity", "gzip;q=0", "deflate, br", "*;q=0", "gzip;q=0, *"}) {
    INFO(ae);
    std::map<std::string, std::string> h;
    if (*ae) h["Accept-Encoding"] = ae;
    auto r = z.request("GET", "/", "", h);
    REQUIRE(r.status == 200);
    CHECK(r.header("content-encoding").empty());
    CHECK(r.body == html);
  }

  // Every hashed JavaScript and CSS file has a gzip twin that decodes to it.
  for (const auto& [path, file] : dist_files()) {
    if (!path.starts_with("/assets/") || (!path.ends_with(".js") && !path.ends_with(".css"))) continue;
    INFO(path);
    auto r = z.request("GET", path, "", {{"Accept-Encoding", "gzip"}});
    REQUIRE(r.status == 200);
    if (fs::file_size(file) > 1024) REQUIRE(r.header("content-encoding") == "gzip");
    CHECK((r.header("content-encoding") == "gzip" ? gunzip(r.body) : r.body) == slurp(file));
  }

  auto plain = z.request("GET", "/");
  auto gz = z.request("GET", "/", "", {{"Accept-Encoding", "gzip"}});
  REQUIRE(plain.header("etag") != gz.header("etag"));  // two representations, two tags
  for (const auto& [tag, enc] : {std::pair{plain.header("etag"), ""}, std::pair{gz.header("etag"), "gzip"}}) {
    INFO(tag);
    std::map<std::string, std::string> h{{"If-None-Match", tag}};
    if (*enc) h["Accept-Encoding"] = enc;
    auto r = z.request("GET", "/", "", h);
    CHECK(r.status == 304);
    CHECK(r.body.empty());
    CHECK(r.header("etag") == tag);
    h["If-None-Match"] = "\"something-else\"";
    CHECK(z.request("GET", "/", "", h).status == 200);
  }
  CHECK(z.request("GET", "/", "", {{"If-None-Match", "W/" + plain.header("etag") + ", \"x\""}}).status == 304);
}

TEST_CASE("ui: client routes get index.html, files and API paths never do") {
  zapd_process z;
  const std::string html = slurp(k_dist / "index.html");
  for (const char* route : {"/zaps", "/zaps/", "/zaps/0191e0e0-aaaa/runs", "/runs/abc", "/signin?next=%2Fzaps", "/account"}) {
    INFO(route);
    auto r = z.request("GET", route);
    CHECK(r.status == 200);
    CHECK(r.header("content-type") == "text/html; charset=utf-8");
    CHECK(r.header("cache-control") == "no-cache");
    CHECK(r.body == html);
  }
  for (const char* path : {"/assets/index-missing.js", "/assets/x", "/favicon-missing.ico", "/zaps/logo.png", "/api",
                           "/api/", "/api/v1/nope", "/api/v1/zap/x/nope", "/hooks", "/hooks/catch", "/hooks/catch/a/b/c/d",
                           "/static/icons/nope.svg", "/static/x", "//api/v1/nope", "///hooks/x", "/%61pi/v1/nope",
                           "/%68ooks/catch", "//metrics/x", "/%zz", "/api%2Fv1/x", "/%61pi%2f"}) {
    INFO(path);
    check_json_404(z.request("GET", path));
  }
  // An absolute-form target is not a client route.
  auto absolute = zapd::test::raw_exchange(z.port(), "GET http://x/zaps HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  CHECK(absolute.starts_with("HTTP/1.1 404"));
  CHECK(absolute.find("application/json") != std::string::npos);
  // Other methods on a client route are not the app either.
  check_json_404(z.request("POST", "/zaps", "{}"));
  check_json_404(z.request("DELETE", "/"));
  // Routes of the API keep their answers.
  CHECK(z.request("GET", "/healthz").json()["status"] == "ok");
  CHECK(z.request("GET", "/metrics").header("content-type").starts_with("text/plain"));
  CHECK(z.request("GET", "/api/v1/user").status == 401);
  CHECK(z.request("GET", "/static/icons/http.svg").header("content-type") == "image/svg+xml");
}

TEST_CASE("ui: HEAD answers the GET's headers without a body") {
  zapd_process z;
  const std::string html = slurp(k_dist / "index.html");
  auto raw = zapd::test::raw_exchange(z.port(), "HEAD /zaps HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  INFO(raw);
  REQUIRE(raw.starts_with("HTTP/1.1 200"));
  CHECK(raw.find("Content-Length: " + std::to_string(html.size()) + "\r\n") != std::string::npos);
  CHECK(raw.ends_with("\r\n\r\n"));  // headers only

  // On a kept-alive connection the next answers stay framed: HEAD (no body follows), a 304
  // (no body, no Content-Length), then a plain GET.
  auto etag = z.request("GET", "/").header("etag");
  auto three = zapd::test::raw_exchange(z.port(),
                                        "HEAD / HTTP/1.1\r\nHost: x\r\n\r\n"
                                        "GET / HTTP/1.1\r\nHost: x\r\nIf-None-Match: " + etag + "\r\n\r\n"
                                        "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  INFO(three);
  auto second = three.find("HTTP/1.1 304");
  auto third = three.find("HTTP/1.1 200", second);
  REQUIRE(three.starts_with("HTTP/1.1 200"));
  REQUIRE(second != std::string::npos);
  REQUIRE(third != std::string::npos);
  CHECK(three.substr(second, third - second).find("Content-Length") == std::string::npos);
  CHECK(three.ends_with(R"({"status":"ok"})"));
}

TEST_CASE("ui: the bundle is small and loads nothing from other origins") {
  std::size_t gz_total = 0;
  for (const auto& [path, file] : dist_files()) {
    auto dir = zapd::test::temp_dir("zapd-ui-size");
    REQUIRE(std::system(("gzip -9 -n -c '" + file.string() + "' > " + dir + "/f.gz").c_str()) == 0);
    gz_total += fs::file_size(dir + "/f.gz");
    if (path.ends_with(".html") || path.ends_with(".css")) {
      INFO(path);
      const std::string text = slurp(file);
      for (const char* remote : {"src=\"http", "href=\"http", "src=\"//", "href=\"//", "url(http", "url(//", "@import"})
        CHECK(text.find(remote) == std::string::npos);
    }
  }
  INFO("gzipped bundle: " << gz_total << " bytes");
  CHECK(gz_total < 200 * 1024);
}

#else

TEST_CASE("ui: a build without the UI says so at / and serves the API") {
  zapd_process z;
  auto r = z.request("GET", "/");
  check_json_404(r);
  CHECK(r.json()["error"]["message"].get<std::string>().find("ZAPD_WITH_UI=OFF") != std::string::npos);
  check_json_404(z.request("GET", "/zaps"));
  CHECK(z.request("GET", "/healthz").status == 200);
}

#endif
