#include "core/serving/item_index.h"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <numeric>
#include <random>
#include <thread>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace optower {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

struct Data {
  int64_t n = 0;
  int64_t dim = 0;
  std::vector<float> x;     // [n, dim]
  std::vector<int64_t> ids;  // external ids, deliberately not 0..n-1
};

// Gaussian vectors with varied norms (log-normal scale), so MIPS differs from cosine/L2 search.
Data GaussianData(int64_t n, int64_t dim, uint64_t seed) {
  Data d{n, dim, std::vector<float>(static_cast<size_t>(n * dim)), {}};
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> normal;
  std::lognormal_distribution<float> scale(0.0f, 0.5f);
  for (int64_t i = 0; i < n; ++i) {
    const float s = scale(rng);
    for (int64_t j = 0; j < dim; ++j) d.x[i * dim + j] = s * normal(rng);
    d.ids.push_back(1000 + 7 * i);
  }
  return d;
}

// `clusters` well-separated centres (sd 3 per coordinate) with points at sd 0.5 around them,
// each point scaled by U(0.5, 2) so norms vary within a cluster.
Data ClusteredData(int64_t n, int64_t dim, int clusters, uint64_t seed) {
  Data d{n, dim, std::vector<float>(static_cast<size_t>(n * dim)), {}};
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> normal;
  std::uniform_real_distribution<float> scale(0.5f, 2.0f);
  std::vector<float> centres(static_cast<size_t>(clusters * dim));
  for (float& c : centres) c = 3.0f * normal(rng);
  for (int64_t i = 0; i < n; ++i) {
    const int64_t c = i % clusters;
    const float s = scale(rng);
    for (int64_t j = 0; j < dim; ++j) {
      d.x[i * dim + j] = s * (centres[c * dim + j] + 0.5f * normal(rng));
    }
    d.ids.push_back(5 * i + 3);
  }
  return d;
}

// Exact top-m rows by inner product (double accumulation), ties broken by row.
std::vector<int64_t> BruteTopRows(const Data& d, const float* q, int64_t m) {
  std::vector<double> s(static_cast<size_t>(d.n));
  for (int64_t i = 0; i < d.n; ++i) {
    double acc = 0.0;
    for (int64_t j = 0; j < d.dim; ++j) acc += double(q[j]) * d.x[i * d.dim + j];
    s[i] = acc;
  }
  std::vector<int64_t> rows(static_cast<size_t>(d.n));
  std::iota(rows.begin(), rows.end(), 0);
  std::partial_sort(rows.begin(), rows.begin() + m, rows.end(),
                    [&](int64_t a, int64_t b) { return s[a] > s[b] || (s[a] == s[b] && a < b); });
  rows.resize(static_cast<size_t>(m));
  return rows;
}

std::vector<float> Queries(const Data& d, int64_t nq, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> normal;
  std::vector<float> q(static_cast<size_t>(nq * d.dim));
  for (float& v : q) v = normal(rng);
  return q;
}

float Dot(const float* a, const float* b, int64_t n) {
  double s = 0.0;
  for (int64_t i = 0; i < n; ++i) s += double(a[i]) * b[i];
  return static_cast<float>(s);
}

// FAISS scores in float32, on paths picked at run time (its SIMD inner product for one query, BLAS
// sgemm for >= 20 queries; AVX2 or AVX-512 kernels). A float32 dot product of length n rounds
// within n·2^-24·Σ|q_j x_j|, so two items whose exact scores are closer than twice that (plus the
// float cast of the result) may come back in either order on another CPU. Returns that bound for
// `row`.
double RankingSlack(const Data& d, const float* q, int64_t row) {
  double abs_sum = 0.0;
  for (int64_t j = 0; j < d.dim; ++j) abs_sum += std::fabs(double(q[j]) * d.x[row * d.dim + j]);
  return 2.0 * (static_cast<double>(d.dim) * std::ldexp(abs_sum, -24) + std::ldexp(abs_sum, -24));
}

double ExactScore(const Data& d, const float* q, int64_t row) {
  double acc = 0.0;
  for (int64_t j = 0; j < d.dim; ++j) acc += double(q[j]) * d.x[row * d.dim + j];
  return acc;
}

int64_t RowOfId(const Data& d, int64_t id) {
  const auto it = std::find(d.ids.begin(), d.ids.end(), id);
  return it == d.ids.end() ? -1 : static_cast<int64_t>(it - d.ids.begin());
}

// `got` is the expected ranking of ids up to the order of near-ties: rank by rank either the same
// id, or an id whose exact score is within float32 rounding of the expected one's. (A wrong item,
// e.g. an excluded one or a worse one, differs by far more.)
void ExpectSameRankingUpToTies(const Data& d, const float* q, const std::vector<int64_t>& got,
                               const std::vector<int64_t>& expected) {
  ASSERT_EQ(got.size(), expected.size());
  for (size_t r = 0; r < got.size(); ++r) {
    if (got[r] == expected[r]) continue;
    const int64_t g = RowOfId(d, got[r]), e = RowOfId(d, expected[r]);
    ASSERT_GE(g, 0) << "rank " << r << ": unknown id " << got[r];
    EXPECT_NEAR(ExactScore(d, q, g), ExactScore(d, q, e),
                std::max(RankingSlack(d, q, g), RankingSlack(d, q, e)))
        << "rank " << r << ": id " << got[r] << " instead of " << expected[r];
  }
}

