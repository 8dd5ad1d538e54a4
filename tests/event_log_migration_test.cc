// Event log schema 3 (issue 16): served.conditional_propensity round trip, the migration of a
// schema 2 file (its rows read with the draw-remove-renormalise conditional, new rows with the
// stored one), and the refusal of a file from a newer build. Schema 4 (issue 12): requests gain
// `categorical`; a schema 3 file is migrated in place (its rows read with no features), and a
// schema 2 file goes through both migrations.
#include <sqlite3.h>
#include <stdlib.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/storage/event_log.h"
#include "core/storage/sqlite_event_log.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace optower {
namespace {

using ::testing::HasSubstr;

// The schema 2 layout as released (core/storage/event_log_schema.cc before schema 3), with one
// three-item slate (pi_0 = 0.5, 0.25, 0.125), a one-item slate right after it, and a two-item slate
// whose first item holds all the mass (pi_0 = 1: only possible through rounding with epsilon = 0).
constexpr const char* kSchema2File = R"sql(
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
INSERT INTO meta VALUES ('schema_version', '2');
CREATE TABLE requests (
  id            INTEGER PRIMARY KEY,
  request_id    TEXT    NOT NULL UNIQUE,
  k             INTEGER NOT NULL,
  m             INTEGER NOT NULL,
  epsilon       REAL    NOT NULL,
  temperature   REAL    NOT NULL,
  model_version TEXT    NOT NULL,
  context       BLOB    NOT NULL,
  time_us       INTEGER NOT NULL,
  first_served  INTEGER NOT NULL
);
CREATE TABLE served (
  id         INTEGER PRIMARY KEY,
  request    INTEGER NOT NULL,
  item_id    INTEGER NOT NULL,
  position   INTEGER NOT NULL,
  propensity REAL    NOT NULL CHECK (propensity > 0 AND propensity <= 1)
);
CREATE TABLE feedback (
  request_id TEXT    NOT NULL,
  item_id    INTEGER NOT NULL,
  reward     REAL    NOT NULL,
  time_us    INTEGER NOT NULL,
  PRIMARY KEY (request_id, item_id)
) WITHOUT ROWID;
INSERT INTO requests VALUES (1, 'old-a', 3, 10, 0.1, 0.5, 'v1', x'', 1000, 1);
INSERT INTO served VALUES (1, 1, 70, 0, 0.5);
INSERT INTO served VALUES (2, 1, 71, 1, 0.25);
INSERT INTO served VALUES (3, 1, 72, 2, 0.125);
INSERT INTO requests VALUES (2, 'old-b', 1, 10, 0.1, 0.5, 'v1', x'', 1001, 4);
INSERT INTO served VALUES (4, 2, 80, 0, 0.2);
INSERT INTO requests VALUES (3, 'old-c', 2, 10, 0.0, 0.5, 'v1', x'', 1002, 5);
INSERT INTO served VALUES (5, 3, 90, 0, 1.0);
INSERT INTO served VALUES (6, 3, 91, 1, 0.5);
INSERT INTO feedback VALUES ('old-a', 71, 1.0, 2000);
)sql";

class EventLogMigrationTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = ::testing::TempDir() + "event_log_migration_test_XXXXXX";
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr) << std::strerror(errno);
    dir_ = tmpl;
    options_.path = dir_ + "/events.db";
  }
  void TearDown() override {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
  void ExecOnDisk(const char* sql) {
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open(options_.path.c_str(), &db), SQLITE_OK);
    char* error = nullptr;
    EXPECT_EQ(sqlite3_exec(db, sql, nullptr, nullptr, &error), SQLITE_OK) << error;
    sqlite3_free(error);
    sqlite3_close(db);
  }
  std::string QueryOnDisk(const char* sql) {
    sqlite3* db = nullptr;
    EXPECT_EQ(sqlite3_open(options_.path.c_str(), &db), SQLITE_OK);
    sqlite3_stmt* st = nullptr;
    EXPECT_EQ(sqlite3_prepare_v2(db, sql, -1, &st, nullptr), SQLITE_OK);
    std::string out;
    if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_text(st, 0) != nullptr) {
      out = reinterpret_cast<const char*>(sqlite3_column_text(st, 0));
    }
    sqlite3_finalize(st);
    sqlite3_close(db);
    return out;
  }
  std::string dir_;
  EventLogOptions options_;
};

