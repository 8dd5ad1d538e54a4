// TrainerElection against the real test server: one winner at a time, a standby takes over when
// the winner's session ends (and only then), and the fence refuses a writer whose epoch is stale.
#include "core/storage/trainer_election.h"

#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/pg_test_db.h"

namespace optower {
namespace {

using ::testing::HasSubstr;

class TrainerElectionTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(schema_.ok()) << schema_.status(); }
  std::unique_ptr<TrainerElection> Open(const std::string& holder) {
    absl::StatusOr<std::unique_ptr<TrainerElection>> e = TrainerElection::Open(schema_.dsn(), holder);
    EXPECT_TRUE(e.ok()) << e.status();
    return e.ok() ? std::move(*e) : nullptr;
  }
  std::unique_ptr<PgConnection> Connect() {
    absl::StatusOr<std::unique_ptr<PgConnection>> c = PgConnection::Connect(schema_.dsn(), "test");
    EXPECT_TRUE(c.ok()) << c.status();
    return c.ok() ? std::move(*c) : nullptr;
  }
  testing::PgTestSchema schema_;
};

TEST_F(TrainerElectionTest, OneWinnerAndTakeOverOnRelease) {
  auto a = Open("a"), b = Open("b");
  ASSERT_TRUE(a && b);
  EXPECT_TRUE(*a->TryAcquire());
  EXPECT_FALSE(*b->TryAcquire());
  EXPECT_TRUE(*a->TryAcquire());  // already ours
  EXPECT_TRUE(a->StillHeld());
  const int64_t first = a->epoch();
  EXPECT_GE(first, 1);
  auto conn = Connect();
  ASSERT_TRUE(conn);
  EXPECT_TRUE(a->CheckFence(*conn).ok());
  EXPECT_EQ(TrainerElection::ReadLease(*conn)->first, "a");

  a->Release();
  EXPECT_TRUE(*b->TryAcquire());
  EXPECT_EQ(b->epoch(), first + 1);
  absl::Status stale = a->CheckFence(*conn);
  EXPECT_EQ(stale.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_TRUE(b->CheckFence(*conn).ok());
}

TEST_F(TrainerElectionTest, SessionEndReleasesTheLockAndFencesTheOldHolder) {
  auto a = Open("a"), b = Open("b");
  ASSERT_TRUE(a && b);
  ASSERT_TRUE(*a->TryAcquire());
  // a's database session dies (a network partition, the server killing it): PostgreSQL drops the lock.
  auto admin = Connect();
  ASSERT_TRUE(admin);
  // Only the session holding THIS schema's trainer lock (other tests run in parallel).
  ASSERT_TRUE(admin->Exec(absl::StrCat("SELECT pg_terminate_backend(pid) FROM pg_locks "
                                       "WHERE locktype = 'advisory' AND granted AND "
                                       "((classid::bigint << 32) | objid::bigint) = ",
                                       admin->LockKey("trainer")),
                          "terminate")
                  .ok());
  bool took_over = false;
  for (int i = 0; i < 50 && !took_over; ++i) {
    absl::StatusOr<bool> won = b->TryAcquire();
    ASSERT_TRUE(won.ok()) << won.status();
    took_over = *won;
    if (!took_over) absl::SleepFor(absl::Milliseconds(100));
  }
  ASSERT_TRUE(took_over);
  EXPECT_FALSE(a->StillHeld());
  absl::Status fenced = a->CheckFence(*admin);
  EXPECT_EQ(fenced.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(fenced.message(), HasSubstr("no longer the elected one"));
}

TEST_F(TrainerElectionTest, SchemasElectIndependently) {
  testing::PgTestSchema other;
  ASSERT_TRUE(other.ok());
  auto a = Open("a");
  absl::StatusOr<std::unique_ptr<TrainerElection>> b = TrainerElection::Open(other.dsn(), "b");
  ASSERT_TRUE(a && b.ok());
  EXPECT_TRUE(*a->TryAcquire());
  EXPECT_TRUE(*(*b)->TryAcquire());
}

}  // namespace
}  // namespace optower
