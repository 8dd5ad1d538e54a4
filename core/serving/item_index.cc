#include "core/serving/item_index.h"

#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <functional>
#include <limits>
#include <new>
#include <random>
#include <utility>

#include <faiss/IndexFlat.h>
#include <faiss/IndexHNSW.h>
#include <faiss/IndexIVFFlat.h>
#include <faiss/impl/FaissException.h>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "core/base/status_macros.h"
#include "core/serving/faiss_call.h"
#include "core/serving/simd_ivf_flat.h"

namespace optower {
namespace {

using FaissIdx = faiss::Index::idx_t;

using faiss_call::CallFaiss;
using faiss_call::ScopedOmpThreads;

double Seconds(std::chrono::steady_clock::time_point since) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - since).count();
}

absl::Status CheckFinite(const char* name, const float* x, int64_t rows, int64_t dim) {
  for (int64_t i = 0; i < rows * dim; ++i) {
    if (!std::isfinite(x[i])) {
      return absl::InvalidArgumentError(absl::StrFormat("%s[%d][%d]=%g: values must be finite", name,
                                                        i / dim, i % dim, x[i]));
    }
  }
  return absl::OkStatus();
}

// Centroid of every list = direction of the mean of the rows assigned to it; an empty list takes a
// random row's direction (FAISS's k-means splits a big cluster instead; for a warm start, where empty
// lists are rare, a random row is enough and keeps this one pass over the data).
void ListMeans(const float* x, int64_t n, int64_t dim, const FaissIdx* list_of_row, int nlist,
               std::mt19937_64& rng, std::vector<float>* centroids) {
  std::vector<double> sum(static_cast<size_t>(nlist) * dim, 0.0);
  std::vector<int64_t> count(static_cast<size_t>(nlist), 0);
  for (int64_t row = 0; row < n; ++row) {
    const FaissIdx l = list_of_row[row];
    if (l < 0) continue;
    double* acc = sum.data() + l * dim;
    const float* v = x + row * dim;
    for (int64_t j = 0; j < dim; ++j) acc[j] += v[j];
    ++count[static_cast<size_t>(l)];
  }
  centroids->assign(static_cast<size_t>(nlist) * dim, 0.0f);
  std::uniform_int_distribution<int64_t> pick(0, n - 1);
  for (int l = 0; l < nlist; ++l) {
    float* c = centroids->data() + static_cast<int64_t>(l) * dim;
    if (count[static_cast<size_t>(l)] == 0) {
      const float* v = x + pick(rng) * dim;
      for (int64_t j = 0; j < dim; ++j) sum[l * dim + j] = v[j];
    }
    // Spherical, as FAISS's k-means for an inner-product IVF (IndexIVF sets cp.spherical): only the
    // direction of the mean. Unnormalised means let long centroids win the inner-product
    // assignment and the lists drift apart in size (measured: imbalance 1.4 -> 2.4 in one step).
    double norm2 = 0.0;
    for (int64_t j = 0; j < dim; ++j) norm2 += sum[l * dim + j] * sum[l * dim + j];
    const double inv = norm2 > 0.0 ? 1.0 / std::sqrt(norm2) : 0.0;
    for (int64_t j = 0; j < dim; ++j) c[j] = static_cast<float>(sum[l * dim + j] * inv);
  }
}

// The list of each row of `ivf`, read from its inverted lists (rows were added with ids 0..n-1).
std::vector<FaissIdx> ListOfRow(const faiss::IndexIVF& ivf) {
  std::vector<FaissIdx> list_of_row(static_cast<size_t>(ivf.ntotal), -1);
  for (size_t l = 0; l < ivf.nlist; ++l) {
    const faiss::InvertedLists::ScopedIds ids(ivf.invlists, l);
    const size_t size = ivf.invlists->list_size(l);
    for (size_t i = 0; i < size; ++i) list_of_row[static_cast<size_t>(ids[i])] = static_cast<FaissIdx>(l);
  }
  return list_of_row;
}

