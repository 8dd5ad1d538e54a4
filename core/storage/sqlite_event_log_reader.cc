#include "core/storage/sqlite_event_log_reader.h"

#include <sqlite3.h>

#include <cstring>
#include <limits>
#include <utility>

#include "absl/strings/str_cat.h"
#include "core/base/status_macros.h"

// Contexts are stored as the raw bytes of their float32 values (see sqlite_write_connection.cc).
static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "context BLOBs assume little-endian float32");

namespace optower {
namespace {

// Columns of the join query (see Open).
enum JoinColumn {
  kServedId, kRequestId, kItemId, kPosition, kPropensity, kK, kM, kEpsilon, kTemperature,
  kModelVersion, kContext, kServedTime, kHasFeedback, kReward, kFeedbackTime, kRequestRowId,
  kConditionalPropensity, kCategorical
};

// served.conditional_propensity, or for rows written before schema 3 (NULL) the
// draw-remove-renormalise conditional of the sampler that wrote them:
//   pi_0(a_j) / (1 - sum of pi_0 of the items logged before it in the same slate),
// summed over the served-id range [first_served, s.id) (one request's items are contiguous from
// first_served, so the sum is a primary-key range scan of at most k - 1 rows). When rounding leaves
// 1 - sum <= pi_0(a_j) (only possible when the earlier items held all but ~1e-16 of the mass, i.e.
// epsilon = 0), the draw was the only one possible up to rounding: 1.
constexpr const char* kConditionalPropensitySql =
    "COALESCE(s.conditional_propensity, "
    "(SELECT CASE WHEN 1.0 - TOTAL(p.propensity) > s.propensity "
    "THEN s.propensity / (1.0 - TOTAL(p.propensity)) ELSE 1.0 END "
    "FROM served AS p WHERE p.id >= r.first_served AND p.id < s.id))";

// The request-level strings and context of the current row.
absl::Status DecodeRequestFields(sqlite3_stmt* st, int64_t request, EventLog::JoinedRow& r) {
  r.request_id.assign(reinterpret_cast<const char*>(sqlite3_column_text(st, kRequestId)),
                      sqlite3_column_bytes(st, kRequestId));
  if (const unsigned char* version = sqlite3_column_text(st, kModelVersion); version != nullptr) {
    r.model_version.assign(reinterpret_cast<const char*>(version),
                           sqlite3_column_bytes(st, kModelVersion));
  }
  if (const unsigned char* text = sqlite3_column_text(st, kCategorical); text != nullptr) {
    r.categorical.assign(reinterpret_cast<const char*>(text), sqlite3_column_bytes(st, kCategorical));
  }
  const void* blob = sqlite3_column_blob(st, kContext);
  const int bytes = sqlite3_column_bytes(st, kContext);
  if (bytes % static_cast<int>(sizeof(float)) != 0) {
    return absl::DataLossError(absl::StrCat("requests id=", request, ": context BLOB of ", bytes,
                                            " bytes is not a float32 array"));
  }
  r.context.resize(static_cast<size_t>(bytes) / sizeof(float));
  if (bytes > 0) std::memcpy(r.context.data(), blob, static_cast<size_t>(bytes));
  return absl::OkStatus();
}

// The row at the statement's cursor. `prev`: the row before it, or null.
absl::StatusOr<EventLog::JoinedRow> DecodeRow(sqlite3_stmt* st, const EventLog::JoinedRow* prev,
                                              int64_t prev_request) {
  EventLog::JoinedRow r;
  r.served_id = sqlite3_column_int64(st, kServedId);
  r.item_id = sqlite3_column_int64(st, kItemId);
  r.position = sqlite3_column_int(st, kPosition);
  r.propensity = sqlite3_column_double(st, kPropensity);
  r.conditional_propensity = sqlite3_column_double(st, kConditionalPropensity);
  r.k = sqlite3_column_int(st, kK);
  r.m = sqlite3_column_int(st, kM);
  r.epsilon = sqlite3_column_double(st, kEpsilon);
  r.temperature = sqlite3_column_double(st, kTemperature);
  const int64_t request = sqlite3_column_int64(st, kRequestRowId);
  if (prev != nullptr && request == prev_request) {
    // Items of one request are adjacent in served-id order: copy its strings and context from
    // the previous row instead of decoding them from SQLite again.
    r.request_id = prev->request_id;
    r.model_version = prev->model_version;
    r.context = prev->context;
    r.categorical = prev->categorical;
  } else {
    RETURN_IF_ERROR(DecodeRequestFields(st, request, r));
  }
  r.served_time_us = sqlite3_column_int64(st, kServedTime);
  r.has_feedback = sqlite3_column_int(st, kHasFeedback) != 0;
  if (r.has_feedback) {
    r.reward = sqlite3_column_double(st, kReward);
    r.feedback_time_us = sqlite3_column_int64(st, kFeedbackTime);
  }
  return r;
}

}  // namespace

absl::StatusOr<std::unique_ptr<SqliteEventLogReader>> SqliteEventLogReader::Open(
    const EventLogOptions& options) {
  std::unique_ptr<SqliteEventLogReader> r(new SqliteEventLogReader());
  absl::MutexLock l(&r->mu_);
  ASSIGN_OR_RETURN(r->db_,
                   OpenConnection(options.path, SQLITE_OPEN_READONLY, options.busy_timeout));
  sqlite3* db = r->db_.get();
  // r.id (kRequestRowId) lets ReadJoined copy the request-level fields once per request, not per
  // item. Column order: JoinColumn.
  const std::string read_joined_sql = absl::StrCat(
      "SELECT s.id, r.request_id, s.item_id, s.position, s.propensity, r.k, r.m, r.epsilon, "
      "r.temperature, r.model_version, r.context, r.time_us, "
      "f.request_id IS NOT NULL, f.reward, f.time_us, r.id, ",
      kConditionalPropensitySql,
      ", r.categorical FROM served AS s JOIN requests AS r ON r.id = s.request "
      "LEFT JOIN feedback AS f ON f.request_id = r.request_id AND f.item_id = s.item_id "
      "WHERE s.id >= ?1 AND s.id <= ?2 ORDER BY s.id LIMIT ?3");
  ASSIGN_OR_RETURN(r->read_joined_, Prepare(db, read_joined_sql.c_str()));
  ASSIGN_OR_RETURN(r->max_served_id_, Prepare(db, "SELECT COALESCE(MAX(id), 0) FROM served"));
  ASSIGN_OR_RETURN(r->count_feedback_, Prepare(db, "SELECT COUNT(*) FROM feedback"));
  return r;
}

absl::StatusOr<std::vector<EventLog::JoinedRow>> SqliteEventLogReader::ReadJoined(
    const EventLog::ReadOptions& options) const {
  absl::MutexLock l(&mu_);
  sqlite3_stmt* st = read_joined_.get();
  sqlite3_bind_int64(st, 1, options.min_served_id);
  sqlite3_bind_int64(st, 2, options.max_served_id < 0 ? std::numeric_limits<int64_t>::max()
                                                      : options.max_served_id);
  sqlite3_bind_int64(st, 3, options.max_rows);  // LIMIT -1 = no limit
  std::vector<EventLog::JoinedRow> rows;
  int64_t last_request = 0;  // requests.id of rows.back(); ids are > 0
  int rc;
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    absl::StatusOr<EventLog::JoinedRow> row =
        DecodeRow(st, rows.empty() ? nullptr : &rows.back(), last_request);
    if (!row.ok()) {
      sqlite3_reset(st);
      return row.status();
    }
    last_request = sqlite3_column_int64(st, kRequestRowId);
    rows.push_back(*std::move(row));
  }
  absl::Status s =
      rc == SQLITE_DONE ? absl::OkStatus() : SqliteError(db_.get(), rc, "read joined log");
  sqlite3_reset(st);
  RETURN_IF_ERROR(s);
  return rows;
}

absl::StatusOr<int64_t> SqliteEventLogReader::MaxServedId() const {
  absl::MutexLock l(&mu_);
  return QueryInt(db_.get(), max_served_id_.get(), "max served id");
}

absl::StatusOr<int64_t> SqliteEventLogReader::CountFeedback() const {
  absl::MutexLock l(&mu_);
  return QueryInt(db_.get(), count_feedback_.get(), "count feedback");
}

}  // namespace optower
