#pragma once

#include "zapd/http/router.hpp"

namespace zapd::http {

/// The web UI compiled into the binary (module `ui`), as the router's fallback for GET/HEAD:
/// - an embedded file by its path, with its content type and ETag (304 on If-None-Match);
///   gzip when the client accepts it; `/assets/*` (hashed names) cached for a year as
///   immutable, everything else `no-cache`;
/// - any other path that does not name a file (no extension, not under /assets/) gets
///   index.html, so client-side routes like /zaps/{id} survive a reload (SPA fallback);
/// - never under /api/, /hooks/, /static/ or the health and metrics paths: those keep
///   their JSON 404, as does a missing file.
/// Built without the UI (-DZAPD_WITH_UI=OFF), `/` answers a JSON 404 saying so.
void add_ui_routes(router& r);

}  // namespace zapd::http
