#include "core/base/atomic_file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>  // renameat2, RENAME_EXCHANGE (glibc >= 2.28, _GNU_SOURCE)
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include <filesystem>
#include <system_error>
#include <utility>
#include <vector>

#include "absl/random/random.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "core/base/status_macros.h"
#include "core/base/test_points.h"

namespace optower {
namespace {

constexpr int kMaxNameAttempts = 100;

void (*g_fsync_observer)(const std::string& path) = nullptr;

std::string RandomSuffix() {
  static constexpr char kChars[] = "abcdefghijklmnopqrstuvwxyz0123456789";
  absl::BitGen gen;
  std::string s(8, ' ');
  for (char& c : s) c = kChars[absl::Uniform<size_t>(gen, 0, sizeof(kChars) - 1)];
  return s;
}

absl::Status ErrnoError(int err, absl::string_view what, absl::string_view path) {
  return absl::ErrnoToStatus(err, absl::StrCat(what, "(", path, ")"));
}

// "a/b/c" -> {"a/b", "c"}; "c" -> {".", "c"}; "/c" -> {"/", "c"}.
std::pair<std::string, std::string> SplitPath(const std::string& path) {
  const size_t slash = path.rfind('/');
  if (slash == std::string::npos) return {".", path};
  if (slash == 0) return {"/", path.substr(1)};
  return {path.substr(0, slash), path.substr(slash + 1)};
}

std::string StripTrailingSlashes(std::string path) {
  while (path.size() > 1 && path.back() == '/') path.pop_back();
  return path;
}

// Without this the rename (a change to the folder) might not survive a power loss even though the
// file data did.
absl::Status FsyncPath(const std::string& path, bool directory) {
  if (g_fsync_observer != nullptr) g_fsync_observer(path);
  int fd = ::open(path.c_str(), (directory ? O_RDONLY | O_DIRECTORY : O_RDONLY) | O_CLOEXEC);
  if (fd < 0) return ErrnoError(errno, "open", path);
  int rc = ::fsync(fd);
  int err = errno;
  ::close(fd);
  // Some file systems refuse fsync on folders; that is not a reason to fail the write.
  if (rc != 0 && !(directory && (err == EINVAL || err == EROFS)))
    return ErrnoError(err, "fsync", path);
  return absl::OkStatus();
}

// fsyncs every regular file and folder under `dir` (depth first, `dir` itself last). Files written
// by other code (torch::save, ofstream) are not fsynced by their writers; without this a power loss
// after the rename could leave a complete-looking folder of empty or short files.
absl::Status FsyncTree(const std::string& dir) {
  std::error_code ec;
  for (auto it = std::filesystem::directory_iterator(dir, ec);
       !ec && it != std::filesystem::directory_iterator(); it.increment(ec)) {
    const std::string path = it->path().string();
    struct stat st;
    if (::lstat(path.c_str(), &st) != 0) return ErrnoError(errno, "stat", path);
    if (S_ISDIR(st.st_mode)) {
      RETURN_IF_ERROR(FsyncTree(path));
    } else if (S_ISREG(st.st_mode)) {
      RETURN_IF_ERROR(FsyncPath(path, /*directory=*/false));
    }
  }
  if (ec) return absl::ErrnoToStatus(ec.value(), absl::StrCat("read folder ", dir));
  return FsyncPath(dir, /*directory=*/true);
}

absl::Status WriteAll(int fd, std::string_view contents, const std::string& path) {
  const char* p = contents.data();
  size_t left = contents.size();
  while (left > 0) {
    ssize_t n = ::write(fd, p, left);
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoError(errno, "write", path);
    }
    p += n;
    left -= static_cast<size_t>(n);
  }
  return absl::OkStatus();
}

void RemoveTree(const std::string& path) {
  std::error_code ec;
  std::filesystem::remove_all(path, ec);  // best effort: there is nobody to report to
}

enum class PathState { kAbsent, kEmptyDir, kNonEmptyDir, kNotDir };

absl::StatusOr<PathState> Inspect(const std::string& path) {
  struct stat st;
  if (::lstat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) return PathState::kAbsent;
    return ErrnoError(errno, "stat", path);
  }
  if (!S_ISDIR(st.st_mode)) return PathState::kNotDir;
  std::error_code ec;
  const bool empty = std::filesystem::is_empty(path, ec);
  if (ec) return absl::ErrnoToStatus(ec.value(), absl::StrCat("read folder ", path));
  return empty ? PathState::kEmptyDir : PathState::kNonEmptyDir;
}

