// DataDirLock: one server per data_dir (DESIGN §8). An exclusive flock(2) on <data_dir>/LOCK, held
// for the lifetime of the object (the server holds it for the lifetime of the process); the file
// holds the holder's pid, so that a second server can say who owns the folder.
//
// flock locks belong to the open file description: the kernel drops the lock when the process dies
// (SIGKILL included), so a crash never leaves a stale lock behind, and the LOCK file itself is
// never deleted (deleting it would let a second process lock a new inode while the first still
// holds the old one). The descriptor is O_CLOEXEC: a child process does not inherit the lock.
// Not for NFS (flock there is emulated or local-only).
//
// Thread safety: the object is immutable after Acquire.
#ifndef OPTOWER_CORE_BASE_DATA_DIR_LOCK_H_
#define OPTOWER_CORE_BASE_DATA_DIR_LOCK_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"

namespace optower {

class DataDirLock {
 public:
  // Takes the lock without waiting. FailedPrecondition naming data_dir and the holder's pid when
  // another process holds it; FailedPrecondition saying "read-only" when data_dir is on a read-only
  // file system, PermissionDenied when it is not writable; errors name the `field` (e.g. "data_dir").
  static absl::StatusOr<std::unique_ptr<DataDirLock>> Acquire(const std::string& dir,
                                                              const std::string& field);
  ~DataDirLock();
  DataDirLock(const DataDirLock&) = delete;
  DataDirLock& operator=(const DataDirLock&) = delete;

  const std::string& path() const { return path_; }

 private:
  DataDirLock(std::string path, int fd) : path_(std::move(path)), fd_(fd) {}
  std::string path_;
  int fd_;
};

}  // namespace optower

#endif  // OPTOWER_CORE_BASE_DATA_DIR_LOCK_H_
