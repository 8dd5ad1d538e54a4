// Fuzzes ReadContextTableCsv and ReadContextsCsv (core/base/csv_io.h): any bytes as a contexts
// file. An accepted table has dense [rows, dim] finite floats, dim >= 1 unless it has categorical
// columns (which then hold `rows` rows); the dense reader accepts exactly the tables without
// categorical columns and gives the same values.
#include <cmath>
#include <cstdint>

#include "core/base/csv_io.h"
#include "fuzz/fuzz_file.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static optower::fuzz::ScratchFile file;
  const std::string& path = file.Write(data, size);
  absl::StatusOr<optower::ContextTable> table = optower::ReadContextTableCsv(path);
  int64_t dim = -1;
  absl::StatusOr<std::vector<float>> contexts = optower::ReadContextsCsv(path, &dim);
  using optower::fuzz::Check;
  Check(contexts.ok() == (table.ok() && table->categorical.empty()),
        "the dense reader accepts exactly the tables without categorical columns");
  if (!table.ok()) return 0;
  Check(table->dim >= 1 || !table->categorical.empty(), "dim >= 1 or categorical columns");
  Check(table->rows >= 1, "at least one row");
  Check(table->dense.size() == static_cast<size_t>(table->rows * table->dim),
        "dense.size() == rows * dim");
  Check(table->categorical.empty() || table->categorical.rows() == table->rows,
        "categorical rows == rows");
  for (float x : table->dense) Check(std::isfinite(x), "contexts are finite");
  if (contexts.ok()) Check(dim == table->dim && *contexts == table->dense, "same dense values");
  return 0;
}
