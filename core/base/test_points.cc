#include "core/base/test_points.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>

#include "absl/strings/str_cat.h"

namespace optower {
namespace {

const std::string& CrashPointEnv() {
  static const std::string* value = [] {
    const char* v = ::getenv("OPTOWER_TEST_CRASH_POINT");
    return new std::string(v == nullptr ? "" : v);
  }();
  return *value;
}

const std::string& FaultPointEnv() {
  static const std::string* value = [] {
    const char* v = ::getenv("OPTOWER_TEST_FAULT_POINT");
    return new std::string(v == nullptr ? "" : v);
  }();
  return *value;
}

}  // namespace

const std::vector<std::string>& AllCrashPoints() {
  static const std::vector<std::string>* points = new std::vector<std::string>{
      // ModelStore::Save: the version folder under its temporary name, then renamed into place.
      "save.after_weights",   // policy/ and reward_model/ written, items.csv and manifests not
      "save.before_fsync",    // every file written, nothing fsynced by Commit yet
      "save.before_rename",   // every file and folder fsynced, not renamed into place
      "save.after_rename",    // the version folder is visible, its parent not fsynced
      // ModelPublisher::Publish: the engine swaps to the new version.
      "publish.before_swap",
      "publish.after_swap",   // served from memory, CURRENT still names the old version
      // ModelStore::SetCurrent.
      "current.before_write",
      "current.after_write",
      // ModelStore::Prune (retention), after CURRENT moved.
      "prune.after_rename",   // an old version renamed to its trash name, not yet removed
      // CatalogStore::Save (UpsertItems / DeleteItems), before the RPC answers.
      "catalog.before_write",
      "catalog.after_write",  // the new catalog file is durable, the old one not yet removed
  };
  return *points;
}

void CrashPoint(const char* name) {
  const std::string& armed = CrashPointEnv();
  if (armed.empty() || armed != name) return;
  // One line so that a test can tell this death from a real crash; stderr is unbuffered.
  std::fprintf(stderr, "optower: OPTOWER_TEST_CRASH_POINT=%s reached: SIGKILL\n", name);
  ::kill(::getpid(), SIGKILL);
  ::pause();  // SIGKILL is delivered before kill() returns to a single target; never reached
}

absl::Status FaultPoint(const char* name, const std::string& what) {
  const std::string& armed = FaultPointEnv();
  if (armed.empty() || armed != name) return absl::OkStatus();
  return absl::ErrnoToStatus(
      ENOSPC, absl::StrCat(what, " (injected by OPTOWER_TEST_FAULT_POINT=", name, ")"));
}

}  // namespace optower
