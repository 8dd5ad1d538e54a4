// ItemIndex: an immutable maximum-inner-product index over item embeddings (DESIGN §2).
//
// Three FAISS backends, all searching inner product directly (the MIPS->L2 reduction measured far
// worse, DESIGN §2): exact `IndexFlatIP`, `IndexIVFFlat` (METRIC_INNER_PRODUCT) and `IndexHNSWFlat`
// (METRIC_INNER_PRODUCT). Because no index wins on every embedding distribution, Build measures
// recall@10 of the approximate index against exact search on probe queries — the caller's (the
// user tower's outputs: docs/SERVING.md "Index choice"), else perturbed item embeddings — and
// tunes its search breadth upward (IVF nprobe, HNSW efSearch: doubling from the configured value
// up to a cap) until recall@10 reaches `min_recall_at_10`. In kAuto mode it keeps the first
// backend that reaches it (IVF, then HNSW), falling back to exact search.
//
// Incremental changes (WithChanges): a new ItemIndex shares the previous one's FAISS index (the
// *base*, immutable, held by shared_ptr) and adds a small *delta* — the embeddings of new or
// changed items, searched exactly — and a set of *tombstones*, base items that were deleted or
// replaced, filtered out of the base's results (which are over-fetched by their number). Results of
// both layers are merged by score. Drifted() says when the layers have grown enough that a full
// Build should replace them (ItemIndexOptions::delta_max_items / delta_max_fraction).
//
// Conventions: embeddings are [n, dim] float32 row-major; "row" is the position of an item in the
// array given to Build (for WithChanges: in Changes::ids); item ids are the caller's external int64
// ids (ids()[row]). Scores are raw inner products <query, embedding> (larger is better), exact for
// every backend (all store the full vectors).
//
// Thread safety: an ItemIndex never changes after Build/WithChanges; every const method may be
// called from any number of threads at once. FAISS exceptions never escape: they become
// absl::Status here.
#ifndef OPTOWER_CORE_SERVING_ITEM_INDEX_H_
#define OPTOWER_CORE_SERVING_ITEM_INDEX_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
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
  int ivf_nprobe = 16;  // clamped to nlist; the first value the tuning tries
  // Tuning: Build doubles nprobe from ivf_nprobe while the probe's recall@10 is below
  // min_recall_at_10, up to min(ivf_max_nprobe, nlist / 8) (a wider scan costs more than a
  // smaller exact index would; never below ivf_nprobe). ivf_max_nprobe <= ivf_nprobe: no tuning.
  int ivf_max_nprobe = 256;
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
  int hnsw_ef_search = 128;  // the first value the tuning tries
  // Tuning as for IVF: efSearch doubles up to hnsw_max_ef_search (<= hnsw_ef_search: no tuning).
  int hnsw_max_ef_search = 1024;
  // Probe size: how many queries the recall measurement uses (ModelSnapshot: user-tower outputs of
  // up to this many logged contexts, topped up with sampled ones). When Build is given no queries:
  // this many random item embeddings plus Gaussian noise (per coordinate sd = 0.1 * ||v|| /
  // sqrt(dim)), which overstates HNSW's recall on real queries (docs/BENCHMARKS.md §4a).
  int64_t recall_queries = 500;
  // Drift of an incrementally changed index (WithChanges): Drifted() once delta items + tombstones
  // exceed min(delta_max_items, delta_max_fraction * base items). Each costs search time (the
  // delta is scanned exactly, tombstones are over-fetched), so a full rebuild replaces the layers.
  int64_t delta_max_items = 4096;  // >= 0 (0: every change rebuilds)
  double delta_max_fraction = 0.05;  // in [0, 1]
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

  // The index after a catalog change, without a rebuild: shares `previous`'s base (FAISS index),
  // carries its delta and tombstones forward, then removes `deleted` and replaces or adds
  // `upserted` (their embeddings [upserted.size(), dim] row-major) in the delta; base items among
  // them become tombstones. `ids` is the new row order: every live item exactly once (the caller's
  // catalog order). Cost: O(size()) to map rows, O(delta) to copy the delta; no FAISS work.
  // InvalidArgument for a wrong shape, a non-finite embedding, a deleted id not in `previous`, an id
  // both upserted and deleted, or `ids` that are not exactly the live items.
  struct Changes {
    std::vector<int64_t> ids;
    std::vector<int64_t> upserted;
    std::vector<float> upserted_embeddings;
    std::vector<int64_t> deleted;
  };
  static absl::StatusOr<std::unique_ptr<ItemIndex>> WithChanges(const ItemIndex& previous,
                                                                const Changes& changes);

  // Top-min(m, eligible) items by inner product for one query [dim], sorted by descending score,
  // never returning an id in `exclude` (ids not in the index are ignored). Over-fetches
  // m + |exclude ∩ index| (+ the tombstones) from the base and filters; merges the delta's exact
  // top. An approximate backend may return fewer hits than asked.
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

  int64_t size() const { return static_cast<int64_t>(ids_->size()); }
  int64_t dim() const { return dim_; }
  const std::vector<int64_t>& ids() const { return *ids_; }  // ids()[row]
  std::string type_name() const;  // "exact" | "ivf" | "hnsw"
  // Measured at build on the probe, at the tuned nprobe/efSearch; 1.0 for exact. (The delta is
  // searched exactly, so an incremental change does not lower it.)
  double recall_at_10() const;
  // IVF only: whether Build seeded the centroids from `previous` (false: k-means, or not IVF).
  bool ivf_warm_started() const;
  std::string build_report() const;
  int ivf_nlist() const;        // 0 unless IVF
  int ivf_nprobe() const;       // the tuned value; 0 unless IVF
  int hnsw_ef_search() const;   // the tuned value; 0 unless HNSW
  int64_t probe_queries() const;  // queries recall_at_10 was measured on (0 for exact)
  // The layers of an incrementally changed index (all 0 / size() right after Build).
  int64_t base_size() const;
  int64_t delta_size() const { return static_cast<int64_t>(delta_ids_.size()); }
  int64_t tombstones() const { return static_cast<int64_t>(tombstones_.size()); }
  // delta_size() + tombstones() > min(delta_max_items, delta_max_fraction * base_size()).
  bool Drifted(const ItemIndexOptions& options) const;
  bool Contains(int64_t item_id) const { return row_of_->contains(item_id); }
  int64_t RowOf(int64_t item_id) const {  // -1 if absent
    auto it = row_of_->find(item_id);
    return it == row_of_->end() ? -1 : it->second;
  }
  // Batched RowOf: rows[i] = RowOf(item_ids[i]). On a large catalog every lookup is a cache (and
  // TLB) miss; prefetching the probes ahead lets them overlap (measured several times faster than
  // a loop of RowOf at 1M items).
  void RowsOf(const int64_t* item_ids, int64_t count, int64_t* rows) const;
  // [dim] embedding of `row` in [0, size()); points into storage owned by this index.
  const float* embedding(int64_t row) const {
    return xb_ != nullptr ? xb_ + row * dim_ : row_embedding_[static_cast<size_t>(row)];
  }

 private:
  friend class ItemIndexBuilder;  // Build's steps (item_index.cc)
  enum class Backend { kExact, kIvf, kHnsw };
  // What Build made; shared (immutable) by every index WithChanges derives from it.
  struct Base {
    ~Base();
    std::vector<int64_t> ids;                       // base row -> id
    absl::flat_hash_map<int64_t, int64_t> row_of;   // id -> base row
    Backend backend = Backend::kExact;
    // The searched index. For exact and HNSW it also stores the embeddings that xb points into;
    // IVF lists are not addressable by row, so an IVF index keeps the exact flat index as storage.
    std::unique_ptr<faiss::Index> index;
    std::unique_ptr<faiss::Index> storage;
    const float* xb = nullptr;
    int ivf_nlist = 0;
    int ivf_nprobe = 0;
    int hnsw_ef_search = 0;
    int64_t probe_queries = 0;
    bool ivf_warm_started = false;
    double recall_at_10 = 1.0;
    std::string build_report;
  };
  ItemIndex() = default;
  // The base's top hits (tombstones and `is_excluded` filtered), at most m.
  template <typename Excluded>
  absl::Status SearchBase(const float* query, int64_t m, int64_t excluded_present,
                          const Excluded& is_excluded, std::vector<SearchHit>* hits) const;
  // The delta's exact top hits (excluded filtered), at most m, merged into `hits` (sorted).
  template <typename Excluded>
  void MergeDelta(const float* query, int64_t m, const Excluded& is_excluded,
                  std::vector<SearchHit>* hits) const;

  int64_t dim_ = 0;
  std::shared_ptr<const Base> base_;
  // The row space: the base's own for a freshly built index, else the layered index's.
  const std::vector<int64_t>* ids_ = nullptr;
  const absl::flat_hash_map<int64_t, int64_t>* row_of_ = nullptr;
  const float* xb_ = nullptr;  // base rows == rows (no layers), else null and row_embedding_
  // Layers (WithChanges only).
  std::vector<int64_t> layer_ids_;
  absl::flat_hash_map<int64_t, int64_t> layer_row_of_;
  std::vector<const float*> row_embedding_;  // row -> base storage or delta_xb_
  std::vector<int64_t> delta_ids_;
  std::vector<float> delta_xb_;  // [delta, dim]
  absl::flat_hash_set<int64_t> tombstones_;  // base ids not served
};

}  // namespace optower

#endif  // OPTOWER_CORE_SERVING_ITEM_INDEX_H_
