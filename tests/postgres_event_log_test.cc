// What only the PostgreSQL event log has to show (its shared contract with SQLite, including the
// SIGKILL durability of synchronous mode, runs against both backends in tests/event_log_test.cc):
// several processes ("replicas") writing one schema, feedback arriving at another replica than the
// one that served, a broken writer connection and a lasting write failure, strings TEXT cannot
// hold, and the schema version check.
#include "core/storage/postgres_event_log.h"

#include <atomic>
#include <cstring>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "core/storage/event_log.h"
#include "core/storage/pg_connection.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/pg_test_db.h"

namespace optower {
namespace {

using Durability = EventLogOptions::Durability;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

// A slate of `n` items for `request_id`; item ids base, base + 1, ...
ServedSlate Slate(const std::string& request_id, int64_t base, int n = 3) {
  ServedSlate s;
  s.request_id = request_id;
  s.k = n;
  s.m = 2 * n;
  s.epsilon = 0.1;
  s.temperature = 0.5;
  s.model_version = "v1";
  s.context = {0.5f, -1.25f};
  s.time_us = 1'700'000'000'000'000;
  for (int j = 0; j < n; ++j) s.items.push_back({base + j, j, 1.0 / (3.0 + j), 1.0 / (2.0 + j)});
  return s;
}

class PostgresEventLogTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(schema_.ok()) << schema_.status(); }

  EventLogOptions Options(Durability d) const {
    EventLogOptions o;
    o.durability = d;
    return o;
  }
  std::unique_ptr<EventLog> OpenOrDie(const EventLogOptions& o) {
    absl::StatusOr<std::unique_ptr<EventLog>> log = PostgresEventLog::Open(o, schema_.dsn());
    EXPECT_TRUE(log.ok()) << log.status();
    return log.ok() ? std::move(*log) : nullptr;
  }
  std::unique_ptr<PgConnection> Connect() {
    absl::StatusOr<std::unique_ptr<PgConnection>> c = PgConnection::Connect(schema_.dsn(), "test");
    EXPECT_TRUE(c.ok()) << c.status();
    return c.ok() ? std::move(*c) : nullptr;
  }
  // Terminates the server backends of this schema's event log writers; returns how many.
  int64_t TerminateWriters() {
    std::unique_ptr<PgConnection> c = Connect();
    if (c == nullptr) return -1;
    absl::StatusOr<PgResult> r = c->Query(
        "SELECT COUNT(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = $1",
        {PgParam::Text(absl::StrCat("optower event_log writer ", schema_.name()))}, "terminate");
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? r->GetInt(0, 0) : -1;
  }

  testing::PgTestSchema schema_;
};

// A snapshot taken by a reader while the replicas write: the watermark and the rows up to it.
struct Snapshot {
  int64_t watermark = 0;
  std::vector<std::pair<int64_t, std::string>> rows;  // (served_id, request_id)
};

