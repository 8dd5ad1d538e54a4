// HttpExchange: a raw HTTP/1.1 exchange with a server on 127.0.0.1, for the metrics endpoint tests.
#ifndef OPTOWER_TESTS_TESTING_HTTP_EXCHANGE_H_
#define OPTOWER_TESTS_TESTING_HTTP_EXCHANGE_H_

#include <string>

#include "absl/status/statusor.h"

namespace optower::testutil {

// A TCP connection to 127.0.0.1:port: the socket, or -1 if nothing listens there.
int ConnectLoopback(int port);

// Connects to 127.0.0.1:port, sends `request` as is, and returns everything read until the server
// closes the connection (status line, headers, body). Unavailable if nothing listens on the port.
absl::StatusOr<std::string> HttpExchange(int port, const std::string& request);

}  // namespace optower::testutil

#endif  // OPTOWER_TESTS_TESTING_HTTP_EXCHANGE_H_