// Builds use one OpenMP thread: the tests must run on one core of a shared machine (and k-means
// is then deterministic).
ItemIndexOptions OneThreadOptions() {
  ItemIndexOptions o;
  o.threads = 1;
  return o;
}

ItemIndexOptions ExactOptions() {
  ItemIndexOptions o = OneThreadOptions();
  o.type = ItemIndexOptions::Type::kExact;
  return o;
}

TEST(ItemIndexTest, ExactSearchReturnsTrueTopMSortedWithInnerProductScores) {
  const Data d = GaussianData(2000, 16, /*seed=*/1);
  auto index = ItemIndex::Build(d.x.data(), d.n, d.dim, d.ids, ExactOptions());
  ASSERT_TRUE(index.ok()) << index.status();
  EXPECT_EQ((*index)->type_name(), "exact");
  EXPECT_EQ((*index)->recall_at_10(), 1.0);  // set, not measured, for an exact index
  const std::vector<float> q = Queries(d, 20, /*seed=*/2);
  for (int64_t qi = 0; qi < 20; ++qi) {
    const float* query = q.data() + qi * d.dim;
    auto hits = (*index)->Search(query, /*m=*/25);
    ASSERT_TRUE(hits.ok()) << hits.status();
    ASSERT_EQ(hits->size(), 25u);
    const std::vector<int64_t> truth = BruteTopRows(d, query, 25);
    std::vector<int64_t> got, expected;
    for (size_t r = 0; r < truth.size(); ++r) {
      got.push_back((*hits)[r].item_id);
      expected.push_back(d.ids[truth[r]]);
    }
    SCOPED_TRACE(qi);
    ExpectSameRankingUpToTies(d, query, got, expected);
    for (size_t r = 0; r < truth.size(); ++r) {
      const float exact = Dot(query, d.x.data() + truth[r] * d.dim, d.dim);
      EXPECT_NEAR((*hits)[r].score, exact, 1e-4f * (1.0f + std::fabs(exact)));
      if (r > 0) EXPECT_GE((*hits)[r - 1].score, (*hits)[r].score);
    }
  }
}

TEST(ItemIndexTest, SearchNeverReturnsExcludedIdsAndStillFillsM) {
  const Data d = GaussianData(500, 8, /*seed=*/3);
  auto index = ItemIndex::Build(d.x.data(), d.n, d.dim, d.ids, ExactOptions());
  ASSERT_TRUE(index.ok()) << index.status();
  const std::vector<float> q = Queries(d, 1, /*seed=*/4);
  const std::vector<int64_t> truth = BruteTopRows(d, q.data(), 15);
  // Exclude ranks 0, 2 and 4, plus an id that is not in the index (must be ignored).
  const std::vector<int64_t> exclude = {d.ids[truth[0]], d.ids[truth[2]], d.ids[truth[4]], -42};
  auto hits = (*index)->Search(q.data(), /*m=*/10, exclude);
  ASSERT_TRUE(hits.ok()) << hits.status();
  ASSERT_EQ(hits->size(), 10u);
  std::vector<int64_t> expected;
  for (int64_t r : truth) {
    if (std::find(exclude.begin(), exclude.end(), d.ids[r]) == exclude.end()) {
      expected.push_back(d.ids[r]);
    }
  }
  expected.resize(10);
  std::vector<int64_t> got;
  for (const SearchHit& h : *hits) got.push_back(h.item_id);
  for (int64_t id : exclude) EXPECT_EQ(std::count(got.begin(), got.end(), id), 0) << id;
  ExpectSameRankingUpToTies(d, q.data(), got, expected);
}

TEST(ItemIndexTest, LargeExclusionListUsesTheSameSemantics) {
  const Data d = GaussianData(300, 8, /*seed=*/5);
  auto index = ItemIndex::Build(d.x.data(), d.n, d.dim, d.ids, ExactOptions());
  ASSERT_TRUE(index.ok()) << index.status();
  const std::vector<float> q = Queries(d, 1, /*seed=*/6);
  const std::vector<int64_t> truth = BruteTopRows(d, q.data(), d.n);
  std::vector<int64_t> exclude;  // the best 100 (> 32: the hash-set path)
  for (int i = 0; i < 100; ++i) exclude.push_back(d.ids[truth[i]]);
  auto hits = (*index)->Search(q.data(), /*m=*/5, exclude);
  ASSERT_TRUE(hits.ok()) << hits.status();
  ASSERT_EQ(hits->size(), 5u);
  std::vector<int64_t> got, expected;
  for (int i = 0; i < 5; ++i) {
    got.push_back((*hits)[i].item_id);
    expected.push_back(d.ids[truth[100 + i]]);
  }
  for (int64_t id : exclude) EXPECT_EQ(std::count(got.begin(), got.end(), id), 0) << id;
  ExpectSameRankingUpToTies(d, q.data(), got, expected);
}

