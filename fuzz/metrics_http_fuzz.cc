// Fuzzes MetricsHttpResponse (server/metrics_http_server.h), the metrics endpoint's request parser
// and router: any bytes as a request head. Properties: every answer is one HTTP/1.1 response whose
// Content-Length equals its body's size (HEAD: no body), and the body renderer runs only for 200.
#include <cstdint>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/string_view.h"
#include "fuzz/fuzz_file.h"
#include "server/metrics_http_server.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using optower::fuzz::Check;
  const std::string request(reinterpret_cast<const char*>(data), size);
  bool rendered = false;
  const std::string response = optower::server::MetricsHttpResponse(request, [&] {
    rendered = true;
    return std::string("optower_up 1\n");
  });
  Check(absl::StartsWith(response, "HTTP/1.1 "), "a status line");
  const bool ok = absl::StartsWith(response, "HTTP/1.1 200 ");
  Check(rendered == ok, "render runs exactly for 200 responses");
  const size_t head_end = response.find("\r\n\r\n");
  Check(head_end != std::string::npos, "a blank line ends the head");
  const absl::string_view head = absl::string_view(response).substr(0, head_end);
  const absl::string_view body = absl::string_view(response).substr(head_end + 4);
  constexpr absl::string_view kLength = "\r\nContent-Length: ";
  const size_t at = head.find(kLength);
  Check(at != absl::string_view::npos, "a Content-Length header");
  absl::string_view value = head.substr(at + kLength.size());
  value = value.substr(0, value.find("\r\n"));
  size_t length = 0;
  Check(absl::SimpleAtoi(value, &length), "Content-Length is a number");
  Check(body.empty() || body.size() == length, "Content-Length equals the body size");
  Check(!body.empty() || length == 0 || ok, "only HEAD answers omit the body");
  return 0;
}
