#include "core/serving/simd_ivf_flat.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include <faiss/IndexFlat.h>
#include <faiss/IndexIVFFlat.h>
#include <faiss/impl/AuxIndexStructures.h>
#include <faiss/impl/IDSelector.h>
#include <faiss/invlists/DirectMap.h>

#include "core/serving/simd_inner_product.h"
#include "gtest/gtest.h"

namespace optower {
namespace {

using Idx = faiss::Index::idx_t;

// Clustered vectors with varied norms (IVF's use case; MIPS differs from cosine here).
std::vector<float> ClusteredVectors(int64_t n, int64_t d, int clusters, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> normal;
  std::uniform_real_distribution<float> scale(0.5f, 2.0f);
  std::vector<float> centres(static_cast<size_t>(clusters * d));
  for (float& c : centres) c = 2.0f * normal(rng);
  std::vector<float> x(static_cast<size_t>(n * d));
  for (int64_t i = 0; i < n; ++i) {
    const float* c = centres.data() + (i % clusters) * d;
    const float s = scale(rng);
    for (int64_t j = 0; j < d; ++j) x[i * d + j] = s * (c[j] + 0.5f * normal(rng));
  }
  return x;
}

// Rounding bound of one inner product, from the double-precision value (see
// simd_inner_product_test.cc): d * eps * sum|q_i x_i|.
double ScoreTolerance(const float* q, const float* x, int64_t d) {
  double abs_sum = 0.0;
  for (int64_t i = 0; i < d; ++i) abs_sum += std::fabs(double(q[i]) * double(x[i]));
  return double(d) * std::numeric_limits<float>::epsilon() * abs_sum + 1e-30;
}

double ExactScore(const float* q, const float* x, int64_t d) {
  double s = 0.0;
  for (int64_t i = 0; i < d; ++i) s += double(q[i]) * double(x[i]);
  return s;
}

// Same top-k up to ties: every returned score is its id's true inner product (within the rounding
// bound), the two lists agree slot by slot within the two bounds, and where the ids differ the two
// items are tied within them.
void ExpectSameTopK(const float* q, const float* base, int64_t d, int64_t k, const float* want_dis,
                    const Idx* want_ids, const float* got_dis, const Idx* got_ids,
                    const std::string& where) {
  for (int64_t s = 0; s < k; ++s) {
    SCOPED_TRACE(where + " slot " + std::to_string(s));
    ASSERT_EQ(want_ids[s] < 0, got_ids[s] < 0);
    if (got_ids[s] < 0) {
      EXPECT_EQ(got_dis[s], want_dis[s]);  // FAISS's neutral value of an unfilled slot
      continue;
    }
    const float* x_got = base + got_ids[s] * d;
    const float* x_want = base + want_ids[s] * d;
    const double t = ScoreTolerance(q, x_got, d) + ScoreTolerance(q, x_want, d);
    EXPECT_NEAR(got_dis[s], ExactScore(q, x_got, d), t);
    EXPECT_NEAR(got_dis[s], want_dis[s], 2 * t);
    if (want_ids[s] != got_ids[s]) {
      EXPECT_NEAR(ExactScore(q, x_want, d), ExactScore(q, x_got, d), 2 * t);
    }
  }
}

struct Fixture {
  int64_t n, d, nlist, nq;
  std::vector<float> x, queries;
  std::unique_ptr<faiss::IndexIVFFlat> plain;
  std::unique_ptr<SimdIndexIVFFlat> simd;
};

// A plain FAISS IVF and the SIMD one with the same centroids and the same lists.
std::unique_ptr<Fixture> MakeFixture(int64_t n, int64_t d, int64_t nlist, const InnerProductFns& fns) {
  auto f = std::make_unique<Fixture>();
  f->n = n;
  f->d = d;
  f->nlist = nlist;
  f->nq = 40;
  f->x = ClusteredVectors(n, d, 50, 7 + d);
  f->queries = ClusteredVectors(f->nq, d, 13, 99 + d);
  auto* q_plain = new faiss::IndexFlatIP(d);
  f->plain = std::make_unique<faiss::IndexIVFFlat>(q_plain, d, nlist, faiss::METRIC_INNER_PRODUCT);
  f->plain->own_fields = true;
  f->plain->cp.seed = 5;
  f->plain->train(n, f->x.data());
  f->plain->add(n, f->x.data());
  auto* q_simd = new SimdIndexFlatIP(d, fns);
  f->simd = std::make_unique<SimdIndexIVFFlat>(q_simd, d, nlist, fns);
  f->simd->own_fields = true;
  q_simd->add(nlist, q_plain->get_xb());
  f->simd->is_trained = true;
  f->simd->add(n, f->x.data());
  return f;
}

class SimdIvfFlatTest : public ::testing::TestWithParam<InnerProductKernel> {
 protected:
  void SetUp() override {
    fns_ = InnerProductKernelIfSupported(GetParam());
    if (fns_ == nullptr) GTEST_SKIP() << "this CPU cannot run the kernel";
  }
  const InnerProductFns* fns_ = nullptr;
};

// One query per call (what a Retrieve does: the quantizer takes the kernel path) and one batch of
// 40 (the quantizer takes FAISS's BLAS path, the scanner the kernel), k = 10 and 100, d = 64 (the
// served dimension) and 37 (a tail in every row).
TEST_P(SimdIvfFlatTest, SameTopKAsFaissIndexIVFFlat) {
  for (int64_t d : {64, 37}) {
    const auto f = MakeFixture(6000, d, 60, *fns_);
    for (int64_t k : {10, 100}) {
      faiss::SearchParametersIVF params;
      params.nprobe = 8;
      std::vector<float> want_dis(f->nq * k), got_dis(f->nq * k), batch_dis(f->nq * k);
      std::vector<Idx> want_ids(f->nq * k), got_ids(f->nq * k), batch_ids(f->nq * k);
      for (int64_t i = 0; i < f->nq; ++i) {
        const float* q = f->queries.data() + i * d;
        f->plain->search(1, q, k, &want_dis[i * k], &want_ids[i * k], &params);
        f->simd->search(1, q, k, &got_dis[i * k], &got_ids[i * k], &params);
      }
      f->simd->search(f->nq, f->queries.data(), k, batch_dis.data(), batch_ids.data(), &params);
      for (int64_t i = 0; i < f->nq; ++i) {
        const std::string where = std::string(fns_->name) + " d=" + std::to_string(d) +
                                  " k=" + std::to_string(k) + " q=" + std::to_string(i);
        const float* q = f->queries.data() + i * d;
        ExpectSameTopK(q, f->x.data(), d, k, &want_dis[i * k], &want_ids[i * k], &got_dis[i * k],
                       &got_ids[i * k], where + " single");
        ExpectSameTopK(q, f->x.data(), d, k, &want_dis[i * k], &want_ids[i * k],
                       &batch_dis[i * k], &batch_ids[i * k], where + " batch");
      }
    }
  }
}

// The coarse step alone: nlist centroids, a few queries, k larger than ntotal (missing slots -1).
TEST_P(SimdIvfFlatTest, FlatIpMatchesFaissForFewQueries) {
  const int64_t d = 64, n = 700, nq = 5;
  const std::vector<float> x = ClusteredVectors(n, d, 20, 3);
  const std::vector<float> queries = ClusteredVectors(nq, d, 3, 4);
  faiss::IndexFlatIP plain(d);
  SimdIndexFlatIP simd(d, *fns_);
  plain.add(n, x.data());
  simd.add(n, x.data());
  for (int64_t k : {int64_t{1}, int64_t{64}, n, n + 5}) {
    std::vector<float> want_dis(nq * k), got_dis(nq * k);
    std::vector<Idx> want_ids(nq * k), got_ids(nq * k);
    plain.search(nq, queries.data(), k, want_dis.data(), want_ids.data());
    simd.search(nq, queries.data(), k, got_dis.data(), got_ids.data());
    for (int64_t i = 0; i < nq; ++i) {
      ExpectSameTopK(queries.data() + i * d, x.data(), d, k, &want_dis[i * k], &want_ids[i * k],
                     &got_dis[i * k], &got_ids[i * k],
                     std::string(fns_->name) + " k=" + std::to_string(k));
    }
    if (k > n) EXPECT_EQ(got_ids[k - 1], -1);
  }
}

// store_pairs: labels are (list, offset) pairs; they must name the same stored vectors.
TEST_P(SimdIvfFlatTest, StorePairsNameTheSameVectors) {
  const auto f = MakeFixture(4000, 64, 40, *fns_);
  const int64_t k = 20, nprobe = 6;
  for (int64_t i = 0; i < 10; ++i) {
    const float* q = f->queries.data() + i * f->d;
    std::vector<float> coarse_dis(nprobe);
    std::vector<Idx> coarse(nprobe);
    f->plain->quantizer->search(1, q, nprobe, coarse_dis.data(), coarse.data());
    std::vector<float> want_dis(k), got_dis(k);
    std::vector<Idx> want(k), got(k);
    f->plain->search_preassigned(1, q, k, coarse.data(), coarse_dis.data(), want_dis.data(),
                                 want.data(), true);
    f->simd->search_preassigned(1, q, k, coarse.data(), coarse_dis.data(), got_dis.data(),
                                got.data(), true);
    // Decode the pairs to item ids, then compare as top-k lists.
    auto decode = [](const faiss::IndexIVF& ivf, std::vector<Idx>& labels) {
      for (Idx& l : labels) {
        if (l >= 0) l = ivf.invlists->get_single_id(faiss::lo_listno(l), faiss::lo_offset(l));
      }
    };
    decode(*f->plain, want);
    decode(*f->simd, got);
    ExpectSameTopK(q, f->x.data(), f->d, k, want_dis.data(), want.data(), got_dis.data(),
                   got.data(), "store_pairs q=" + std::to_string(i));
  }
}

// An ID selector falls back to FAISS's own scanner; range search uses ours.
TEST_P(SimdIvfFlatTest, SelectorAndRangeSearch) {
  const auto f = MakeFixture(4000, 64, 40, *fns_);
  faiss::IDSelectorRange even_half(0, 2000);
  faiss::SearchParametersIVF params;
  params.nprobe = 8;
  params.sel = &even_half;
  const int64_t k = 10;
  const float* q = f->queries.data();
  std::vector<float> want_dis(k), got_dis(k);
  std::vector<Idx> want(k), got(k);
  f->plain->search(1, q, k, want_dis.data(), want.data(), &params);
  f->simd->search(1, q, k, got_dis.data(), got.data(), &params);
  for (int64_t s = 0; s < k; ++s) EXPECT_LT(got[s], 2000);
  ExpectSameTopK(q, f->x.data(), f->d, k, want_dis.data(), want.data(), got_dis.data(),
                 got.data(), "selector");

  f->plain->nprobe = f->simd->nprobe = 8;
  const float radius = want_dis[k - 1];  // about ten results
  faiss::RangeSearchResult want_r(1), got_r(1);
  f->plain->range_search(1, q, radius, &want_r);
  f->simd->range_search(1, q, radius, &got_r);
  std::vector<Idx> a(want_r.labels, want_r.labels + want_r.lims[1]);
  std::vector<Idx> b(got_r.labels, got_r.labels + got_r.lims[1]);
  std::sort(a.begin(), a.end());
  std::sort(b.begin(), b.end());
  std::vector<Idx> only;  // in one result and not the other: must sit at the radius
  std::set_symmetric_difference(a.begin(), a.end(), b.begin(), b.end(), std::back_inserter(only));
  for (Idx id : only) {
    const float* x = f->x.data() + id * f->d;
    EXPECT_NEAR(ExactScore(q, x, f->d), radius, 2 * ScoreTolerance(q, x, f->d)) << id;
  }
  EXPECT_GE(b.size(), 1u);
}

std::string KernelName(const ::testing::TestParamInfo<InnerProductKernel>& info) {
  switch (info.param) {
    case InnerProductKernel::kScalar:
      return "scalar";
    case InnerProductKernel::kAvx2Fma:
      return "avx2_fma";
    case InnerProductKernel::kAvx512:
      return "avx512";
  }
  return "unknown";
}

INSTANTIATE_TEST_SUITE_P(Kernels, SimdIvfFlatTest,
                         ::testing::Values(InnerProductKernel::kScalar,
                                           InnerProductKernel::kAvx2Fma,
                                           InnerProductKernel::kAvx512),
                         KernelName);

}  // namespace
}  // namespace optower
