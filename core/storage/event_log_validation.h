// Argument checks of the event log (docs/EVENT_LOG.md "The API: one slate per Retrieve"): slates,
// feedback and read ranges (the options: EventLogOptions::Validate). Each returns OK or
// InvalidArgument naming the record, the field and the value. Backend-independent: any EventLog
// implementation checks its input with these, so that every backend accepts and refuses the same
// calls.
//
// ValidateSlate runs on the request path (once per Retrieve): it allocates nothing unless it fails.
// Thread safety: pure functions.
#ifndef OPTOWER_CORE_STORAGE_EVENT_LOG_VALIDATION_H_
#define OPTOWER_CORE_STORAGE_EVENT_LOG_VALIDATION_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "core/storage/event_log.h"

namespace optower {

// `s` in single quotes, for messages naming a string value.
std::string Quoted(absl::string_view s);

// request_id non-empty, k >= 1, m >= k, epsilon in [0, 1], temperature finite and >= 0, context
// finite, at most k items, each with propensity and conditional_propensity in (0, 1] and position
// in [0, k), no item_id twice.
absl::Status ValidateSlate(const ServedSlate& slate);

// Per event: request_id non-empty, reward finite.
absl::Status ValidateFeedback(const std::vector<FeedbackEvent>& events);

// min_served_id >= 0, max_served_id >= -1, max_rows >= -1.
absl::Status ValidateReadOptions(const EventLog::ReadOptions& options);

}  // namespace optower

#endif  // OPTOWER_CORE_STORAGE_EVENT_LOG_VALIDATION_H_
