// Fuzzes ReadContextsCsv (core/base/csv_io.h): any bytes as a contexts file. Accepted files give a
// [n, D] matrix of finite floats with D >= 1.
#include <cmath>
#include <cstdint>

#include "core/base/csv_io.h"
#include "fuzz/fuzz_file.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static optower::fuzz::ScratchFile file;
  int64_t dim = -1;
  absl::StatusOr<std::vector<float>> contexts =
      optower::ReadContextsCsv(file.Write(data, size), &dim);
  if (!contexts.ok()) return 0;
  using optower::fuzz::Check;
  Check(dim >= 1, "dim >= 1");
  Check(contexts->size() % static_cast<size_t>(dim) == 0, "contexts.size() is a multiple of dim");
  for (float x : *contexts) Check(std::isfinite(x), "contexts are finite");
  return 0;
}
