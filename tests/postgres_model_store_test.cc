// PostgresModelStore beyond the shared contract (model_store_test.cc): two instances on one schema
// (two processes' view: a trainer and a replica), NOTIFY optower_current, the write guard (a fenced
// trainer publishes nothing), a newer schema refused, a Save killed in the middle of its
// transaction, chunked files that round-trip byte for byte.
#include "core/storage/postgres_model_store.h"

#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>

#include "absl/time/clock.h"
#include "core/storage/pg_connection.h"
#include "core/storage/postgres_model_files.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/pg_test_db.h"
#include "tests/testing/store_fixture.h"

namespace optower {
namespace {

using ::testing::HasSubstr;

absl::Status SaveIn(ModelStore& store, const std::string& version, bool promoted = true) {
  ModelManifest m;
  m.promoted = promoted;
  m.decision = promoted ? "promoted" : "rejected";
  const TwoTowerModel policy = testutil::StoreTestModel(1);
  const TwoTowerModel qhat = testutil::StoreTestModel(2);
  return store.Save(version, policy, &qhat, testutil::StoreTestCatalog(), m);
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Relative path -> content of every file under `dir`.
std::map<std::string, std::string> Tree(const std::string& dir) {
  std::map<std::string, std::string> out;
  for (const auto& e : std::filesystem::recursive_directory_iterator(dir))
    if (e.is_regular_file())
      out[std::filesystem::relative(e.path(), dir).string()] = ReadFile(e.path().string());
  return out;
}

std::set<std::string> Entries(const std::string& dir) {
  std::set<std::string> out;
  std::error_code ec;
  for (auto it = std::filesystem::directory_iterator(dir, ec);
       !ec && it != std::filesystem::directory_iterator(); it.increment(ec))
    out.insert(it->path().filename().string());
  return out;
}

class PostgresModelStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(schema_.ok()) << schema_.status();
    std::string tmpl = ::testing::TempDir() + "/pg_model_store_test.XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    root_ = tmpl;
    absl::StatusOr<std::unique_ptr<PgConnection>> c = PgConnection::Connect(schema_.dsn(), "test");
    ASSERT_TRUE(c.ok()) << c.status();
    sql_ = std::move(*c);
  }
  void TearDown() override {
    SetPgModelChunkBytesForTesting(0);
    std::error_code ec;
    std::filesystem::remove_all(root_, ec);
  }

  std::unique_ptr<ModelStore> Open(const std::string& cache,
                                   PostgresModelStore::WriteGuard guard = nullptr) {
    absl::StatusOr<std::unique_ptr<ModelStore>> s = PostgresModelStore::Open(
        schema_.dsn(), root_ + "/" + cache, ModelStore::Options(), std::move(guard));
    EXPECT_TRUE(s.ok()) << s.status();
    return s.ok() ? std::move(*s) : nullptr;
  }

  int64_t Count(const std::string& sql) {
    absl::StatusOr<PgResult> r = sql_->Query(sql, {}, "count");
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? r->GetInt(0, 0) : -1;
  }