// Nearest centroid (largest inner product, the IVF quantizer's metric) of every row.
absl::Status AssignToCentroids(const float* x, int64_t n, int64_t dim,
                               const std::vector<float>& centroids, int nlist, FaissIdx* labels) {
  faiss::IndexFlatIP quantizer(static_cast<int>(dim));
  return CallFaiss("ivf assign", [&] {
    quantizer.add(nlist, centroids.data());
    quantizer.assign(n, x, labels);
  });
}

// Held-out queries: random rows plus isotropic noise of 10% of the row's norm.
std::vector<float> PerturbedQueries(const float* x, int64_t n, int64_t dim, int64_t nq,
                                    uint64_t seed) {
  std::mt19937_64 rng(seed ^ 0x9e3779b97f4a7c15ULL);
  std::uniform_int_distribution<int64_t> pick(0, n - 1);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> q(static_cast<size_t>(nq * dim));
  for (int64_t i = 0; i < nq; ++i) {
    const float* v = x + pick(rng) * dim;
    double norm2 = 0.0;
    for (int64_t j = 0; j < dim; ++j) norm2 += double(v[j]) * v[j];
    const float sd = static_cast<float>(0.1 * std::max(std::sqrt(norm2), 1e-6) / std::sqrt(dim));
    for (int64_t j = 0; j < dim; ++j) q[i * dim + j] = v[j] + sd * normal(rng);
  }
  return q;
}

struct RecallProbe {
  const float* queries;
  int64_t nq;
  int64_t k;                        // min(10, n)
  std::vector<FaissIdx> exact_top;  // [nq, k] ground truth rows
};

// recall@k = mean over queries of |approx top-k ∩ exact top-k| / k.
absl::StatusOr<double> MeasureRecall(const faiss::Index& index, const faiss::SearchParameters* params,
                                     const RecallProbe& probe) {
  std::vector<float> dist(static_cast<size_t>(probe.nq * probe.k));
  std::vector<FaissIdx> labels(dist.size());
  RETURN_IF_ERROR(CallFaiss("recall search", [&] {
    index.search(probe.nq, probe.queries, probe.k, dist.data(), labels.data(), params);
  }));
  int64_t hits = 0;
  for (int64_t i = 0; i < probe.nq; ++i) {
    const FaissIdx* truth = probe.exact_top.data() + i * probe.k;
    const FaissIdx* got = labels.data() + i * probe.k;
    for (int64_t a = 0; a < probe.k; ++a) {
      if (got[a] >= 0 && std::find(truth, truth + probe.k, got[a]) != truth + probe.k) ++hits;
    }
  }
  return static_cast<double>(hits) / static_cast<double>(probe.nq * probe.k);
}

int AutoNlist(int64_t n) {
  // 4*sqrt(n) lists, but no fewer than 39 training points per centroid (FAISS warns below that
  // and the centroids of tiny lists are noise).
  const int64_t by_sqrt = std::llround(4.0 * std::sqrt(static_cast<double>(n)));
  return static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(by_sqrt, n / 39)));
}

}  // namespace

ItemIndex::~ItemIndex() = default;
ItemIndex::Base::~Base() = default;

double ItemIndex::recall_at_10() const { return base_->recall_at_10; }
bool ItemIndex::ivf_warm_started() const { return base_->ivf_warm_started; }
std::string ItemIndex::build_report() const { return base_->build_report; }
int ItemIndex::ivf_nlist() const { return base_->ivf_nlist; }
int ItemIndex::ivf_nprobe() const { return base_->ivf_nprobe; }
int ItemIndex::hnsw_ef_search() const { return base_->hnsw_ef_search; }
int64_t ItemIndex::probe_queries() const { return base_->probe_queries; }
int64_t ItemIndex::base_size() const { return static_cast<int64_t>(base_->ids.size()); }

