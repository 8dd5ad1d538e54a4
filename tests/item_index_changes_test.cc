// ItemIndex::WithChanges: catalog changes layered over a shared base index (a delta searched
// exactly, tombstones filtered out of the base's results) serve what a full rebuild on the same
// data serves; deleted ids are never returned; Drifted() says when to rebuild.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <map>
#include <memory>
#include <random>
#include <set>
#include <vector>

#include "core/serving/item_index.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace optower {
namespace {

using ::testing::HasSubstr;

constexpr int64_t kDim = 16;

// The reference: id -> embedding, in catalog order (ids vector).
struct Catalog {
  std::vector<int64_t> ids;
  std::map<int64_t, std::vector<float>> vectors;
  std::vector<float> Flat() const {
    std::vector<float> x;
    for (int64_t id : ids) x.insert(x.end(), vectors.at(id).begin(), vectors.at(id).end());
    return x;
  }
};

std::vector<float> RandomVector(std::mt19937_64& rng) {
  std::normal_distribution<float> normal;
  std::lognormal_distribution<float> scale(0.0f, 0.5f);
  const float s = scale(rng);
  std::vector<float> v(kDim);
  for (float& x : v) x = s * normal(rng);
  return v;
}

Catalog RandomCatalog(int64_t n, std::mt19937_64& rng) {
  Catalog c;
  for (int64_t i = 0; i < n; ++i) {
    c.ids.push_back(10 + 3 * i);
    c.vectors[c.ids.back()] = RandomVector(rng);
  }
  return c;
}

ItemIndexOptions Options(ItemIndexOptions::Type type) {
  ItemIndexOptions o;
  o.type = type;
  o.threads = 1;
  o.ivf_nprobe = 100000;  // clamped to nlist: exhaustive, so IVF results are exact too
  o.delta_max_items = 100000;
  o.delta_max_fraction = 1.0;
  return o;
}

// Applies an upsert of `upserted` (ids: new ones appended, existing ones replaced in place) and a
// delete of `deleted` to both the reference and the index, in the engine's row order.
std::unique_ptr<ItemIndex> Apply(const ItemIndex& index, Catalog* c,
                                 const std::map<int64_t, std::vector<float>>& upserted,
                                 const std::vector<int64_t>& deleted) {
  ItemIndex::Changes changes;
  for (const auto& [id, v] : upserted) {
    if (c->vectors.count(id) == 0) c->ids.push_back(id);
    c->vectors[id] = v;
    changes.upserted.push_back(id);
    changes.upserted_embeddings.insert(changes.upserted_embeddings.end(), v.begin(), v.end());
  }
  for (int64_t id : deleted) {
    c->vectors.erase(id);
    c->ids.erase(std::find(c->ids.begin(), c->ids.end(), id));
  }
  changes.deleted = deleted;
  changes.ids = c->ids;
  absl::StatusOr<std::unique_ptr<ItemIndex>> next = ItemIndex::WithChanges(index, changes);
  EXPECT_TRUE(next.ok()) << next.status();
  return next.ok() ? std::move(*next) : nullptr;
}

// Same ids in the same order, up to swaps of near-equal scores; scores within float rounding.
void ExpectSameHits(const std::vector<SearchHit>& got, const std::vector<SearchHit>& want) {
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i) {
    EXPECT_NEAR(got[i].score, want[i].score, 1e-4f * (1.0f + std::fabs(want[i].score))) << i;
    if (got[i].item_id != want[i].item_id) {
      EXPECT_NEAR(got[i].score, want[i].score, 1e-5f * (1.0f + std::fabs(want[i].score)))
          << "different item at rank " << i << " without a tie";
    }
  }
}

void CheckAgainstRebuild(const ItemIndex& layered, const Catalog& c, ItemIndexOptions::Type type,
                         uint64_t seed) {
  const std::vector<float> x = c.Flat();
  absl::StatusOr<std::unique_ptr<ItemIndex>> rebuilt =
      ItemIndex::Build(x.data(), static_cast<int64_t>(c.ids.size()), kDim, c.ids, Options(type));
  ASSERT_TRUE(rebuilt.ok()) << rebuilt.status();
  ASSERT_EQ(layered.size(), (*rebuilt)->size());
  EXPECT_EQ(layered.ids(), c.ids) << "rows are the catalog's order";
  for (size_t row = 0; row < c.ids.size(); ++row) {
    ASSERT_EQ(layered.RowOf(c.ids[row]), static_cast<int64_t>(row));
    EXPECT_TRUE(std::equal(layered.embedding(row), layered.embedding(row) + kDim,
                           c.vectors.at(c.ids[row]).begin()));
  }
  std::mt19937_64 rng(seed);
  for (int q = 0; q < 40; ++q) {
    const std::vector<float> query = RandomVector(rng);
    // Exclude a few served ids (some from the delta, some from the base) half of the time.
    std::vector<int64_t> exclude;
    if (q % 2 == 1) {
      for (size_t i = 0; i < c.ids.size(); i += c.ids.size() / 7) exclude.push_back(c.ids[i]);
      exclude.push_back(c.ids.back());
      exclude.push_back(-5);  // not in the index: ignored
    }
    for (int64_t m : {1, 10, 100}) {
      absl::StatusOr<std::vector<SearchHit>> got = layered.Search(query.data(), m, exclude);
      absl::StatusOr<std::vector<SearchHit>> want = (*rebuilt)->Search(query.data(), m, exclude);
      ASSERT_TRUE(got.ok() && want.ok());
      ExpectSameHits(*got, *want);
    }
  }
}

