// TorchStatus: the one place core's LibTorch code turns torch/c10 exceptions into an absl::Status
// (the model and learning libraries call every torch operation that can throw through it, so no
// exception crosses a library edge). The header itself is torch-free.
// Thread safety: reentrant.
#ifndef OPTOWER_CORE_MODEL_TORCH_STATUS_H_
#define OPTOWER_CORE_MODEL_TORCH_STATUS_H_

#include <functional>

#include "absl/status/status.h"

namespace optower {

// Runs `fn`; a c10::Error or std::exception it throws becomes InternalError("<what>: <message>").
absl::Status TorchStatus(const std::function<void()>& fn, const char* what);

}  // namespace optower

#endif  // OPTOWER_CORE_MODEL_TORCH_STATUS_H_