TEST(ItemIndexTest, MLargerThanEligibleItemsReturnsAllEligible) {
  const Data d = GaussianData(12, 4, /*seed=*/7);
  auto index = ItemIndex::Build(d.x.data(), d.n, d.dim, d.ids, ExactOptions());
  ASSERT_TRUE(index.ok()) << index.status();
  const std::vector<float> q = Queries(d, 1, /*seed=*/8);
  auto hits = (*index)->Search(q.data(), /*m=*/100, {d.ids[0], d.ids[5]});
  ASSERT_TRUE(hits.ok()) << hits.status();
  EXPECT_EQ(hits->size(), 10u);
}

TEST(ItemIndexTest, AccessorsMapIdsRowsAndEmbeddings) {
  const Data d = GaussianData(50, 6, /*seed=*/9);
  auto index = ItemIndex::Build(d.x.data(), d.n, d.dim, d.ids, ExactOptions());
  ASSERT_TRUE(index.ok()) << index.status();
  const ItemIndex& idx = **index;
  EXPECT_EQ(idx.size(), 50);
  EXPECT_EQ(idx.dim(), 6);
  EXPECT_EQ(idx.ids(), d.ids);
  EXPECT_TRUE(idx.Contains(d.ids[17]));
  EXPECT_FALSE(idx.Contains(d.ids[17] + 1));  // ids are spaced by 7
  EXPECT_EQ(idx.RowOf(d.ids[17]), 17);
  EXPECT_EQ(idx.RowOf(-1), -1);
  for (int64_t j = 0; j < d.dim; ++j) EXPECT_EQ(idx.embedding(17)[j], d.x[17 * d.dim + j]);
  // The batched lookup agrees with RowOf, including absent ids, past its prefetch window (16).
  std::vector<int64_t> query_ids;
  for (int64_t i = 0; i < 40; ++i) query_ids.push_back(i % 3 == 0 ? -i - 1 : d.ids[(i * 7) % 50]);
  std::vector<int64_t> rows(query_ids.size(), -2);
  idx.RowsOf(query_ids.data(), static_cast<int64_t>(query_ids.size()), rows.data());
  for (size_t i = 0; i < query_ids.size(); ++i) EXPECT_EQ(rows[i], idx.RowOf(query_ids[i]));
}

// Shared by the approximate-index tests: building is the slow part.
// Recall@10 of Search against brute force over `d`, on queries near random items of `d` (not the
// queries Build measured on), so a reported number is checked independently. Approximate backends
// store full vectors, so every returned score must be the exact inner product.
double RecallOn(const Data& d, const ItemIndex& index, int64_t nq, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> normal;
  std::uniform_int_distribution<int64_t> pick(0, d.n - 1);
  int64_t found = 0;
  std::vector<float> q(static_cast<size_t>(d.dim));
  for (int64_t i = 0; i < nq; ++i) {
    const int64_t r = pick(rng);
    for (int64_t j = 0; j < d.dim; ++j) q[j] = d.x[r * d.dim + j] + 0.3f * normal(rng);
    const std::vector<int64_t> truth = BruteTopRows(d, q.data(), 10);
    auto hits = index.Search(q.data(), 10);
    EXPECT_TRUE(hits.ok()) << hits.status();
    if (!hits.ok()) return 0.0;
    for (const SearchHit& h : *hits) {
      for (int64_t t : truth) found += (d.ids[t] == h.item_id) ? 1 : 0;
      const int64_t row = index.RowOf(h.item_id);
      EXPECT_NEAR(h.score, Dot(q.data(), index.embedding(row), d.dim),
                  1e-3f * (1.0f + std::fabs(h.score)));
    }
  }
  return static_cast<double>(found) / static_cast<double>(nq * 10);
}

class ClusteredIndexTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    data_ = new Data(ClusteredData(20000, 32, /*clusters=*/50, /*seed=*/11));
  }
  static void TearDownTestSuite() {
    delete data_;
    data_ = nullptr;
  }
  static double IndependentRecall(const ItemIndex& index, int64_t nq) {
    return RecallOn(*data_, index, nq, /*seed=*/12);
  }
  static Data* data_;
};
Data* ClusteredIndexTest::data_ = nullptr;

TEST_F(ClusteredIndexTest, IvfReachesRecallAtTenOnWellSeparatedClusters) {
  ItemIndexOptions o = OneThreadOptions();
  o.type = ItemIndexOptions::Type::kIvf;
  o.seed = 1;
  auto index = ItemIndex::Build(data_->x.data(), data_->n, data_->dim, data_->ids, o);
  ASSERT_TRUE(index.ok()) << index.status();
  std::printf("[ivf] %s\n", (*index)->build_report().c_str());
  EXPECT_EQ((*index)->type_name(), "ivf");
  EXPECT_GE((*index)->recall_at_10(), 0.9);
  EXPECT_THAT((*index)->build_report(), HasSubstr("recall@10="));
  const double recall = IndependentRecall(**index, /*nq=*/100);
  std::printf("[ivf] independent recall@10 = %.4f\n", recall);
  EXPECT_GE(recall, 0.9);
}

