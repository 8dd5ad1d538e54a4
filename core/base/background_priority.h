// BackgroundPriority: the OS scheduling class of the server's background work — snapshot builds
// (re-embedding the catalog, training and filling a new index) and training jobs — so that it uses
// only the CPU that serving leaves idle (docs/SERVING.md "Background work").
//
// Why SCHED_IDLE by default: on a small machine a swap's index build or a training epoch runs beside
// request threads on the same cores. At normal priority that raised the serving p99 4-6x during a
// swap, at SCHED_IDLE 1.75x (docs/BENCHMARKS.md §5): a SCHED_IDLE thread gets CPU time only when no
// normal thread wants it and is preempted as soon as one becomes runnable on its core, whereas a
// normal (or nice 19) thread keeps a fair share of the cores the request threads need.
//
// Linux only. The policy is per thread and inherited by threads created afterwards by that thread
// (OpenMP workers of its parallel regions included), so background work runs on a *dedicated* thread
// that sets its priority first: RunWithPriority creates one per call; long-lived workers (the trainer)
// call SetCurrentThreadPriority once at their start. An unprivileged thread cannot raise its
// priority back, which is why the helpers never lower a pooled thread (e.g. a gRPC handler).
#ifndef OPTOWER_CORE_BASE_BACKGROUND_PRIORITY_H_
#define OPTOWER_CORE_BASE_BACKGROUND_PRIORITY_H_

#include <optional>
#include <string>
#include <type_traits>
#include <utility>

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace optower {

enum class BackgroundPriority {
  kIdle,    // SCHED_IDLE: runs only on CPU time nobody else wants (default)
  kNice,    // SCHED_OTHER at nice 19: a small but guaranteed share under contention
  kNormal,  // unchanged: the calling thread's own priority
};

// "idle" | "nice" | "normal" (InvalidArgument naming the value otherwise), and back.
absl::StatusOr<BackgroundPriority> ParseBackgroundPriority(absl::string_view name);
const char* BackgroundPriorityName(BackgroundPriority priority);

// Lowers the calling thread to `priority` (kNormal: does nothing). Irreversible for an unprivileged
// process: call it only on a thread that exists for background work. The OS error as Internal
// (e.g. a seccomp profile that forbids sched_setscheduler).
absl::Status SetCurrentThreadPriority(BackgroundPriority priority);

// Runs `work` on a new thread at `priority` and returns when it has finished. kNormal runs `work` on
// the calling thread. If the priority cannot be set, `work` still runs (at the inherited priority)
// and the error is returned after it, for the caller to report; `work`'s own outcome is its business.
absl::Status RunWithPriority(BackgroundPriority priority, absl::FunctionRef<void()> work);

// Prints one warning per process to stderr that background work runs at normal priority because
// `priority` could not be set (`error`).
void WarnPriorityNotSet(BackgroundPriority priority, const absl::Status& error);

// RunWithPriority for work that must not fail over its scheduling class (snapshot builds, training
// jobs): returns what `fn` returns (void allowed); a priority that cannot be set costs one warning
// (WarnPriorityNotSet), not the work.
template <typename Fn>
auto RunAtPriority(BackgroundPriority priority, Fn&& fn) -> decltype(fn()) {
  using Result = decltype(fn());
  if constexpr (std::is_void_v<Result>) {
    const absl::Status set = RunWithPriority(priority, [&] { fn(); });
    if (!set.ok()) WarnPriorityNotSet(priority, set);
  } else {
    std::optional<Result> out;
    const absl::Status set = RunWithPriority(priority, [&] { out.emplace(fn()); });
    if (!set.ok()) WarnPriorityNotSet(priority, set);
    return std::move(*out);
  }
}

}  // namespace optower

#endif  // OPTOWER_CORE_BASE_BACKGROUND_PRIORITY_H_
