#include "zapd/app/app.hpp"

#include <fmt/format.h>

#include "options.hpp"
#include "services.hpp"
#include "zapd/core/log.hpp"

namespace zapd::app {

int serve(const config::loaded& cfg) {
  const auto& s = cfg.values;
  auto ready = prepare(s);
  if (!ready.ready) return ready.exit_code;
  services svc(s, std::move(*ready.ready));
  if (auto st = svc.start(); !st) {
    log::error("zapd.start_failed", {{"error", st.err().message}});
    svc.stop();
    return k_exit_failure;
  }
  auto port = svc.listen();
  if (!port) {
    log::error("zapd.listen_failed", {{"error", port.err().message}});
    svc.stop();
    return k_exit_failure;
  }
  log::info("zapd.listening", {{"addr", fmt::format("{}:{}", s.listen_host, *port)},
                               {"public_url", s.server_public_url},
                               {"data_dir", s.data_dir},
                               {"threads", http_threads(s)}});
  svc.run();
  svc.stop();
  log::info("zapd.stopped");
  return k_exit_ok;
}

}  // namespace zapd::app