TEST_F(ClusteredIndexTest, HnswReachesRecallAtTenOnWellSeparatedClusters) {
  ItemIndexOptions o = OneThreadOptions();
  o.type = ItemIndexOptions::Type::kHnsw;
  o.hnsw_m = 16;  // smaller graph than the default: keeps the test build near 1 s
  o.hnsw_ef_construction = 40;
  o.hnsw_ef_search = 64;
  auto index = ItemIndex::Build(data_->x.data(), data_->n, data_->dim, data_->ids, o);
  ASSERT_TRUE(index.ok()) << index.status();
  std::printf("[hnsw] %s\n", (*index)->build_report().c_str());
  EXPECT_EQ((*index)->type_name(), "hnsw");
  EXPECT_GE((*index)->recall_at_10(), 0.9);
  const double recall = IndependentRecall(**index, /*nq=*/100);
  std::printf("[hnsw] independent recall@10 = %.4f\n", recall);
  EXPECT_GE(recall, 0.9);
  // embedding() points into HNSW's own storage once the exact index is dropped.
  EXPECT_EQ((*index)->embedding(123)[5], data_->x[123 * data_->dim + 5]);
}

TEST_F(ClusteredIndexTest, AutoAboveThresholdKeepsFirstIndexReachingMinRecall) {
  ItemIndexOptions o = OneThreadOptions();
  o.exact_max_items = 1000;
  o.min_recall_at_10 = 0.9;
  auto index = ItemIndex::Build(data_->x.data(), data_->n, data_->dim, data_->ids, o);
  ASSERT_TRUE(index.ok()) << index.status();
  std::printf("[auto] %s\n", (*index)->build_report().c_str());
  EXPECT_EQ((*index)->type_name(), "ivf");
  EXPECT_THAT((*index)->build_report(), Not(HasSubstr("hnsw")));  // IVF sufficed: no HNSW build
}

TEST_F(ClusteredIndexTest, ConcurrentSearchesMatchSerialOnes) {
  ItemIndexOptions o = OneThreadOptions();
  o.type = ItemIndexOptions::Type::kIvf;
  auto built = ItemIndex::Build(data_->x.data(), data_->n, data_->dim, data_->ids, o);
  ASSERT_TRUE(built.ok()) << built.status();
  const ItemIndex& index = **built;
  const int64_t nq = 64;
  const std::vector<float> q = Queries(*data_, nq, /*seed=*/13);
  std::vector<std::vector<int64_t>> serial(nq), parallel(nq);
  for (int64_t i = 0; i < nq; ++i) {
    auto hits = index.Search(q.data() + i * data_->dim, 10);
    ASSERT_TRUE(hits.ok());
    for (const SearchHit& h : *hits) serial[i].push_back(h.item_id);
  }
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int64_t i = t; i < nq; i += 4) {
        auto hits = index.Search(q.data() + i * data_->dim, 10);
        if (!hits.ok()) continue;
        for (const SearchHit& h : *hits) parallel[i].push_back(h.item_id);
      }
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(serial, parallel);  // the same single-query search of the same query: bit-identical
}

// The tuning: nprobe doubles from ivf_nprobe until the probe's recall@10 reaches the target; the
// chosen value and the recall are reported, and an independent query set agrees.
TEST_F(ClusteredIndexTest, IvfTuningRaisesNprobeUntilRecallReachesTheTarget) {
  const std::vector<float> probe = Queries(*data_, 200, /*seed=*/31);
  ItemIndexOptions o = OneThreadOptions();
  o.type = ItemIndexOptions::Type::kIvf;
  o.ivf_nprobe = 1;
  o.min_recall_at_10 = 0.97;
  o.ivf_max_nprobe = 1;  // first without tuning: one probe is not enough on these queries
  auto fixed = ItemIndex::Build(data_->x.data(), data_->n, data_->dim, data_->ids, o, probe.data(),
                                200);
  ASSERT_TRUE(fixed.ok()) << fixed.status();
  EXPECT_EQ((*fixed)->ivf_nprobe(), 1);
  ASSERT_LT((*fixed)->recall_at_10(), 0.97) << (*fixed)->build_report();
  o.ivf_max_nprobe = 256;  // the default cap (and nlist/8 = 70 here)
  auto tuned = ItemIndex::Build(data_->x.data(), data_->n, data_->dim, data_->ids, o, probe.data(),
                                200);
  ASSERT_TRUE(tuned.ok()) << tuned.status();
  std::printf("[tuning] %s\n", (*tuned)->build_report().c_str());
  EXPECT_EQ((*tuned)->type_name(), "ivf");
  EXPECT_GT((*tuned)->ivf_nprobe(), 1);
  EXPECT_LE((*tuned)->ivf_nprobe(), (*tuned)->ivf_nlist() / 8);
  EXPECT_GE((*tuned)->recall_at_10(), 0.97);
  EXPECT_EQ((*tuned)->probe_queries(), 200);
  EXPECT_THAT((*tuned)->build_report(), HasSubstr("tuned nprobe 1:"));
  // The cheapest value that reaches it: half of it (the previous step) did not.
  const int half = (*tuned)->ivf_nprobe() / 2;
  o.ivf_nprobe = half;
  o.ivf_max_nprobe = half;
  auto below = ItemIndex::Build(data_->x.data(), data_->n, data_->dim, data_->ids, o, probe.data(),
                                200);
  ASSERT_TRUE(below.ok());
  EXPECT_LT((*below)->recall_at_10(), 0.97);
  // An independent query set of the same kind: recall close to the probe's.
  EXPECT_GE(IndependentRecall(**tuned, /*nq=*/100), 0.93);
}

