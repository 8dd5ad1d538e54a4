// Status propagation macros. Debian's Abseil (20220623) ships none, so we define them once here,
// in the shape of triton-inference-server/core's src/status.h.
#ifndef OPTOWER_CORE_BASE_STATUS_MACROS_H_
#define OPTOWER_CORE_BASE_STATUS_MACROS_H_

#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#define OPTOWER_CONCAT_INNER_(a, b) a##b
#define OPTOWER_CONCAT_(a, b) OPTOWER_CONCAT_INNER_(a, b)

// Evaluates `expr` (an absl::Status); returns it from the enclosing function when it is not OK.
#define RETURN_IF_ERROR(expr)                      \
  do {                                             \
    ::absl::Status optower_status_ = (expr);       \
    if (!optower_status_.ok()) return optower_status_; \
  } while (0)

// `ASSIGN_OR_RETURN(auto x, MakeX());` — evaluates a StatusOr<T>; on error returns its status,
// otherwise moves the value into the left-hand side.
#define ASSIGN_OR_RETURN(lhs, expr) \
  OPTOWER_ASSIGN_OR_RETURN_IMPL_(OPTOWER_CONCAT_(optower_statusor_, __LINE__), lhs, expr)

#define OPTOWER_ASSIGN_OR_RETURN_IMPL_(statusor, lhs, expr) \
  auto statusor = (expr);                                   \
  if (!statusor.ok()) return std::move(statusor).status();  \
  lhs = std::move(statusor).value()

#endif  // OPTOWER_CORE_BASE_STATUS_MACROS_H_