std::string ItemIndex::type_name() const {
  switch (base_->backend) {
    case Backend::kExact:
      return "exact";
    case Backend::kIvf:
      return "ivf";
    case Backend::kHnsw:
      return "hnsw";
  }
  return "unknown";
}

void ItemIndex::RowsOf(const int64_t* item_ids, int64_t count, int64_t* rows) const {
  constexpr int64_t kAhead = 16;  // outstanding prefetches; about what one core's MSHRs hold
  for (int64_t i = 0; i < std::min(count, kAhead); ++i) row_of_->prefetch(item_ids[i]);
  for (int64_t i = 0; i < count; ++i) {
    if (i + kAhead < count) row_of_->prefetch(item_ids[i + kAhead]);
    rows[i] = RowOf(item_ids[i]);
  }
}

namespace {

absl::Status CheckBuildArguments(const float* embeddings, int64_t n, int64_t dim,
                                 const std::vector<int64_t>& ids, const ItemIndexOptions& options,
                                 const float* recall_queries, int64_t n_recall_queries) {
  if (n < 1) return absl::InvalidArgumentError(absl::StrCat("n=", n, ": must be >= 1"));
  if (dim < 1) return absl::InvalidArgumentError(absl::StrCat("dim=", dim, ": must be >= 1"));
  if (embeddings == nullptr) return absl::InvalidArgumentError("embeddings=null");
  if (static_cast<int64_t>(ids.size()) != n) {
    return absl::InvalidArgumentError(
        absl::StrCat("ids.size()=", ids.size(), ": must equal n=", n));
  }
  if (n_recall_queries < 0 || (n_recall_queries > 0 && recall_queries == nullptr)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "n_recall_queries=", n_recall_queries, ": must be 0, or > 0 with non-null recall_queries"));
  }
  RETURN_IF_ERROR(options.Validate());
  if (options.ivf_nlist > n) {
    return absl::InvalidArgumentError(absl::StrCat(
        "ivf_nlist=", options.ivf_nlist, ": must be in [0, n=", n, "] (0 = automatic)"));
  }
  RETURN_IF_ERROR(CheckFinite("embeddings", embeddings, n, dim));
  if (n_recall_queries > 0) {
    RETURN_IF_ERROR(CheckFinite("recall_queries", recall_queries, n_recall_queries, dim));
  }
  return absl::OkStatus();
}

const char* TypeName(ItemIndexOptions::Type type) {
  using Type = ItemIndexOptions::Type;
  return type == Type::kAuto    ? "auto"
         : type == Type::kExact ? "exact"
         : type == Type::kIvf   ? "ivf"
                                : "hnsw";
}

}  // namespace

// The steps of ItemIndex::Build: the exact index, the recall probe, then each approximate
// candidate built and measured in turn; the first one accepted becomes the index. Appends what it
// did to `report` (ItemIndex::build_report). One builder per Build; not thread-safe.
class ItemIndexBuilder {
 public:
  ItemIndexBuilder(const float* embeddings, int64_t n, int64_t dim, const ItemIndexOptions& options,
                   ItemIndex::Base* self)
      : x_(embeddings), n_(n), dim_(dim), options_(options), self_(self) {}

  // The ground truth of recall@10: exact top-10 of the given queries, or of perturbed item
  // embeddings when none are given.
  absl::Status PrepareProbe(const faiss::IndexFlatIP& flat, const float* recall_queries,
                            int64_t n_recall_queries) {
    probe_ = RecallProbe{nullptr, 0, std::min<int64_t>(10, n_), {}};
    if (n_recall_queries > 0) {
      probe_.queries = recall_queries;
      probe_.nq = n_recall_queries;
    } else {
      generated_queries_ = PerturbedQueries(x_, n_, dim_, options_.recall_queries, options_.seed);
      probe_.queries = generated_queries_.data();
      probe_.nq = options_.recall_queries;
    }
    probe_.exact_top.resize(static_cast<size_t>(probe_.nq * probe_.k));
    std::vector<float> dist(probe_.exact_top.size());
    return CallFaiss("exact search", [&] {
      flat.search(probe_.nq, probe_.queries, probe_.k, dist.data(), probe_.exact_top.data());
    });
  }

