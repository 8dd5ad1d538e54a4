#include "core/serving/simd_inner_product.h"

#include <sys/mman.h>
#include <unistd.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace optower {
namespace {

struct Reference {
  double value;
  double abs_sum;  // sum_i |x_i y_i|: the scale of the rounding error
};

Reference DoubleInnerProduct(const float* x, const float* y, size_t d) {
  Reference r{0.0, 0.0};
  for (size_t i = 0; i < d; ++i) {
    r.value += double(x[i]) * double(y[i]);
    r.abs_sum += std::fabs(double(x[i]) * double(y[i]));
  }
  return r;
}

// Any summation order of d float products is within d * u * sum|x_i y_i| of the exact value
// (u = eps / 2, Higham's bound to first order); d * eps leaves a factor 2 of margin. The tiny
// absolute term covers sums that cancel to ~0.
double Tolerance(const Reference& r, size_t d) {
  return double(d) * std::numeric_limits<float>::epsilon() * r.abs_sum + 1e-30;
}

std::vector<float> RandomFloats(size_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> normal;
  std::vector<float> v(n);
  for (float& f : v) f = normal(rng);
  return v;
}

class InnerProductKernelTest : public ::testing::TestWithParam<InnerProductKernel> {
 protected:
  void SetUp() override {
    fns_ = InnerProductKernelIfSupported(GetParam());
    if (fns_ == nullptr) GTEST_SKIP() << "this CPU cannot run the kernel";
  }
  const InnerProductFns* fns_ = nullptr;
};

// Every dim from 1 to 130 (every remainder mod 8 and 16, several full blocks) at every float
// offset of a 64-byte line, for x and y independently misaligned.
TEST_P(InnerProductKernelTest, OneMatchesDoubleReferenceForAllDimsAndOffsets) {
  const std::vector<float> xs = RandomFloats(130 + 16, 1);
  const std::vector<float> ys = RandomFloats(130 + 16, 2);
  for (size_t d = 1; d <= 130; ++d) {
    for (size_t ox = 0; ox < 16; ox += 3) {
      for (size_t oy = 0; oy < 16; oy += 5) {
        const float* x = xs.data() + ox;
        const float* y = ys.data() + oy;
        const Reference ref = DoubleInnerProduct(x, y, d);
        EXPECT_NEAR(fns_->one(x, y, d), ref.value, Tolerance(ref, d))
            << fns_->name << " d=" << d << " ox=" << ox << " oy=" << oy;
      }
    }
  }
}

// Rows 0..19 (full blocks of 8 plus every remainder) for dims around the vector widths.
TEST_P(InnerProductKernelTest, ManyMatchesDoubleReferenceRowByRow) {
  for (size_t d : {1, 3, 7, 8, 9, 15, 16, 17, 31, 33, 63, 64, 65, 100, 127, 128, 130}) {
    for (size_t ny = 0; ny <= 19; ++ny) {
      const size_t offset = (d + ny) % 7;  // misaligned bases too
      const std::vector<float> xs = RandomFloats(d + offset, 10 + d);
      const std::vector<float> ys = RandomFloats(ny * d + offset, 20 + d * 31 + ny);
      std::vector<float> out(ny + 1, -12345.0f);  // one canary past the end
      fns_->many(xs.data() + offset, ys.data() + offset, d, ny, out.data());
      for (size_t j = 0; j < ny; ++j) {
        const Reference ref = DoubleInnerProduct(xs.data() + offset, ys.data() + offset + j * d, d);
        EXPECT_NEAR(out[j], ref.value, Tolerance(ref, d))
            << fns_->name << " d=" << d << " ny=" << ny << " row=" << j;
      }
      EXPECT_EQ(out[ny], -12345.0f) << "wrote past ny=" << ny;
    }
  }
}

// Large magnitudes with cancellation: the tolerance scales with sum|x_i y_i|, not the result.
TEST_P(InnerProductKernelTest, CancellationStaysWithinRoundingBound) {
  for (size_t d : {2, 17, 64, 129}) {
    std::vector<float> x(d), y(d);
    for (size_t i = 0; i < d; ++i) {
      x[i] = (i % 2 == 0 ? 1.0f : -1.0f) * (1e6f + float(i));
      y[i] = 1e-3f * float(i + 1);
    }
    const Reference ref = DoubleInnerProduct(x.data(), y.data(), d);
    EXPECT_NEAR(fns_->one(x.data(), y.data(), d), ref.value, Tolerance(ref, d)) << d;
    float out = 0.0f;
    fns_->many(x.data(), y.data(), d, 1, &out);
    EXPECT_NEAR(out, ref.value, Tolerance(ref, d)) << d;
  }
}

// Vectors that end exactly at an unreadable page: the tail must not load past the last float
// (masked loads). A read past the end would kill the test with SIGSEGV.
TEST_P(InnerProductKernelTest, DoesNotReadPastTheEnd) {
  const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  void* mem = mmap(nullptr, 2 * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  ASSERT_NE(mem, MAP_FAILED);
  ASSERT_EQ(mprotect(static_cast<char*>(mem) + page, page, PROT_NONE), 0);
  float* end = reinterpret_cast<float*>(static_cast<char*>(mem) + page);
  for (size_t d : {1, 5, 13, 33, 67}) {
    const size_t ny = 3;
    float* y = end - ny * d;
    float* x = y - d;
    for (size_t i = 0; i < (ny + 1) * d; ++i) x[i] = 0.5f + float(i % 5);
    const Reference ref = DoubleInnerProduct(x, y + (ny - 1) * d, d);
    EXPECT_NEAR(fns_->one(x, y + (ny - 1) * d, d), ref.value, Tolerance(ref, d));
    float out[3];
    fns_->many(x, y, d, ny, out);
    EXPECT_NEAR(out[ny - 1], ref.value, Tolerance(ref, d));
  }
  munmap(mem, 2 * page);
}

INSTANTIATE_TEST_SUITE_P(Kernels, InnerProductKernelTest,
                         ::testing::Values(InnerProductKernel::kScalar,
                                           InnerProductKernel::kAvx2Fma,
                                           InnerProductKernel::kAvx512),
                         [](const ::testing::TestParamInfo<InnerProductKernel>& info) {
                           switch (info.param) {
                             case InnerProductKernel::kScalar:
                               return std::string("scalar");
                             case InnerProductKernel::kAvx2Fma:
                               return std::string("avx2_fma");
                             case InnerProductKernel::kAvx512:
                               return std::string("avx512");
                           }
                           return std::string("unknown");
                         });

TEST(BestInnerProductKernelTest, IsTheWidestSupported) {
  const InnerProductFns& best = BestInnerProductKernel();
  EXPECT_EQ(InnerProductKernelIfSupported(best.kernel), &best);
  ASSERT_NE(InnerProductKernelIfSupported(InnerProductKernel::kScalar), nullptr);
  if (InnerProductKernelIfSupported(InnerProductKernel::kAvx512) != nullptr) {
    EXPECT_EQ(best.kernel, InnerProductKernel::kAvx512);
  } else if (InnerProductKernelIfSupported(InnerProductKernel::kAvx2Fma) != nullptr) {
    EXPECT_EQ(best.kernel, InnerProductKernel::kAvx2Fma);
  } else {
    EXPECT_EQ(best.kernel, InnerProductKernel::kScalar);
  }
}

}  // namespace
}  // namespace optower