TEST_F(ClusteredIndexTest, HnswTuningRaisesEfSearchOnTheIndexItSearches) {
  const std::vector<float> probe = Queries(*data_, 200, /*seed=*/32);
  ItemIndexOptions o = OneThreadOptions();
  o.type = ItemIndexOptions::Type::kHnsw;
  o.hnsw_m = 16;  // as in HnswReachesRecallAtTenOnWellSeparatedClusters (0.9 at efSearch 64)
  o.hnsw_ef_construction = 40;
  o.hnsw_ef_search = 1;
  o.min_recall_at_10 = 0.9;
  auto tuned = ItemIndex::Build(data_->x.data(), data_->n, data_->dim, data_->ids, o, probe.data(),
                                200);
  ASSERT_TRUE(tuned.ok()) << tuned.status();
  std::printf("[hnsw tuning] %s\n", (*tuned)->build_report().c_str());
  EXPECT_GT((*tuned)->hnsw_ef_search(), 1);
  EXPECT_GE((*tuned)->recall_at_10(), 0.9);
  EXPECT_THAT((*tuned)->build_report(), HasSubstr("tuned efSearch 1:"));
  // The searches use the tuned efSearch (the member FAISS 1.7.3 reads), not the configured 1.
  EXPECT_GE(IndependentRecall(**tuned, /*nq=*/100), 0.85);
}

TEST_F(ClusteredIndexTest, AutoAboveExactMaxItemsTunesAnAnnIndexInsteadOfFallingBackToExact) {
  const std::vector<float> probe = Queries(*data_, 200, /*seed=*/33);
  ItemIndexOptions o = OneThreadOptions();
  o.exact_max_items = 1000;
  o.ivf_nprobe = 1;  // far too few probes to start with
  o.min_recall_at_10 = 0.97;
  auto index = ItemIndex::Build(data_->x.data(), data_->n, data_->dim, data_->ids, o, probe.data(),
                                200);
  ASSERT_TRUE(index.ok()) << index.status();
  std::printf("[auto tuning] %s\n", (*index)->build_report().c_str());
  EXPECT_EQ((*index)->type_name(), "ivf");
  EXPECT_GE((*index)->recall_at_10(), 0.97);
  EXPECT_THAT((*index)->build_report(), Not(HasSubstr("hnsw")));
}

TEST(ItemIndexTest, SearchRestoresTheCallersOpenMpThreadCount) {
  const Data d = GaussianData(100, 8, /*seed=*/14);
  auto index = ItemIndex::Build(d.x.data(), d.n, d.dim, d.ids, ExactOptions());
  ASSERT_TRUE(index.ok()) << index.status();
  const int before = omp_get_max_threads();
  omp_set_num_threads(3);
  const std::vector<float> q = Queries(d, 1, /*seed=*/15);
  ASSERT_TRUE((*index)->Search(q.data(), 5).ok());
  EXPECT_EQ(omp_get_max_threads(), 3);
  omp_set_num_threads(before);
}

TEST(ItemIndexTest, AutoPicksExactAtOrBelowThreshold) {
  const Data d = GaussianData(1000, 8, /*seed=*/16);
  ItemIndexOptions o = OneThreadOptions();  // kAuto, exact_max_items = 100000
  auto index = ItemIndex::Build(d.x.data(), d.n, d.dim, d.ids, o);
  ASSERT_TRUE(index.ok()) << index.status();
  EXPECT_EQ((*index)->type_name(), "exact");
  EXPECT_EQ((*index)->recall_at_10(), 1.0);  // set, not measured, for exact
  EXPECT_THAT((*index)->build_report(), HasSubstr("exact"));
  o.exact_max_items = 1000;  // n == threshold is still exact
  index = ItemIndex::Build(d.x.data(), d.n, d.dim, d.ids, o);
  ASSERT_TRUE(index.ok()) << index.status();
  EXPECT_EQ((*index)->type_name(), "exact");
}