TEST_F(PostgresEventLogTest, TwoReplicasShareOneLogWithServedIdsIncreasingInCommitOrder) {
  size_t expected_rows = 0;  // the second round appends to the first one's log
  for (Durability d : {Durability::kGroupCommit, Durability::kSynchronous}) {
    SCOPED_TRACE(d == Durability::kGroupCommit ? "group commit" : "synchronous");
    const std::string tag = d == Durability::kGroupCommit ? "g" : "s";
    std::unique_ptr<EventLog> a = OpenOrDie(Options(d));
    std::unique_ptr<EventLog> b = OpenOrDie(Options(d));
    ASSERT_NE(a, nullptr);
    ASSERT_NE(b, nullptr);
    constexpr int kPerThread = 60;
    std::atomic<int> failures{0};
    std::atomic<bool> done{false};
    std::vector<std::thread> writers;
    for (int t = 0; t < 4; ++t) {  // two appenders per replica
      writers.emplace_back([&, t] {
        EventLog* log = t % 2 == 0 ? a.get() : b.get();
        for (int i = 0; i < kPerThread; ++i) {
          const int64_t n = t * 1000 + i;
          if (!log->AppendSlate(Slate(absl::StrCat(tag, n), 10 * n)).ok()) ++failures;
        }
      });
    }
    // Every watermark seen while they write must name a fixed set of rows: a commit after it
    // never brings a smaller id (ids increase in commit order across both processes).
    std::vector<Snapshot> snapshots;
    std::thread reader([&] {
      while (!done.load()) {
        absl::StatusOr<int64_t> w = b->MaxServedId();
        if (!w.ok()) break;
        EventLog::ReadOptions range;
        range.max_served_id = *w;
        absl::StatusOr<std::vector<EventLog::JoinedRow>> rows = a->ReadJoined(range);
        if (!rows.ok()) break;
        Snapshot s{*w, {}};
        for (const EventLog::JoinedRow& r : *rows) s.rows.emplace_back(r.served_id, r.request_id);
        snapshots.push_back(std::move(s));
        absl::SleepFor(absl::Milliseconds(2));
      }
    });
    for (std::thread& w : writers) w.join();
    ASSERT_TRUE(a->Flush().ok());
    ASSERT_TRUE(b->Flush().ok());
    done = true;
    reader.join();
    EXPECT_EQ(failures.load(), 0);

    absl::StatusOr<std::vector<EventLog::JoinedRow>> from_a = a->ReadJoined({});
    absl::StatusOr<std::vector<EventLog::JoinedRow>> from_b = b->ReadJoined({});
    ASSERT_TRUE(from_a.ok() && from_b.ok());
    expected_rows += 4u * kPerThread * 3;
    ASSERT_EQ(from_a->size(), expected_rows);
    ASSERT_EQ(from_b->size(), from_a->size());
    std::map<std::string, std::vector<int64_t>> ids_of;
    for (size_t r = 0; r < from_a->size(); ++r) {
      const EventLog::JoinedRow& row = (*from_a)[r];
      EXPECT_EQ(row.served_id, (*from_b)[r].served_id);
      if (r > 0) EXPECT_EQ(row.served_id, (*from_a)[r - 1].served_id + 1);  // dense, unique
      ids_of[row.request_id].push_back(row.served_id);
    }
    for (const auto& [request, ids] : ids_of) {  // each slate a contiguous range, in item order
      ASSERT_EQ(ids.size(), 3u) << request;
      EXPECT_EQ(ids[2], ids[0] + 2) << request;
    }
    EXPECT_EQ(a->stats().served_rows + b->stats().served_rows, 4 * kPerThread * 3);
    EXPECT_GT(a->stats().served_rows, 0);
    EXPECT_GT(b->stats().served_rows, 0);
    for (const Snapshot& s : snapshots) {
      std::vector<std::pair<int64_t, std::string>> now;
      for (const EventLog::JoinedRow& r : *from_a) {
        if (r.served_id <= s.watermark) now.emplace_back(r.served_id, r.request_id);
      }
      ASSERT_EQ(now, s.rows) << "watermark " << s.watermark << " named other rows later";
    }
    std::printf("[ info ] %s: %zu snapshots checked, commits %lld + %lld\n", tag.c_str(),
                snapshots.size(), static_cast<long long>(a->stats().commits),
                static_cast<long long>(b->stats().commits));
  }
}

TEST_F(PostgresEventLogTest, FeedbackAtAnotherReplicaJoinsTheSlateAndTheFirstWriteWinsAcrossThem) {
  std::unique_ptr<EventLog> a = OpenOrDie(Options(Durability::kGroupCommit));
  std::unique_ptr<EventLog> b = OpenOrDie(Options(Durability::kSynchronous));
  ASSERT_NE(a, nullptr);
  ASSERT_NE(b, nullptr);
  ASSERT_TRUE(a->AppendSlate(Slate("r1", 10)).ok());
  ASSERT_TRUE(a->Flush().ok());
  absl::StatusOr<std::vector<FeedbackOutcome>> out =
      b->AppendFeedback({{"r1", 11, 1.0, 5}, {"r1", 99, 1.0, 5}, {"nope", 10, 1.0, 5}});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_THAT(*out, ElementsAre(FeedbackOutcome::kAccepted, FeedbackOutcome::kUnknown,
                                FeedbackOutcome::kUnknown));
  // The same pair at the first replica: a duplicate; the first reward stays.
  out = a->AppendFeedback({{"r1", 11, 0.0, 6}, {"r1", 12, 0.25, 6}});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_THAT(*out, ElementsAre(FeedbackOutcome::kDuplicate, FeedbackOutcome::kAccepted));
  ASSERT_TRUE(a->Flush().ok());
  absl::StatusOr<std::vector<EventLog::JoinedRow>> rows = b->ReadJoined({});
  ASSERT_TRUE(rows.ok());
  ASSERT_EQ(rows->size(), 3u);
  EXPECT_FALSE((*rows)[0].has_feedback);
  EXPECT_TRUE((*rows)[1].has_feedback);
  EXPECT_EQ((*rows)[1].reward, 1.0);
  EXPECT_EQ((*rows)[1].feedback_time_us, 5);
  EXPECT_EQ((*rows)[2].reward, 0.25);
  absl::StatusOr<int64_t> n = a->CountFeedback();
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(*n, 2);
  // A request_id logged through one replica is a duplicate at the other.
  const absl::Status again = b->AppendSlate(Slate("r1", 500));
  EXPECT_EQ(again.code(), absl::StatusCode::kAlreadyExists) << again;
  EXPECT_THAT(again.message(), HasSubstr("request_id='r1'"));
}

