// TLS for the gRPC server (docs/SECURITY.md): grpc::SslServerCredentials from PEM files.
//
// Without a certificate the server is plaintext (grpc::InsecureServerCredentials). With
// cert + key it serves TLS only: a plaintext client's handshake fails (UNAVAILABLE on its side).
// A client CA makes the server ask for and verify client certificates; require_client_cert refuses
// clients without one (mutual TLS). The client side lives in client/tls_credentials.h (client/ does
// not depend on server/).
//
// Thread safety: reentrant. Blocks on file reads.
#ifndef OPTOWER_SERVER_TLS_H_
#define OPTOWER_SERVER_TLS_H_

#include <memory>
#include <string>

#include <grpcpp/security/server_credentials.h>

#include "absl/status/statusor.h"

namespace optower::server {

struct ServerTlsOptions {
  std::string cert_path;       // PEM certificate chain (leaf first); empty = plaintext
  std::string key_path;        // PEM private key of the leaf certificate
  std::string client_ca_path;  // PEM CA bundle that client certificates must chain to; optional
  bool require_client_cert = false;  // needs client_ca_path
};

// Plaintext credentials when cert_path and key_path are empty, else TLS ones. InvalidArgument
// naming the setting (tls_cert, tls_key, tls_client_ca, tls_require_client_cert) when only one of
// cert/key is set, a client CA or require_client_cert comes without a certificate,
// require_client_cert has no client CA, or a file is not PEM; NotFound/PermissionDenied/... when a
// file cannot be read.
// A key that does not belong to the certificate is only noticed by gRPC when the server starts.
absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> MakeServerCredentials(
    const ServerTlsOptions& options);

}  // namespace optower::server

#endif  // OPTOWER_SERVER_TLS_H_
