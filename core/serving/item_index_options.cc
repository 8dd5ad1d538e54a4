// ItemIndexOptions::Validate (core/serving/item_index.h): the index options' ranges in one place.
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "core/serving/item_index.h"

namespace optower {

absl::Status ItemIndexOptions::Validate() const {
  const ItemIndexOptions& o = *this;
  if (o.exact_max_items < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("exact_max_items=", o.exact_max_items, ": must be >= 0"));
  }
  if (!(o.min_recall_at_10 >= 0.0 && o.min_recall_at_10 <= 1.0)) {
    return absl::InvalidArgumentError(
        absl::StrCat("min_recall_at_10=", o.min_recall_at_10, ": must be in [0, 1]"));
  }
  if (o.ivf_nlist < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("ivf_nlist=", o.ivf_nlist, ": must be >= 0 (0 = automatic)"));
  }
  if (o.ivf_nprobe < 1) {
    return absl::InvalidArgumentError(absl::StrCat("ivf_nprobe=", o.ivf_nprobe, ": must be >= 1"));
  }
  if (o.ivf_max_nprobe < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("ivf_max_nprobe=", o.ivf_max_nprobe, ": must be >= 1"));
  }
  if (o.hnsw_max_ef_search < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("hnsw_max_ef_search=", o.hnsw_max_ef_search, ": must be >= 1"));
  }
  if (o.delta_max_items < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("delta_max_items=", o.delta_max_items, ": must be >= 0"));
  }
  if (!(o.delta_max_fraction >= 0.0 && o.delta_max_fraction <= 1.0)) {
    return absl::InvalidArgumentError(
        absl::StrCat("delta_max_fraction=", o.delta_max_fraction, ": must be in [0, 1]"));
  }
  if (o.hnsw_m < 2 || o.hnsw_m > 512) {
    return absl::InvalidArgumentError(absl::StrCat("hnsw_m=", o.hnsw_m, ": must be in [2, 512]"));
  }
  if (o.hnsw_ef_construction < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("hnsw_ef_construction=", o.hnsw_ef_construction, ": must be >= 1"));
  }
  if (o.hnsw_ef_search < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("hnsw_ef_search=", o.hnsw_ef_search, ": must be >= 1"));
  }
  if (o.recall_queries < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("recall_queries=", o.recall_queries, ": must be >= 1"));
  }
  if (o.threads < 0) {
    return absl::InvalidArgumentError(absl::StrCat("threads=", o.threads, ": must be >= 0"));
  }
  if (o.ivf_warm_start_iterations < 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "ivf_warm_start_iterations=", o.ivf_warm_start_iterations, ": must be >= 0"));
  }
  if (!(o.ivf_warm_start_max_recall_loss >= 0.0 && o.ivf_warm_start_max_recall_loss <= 1.0)) {
    return absl::InvalidArgumentError(absl::StrCat("ivf_warm_start_max_recall_loss=",
                                                   o.ivf_warm_start_max_recall_loss,
                                                   ": must be in [0, 1]"));
  }
  return absl::OkStatus();
}

}  // namespace optower
