#ifndef VECDB_INDEX_SIMD_DISTANCE_H_
#define VECDB_INDEX_SIMD_DISTANCE_H_

#include <cstddef>
#include <optional>
#include <string_view>

// Distance kernels between float vectors, compiled for several instruction
// sets and chosen at run time from the CPU's features.
//
// Debian's FAISS is compiled for baseline x86-64 (its compile options read
// GENERIC), so its distance loops cannot use AVX. The kernels here use AVX2
// with FMA or AVX-512 when the CPU has them and FAISS's own functions
// otherwise. The levels add the same terms in different orders, so their
// results agree to float rounding, not bit for bit.
namespace vecdb::index {

// The instruction set of the distance kernels, from slowest to fastest.
enum class SimdLevel { kGeneric, kAvx2, kAvx512 };

// Squared L2 distance or inner product of two vectors of `dimension`
// floats.
using DistanceKernel = float (*)(const float* a, const float* b,
                                 size_t dimension);

struct DistanceKernels {
  DistanceKernel l2_squared;
  DistanceKernel inner_product;
};

// The fastest level this CPU supports.
SimdLevel SupportedSimdLevel();

// The level the kernels use: SupportedSimdLevel(), lowered by the
// environment variable VECDB_SIMD (generic, avx2 or avx512) when it is set
// at the first call, or by SetSimdLevel.
SimdLevel ActiveSimdLevel();

// Makes the kernels use `level`, or SupportedSimdLevel() when the CPU
// lacks it, and returns the level now active. For tests and benchmarks
// that compare levels. An index keeps the kernels that were active when it
// was created or loaded.
SimdLevel SetSimdLevel(SimdLevel level);

// The kernels of the active level.
const DistanceKernels& ActiveKernels();

// The kernels of `level`, which this CPU must support. For tests.
const DistanceKernels& KernelsFor(SimdLevel level);

// "generic", "avx2" or "avx512".
std::string_view SimdLevelName(SimdLevel level);

// The level named by `name` as SimdLevelName spells it, or nothing.
std::optional<SimdLevel> ParseSimdLevel(std::string_view name);

}  // namespace vecdb::index

#endif  // VECDB_INDEX_SIMD_DISTANCE_H_
