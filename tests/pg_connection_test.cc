// PgConnection against the real test server: parameters round-trip exactly (doubles bit for bit,
// bytea with NUL bytes), errors map to the documented codes, migrations run once and refuse a
// newer database, LISTEN/NOTIFY delivers, lock keys differ across schemas, DSNs load from a file
// or the environment and never appear in messages.
#include "core/storage/pg_connection.h"

#include <stdlib.h>

#include <cmath>
#include <cstring>
#include <fstream>
#include <limits>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/pg_test_db.h"

namespace optower {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

class PgConnectionTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(schema_.ok()) << schema_.status();
    absl::StatusOr<std::unique_ptr<PgConnection>> c = PgConnection::Connect(schema_.dsn(), "test");
    ASSERT_TRUE(c.ok()) << c.status();
    conn_ = std::move(*c);
  }
  testing::PgTestSchema schema_;
  std::unique_ptr<PgConnection> conn_;
};

TEST_F(PgConnectionTest, SchemaIsTheTestsOwn) { EXPECT_EQ(conn_->schema(), schema_.name()); }

TEST_F(PgConnectionTest, ParametersRoundTripExactly) {
  ASSERT_TRUE(conn_->Exec("CREATE TABLE t (d DOUBLE PRECISION, b BYTEA, s TEXT, i BIGINT)", "create").ok());
  const std::vector<double> doubles = {0.1, 1.0 / 3.0, 1e-300, std::numeric_limits<double>::min(),
                                       -123456.789e10, 0.9999999999999999};
  const std::string bytes("a\0b\xff\x01", 5);
  for (double d : doubles) {
    ASSERT_TRUE(conn_->Query("INSERT INTO t VALUES ($1, $2, $3, $4)",
                             {PgParam::Double(d), PgParam::Bytes(bytes), PgParam::Text("x;y=1|2"),
                              PgParam::Int(std::numeric_limits<int64_t>::max())},
                             "insert").ok());
  }
  absl::StatusOr<PgResult> r = conn_->Query("SELECT d, s, i FROM t ORDER BY ctid", {}, "select");
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(r->rows(), static_cast<int>(doubles.size()));
  for (int i = 0; i < r->rows(); ++i) {
    const double got = r->GetDouble(i, 0);
    EXPECT_EQ(std::memcmp(&got, &doubles[i], sizeof got), 0) << doubles[i];
    EXPECT_EQ(r->Get(i, 1), "x;y=1|2");
    EXPECT_EQ(r->GetInt(i, 2), std::numeric_limits<int64_t>::max());
  }
  absl::StatusOr<PgResult> b = conn_->Query("SELECT b FROM t LIMIT 1", {}, "select b", true);
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_EQ(b->Get(0, 0), bytes);
}

TEST_F(PgConnectionTest, ErrorsMapToCodes) {
  ASSERT_TRUE(conn_->Exec("CREATE TABLE u (k TEXT PRIMARY KEY)", "create").ok());
  ASSERT_TRUE(conn_->Query("INSERT INTO u VALUES ($1)", {PgParam::Text("a")}, "ins").ok());
  absl::Status dup = conn_->Query("INSERT INTO u VALUES ($1)", {PgParam::Text("a")}, "insert u").status();
  EXPECT_EQ(dup.code(), absl::StatusCode::kAlreadyExists) << dup;
  EXPECT_THAT(dup.message(), HasSubstr("insert u: "));
  EXPECT_THAT(dup.message(), HasSubstr("23505"));
  absl::Status syntax = conn_->Exec("SELEC 1", "typo");
  EXPECT_EQ(syntax.code(), absl::StatusCode::kInternal) << syntax;
  absl::Status bad = conn_->Query("SELECT $1::bigint", {PgParam::Text("x")}, "cast").status();
  EXPECT_EQ(bad.code(), absl::StatusCode::kInvalidArgument) << bad;
}