  testing::PgTestSchema schema_;
  std::string root_;
  std::unique_ptr<PgConnection> sql_;  // the test's own look at the tables
};

TEST_F(PostgresModelStoreTest, AVersionPublishedByOneInstanceIsServedByAnother) {
  std::unique_ptr<ModelStore> trainer = Open("trainer");
  std::unique_ptr<ModelStore> replica = Open("replica");
  ASSERT_TRUE(trainer && replica);
  ASSERT_TRUE(SaveIn(*trainer, "000001").ok());
  ASSERT_TRUE(trainer->SetCurrent("000001").ok());
  EXPECT_EQ(*replica->NextVersion(), "000002");
  absl::StatusOr<std::optional<std::string>> current = replica->Current();
  ASSERT_TRUE(current.ok()) << current.status();
  EXPECT_EQ(**current, "000001");
  EXPECT_EQ(**replica->ServingVersion(), "000001");

  // The replica's cache is filled on the first Load: the complete folder, nothing else left.
  EXPECT_FALSE(std::filesystem::exists(replica->VersionDir("000001")));
  absl::StatusOr<ModelFolder> folder = replica->Load("000001");
  ASSERT_TRUE(folder.ok()) << folder.status();
  EXPECT_TRUE(folder->reward_model.has_value());
  ASSERT_TRUE(folder->items.has_value());
  EXPECT_EQ(folder->items->ids, testutil::StoreTestCatalog().ids);
  EXPECT_EQ(Entries(root_ + "/replica"), (std::set<std::string>{"000001"}));
  // Byte for byte what the trainer wrote (its cache holds its own local copy).
  EXPECT_EQ(Tree(replica->VersionDir("000001")), Tree(trainer->VersionDir("000001")));

  // A second Load reads the cache, not the database: it works with the rows gone.
  ASSERT_TRUE(sql_->Exec("DELETE FROM model_files WHERE version = '000001'", "delete").ok());
  EXPECT_TRUE(replica->Load("000001").ok());
}

TEST_F(PostgresModelStoreTest, ChunkedFilesRoundTripByteForByte) {
  SetPgModelChunkBytesForTesting(100);  // every weights file spans several chunks
  std::unique_ptr<ModelStore> trainer = Open("trainer");
  std::unique_ptr<ModelStore> replica = Open("replica");
  ASSERT_TRUE(trainer && replica);
  ASSERT_TRUE(SaveIn(*trainer, "000001").ok());
  EXPECT_GT(Count("SELECT max(chunk) FROM model_files"), 2);
  ASSERT_TRUE(replica->Load("000001").ok());
  EXPECT_EQ(Tree(replica->VersionDir("000001")), Tree(trainer->VersionDir("000001")));
}

TEST_F(PostgresModelStoreTest, ListenerHearsSetCurrent) {
  std::unique_ptr<ModelStore> trainer = Open("trainer");
  ASSERT_TRUE(trainer);
  ASSERT_TRUE(sql_->Listen(kPgCurrentChannel).ok());
  ASSERT_TRUE(SaveIn(*trainer, "000001").ok());
  ASSERT_TRUE(trainer->SetCurrent("000001").ok());
  std::vector<std::string> payloads;
  const absl::Time deadline = absl::Now() + absl::Seconds(10);
  while (payloads.empty() && absl::Now() < deadline) {
    absl::StatusOr<std::vector<PgConnection::Notification>> n =
        sql_->WaitForNotifications(absl::Milliseconds(200));
    ASSERT_TRUE(n.ok()) << n.status();
    for (const auto& x : *n) {
      EXPECT_EQ(x.channel, kPgCurrentChannel);
      payloads.push_back(x.payload);
    }
  }
  EXPECT_EQ(payloads, std::vector<std::string>{"000001"});
}

TEST_F(PostgresModelStoreTest, AFailingWriteGuardPublishesNothing) {
  std::atomic<bool> fenced{false};
  std::unique_ptr<ModelStore> trainer = Open("trainer", [&](PgConnection&) {
    return fenced ? absl::FailedPreconditionError("fenced: another trainer holds the lease")
                  : absl::OkStatus();
  });
  ASSERT_TRUE(trainer);
  ASSERT_TRUE(SaveIn(*trainer, "000001").ok());
  ASSERT_TRUE(trainer->SetCurrent("000001").ok());
  ASSERT_TRUE(SaveIn(*trainer, "000002").ok());

  fenced = true;
  // The guard runs after the files are inserted: they are rolled back with the models row.
  absl::Status saved = SaveIn(*trainer, "000003");
  EXPECT_EQ(saved.code(), absl::StatusCode::kFailedPrecondition) << saved;
  EXPECT_THAT(saved.message(), HasSubstr("fenced"));
  EXPECT_EQ(trainer->SetCurrent("000002").code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(trainer->UpdateManifest("000002", [](ModelManifest& m) { m.promoted = false; }).code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(trainer->Prune().status().code(), absl::StatusCode::kFailedPrecondition);

  std::unique_ptr<ModelStore> replica = Open("replica");
  ASSERT_TRUE(replica);
  EXPECT_EQ(replica->List()->size(), 2u);
  EXPECT_EQ(replica->GetManifest("000003").status().code(), absl::StatusCode::kNotFound);
  EXPECT_TRUE(replica->GetManifest("000002")->promoted);
  EXPECT_EQ(**replica->Current(), "000001");
  EXPECT_EQ(Count("SELECT count(*) FROM model_files WHERE version = '000003'"), 0);
  // Nor anything in the trainer's cache.
  EXPECT_EQ(Entries(root_ + "/trainer"), (std::set<std::string>{"000001", "000002"}));
}

TEST_F(PostgresModelStoreTest, ANewerSchemaIsRefused) {
  ASSERT_TRUE(Open("a"));
  ASSERT_TRUE(sql_->Exec("UPDATE optower_schema SET version = 99 WHERE component = 'models'",
                         "bump").ok());
  absl::StatusOr<std::unique_ptr<ModelStore>> s =
      PostgresModelStore::Open(schema_.dsn(), root_ + "/b", ModelStore::Options());
  EXPECT_EQ(s.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(s.status().message(), HasSubstr("upgrade optower"));
}

// SIGKILL of a process in the middle of Save's transaction (its files inserted, not committed):
// no trace of the version for anyone else, and its number is free again.
TEST_F(PostgresModelStoreTest, ASaveKilledMidTransactionLeavesNoVersion) {
  int ready[2];
  ASSERT_EQ(::pipe(ready), 0);
  const pid_t child = ::fork();  // first thing in the test: no torch threads exist yet
  ASSERT_GE(child, 0);
  if (child == 0) {
    ::close(ready[0]);
    absl::StatusOr<std::unique_ptr<ModelStore>> s = PostgresModelStore::Open(
        schema_.dsn(), root_ + "/child", ModelStore::Options(), [&](PgConnection&) {
          // Everything is inserted; tell the parent, then wait to be killed.
          const char c = 'x';
          if (::write(ready[1], &c, 1) != 1) ::_exit(3);
          ::pause();
          return absl::OkStatus();
        });
    if (!s.ok()) ::_exit(2);
    SaveIn(**s, "000001").IgnoreError();
    ::_exit(1);
  }
  ::close(ready[1]);
  char c = 0;
  const ssize_t n = ::read(ready[0], &c, 1);  // blocks until the child is in its transaction
  ::close(ready[0]);
  ASSERT_EQ(n, 1) << "the child died before its Save reached the guard";
  ::kill(child, SIGKILL);
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  EXPECT_TRUE(WIFSIGNALED(status));

  std::unique_ptr<ModelStore> replica = Open("replica");
  ASSERT_TRUE(replica);
  EXPECT_TRUE(replica->List()->empty());
  EXPECT_EQ(*replica->NextVersion(), "000001");
  // The server rolls the dead session back (it may take a moment to notice the closed socket).
  const absl::Time deadline = absl::Now() + absl::Seconds(10);
  while (Count("SELECT count(*) FROM model_files") != 0 && absl::Now() < deadline)
    absl::SleepFor(absl::Milliseconds(50));
  EXPECT_EQ(Count("SELECT count(*) FROM model_files"), 0);
  EXPECT_TRUE(SaveIn(*replica, "000001").ok());
}

}  // namespace
}  // namespace optower