// mkdir -p `dir`: creates each missing folder from the outermost down and appends it to
// `*created` (so that the caller can undo exactly what it did). A folder that appears meanwhile
// (EEXIST from a concurrent mkdir) is fine and not ours. On error, the folders created so far stay
// in `*created` for the caller to remove.
absl::Status MakeParents(const std::string& dir, absl::string_view what,
                         std::vector<std::string>* created) {
  std::vector<std::string> missing;  // innermost first
  std::string path = dir;
  while (true) {
    struct stat st;
    if (::stat(path.c_str(), &st) == 0) {
      if (!S_ISDIR(st.st_mode))
        return absl::NotFoundError(absl::StrCat(what, ": ", path, " is not a folder"));
      break;
    }
    // ENOTDIR: a file further up; walking on finds it and says so.
    if (errno != ENOENT && errno != ENOTDIR)
      return ErrnoError(errno, absl::StrCat(what, ": stat"), path);
    missing.push_back(path);
    auto [parent, base] = SplitPath(path);
    if (parent == path || parent == "/" || parent == ".") break;
    path = parent;
  }
  for (auto it = missing.rbegin(); it != missing.rend(); ++it) {
    if (::mkdir(it->c_str(), 0777) == 0) {
      created->push_back(*it);
    } else if (errno != EEXIST) {
      return ErrnoError(errno, absl::StrCat(what, ": mkdir"), *it);
    }
  }
  return absl::OkStatus();
}

// Removes the folders MakeParents created, innermost first; rmdir(2) leaves any that someone else
// has put something into since.
void RemoveCreatedParents(const std::vector<std::string>& created) {
  for (auto it = created.rbegin(); it != created.rend(); ++it) ::rmdir(it->c_str());
}

absl::Status CheckFinal(const std::string& final_path, PathState state, bool overwrite) {
  if (state == PathState::kNotDir)
    return absl::AlreadyExistsError(absl::StrCat(final_path, " exists and is not a folder"));
  if (state == PathState::kNonEmptyDir && !overwrite)
    return absl::AlreadyExistsError(absl::StrCat(final_path, " exists and is not empty"));
  return absl::OkStatus();
}

}  // namespace

absl::Status WriteFileAtomically(const std::string& path, std::string_view contents) {
  auto [dir, base] = SplitPath(path);
  if (base.empty() || base == "." || base == "..")
    return absl::InvalidArgumentError(absl::StrCat("path=", path, ": not a file name"));
  std::string temp;
  int fd = -1;
  for (int attempt = 0; attempt < kMaxNameAttempts && fd < 0; ++attempt) {
    temp = absl::StrCat(dir, "/.", base, ".tmp-", RandomSuffix());
    fd = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    if (fd < 0 && errno != EEXIST) return ErrnoError(errno, "open", temp);
  }
  if (fd < 0) return absl::InternalError(absl::StrCat("no free temporary name beside ", path));

  absl::Status status = WriteAll(fd, contents, temp);
  if (status.ok() && ::fsync(fd) != 0) status = ErrnoError(errno, "fsync", temp);
  // close() can report a deferred write error (NFS, quota): it must be checked too.
  if (::close(fd) != 0 && status.ok()) status = ErrnoError(errno, "close", temp);
  if (status.ok() && ::rename(temp.c_str(), path.c_str()) != 0)
    status = ErrnoError(errno, "rename", path);
  if (!status.ok()) {
    ::unlink(temp.c_str());
    return status;
  }
  return FsyncPath(dir, /*directory=*/true);
}

AtomicDirectory::AtomicDirectory(std::string final_path, std::string temp_path, Options options,
                                 std::vector<std::string> created_parents)
    : final_path_(std::move(final_path)),
      temp_path_(std::move(temp_path)),
      options_(options),
      created_parents_(std::move(created_parents)) {}

AtomicDirectory::~AtomicDirectory() {
  if (committed_) return;
  if (!temp_path_.empty()) RemoveTree(temp_path_);
  RemoveCreatedParents(created_parents_);
}

