// Fuzzes TwoTowerConfigFromText (core/model/two_tower_config.h), the reader of a model folder's
// config.txt. Properties: an accepted config passes ValidateTwoTowerConfig, and writing it and
// reading it back gives the same config (config.txt round trip is exact).
#include <cstdint>
#include <string>

#include "core/model/two_tower_config.h"
#include "fuzz/fuzz_file.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  absl::StatusOr<optower::TwoTowerConfig> config =
      optower::TwoTowerConfigFromText(text, "config.txt");
  if (!config.ok()) return 0;
  using optower::fuzz::Check;
  Check(optower::ValidateTwoTowerConfig(*config).ok(), "an accepted config is valid");
  const std::string written = optower::TwoTowerConfigToText(*config);
  absl::StatusOr<optower::TwoTowerConfig> again =
      optower::TwoTowerConfigFromText(written, "config.txt");
  Check(again.ok(), "a written config parses");
  Check(optower::TwoTowerConfigToText(*again) == written, "config.txt round trip is exact");
  return 0;
}
