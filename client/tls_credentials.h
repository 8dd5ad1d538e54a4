// Channel credentials for optower clients (plaintext or TLS, optionally with a client certificate),
// for ClientOptions::credentials. See docs/SECURITY.md.
//
//   ClientTlsOptions tls{.root_ca_path = "ca.pem"};
//   ASSIGN_OR_RETURN(options.credentials, MakeChannelCredentials(tls));
//
// Thread safety: reentrant. Blocks on file reads.
#ifndef OPTOWER_CLIENT_TLS_CREDENTIALS_H_
#define OPTOWER_CLIENT_TLS_CREDENTIALS_H_

#include <memory>
#include <string>

#include <grpcpp/security/credentials.h>

#include "absl/status/statusor.h"

namespace optower::client {

struct ClientTlsOptions {
  bool enabled = false;       // TLS even without root_ca_path (then the system's roots are used)
  std::string root_ca_path;   // PEM CA bundle the server certificate must chain to
  std::string cert_path;      // PEM client certificate chain (mutual TLS); optional
  std::string key_path;       // its PEM private key; required with cert_path
};

// Plaintext (grpc::InsecureChannelCredentials) unless `enabled` or a path is set. InvalidArgument
// naming the option (--tls-ca, --tls-cert, --tls-key) for a client cert without key (or the
// reverse) or a file that is not PEM; NotFound/PermissionDenied/... when a file cannot be read.
absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> MakeChannelCredentials(
    const ClientTlsOptions& options);

}  // namespace optower::client

#endif  // OPTOWER_CLIENT_TLS_CREDENTIALS_H_
