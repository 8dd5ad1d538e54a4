#include "client/tls_credentials.h"

#include <cerrno>
#include <fstream>
#include <sstream>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace optower::client {
namespace {

absl::StatusOr<std::string> ReadPem(const std::string& path, const std::string& option) {
  errno = 0;
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    const int err = errno != 0 ? errno : ENOENT;
    return absl::ErrnoToStatus(err, absl::StrCat(option, "=", path, ": cannot read it"));
  }
  std::ostringstream text;
  text << in.rdbuf();
  if (!absl::StrContains(text.str(), "-----BEGIN ")) {
    return absl::InvalidArgumentError(
        absl::StrCat(option, "=", path, ": not a PEM file (no -----BEGIN line)"));
  }
  return text.str();
}

}  // namespace

absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> MakeChannelCredentials(
    const ClientTlsOptions& o) {
  if (!o.enabled && o.root_ca_path.empty() && o.cert_path.empty() && o.key_path.empty()) {
    return grpc::InsecureChannelCredentials();
  }
  if (o.cert_path.empty() != o.key_path.empty()) {
    return o.cert_path.empty()
               ? absl::InvalidArgumentError(
                     absl::StrCat("--tls-cert: empty while --tls-key=", o.key_path, " is set"))
               : absl::InvalidArgumentError(
                     absl::StrCat("--tls-key: empty while --tls-cert=", o.cert_path, " is set"));
  }
  grpc::SslCredentialsOptions options;
  if (!o.root_ca_path.empty()) {
    absl::StatusOr<std::string> ca = ReadPem(o.root_ca_path, "--tls-ca");
    if (!ca.ok()) return ca.status();
    options.pem_root_certs = *std::move(ca);
  }
  if (!o.cert_path.empty()) {
    absl::StatusOr<std::string> cert = ReadPem(o.cert_path, "--tls-cert");
    if (!cert.ok()) return cert.status();
    absl::StatusOr<std::string> key = ReadPem(o.key_path, "--tls-key");
    if (!key.ok()) return key.status();
    options.pem_cert_chain = *std::move(cert);
    options.pem_private_key = *std::move(key);
  }
  return grpc::SslCredentials(options);
}

}  // namespace optower::client