class ItemIndexChangesTest : public ::testing::TestWithParam<ItemIndexOptions::Type> {};

TEST_P(ItemIndexChangesTest, LayeredSearchServesWhatAFullRebuildServes) {
  std::mt19937_64 rng(1);
  Catalog c = RandomCatalog(3000, rng);
  const std::vector<float> x = c.Flat();
  absl::StatusOr<std::unique_ptr<ItemIndex>> base =
      ItemIndex::Build(x.data(), 3000, kDim, c.ids, Options(GetParam()));
  ASSERT_TRUE(base.ok()) << base.status();
  // 1: new items and replaced base items.
  std::map<int64_t, std::vector<float>> up;
  for (int i = 0; i < 5; ++i) up[100000 + i] = RandomVector(rng);
  for (int i = 0; i < 5; ++i) up[c.ids[17 * i + 3]] = RandomVector(rng);
  std::unique_ptr<ItemIndex> one = Apply(**base, &c, up, {});
  ASSERT_NE(one, nullptr);
  EXPECT_EQ(one->delta_size(), 10);
  EXPECT_EQ(one->tombstones(), 5);
  EXPECT_EQ(one->base_size(), 3000);
  CheckAgainstRebuild(*one, c, GetParam(), 2);
  // 2: delete base items, a delta item and a replaced item; replace a delta item again.
  std::map<int64_t, std::vector<float>> up2 = {{100001, RandomVector(rng)}};
  const std::vector<int64_t> del = {c.ids[0], c.ids[500], 100000, c.ids[3]};
  std::unique_ptr<ItemIndex> two = Apply(*one, &c, up2, del);
  ASSERT_NE(two, nullptr);
  EXPECT_EQ(two->delta_size(), 8);   // 10 - 100000 - c.ids[3] (replaced, now deleted)
  EXPECT_EQ(two->tombstones(), 7);   // 5 + c.ids[0] + c.ids[500]
  CheckAgainstRebuild(*two, c, GetParam(), 3);
  // 3: a deleted id comes back.
  std::map<int64_t, std::vector<float>> up3 = {{del[0], RandomVector(rng)}};
  std::unique_ptr<ItemIndex> three = Apply(*two, &c, up3, {});
  ASSERT_NE(three, nullptr);
  CheckAgainstRebuild(*three, c, GetParam(), 4);
  EXPECT_EQ(three->type_name(), (*base)->type_name()) << "the base is shared";
}

INSTANTIATE_TEST_SUITE_P(Backends, ItemIndexChangesTest,
                         ::testing::Values(ItemIndexOptions::Type::kExact,
                                           ItemIndexOptions::Type::kIvf),
                         [](const auto& info) {
                           return info.param == ItemIndexOptions::Type::kExact ? "Exact" : "Ivf";
                         });

TEST(ItemIndexChangesTest, DeletedIdsAreNeverReturnedEvenWhenTheyWouldBeTheTopHits) {
  std::mt19937_64 rng(5);
  Catalog c = RandomCatalog(2000, rng);
  const std::vector<float> x = c.Flat();
  auto base = ItemIndex::Build(x.data(), 2000, kDim, c.ids, Options(ItemIndexOptions::Type::kExact));
  ASSERT_TRUE(base.ok());
  const std::vector<float> query = RandomVector(rng);
  auto top = (*base)->Search(query.data(), 20);
  ASSERT_TRUE(top.ok());
  std::vector<int64_t> doomed;
  for (const SearchHit& h : *top) doomed.push_back(h.item_id);
  std::unique_ptr<ItemIndex> next = Apply(**base, &c, {}, doomed);
  ASSERT_NE(next, nullptr);
  for (int64_t id : doomed) {
    EXPECT_FALSE(next->Contains(id));
    EXPECT_EQ(next->RowOf(id), -1);
  }
  for (int64_t m : {1, 20, 1980}) {
    auto hits = next->Search(query.data(), m);
    ASSERT_TRUE(hits.ok());
    EXPECT_EQ(static_cast<int64_t>(hits->size()), m) << "over-fetched past the tombstones";
    for (const SearchHit& h : *hits) {
      EXPECT_EQ(std::count(doomed.begin(), doomed.end(), h.item_id), 0) << h.item_id;
    }
  }
}

