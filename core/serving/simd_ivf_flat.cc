#include "core/serving/simd_ivf_flat.h"

#include <algorithm>
#include <cstdint>

#include <faiss/impl/AuxIndexStructures.h>
#include <faiss/impl/FaissAssert.h>
#include <faiss/invlists/DirectMap.h>
#include <faiss/utils/Heap.h>
#include <faiss/utils/distances.h>

namespace optower {
namespace {

using FaissIdx = faiss::Index::idx_t;
// Inner product: larger is better, so the running top-k is a min-heap whose root is the worst kept
// score (FAISS's IndexIVFFlat and knn_inner_product use the same comparator, ties included).
using TopK = faiss::CMin<float, FaissIdx>;

// Scores are computed this many rows at a time into a stack buffer, then pushed through the heap:
// the kernel's loop stays free of the heap's branches.
constexpr size_t kScoreBlock = 256;

// FAISS's IVFFlatScanner for METRIC_INNER_PRODUCT without an ID selector, on the kernel.
class SimdIpScanner : public faiss::InvertedListScanner {
 public:
  SimdIpScanner(size_t d, bool store_pairs, const InnerProductFns& fns)
      : faiss::InvertedListScanner(store_pairs, nullptr), d_(d), fns_(fns) {
    keep_max = true;  // IndexIVF::search_preassigned then initialises min-heaps (largest kept)
    code_size = d * sizeof(float);
  }

  void set_query(const float* query) override { query_ = query; }

  void set_list(FaissIdx list, float /*coarse_dis*/) override { list_no = list; }

  float distance_to_code(const uint8_t* code) const override {
    return fns_.one(query_, reinterpret_cast<const float*>(code), d_);
  }

  size_t scan_codes(size_t n, const uint8_t* codes, const FaissIdx* ids, float* heap_dis,
                    FaissIdx* heap_ids, size_t k) const override {
    const float* rows = reinterpret_cast<const float*>(codes);
    float scores[kScoreBlock];
    size_t updates = 0;
    for (size_t j0 = 0; j0 < n; j0 += kScoreBlock) {
      const size_t m = std::min(kScoreBlock, n - j0);
      fns_.many(query_, rows + j0 * d_, d_, m, scores);
      for (size_t j = 0; j < m; ++j) {
        if (!TopK::cmp(heap_dis[0], scores[j])) continue;
        // store_pairs: the caller wants (list, offset) instead of the stored id (lo_build packs
        // them as FAISS's own scanners do).
        const FaissIdx id = store_pairs ? static_cast<FaissIdx>(faiss::lo_build(list_no, j0 + j))
                                        : ids[j0 + j];
        faiss::heap_replace_top<TopK>(k, heap_dis, heap_ids, scores[j], id);
        ++updates;
      }
    }
    return updates;
  }

  void scan_codes_range(size_t n, const uint8_t* codes, const FaissIdx* ids, float radius,
                        faiss::RangeQueryResult& result) const override {
    const float* rows = reinterpret_cast<const float*>(codes);
    float scores[kScoreBlock];
    for (size_t j0 = 0; j0 < n; j0 += kScoreBlock) {
      const size_t m = std::min(kScoreBlock, n - j0);
      fns_.many(query_, rows + j0 * d_, d_, m, scores);
      for (size_t j = 0; j < m; ++j) {
        if (!TopK::cmp(radius, scores[j])) continue;  // inner product: keep scores above radius
        const FaissIdx id = store_pairs ? static_cast<FaissIdx>(faiss::lo_build(list_no, j0 + j))
                                        : ids[j0 + j];
        result.add(scores[j], id);
      }
    }
  }

 private:
  size_t d_;
  const InnerProductFns& fns_;
  const float* query_ = nullptr;
};

}  // namespace

void SimdIndexFlatIP::search(idx_t n, const float* x, idx_t k, float* distances, idx_t* labels,
                             const faiss::SearchParameters* params) const {
  // Many queries: FAISS's BLAS matrix product is the better tool (and what IndexFlatIP does).
  if (n >= faiss::distance_compute_blas_threshold || (params != nullptr && params->sel != nullptr)) {
    faiss::IndexFlatIP::search(n, x, k, distances, labels, params);
    return;
  }
  FAISS_THROW_IF_NOT(k > 0);
  const float* xb = get_xb();
  const size_t dim = static_cast<size_t>(d);
  float scores[kScoreBlock];
  for (idx_t q = 0; q < n; ++q) {
    const float* query = x + q * d;
    float* heap_dis = distances + q * k;
    idx_t* heap_ids = labels + q * k;
    faiss::heap_heapify<TopK>(static_cast<size_t>(k), heap_dis, heap_ids);
    for (idx_t j0 = 0; j0 < ntotal; j0 += static_cast<idx_t>(kScoreBlock)) {
      const size_t m = static_cast<size_t>(std::min<idx_t>(kScoreBlock, ntotal - j0));
      fns->many(query, xb + j0 * d, dim, m, scores);
      for (size_t j = 0; j < m; ++j) {
        if (TopK::cmp(heap_dis[0], scores[j])) {
          faiss::heap_replace_top<TopK>(static_cast<size_t>(k), heap_dis, heap_ids, scores[j],
                                        j0 + static_cast<idx_t>(j));
        }
      }
    }
    faiss::heap_reorder<TopK>(static_cast<size_t>(k), heap_dis, heap_ids);
  }
}

faiss::InvertedListScanner* SimdIndexIVFFlat::get_InvertedListScanner(
    bool store_pairs, const faiss::IDSelector* sel) const {
  if (metric_type != faiss::METRIC_INNER_PRODUCT || sel != nullptr) {
    return faiss::IndexIVFFlat::get_InvertedListScanner(store_pairs, sel);
  }
  return new SimdIpScanner(static_cast<size_t>(d), store_pairs, *fns);
}

}  // namespace optower
