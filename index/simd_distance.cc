#include "index/simd_distance.h"

#include <immintrin.h>

#include <atomic>
#include <cstdlib>

#include "faiss/utils/distances.h"

namespace vecdb::index {
namespace {

// ---- Generic: FAISS's own functions, as Debian builds them. ----

float L2SquaredGeneric(const float* a, const float* b, size_t dimension) {
  return faiss::fvec_L2sqr(a, b, dimension);
}

float InnerProductGeneric(const float* a, const float* b, size_t dimension) {
  return faiss::fvec_inner_product(a, b, dimension);
}

// ---- AVX2 with FMA and AVX-512. ----
//
// One loop per instruction set, shared by both metrics through a Step that
// adds one block's terms to an accumulator: (a - b)^2 or a * b.

#define VECDB_AVX2 __attribute__((target("avx2,fma")))
#define VECDB_AVX512 __attribute__((target("avx512f,avx2,fma")))

struct L2Step {
  VECDB_AVX2 static __m256 Add(__m256 a, __m256 b, __m256 sum) {
    const __m256 d = _mm256_sub_ps(a, b);
    return _mm256_fmadd_ps(d, d, sum);
  }
  VECDB_AVX512 static __m512 Add(__m512 a, __m512 b, __m512 sum) {
    const __m512 d = _mm512_sub_ps(a, b);
    return _mm512_fmadd_ps(d, d, sum);
  }
  static float Add(float a, float b, float sum) {
    return sum + (a - b) * (a - b);
  }
};

struct InnerProductStep {
  VECDB_AVX2 static __m256 Add(__m256 a, __m256 b, __m256 sum) {
    return _mm256_fmadd_ps(a, b, sum);
  }
  VECDB_AVX512 static __m512 Add(__m512 a, __m512 b, __m512 sum) {
    return _mm512_fmadd_ps(a, b, sum);
  }
  static float Add(float a, float b, float sum) { return sum + a * b; }
};

VECDB_AVX2 inline float SumLanes(__m256 sum) {
  __m128 half =
      _mm_add_ps(_mm256_castps256_ps128(sum), _mm256_extractf128_ps(sum, 1));
  half = _mm_add_ps(half, _mm_movehl_ps(half, half));
  half = _mm_add_ss(half, _mm_movehdup_ps(half));
  return _mm_cvtss_f32(half);
}

// GCC 12's own headers warn of uninitialised values inside
// _mm512_reduce_add_ps and the lane shuffles, so the lanes are folded
// through memory into the AVX2 sum.
VECDB_AVX512 inline float SumLanes(__m512 sum) {
  alignas(64) float lanes[16];
  _mm512_store_ps(lanes, sum);
  return SumLanes(
      _mm256_add_ps(_mm256_load_ps(lanes), _mm256_load_ps(lanes + 8)));
}

// Four accumulators of 8 floats keep the FMA units busy. The last
// dimension % 8 floats are added one by one.
template <typename Step>
VECDB_AVX2 float SumAvx2(const float* a, const float* b, size_t dimension) {
  __m256 sum0 = _mm256_setzero_ps();
  __m256 sum1 = _mm256_setzero_ps();
  __m256 sum2 = _mm256_setzero_ps();
  __m256 sum3 = _mm256_setzero_ps();
  size_t i = 0;
  for (; i + 32 <= dimension; i += 32) {
    sum0 = Step::Add(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), sum0);
    sum1 =
        Step::Add(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), sum1);
    sum2 = Step::Add(_mm256_loadu_ps(a + i + 16), _mm256_loadu_ps(b + i + 16),
                     sum2);
    sum3 = Step::Add(_mm256_loadu_ps(a + i + 24), _mm256_loadu_ps(b + i + 24),
                     sum3);
  }
  for (; i + 8 <= dimension; i += 8) {
    sum0 = Step::Add(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), sum0);
  }
  float total = SumLanes(
      _mm256_add_ps(_mm256_add_ps(sum0, sum1), _mm256_add_ps(sum2, sum3)));
  for (; i < dimension; ++i) total = Step::Add(a[i], b[i], total);
  return total;
}

