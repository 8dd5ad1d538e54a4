// Fuzzes ReadLogsCsv (core/base/csv_io.h): any bytes as a logs.csv against a fixed catalog (ids 1..4,
// two features). Accepted logs must be consistent: actions are catalog rows, 0 < pscore <= 1,
// finite rewards and contexts, contexts.size() == n * dim_context, dim_context >= 1 unless there
// are categorical columns, which then hold n rows; positions empty or one per row, >= 0.
#include <cmath>
#include <cstdint>

#include "core/base/csv_io.h"
#include "fuzz/fuzz_file.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static optower::fuzz::ScratchFile file;
  static const optower::ItemCatalog* const catalog = [] {
    auto* items = new optower::ItemCatalog;
    items->dim_features = 2;
    items->ids = {1, 2, 3, 4};
    items->features = {0, 1, 1, 0, 0.5f, 0.5f, -1, 2};
    return items;
  }();
  absl::StatusOr<optower::BanditLog> log =
      optower::ReadLogsCsv(file.Write(data, size), *catalog, "fuzz catalog");
  if (!log.ok()) return 0;
  using optower::fuzz::Check;
  const size_t n = log->actions.size();
  const optower::CategoricalColumns& cat = log->context_categorical;
  Check(log->dim_context >= 1 || !cat.empty(), "dim_context >= 1 or categorical columns");
  Check(cat.empty() || cat.rows() == static_cast<int64_t>(n), "categorical rows == n");
  Check(log->positions.empty() || log->positions.size() == n, "positions empty or n");
  for (int32_t p : log->positions) Check(p >= 0, "position >= 0");
  Check(log->rewards.size() == n && log->pscores.size() == n, "one reward and pscore per row");
  Check(log->contexts.size() == n * static_cast<size_t>(log->dim_context),
        "contexts.size() == n * dim_context");
  for (size_t i = 0; i < n; ++i) {
    Check(log->actions[i] >= 0 && log->actions[i] < catalog->size(), "action is a catalog row");
    Check(log->pscores[i] > 0 && log->pscores[i] <= 1, "pscore in (0, 1]");
    Check(std::isfinite(log->rewards[i]), "reward is finite");
  }
  for (float x : log->contexts) Check(std::isfinite(x), "contexts are finite");
  return 0;
}