TEST(ItemIndexTest, AutoFallsBackToExactWhenNoIndexReachesMinRecall) {
  // Structureless Gaussian vectors with deliberately weak settings (1 IVF probe of ~100 lists,
  // HNSW efSearch 10): neither approaches recall 0.99, so kAuto must serve exact search.
  const Data d = GaussianData(5000, 32, /*seed=*/17);
  ItemIndexOptions o = OneThreadOptions();
  o.exact_max_items = 100;
  o.min_recall_at_10 = 0.99;
  o.ivf_nprobe = 1;
  o.hnsw_m = 8;
  o.hnsw_ef_construction = 16;
  o.hnsw_ef_search = 10;
  o.ivf_max_nprobe = 1;  // no tuning: the weak settings stay weak
  o.hnsw_max_ef_search = 10;
  auto index = ItemIndex::Build(d.x.data(), d.n, d.dim, d.ids, o);
  ASSERT_TRUE(index.ok()) << index.status();
  std::printf("[fallback] %s\n", (*index)->build_report().c_str());
  EXPECT_EQ((*index)->type_name(), "exact");
  EXPECT_EQ((*index)->recall_at_10(), 1.0);  // set, not measured, for exact
  EXPECT_THAT((*index)->build_report(), HasSubstr("ivf("));
  EXPECT_THAT((*index)->build_report(), HasSubstr("hnsw("));
  EXPECT_THAT((*index)->build_report(), HasSubstr("-> exact"));
}

TEST(ItemIndexTest, RecallIsMeasuredOnCallerQueriesWhenGiven) {
  const Data d = ClusteredData(3000, 16, /*clusters=*/20, /*seed=*/18);
  const std::vector<float> q = Queries(d, 50, /*seed=*/19);
  ItemIndexOptions o = OneThreadOptions();
  o.type = ItemIndexOptions::Type::kIvf;
  o.ivf_nprobe = 1;
  o.ivf_max_nprobe = 1;  // no tuning
  auto one_probe = ItemIndex::Build(d.x.data(), d.n, d.dim, d.ids, o, q.data(), 50);
  ASSERT_TRUE(one_probe.ok()) << one_probe.status();
  o.ivf_nprobe = 1000;  // clamped to nlist: every list is probed, so search is exact
  auto all_probes = ItemIndex::Build(d.x.data(), d.n, d.dim, d.ids, o, q.data(), 50);
  ASSERT_TRUE(all_probes.ok()) << all_probes.status();
  // Exhaustive IVF scores with FAISS's SIMD loop, the ground truth with sgemm (50 queries): a rank
  // 10/11 pair closer than float32 rounding may swap, costing 1/500 each. 0.99 allows 5 such
  // swaps; a list really skipped loses far more (one probe: see below).
  EXPECT_GE((*all_probes)->recall_at_10(), 0.99);
  EXPECT_LT((*one_probe)->recall_at_10(), 0.99);
  EXPECT_EQ((*one_probe)->probe_queries(), 50) << "the caller's queries, not generated ones";
}