  // Builds IVF (warm-started from `previous` when it can) and keeps it if accepted.
  absl::StatusOr<bool> TryIvf(const ItemIndex* previous) {
    const auto t0 = std::chrono::steady_clock::now();
    nlist_ = options_.ivf_nlist > 0 ? options_.ivf_nlist : AutoNlist(n_);
    params_.nprobe = std::min(options_.ivf_nprobe, nlist_);
    std::unique_ptr<faiss::IndexIVFFlat> ivf;
    double recall = 0.0;
    ASSIGN_OR_RETURN(const bool warm, TryIvfWarmStart(previous, t0, &ivf, &recall));
    if (!warm) {
      ASSIGN_OR_RETURN(ivf, MakeIvf(nullptr, nullptr));
      ASSIGN_OR_RETURN(recall, TuneIvf(*ivf));
    }
    absl::StrAppend(&report, absl::StrFormat(" ivf(nlist=%d,nprobe=%d) recall@10=%.4f in %.2fs",
                                             nlist_, static_cast<int>(params_.nprobe), recall,
                                             Seconds(t0)));
    if (!Accepted(ItemIndexOptions::Type::kIvf, recall, " -> ivf;")) return false;
    ivf->nprobe = params_.nprobe;  // before publication: Search passes it explicitly anyway
    self_->backend = ItemIndex::Backend::kIvf;
    self_->ivf_nlist = nlist_;
    self_->ivf_nprobe = static_cast<int>(params_.nprobe);
    self_->ivf_warm_started = warm;
    self_->recall_at_10 = recall;
    self_->index = std::move(ivf);
    return true;
  }

  // Builds HNSW and keeps it if accepted.
  absl::StatusOr<bool> TryHnsw() {
    const auto t0 = std::chrono::steady_clock::now();
    auto hnsw = std::make_unique<faiss::IndexHNSWFlat>(static_cast<int>(dim_), options_.hnsw_m,
                                                       faiss::METRIC_INNER_PRODUCT);
    hnsw->hnsw.efConstruction = options_.hnsw_ef_construction;
    RETURN_IF_ERROR(CallFaiss("hnsw add", [&] { hnsw->add(n_, x_); }));
    // FAISS 1.7.3's IndexHNSW::search ignores SearchParametersHNSW::efSearch (measured: recall
    // moved only with the member), so the tuning sets the member; this index is not published
    // yet, and once it is nothing writes it again, so concurrent searches only read it.
    ASSIGN_OR_RETURN(double recall, TuneHnsw(hnsw.get()));
    absl::StrAppend(&report,
                    absl::StrFormat(" hnsw(M=%d,efC=%d,efS=%d) recall@10=%.4f in %.2fs",
                                    options_.hnsw_m, options_.hnsw_ef_construction,
                                    hnsw->hnsw.efSearch, recall, Seconds(t0)));
    if (!Accepted(ItemIndexOptions::Type::kHnsw, recall, " -> hnsw;")) return false;
    auto* storage = dynamic_cast<faiss::IndexFlat*>(hnsw->storage);
    if (storage == nullptr) return absl::InternalError("IndexHNSWFlat storage is not IndexFlat");
    self_->backend = ItemIndex::Backend::kHnsw;
    self_->hnsw_ef_search = hnsw->hnsw.efSearch;
    self_->recall_at_10 = recall;
    self_->xb = storage->get_xb();
    self_->index = std::move(hnsw);
    return true;
  }

  std::string report;
  int64_t probe_queries() const { return probe_.nq; }

