// ItemIndex: an immutable maximum-inner-product index over item embeddings (DESIGN §2).
//
// Three FAISS backends, all searching inner product directly (the MIPS->L2 reduction measured far
// worse, DESIGN §2): exact `IndexFlatIP`, `IndexIVFFlat` (METRIC_INNER_PRODUCT) and `IndexHNSWFlat`
// (METRIC_INNER_PRODUCT). Because no index wins on every embedding distribution, Build measures
// recall@10 of the approximate index against exact search on held-out queries and, in kAuto mode,
// keeps the first backend that reaches `min_recall_at_10`, falling back to exact search.
//
// Conventions: embeddings are [n, dim] float32 row-major; "row" is the position of an item in the
// array given to Build; item ids are the caller's external int64 ids (ids()[row]). Scores are raw
// inner products <query, embedding> (larger is better), exact for every backend (all store the
// full vectors).
//
// Thread safety: an ItemIndex never changes after Build; every const method may be called from any
// number of threads at once. FAISS exceptions never escape: they become absl::Status here.
#ifndef OPTOWER_CORE_SERVING_ITEM_INDEX_H_
#define OPTOWER_CORE_SERVING_ITEM_INDEX_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace faiss {
struct Index;
}  // namespace faiss

namespace optower {

struct ItemIndexOptions {
  enum class Type { kAuto, kExact, kIvf, kHnsw };
  Type type = Type::kAuto;
  // kAuto: exact search up to this many items; above it try IVF, then HNSW, and keep the first
  // whose measured recall@10 reaches min_recall_at_10 (else exact, and build_report says so).
  int64_t exact_max_items = 100000;
  double min_recall_at_10 = 0.95;  // in [0, 1]
  // IVF. nlist 0 = min(4*sqrt(n), n/39): FAISS k-means wants >= 39 training points per centroid.
  int ivf_nlist = 0;
  int ivf_nprobe = 16;  // clamped to nlist
  // Warm start (Build with `previous`): seed the coarse centroids from the previous IVF index's lists
  // instead of running k-means from scratch — centroid of list l = mean of the NEW embeddings of the
  // items the previous index put in list l, refined by ivf_warm_start_iterations Lloyd steps. A model
  // swap or catalog change moves the embeddings little, so this keeps the partition at a fraction of
  // k-means's cost (it runs 10 iterations from random centroids). Used only when the previous index
  // is IVF with the same nlist and dim and holds at least half of the items. If the measured
  // recall@10 falls below min(previous index's recall - ivf_warm_start_max_recall_loss,
  // min_recall_at_10) (kAuto: below min_recall_at_10), or the lists' imbalance factor exceeds 1.5x
  // the previous one (a few huge lists: slow searches), Build runs k-means after all.
  bool ivf_warm_start = true;
  int ivf_warm_start_iterations = 0;            // >= 0 (measured: 1 step gave the same recall)
  double ivf_warm_start_max_recall_loss = 0.02;  // in [0, 1]
  // HNSW.
  int hnsw_m = 32;
  int hnsw_ef_construction = 80;
  int hnsw_ef_search = 128;
  // Held-out queries for the recall measurement when Build is given none: random item embeddings
  // plus Gaussian noise (per coordinate sd = 0.1 * ||v|| / sqrt(dim)).
  int64_t recall_queries = 200;
  // OpenMP threads for Build only (k-means, HNSW insertion, recall ground truth); 0 = the calling
  // thread's OpenMP default. Restored when Build returns.
  int threads = 0;
  uint64_t seed = 0;  // recall queries, k-means initialisation

  // InvalidArgument naming the first field out of range and its value ("hnsw_m=1: must be in
  // [2, 512]"). Build also checks ivf_nlist <= n, which needs the item count.
  absl::Status Validate() const;
};

struct SearchHit {
  int64_t item_id;
  float score;  // inner product <query, embedding>
};

class ItemIndex {
 public:
  // embeddings: [n, dim] row-major, finite. ids: [n] unique external ids. The index copies what it
  // needs; the caller keeps ownership of `embeddings` and `recall_queries`.
  // recall_queries: optional [n_recall_queries, dim] row-major queries (e.g. user-tower outputs)
  // used instead of perturbed item embeddings to measure recall@10.
  // previous: optional index over (mostly) the same item ids built from other embeddings (the
  // served snapshot's); an IVF build warm-starts from it (see ItemIndexOptions::ivf_warm_start).
  // Blocks for the whole build (for HNSW on ~1M items: minutes). Errors: InvalidArgument for bad
  // shapes/values/options, Internal for a FAISS failure.
  static absl::StatusOr<std::unique_ptr<ItemIndex>> Build(const float* embeddings, int64_t n,
                                                          int64_t dim, std::vector<int64_t> ids,
                                                          const ItemIndexOptions& options,
                                                          const float* recall_queries = nullptr,
                                                          int64_t n_recall_queries = 0,
                                                          const ItemIndex* previous = nullptr);