TEST(ItemIndexChangesTest, DriftedOnceTheLayersExceedTheLimit) {
  std::mt19937_64 rng(6);
  Catalog c = RandomCatalog(1000, rng);
  const std::vector<float> x = c.Flat();
  auto base = ItemIndex::Build(x.data(), 1000, kDim, c.ids, Options(ItemIndexOptions::Type::kExact));
  ASSERT_TRUE(base.ok());
  ItemIndexOptions o;
  o.delta_max_items = 10;
  o.delta_max_fraction = 0.05;  // 50 of 1000: the item limit binds
  EXPECT_FALSE((*base)->Drifted(o));
  std::map<int64_t, std::vector<float>> up;
  for (int i = 0; i < 4; ++i) up[c.ids[i]] = RandomVector(rng);  // 4 delta + 4 tombstones
  std::unique_ptr<ItemIndex> one = Apply(**base, &c, up, {});
  ASSERT_NE(one, nullptr);
  EXPECT_FALSE(one->Drifted(o));  // 8 <= 10
  std::unique_ptr<ItemIndex> two = Apply(*one, &c, {{5000, RandomVector(rng)}}, {c.ids[10]});
  ASSERT_NE(two, nullptr);
  EXPECT_FALSE(two->Drifted(o));  // 5 delta + 5 tombstones = 10
  std::unique_ptr<ItemIndex> three = Apply(*two, &c, {{5001, RandomVector(rng)}}, {});
  ASSERT_NE(three, nullptr);
  EXPECT_TRUE(three->Drifted(o));  // 11 > 10
  o.delta_max_fraction = 0.005;  // 5 of 1000: now the fraction binds
  EXPECT_TRUE(one->Drifted(o));
}

TEST(ItemIndexChangesTest, RejectsChangesThatDoNotDescribeTheLiveItems) {
  std::mt19937_64 rng(7);
  Catalog c = RandomCatalog(100, rng);
  const std::vector<float> x = c.Flat();
  auto base = ItemIndex::Build(x.data(), 100, kDim, c.ids, Options(ItemIndexOptions::Type::kExact));
  ASSERT_TRUE(base.ok());
  ItemIndex::Changes missing;  // ids without the upserted item
  missing.upserted = {777};
  missing.upserted_embeddings = RandomVector(rng);
  missing.ids = c.ids;
  auto r = ItemIndex::WithChanges(**base, missing);
  EXPECT_FALSE(r.ok());
  EXPECT_THAT(r.status().message(), HasSubstr("live items"));
  ItemIndex::Changes unknown;
  unknown.deleted = {-1};
  unknown.ids = c.ids;
  r = ItemIndex::WithChanges(**base, unknown);
  EXPECT_THAT(r.status().message(), HasSubstr("deleted[0]=-1: not in the index"));
  ItemIndex::Changes both;
  both.upserted = {c.ids[0]};
  both.upserted_embeddings = RandomVector(rng);
  both.deleted = {c.ids[0]};
  both.ids.assign(c.ids.begin() + 1, c.ids.end());
  r = ItemIndex::WithChanges(**base, both);
  EXPECT_THAT(r.status().message(), HasSubstr("also deleted"));
  ItemIndex::Changes shape;
  shape.upserted = {777};
  shape.upserted_embeddings = {1.0f};
  r = ItemIndex::WithChanges(**base, shape);
  EXPECT_THAT(r.status().message(), HasSubstr("upserted_embeddings has 1 values"));
}

TEST(ItemIndexChangesTest, AnIvfRebuildWarmStartsFromALayeredIndex) {
  std::mt19937_64 rng(8);
  Catalog c = RandomCatalog(4000, rng);
  const std::vector<float> x = c.Flat();
  ItemIndexOptions o = Options(ItemIndexOptions::Type::kIvf);
  o.ivf_nlist = 64;  // the same lists before and after (automatic nlist follows n)
  auto base = ItemIndex::Build(x.data(), 4000, kDim, c.ids, o);
  ASSERT_TRUE(base.ok());
  std::map<int64_t, std::vector<float>> up;
  for (int i = 0; i < 20; ++i) up[90000 + i] = RandomVector(rng);
  std::unique_ptr<ItemIndex> layered = Apply(**base, &c, up, {c.ids[1], c.ids[2]});
  ASSERT_NE(layered, nullptr);
  const std::vector<float> y = c.Flat();
  auto rebuilt = ItemIndex::Build(y.data(), static_cast<int64_t>(c.ids.size()), kDim, c.ids, o,
                                  nullptr, 0, layered.get());
  ASSERT_TRUE(rebuilt.ok()) << rebuilt.status();
  EXPECT_TRUE((*rebuilt)->ivf_warm_started()) << (*rebuilt)->build_report();
  EXPECT_EQ((*rebuilt)->delta_size(), 0);
  EXPECT_EQ((*rebuilt)->tombstones(), 0);
}

}  // namespace
}  // namespace optower
