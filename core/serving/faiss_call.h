// The two rules every FAISS call in core/serving follows, shared by the ItemIndex's files:
// CallFaiss (core/base/faiss_status.h) is the one place FAISS exceptions become a Status, and
// ScopedOmpThreads limits OpenMP for the calling thread only.
#ifndef OPTOWER_CORE_SERVING_FAISS_CALL_H_
#define OPTOWER_CORE_SERVING_FAISS_CALL_H_

#include <omp.h>

#include "core/base/faiss_status.h"

namespace optower {
namespace faiss_call {

// omp_set_num_threads changes the nthreads ICV of the calling thread only (OpenMP 4.5 §2.3.1: the
// ICV has data-environment scope, and every non-OpenMP thread has its own initial task), so
// setting and restoring it here cannot affect other request threads.
class ScopedOmpThreads {
 public:
  explicit ScopedOmpThreads(int threads) : saved_(omp_get_max_threads()), active_(threads > 0) {
    if (active_ && threads != saved_) omp_set_num_threads(threads);
  }
  ~ScopedOmpThreads() {
    if (active_) omp_set_num_threads(saved_);
  }
  ScopedOmpThreads(const ScopedOmpThreads&) = delete;
  ScopedOmpThreads& operator=(const ScopedOmpThreads&) = delete;

 private:
  int saved_;
  bool active_;
};

}  // namespace faiss_call
}  // namespace optower

#endif  // OPTOWER_CORE_SERVING_FAISS_CALL_H_
