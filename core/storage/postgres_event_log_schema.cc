#include "core/storage/postgres_event_log_schema.h"

namespace optower {
namespace {

// Version 1. The CHECKs are SQLite's (core/storage/event_log_schema.cc); conditional_propensity is
// NOT NULL here, since no PostgreSQL log predates it. No foreign key from served to requests: the
// writer inserts both in one statement, and a key would cost a lookup per item.
constexpr const char* kSchema1 = R"sql(
CREATE TABLE requests (
  request_id    TEXT             PRIMARY KEY,
  k             INTEGER          NOT NULL,
  m             INTEGER          NOT NULL,
  epsilon       DOUBLE PRECISION NOT NULL,
  temperature   DOUBLE PRECISION NOT NULL,
  model_version TEXT             NOT NULL,
  context       BYTEA            NOT NULL,
  categorical   TEXT             NOT NULL DEFAULT '',
  time_us       BIGINT           NOT NULL
);
CREATE TABLE served (
  id                     BIGINT           PRIMARY KEY,
  request_id             TEXT             NOT NULL,
  item_id                BIGINT           NOT NULL,
  position               INTEGER          NOT NULL,
  propensity             DOUBLE PRECISION NOT NULL CHECK (propensity > 0 AND propensity <= 1),
  conditional_propensity DOUBLE PRECISION NOT NULL
    CHECK (conditional_propensity > 0 AND conditional_propensity <= 1),
  UNIQUE (request_id, item_id)
);
CREATE TABLE feedback (
  request_id TEXT             NOT NULL,
  item_id    BIGINT           NOT NULL,
  reward     DOUBLE PRECISION NOT NULL,
  time_us    BIGINT           NOT NULL,
  PRIMARY KEY (request_id, item_id)
);
)sql";

}  // namespace

const std::vector<std::string>& PostgresEventLogMigrations() {
  static const std::vector<std::string>* const migrations = new std::vector<std::string>{kSchema1};
  return *migrations;
}

absl::Status ApplyPostgresEventLogSchema(PgConnection& conn) {
  return ApplyPgMigrations(conn, kPgEventLogComponent, PostgresEventLogMigrations());
}

}  // namespace optower