// Group commit: replica A acknowledges a slate before committing it (up to max_commit_delay later).
// Feedback for it reaching replica B in that window is looked at again after max_commit_delay +
// 50 ms, by which time A has committed: accepted, not unknown. A never-served pair stays unknown.
TEST_F(PostgresEventLogTest, FeedbackRacingAnotherReplicasGroupCommitIsLookedAtAgain) {
  EventLogOptions slow = Options(Durability::kGroupCommit);
  slow.max_commit_delay = absl::Milliseconds(300);  // a wide window, so the race is certain
  std::unique_ptr<EventLog> a = OpenOrDie(slow);
  std::unique_ptr<EventLog> b = OpenOrDie(slow);
  ASSERT_NE(a, nullptr);
  ASSERT_NE(b, nullptr);
  ASSERT_TRUE(a->AppendSlate(Slate("race", 10)).ok());  // acknowledged, not committed yet
  const absl::Time sent = absl::Now();
  absl::StatusOr<std::vector<FeedbackOutcome>> out =
      b->AppendFeedback({{"race", 10, 1.0, 5}, {"never", 10, 1.0, 5}});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_THAT(*out, ElementsAre(FeedbackOutcome::kAccepted, FeedbackOutcome::kUnknown));
  // It waited for the second look (B's own commit of the first decision comes first).
  EXPECT_GE(absl::Now() - sent, absl::Milliseconds(350));
  // With a deadline too close for a second look, unknown stands (sending again is safe).
  ASSERT_TRUE(a->AppendSlate(Slate("race2", 20)).ok());
  out = b->AppendFeedback({{"race2", 20, 1.0, 5}}, absl::Now() + absl::Milliseconds(340));
  if (out.ok()) {
    EXPECT_THAT(*out, ElementsAre(FeedbackOutcome::kUnknown));
  } else {
    EXPECT_EQ(out.status().code(), absl::StatusCode::kDeadlineExceeded) << out.status();
  }
}

TEST_F(PostgresEventLogTest, ABrokenWriterConnectionIsReestablishedAtTheNextBatch) {
  std::unique_ptr<EventLog> log = OpenOrDie(Options(Durability::kSynchronous));
  ASSERT_NE(log, nullptr);
  ASSERT_TRUE(log->AppendSlate(Slate("r1", 10)).ok());
  ASSERT_EQ(TerminateWriters(), 1);
  // Idle when its connection broke: the next batch reconnects before it begins.
  ASSERT_TRUE(log->AppendSlate(Slate("r2", 20)).ok());
  absl::StatusOr<std::vector<FeedbackOutcome>> out = log->AppendFeedback({{"r1", 10, 1.0, 0}});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_THAT(*out, ElementsAre(FeedbackOutcome::kAccepted));
  // Synchronous mode is still in force on the new session: survives a reconnect.
  std::unique_ptr<PgConnection> c = Connect();
  ASSERT_NE(c, nullptr);
  absl::StatusOr<PgResult> r = c->Query(
      "SELECT COUNT(*) FROM pg_stat_activity WHERE application_name = $1",
      {PgParam::Text(absl::StrCat("optower event_log writer ", schema_.name()))}, "count");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->GetInt(0, 0), 1);
  absl::StatusOr<int64_t> max_id = log->MaxServedId();
  ASSERT_TRUE(max_id.ok());
  EXPECT_EQ(*max_id, 6);
}

