#include "tests/testing/pg_test_db.h"

#include <libpq-fe.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <fstream>
#include <random>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"

namespace optower::testing {
namespace {

absl::Status RunSql(const std::string& dsn, const std::string& sql) {
  PGconn* c = PQconnectdb(dsn.c_str());
  if (PQstatus(c) != CONNECTION_OK) {
    std::string m = PQerrorMessage(c);
    PQfinish(c);
    return absl::UnavailableError(absl::StrCat("test PostgreSQL: ", m));
  }
  PGresult* r = PQexec(c, sql.c_str());
  absl::Status s;
  if (PQresultStatus(r) != PGRES_COMMAND_OK && PQresultStatus(r) != PGRES_TUPLES_OK) {
    s = absl::InternalError(absl::StrCat("test PostgreSQL: ", sql, ": ", PQresultErrorMessage(r)));
  }
  PQclear(r);
  PQfinish(c);
  return s;
}

}  // namespace

absl::StatusOr<std::string> TestServerDsn() {
  const char* file = std::getenv("OPTOWER_TEST_PG_DSN_FILE");
  if (file == nullptr || *file == '\0') {
    return absl::FailedPreconditionError(
        "OPTOWER_TEST_PG_DSN_FILE is not set: run through ctest (its `pg` fixture starts PostgreSQL), "
        "or `scripts/pg_test_server.sh start build/pg` and set OPTOWER_TEST_PG_DSN_FILE=build/pg/dsn");
  }
  std::ifstream in(file);
  std::stringstream ss;
  ss << in.rdbuf();
  std::string dsn(absl::StripAsciiWhitespace(ss.str()));
  if (dsn.empty()) {
    return absl::FailedPreconditionError(absl::StrCat("OPTOWER_TEST_PG_DSN_FILE=", file,
                                                      ": missing or empty (is the test server running?)"));
  }
  return dsn;
}

PgTestSchema::PgTestSchema() {
  absl::StatusOr<std::string> server = TestServerDsn();
  if (!server.ok()) {
    status_ = server.status();
    return;
  }
  server_dsn_ = *server;
  static std::atomic<int> counter{0};
  std::random_device rd;
  name_ = absl::StrCat("t_", getpid(), "_", counter++, "_", rd() % 1000000);
  dsn_ = absl::StrCat(server_dsn_, " options='-c search_path=", name_, "'");
  status_ = RunSql(server_dsn_, absl::StrCat("CREATE SCHEMA ", name_));
}

PgTestSchema::~PgTestSchema() {
  if (!name_.empty() && status_.ok()) {
    RunSql(server_dsn_, absl::StrCat("DROP SCHEMA IF EXISTS ", name_, " CASCADE")).IgnoreError();
  }
}

std::string PgTestSchema::WriteDsnFile(const std::string& dir) const {
  const std::string path = absl::StrCat(dir, "/pg.dsn");
  {
    std::ofstream out(path, std::ios::trunc);
    out << dsn_ << "\n";
  }
  ::chmod(path.c_str(), 0600);
  return path;
}

}  // namespace optower::testing
