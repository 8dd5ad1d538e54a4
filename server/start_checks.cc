#include "server/start_checks.h"

#include <errno.h>
#include <netdb.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"

namespace optower::server {
namespace {

// How to make a catalog, for the messages below.
constexpr char kMakeItems[] =
    "a CSV with the header item,f0,f1,...; `optower synth --n-actions 100 --dim-context 8 "
    "--rounds 1000 --out data` writes one to data/items.csv";

bool Exists(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0;
}

}  // namespace

absl::Status CheckFirstStart(const v1::ServerConfig& c) {
  if (c.data_dir().empty()) {
    return absl::InvalidArgumentError(
        "data_dir: required (the event log lives there): pass --data_dir=DIR (created if missing)");
  }
  // With postgres the shared catalog (seeded by the elected trainer) is served: items_path is the
  // seed, needed only by the process that seeds (OptowerServer says so if the catalog is empty).
  if (c.model_dir().empty() && c.items_path().empty() && !c.postgres().enabled()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "items_path: required when no model_dir is given: pass --items=FILE, the catalog to serve (",
        kMakeItems, "), or --model=DIR, a model folder from `optower train`"));
  }
  if (c.model_dir().empty() && c.dim_context() < 1) {
    return absl::InvalidArgumentError(absl::StrCat(
        "dim_context=", c.dim_context(),
        ": no --model: random towers need --dim_context=N (the context length your clients will "
        "send), or pass --model=DIR (a model folder from `optower train`)"));
  }
  if (!c.items_path().empty() && !Exists(c.items_path())) {
    return absl::NotFoundError(absl::StrCat("items_path=", c.items_path(),
                                            ": no such file (--items): the catalog to serve is ",
                                            kMakeItems));
  }
  if (!c.model_dir().empty() && !Exists(c.model_dir())) {
    return absl::NotFoundError(absl::StrCat(
        "model_dir=", c.model_dir(),
        ": no such folder (--model): make one with `optower train --logs logs.csv --items "
        "items.csv --objective dr --out DIR`, or leave --model out for random towers "
        "(with --dim_context=N)"));
  }
  return absl::OkStatus();
}

bool PortInUse(const std::string& host, int port) {
  if (port <= 0) return false;
  // gRPC accepts "[::1]"; getaddrinfo wants the bare address.
  absl::string_view bare = host;
  if (absl::ConsumePrefix(&bare, "[")) absl::ConsumeSuffix(&bare, "]");
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  addrinfo* found = nullptr;
  const std::string node(bare);
  const std::string service = absl::StrCat(port);
  if (::getaddrinfo(node.c_str(), service.c_str(), &hints, &found) != 0) return false;
  bool in_use = false;
  for (addrinfo* a = found; a != nullptr && !in_use; a = a->ai_next) {
    const int fd = ::socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
    if (fd < 0) continue;
    // As gRPC does: a port with only TIME_WAIT connections left is free to listen on.
    const int one = 1;
    ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (::bind(fd, a->ai_addr, a->ai_addrlen) != 0 && errno == EADDRINUSE) in_use = true;
    ::close(fd);
  }
  ::freeaddrinfo(found);
  return in_use;
}

absl::Status ExplainStartFailure(const absl::Status& start_error, const v1::ServerConfig& c) {
  if (!absl::IsUnavailable(start_error) || !PortInUse(c.host(), c.port())) return start_error;
  return absl::UnavailableError(absl::StrCat(
      "port ", c.port(), " on ", c.host(),
      " is already in use (another optower-server?): stop that process, or pass --port=0 (any "
      "free port; the one chosen is printed) or another --port=N"));
}

}  // namespace optower::server