TEST(ItemIndexTest, SearchBatchMatchesSingleSearches) {
  const Data d = GaussianData(400, 8, /*seed=*/20);
  auto index = ItemIndex::Build(d.x.data(), d.n, d.dim, d.ids, ExactOptions());
  ASSERT_TRUE(index.ok()) << index.status();
  const int64_t nq = 30, m = 7;
  const std::vector<float> q = Queries(d, nq, /*seed=*/21);
  std::vector<int64_t> ids;
  std::vector<float> scores;
  ASSERT_TRUE((*index)->SearchBatch(q.data(), nq, m, &ids, &scores).ok());
  ASSERT_EQ(ids.size(), static_cast<size_t>(nq * m));
  ASSERT_EQ(scores.size(), static_cast<size_t>(nq * m));
  // 30 queries take FAISS's BLAS path, one query its SIMD loop: equal up to float32 rounding.
  for (int64_t i = 0; i < nq; ++i) {
    auto hits = (*index)->Search(q.data() + i * d.dim, m);
    ASSERT_TRUE(hits.ok());
    std::vector<int64_t> batch_ids(ids.begin() + i * m, ids.begin() + (i + 1) * m), single_ids;
    for (int64_t r = 0; r < m; ++r) {
      single_ids.push_back((*hits)[r].item_id);
      EXPECT_NEAR(scores[i * m + r], (*hits)[r].score, 1e-4f * (1.0f + std::fabs(scores[i * m + r])));
    }
    SCOPED_TRACE(i);
    ExpectSameRankingUpToTies(d, q.data() + i * d.dim, batch_ids, single_ids);
  }
  EXPECT_EQ((*index)->SearchBatch(q.data(), nq, d.n + 1, &ids, &scores).code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(ItemIndexTest, BuildRejectsBadArguments) {
  const Data d = GaussianData(20, 4, /*seed=*/22);
  const ItemIndexOptions o = ExactOptions();
  // ids size != n (the shape mismatch the pointer API can detect).
  std::vector<int64_t> short_ids(d.ids.begin(), d.ids.end() - 1);
  auto r = ItemIndex::Build(d.x.data(), d.n, d.dim, short_ids, o);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(r.status().message()), HasSubstr("ids.size()=19"));

  std::vector<int64_t> dup = d.ids;
  dup[9] = dup[3];
  r = ItemIndex::Build(d.x.data(), d.n, d.dim, dup, o);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(r.status().message()), HasSubstr("duplicate"));

  std::vector<float> nan_x = d.x;
  nan_x[2 * d.dim + 1] = std::numeric_limits<float>::quiet_NaN();
  r = ItemIndex::Build(nan_x.data(), d.n, d.dim, d.ids, o);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(r.status().message()), HasSubstr("embeddings[2][1]=nan"));

  EXPECT_EQ(ItemIndex::Build(d.x.data(), 0, d.dim, {}, o).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ItemIndex::Build(d.x.data(), d.n, 0, d.ids, o).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ItemIndex::Build(nullptr, d.n, d.dim, d.ids, o).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ItemIndex::Build(d.x.data(), d.n, d.dim, d.ids, o, nullptr, 5).status().code(),
            absl::StatusCode::kInvalidArgument);

  ItemIndexOptions bad = o;
  bad.min_recall_at_10 = 1.5;
  r = ItemIndex::Build(d.x.data(), d.n, d.dim, d.ids, bad);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(r.status().message()), HasSubstr("min_recall_at_10=1.5"));
  bad = o;
  bad.ivf_nlist = 21;  // > n
  EXPECT_EQ(ItemIndex::Build(d.x.data(), d.n, d.dim, d.ids, bad).status().code(),
            absl::StatusCode::kInvalidArgument);
  bad = o;
  bad.ivf_nprobe = 0;
  EXPECT_EQ(ItemIndex::Build(d.x.data(), d.n, d.dim, d.ids, bad).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(ItemIndexTest, SearchRejectsBadArguments) {
  const Data d = GaussianData(20, 4, /*seed=*/23);
  auto index = ItemIndex::Build(d.x.data(), d.n, d.dim, d.ids, ExactOptions());
  ASSERT_TRUE(index.ok()) << index.status();
  std::vector<float> q = Queries(d, 1, /*seed=*/24);
  auto r = (*index)->Search(q.data(), 0);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(r.status().message()), HasSubstr("m=0"));
  EXPECT_EQ((*index)->Search(q.data(), -3).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ((*index)->Search(nullptr, 3).status().code(), absl::StatusCode::kInvalidArgument);
  q[2] = std::numeric_limits<float>::infinity();
  r = (*index)->Search(q.data(), 3);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(r.status().message()), HasSubstr("query[0][2]=inf"));
}

}  // namespace
}  // namespace optower