TEST_F(PostgresEventLogTest, LastingWriteFailureFailsFastAfterTheWindowAndRecoversWithNothingLost) {
  EventLogOptions o = Options(Durability::kGroupCommit);
  o.max_commit_delay = absl::Milliseconds(5);
  o.write_failure_window = absl::Milliseconds(400);
  o.busy_timeout = absl::Milliseconds(100);
  std::unique_ptr<EventLog> log = OpenOrDie(o);
  ASSERT_NE(log, nullptr);
  ASSERT_TRUE(log->AppendSlate(Slate("r0", 0)).ok());
  ASSERT_TRUE(log->Flush().ok());
  // Another session holds the served-id lock (as a stuck replica would): every BEGIN of our writer
  // times out (lock_timeout = busy_timeout); and its connection is broken on top.
  std::unique_ptr<PgConnection> blocker = Connect();
  ASSERT_NE(blocker, nullptr);
  ASSERT_TRUE(blocker->Exec(absl::StrCat("BEGIN; SELECT pg_advisory_xact_lock(",
                                         blocker->LockKey("event_log.served"), ")"),
                            "lock")
                  .ok());
  ASSERT_EQ(TerminateWriters(), 1);
  int acknowledged = 0;
  absl::Status refused;
  const absl::Time start = absl::Now();
  while (absl::Now() - start < absl::Seconds(10)) {
    refused = log->AppendSlate(Slate(absl::StrCat("r", acknowledged + 1), 10 * (acknowledged + 1)));
    if (!refused.ok()) break;
    ++acknowledged;
    absl::SleepFor(absl::Milliseconds(10));
  }
  const absl::Duration until_refused = absl::Now() - start;
  EXPECT_EQ(refused.code(), absl::StatusCode::kUnavailable) << refused;
  EXPECT_GE(until_refused, absl::Milliseconds(400));
  EXPECT_LT(until_refused, absl::Seconds(5));
  EXPECT_EQ(log->WriteStatus().code(), absl::StatusCode::kUnavailable);
  EXPECT_GT(log->stats().write_faults, 0);
  EXPECT_GT(acknowledged, 0);

  ASSERT_TRUE(blocker->Exec("COMMIT", "unlock").ok());
  // The writer's retry commits everything it acknowledged; appends are accepted again.
  const absl::Time recover_by = absl::Now() + absl::Seconds(10);
  while (!log->WriteStatus().ok() && absl::Now() < recover_by) absl::SleepFor(absl::Milliseconds(10));
  EXPECT_TRUE(log->WriteStatus().ok()) << log->WriteStatus();
  ASSERT_TRUE(log->AppendSlate(Slate("after", 100000)).ok());
  ASSERT_TRUE(log->Flush().ok());
  absl::StatusOr<std::vector<EventLog::JoinedRow>> rows = log->ReadJoined({});
  ASSERT_TRUE(rows.ok());
  std::set<std::string> requests;
  for (const EventLog::JoinedRow& r : *rows) requests.insert(r.request_id);
  for (int i = 0; i <= acknowledged; ++i) EXPECT_EQ(requests.count(absl::StrCat("r", i)), 1u) << i;
  EXPECT_EQ(requests.count("after"), 1u);
  EXPECT_EQ(log->stats().lost_events, 0);
}

TEST_F(PostgresEventLogTest, StringsTextCannotHoldAreRefusedAndTheLogGoesOn) {
  std::unique_ptr<EventLog> log = OpenOrDie(Options(Durability::kSynchronous));
  ASSERT_NE(log, nullptr);
  for (const std::string bad : {std::string("r\xff", 2), std::string("a\0b", 3),
                                std::string("\xc0\xaf", 2)}) {
    const absl::Status s = log->AppendSlate(Slate(bad, 10));
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s;
    EXPECT_THAT(s.message(), HasSubstr("not valid UTF-8"));
  }
  ServedSlate bad_version = Slate("ok-id", 10);
  bad_version.model_version = "\xfe";
  EXPECT_EQ(log->AppendSlate(bad_version).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(log->AppendFeedback({{"r\xff", 1, 1.0, 0}}).status().code(),
            absl::StatusCode::kInvalidArgument);
  ASSERT_TRUE(log->AppendSlate(Slate("\xc3\xa9t\xc3\xa9", 10)).ok());  // valid UTF-8 is fine
  ASSERT_TRUE(log->AppendSlate(Slate("ok-id", 20)).ok());
  absl::StatusOr<int64_t> max_id = log->MaxServedId();
  ASSERT_TRUE(max_id.ok());
  EXPECT_EQ(*max_id, 6);
}

TEST_F(PostgresEventLogTest, ADatabaseWithANewerEventLogSchemaIsRefusedNamingBothVersions) {
  {
    std::unique_ptr<EventLog> log = OpenOrDie(Options(Durability::kGroupCommit));
    ASSERT_NE(log, nullptr);
  }
  std::unique_ptr<PgConnection> c = Connect();
  ASSERT_NE(c, nullptr);
  ASSERT_TRUE(c->Exec("UPDATE optower_schema SET version = 7 WHERE component = 'event_log'", "bump")
                  .ok());
  absl::StatusOr<std::unique_ptr<EventLog>> log =
      PostgresEventLog::Open(Options(Durability::kGroupCommit), schema_.dsn());
  EXPECT_EQ(log.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(log.status().message(), HasSubstr("event_log"));
  EXPECT_THAT(log.status().message(), HasSubstr("version 7"));
  EXPECT_THAT(log.status().message(), HasSubstr("up to 1"));
}

TEST_F(PostgresEventLogTest, OpenFailsWithUnavailableWhenTheServerCannotBeReachedAndHidesTheDsn) {
  absl::StatusOr<std::unique_ptr<EventLog>> log = PostgresEventLog::Open(
      Options(Durability::kGroupCommit),
      "host=127.0.0.1 port=1 user=optower password=secret-pw dbname=optower connect_timeout=2");
  EXPECT_EQ(log.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(log.status().message(), ::testing::Not(HasSubstr("secret-pw")));
  EventLogOptions bad = Options(Durability::kGroupCommit);
  bad.max_batch_events = 0;
  EXPECT_EQ(PostgresEventLog::Open(bad, schema_.dsn()).status().code(),
            absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace optower
