// ModelStore::Options::Validate (core/storage/model_store.h): retention and listing ranges in one place.
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "core/storage/model_store.h"

namespace optower {

absl::Status ModelStore::Options::Validate() const {
  if (keep_promoted < 1)
    return absl::InvalidArgumentError(absl::StrCat(
        "keep_promoted_versions=", keep_promoted, ": must be >= 1 (a rollback target)"));
  if (keep_rejected < 0)
    return absl::InvalidArgumentError(
        absl::StrCat("keep_rejected_versions=", keep_rejected, ": must be >= 0"));
  if (list_limit < 1)
    return absl::InvalidArgumentError(
        absl::StrCat("list_models_limit=", list_limit, ": must be >= 1"));
  return absl::OkStatus();
}

}  // namespace optower