namespace optower {
namespace {

ItemIndexOptions IvfOptions() {
  ItemIndexOptions o = OneThreadOptions();
  o.type = ItemIndexOptions::Type::kIvf;
  o.ivf_nlist = 100;
  o.ivf_nprobe = 8;
  o.seed = 3;
  return o;
}

// A model swap moves every embedding a little; the rows also come in another order (the catalog
// of the next snapshot), so the warm start must match items by id, not by row.
TEST(ItemIndexWarmStartTest, KeepsRecallAfterASmallChangeOfTheEmbeddings) {
  // 1,000 small clusters over 100 lists probed 2 at a time: hard enough that a bad partition shows.
  const Data before = ClusteredData(20000, 32, /*clusters=*/1000, /*seed=*/21);
  Data after = before;
  std::mt19937_64 rng(22);
  std::normal_distribution<float> normal;
  for (float& v : after.x) v += 0.2f * normal(rng);
  std::reverse(after.ids.begin(), after.ids.end());
  for (int64_t i = 0; i < after.n / 2; ++i) {  // reverse rows too, keeping (id, vector) pairs
    std::swap_ranges(after.x.begin() + i * after.dim, after.x.begin() + (i + 1) * after.dim,
                     after.x.begin() + (after.n - 1 - i) * after.dim);
  }

  ItemIndexOptions o = IvfOptions();
  o.ivf_nprobe = 2;
  auto previous = ItemIndex::Build(before.x.data(), before.n, before.dim, before.ids, o);
  ASSERT_TRUE(previous.ok()) << previous.status();
  EXPECT_FALSE((*previous)->ivf_warm_started());
  auto cold = ItemIndex::Build(after.x.data(), after.n, after.dim, after.ids, o);
  ASSERT_TRUE(cold.ok()) << cold.status();
  auto warm = ItemIndex::Build(after.x.data(), after.n, after.dim, after.ids, o, nullptr, 0,
                               previous->get());
  ASSERT_TRUE(warm.ok()) << warm.status();
  std::printf("[warm] %s\n[cold] %s\n", (*warm)->build_report().c_str(),
              (*cold)->build_report().c_str());
  EXPECT_TRUE((*warm)->ivf_warm_started()) << (*warm)->build_report();
  EXPECT_THAT((*warm)->build_report(), HasSubstr("warm start"));

  // Same 300 queries for both: 3,000 top-10 slots, so a recall near 0.9 has a binomial sd of about
  // 0.006 per index; 0.03 is 5 sd of the difference. A warm start that mis-partitioned the items
  // (e.g. matching rows instead of ids) loses far more than that.
  const double recall_cold = RecallOn(after, **cold, 300, /*seed=*/23);
  const double recall_warm = RecallOn(after, **warm, 300, /*seed=*/23);
  std::printf("[warm] independent recall@10 warm %.4f, cold %.4f\n", recall_warm, recall_cold);
  EXPECT_GE(recall_warm, recall_cold - 0.03);
  EXPECT_GE(recall_warm, 0.85);
  // Every item is in the index under its id, with its new vector.
  for (int64_t row : {int64_t{0}, after.n / 2, after.n - 1}) {
    const int64_t index_row = (*warm)->RowOf(after.ids[row]);
    ASSERT_GE(index_row, 0);
    // Exact: the index holds a copy of the vector, so both sides are the same Dot of equal inputs.
    EXPECT_EQ(Dot((*warm)->embedding(index_row), after.x.data() + row * after.dim, after.dim),
              Dot(after.x.data() + row * after.dim, after.x.data() + row * after.dim, after.dim));
  }
}

TEST(ItemIndexWarmStartTest, FallsBackToKMeansWhenTheOldPartitionNoLongerFits) {
  // The new embeddings have nothing to do with the old ones: the previous lists are random subsets
  // of the new data, their means near zero, and the partition they induce is far worse than the
  // previous index's (recall@10 above 0.95 on its clustered data; unstructured Gaussian data at
  // nprobe 8 of 100 lists stays far below 0.93).
  const Data before = ClusteredData(20000, 32, /*clusters=*/50, /*seed=*/31);
  Data after = GaussianData(20000, 32, /*seed=*/32);
  after.ids = before.ids;
  ItemIndexOptions o = IvfOptions();
  o.ivf_warm_start_iterations = 0;
  auto previous = ItemIndex::Build(before.x.data(), before.n, before.dim, before.ids, o);
  ASSERT_TRUE(previous.ok()) << previous.status();
  ASSERT_GE((*previous)->recall_at_10(), 0.95) << (*previous)->build_report();
  auto rebuilt = ItemIndex::Build(after.x.data(), after.n, after.dim, after.ids, o, nullptr, 0,
                                  previous->get());
  ASSERT_TRUE(rebuilt.ok()) << rebuilt.status();
  std::printf("[fallback] %s\n", (*rebuilt)->build_report().c_str());
  EXPECT_FALSE((*rebuilt)->ivf_warm_started());
  EXPECT_THAT((*rebuilt)->build_report(), HasSubstr("-> k-means"));
}

TEST(ItemIndexWarmStartTest, OnlyFromAnIvfIndexWithTheSameListsAndMostOfTheItems) {
  const Data d = ClusteredData(8000, 16, /*clusters=*/20, /*seed=*/41);
  ItemIndexOptions o = IvfOptions();
  o.ivf_nlist = 50;
  auto exact = ItemIndex::Build(d.x.data(), d.n, d.dim, d.ids, ExactOptions());
  ASSERT_TRUE(exact.ok());
  auto ivf = ItemIndex::Build(d.x.data(), d.n, d.dim, d.ids, o, nullptr, 0, exact->get());
  ASSERT_TRUE(ivf.ok());
  EXPECT_FALSE((*ivf)->ivf_warm_started()) << "previous index is exact";

  ItemIndexOptions other_lists = o;
  other_lists.ivf_nlist = 40;
  auto ivf40 = ItemIndex::Build(d.x.data(), d.n, d.dim, d.ids, other_lists);
  ASSERT_TRUE(ivf40.ok());
  auto again = ItemIndex::Build(d.x.data(), d.n, d.dim, d.ids, o, nullptr, 0, ivf40->get());
  ASSERT_TRUE(again.ok());
  EXPECT_FALSE((*again)->ivf_warm_started()) << "nlist differs";

  // Most items new: nothing to start from.
  std::vector<int64_t> new_ids = d.ids;
  for (size_t i = 0; i < new_ids.size() * 6 / 10; ++i) new_ids[i] += 1;  // ids are 5i+3: no clash
  auto mostly_new = ItemIndex::Build(d.x.data(), d.n, d.dim, new_ids, o, nullptr, 0, ivf->get());
  ASSERT_TRUE(mostly_new.ok());
  EXPECT_FALSE((*mostly_new)->ivf_warm_started());
  EXPECT_THAT((*mostly_new)->build_report(), HasSubstr("warm start skipped"));

  // And it can be turned off.
  ItemIndexOptions off = o;
  off.ivf_warm_start = false;
  auto cold = ItemIndex::Build(d.x.data(), d.n, d.dim, d.ids, off, nullptr, 0, ivf->get());
  ASSERT_TRUE(cold.ok());
  EXPECT_FALSE((*cold)->ivf_warm_started());
  auto warm = ItemIndex::Build(d.x.data(), d.n, d.dim, d.ids, o, nullptr, 0, ivf->get());
  ASSERT_TRUE(warm.ok());
  EXPECT_TRUE((*warm)->ivf_warm_started()) << (*warm)->build_report();
}

}  // namespace
}  // namespace optower
