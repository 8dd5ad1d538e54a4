#include "core/base/data_dir_lock.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cstring>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace optower {
namespace {

// The pid the holder wrote, or "unknown" (it may be writing it right now).
std::string HolderPid(int fd) {
  char buf[32] = {};
  const ssize_t n = ::pread(fd, buf, sizeof(buf) - 1, 0);
  int64_t pid = 0;
  if (n > 0 && absl::SimpleAtoi(absl::StripAsciiWhitespace(absl::string_view(buf, n)), &pid) &&
      pid > 0)
    return absl::StrCat(pid);
  return "unknown";
}

}  // namespace

absl::StatusOr<std::unique_ptr<DataDirLock>> DataDirLock::Acquire(const std::string& dir,
                                                                  const std::string& field) {
  const std::string path = absl::StrCat(dir, "/LOCK");
  const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) {
    const int err = errno;
    if (err == EROFS)
      return absl::FailedPreconditionError(absl::StrCat(
          field, "=", dir, ": the folder is on a read-only file system (", path,
          "); the server writes its event log, model versions and catalog there: give it a "
          "writable folder"));
    if (err == EACCES || err == EPERM)
      return absl::PermissionDeniedError(absl::StrCat(
          field, "=", dir, ": cannot create ", path, " (", std::strerror(err),
          "); the server needs write access to its data_dir"));
    return absl::ErrnoToStatus(err, absl::StrCat(field, "=", dir, ": open ", path));
  }
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    const int err = errno;
    const std::string holder = err == EWOULDBLOCK ? HolderPid(fd) : "";
    ::close(fd);
    if (err == EWOULDBLOCK)
      return absl::FailedPreconditionError(absl::StrCat(
          field, "=", dir, " is in use by another optower-server (pid ", holder, ", lock ", path,
          "): one server owns a data_dir; stop it or give this one another data_dir"));
    return absl::ErrnoToStatus(err, absl::StrCat(field, "=", dir, ": flock ", path));
  }
  // Ours now: record who holds it. A failure here costs only the pid in a later message.
  const std::string pid = absl::StrCat(::getpid(), "\n");
  if (::ftruncate(fd, 0) == 0) (void)!::pwrite(fd, pid.data(), pid.size(), 0);
  return std::unique_ptr<DataDirLock>(new DataDirLock(path, fd));
}

DataDirLock::~DataDirLock() {
  if (fd_ >= 0) ::close(fd_);  // releases the lock
}

}  // namespace optower
