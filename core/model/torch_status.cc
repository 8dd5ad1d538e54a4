#include "core/model/torch_status.h"

#include <exception>

#include <c10/util/Exception.h>

#include "absl/strings/str_cat.h"

namespace optower {

absl::Status TorchStatus(const std::function<void()>& fn, const char* what) {
  try {
    fn();
  } catch (const c10::Error& e) {
    return absl::InternalError(absl::StrCat(what, ": ", e.what_without_backtrace()));
  } catch (const std::exception& e) {
    return absl::InternalError(absl::StrCat(what, ": ", e.what()));
  }
  return absl::OkStatus();
}

}  // namespace optower
