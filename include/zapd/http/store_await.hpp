#pragma once

#include <memory>
#include <utility>

#include <boost/asio/async_result.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/execution/outstanding_work.hpp>
#include <boost/asio/prefer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "zapd/store/writer.hpp"

namespace zapd::http {

/// Hands `work` (result<T>(store::connection&)) to the writer and suspends the calling
/// coroutine until the group commit that holds it is done; resumes on the caller's executor.
/// An overloaded or stopped writer yields its error without queuing anything.
template <class T, class Work>
boost::asio::awaitable<result<T>> write(store::writer& w, Work work) {
  namespace asio = boost::asio;
  auto initiate = [&w, work = std::move(work)](auto handler) mutable {
    auto ex = asio::prefer(asio::get_associated_executor(handler), asio::execution::outstanding_work.tracked);
    auto h = std::make_shared<decltype(handler)>(std::move(handler));
    auto st = w.submit_for<T>(std::move(work), [h, ex](result<T> r) {
      asio::dispatch(ex, [h, r = std::move(r)]() mutable { (*h)(std::move(r)); });
    });
    if (!st) asio::dispatch(ex, [h, e = std::move(st).err()]() mutable { (*h)(result<T>(std::move(e))); });
  };
  co_return co_await asio::async_initiate<decltype(asio::use_awaitable), void(result<T>)>(std::move(initiate),
                                                                                         asio::use_awaitable);
}

}  // namespace zapd::http
