#include "cli/online_client.h"

#include <cmath>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace optower::cli {

absl::StatusOr<std::unique_ptr<client::OptowerClient>> ConnectToServer(const std::string& address,
                                                                      double timeout_seconds) {
  if (address.empty()) return absl::InvalidArgumentError("--server: empty (want host:port)");
  if (!(timeout_seconds > 0) || !std::isfinite(timeout_seconds)) {
    return absl::InvalidArgumentError(
        absl::StrCat("--timeout=", timeout_seconds, ": must be > 0 seconds"));
  }
  client::ClientOptions options;
  options.address = address;
  options.default_deadline = absl::Seconds(timeout_seconds);
  return client::OptowerClient::Connect(options);
}

absl::StatusOr<std::vector<float>> ParseFloatList(const std::string& text, const std::string& flag) {
  std::vector<float> out;
  if (absl::StripAsciiWhitespace(text).empty()) return out;
  int index = 0;
  for (absl::string_view part : absl::StrSplit(text, ',')) {
    const absl::string_view v = absl::StripAsciiWhitespace(part);
    float x = 0;
    if (!absl::SimpleAtof(v, &x)) {
      return absl::InvalidArgumentError(
          absl::StrCat(flag, ": value ", index, " '", v, "' is not a number"));
    }
    out.push_back(x);
    ++index;
  }
  return out;
}

absl::StatusOr<std::vector<int64_t>> ParseIdList(const std::string& text, const std::string& flag) {
  std::vector<int64_t> out;
  if (absl::StripAsciiWhitespace(text).empty()) return out;
  int index = 0;
  for (absl::string_view part : absl::StrSplit(text, ',')) {
    const absl::string_view v = absl::StripAsciiWhitespace(part);
    int64_t id = 0;
    if (!absl::SimpleAtoi(v, &id)) {
      return absl::InvalidArgumentError(
          absl::StrCat(flag, ": value ", index, " '", v, "' is not an integer id"));
    }
    out.push_back(id);
    ++index;
  }
  return out;
}

absl::Status RpcError(const std::string& rpc, const absl::Status& status) {
  return absl::Status(status.code(), absl::StrCat(rpc, ": ", status.message()));
}

}  // namespace optower::cli
