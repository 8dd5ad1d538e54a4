#include "launch/server_config_text.h"

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "google/protobuf/text_format.h"

namespace optower::launch {

v1::ServerConfig LoopbackServerConfig() {
  v1::ServerConfig config;
  config.set_host("127.0.0.1");
  config.set_port(0);
  return config;
}

std::string ServerConfigText(const v1::ServerConfig& config, absl::string_view comment) {
  std::string text;
  if (!comment.empty()) {
    for (absl::string_view line : absl::StrSplit(comment, '\n'))
      absl::StrAppend(&text, "# ", line, "\n");
  }
  std::string body;
  google::protobuf::TextFormat::PrintToString(config, &body);
  return text + body;
}

absl::Status WriteServerConfig(const v1::ServerConfig& config, const std::string& path,
                               absl::string_view comment) {
  const std::string text = ServerConfigText(config, comment);
  std::FILE* f = std::fopen(path.c_str(), "w");
  if (f == nullptr) {
    return absl::InternalError(absl::StrCat("cannot write ", path, ": ", std::strerror(errno)));
  }
  const bool written = std::fwrite(text.data(), 1, text.size(), f) == text.size();
  const int e = errno;
  if (std::fclose(f) != 0 || !written) {
    return absl::InternalError(
        absl::StrCat("cannot write ", path, ": ", std::strerror(written ? errno : e)));
  }
  return absl::OkStatus();
}

}  // namespace optower::launch
