#include "cli/online_client.h"

#include <cmath>
#include <cstdlib>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "client/tls_credentials.h"

namespace optower::cli {

void ConnectionFlags::Register(FlagParser* parser) {
  parser->AddString("token", &token,
                    "bearer token sent with every call (default: $OPTOWER_TOKEN; prefer the "
                    "environment: command lines are visible in ps)");
  parser->AddString("tls-ca", &tls_ca, "PEM CA of the server's certificate: connect with TLS");
  parser->AddString("tls-cert", &tls_cert, "PEM client certificate (mutual TLS; with --tls-key)");
  parser->AddString("tls-key", &tls_key, "PEM private key of --tls-cert");
}

absl::StatusOr<std::unique_ptr<client::OptowerClient>> ConnectToServer(
    const std::string& address, double timeout_seconds, const ConnectionFlags& connection) {
  if (address.empty()) return absl::InvalidArgumentError("--server: empty (want host:port)");
  if (!(timeout_seconds > 0) || !std::isfinite(timeout_seconds)) {
    return absl::InvalidArgumentError(
        absl::StrCat("--timeout=", timeout_seconds, ": must be > 0 seconds"));
  }
  client::ClientOptions options;
  options.address = address;
  options.default_deadline = absl::Seconds(timeout_seconds);
  std::string token = connection.token;
  const char* token_source = "--token";
  if (token.empty()) {
    const char* env = std::getenv("OPTOWER_TOKEN");
    token = env != nullptr ? env : "";
    token_source = "OPTOWER_TOKEN";
  }
  token = std::string(absl::StripAsciiWhitespace(token));
  if (!token.empty()) {
    for (const char c : token) {
      if (static_cast<unsigned char>(c) < 0x21 || static_cast<unsigned char>(c) > 0x7e) {
        // Never echo the token itself.
        return absl::InvalidArgumentError(absl::StrCat(
            token_source, ": the token has a space, a line break or a non-ASCII byte"));
      }
    }
    options.metadata.push_back({"authorization", absl::StrCat("Bearer ", token)});
  }
  client::ClientTlsOptions tls;
  tls.root_ca_path = connection.tls_ca;
  tls.cert_path = connection.tls_cert;
  tls.key_path = connection.tls_key;
  absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> credentials =
      client::MakeChannelCredentials(tls);
  if (!credentials.ok()) return credentials.status();
  options.credentials = *std::move(credentials);
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
