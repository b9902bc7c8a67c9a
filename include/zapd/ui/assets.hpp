#pragma once

#include <string_view>
#include <vector>

namespace zapd::ui {

/// One file of the built web UI (web/dist), compiled into the binary by cmake/embed_ui.cmake.
struct asset {
  std::string_view path;          // "/index.html", "/assets/index-3f9a.js"
  std::string_view content_type;  // from the extension
  std::string_view body;
  std::string_view gzip;          // `gzip -9 -n` of body; empty when it would not pay
  std::string_view etag;          // first 20 hex digits of the SHA-256 of body, without quotes
};

/// Every embedded file, sorted by path; empty when built with -DZAPD_WITH_UI=OFF.
const std::vector<asset>& embedded();

/// The file at `path` (as in `asset::path`), or nullptr.
const asset* find(std::string_view path);

/// Hashed build output (`/assets/...`): its name changes with its content, so it may be
/// cached forever; everything else (index.html, favicon) must be revalidated.
bool immutable(const asset& a);

}  // namespace zapd::ui
