// A private PostgreSQL schema per test, on the server the test command starts
// (scripts/pg_test_server.sh; CTest's `pg` fixture). Each PgTestSchema creates a fresh schema and
// gives a DSN whose search_path is that schema, so tests running in parallel (and the advisory-lock
// keys, which are derived from the schema) never meet; the destructor drops it.
//
// The server's DSN file is named by OPTOWER_TEST_PG_DSN_FILE (CTest sets it). Without it the test
// fails (it does not skip): the test command always starts PostgreSQL.
#ifndef OPTOWER_TESTS_TESTING_PG_TEST_DB_H_
#define OPTOWER_TESTS_TESTING_PG_TEST_DB_H_

#include <string>

#include "absl/status/statusor.h"

namespace optower::testing {

// The test server's DSN (libpq keywords), or FailedPrecondition saying how to start one.
absl::StatusOr<std::string> TestServerDsn();

class PgTestSchema {
 public:
  // Creates schema "t_<pid>_<n>_<random>". Check ok() (or status()) before use.
  PgTestSchema();
  ~PgTestSchema();  // DROP SCHEMA ... CASCADE (errors ignored)
  PgTestSchema(const PgTestSchema&) = delete;
  PgTestSchema& operator=(const PgTestSchema&) = delete;

  bool ok() const { return status_.ok(); }
  const absl::Status& status() const { return status_; }
  const std::string& name() const { return name_; }
  // The server DSN plus options='-c search_path=<name>'.
  const std::string& dsn() const { return dsn_; }
  // Writes dsn() to a file (mode 600) and returns its path, for configs' postgres.dsn_file.
  std::string WriteDsnFile(const std::string& dir) const;

 private:
  absl::Status status_;
  std::string server_dsn_;
  std::string name_;
  std::string dsn_;
};

}  // namespace optower::testing

#endif  // OPTOWER_TESTS_TESTING_PG_TEST_DB_H_
