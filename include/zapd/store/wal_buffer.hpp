#pragma once

// The write connection's VFS: SQLite's default one, except that a WAL file's writes that
// follow each other are gathered in memory and reach the file in one pwrite at the next
// sync (or before anything else touches the file). SQLite writes each WAL frame as two
// calls (a 24-byte header, then the page): a group commit of 25 webhooks made ~60 pwrite
// calls, each a system call of its own; now it makes about one.
//
// Nothing is acknowledged earlier or later than before: a commit returns after its sync,
// and the buffer is written before that sync. Readers (other connections, other processes)
// see new frames only once the writer publishes the WAL index header, which SQLite does
// after the frames' sync at synchronous=FULL, and after the database file's shared-memory
// barrier in any mode: the buffer is written at both. It is also written before the WAL
// write lock is let go, so frames of an undone transaction (a cache spill, never synced)
// reach the file while this connection may still write there, as SQLite's own writes do,
// and never over frames another process commits later. A crash loses what a crash before a
// sync loses anyway: frames of a transaction that never committed. Only a WAL on a device
// with powersafe overwrite (the default VFS's default) is gathered: elsewhere SQLite pads a
// commit's last frame after its sync.

namespace zapd::store::detail {

/// Registers the VFS once (not as the default) and returns its name, for sqlite3_open_v2.
const char* buffered_wal_vfs();

/// WAL writes gathered by this process's buffered files so far, and the pwrite calls they
/// took (tests compare the two).
struct wal_buffer_counts {
  unsigned long long writes = 0;
  unsigned long long flushes = 0;
};
wal_buffer_counts buffered_wal_counts();

}  // namespace zapd::store::detail
