// ItemIndex::Search and SearchBatch (core/serving/item_index.h): the base's FAISS search with
// tombstones and exclusions filtered out, merged with the exact top of the delta.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <utility>
#include <vector>

#include <faiss/IndexIVF.h>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "core/base/status_macros.h"
#include "core/serving/faiss_call.h"
#include "core/serving/item_index.h"

namespace optower {
namespace {

using FaissIdx = faiss::Index::idx_t;

// Four independent accumulators, so the compiler can keep them in one SSE register (a single
// accumulator is a serial dependency chain: one float per cycle at best).
float DotProduct(const float* a, const float* b, int64_t dim) {
  float s0 = 0.0f, s1 = 0.0f, s2 = 0.0f, s3 = 0.0f;
  int64_t j = 0;
  for (; j + 4 <= dim; j += 4) {
    s0 += a[j] * b[j];
    s1 += a[j + 1] * b[j + 1];
    s2 += a[j + 2] * b[j + 2];
    s3 += a[j + 3] * b[j + 3];
  }
  for (; j < dim; ++j) s0 += a[j] * b[j];
  return (s0 + s1) + (s2 + s3);
}

bool ByScore(const SearchHit& a, const SearchHit& b) { return a.score > b.score; }

}  // namespace

template <typename Excluded>
absl::Status ItemIndex::SearchBase(const float* query, int64_t m, int64_t excluded_present,
                                   const Excluded& is_excluded, std::vector<SearchHit>* hits) const {
  const Base& base = *base_;
  const int64_t n_base = static_cast<int64_t>(base.ids.size());
  // Every tombstone and every excluded item could be among the top: over-fetch by their number.
  const int64_t fetch = std::min<int64_t>(n_base, m + excluded_present + tombstones());
  std::vector<float> dist(static_cast<size_t>(fetch));
  std::vector<FaissIdx> labels(static_cast<size_t>(fetch));
  // IVF honours per-call parameters in 1.7.3; HNSW's efSearch was fixed at build (see Build).
  faiss::SearchParametersIVF ivf_params;
  ivf_params.nprobe = static_cast<size_t>(base.ivf_nprobe);
  const faiss::SearchParameters* params = base.backend == Backend::kIvf ? &ivf_params : nullptr;
  {
    faiss_call::ScopedOmpThreads single(1);
    RETURN_IF_ERROR(faiss_call::CallFaiss("search", [&] {
      base.index->search(1, query, fetch, dist.data(), labels.data(), params);
    }));
  }
  hits->reserve(static_cast<size_t>(std::min(m, fetch)));
  const bool filter_tombstones = !tombstones_.empty();
  for (int64_t i = 0; i < fetch && static_cast<int64_t>(hits->size()) < m; ++i) {
    if (labels[i] < 0) continue;
    const int64_t id = base.ids[static_cast<size_t>(labels[i])];
    if (filter_tombstones && tombstones_.contains(id)) continue;
    if (excluded_present > 0 && is_excluded(id)) continue;
    hits->push_back({id, dist[i]});
  }
  return absl::OkStatus();
}

template <typename Excluded>
void ItemIndex::MergeDelta(const float* query, int64_t m, const Excluded& is_excluded,
                           std::vector<SearchHit>* hits) const {
  std::vector<SearchHit> delta;
  delta.reserve(delta_ids_.size());
  for (size_t i = 0; i < delta_ids_.size(); ++i) {
    if (is_excluded(delta_ids_[i])) continue;
    delta.push_back({delta_ids_[i], DotProduct(query, delta_xb_.data() + i * dim_, dim_)});
  }
  const int64_t keep = std::min<int64_t>(m, static_cast<int64_t>(delta.size()));
  std::partial_sort(delta.begin(), delta.begin() + keep, delta.end(), ByScore);
  delta.resize(static_cast<size_t>(keep));
  std::vector<SearchHit> merged;
  merged.reserve(static_cast<size_t>(std::min<int64_t>(m, hits->size() + delta.size())));
  std::merge(hits->begin(), hits->end(), delta.begin(), delta.end(), std::back_inserter(merged),
             ByScore);
  if (static_cast<int64_t>(merged.size()) > m) merged.resize(static_cast<size_t>(m));
  *hits = std::move(merged);
}

absl::StatusOr<std::vector<SearchHit>> ItemIndex::Search(const float* query, int64_t m,
                                                         const std::vector<int64_t>& exclude) const {
  if (m < 1) return absl::InvalidArgumentError(absl::StrCat("m=", m, ": must be >= 1"));
  if (query == nullptr) return absl::InvalidArgumentError("query=null");
  for (int64_t j = 0; j < dim_; ++j) {
    if (!std::isfinite(query[j])) {
      return absl::InvalidArgumentError(
          absl::StrFormat("query[0][%d]=%g: values must be finite", j, query[j]));
    }
  }
  int64_t excluded_present = 0;
  for (int64_t id : exclude) excluded_present += Contains(id) ? 1 : 0;

  // Small exclusion lists are scanned; large ones get a set.
  absl::flat_hash_set<int64_t> exclude_set;
  const bool use_set = exclude.size() > 32;
  if (use_set) exclude_set.insert(exclude.begin(), exclude.end());
  auto is_excluded = [&](int64_t id) {
    return use_set ? exclude_set.contains(id)
                   : std::find(exclude.begin(), exclude.end(), id) != exclude.end();
  };

  std::vector<SearchHit> hits;
  RETURN_IF_ERROR(SearchBase(query, m, excluded_present, is_excluded, &hits));
  if (!delta_ids_.empty()) MergeDelta(query, m, is_excluded, &hits);
  return hits;
}

absl::Status ItemIndex::SearchBatch(const float* queries, int64_t nq, int64_t m,
                                    std::vector<int64_t>* ids, std::vector<float>* scores) const {
  if (nq < 1) return absl::InvalidArgumentError(absl::StrCat("nq=", nq, ": must be >= 1"));
  if (m < 1 || m > size()) {
    return absl::InvalidArgumentError(
        absl::StrCat("m=", m, ": must be in [1, size()=", size(), "]"));
  }
  if (queries == nullptr || ids == nullptr || scores == nullptr) {
    return absl::InvalidArgumentError("queries, ids and scores must be non-null");
  }
  ids->assign(static_cast<size_t>(nq * m), -1);
  scores->assign(ids->size(), -std::numeric_limits<float>::infinity());
  if (xb_ == nullptr) {  // layered: one Search per query (benchmarks only)
    for (int64_t q = 0; q < nq; ++q) {
      ASSIGN_OR_RETURN(const std::vector<SearchHit> hits, Search(queries + q * dim_, m));
      for (size_t i = 0; i < hits.size(); ++i) {
        (*ids)[q * m + i] = hits[i].item_id;
        (*scores)[q * m + i] = hits[i].score;
      }
    }
    return absl::OkStatus();
  }
  const Base& base = *base_;
  std::vector<FaissIdx> labels(static_cast<size_t>(nq * m));
  // IVF honours per-call parameters in 1.7.3; HNSW's efSearch was fixed at build (see Build).
  faiss::SearchParametersIVF ivf_params;
  ivf_params.nprobe = static_cast<size_t>(base.ivf_nprobe);
  const faiss::SearchParameters* params = base.backend == Backend::kIvf ? &ivf_params : nullptr;
  RETURN_IF_ERROR(faiss_call::CallFaiss("batch search", [&] {
    base.index->search(nq, queries, m, scores->data(), labels.data(), params);
  }));
  for (size_t i = 0; i < labels.size(); ++i) {
    if (labels[i] < 0) {
      (*scores)[i] = -std::numeric_limits<float>::infinity();
    } else {
      (*ids)[i] = base.ids[static_cast<size_t>(labels[i])];
    }
  }
  return absl::OkStatus();
}

}  // namespace optower
