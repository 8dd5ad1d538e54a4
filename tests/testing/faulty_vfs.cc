#include "tests/testing/faulty_vfs.h"

#include <sqlite3.h>

#include <cstring>

#include "absl/synchronization/mutex.h"

namespace optower::testutil {
namespace {

struct State {
  absl::Mutex mu;
  std::string filter ABSL_GUARDED_BY(mu);
  int write_countdown ABSL_GUARDED_BY(mu) = 0;  // > 0: fail when it reaches 0
  int write_code ABSL_GUARDED_BY(mu) = SQLITE_OK;
  int sync_countdown ABSL_GUARDED_BY(mu) = 0;
  int sync_code ABSL_GUARDED_BY(mu) = SQLITE_OK;
  int all_code ABSL_GUARDED_BY(mu) = SQLITE_OK;  // != OK: fail every write and sync
  bool stall ABSL_GUARDED_BY(mu) = false;
  int stalled_now ABSL_GUARDED_BY(mu) = 0;
  int64_t failures ABSL_GUARDED_BY(mu) = 0;
  int64_t stalled_total ABSL_GUARDED_BY(mu) = 0;
};

State& TheState() {
  static State* state = new State();
  return *state;
}

sqlite3_vfs* g_real = nullptr;
sqlite3_vfs g_vfs;

// Our sqlite3_file: the header SQLite sees, then the wrapped file of the real VFS.
struct ShimFile {
  sqlite3_file base;
  sqlite3_file* real;
  bool target;
};

// Decides the fate of one write (sync = false) or sync: blocks while stalled, then returns the
// injected code or SQLITE_OK.
int OnChange(bool sync) {
  State& s = TheState();
  absl::MutexLock l(&s.mu);
  if (s.stall) {
    ++s.stalled_now;
    ++s.stalled_total;
    auto released = [&s]() ABSL_SHARED_LOCKS_REQUIRED(s.mu) { return !s.stall; };
    s.mu.Await(absl::Condition(&released));
    --s.stalled_now;
  }
  if (s.all_code != SQLITE_OK) {
    ++s.failures;
    return s.all_code;
  }
  int& countdown = sync ? s.sync_countdown : s.write_countdown;
  if (countdown > 0 && --countdown == 0) {
    ++s.failures;
    return sync ? s.sync_code : s.write_code;
  }
  return SQLITE_OK;
}

sqlite3_file* Real(sqlite3_file* f) { return reinterpret_cast<ShimFile*>(f)->real; }
bool Target(sqlite3_file* f) { return reinterpret_cast<ShimFile*>(f)->target; }

int Close(sqlite3_file* f) { return Real(f)->pMethods->xClose(Real(f)); }
int Read(sqlite3_file* f, void* buf, int n, sqlite3_int64 off) {
  return Real(f)->pMethods->xRead(Real(f), buf, n, off);
}
int Write(sqlite3_file* f, const void* buf, int n, sqlite3_int64 off) {
  if (Target(f)) {
    if (const int rc = OnChange(/*sync=*/false); rc != SQLITE_OK) return rc;
  }
  return Real(f)->pMethods->xWrite(Real(f), buf, n, off);
}
int Truncate(sqlite3_file* f, sqlite3_int64 size) {
  if (Target(f)) {
    if (const int rc = OnChange(/*sync=*/false); rc != SQLITE_OK) return rc;
  }
  return Real(f)->pMethods->xTruncate(Real(f), size);
}
int Sync(sqlite3_file* f, int flags) {
  if (Target(f)) {
    if (const int rc = OnChange(/*sync=*/true); rc != SQLITE_OK) return rc;
  }
  return Real(f)->pMethods->xSync(Real(f), flags);
}
int FileSize(sqlite3_file* f, sqlite3_int64* size) {
  return Real(f)->pMethods->xFileSize(Real(f), size);
}
int Lock(sqlite3_file* f, int level) { return Real(f)->pMethods->xLock(Real(f), level); }
int Unlock(sqlite3_file* f, int level) { return Real(f)->pMethods->xUnlock(Real(f), level); }
int CheckReservedLock(sqlite3_file* f, int* out) {
  return Real(f)->pMethods->xCheckReservedLock(Real(f), out);
}
int FileControl(sqlite3_file* f, int op, void* arg) {
  return Real(f)->pMethods->xFileControl(Real(f), op, arg);
}
int SectorSize(sqlite3_file* f) { return Real(f)->pMethods->xSectorSize(Real(f)); }
int DeviceCharacteristics(sqlite3_file* f) {
  return Real(f)->pMethods->xDeviceCharacteristics(Real(f));
}
int ShmMap(sqlite3_file* f, int region, int size, int extend, void volatile** out) {
  return Real(f)->pMethods->xShmMap(Real(f), region, size, extend, out);
}
int ShmLock(sqlite3_file* f, int offset, int n, int flags) {
  return Real(f)->pMethods->xShmLock(Real(f), offset, n, flags);
}
void ShmBarrier(sqlite3_file* f) { Real(f)->pMethods->xShmBarrier(Real(f)); }
int ShmUnmap(sqlite3_file* f, int del) { return Real(f)->pMethods->xShmUnmap(Real(f), del); }
int Fetch(sqlite3_file* f, sqlite3_int64 off, int n, void** out) {
  return Real(f)->pMethods->xFetch(Real(f), off, n, out);
}
int Unfetch(sqlite3_file* f, sqlite3_int64 off, void* p) {
  return Real(f)->pMethods->xUnfetch(Real(f), off, p);
}

const sqlite3_io_methods kMethods = {
    /*iVersion=*/3, Close, Read, Write, Truncate, Sync, FileSize, Lock, Unlock, CheckReservedLock,
    FileControl, SectorSize, DeviceCharacteristics, ShmMap, ShmLock, ShmBarrier, ShmUnmap, Fetch,
    Unfetch};

int Open(sqlite3_vfs*, const char* name, sqlite3_file* f, int flags, int* out_flags) {
  ShimFile* shim = reinterpret_cast<ShimFile*>(f);
  shim->real = reinterpret_cast<sqlite3_file*>(shim + 1);
  shim->real->pMethods = nullptr;
  const int rc = g_real->xOpen(g_real, name, shim->real, flags, out_flags);
  if (shim->real->pMethods == nullptr) {
    f->pMethods = nullptr;
    return rc;
  }
  {
    State& s = TheState();
    absl::MutexLock l(&s.mu);
    shim->target = name != nullptr && std::strstr(name, s.filter.c_str()) != nullptr;
  }
  f->pMethods = &kMethods;
  return rc;
}

}  // namespace

FaultyVfs& FaultyVfs::Install() {
  static FaultyVfs* instance = [] {
    g_real = sqlite3_vfs_find(nullptr);
    // Same functions and pAppData as the real VFS (the unix VFS reads its pAppData), except open.
    g_vfs = *g_real;
    g_vfs.pNext = nullptr;
    g_vfs.zName = "optower_faulty";
    g_vfs.szOsFile = static_cast<int>(sizeof(ShimFile)) + g_real->szOsFile;
    g_vfs.xOpen = Open;
    sqlite3_vfs_register(&g_vfs, /*makeDflt=*/1);
    return new FaultyVfs();
  }();
  instance->Clear();
  State& s = TheState();
  absl::MutexLock l(&s.mu);
  s.failures = 0;
  s.stalled_total = 0;
  return *instance;
}

void FaultyVfs::SetPathFilter(const std::string& filter) {
  State& s = TheState();
  absl::MutexLock l(&s.mu);
  s.filter = filter;
}

void FaultyVfs::FailNthWrite(int n, int code) {
  State& s = TheState();
  absl::MutexLock l(&s.mu);
  s.write_countdown = n;
  s.write_code = code;
}

void FaultyVfs::FailNthSync(int n, int code) {
  State& s = TheState();
  absl::MutexLock l(&s.mu);
  s.sync_countdown = n;
  s.sync_code = code;
}

void FaultyVfs::FailAll(int code) {
  State& s = TheState();
  absl::MutexLock l(&s.mu);
  s.all_code = code;
}

void FaultyVfs::Stall() {
  State& s = TheState();
  absl::MutexLock l(&s.mu);
  s.stall = true;
}

void FaultyVfs::Clear() {
  State& s = TheState();
  absl::MutexLock l(&s.mu);
  s.write_countdown = 0;
  s.sync_countdown = 0;
  s.all_code = SQLITE_OK;
  s.stall = false;
}

bool FaultyVfs::WaitUntilStalled(absl::Duration timeout) {
  State& s = TheState();
  absl::MutexLock l(&s.mu);
  auto stalled = [&s]() ABSL_SHARED_LOCKS_REQUIRED(s.mu) { return s.stalled_now > 0; };
  return s.mu.AwaitWithTimeout(absl::Condition(&stalled), timeout);
}

int64_t FaultyVfs::injected_failures() const {
  State& s = TheState();
  absl::MutexLock l(&s.mu);
  return s.failures;
}

int64_t FaultyVfs::stalled_calls() const {
  State& s = TheState();
  absl::MutexLock l(&s.mu);
  return s.stalled_total;
}

}  // namespace optower::testutil