ServedSlate NewSlate() {
  ServedSlate s;
  s.request_id = "new";
  s.k = 2;
  s.m = 10;
  s.epsilon = 0.1;
  s.temperature = 0.5;
  s.model_version = "v2";
  s.time_us = 3000;
  s.items = {{100, 0, 0.3, 0.3}, {101, 1, 0.01, 1.0 / 3.0}};
  return s;
}

TEST_F(EventLogMigrationTest, Schema2FileIsMigratedAndItsRowsGetTheDrawRemoveRenormaliseConditional) {
  ExecOnDisk(kSchema2File);
  absl::StatusOr<std::unique_ptr<EventLog>> log = SqliteEventLog::Open(options_);
  ASSERT_TRUE(log.ok()) << log.status();
  EXPECT_EQ(QueryOnDisk("SELECT value FROM meta WHERE key = 'schema_version'"), "4");
  EXPECT_EQ(QueryOnDisk("SELECT COUNT(*) FROM served WHERE conditional_propensity IS NULL"), "6");
  EXPECT_EQ(QueryOnDisk("SELECT COUNT(*) FROM requests WHERE categorical = ''"), "3");

  ASSERT_TRUE((*log)->AppendSlate(NewSlate()).ok());
  ASSERT_TRUE((*log)->Flush().ok());
  absl::StatusOr<std::vector<EventLog::JoinedRow>> rows = (*log)->ReadJoined({});
  ASSERT_TRUE(rows.ok()) << rows.status();
  ASSERT_EQ(rows->size(), 8u);
  // pi_0(a_j) / (1 - sum_{i<j} pi_0(a_i)), per request: a few roundings of numbers near 1.
  const std::vector<double> expected = {0.5,       0.25 / 0.5, 0.125 / 0.25, 0.2,
                                        1.0,       1.0,        0.3,          1.0 / 3.0};
  for (size_t r = 0; r < rows->size(); ++r) {
    EXPECT_NEAR((*rows)[r].conditional_propensity, expected[r], 1e-15) << "row " << r;
  }
  // Row 5 (old-c, position 1): 1 - 1.0 = 0 leaves no mass, read as 1 (docs/EVENT_LOG.md).
  // The new rows (6, 7) are read back as stored, bit for bit.
  EXPECT_EQ((*rows)[7].conditional_propensity, 1.0 / 3.0);
  EXPECT_EQ((*rows)[6].conditional_propensity, 0.3);
  // The rest of an old row is unchanged, feedback included.
  EXPECT_EQ((*rows)[1].item_id, 71);
  EXPECT_EQ((*rows)[1].propensity, 0.25);
  EXPECT_TRUE((*rows)[1].has_feedback);
  ASSERT_TRUE((*log)->Close().ok());
  log->reset();

  // Reopening a migrated file is a plain open of schema 4.
  absl::StatusOr<std::unique_ptr<EventLog>> again = SqliteEventLog::Open(options_);
  ASSERT_TRUE(again.ok()) << again.status();
  rows = (*again)->ReadJoined({});
  ASSERT_TRUE(rows.ok());
  ASSERT_EQ(rows->size(), 8u);
  EXPECT_NEAR((*rows)[2].conditional_propensity, 0.5, 1e-15);
}

