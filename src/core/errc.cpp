#include "zapd/core/errc.hpp"

namespace zapd {

std::string_view errc_name(errc e) noexcept {
  switch (e) {
    case errc::ok: return "ok";
    case errc::invalid_argument: return "invalid_argument";
    case errc::unauthorized: return "unauthorized";
    case errc::forbidden: return "forbidden";
    case errc::not_found: return "not_found";
    case errc::method_not_allowed: return "method_not_allowed";
    case errc::already_exists: return "already_exists";
    case errc::disabled: return "disabled";
    case errc::invalid_state: return "invalid_state";
    case errc::lease_lost: return "lease_lost";
    case errc::constraint: return "constraint";
    case errc::schema_mismatch: return "schema_mismatch";
    case errc::timeout: return "timeout";
    case errc::headers_too_large: return "headers_too_large";
    case errc::gone: return "gone";
    case errc::payload_too_large: return "payload_too_large";
    case errc::too_many_requests: return "too_many_requests";
    case errc::overloaded: return "overloaded";
    case errc::unavailable: return "unavailable";
    case errc::internal: return "internal";
  }
  return "internal";
}

}  // namespace zapd
