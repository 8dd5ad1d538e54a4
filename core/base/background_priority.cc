#include "core/base/background_priority.h"

#include <pthread.h>
#include <sched.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <thread>

#include "absl/strings/str_cat.h"

namespace optower {

absl::StatusOr<BackgroundPriority> ParseBackgroundPriority(absl::string_view name) {
  if (name == "idle") return BackgroundPriority::kIdle;
  if (name == "nice") return BackgroundPriority::kNice;
  if (name == "normal") return BackgroundPriority::kNormal;
  return absl::InvalidArgumentError(absl::StrCat("background_priority='", std::string(name),
                                                 "': must be one of idle, nice, normal"));
}

const char* BackgroundPriorityName(BackgroundPriority priority) {
  switch (priority) {
    case BackgroundPriority::kIdle:
      return "idle";
    case BackgroundPriority::kNice:
      return "nice";
    case BackgroundPriority::kNormal:
      return "normal";
  }
  return "?";
}

absl::Status SetCurrentThreadPriority(BackgroundPriority priority) {
  if (priority == BackgroundPriority::kNormal) return absl::OkStatus();
  // nice 19 in both cases: SCHED_IDLE ignores it, but it keeps the thread at the lowest weight
  // should anything move it back to SCHED_OTHER. setpriority(PRIO_PROCESS, tid) is per thread on
  // Linux (a documented deviation from POSIX, see setpriority(2) BUGS).
  const pid_t tid = static_cast<pid_t>(syscall(SYS_gettid));
  if (setpriority(PRIO_PROCESS, static_cast<id_t>(tid), 19) != 0) {
    return absl::InternalError(
        absl::StrCat("setpriority(tid=", tid, ", 19): ", std::strerror(errno)));
  }
  if (priority == BackgroundPriority::kIdle) {
    sched_param param{};
    param.sched_priority = 0;
    const int rc = pthread_setschedparam(pthread_self(), SCHED_IDLE, &param);
    if (rc != 0) {
      return absl::InternalError(
          absl::StrCat("pthread_setschedparam(SCHED_IDLE): ", std::strerror(rc)));
    }
  }
  return absl::OkStatus();
}

absl::Status RunWithPriority(BackgroundPriority priority, absl::FunctionRef<void()> work) {
  if (priority == BackgroundPriority::kNormal) {
    work();
    return absl::OkStatus();
  }
  absl::Status set;
  std::thread worker([&] {
    set = SetCurrentThreadPriority(priority);
    work();
  });
  worker.join();
  return set;
}

void WarnPriorityNotSet(BackgroundPriority priority, const absl::Status& error) {
  static std::once_flag warned;
  std::call_once(warned, [&] {
    std::fprintf(stderr,
                 "optower: warning: background work (snapshot builds, training) runs at normal "
                 "priority: background_priority=%s could not be set: %s\n",
                 BackgroundPriorityName(priority), std::string(error.message()).c_str());
  });
}

}  // namespace optower
