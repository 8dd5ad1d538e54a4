// The --config file of an optower-server child process, built as a v1::ServerConfig message and
// written with protobuf's TextFormat (strings escaped by protobuf, doubles printed so that they
// read back exactly) — never as hand-written text.
//
//   v1::ServerConfig config = launch::LoopbackServerConfig();
//   config.set_data_dir(dir + "/data");
//   config.mutable_trainer()->set_disabled(true);
//   RETURN_IF_ERROR(launch::WriteServerConfig(config, dir + "/server.textproto"));
//
// Thread safety: all functions are reentrant.
#ifndef OPTOWER_LAUNCH_SERVER_CONFIG_TEXT_H_
#define OPTOWER_LAUNCH_SERVER_CONFIG_TEXT_H_

#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "optower/v1/optower.pb.h"

namespace optower::launch {

// host "127.0.0.1", port 0 (the OS picks a free port; ServerProcess reads it from the server's
// "listening on" line). Every other field unset: the server's defaults.
v1::ServerConfig LoopbackServerConfig();

// The text format of `config`, after `comment` as "# " lines (none if empty). optower-server's
// LoadServerConfigFile parses it back into an equal message.
std::string ServerConfigText(const v1::ServerConfig& config, absl::string_view comment = "");

// Writes ServerConfigText(config, comment) to `path` (replacing it). Internal naming the path if it
// cannot be written.
absl::Status WriteServerConfig(const v1::ServerConfig& config, const std::string& path,
                               absl::string_view comment = "");

}  // namespace optower::launch

#endif  // OPTOWER_LAUNCH_SERVER_CONFIG_TEXT_H_
