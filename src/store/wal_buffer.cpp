#include "zapd/store/wal_buffer.hpp"

#include "zapd/store/connection.hpp"

#include <sqlite3.h>

#include <atomic>
#include <cstring>
#include <mutex>
#include <new>
#include <vector>

namespace zapd::store::detail {
namespace {

// The most the default VFS writes in one call (its seekAndWrite masks lengths to 17 bits):
// 31 frames of 4 KiB pages, a group commit of about 25 webhooks. A larger transaction
// flushes as it fills.
constexpr std::size_t k_capacity = 0x1ffff;

std::atomic<unsigned long long> g_writes{0};
std::atomic<unsigned long long> g_flushes{0};

struct file {
  sqlite3_file base;         // pMethods: k_methods once open
  sqlite3_file* real;        // the default VFS's file, in the same allocation after this
  bool wal = false;          // a WAL file whose writes are gathered
  file* main_db = nullptr;   // a WAL file: its database's file
  file* wal_file = nullptr;  // a database file: its WAL, while open
  std::vector<char> buf;
  std::size_t len = 0;
  sqlite3_int64 off = 0;
};

constexpr std::size_t k_real_offset = (sizeof(file) + 15) & ~std::size_t{15};

sqlite3_vfs* real_vfs = nullptr;

file* self(sqlite3_file* f) { return reinterpret_cast<file*>(f); }
const sqlite3_io_methods* rm(file* f) { return f->real->pMethods; }

// Writes what is gathered. On failure it is dropped: the caller's operation (a sync, a
// read, another write) fails with SQLite's own I/O error, and SQLite undoes the transaction.
int flush(file* f) {
  if (f->len == 0) return SQLITE_OK;
  const std::size_t n = f->len;
  f->len = 0;
  g_flushes.fetch_add(1, std::memory_order_relaxed);
  return rm(f)->xWrite(f->real, f->buf.data(), static_cast<int>(n), f->off);
}

int x_close(sqlite3_file* p) {
  file* f = self(p);
  int rc = flush(f);
  // A connection's files are used by one thread at a time, its own: no lock for the links.
  if (f->main_db) f->main_db->wal_file = nullptr;
  if (f->wal_file) f->wal_file->main_db = nullptr;
  int rc2 = rm(f)->xClose(f->real);
  f->~file();
  return rc != SQLITE_OK ? rc : rc2;
}

int x_read(sqlite3_file* p, void* out, int n, sqlite3_int64 off) {
  file* f = self(p);
  if (int rc = flush(f); rc != SQLITE_OK) return rc;
  return rm(f)->xRead(f->real, out, n, off);
}

int x_write(sqlite3_file* p, const void* data, int n, sqlite3_int64 off) {
  file* f = self(p);
  if (!f->wal || n <= 0) return rm(f)->xWrite(f->real, data, n, off);
  g_writes.fetch_add(1, std::memory_order_relaxed);
  const auto size = static_cast<std::size_t>(n);
  if (f->len > 0 && off == f->off + static_cast<sqlite3_int64>(f->len) && f->len + size <= k_capacity) {
    std::memcpy(f->buf.data() + f->len, data, size);
    f->len += size;
    return SQLITE_OK;
  }
  // Not the next byte (SQLite rewrites a frame, or restarts the WAL), or no room: what is
  // gathered goes first, so the file sees the writes in SQLite's order.
  if (int rc = flush(f); rc != SQLITE_OK) return rc;
  if (size > k_capacity) {
    g_flushes.fetch_add(1, std::memory_order_relaxed);
    return rm(f)->xWrite(f->real, data, n, off);
  }
  if (f->buf.empty()) {
    try {
      f->buf.resize(k_capacity);
    } catch (const std::bad_alloc&) {
      return SQLITE_IOERR_NOMEM;  // nothing gathered: SQLite fails this write and undoes
    }
  }
  std::memcpy(f->buf.data(), data, size);
  f->off = off;
  f->len = size;
  return SQLITE_OK;
}

int x_truncate(sqlite3_file* p, sqlite3_int64 size) {
  file* f = self(p);
  if (int rc = flush(f); rc != SQLITE_OK) return rc;
  return rm(f)->xTruncate(f->real, size);
}

int x_sync(sqlite3_file* p, int flags) {
  file* f = self(p);
  if (int rc = flush(f); rc != SQLITE_OK) return rc;
  return rm(f)->xSync(f->real, flags);
}

int x_file_size(sqlite3_file* p, sqlite3_int64* out) {
  file* f = self(p);
  if (int rc = flush(f); rc != SQLITE_OK) return rc;
  return rm(f)->xFileSize(f->real, out);
}

int x_lock(sqlite3_file* p, int level) { return rm(self(p))->xLock(self(p)->real, level); }
int x_unlock(sqlite3_file* p, int level) { return rm(self(p))->xUnlock(self(p)->real, level); }
int x_check_reserved(sqlite3_file* p, int* out) { return rm(self(p))->xCheckReservedLock(self(p)->real, out); }

int x_file_control(sqlite3_file* p, int op, void* arg) {
  file* f = self(p);
  if (int rc = flush(f); rc != SQLITE_OK) return rc;
  return rm(f)->xFileControl(f->real, op, arg);
}

int x_sector_size(sqlite3_file* p) { return rm(self(p))->xSectorSize(self(p)->real); }
int x_device_characteristics(sqlite3_file* p) { return rm(self(p))->xDeviceCharacteristics(self(p)->real); }

int x_shm_map(sqlite3_file* p, int page, int size, int extend, void volatile** out) {
  return rm(self(p))->xShmMap(self(p)->real, page, size, extend, out);
}
// The WAL write lock (shared-memory lock 0, WAL_WRITE_LOCK in SQLite's wal.c) being let go:
// whatever is gathered goes to the file first. A transaction that wrote frames (a cache spill)
// and was then undone has not synced them; SQLite itself wrote them while it held the lock,
// and so do we, so that another connection (another process) that takes the lock next can
// never have its frames overwritten by ours. So the buffer is empty whenever this connection
// does not hold the write lock.
int x_shm_lock(sqlite3_file* p, int offset, int n, int flags) {
  file* f = self(p);
  int rc = SQLITE_OK;
  if ((flags & SQLITE_SHM_UNLOCK) && offset == 0 && f->wal_file) rc = flush(f->wal_file);
  int rc2 = rm(f)->xShmLock(f->real, offset, n, flags);
  return rc != SQLITE_OK ? rc : rc2;
}

// SQLite calls the database file's barrier between the two copies of the WAL index header it
// writes to publish a commit: frames it publishes are in the WAL file before readers can see
// them, whatever `synchronous` is. (At FULL the commit's sync already wrote them.)
void x_shm_barrier(sqlite3_file* p) {
  file* f = self(p);
  if (f->wal_file) (void)flush(f->wal_file);
  rm(f)->xShmBarrier(f->real);
}

int x_shm_unmap(sqlite3_file* p, int del) { return rm(self(p))->xShmUnmap(self(p)->real, del); }

int x_fetch(sqlite3_file* p, sqlite3_int64 off, int n, void** out) {
  file* f = self(p);
  if (int rc = flush(f); rc != SQLITE_OK) return rc;
  return rm(f)->xFetch(f->real, off, n, out);
}
int x_unfetch(sqlite3_file* p, sqlite3_int64 off, void* page) { return rm(self(p))->xUnfetch(self(p)->real, off, page); }

const sqlite3_io_methods k_methods = {
    3,           x_close,     x_read,      x_write,      x_truncate,  x_sync,
    x_file_size, x_lock,      x_unlock,    x_check_reserved, x_file_control, x_sector_size,
    x_device_characteristics, x_shm_map, x_shm_lock, x_shm_barrier, x_shm_unmap, x_fetch,
    x_unfetch,
};

int x_open(sqlite3_vfs*, const char* name, sqlite3_file* p, int flags, int* out_flags) {
  auto* f = new (p) file{};
  f->real = reinterpret_cast<sqlite3_file*>(reinterpret_cast<char*>(p) + k_real_offset);
  int rc = real_vfs->xOpen(real_vfs, name, f->real, flags, out_flags);
  if (rc != SQLITE_OK || f->real->pMethods == nullptr || f->real->pMethods->iVersion < 3) {
    // SQLite does not close a file whose open failed; one the default VFS opened without
    // shared memory (never on Unix) is closed here rather than half wrapped.
    if (rc == SQLITE_OK && f->real->pMethods) f->real->pMethods->xClose(f->real);
    f->~file();
    p->pMethods = nullptr;
    return rc != SQLITE_OK ? rc : SQLITE_CANTOPEN;
  }
  f->base.pMethods = &k_methods;
  // A WAL file is gathered when its database was opened through this VFS (the link the lock
  // and barrier above use) and its device overwrites no bytes around a write (powersafe
  // overwrite, the default VFS's default): otherwise SQLite pads the commit's last frame
  // after the sync, which would leave bytes to write at the barrier, where no error can be
  // reported.
  if ((flags & SQLITE_OPEN_WAL) && name) {
    sqlite3_file* db = sqlite3_database_file_object(name);
    const bool psow = (rm(f)->xDeviceCharacteristics(f->real) & SQLITE_IOCAP_POWERSAFE_OVERWRITE) != 0;
    if (db && db->pMethods == &k_methods && self(db)->wal_file == nullptr && psow) {
      f->wal = true;
      f->main_db = self(db);
      self(db)->wal_file = f;
    }
  }
  return SQLITE_OK;
}

// Everything but opening a file is the default VFS's.
int x_delete(sqlite3_vfs*, const char* name, int sync_dir) { return real_vfs->xDelete(real_vfs, name, sync_dir); }
int x_access(sqlite3_vfs*, const char* name, int flags, int* out) { return real_vfs->xAccess(real_vfs, name, flags, out); }
int x_full_pathname(sqlite3_vfs*, const char* name, int n, char* out) { return real_vfs->xFullPathname(real_vfs, name, n, out); }
void* x_dl_open(sqlite3_vfs*, const char* name) { return real_vfs->xDlOpen(real_vfs, name); }
void x_dl_error(sqlite3_vfs*, int n, char* out) { real_vfs->xDlError(real_vfs, n, out); }
void (*x_dl_sym(sqlite3_vfs*, void* h, const char* sym))(void) { return real_vfs->xDlSym(real_vfs, h, sym); }
void x_dl_close(sqlite3_vfs*, void* h) { real_vfs->xDlClose(real_vfs, h); }
int x_randomness(sqlite3_vfs*, int n, char* out) { return real_vfs->xRandomness(real_vfs, n, out); }
int x_sleep(sqlite3_vfs*, int us) { return real_vfs->xSleep(real_vfs, us); }
int x_current_time(sqlite3_vfs*, double* out) { return real_vfs->xCurrentTime(real_vfs, out); }
int x_get_last_error(sqlite3_vfs*, int n, char* out) { return real_vfs->xGetLastError(real_vfs, n, out); }
int x_current_time_int64(sqlite3_vfs*, sqlite3_int64* out) { return real_vfs->xCurrentTimeInt64(real_vfs, out); }

}  // namespace

const char* buffered_wal_vfs() {
  static sqlite3_vfs vfs;
  static std::once_flag once;
  std::call_once(once, [] {
    configure_sqlite();  // finding the default VFS initializes SQLite
    real_vfs = sqlite3_vfs_find(nullptr);
    vfs = sqlite3_vfs{.iVersion = 2,
                      .szOsFile = static_cast<int>(k_real_offset) + real_vfs->szOsFile,
                      .mxPathname = real_vfs->mxPathname,
                      .pNext = nullptr,
                      .zName = "zapd-buffered-wal",
                      .pAppData = nullptr,
                      .xOpen = x_open,
                      .xDelete = x_delete,
                      .xAccess = x_access,
                      .xFullPathname = x_full_pathname,
                      .xDlOpen = x_dl_open,
                      .xDlError = x_dl_error,
                      .xDlSym = x_dl_sym,
                      .xDlClose = x_dl_close,
                      .xRandomness = x_randomness,
                      .xSleep = x_sleep,
                      .xCurrentTime = x_current_time,
                      .xGetLastError = x_get_last_error,
                      .xCurrentTimeInt64 = x_current_time_int64};
    (void)sqlite3_vfs_register(&vfs, 0);
  });
  return vfs.zName;
}

wal_buffer_counts buffered_wal_counts() { return {g_writes.load(), g_flushes.load()}; }

}  // namespace zapd::store::detail
