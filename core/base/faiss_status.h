// CallFaiss: the one place FAISS exceptions become an absl::Status, for every library that calls
// FAISS (core/serving's index, core/learning's proposal index). Header-only and FAISS-free: FAISS
// throws faiss::FaissException, a std::exception, so catching std::exception needs no FAISS header
// and base stays free of the dependency.
#ifndef OPTOWER_CORE_BASE_FAISS_STATUS_H_
#define OPTOWER_CORE_BASE_FAISS_STATUS_H_

#include <exception>
#include <functional>
#include <new>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace optower {
namespace faiss_call {

// Runs fn; ResourceExhausted for std::bad_alloc, Internal("FAISS <what>: <message>") for any other
// exception (FAISS's own included), Ok otherwise.
inline absl::Status CallFaiss(const char* what, const std::function<void()>& fn) {
  try {
    fn();
    return absl::OkStatus();
  } catch (const std::bad_alloc&) {
    return absl::ResourceExhaustedError(absl::StrCat("FAISS ", what, ": out of memory"));
  } catch (const std::exception& e) {
    return absl::InternalError(absl::StrCat("FAISS ", what, ": ", e.what()));
  }
}

}  // namespace faiss_call
}  // namespace optower

#endif  // OPTOWER_CORE_BASE_FAISS_STATUS_H_