absl::StatusOr<std::unique_ptr<AtomicDirectory>> AtomicDirectory::Create(
    const std::string& final_path, const Options& options) {
  const std::string final_clean = StripTrailingSlashes(final_path);
  auto [parent, base] = SplitPath(final_clean);
  if (final_clean.empty() || base.empty() || base == "." || base == "..")
    return absl::InvalidArgumentError(
        absl::StrCat("path='", final_path, "': not a usable output folder name"));
  // A missing parent means `<final>` is missing too: it is checked after the parents exist.
  std::vector<std::string> created;
  absl::Status status = MakeParents(parent, absl::StrCat("output folder ", final_clean), &created);
  absl::StatusOr<PathState> state = PathState::kAbsent;
  if (status.ok()) state = Inspect(final_clean);
  if (status.ok()) status = state.status();
  if (status.ok()) status = CheckFinal(final_clean, *state, options.overwrite);
  if (status.ok()) {
    status = absl::InternalError(absl::StrCat("no free temporary name beside ", final_clean));
    for (int attempt = 0; attempt < kMaxNameAttempts; ++attempt) {
      std::string temp = absl::StrCat(final_clean, ".tmp-", RandomSuffix());
      if (::mkdir(temp.c_str(), 0777) == 0)
        return std::unique_ptr<AtomicDirectory>(
            new AtomicDirectory(final_clean, temp, options, std::move(created)));
      if (errno != EEXIST) {
        status = ErrnoError(errno, "mkdir", temp);
        break;
      }
    }
  }
  RemoveCreatedParents(created);
  return status;
}

std::string AtomicDirectory::FilePath(std::string_view name) const {
  return absl::StrCat(temp_path_, "/", absl::string_view(name.data(), name.size()));
}

absl::Status AtomicDirectory::Commit() {
  if (committed_)
    return absl::FailedPreconditionError(absl::StrCat(final_path_, ": already committed"));
  const std::string& crash = options_.crash_point_prefix;
  if (!crash.empty()) CrashPoint((crash + ".before_fsync").c_str());
  RETURN_IF_ERROR(FsyncTree(temp_path_));
  if (!crash.empty()) CrashPoint((crash + ".before_rename").c_str());
  ASSIGN_OR_RETURN(PathState state, Inspect(final_path_));
  RETURN_IF_ERROR(CheckFinal(final_path_, state, options_.overwrite));

  if (state != PathState::kNonEmptyDir) {
    // rename(2) replaces an empty folder and creates a missing one in one step.
    if (::rename(temp_path_.c_str(), final_path_.c_str()) != 0) {
      if (errno == ENOTEMPTY || errno == EEXIST)  // filled by someone else since Inspect()
        return absl::AlreadyExistsError(absl::StrCat(final_path_, " exists and is not empty"));
      return ErrnoError(errno, "rename", final_path_);
    }
  } else if (::renameat2(AT_FDCWD, temp_path_.c_str(), AT_FDCWD, final_path_.c_str(),
                         RENAME_EXCHANGE) == 0) {
    // The old contents now sit at temp_path_.
    RemoveTree(temp_path_);
  } else if (errno == EINVAL || errno == ENOSYS) {
    // No atomic exchange on this file system: move the old folder aside first. `final_path_` is
    // missing for a moment, but it is never partial.
    std::string aside;
    bool moved = false;
    for (int attempt = 0; attempt < kMaxNameAttempts && !moved; ++attempt) {
      aside = absl::StrCat(final_path_, ".old-", RandomSuffix());
      if (::access(aside.c_str(), F_OK) == 0) continue;
      if (::rename(final_path_.c_str(), aside.c_str()) != 0)
        return ErrnoError(errno, "rename", final_path_);
      moved = true;
    }
    if (!moved) return absl::InternalError(absl::StrCat("no free name beside ", final_path_));
    if (::rename(temp_path_.c_str(), final_path_.c_str()) != 0) {
      const int err = errno;
      ::rename(aside.c_str(), final_path_.c_str());  // put the old one back
      return ErrnoError(err, "rename", final_path_);
    }
    RemoveTree(aside);
  } else {
    return ErrnoError(errno, "renameat2", final_path_);
  }
  committed_ = true;
  if (!crash.empty()) CrashPoint((crash + ".after_rename").c_str());
  // The parents it created now hold the output and stay. Their own entries are not fsync'ed: a
  // crash can lose a new parent folder together with the output, never leave a partial output.
  created_parents_.clear();
  return FsyncPath(SplitPath(final_path_).first, /*directory=*/true);
}

void SetFsyncObserverForTesting(void (*observer)(const std::string& path)) {
  g_fsync_observer = observer;
}

}  // namespace optower
