#include "core/learning/item_proposal.h"

#include <faiss/IndexFlat.h>
#include <faiss/IndexIVFFlat.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <type_traits>

#include "absl/strings/str_format.h"
#include "core/base/faiss_status.h"

namespace optower {
using faiss_call::CallFaiss;

ItemProposal::~ItemProposal() {
  index_.reset();  // the IVF index points at quantizer_
  quantizer_.reset();
}

absl::StatusOr<std::unique_ptr<ItemProposal>> ItemProposal::Build(
    const float* embeddings, int64_t n, int64_t dim, const ItemProposalOptions& options) {
  if (embeddings == nullptr || n < 1 || dim < 1)
    return absl::InvalidArgumentError(
        absl::StrFormat("item proposal: n=%d dim=%d: need n >= 1, dim >= 1 and embeddings", n, dim));
  if (options.ivf_nprobe < 1)
    return absl::InvalidArgumentError(
        absl::StrFormat("ivf_nprobe=%d: must be >= 1", options.ivf_nprobe));
  const auto t0 = std::chrono::steady_clock::now();
  std::unique_ptr<ItemProposal> p(new ItemProposal());
  p->n_ = n;
  p->dim_ = dim;
  // IVF needs enough items per list for k-means (FAISS warns below 39 per centroid).
  const int64_t max_nlist = n / 39;
  int64_t nlist = options.ivf_nlist > 0
                      ? options.ivf_nlist
                      : static_cast<int64_t>(std::sqrt(static_cast<double>(n)));
  nlist = std::min(nlist, max_nlist);
  p->ivf_ = n > options.exact_max_items && nlist >= 2;
  absl::Status s = CallFaiss("building the item proposal", [&] {
    if (!p->ivf_) {
      auto flat = std::make_unique<faiss::IndexFlatIP>(dim);
      flat->add(n, embeddings);
      p->index_ = std::move(flat);
      return;
    }
    p->quantizer_ = std::make_unique<faiss::IndexFlatIP>(dim);
    auto ivf = std::make_unique<faiss::IndexIVFFlat>(p->quantizer_.get(), dim, nlist,
                                                     faiss::METRIC_INNER_PRODUCT);
    ivf->cp.seed = static_cast<int>(options.seed % 1000003);
    ivf->cp.niter = 8;
    ivf->cp.max_points_per_centroid = 64;  // k-means on a 64*nlist sample, not on all n
    ivf->train(n, embeddings);
    ivf->add(n, embeddings);
    ivf->nprobe = std::min<int64_t>(options.ivf_nprobe, nlist);
    p->index_ = std::move(ivf);
  });
  if (!s.ok()) return s;
  p->build_seconds_ =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return p;
}

absl::Status ItemProposal::TopRows(const float* queries, int64_t nq, int64_t m,
                                   std::vector<int64_t>* rows) const {
  if (m < 1 || m > n_)
    return absl::InvalidArgumentError(
        absl::StrFormat("item proposal: m=%d: must be in [1, %d]", m, n_));
  static_assert(std::is_same_v<faiss::Index::idx_t, int64_t>, "FAISS labels are our rows");
  rows->assign(static_cast<size_t>(nq * m), -1);
  if (nq == 0) return absl::OkStatus();
  std::vector<float> scores(static_cast<size_t>(nq * m));
  return CallFaiss("item proposal search",
                   [&] { index_->search(nq, queries, m, scores.data(), rows->data()); });
}

}  // namespace optower
