// ItemProposal: the "head" proposal of the sampled policy gradient (sampled_gradient.h,
// docs/LEARNING.md "Large catalogs"). A maximum-inner-product index over the policy's item
// embeddings at the start of an epoch; each step asks it for the top-M catalog rows of every
// context's current user embedding. Those rows enter the step's candidate set with their exact
// logits, so any set works (the estimator stays as unbiased as with any other head): a stale or
// approximate index only moves probability mass from the exact head to the sampled tail and so
// raises the variance, never the bias. That is why the index is rebuilt only once per epoch and
// may be approximate.
//
// Backends: exact IndexFlatIP up to `exact_max_items` items, IndexIVFFlat (inner product) above.
// No torch here: rows in, rows out.
//
// Thread safety: immutable after Build; TopRows may be called from any thread (FAISS searches with
// the calling thread's OpenMP setting).
#ifndef OPTOWER_CORE_LEARNING_ITEM_PROPOSAL_H_
#define OPTOWER_CORE_LEARNING_ITEM_PROPOSAL_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace faiss {
struct Index;
}  // namespace faiss

namespace optower {

struct ItemProposalOptions {
  int64_t exact_max_items = 20000;  // exact search up to this many items, IVF above
  // 0 = min(sqrt(n), n / 39). Fewer lists than the serving index (4 sqrt(n)): the index is rebuilt
  // every epoch, and k-means plus assigning all n items cost O(n * nlist); measured at 1M items
  // and nlist 4000, 57 s per rebuild, vs a few seconds at 1000.
  int ivf_nlist = 0;
  int ivf_nprobe = 8;
  uint64_t seed = 0;
};

class ItemProposal {
 public:
  // embeddings: [n, dim] row-major (copied). Errors: InvalidArgument for bad shapes, Internal for
  // a FAISS failure.
  static absl::StatusOr<std::unique_ptr<ItemProposal>> Build(const float* embeddings, int64_t n,
                                                             int64_t dim,
                                                             const ItemProposalOptions& options);
  ~ItemProposal();
  ItemProposal(const ItemProposal&) = delete;
  ItemProposal& operator=(const ItemProposal&) = delete;

  // rows [nq * m]: for each query [dim] its top-m rows by inner product; slots an approximate
  // index could not fill hold -1. m in [1, size()].
  absl::Status TopRows(const float* queries, int64_t nq, int64_t m,
                       std::vector<int64_t>* rows) const;

  int64_t size() const { return n_; }
  std::string type_name() const { return ivf_ ? "ivf" : "exact"; }
  double build_seconds() const { return build_seconds_; }

 private:
  ItemProposal() = default;
  int64_t n_ = 0;
  int64_t dim_ = 0;
  bool ivf_ = false;
  double build_seconds_ = 0;
  std::unique_ptr<faiss::Index> quantizer_;  // IVF only (owned here, outlives index_)
  std::unique_ptr<faiss::Index> index_;
};

}  // namespace optower

#endif  // OPTOWER_CORE_LEARNING_ITEM_PROPOSAL_H_
