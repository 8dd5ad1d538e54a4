// Crash-safe output: a reader (or a later command) sees either the complete old state or the
// complete new one, never a half-written file or folder. Every CLI command writes its output
// through these.
//
// Both rely on rename(2) being atomic within one file system, which is why the temporary always
// lives beside the final path (same folder), never in /tmp.
#ifndef OPTOWER_CORE_BASE_ATOMIC_FILE_H_
#define OPTOWER_CORE_BASE_ATOMIC_FILE_H_

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace optower {

// Writes `contents` to `path`: a temporary file `<dir>/.<name>.tmp-<random>` is written, fsync'ed
// and renamed over `path`, then the folder is fsync'ed so the rename itself survives a crash. On
// failure the temporary is removed and `path` is untouched. The file gets mode 0666 & ~umask.
// Errors carry the errno-derived code (NotFound when the folder does not exist, PermissionDenied,
// ...). Thread safety: safe to call concurrently (for different paths; for the same path the last
// rename wins).
absl::Status WriteFileAtomically(const std::string& path, std::string_view contents);

// Writes a whole output folder atomically:
//
//   ASSIGN_OR_RETURN(auto dir, AtomicDirectory::Create("out/run1", AtomicDirectory::Options{}));
//   RETURN_IF_ERROR(WriteFileAtomically(dir->FilePath("logs.csv"), text));
//   RETURN_IF_ERROR(dir->Commit());   // "out/run1" appears, complete, in one step
//
// Create() makes `<final>.tmp-<random>` beside `<final>`; the caller writes into it (path()), by any
// means (torch::save, ofstream, WriteFileAtomically); Commit() fsyncs every file and folder in it
// (so that after a power loss the renamed folder holds the data, not empty or short files), renames
// it to `<final>` and fsyncs the parent folder. If the object is destroyed without a successful
// Commit() (an error anywhere on the way), the temporary folder and everything in it are removed,
// so a failed command leaves nothing behind.
//
// Missing parent folders of `<final>` are created (mkdir -p). Those this object created are removed
// again (if still empty) when it is destroyed without a successful Commit(), so a failed command
// leaves no empty folders behind either.
//
// `<final>` may already exist as an empty folder (it is replaced). If it exists and is non-empty,
// Create() and Commit() fail with AlreadyExists unless `overwrite` is set; with `overwrite` the old
// folder is swapped out atomically (renameat2 RENAME_EXCHANGE) and then deleted, so readers never
// see a missing or partial `<final>`. A non-folder at `<final>` is always AlreadyExists.
//
// Thread safety: one object belongs to one thread. Not copyable; movable only through the
// unique_ptr.
class AtomicDirectory {
 public:
  struct Options {
    bool overwrite = false;  // replace a non-empty existing `<final>` on Commit()
    // Non-empty: Commit() passes the test-only crash points (core/base/test_points.h)
    // "<prefix>.before_fsync", "<prefix>.before_rename" and "<prefix>.after_rename".
    std::string crash_point_prefix;
  };

  // Checks `<final>` early (so a command fails before doing expensive work), creates the missing
  // parent folders and the temporary folder. A path component that exists but is not a folder is
  // NotFound; a parent that cannot be created carries the mkdir errno (PermissionDenied, ...).
  static absl::StatusOr<std::unique_ptr<AtomicDirectory>> Create(const std::string& final_path,
                                                                 const Options& options);

  ~AtomicDirectory();
  AtomicDirectory(const AtomicDirectory&) = delete;
  AtomicDirectory& operator=(const AtomicDirectory&) = delete;

  // The temporary folder to write into (valid until Commit() or destruction).
  const std::string& path() const { return temp_path_; }
  // path() + "/" + name.
  std::string FilePath(std::string_view name) const;
  const std::string& final_path() const { return final_path_; }

  // Makes the folder visible at final_path(). FailedPrecondition if called twice.
  absl::Status Commit();
  bool committed() const { return committed_; }

 private:
  AtomicDirectory(std::string final_path, std::string temp_path, Options options,
                  std::vector<std::string> created_parents);

  std::string final_path_;
  std::string temp_path_;
  Options options_;
  bool committed_ = false;
  // Parent folders Create() made, outermost first; removed (if empty) unless committed.
  std::vector<std::string> created_parents_;
};

// Test-only seam: when set, called with the path of every file and folder that Commit() fsyncs
// (before the fsync). Not thread-safe against concurrent commits: set it in a test's own thread
// while nothing else commits; pass nullptr to clear.
void SetFsyncObserverForTesting(void (*observer)(const std::string& path));

}  // namespace optower

#endif  // OPTOWER_CORE_BASE_ATOMIC_FILE_H_
