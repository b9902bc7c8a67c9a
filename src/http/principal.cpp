#include "zapd/http/principal.hpp"

namespace zapd::http {

std::function<boost::asio::awaitable<response>(request&)> authed(const authenticator& auth, principal_handler h) {
  return [auth, h = std::move(h)](request& req) -> boost::asio::awaitable<response> {
    auto who = co_await auth(req);
    if (!who) {
      auto res = error_response(who.err());
      if (who.err().code == errc::unauthorized) res.with_header("WWW-Authenticate", "Bearer");
      co_return res;
    }
    co_return co_await h(req, *who);
  };
}

}  // namespace zapd::http
