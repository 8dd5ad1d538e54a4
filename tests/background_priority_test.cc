#include "core/base/background_priority.h"

#include <omp.h>
#include <pthread.h>
#include <sched.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <thread>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "gtest/gtest.h"

namespace optower {
namespace {

int CurrentPolicy() { return sched_getscheduler(0); }  // 0 = the calling thread on Linux
int CurrentNice() {
  return getpriority(PRIO_PROCESS, static_cast<id_t>(syscall(SYS_gettid)));
}

TEST(BackgroundPriorityTest, ParsesNamesAndRejectsOthersNamingTheValue) {
  for (BackgroundPriority p :
       {BackgroundPriority::kIdle, BackgroundPriority::kNice, BackgroundPriority::kNormal}) {
    absl::StatusOr<BackgroundPriority> back = ParseBackgroundPriority(BackgroundPriorityName(p));
    ASSERT_TRUE(back.ok()) << back.status();
    EXPECT_EQ(*back, p);
  }
  absl::StatusOr<BackgroundPriority> bad = ParseBackgroundPriority("low");
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(bad.status().message().find("background_priority='low'"), absl::string_view::npos)
      << bad.status();
}

TEST(BackgroundPriorityTest, IdleRunsOnAnotherThreadAtSchedIdleAndLeavesTheCallerAlone) {
  const int caller_policy = CurrentPolicy();
  const int caller_nice = CurrentNice();
  ASSERT_NE(caller_policy, SCHED_IDLE) << "the test runner itself is at SCHED_IDLE";
  std::thread::id worker_id;
  int policy = -1;
  int nice = -100;
  ASSERT_TRUE(RunWithPriority(BackgroundPriority::kIdle, [&] {
                worker_id = std::this_thread::get_id();
                policy = CurrentPolicy();
                nice = CurrentNice();
              }).ok());
  EXPECT_NE(worker_id, std::this_thread::get_id());
  EXPECT_EQ(policy, SCHED_IDLE);
  EXPECT_EQ(nice, 19);
  EXPECT_EQ(CurrentPolicy(), caller_policy);
  EXPECT_EQ(CurrentNice(), caller_nice);
}

TEST(BackgroundPriorityTest, NiceRunsAtNice19UnderTheNormalPolicy) {
  int policy = -1;
  int nice = -100;
  ASSERT_TRUE(RunWithPriority(BackgroundPriority::kNice, [&] {
                policy = CurrentPolicy();
                nice = CurrentNice();
              }).ok());
  EXPECT_EQ(policy, SCHED_OTHER);
  EXPECT_EQ(nice, 19);
}

TEST(BackgroundPriorityTest, NormalRunsOnTheCallingThread) {
  std::thread::id worker_id;
  ASSERT_TRUE(RunWithPriority(BackgroundPriority::kNormal,
                              [&] { worker_id = std::this_thread::get_id(); })
                  .ok());
  EXPECT_EQ(worker_id, std::this_thread::get_id());
}

// The reason builds run on a fresh thread: the OpenMP workers of its parallel regions (FAISS index
// training, LibTorch forwards) are created by it and inherit its policy. If they did not, a build
// would still compete at normal priority on every core but one.
TEST(BackgroundPriorityTest, OpenMpWorkersOfTheIdleThreadAreIdleToo) {
  constexpr int kThreads = 3;
  absl::Mutex mu;
  std::vector<int> policies;
  int team = 0;
  auto work = [&] {
#pragma omp parallel num_threads(kThreads)
    {
      const int p = CurrentPolicy();
      absl::MutexLock lock(&mu);
      policies.push_back(p);
      team = omp_get_num_threads();
    }
  };
  ASSERT_TRUE(RunWithPriority(BackgroundPriority::kIdle, work).ok());
  ASSERT_EQ(static_cast<int>(policies.size()), team);
  ASSERT_GT(team, 1) << "OpenMP gave a team of one thread; nothing was checked";
  for (int p : policies) EXPECT_EQ(p, SCHED_IDLE);
}

}  // namespace
}  // namespace optower
