#include "core/storage/event_log_validation.h"

#include <cmath>
#include <cstdint>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "core/base/status_macros.h"

namespace optower {
namespace {

// The request-level fields of a slate. `at()` builds the message prefix naming the slate only when
// there is an error to report.
template <typename At>
absl::Status CheckRequestFields(const ServedSlate& s, const At& at) {
  if (s.request_id.empty()) return absl::InvalidArgumentError(at() + "request_id must not be empty");
  if (s.k < 1) return absl::InvalidArgumentError(absl::StrCat(at(), "k=", s.k, ": must be >= 1"));
  if (s.m < s.k) {
    return absl::InvalidArgumentError(absl::StrCat(at(), "m=", s.m, ": must be >= k=", s.k));
  }
  // NaN fails both comparisons, so it is rejected too.
  if (!(s.epsilon >= 0.0 && s.epsilon <= 1.0)) {
    return absl::InvalidArgumentError(
        absl::StrCat(at(), "epsilon=", s.epsilon, ": must be in [0, 1]"));
  }
  if (!(s.temperature >= 0.0 && std::isfinite(s.temperature))) {
    return absl::InvalidArgumentError(
        absl::StrCat(at(), "temperature=", s.temperature, ": must be finite and >= 0"));
  }
  for (size_t j = 0; j < s.context.size(); ++j) {
    if (!std::isfinite(s.context[j])) {
      return absl::InvalidArgumentError(
          absl::StrCat(at(), "context[", j, "]=", s.context[j], ": must be finite"));
    }
  }
  return absl::OkStatus();
}

template <typename At>
absl::Status CheckItemFields(const ServedItem& item, int32_t k, const At& at) {
  if (!(item.propensity > 0.0 && item.propensity <= 1.0)) {
    return absl::InvalidArgumentError(
        absl::StrCat(at(), "propensity=", item.propensity, ": must be in (0, 1]"));
  }
  if (!(item.conditional_propensity > 0.0 && item.conditional_propensity <= 1.0)) {
    return absl::InvalidArgumentError(absl::StrCat(
        at(), "conditional_propensity=", item.conditional_propensity, ": must be in (0, 1]"));
  }
  if (item.position < 0 || item.position >= k) {
    return absl::InvalidArgumentError(
        absl::StrCat(at(), "position=", item.position, ": must be in [0, k=", k, ")"));
  }
  return absl::OkStatus();
}

// Index of the first item whose item_id repeats an earlier one, or -1. Pairwise for slate-sized
// inputs (K <= 64: ~2k comparisons, no allocation); a hash set beyond that.
int64_t FirstRepeatedItem(const std::vector<ServedItem>& items) {
  constexpr size_t kPairwiseMax = 64;
  if (items.size() <= kPairwiseMax) {
    for (size_t i = 1; i < items.size(); ++i) {
      for (size_t j = 0; j < i; ++j) {
        if (items[j].item_id == items[i].item_id) return static_cast<int64_t>(i);
      }
    }
    return -1;
  }
  absl::flat_hash_set<int64_t> seen;
  seen.reserve(items.size());
  for (size_t i = 0; i < items.size(); ++i) {
    if (!seen.insert(items[i].item_id).second) return static_cast<int64_t>(i);
  }
  return -1;
}

}  // namespace

std::string Quoted(absl::string_view s) { return absl::StrCat("'", s, "'"); }

absl::Status ValidateSlate(const ServedSlate& s) {
  const auto at = [&s] { return absl::StrCat("slate (request_id=", Quoted(s.request_id), "): "); };
  RETURN_IF_ERROR(CheckRequestFields(s, at));
  // The feedback lookup scans served ids [first_served, first_served + k): a slate never has more
  // than k items (Retrieve serves at most k).
  if (s.items.size() > static_cast<size_t>(s.k)) {
    return absl::InvalidArgumentError(
        absl::StrCat(at(), "items.size()=", s.items.size(), ": must be <= k=", s.k));
  }
  for (size_t j = 0; j < s.items.size(); ++j) {
    const ServedItem& item = s.items[j];
    RETURN_IF_ERROR(CheckItemFields(item, s.k, [&] {
      return absl::StrCat("slate (request_id=", Quoted(s.request_id), ") item ", j,
                          " (item_id=", item.item_id, "): ");
    }));
  }
  if (const int64_t j = FirstRepeatedItem(s.items); j >= 0) {
    return absl::InvalidArgumentError(absl::StrCat(at(), "item ", j, " (item_id=",
                                                   s.items[static_cast<size_t>(j)].item_id,
                                                   "): this item_id appears twice in the slate"));
  }
  return absl::OkStatus();
}

absl::Status ValidateFeedback(const std::vector<FeedbackEvent>& events) {
  for (size_t i = 0; i < events.size(); ++i) {
    const FeedbackEvent& e = events[i];
    const std::string at = absl::StrCat("feedback event ", i, " (request_id=", Quoted(e.request_id),
                                        ", item_id=", e.item_id, "): ");
    if (e.request_id.empty()) return absl::InvalidArgumentError(at + "request_id must not be empty");
    if (!std::isfinite(e.reward)) {
      return absl::InvalidArgumentError(absl::StrCat(at, "reward=", e.reward, ": must be finite"));
    }
  }
  return absl::OkStatus();
}

absl::Status ValidateReadOptions(const EventLog::ReadOptions& options) {
  if (options.min_served_id < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("min_served_id=", options.min_served_id, ": must be >= 0"));
  }
  if (options.max_served_id < -1) {
    return absl::InvalidArgumentError(
        absl::StrCat("max_served_id=", options.max_served_id, ": must be >= -1 (-1 = all)"));
  }
  if (options.max_rows < -1) {
    return absl::InvalidArgumentError(
        absl::StrCat("max_rows=", options.max_rows, ": must be >= -1 (-1 = no limit)"));
  }
  return absl::OkStatus();
}

}  // namespace optower