  ~ItemIndex();
  ItemIndex(const ItemIndex&) = delete;
  ItemIndex& operator=(const ItemIndex&) = delete;

  // Top-min(m, eligible) items by inner product for one query [dim], sorted by descending score,
  // never returning an id in `exclude` (ids not in the index are ignored). Over-fetches
  // m + |exclude ∩ index| and filters. An approximate backend may return fewer hits than asked.
  // Runs on the calling thread only: OpenMP is limited to one thread for the duration of the call
  // (omp_set_num_threads acts on the calling thread's ICV, so it is saved and restored), because
  // the caller supplies concurrency and FAISS's HNSW search would otherwise start a full OpenMP
  // team (each member allocating an n-byte visited table) for a single query.
  // Errors: InvalidArgument for m <= 0, a null or non-finite query.
  absl::StatusOr<std::vector<SearchHit>> Search(const float* query, int64_t m,
                                                const std::vector<int64_t>& exclude = {}) const;

  // Batched raw search for benchmarks: queries [nq, dim] -> ids/scores [nq, m] row-major (resized
  // here). Uses the calling thread's OpenMP setting (parallel over queries). Slots an approximate
  // backend could not fill hold id -1 and score -inf. m must be in [1, size()].
  absl::Status SearchBatch(const float* queries, int64_t nq, int64_t m, std::vector<int64_t>* ids,
                           std::vector<float>* scores) const;

  int64_t size() const { return static_cast<int64_t>(ids_.size()); }
  int64_t dim() const { return dim_; }
  const std::vector<int64_t>& ids() const { return ids_; }  // ids()[row]
  std::string type_name() const;  // "exact" | "ivf" | "hnsw"
  double recall_at_10() const { return recall_at_10_; }  // measured at build; 1.0 for exact
  // IVF only: whether Build seeded the centroids from `previous` (false: k-means, or not IVF).
  bool ivf_warm_started() const { return ivf_warm_started_; }
  std::string build_report() const { return build_report_; }
  bool Contains(int64_t item_id) const { return row_of_.contains(item_id); }
  int64_t RowOf(int64_t item_id) const {  // -1 if absent
    auto it = row_of_.find(item_id);
    return it == row_of_.end() ? -1 : it->second;
  }
  // Batched RowOf: rows[i] = RowOf(item_ids[i]). On a large catalog every lookup is a cache (and
  // TLB) miss; prefetching the probes ahead lets them overlap (measured several times faster than
  // a loop of RowOf at 1M items).
  void RowsOf(const int64_t* item_ids, int64_t count, int64_t* rows) const;
  // [dim] embedding of `row` in [0, size()); points into storage owned by this index.
  const float* embedding(int64_t row) const { return xb_ + row * dim_; }

 private:
  friend class ItemIndexBuilder;  // Build's steps (item_index.cc)
  enum class Backend { kExact, kIvf, kHnsw };
  ItemIndex() = default;

  int64_t dim_ = 0;
  std::vector<int64_t> ids_;
  absl::flat_hash_map<int64_t, int64_t> row_of_;
  Backend backend_ = Backend::kExact;
  // The searched index. For exact and HNSW it also stores the embeddings that xb_ points into;
  // IVF lists are not addressable by row, so an IVF index keeps the exact flat index as storage.
  std::unique_ptr<faiss::Index> index_;
  std::unique_ptr<faiss::Index> storage_;
  const float* xb_ = nullptr;
  int ivf_nprobe_ = 0;
  bool ivf_warm_started_ = false;
  double recall_at_10_ = 1.0;
  std::string build_report_;
};

}  // namespace optower

#endif  // OPTOWER_CORE_SERVING_ITEM_INDEX_H_
