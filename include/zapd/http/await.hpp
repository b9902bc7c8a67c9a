#pragma once

#include <functional>
#include <memory>
#include <utility>

#include <boost/asio/async_result.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/execution/outstanding_work.hpp>
#include <boost/asio/prefer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "zapd/core/result.hpp"

namespace zapd::http {

/// Bridges a callback API running on another thread (the store writer, the hash pool) into a
/// coroutine: `start(complete)` begins the work and `complete(result<T>)` may then be called
/// once, from any thread; the coroutine resumes on its own executor. If `start` returns an
/// error, nothing began (and `complete` must not be called): the coroutine resumes with it.
///
/// Not itself a coroutine: GCC 12 mis-handles lambdas with init-captures passed into a
/// coroutine's parameters, so the awaitable comes straight from async_initiate.
template <class T, class Start>
boost::asio::awaitable<result<T>> await_completion(Start start) {
  namespace asio = boost::asio;
  auto initiate = [start = std::move(start)](auto handler) mutable {
    auto ex = asio::prefer(asio::get_associated_executor(handler), asio::execution::outstanding_work.tracked);
    auto h = std::make_shared<decltype(handler)>(std::move(handler));
    std::function<void(result<T>)> complete = [h, ex](result<T> r) {
      asio::dispatch(ex, [h, r = std::move(r)]() mutable { (*h)(std::move(r)); });
    };
    status st = start(complete);
    if (!st) complete(result<T>(std::move(st).err()));
  };
  return asio::async_initiate<decltype(asio::use_awaitable), void(result<T>)>(std::move(initiate), asio::use_awaitable);
}

}  // namespace zapd::http
