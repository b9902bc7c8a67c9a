#pragma once

#include <memory>
#include <string>

#include "zapd/core/result.hpp"
#include "zapd/store/reader_pool.hpp"
#include "zapd/store/writer.hpp"

namespace zapd::store {

/// The store's facade: one SQLite file in WAL mode, one writer thread (group commit) and a
/// pool of readers. Owned by `app`; modules get references to `writes()` / `reads()`.
/// Lifecycle: `open` migrates (when asked) before the writer starts; `stop` flushes the writer.
class database {
 public:
  struct options {
    std::string path;
    std::string synchronous = "full";  // "full" or "normal"
    std::size_t readers = 4;
    store::writer::options writer;
    bool migrate = true;  // apply pending migrations on open
  };

  static result<std::unique_ptr<database>> open(const options& opts);

  store::writer& writes() { return *writer_; }
  reader_pool& reads() { return *readers_; }
  const std::string& path() const { return path_; }

  /// Completes queued writes and stops the writer thread. Idempotent.
  void stop() { writer_->stop(); }

 private:
  database() = default;
  std::string path_;
  std::unique_ptr<store::writer> writer_;
  std::unique_ptr<reader_pool> readers_;
};

/// Opens a write connection with zapd's pragmas (WAL, synchronous, foreign keys).
result<connection> open_write_connection(const std::string& path, const std::string& synchronous);

/// A real write (the `kv` row 'readyz'), run by `/readyz` through the writer: proves the
/// writer thread is alive, the write lock is obtainable and the file accepts a commit.
status readiness_probe(connection& c);

}  // namespace zapd::store
