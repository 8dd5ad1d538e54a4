#include "server/tls.h"


#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "server/setting_file.h"

namespace optower::server {
namespace {

// The whole PEM file; `field` names the setting in messages.
absl::StatusOr<std::string> ReadPem(const std::string& path, const std::string& field) {
  absl::StatusOr<std::string> text = ReadSettingFile(path, field);
  if (!text.ok()) return text.status();
  if (!absl::StrContains(*text, "-----BEGIN ")) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, "=", path, ": not a PEM file (no -----BEGIN line)"));
  }
  return text;
}

}  // namespace

absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> MakeServerCredentials(
    const ServerTlsOptions& o) {
  const bool has_cert = !o.cert_path.empty();
  const bool has_key = !o.key_path.empty();
  if (!has_cert && !has_key) {
    if (!o.client_ca_path.empty()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "tls_client_ca=", o.client_ca_path, ": needs tls_cert and tls_key (TLS is off)"));
    }
    if (o.require_client_cert) {
      return absl::InvalidArgumentError(
          "tls_require_client_cert=true: needs tls_cert, tls_key and tls_client_ca (TLS is off)");
    }
    return grpc::InsecureServerCredentials();
  }
  if (!has_key) {
    return absl::InvalidArgumentError(
        absl::StrCat("tls_key: empty while tls_cert=", o.cert_path, " is set"));
  }
  if (!has_cert) {
    return absl::InvalidArgumentError(
        absl::StrCat("tls_cert: empty while tls_key=", o.key_path, " is set"));
  }
  if (o.require_client_cert && o.client_ca_path.empty()) {
    return absl::InvalidArgumentError(
        "tls_require_client_cert=true: needs tls_client_ca (the CA client certificates chain to)");
  }
  absl::StatusOr<std::string> cert = ReadPem(o.cert_path, "tls_cert");
  if (!cert.ok()) return cert.status();
  absl::StatusOr<std::string> key = ReadPem(o.key_path, "tls_key");
  if (!key.ok()) return key.status();

  grpc::SslServerCredentialsOptions options(GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE);
  options.pem_key_cert_pairs.push_back({*std::move(key), *std::move(cert)});
  if (!o.client_ca_path.empty()) {
    absl::StatusOr<std::string> ca = ReadPem(o.client_ca_path, "tls_client_ca");
    if (!ca.ok()) return ca.status();
    options.pem_root_certs = *std::move(ca);
    options.client_certificate_request =
        o.require_client_cert ? GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY
                              : GRPC_SSL_REQUEST_CLIENT_CERTIFICATE_AND_VERIFY;
  }
  return grpc::SslServerCredentials(options);
}

}  // namespace optower::server