 private:
  // Measures recall@10 at nprobe = ivf_nprobe, doubling while it is below min_recall_at_10 and
  // nprobe is below the cap (ItemIndexOptions::ivf_max_nprobe); leaves the last value tried in
  // params_.nprobe and appends the steps to the report.
  absl::StatusOr<double> TuneIvf(const faiss::IndexIVF& ivf) {
    const int first = std::min(options_.ivf_nprobe, nlist_);
    const int cap = std::max(first, std::min({options_.ivf_max_nprobe, nlist_ / 8, nlist_}));
    return Tune("nprobe", first, cap, [&](int nprobe) -> absl::StatusOr<double> {
      params_.nprobe = static_cast<size_t>(nprobe);
      return MeasureRecall(ivf, &params_, probe_);
    });
  }

  // The same for HNSW's efSearch (set on the index itself: see TryHnsw).
  absl::StatusOr<double> TuneHnsw(faiss::IndexHNSW* hnsw) {
    const int first = options_.hnsw_ef_search;
    const int cap = std::max(first, options_.hnsw_max_ef_search);
    return Tune("efSearch", first, cap, [&](int ef) -> absl::StatusOr<double> {
      hnsw->hnsw.efSearch = ef;
      return MeasureRecall(*hnsw, nullptr, probe_);
    });
  }

  absl::StatusOr<double> Tune(const char* name, int first, int cap,
                              const std::function<absl::StatusOr<double>(int)>& measure) {
    int value = first;
    ASSIGN_OR_RETURN(double recall, measure(value));
    std::string steps = absl::StrFormat("%s %d:%.4f", name, value, recall);
    while (recall < options_.min_recall_at_10 && value < cap) {
      value = static_cast<int>(std::min<int64_t>(int64_t{2} * value, cap));
      ASSIGN_OR_RETURN(recall, measure(value));
      absl::StrAppend(&steps, absl::StrFormat(" %d:%.4f", value, recall));
    }
    if (value != first) absl::StrAppend(&report, " tuned ", steps, " (cap ", cap, ");");
    return recall;
  }

  // The candidate is kept when it was asked for explicitly or reaches min_recall_at_10.
  bool Accepted(ItemIndexOptions::Type type, double recall, const char* chosen) {
    if (options_.type == type || recall >= options_.min_recall_at_10) {
      absl::StrAppend(&report, chosen);
      return true;
    }
    absl::StrAppend(&report, " < min ", options_.min_recall_at_10, ";");
    return false;
  }

  // An IVF index over every row: with `centroids` (and each row's list in `labels`) the quantizer
  // holds them as given; with centroids == nullptr FAISS's k-means trains it.
  absl::StatusOr<std::unique_ptr<faiss::IndexIVFFlat>> MakeIvf(
      const std::vector<float>* centroids, const std::vector<FaissIdx>* labels) {
    // The SIMD subclasses (core/serving/simd_ivf_flat.h): Debian's FAISS scans lists and
    // centroids with a scalar inner product.
    auto quantizer = std::make_unique<SimdIndexFlatIP>(dim_);
    auto ivf = std::make_unique<SimdIndexIVFFlat>(quantizer.get(), dim_, nlist_);
    ivf->own_fields = true;
    quantizer.release();
    ivf->cp.seed = static_cast<int>(options_.seed & 0x7fffffff);
    ivf->cp.verbose = false;
    ivf->nprobe = params_.nprobe;
    // k-means here assigns by inner product too (the quantizer's metric). Training the centroids
    // by L2 instead (clustering_index = IndexFlatL2) gave the same recall to 3 decimals on
    // clustered data with log-normal norms (20k x 32, sigma 0.3 and 1.0) at 2.5x the training time.
    RETURN_IF_ERROR(CallFaiss("ivf train/add", [&] {
      if (centroids == nullptr) {
        ivf->train(n_, x_);
        ivf->add(n_, x_);
      } else {
        ivf->quantizer->add(nlist_, centroids->data());
        ivf->is_trained = true;
        ivf->add_core(n_, x_, nullptr, labels->data());
      }
    }));
    return ivf;
  }