TEST_F(PgConnectionTest, MigrationsRunOnceAndRefuseANewerDatabase) {
  const std::vector<std::string> v2 = {"CREATE TABLE m1 (x INT)", "ALTER TABLE m1 ADD COLUMN y INT"};
  ASSERT_TRUE(ApplyPgMigrations(*conn_, "comp", {v2[0]}).ok());
  ASSERT_TRUE(ApplyPgMigrations(*conn_, "comp", {v2[0]}).ok());  // already applied: no-op
  ASSERT_TRUE(ApplyPgMigrations(*conn_, "comp", v2).ok());       // 1 -> 2 only
  EXPECT_TRUE(conn_->Exec("INSERT INTO m1 (x, y) VALUES (1, 2)", "use").ok());
  absl::Status old = ApplyPgMigrations(*conn_, "comp", {v2[0]});
  EXPECT_EQ(old.code(), absl::StatusCode::kFailedPrecondition) << old;
  EXPECT_THAT(old.message(), HasSubstr("is version 2 but this optower knows only up to 1"));
  // A failing migration leaves nothing behind and the version unchanged.
  absl::Status broken = ApplyPgMigrations(*conn_, "comp", {v2[0], v2[1], "CREATE TABLE m2 (x INT); SELEC"});
  EXPECT_FALSE(broken.ok());
  absl::StatusOr<PgResult> r = conn_->Query("SELECT count(*) FROM pg_tables WHERE tablename = 'm2' "
                                            "AND schemaname = current_schema()", {}, "q");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->GetInt(0, 0), 0);
}

TEST_F(PgConnectionTest, ListenNotify) {
  ASSERT_TRUE(conn_->Listen("optower_test").ok());
  absl::StatusOr<std::unique_ptr<PgConnection>> other = PgConnection::Connect(schema_.dsn(), "other");
  ASSERT_TRUE(other.ok());
  ASSERT_TRUE((*other)->Notify("optower_test", "v=000002").ok());
  std::vector<PgConnection::Notification> got;
  for (int i = 0; i < 50 && got.empty(); ++i) {
    absl::StatusOr<std::vector<PgConnection::Notification>> n =
        conn_->WaitForNotifications(absl::Milliseconds(100));
    ASSERT_TRUE(n.ok()) << n.status();
    got = *n;
  }
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].channel, "optower_test");
  EXPECT_EQ(got[0].payload, "v=000002");
}

TEST_F(PgConnectionTest, LockKeysDependOnSchemaAndPurpose) {
  testing::PgTestSchema other_schema;
  ASSERT_TRUE(other_schema.ok());
  absl::StatusOr<std::unique_ptr<PgConnection>> other = PgConnection::Connect(other_schema.dsn(), "x");
  ASSERT_TRUE(other.ok());
  EXPECT_NE(conn_->LockKey("trainer"), (*other)->LockKey("trainer"));
  EXPECT_NE(conn_->LockKey("trainer"), conn_->LockKey("served"));
  EXPECT_GE(conn_->LockKey("trainer"), 0);
}

TEST(PgDsnTest, FromFileOrEnvironmentNeverEchoed) {
  const std::string path = ::testing::TempDir() + "pg_dsn_test.dsn";
  {
    std::ofstream out(path);
    out << "host=127.0.0.1 password=s3cret\n\n";
  }
  absl::StatusOr<std::string> dsn = LoadPgDsn(path);
  ASSERT_TRUE(dsn.ok());
  EXPECT_EQ(*dsn, "host=127.0.0.1 password=s3cret");
  absl::StatusOr<std::string> missing = LoadPgDsn(path + ".nope");
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(missing.status().message(), HasSubstr("postgres.dsn_file="));
  ::setenv("OPTOWER_PG_DSN_TEST_VAR", "host=x", 1);
  EXPECT_EQ(*LoadPgDsn("", "OPTOWER_PG_DSN_TEST_VAR"), "host=x");
  ::unsetenv("OPTOWER_PG_DSN_TEST_VAR");
  EXPECT_THAT(LoadPgDsn("", "OPTOWER_PG_DSN_TEST_VAR").status().message(),
              HasSubstr("OPTOWER_PG_DSN_TEST_VAR"));
  absl::StatusOr<std::unique_ptr<PgConnection>> refused =
      PgConnection::Connect("host=127.0.0.1 port=1 password=s3cret connect_timeout=1", "x");
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(refused.status().message(), Not(HasSubstr("s3cret")));
}

}  // namespace
}  // namespace optower
