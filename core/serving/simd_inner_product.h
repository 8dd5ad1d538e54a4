#ifndef OPTOWER_CORE_SERVING_SIMD_INNER_PRODUCT_H_
#define OPTOWER_CORE_SERVING_SIMD_INNER_PRODUCT_H_

// Float inner products with a kernel chosen at run time (scalar, AVX2+FMA or AVX-512).
//
// Why: Debian's libfaiss is built for baseline x86-64, where FAISS's `fvec_inner_product` is a
// scalar loop with one serial dependency (docs/BENCHMARKS.md §4, "What the numbers say" 1): it was
// 54% of the serving cycles. The binary must still run on any x86-64, so the vector kernels are
// compiled per function (`__attribute__((target(...)))`, not global -m flags) and picked once from
// `__builtin_cpu_supports`.
//
// Results differ from a sequential sum by float rounding only (the kernels sum in a different
// order): |error| <= ~d * eps * sum_i |x_i y_i|.

#include <cstddef>

namespace optower {

enum class InnerProductKernel { kScalar, kAvx2Fma, kAvx512 };

// One kernel's functions. Pointers need no alignment; rows of `y` are contiguous (stride d).
struct InnerProductFns {
  InnerProductKernel kernel;
  const char* name;  // "scalar", "avx2_fma", "avx512"
  // <x, y> over d floats.
  float (*one)(const float* x, const float* y, size_t d);
  // out[j] = <x, y + j*d> for j < ny: the query stays in registers across rows and several rows
  // share one horizontal reduction, which is what makes short vectors (d = 64) fast.
  void (*many)(const float* x, const float* y, size_t d, size_t ny, float* out);
};

// The kernel's functions when this CPU (and OS) can run them, else nullptr. kScalar always runs.
const InnerProductFns* InnerProductKernelIfSupported(InnerProductKernel kernel);

// The fastest kernel this CPU supports (AVX-512, then AVX2+FMA, then scalar), chosen on first use.
const InnerProductFns& BestInnerProductKernel();

}  // namespace optower

#endif  // OPTOWER_CORE_SERVING_SIMD_INNER_PRODUCT_H_
