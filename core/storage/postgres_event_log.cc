#include "core/storage/postgres_event_log.h"

#include <memory>
#include <utility>

#include "absl/time/clock.h"
#include "core/base/status_macros.h"
#include "core/storage/postgres_event_log_reader.h"
#include "core/storage/postgres_write_connection.h"

namespace optower {

absl::StatusOr<std::unique_ptr<EventLog>> PostgresEventLog::Open(const EventLogOptions& options,
                                                                 const std::string& dsn) {
  // path names the log in messages ("event log is closed: path=..."); it is not a file here.
  EventLogOptions o = options;
  o.path = "postgresql";
  RETURN_IF_ERROR(o.Validate());
  // The write connection first: it creates the tables.
  ASSIGN_OR_RETURN(std::unique_ptr<PostgresWriteConnection> connection,
                   PostgresWriteConnection::Open(o, dsn));
  ASSIGN_OR_RETURN(std::unique_ptr<PostgresEventLogReader> reader,
                   PostgresEventLogReader::Open(dsn));
  return std::unique_ptr<EventLog>(
      new PostgresEventLog(o, std::move(connection), std::move(reader)));
}

PostgresEventLog::PostgresEventLog(const EventLogOptions& options,
                                   std::unique_ptr<EventLogWriteConnection> connection,
                                   std::unique_ptr<EventLogReader> reader)
    : QueuedEventLog(options, std::move(connection), std::move(reader)),
      recheck_after_(options.durability == EventLogOptions::Durability::kGroupCommit
                         ? options.max_commit_delay + absl::Milliseconds(50)
                         : absl::ZeroDuration()) {}

absl::StatusOr<std::vector<FeedbackOutcome>> PostgresEventLog::AppendFeedback(
    std::vector<FeedbackEvent> events, absl::Time deadline) {
  std::vector<FeedbackEvent> copy;
  if (recheck_after_ > absl::ZeroDuration()) copy = events;  // for the second look
  ASSIGN_OR_RETURN(std::vector<FeedbackOutcome> outcomes,
                   QueuedEventLog::AppendFeedback(std::move(events), deadline));
  std::vector<size_t> unknown;
  for (size_t i = 0; i < outcomes.size(); ++i) {
    if (outcomes[i] == FeedbackOutcome::kUnknown) unknown.push_back(i);
  }
  if (unknown.empty() || recheck_after_ <= absl::ZeroDuration()) return outcomes;
  const absl::Time at = absl::Now() + recheck_after_;
  if (at >= deadline) return outcomes;  // no time for it: unknown stands (sending again is safe)
  absl::SleepFor(at - absl::Now());
  std::vector<FeedbackEvent> again;
  again.reserve(unknown.size());
  for (size_t i : unknown) again.push_back(std::move(copy[i]));
  ASSIGN_OR_RETURN(std::vector<FeedbackOutcome> second,
                   QueuedEventLog::AppendFeedback(std::move(again), deadline));
  for (size_t j = 0; j < unknown.size(); ++j) outcomes[unknown[j]] = second[j];
  return outcomes;
}

}  // namespace optower
