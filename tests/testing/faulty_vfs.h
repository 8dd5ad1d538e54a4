// FaultyVfs: a test-only SQLite VFS shim for I/O fault injection (docs/RELIABILITY.md "Event log
// faults"). It wraps the default "unix" VFS and becomes SQLite's default VFS for the whole test
// process, so every connection opened afterwards (the event log's writer and reader, an in-process
// server's log) goes through it. Faults apply only to files whose path contains the filter (a test's
// temp folder), and only to the calls that change a file: xWrite, xTruncate and xSync. Reads, locks
// and the WAL index (shared memory) are passed through unchanged.
//
// Faults: fail the Nth write or sync from now, once, with a SQLite code (SQLITE_FULL,
// SQLITE_IOERR_WRITE, ...); fail every write and sync until Clear(); or stall them (the calling
// thread blocks inside SQLite, as on a hung disk) until Clear(). A read-only remount shows up in
// SQLite as SQLITE_IOERR_WRITE (write(2) fails with EROFS), so FailAll(SQLITE_IOERR_WRITE) covers it.
//
// Never linked into the server binary: it lives in tests/testing (optower_testing).
// Thread safety: all methods may be called from any thread.
#ifndef OPTOWER_TESTS_TESTING_FAULTY_VFS_H_
#define OPTOWER_TESTS_TESTING_FAULTY_VFS_H_

#include <cstdint>
#include <string>

#include "absl/time/time.h"

namespace optower::testutil {

class FaultyVfs {
 public:
  // Registers the shim as the default VFS (first call only) and returns the process's instance, with
  // no fault armed and the counters at 0. Call before opening the connections that should see faults.
  static FaultyVfs& Install();

  // Only files whose path contains `filter` see faults ("" = every file).
  void SetPathFilter(const std::string& filter);
  // The n-th (>= 1) write (xWrite/xTruncate) from now fails once with `code`.
  void FailNthWrite(int n, int code);
  // The n-th (>= 1) xSync from now fails once with `code`.
  void FailNthSync(int n, int code);
  // Every write and sync fails with `code` until Clear().
  void FailAll(int code);
  // Every write and sync blocks until Clear().
  void Stall();
  // Disarms every fault and releases stalled calls.
  void Clear();

  // Blocks until at least one call is stalled, or `timeout` passes; true if one is.
  bool WaitUntilStalled(absl::Duration timeout);
  // Counters since the last Install().
  int64_t injected_failures() const;  // calls failed by a fault
  int64_t stalled_calls() const;      // calls that were blocked by Stall

 private:
  FaultyVfs() = default;
};

}  // namespace optower::testutil

#endif  // OPTOWER_TESTS_TESTING_FAULTY_VFS_H_
