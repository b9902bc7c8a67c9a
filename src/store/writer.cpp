#include "zapd/store/writer.hpp"

#include <sqlite3.h>

#include <exception>

#include "zapd/core/log.hpp"

namespace zapd::store {

writer::writer(connection conn, options opts) : conn_(std::move(conn)), opts_(opts) {
  thread_ = std::thread([this] { run(); });
}

writer::~writer() { stop(); }

status writer::submit(work_fn work, done_fn done) {
  {
    std::lock_guard lk(mu_);
    if (stopping_) return make_error(errc::unavailable, "the store is shutting down");
    if (queue_.size() >= opts_.max_pending)
      return make_error(errc::overloaded, "the store's write queue is full; try again shortly");
    queue_.push_back(request{std::move(work), std::move(done)});
  }
  cv_.notify_one();
  return {};
}

void writer::stop() {
  {
    std::lock_guard lk(mu_);
    stopping_ = true;
  }
  cv_.notify_one();
  if (thread_.joinable()) thread_.join();
}

std::size_t writer::pending() const {
  std::lock_guard lk(mu_);
  return queue_.size();
}

std::uint64_t writer::commits() const {
  std::lock_guard lk(mu_);
  return commits_;
}

std::uint64_t writer::requests() const {
  std::lock_guard lk(mu_);
  return requests_;
}

void writer::run() {
  std::vector<request> batch;
  batch.reserve(opts_.batch_max);
  for (;;) {
    {
      std::unique_lock lk(mu_);
      cv_.wait(lk, [this] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) return;  // stopping and drained
      // Everything queued while the previous commit was syncing joins this one.
      while (!queue_.empty() && batch.size() < opts_.batch_max) {
        batch.push_back(std::move(queue_.front()));
        queue_.pop_front();
      }
    }
    commit_batch(batch);
    batch.clear();
  }
}

void writer::commit_batch(std::vector<request>& batch) {
  std::vector<status> outcomes(batch.size());
  auto fail_all = [&](const error& e) {
    for (auto& o : outcomes) o = e;
  };
  // Each kept request's commit hooks (connection::after_commit), run once the batch ended.
  std::vector<connection::commit_hook> hooks;
  auto end_hooks = [](std::vector<connection::commit_hook>& hs, bool committed) {
    for (auto& h : hs) {
      try {
        h(committed);
      } catch (const std::exception& e) {
        log::error("store.commit_hook_threw", {{"error", e.what()}});
      }
    }
    hs.clear();
  };

  auto begin = conn_.exec("BEGIN IMMEDIATE");
  if (!begin) {
    fail_all(begin.err());
  } else {
    // Prepared once and cached (connection::run): parsing these three per request showed in profiles.
    auto savepoint = [this](const char* sql) { return conn_.run(sql); };
    bool rolled_back = false;
    for (std::size_t i = 0; i < batch.size(); ++i) {
      auto sp = savepoint("SAVEPOINT w");
      if (!sp) {
        outcomes[i] = sp;
        continue;
      }
      conn_.hooks_open_ = true;
      try {
        outcomes[i] = batch[i].work(conn_);
      } catch (const std::exception& e) {
        outcomes[i] = make_error(errc::internal, std::string("write request threw: ") + e.what());
      }
      conn_.hooks_open_ = false;
      if (!outcomes[i] && !savepoint("ROLLBACK TO w").ok()) {
        // The request's writes could not be undone alone and would commit with the others:
        // undo the whole batch (the check below fails every request of it).
        log::error("store.rollback_failed", {{"error", outcomes[i].err().message}});
        (void)conn_.exec("ROLLBACK");
      }
      (void)savepoint("RELEASE w");
      if (outcomes[i]) {
        for (auto& h : conn_.hooks_) hooks.push_back(std::move(h));
        conn_.hooks_.clear();
      } else {
        end_hooks(conn_.hooks_, false);  // this request is undone
      }
      // Some errors (disk full, I/O error, out of memory) make SQLite roll back the whole
      // transaction: then every request of this batch is undone, and the ones after it
      // must not run outside a transaction.
      if (sqlite3_get_autocommit(conn_.raw())) {
        error e = outcomes[i] ? make_error(errc::unavailable, "the write transaction was rolled back")
                              : outcomes[i].err();
        log::error("store.transaction_lost", {{"error", e.message}, {"requests", batch.size()}});
        fail_all(e);
        end_hooks(hooks, false);
        rolled_back = true;
        break;
      }
    }
    if (!rolled_back) {
      auto commit = conn_.exec("COMMIT");
      if (!commit) {
        log::error("store.commit_failed", {{"error", commit.err().message}, {"requests", batch.size()}});
        (void)conn_.exec("ROLLBACK");
        fail_all(commit.err());
      }
      end_hooks(hooks, commit.ok());
    }
  }
  {
    std::lock_guard lk(mu_);
    ++commits_;
    requests_ += batch.size();
  }
  for (std::size_t i = 0; i < batch.size(); ++i) {
    try {
      if (batch[i].done) batch[i].done(std::move(outcomes[i]));
    } catch (const std::exception& e) {
      log::error("store.done_threw", {{"error", e.what()}});
    }
  }
}

}  // namespace zapd::store