TEST_F(EventLogMigrationTest, MigratedTableRefusesOutOfRangeConditionalPropensities) {
  ExecOnDisk(kSchema2File);
  ASSERT_TRUE(SqliteEventLog::Open(options_).ok());
  // The CHECK of a new file holds in a migrated one (a second line of defence behind validation).
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(options_.path.c_str(), &db), SQLITE_OK);
  EXPECT_NE(sqlite3_exec(db, "INSERT INTO served VALUES (7, 1, 73, 3, 0.5, 0)", nullptr, nullptr,
                         nullptr),
            SQLITE_OK);
  EXPECT_NE(sqlite3_exec(db, "INSERT INTO served VALUES (7, 1, 73, 3, 0.5, 1.5)", nullptr, nullptr,
                         nullptr),
            SQLITE_OK);
  sqlite3_close(db);
}

TEST_F(EventLogMigrationTest, NewFileStoresTheConditionalPropensity) {
  {
    absl::StatusOr<std::unique_ptr<EventLog>> log = SqliteEventLog::Open(options_);
    ASSERT_TRUE(log.ok()) << log.status();
    ASSERT_TRUE((*log)->AppendSlate(NewSlate()).ok());
    ASSERT_TRUE((*log)->Close().ok());
  }
  EXPECT_EQ(QueryOnDisk("SELECT value FROM meta WHERE key = 'schema_version'"), "4");
  EXPECT_EQ(QueryOnDisk("SELECT COUNT(*) FROM served WHERE conditional_propensity IS NULL"), "0");
  EXPECT_EQ(QueryOnDisk("SELECT conditional_propensity FROM served WHERE item_id = 100"), "0.3");
}

TEST_F(EventLogMigrationTest, FileOfANewerBuildIsRefusedAndLeftAsItWas) {
  {
    absl::StatusOr<std::unique_ptr<EventLog>> log = SqliteEventLog::Open(options_);
    ASSERT_TRUE(log.ok()) << log.status();
  }
  ExecOnDisk("UPDATE meta SET value = '5' WHERE key = 'schema_version'");
  absl::StatusOr<std::unique_ptr<EventLog>> log = SqliteEventLog::Open(options_);
  EXPECT_EQ(log.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(log.status().message(), HasSubstr("schema_version=5, this build reads 4"));
  EXPECT_THAT(log.status().message(), HasSubstr("newer"));
  EXPECT_EQ(QueryOnDisk("SELECT value FROM meta WHERE key = 'schema_version'"), "5");
}

TEST_F(EventLogMigrationTest, SlateWithoutConditionalPropensityIsRefusedNamingIt) {
  absl::StatusOr<std::unique_ptr<EventLog>> log = SqliteEventLog::Open(options_);
  ASSERT_TRUE(log.ok()) << log.status();
  ServedSlate s = NewSlate();
  s.items[1].conditional_propensity = 0.0;  // the default: a caller that did not set it
  const absl::Status st = (*log)->AppendSlate(s);
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(st.message(), HasSubstr("item 1 (item_id=101): conditional_propensity=0"));
}

// The schema 3 layout as released (before issue 12): requests without `categorical`.
constexpr const char* kSchema3File = R"sql(
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
INSERT INTO meta VALUES ('schema_version', '3');
CREATE TABLE requests (
  id            INTEGER PRIMARY KEY,
  request_id    TEXT    NOT NULL UNIQUE,
  k             INTEGER NOT NULL,
  m             INTEGER NOT NULL,
  epsilon       REAL    NOT NULL,
  temperature   REAL    NOT NULL,
  model_version TEXT    NOT NULL,
  context       BLOB    NOT NULL,
  time_us       INTEGER NOT NULL,
  first_served  INTEGER NOT NULL
);
CREATE TABLE served (
  id         INTEGER PRIMARY KEY,
  request    INTEGER NOT NULL,
  item_id    INTEGER NOT NULL,
  position   INTEGER NOT NULL,
  propensity REAL    NOT NULL CHECK (propensity > 0 AND propensity <= 1),
  conditional_propensity REAL
    CHECK (conditional_propensity > 0 AND conditional_propensity <= 1)
);
CREATE TABLE feedback (
  request_id TEXT    NOT NULL,
  item_id    INTEGER NOT NULL,
  reward     REAL    NOT NULL,
  time_us    INTEGER NOT NULL,
  PRIMARY KEY (request_id, item_id)
) WITHOUT ROWID;
INSERT INTO requests VALUES (1, 'old-a', 2, 10, 0.1, 0.5, 'v1', x'0000803f', 1000, 1);
INSERT INTO served VALUES (1, 1, 70, 0, 0.5, 0.5);
INSERT INTO served VALUES (2, 1, 71, 1, 0.25, 0.5);
INSERT INTO feedback VALUES ('old-a', 71, 1.0, 2000);
)sql";

