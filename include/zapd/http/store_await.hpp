#pragma once

#include <utility>

#include "zapd/http/await.hpp"
#include "zapd/store/writer.hpp"

namespace zapd::http {

/// Hands `work` (result<T>(store::connection&)) to the writer and suspends the calling
/// coroutine until the group commit that holds it is done; resumes on the caller's executor.
/// An overloaded or stopped writer yields its error without queuing anything.
template <class T, class Work>
boost::asio::awaitable<result<T>> write(store::writer& w, Work work) {
  return await_completion<T>([&w, work = std::move(work)](std::function<void(result<T>)> complete) mutable {
    return w.submit_for<T>(std::move(work), std::move(complete));
  });
}

}  // namespace zapd::http
