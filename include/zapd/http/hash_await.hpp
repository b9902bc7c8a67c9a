#pragma once

#include <memory>
#include <utility>

#include <boost/asio/async_result.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/execution/outstanding_work.hpp>
#include <boost/asio/prefer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "zapd/auth/hash_pool.hpp"

namespace zapd::http {

/// Runs `work` (returns result<T>) on the password-hash pool and suspends the calling coroutine
/// until it is done; resumes on the caller's executor (the pattern of store_await.hpp). A full
/// pool yields `too_many_requests` at once, without queuing anything.
template <class T, class Work>
boost::asio::awaitable<result<T>> on_hash_pool(auth::hash_pool& pool, Work work) {
  namespace asio = boost::asio;
  auto initiate = [&pool, work = std::move(work)](auto handler) mutable {
    auto ex = asio::prefer(asio::get_associated_executor(handler), asio::execution::outstanding_work.tracked);
    auto h = std::make_shared<decltype(handler)>(std::move(handler));
    auto st = pool.submit([h, ex, work = std::move(work)]() mutable {
      result<T> r = work();
      asio::dispatch(ex, [h, r = std::move(r)]() mutable { (*h)(std::move(r)); });
    });
    if (!st) asio::dispatch(ex, [h, e = std::move(st).err()]() mutable { (*h)(result<T>(std::move(e))); });
  };
  // Not itself a coroutine: GCC 12 mis-handles lambdas with init-captures passed into a
  // coroutine's parameters, so the awaitable comes straight from async_initiate.
  return asio::async_initiate<decltype(asio::use_awaitable), void(result<T>)>(std::move(initiate), asio::use_awaitable);
}

}  // namespace zapd::http