// Two accumulators of 16 floats. The tail is one masked block: its loads
// read only the remaining floats and put zeros in the other lanes.
template <typename Step>
VECDB_AVX512 float SumAvx512(const float* a, const float* b, size_t dimension) {
  __m512 sum0 = _mm512_setzero_ps();
  __m512 sum1 = _mm512_setzero_ps();
  size_t i = 0;
  for (; i + 32 <= dimension; i += 32) {
    sum0 = Step::Add(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), sum0);
    sum1 = Step::Add(_mm512_loadu_ps(a + i + 16), _mm512_loadu_ps(b + i + 16),
                     sum1);
  }
  if (i + 16 <= dimension) {
    sum0 = Step::Add(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), sum0);
    i += 16;
  }
  if (i < dimension) {
    const __mmask16 tail = static_cast<__mmask16>((1u << (dimension - i)) - 1);
    sum1 = Step::Add(_mm512_maskz_loadu_ps(tail, a + i),
                     _mm512_maskz_loadu_ps(tail, b + i), sum1);
  }
  return SumLanes(_mm512_add_ps(sum0, sum1));
}

#undef VECDB_AVX2
#undef VECDB_AVX512

// ---- Choosing a level. ----

constexpr DistanceKernels kKernels[] = {
    {L2SquaredGeneric, InnerProductGeneric},
    {SumAvx2<L2Step>, SumAvx2<InnerProductStep>},
    {SumAvx512<L2Step>, SumAvx512<InnerProductStep>},
};

SimdLevel DetectSimdLevel() {
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f")) return SimdLevel::kAvx512;
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) {
    return SimdLevel::kAvx2;
  }
  return SimdLevel::kGeneric;
}

SimdLevel Lower(SimdLevel a, SimdLevel b) { return a < b ? a : b; }

// Returns the level at start: the supported one, lowered by VECDB_SIMD. An
// unknown value is ignored, and the server logs the active level at start,
// so a misspelt value shows there.
SimdLevel InitialLevel() {
  SimdLevel level = SupportedSimdLevel();
  if (const char* requested = std::getenv("VECDB_SIMD")) {
    if (std::optional<SimdLevel> parsed = ParseSimdLevel(requested)) {
      level = Lower(level, *parsed);
    }
  }
  return level;
}

std::atomic<int>& ActiveLevelSlot() {
  static std::atomic<int> slot(static_cast<int>(InitialLevel()));
  return slot;
}

}  // namespace

SimdLevel SupportedSimdLevel() {
  static const SimdLevel supported = DetectSimdLevel();
  return supported;
}

SimdLevel ActiveSimdLevel() {
  return static_cast<SimdLevel>(
      ActiveLevelSlot().load(std::memory_order_relaxed));
}

SimdLevel SetSimdLevel(SimdLevel level) {
  const SimdLevel active = Lower(level, SupportedSimdLevel());
  ActiveLevelSlot().store(static_cast<int>(active), std::memory_order_relaxed);
  return active;
}

const DistanceKernels& ActiveKernels() {
  return kKernels[static_cast<int>(ActiveSimdLevel())];
}

const DistanceKernels& KernelsFor(SimdLevel level) {
  return kKernels[static_cast<int>(level)];
}

std::string_view SimdLevelName(SimdLevel level) {
  switch (level) {
    case SimdLevel::kGeneric:
      return "generic";
    case SimdLevel::kAvx2:
      return "avx2";
    case SimdLevel::kAvx512:
      return "avx512";
  }
  return "generic";
}

std::optional<SimdLevel> ParseSimdLevel(std::string_view name) {
  for (SimdLevel level :
       {SimdLevel::kGeneric, SimdLevel::kAvx2, SimdLevel::kAvx512}) {
    if (name == SimdLevelName(level)) return level;
  }
  return std::nullopt;
}

}  // namespace vecdb::index
