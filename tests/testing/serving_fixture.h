// Header-only helpers for the serving tests (engine, server, CLI, durability): temporary folders,
// tiny random catalogs and models, and configs for a server on 127.0.0.1 with an ephemeral port.
// Header-only on purpose: tests/testing/*.cc are compiled into every test executable, and these
// helpers need the server library, which only the serving tests use.
#ifndef OPTOWER_TESTS_TESTING_SERVING_FIXTURE_H_
#define OPTOWER_TESTS_TESTING_SERVING_FIXTURE_H_

#include <stdlib.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "core/base/bandit_data.h"
#include "core/base/csv_io.h"
#include "core/model/two_tower_model.h"
#include "gtest/gtest.h"

namespace optower::testutil {

// A fresh folder under the test's temp dir; removed by the destructor.
class TempDir {
 public:
  explicit TempDir(const std::string& prefix) {
    std::string tmpl = ::testing::TempDir() + prefix + "_XXXXXX";
    if (::mkdtemp(tmpl.data()) == nullptr) {
      ADD_FAILURE() << "mkdtemp: " << std::strerror(errno);
    }
    path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  std::string File(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

// n items with ids first_id, first_id+1, ... and N(0,1) features [n, dim].
inline ItemCatalog RandomCatalog(int64_t n, int64_t dim, uint64_t seed, int64_t first_id = 100) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  ItemCatalog c;
  c.dim_features = dim;
  for (int64_t i = 0; i < n; ++i) {
    c.ids.push_back(first_id + i);
    for (int64_t j = 0; j < dim; ++j) c.features.push_back(normal(rng));
  }
  return c;
}

// Writes `items` as items.csv into `dir` and returns the path.
inline std::string WriteItems(const std::string& dir, const ItemCatalog& items,
                              const std::string& name = "items.csv") {
  const std::string path = dir + "/" + name;
  const absl::Status s = WriteItemsCsv(path, items);
  EXPECT_TRUE(s.ok()) << s;
  return path;
}

// Small random towers for `items`.
inline std::shared_ptr<const TwoTowerModel> TinyModel(int64_t dim_context, const ItemCatalog& items,
                                                      double temperature, uint64_t seed) {
  TwoTowerConfig config;
  config.dim_context = dim_context;
  config.dim_item = items.dim_features;
  config.hidden = {16};
  config.embedding_dim = 8;
  config.temperature = temperature;
  absl::StatusOr<TwoTowerModel> model = TwoTowerModel::Create(config, items.ids, seed);
  EXPECT_TRUE(model.ok()) << model.status();
  if (!model.ok()) return nullptr;
  return std::make_shared<const TwoTowerModel>(std::move(*model));
}

// Small random towers with categorical schemas (core/base/categorical.h) for `items`.
inline std::shared_ptr<const TwoTowerModel> TinyCategoricalModel(
    int64_t dim_context, const ItemCatalog& items, std::vector<CategoricalField> context_fields,
    std::vector<CategoricalField> item_fields, uint64_t seed, bool item_id_embedding = false) {
  TwoTowerConfig config;
  config.dim_context = dim_context;
  config.dim_item = items.dim_features;
  config.context_fields = std::move(context_fields);
  config.item_fields = std::move(item_fields);
  config.item_id_embedding = item_id_embedding;
  config.hidden = {16};
  config.embedding_dim = 8;
  config.temperature = 1.0;
  absl::StatusOr<TwoTowerModel> model = TwoTowerModel::Create(config, items.ids, seed);
  EXPECT_TRUE(model.ok()) << model.status();
  if (!model.ok()) return nullptr;
  return std::make_shared<const TwoTowerModel>(std::move(*model));
}

}  // namespace optower::testutil

#endif  // OPTOWER_TESTS_TESTING_SERVING_FIXTURE_H_
