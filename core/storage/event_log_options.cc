// EventLogOptions::Validate (core/storage/event_log.h), kept apart from the log's implementation so that
// the options and their ranges read in one place.
#include <string>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "core/storage/event_log.h"

namespace optower {

absl::Status EventLogOptions::Validate() const {
  const EventLogOptions& o = *this;
  if (o.path.empty()) return absl::InvalidArgumentError("path='': path must name a file");
  if (o.max_commit_delay < absl::ZeroDuration()) {
    return absl::InvalidArgumentError(absl::StrCat("max_commit_delay=",
                                                   absl::FormatDuration(o.max_commit_delay),
                                                   ": must be >= 0"));
  }
  if (o.max_batch_events < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("max_batch_events=", o.max_batch_events, ": must be >= 1"));
  }
  if (o.max_queue_events < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("max_queue_events=", o.max_queue_events, ": must be >= 1"));
  }
  if (o.max_queue_bytes < 1024) {
    return absl::InvalidArgumentError(
        absl::StrCat("max_queue_bytes=", o.max_queue_bytes, ": must be >= 1024"));
  }
  if (o.write_failure_window <= absl::ZeroDuration() || o.write_failure_window > absl::Hours(24)) {
    return absl::InvalidArgumentError(
        absl::StrCat("write_failure_window=", absl::FormatDuration(o.write_failure_window),
                     ": must be in (0, 24h]"));
  }
  if (o.writer_stall_timeout <= absl::ZeroDuration() || o.writer_stall_timeout > absl::Hours(24)) {
    return absl::InvalidArgumentError(
        absl::StrCat("writer_stall_timeout=", absl::FormatDuration(o.writer_stall_timeout),
                     ": must be in (0, 24h]"));
  }
  if (o.busy_timeout < absl::ZeroDuration() || o.busy_timeout > absl::Hours(24)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "busy_timeout=", absl::FormatDuration(o.busy_timeout), ": must be in [0, 24h]"));
  }
  return absl::OkStatus();
}

}  // namespace optower
