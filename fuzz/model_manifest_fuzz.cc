// Fuzzes ParseManifestText (core/storage/model_store.h), the reader of a model version's manifest.txt.
// Property: a manifest it accepts survives a write/read round trip unchanged
// (FormatManifestText(Parse(FormatManifestText(m))) == FormatManifestText(m)), and
// FormatManifestJson does not fail on it.
#include <cstdint>
#include <string>

#include "core/storage/model_store.h"
#include "fuzz/fuzz_file.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  absl::StatusOr<optower::ModelManifest> manifest = optower::ParseManifestText(text);
  if (!manifest.ok()) return 0;
  using optower::fuzz::Check;
  const std::string written = optower::FormatManifestText(*manifest);
  absl::StatusOr<optower::ModelManifest> again = optower::ParseManifestText(written);
  Check(again.ok(), "a written manifest parses");
  Check(optower::FormatManifestText(*again) == written, "manifest.txt round trip is exact");
  // The JSON twin may refuse values JSON cannot hold (it returns a status); it must not crash.
  (void)optower::FormatManifestJson(*manifest);
  return 0;
}
