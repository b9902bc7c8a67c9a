#pragma once

#include <memory>
#include <utility>

#include <boost/asio/async_result.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/execution/outstanding_work.hpp>
#include <boost/asio/prefer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "zapd/auth/hash_pool.hpp"
#include "zapd/http/await.hpp"

namespace zapd::http {

/// Runs `work` (returns result<T>) on the password-hash pool and suspends the calling coroutine
/// until it is done; resumes on the caller's executor (await.hpp). A full
/// pool yields `too_many_requests` at once, without queuing anything.
template <class T, class Work>
boost::asio::awaitable<result<T>> on_hash_pool(auth::hash_pool& pool, Work work) {
  return await_completion<T>([&pool, work = std::move(work)](std::function<void(result<T>)> complete) mutable {
    return pool.submit([work = std::move(work), complete]() mutable { complete(work()); });
  });
}

}  // namespace zapd::http