  // Each row starts in the list its item had in the previous IVF index (see
  // ItemIndexOptions::ivf_warm_start). True when the warm-started index is good enough; then
  // *ivf and *recall hold it. False (and a note in the report) when it cannot or did not hold up.
  absl::StatusOr<bool> TryIvfWarmStart(const ItemIndex* previous,
                                       std::chrono::steady_clock::time_point t0,
                                       std::unique_ptr<faiss::IndexIVFFlat>* ivf, double* recall) {
    // The previous index's lists hold its base rows (an incrementally changed index's delta
    // items have no list: they count as unknown here).
    const ItemIndex::Base* prev = previous != nullptr ? previous->base_.get() : nullptr;
    const faiss::IndexIVF* previous_ivf =
        prev != nullptr && prev->backend == ItemIndex::Backend::kIvf
            ? dynamic_cast<const faiss::IndexIVF*>(prev->index.get())
            : nullptr;
    if (!options_.ivf_warm_start || previous_ivf == nullptr || previous->dim_ != dim_ ||
        static_cast<int>(previous_ivf->nlist) != nlist_) {
      return false;
    }
    const std::vector<FaissIdx> previous_list = ListOfRow(*previous_ivf);
    std::vector<FaissIdx> labels(static_cast<size_t>(n_), -1);
    int64_t known = 0;
    for (int64_t row = 0; row < n_; ++row) {
      const auto it = prev->row_of.find(self_->ids[row]);
      if (it == prev->row_of.end() || previous->tombstones_.contains(self_->ids[row])) continue;
      const int64_t old_row = it->second;
      labels[row] = previous_list[static_cast<size_t>(old_row)];
      ++known;
    }
    if (2 * known < n_) {
      absl::StrAppend(&report, absl::StrFormat(" ivf warm start skipped (%d of %d items known);",
                                               known, n_));
      return false;
    }
    std::mt19937_64 rng(options_.seed ^ 0x5bd1e995ULL);
    std::vector<float> centroids;
    ListMeans(x_, n_, dim_, labels.data(), nlist_, rng, &centroids);
    for (int it = 0; it < options_.ivf_warm_start_iterations; ++it) {
      RETURN_IF_ERROR(AssignToCentroids(x_, n_, dim_, centroids, nlist_, labels.data()));
      ListMeans(x_, n_, dim_, labels.data(), nlist_, rng, &centroids);
    }
    RETURN_IF_ERROR(AssignToCentroids(x_, n_, dim_, centroids, nlist_, labels.data()));
    ASSIGN_OR_RETURN(*ivf, MakeIvf(&centroids, &labels));
    ASSIGN_OR_RETURN(*recall, TuneIvf(**ivf));
    // The recall of another model's embeddings is not comparable one to one (the served index
    // may have had an easy space); reaching min_recall_at_10 is enough. In kAuto mode IVF must
    // reach it anyway to be chosen, so a warm start below it gets its chance with k-means.
    const double floor =
        options_.type == ItemIndexOptions::Type::kAuto
            ? options_.min_recall_at_10
            : std::min(prev->recall_at_10 - options_.ivf_warm_start_max_recall_loss,
                       options_.min_recall_at_10);
    // Recall alone would accept a degenerate partition (a few huge lists are searched almost
    // exhaustively: high recall, slow search), so the list-size balance must hold up too.
    const double imbalance = (*ivf)->invlists->imbalance_factor();
    const double max_imbalance = 1.5 * previous_ivf->invlists->imbalance_factor();
    absl::StrAppend(&report, absl::StrFormat(
                                 " ivf warm start from the previous lists (%d of %d items, %d "
                                 "Lloyd steps) recall@10=%.4f imbalance %.2f in %.2fs",
                                 known, n_, options_.ivf_warm_start_iterations, *recall,
                                 imbalance, Seconds(t0)));
    if (*recall >= floor && imbalance <= max_imbalance) return true;
    absl::StrAppend(&report, absl::StrFormat(
                                 " (needs recall >= %.4f, imbalance <= %.2f) -> k-means:", floor,
                                 max_imbalance));
    return false;
  }

