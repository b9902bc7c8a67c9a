#pragma once

#include <functional>
#include <string>

#include <boost/asio/awaitable.hpp>

#include "zapd/auth/authenticate.hpp"
#include "zapd/core/result.hpp"
#include "zapd/http/message.hpp"

namespace zapd::http {

/// Who is making an authenticated API call (the auth module's type).
using principal = auth::principal;

/// Resolves `Authorization` (Bearer token or a bare token) to a principal; an `unauthorized`
/// error otherwise. `auth_api::authenticate()` makes it around `auth::authenticate`; every
/// API route uses it.
using authenticator = std::function<boost::asio::awaitable<result<principal>>(const request&)>;

/// Wraps a handler that needs a signed-in user: when `auth` refuses, answers its error as JSON
/// (401 with `WWW-Authenticate: Bearer`) and `h` never runs. Every authenticated route uses it.
using principal_handler = std::function<boost::asio::awaitable<response>(request&, const principal&)>;
std::function<boost::asio::awaitable<response>(request&)> authed(const authenticator& auth, principal_handler h);

}  // namespace zapd::http
