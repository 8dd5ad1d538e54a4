// Fuzzes the server's text-format config reader (server/server_config.h): any bytes as a
// server.textproto, then the start-up sequence main.cc runs on it — ApplyServerConfigDefaults,
// ValidateServerConfig and, for a valid config, the conversions to core options. Properties:
// ApplyServerConfigDefaults is idempotent (as documented), and a valid config stays valid after a
// text-format round trip (what `optower-server --print_config`-style tools would write back).
#include <cstdint>
#include <string>

#include <google/protobuf/text_format.h>

#include "fuzz/fuzz_file.h"
#include "server/server_config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using optower::fuzz::Check;
  namespace srv = optower::server;
  const std::string text(reinterpret_cast<const char*>(data), size);
  absl::StatusOr<optower::v1::ServerConfig> parsed = srv::ParseServerConfig(text, "fuzz.textproto");
  if (!parsed.ok()) return 0;
  optower::v1::ServerConfig config = *parsed;
  srv::ApplyServerConfigDefaults(&config);
  optower::v1::ServerConfig twice = config;
  srv::ApplyServerConfigDefaults(&twice);
  Check(twice.SerializeAsString() == config.SerializeAsString(),
        "ApplyServerConfigDefaults is idempotent");
  if (!srv::ValidateServerConfig(config).ok()) return 0;
  (void)srv::EngineOptionsFromConfig(config);
  (void)srv::IndexOptionsFromConfig(config);
  (void)srv::BackgroundPriorityFromConfig(config);
  (void)srv::TrainerOptionsFromConfig(config);
  (void)srv::TlsOptionsFromConfig(config);
  (void)srv::EventLogOptionsFromConfig(config);
  (void)srv::EventLogPath(config);
  std::string written;
  Check(google::protobuf::TextFormat::PrintToString(config, &written), "a valid config prints");
  absl::StatusOr<optower::v1::ServerConfig> again = srv::ParseServerConfig(written, "written");
  Check(again.ok(), "a printed config parses");
  Check(srv::ValidateServerConfig(*again).ok(), "a printed valid config stays valid");
  return 0;
}
