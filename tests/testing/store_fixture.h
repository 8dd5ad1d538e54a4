// Header-only helpers for the model store tests (both backends): a 3-item catalog and tiny linear
// towers over it. Header-only like serving_fixture.h: they need LibTorch, which the helpers
// compiled into every test (tests/testing/*.cc) must not.
#ifndef OPTOWER_TESTS_TESTING_STORE_FIXTURE_H_
#define OPTOWER_TESTS_TESTING_STORE_FIXTURE_H_

#include <cstdint>
#include <utility>

#include "core/base/bandit_data.h"
#include "core/model/two_tower_model.h"
#include "gtest/gtest.h"

namespace optower::testutil {

// Items 7, 8, 9 with 2 features each.
inline ItemCatalog StoreTestCatalog() {
  ItemCatalog items;
  items.dim_features = 2;
  items.ids = {7, 8, 9};
  items.features = {0.f, 1.f, 1.f, 0.f, 0.5f, 0.5f};
  return items;
}

// Linear towers (3 context features, d = 4) over StoreTestCatalog's items.
inline TwoTowerModel StoreTestModel(uint64_t seed) {
  TwoTowerConfig c;
  c.dim_context = 3;
  c.dim_item = 2;
  c.hidden = {};
  c.embedding_dim = 4;
  absl::StatusOr<TwoTowerModel> m = TwoTowerModel::Create(c, {7, 8, 9}, seed);
  EXPECT_TRUE(m.ok()) << m.status();
  return std::move(*m);
}

}  // namespace optower::testutil

#endif  // OPTOWER_TESTS_TESTING_STORE_FIXTURE_H_
