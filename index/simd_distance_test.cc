#include "index/simd_distance.h"

#include <cmath>
#include <random>
#include <vector>

#include "gtest/gtest.h"

namespace vecdb::index {
namespace {

std::vector<SimdLevel> SupportedLevels() {
  std::vector<SimdLevel> levels = {SimdLevel::kGeneric};
  if (SupportedSimdLevel() >= SimdLevel::kAvx2) {
    levels.push_back(SimdLevel::kAvx2);
  }
  if (SupportedSimdLevel() >= SimdLevel::kAvx512) {
    levels.push_back(SimdLevel::kAvx512);
  }
  return levels;
}

// Sums in double precision, the reference every level is held to.
double ExactL2Squared(const float* a, const float* b, size_t dimension) {
  double sum = 0;
  for (size_t i = 0; i < dimension; ++i) {
    const double d = static_cast<double>(a[i]) - b[i];
    sum += d * d;
  }
  return sum;
}

double ExactInnerProduct(const float* a, const float* b, size_t dimension) {
  double sum = 0;
  for (size_t i = 0; i < dimension; ++i) {
    sum += static_cast<double>(a[i]) * b[i];
  }
  return sum;
}

// Every dimension from 1 to 130 covers each kernel's main loop, its
// shorter steps and its tail; the larger ones are common embedding sizes.
std::vector<size_t> TestedDimensions() {
  std::vector<size_t> dimensions;
  for (size_t d = 1; d <= 130; ++d) dimensions.push_back(d);
  for (size_t d : {255, 256, 257, 384, 768, 784, 1024, 1536}) {
    dimensions.push_back(d);
  }
  return dimensions;
}

TEST(SimdDistanceTest, EveryLevelMatchesDoublePrecisionSums) {
  std::mt19937 generator(7);
  std::normal_distribution<float> normal;
  // One float of offset makes the loads unaligned.
  std::vector<float> a(1537), b(1537);
  for (float& value : a) value = normal(generator);
  for (float& value : b) value = normal(generator);

  for (SimdLevel level : SupportedLevels()) {
    const DistanceKernels& kernels = KernelsFor(level);
    for (size_t dimension : TestedDimensions()) {
      const float* x = a.data() + 1;
      const float* y = b.data() + 1;
      const double l2 = ExactL2Squared(x, y, dimension);
      const double ip = ExactInnerProduct(x, y, dimension);
      // Float rounding grows with the number of terms; the scale of the
      // inner product's terms is about sqrt(dimension).
      const double tolerance = 1e-5 * dimension;
      EXPECT_NEAR(kernels.l2_squared(x, y, dimension), l2, tolerance)
          << SimdLevelName(level) << " dimension " << dimension;
      EXPECT_NEAR(kernels.inner_product(x, y, dimension), ip, tolerance)
          << SimdLevelName(level) << " dimension " << dimension;
    }
  }
}

TEST(SimdDistanceTest, TailReadsNothingPastTheVector) {
  // A NaN right after the last float of each vector must never reach the
  // sum, whatever the tail handling of the level.
  for (SimdLevel level : SupportedLevels()) {
    const DistanceKernels& kernels = KernelsFor(level);
    for (size_t dimension : {1, 7, 15, 17, 33}) {
      std::vector<float> a(dimension + 1, 1.0f), b(dimension + 1, 3.0f);
      a[dimension] = std::nanf("");
      b[dimension] = std::nanf("");
      EXPECT_FLOAT_EQ(kernels.l2_squared(a.data(), b.data(), dimension),
                      4.0f * dimension)
          << SimdLevelName(level);
      EXPECT_FLOAT_EQ(kernels.inner_product(a.data(), b.data(), dimension),
                      3.0f * dimension)
          << SimdLevelName(level);
    }
  }
}

TEST(SimdDistanceTest, SetLevelCapsAtSupported) {
  const SimdLevel before = ActiveSimdLevel();
  EXPECT_EQ(SetSimdLevel(SimdLevel::kGeneric), SimdLevel::kGeneric);
  EXPECT_EQ(&ActiveKernels(), &KernelsFor(SimdLevel::kGeneric));
  EXPECT_EQ(SetSimdLevel(SimdLevel::kAvx512), SupportedSimdLevel());
  SetSimdLevel(before);
}

TEST(SimdDistanceTest, LevelNamesRoundTrip) {
  for (SimdLevel level :
       {SimdLevel::kGeneric, SimdLevel::kAvx2, SimdLevel::kAvx512}) {
    EXPECT_EQ(ParseSimdLevel(SimdLevelName(level)), level);
  }
  EXPECT_EQ(ParseSimdLevel("sse9"), std::nullopt);
  EXPECT_EQ(ParseSimdLevel(""), std::nullopt);
}

}  // namespace
}  // namespace vecdb::index