  const float* x_;
  int64_t n_;
  int64_t dim_;
  const ItemIndexOptions& options_;
  ItemIndex::Base* self_;
  std::vector<float> generated_queries_;
  RecallProbe probe_;
  int nlist_ = 0;
  faiss::SearchParametersIVF params_;
};

absl::StatusOr<std::unique_ptr<ItemIndex>> ItemIndex::Build(const float* embeddings, int64_t n,
                                                            int64_t dim, std::vector<int64_t> ids,
                                                            const ItemIndexOptions& options,
                                                            const float* recall_queries,
                                                            int64_t n_recall_queries,
                                                            const ItemIndex* previous) {
  const auto start = std::chrono::steady_clock::now();
  RETURN_IF_ERROR(CheckBuildArguments(embeddings, n, dim, ids, options, recall_queries,
                                      n_recall_queries));
  auto self = std::make_shared<Base>();
  self->row_of.reserve(static_cast<size_t>(n));
  for (int64_t row = 0; row < n; ++row) {
    if (!self->row_of.emplace(ids[row], row).second) {
      return absl::InvalidArgumentError(absl::StrCat("ids[", row, "]=", ids[row],
                                                     ": duplicate item id (also ids[",
                                                     self->row_of[ids[row]], "])"));
    }
  }
  self->ids = std::move(ids);

  ScopedOmpThreads build_threads(options.threads);
  auto flat = std::make_unique<SimdIndexFlatIP>(dim);  // exact search of one query on SIMD
  RETURN_IF_ERROR(CallFaiss("flat add", [&] { flat->add(n, embeddings); }));

  using Type = ItemIndexOptions::Type;
  const bool large = options.type == Type::kAuto && n > options.exact_max_items;
  const bool want_ivf = options.type == Type::kIvf || large;
  const bool want_hnsw = options.type == Type::kHnsw || large;
  ItemIndexBuilder builder(embeddings, n, dim, options, self.get());
  builder.report = absl::StrCat("n=", n, " dim=", dim, " type=", TypeName(options.type), ":");
  if (options.type == Type::kAuto && !want_ivf) {
    absl::StrAppend(&builder.report, " n <= exact_max_items=", options.exact_max_items, " -> exact;");
  }
  if (want_ivf || want_hnsw) {
    RETURN_IF_ERROR(builder.PrepareProbe(*flat, recall_queries, n_recall_queries));
  }
  bool chosen = false;
  if (want_ivf) {
    ASSIGN_OR_RETURN(chosen, builder.TryIvf(previous));
  }
  if (!chosen && want_hnsw) {
    ASSIGN_OR_RETURN(chosen, builder.TryHnsw());
  }
  if (!chosen) {
    if (want_ivf || want_hnsw) {
      absl::StrAppend(&builder.report, " no approximate index reached min_recall_at_10=",
                      options.min_recall_at_10, " -> exact;");
    } else if (options.type == Type::kExact) {
      absl::StrAppend(&builder.report, " exact;");
    }
    self->backend = Backend::kExact;
    self->recall_at_10 = 1.0;
    self->xb = flat->get_xb();
    self->index = std::move(flat);
  } else {
    self->probe_queries = builder.probe_queries();
    if (self->backend == Backend::kIvf) {
      // IVF lists are not addressable by row: the flat index stays as storage.
      self->xb = flat->get_xb();
      self->storage = std::move(flat);
    }
  }
  absl::StrAppend(&builder.report, absl::StrFormat(" build %.2fs", Seconds(start)));
  self->build_report = std::move(builder.report);
  std::unique_ptr<ItemIndex> index(new ItemIndex());
  index->dim_ = dim;
  index->ids_ = &self->ids;
  index->row_of_ = &self->row_of;
  index->xb_ = self->xb;
  index->base_ = std::move(self);
  return index;
}

}  // namespace optower
