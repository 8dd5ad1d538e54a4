// ItemIndex::WithChanges and Drifted (core/serving/item_index.h): a catalog change as a layer over
// the shared base index — the delta (new or changed items, searched exactly) and the tombstones
// (base items deleted or replaced) — and when the layers have grown enough to rebuild instead.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <memory>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "core/base/status_macros.h"
#include "core/serving/item_index.h"

namespace optower {

namespace {

// The shape and consistency of `changes` against `previous`; fills the id sets.
absl::Status CheckChanges(const ItemIndex& previous, const ItemIndex::Changes& changes,
                          absl::flat_hash_set<int64_t>* deleted,
                          absl::flat_hash_set<int64_t>* upserted) {
  const int64_t dim = previous.dim();
  const int64_t n_up = static_cast<int64_t>(changes.upserted.size());
  if (static_cast<int64_t>(changes.upserted_embeddings.size()) != n_up * dim) {
    return absl::InvalidArgumentError(absl::StrCat(
        "upserted_embeddings has ", changes.upserted_embeddings.size(), " values: expected ", n_up,
        " x dim=", dim));
  }
  for (size_t i = 0; i < changes.upserted_embeddings.size(); ++i) {
    if (!std::isfinite(changes.upserted_embeddings[i])) {
      return absl::InvalidArgumentError(absl::StrCat("upserted_embeddings[", i / dim, "][", i % dim,
                                                     "]=", changes.upserted_embeddings[i],
                                                     ": values must be finite"));
    }
  }
  deleted->insert(changes.deleted.begin(), changes.deleted.end());
  for (size_t i = 0; i < changes.deleted.size(); ++i) {
    if (!previous.Contains(changes.deleted[i])) {
      return absl::InvalidArgumentError(
          absl::StrCat("deleted[", i, "]=", changes.deleted[i], ": not in the index"));
    }
  }
  for (int64_t i = 0; i < n_up; ++i) {
    const int64_t id = changes.upserted[i];
    if (deleted->contains(id) || !upserted->insert(id).second) {
      return absl::InvalidArgumentError(
          absl::StrCat("upserted[", i, "]=", id, ": also deleted, or upserted twice"));
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::unique_ptr<ItemIndex>> ItemIndex::WithChanges(const ItemIndex& previous,
                                                                  const Changes& changes) {
  const int64_t dim = previous.dim_;
  absl::flat_hash_set<int64_t> deleted, upserted;
  RETURN_IF_ERROR(CheckChanges(previous, changes, &deleted, &upserted));

  std::unique_ptr<ItemIndex> next(new ItemIndex());
  next->dim_ = dim;
  next->base_ = previous.base_;
  const Base& base = *next->base_;
  // A base item that is deleted or replaced is never served from the base again.
  next->tombstones_ = previous.tombstones_;
  for (const auto* ids : {&changes.deleted, &changes.upserted}) {
    for (int64_t id : *ids) {
      if (base.row_of.contains(id)) next->tombstones_.insert(id);
    }
  }
  // The delta: the previous one minus what changed now, then the upserted items.
  for (size_t i = 0; i < previous.delta_ids_.size(); ++i) {
    const int64_t id = previous.delta_ids_[i];
    if (deleted.contains(id) || upserted.contains(id)) continue;
    next->delta_ids_.push_back(id);
    next->delta_xb_.insert(next->delta_xb_.end(), previous.delta_xb_.begin() + i * dim,
                           previous.delta_xb_.begin() + (i + 1) * dim);
  }
  next->delta_ids_.insert(next->delta_ids_.end(), changes.upserted.begin(), changes.upserted.end());
  next->delta_xb_.insert(next->delta_xb_.end(), changes.upserted_embeddings.begin(),
                         changes.upserted_embeddings.end());
  absl::flat_hash_map<int64_t, int64_t> delta_pos;
  delta_pos.reserve(next->delta_ids_.size());
  for (size_t i = 0; i < next->delta_ids_.size(); ++i) delta_pos[next->delta_ids_[i]] = i;

  // The rows: every live item (base minus tombstones, plus the delta) exactly once.
  const int64_t live =
      static_cast<int64_t>(base.ids.size()) - next->tombstones() + next->delta_size();
  const int64_t n = static_cast<int64_t>(changes.ids.size());
  if (n != live) {
    return absl::InvalidArgumentError(absl::StrCat("ids has ", n, " ids: the changed index holds ",
                                                   live, " live items"));
  }
  next->layer_ids_ = changes.ids;
  next->layer_row_of_.reserve(static_cast<size_t>(n));
  next->row_embedding_.resize(static_cast<size_t>(n));
  constexpr int64_t kAhead = 16;  // prefetch the base map's probes (ItemIndex::RowsOf)
  for (int64_t row = 0; row < n; ++row) {
    if (row + kAhead < n) base.row_of.prefetch(changes.ids[row + kAhead]);
    const int64_t id = changes.ids[row];
    const float* v = nullptr;
    if (auto d = delta_pos.find(id); d != delta_pos.end()) {
      v = next->delta_xb_.data() + d->second * dim;
    } else if (auto b = base.row_of.find(id);
               b != base.row_of.end() && !next->tombstones_.contains(id)) {
      v = base.xb + b->second * dim;
    } else {
      return absl::InvalidArgumentError(
          absl::StrCat("ids[", row, "]=", id, ": neither a live item of the index nor upserted"));
    }
    if (!next->layer_row_of_.emplace(id, row).second) {
      return absl::InvalidArgumentError(absl::StrCat("ids[", row, "]=", id, ": appears twice"));
    }
    next->row_embedding_[static_cast<size_t>(row)] = v;
  }
  next->ids_ = &next->layer_ids_;
  next->row_of_ = &next->layer_row_of_;
  next->xb_ = nullptr;
  return next;
}

bool ItemIndex::Drifted(const ItemIndexOptions& options) const {
  const double limit = std::min(static_cast<double>(options.delta_max_items),
                                options.delta_max_fraction * static_cast<double>(base_size()));
  return static_cast<double>(delta_size() + tombstones()) > limit;
}

}  // namespace optower