TEST_F(EventLogMigrationTest, Schema3FileIsMigratedInPlaceAndItsRowsHaveNoCategoricalFeatures) {
  ExecOnDisk(kSchema3File);
  {
    absl::StatusOr<std::unique_ptr<EventLog>> log = SqliteEventLog::Open(options_);
    ASSERT_TRUE(log.ok()) << log.status();
    EXPECT_EQ(QueryOnDisk("SELECT value FROM meta WHERE key = 'schema_version'"), "4");
    ServedSlate s = NewSlate();
    s.context = {2.0f};
    s.categorical = "user=12;tags=3|9";
    ASSERT_TRUE((*log)->AppendSlate(s).ok());
    ASSERT_TRUE((*log)->Close().ok());
  }
  absl::StatusOr<std::unique_ptr<EventLog>> log = SqliteEventLog::Open(options_);
  ASSERT_TRUE(log.ok()) << log.status();
  absl::StatusOr<std::vector<EventLog::JoinedRow>> rows = (*log)->ReadJoined({});
  ASSERT_TRUE(rows.ok()) << rows.status();
  ASSERT_EQ(rows->size(), 4u);
  // The old rows: unchanged, no features.
  EXPECT_EQ((*rows)[0].categorical, "");
  EXPECT_EQ((*rows)[1].categorical, "");
  EXPECT_EQ((*rows)[0].context, std::vector<float>{1.0f});
  EXPECT_EQ((*rows)[1].conditional_propensity, 0.5);
  EXPECT_TRUE((*rows)[1].has_feedback);
  // The new slate: its features on every item's row, as logged.
  EXPECT_EQ((*rows)[2].categorical, "user=12;tags=3|9");
  EXPECT_EQ((*rows)[3].categorical, "user=12;tags=3|9");
  EXPECT_EQ((*rows)[3].context, std::vector<float>{2.0f});
}

TEST_F(EventLogMigrationTest, NewFileRoundTripsCategoricalFeatures) {
  absl::StatusOr<std::unique_ptr<EventLog>> log = SqliteEventLog::Open(options_);
  ASSERT_TRUE(log.ok()) << log.status();
  ServedSlate with = NewSlate();
  with.categorical = "country=49";
  ServedSlate without = NewSlate();
  without.request_id = "plain";
  ASSERT_TRUE((*log)->AppendSlate(with).ok());
  ASSERT_TRUE((*log)->AppendSlate(without).ok());
  ASSERT_TRUE((*log)->Flush().ok());
  absl::StatusOr<std::vector<EventLog::JoinedRow>> rows = (*log)->ReadJoined({});
  ASSERT_TRUE(rows.ok()) << rows.status();
  ASSERT_EQ(rows->size(), 4u);
  EXPECT_EQ((*rows)[1].categorical, "country=49");
  EXPECT_EQ((*rows)[2].categorical, "");
  EXPECT_EQ(QueryOnDisk("SELECT categorical FROM requests WHERE request_id = 'new'"), "country=49");
}

}  // namespace
}  // namespace optower
