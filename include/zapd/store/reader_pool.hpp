#pragma once

#include <condition_variable>
#include <mutex>
#include <string>
#include <vector>

#include "zapd/core/result.hpp"
#include "zapd/store/connection.hpp"

namespace zapd::store {

/// A fixed pool of read-only connections. In WAL mode a reader sees the last committed state
/// and never blocks the writer. Reads are short (indexed lookups served from SQLite's page
/// cache), so callers run them inline, borrowing a connection for the duration of `fn`.
/// Thread-safe; `with` waits when every connection is lent out.
class reader_pool {
 public:
  static result<std::unique_ptr<reader_pool>> open(const std::string& path, std::size_t size);

  template <class Fn>
  auto with(Fn&& fn) {
    connection* c = acquire();
    struct give_back {
      reader_pool* p;
      connection* c;
      ~give_back() { p->release(c); }
    } g{this, c};
    return fn(*c);
  }

 private:
  reader_pool() = default;
  connection* acquire();
  void release(connection* c);

  std::vector<connection> conns_;
  std::vector<connection*> free_;
  std::mutex mu_;
  std::condition_variable cv_;
};

}  // namespace zapd::store
