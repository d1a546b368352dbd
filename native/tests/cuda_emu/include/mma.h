// convkit's CUDA emulator: the warp matrix functions (nvcuda::wmma) our tensor-core GEMM uses,
// for TF32 (m16n16k8) and bf16 (m16n16k16) operands with float accumulators.
//
// CUDA leaves the mapping of a fragment's elements to lanes unspecified; kernels may only touch
// them element-wise. The emulator picks its own mapping (lane l holds the tile's row-major
// entries l*n .. l*n+n-1, n = num_elements), so a kernel that assumed the hardware's would fail
// here. Each lane
// loads and stores only its own elements: reading another lane's results from memory without a
// __syncwarp in between reads stale data, as on the hardware. mma_sync is a warp rendezvous
// (every lane must reach it: the deadlock check applies); each lane then computes its own
// outputs from all lanes' operands in fp32, the TF32 operands cut to 10 mantissa bits as the
// tensor cores read them.
#pragma once
#include <cstdint>
#include <cstring>
#include <string>

#include "cuda_bf16.h"
#include "cuda_runtime.h"

namespace ck_emu {
[[noreturn]] void fail(const std::string& what);
}

namespace nvcuda {
namespace wmma {

struct matrix_a {};
struct matrix_b {};
struct accumulator {};
struct row_major {};
struct col_major {};
enum layout_t { mem_row_major, mem_col_major };
namespace precision {
struct tf32 {};
}  // namespace precision

namespace detail {

template <class T>
struct storage {
  using type = T;
};
template <>
struct storage<precision::tf32> {
  using type = float;
};

template <class Use, int M, int N, int K>
struct dims;
template <int M, int N, int K>
struct dims<matrix_a, M, N, K> {
  static constexpr int rows = M, cols = K;
};
template <int M, int N, int K>
struct dims<matrix_b, M, N, K> {
  static constexpr int rows = K, cols = N;
};
template <int M, int N, int K>
struct dims<accumulator, M, N, K> {
  static constexpr int rows = M, cols = N;
};

inline float widen(float v, bool tf32) {
  if (!tf32) return v;
  uint32_t bits;
  std::memcpy(&bits, &v, 4);
  bits &= 0xffffe000u;
  std::memcpy(&v, &bits, 4);
  return v;
}
inline float widen(__nv_bfloat16 v, bool) { return __bfloat162float(v); }

inline float narrow(float v, float*) { return v; }
inline __nv_bfloat16 narrow(float v, __nv_bfloat16*) { return __float2bfloat16(v); }

// The pointer and leading-dimension rules of load/store_matrix_sync.
template <class T>
void check_operand(const T* p, unsigned ldm, const char* what) {
  if (reinterpret_cast<uintptr_t>(p) % 32 != 0)
    ck_emu::fail(std::string(what) + ": the pointer is not 256-bit aligned");
  if ((size_t(ldm) * sizeof(T)) % 16 != 0)
    ck_emu::fail(std::string(what) + ": ldm is not a multiple of 16 bytes");
}

inline unsigned full_warp_lane(const char* what) {
  if (ck_emu::warp_lanes() != 32) ck_emu::fail(std::string(what) + " in a partial warp");
  return ck_emu::lane_id();
}

}  // namespace detail

template <class Use, int M, int N, int K, class T, class Layout = void>
class fragment {
 public:
  using element_type = typename detail::storage<T>::type;
  static constexpr int rows = detail::dims<Use, M, N, K>::rows;
  static constexpr int cols = detail::dims<Use, M, N, K>::cols;
  static constexpr bool tf32 = std::is_same<T, precision::tf32>::value;
  static constexpr int num_elements = rows * cols / 32;
  element_type x[num_elements];
};

template <class Use, int M, int N, int K, class T, class L>
void fill_fragment(fragment<Use, M, N, K, T, L>& f, float v) {
  using E = typename fragment<Use, M, N, K, T, L>::element_type;
  for (int e = 0; e < f.num_elements; ++e) f.x[e] = detail::narrow(v, static_cast<E*>(nullptr));
}

// matrix_a / matrix_b: the layout is the fragment's.
template <class Use, int M, int N, int K, class T, class L, class E>
void load_matrix_sync(fragment<Use, M, N, K, T, L>& f, const E* p, unsigned ldm) {
  static_assert(!std::is_same<Use, accumulator>::value, "an accumulator load needs a layout");
  detail::check_operand(p, ldm, "wmma::load_matrix_sync");
  const unsigned lane = detail::full_warp_lane("wmma::load_matrix_sync");
  using F = fragment<Use, M, N, K, T, L>;
  for (int e = 0; e < F::num_elements; ++e) {
    const int idx = int(lane) * F::num_elements + e, r = idx / F::cols, c = idx % F::cols;
    f.x[e] = std::is_same<L, row_major>::value ? p[size_t(r) * ldm + c] : p[r + size_t(c) * ldm];
  }
}

template <int M, int N, int K>
void load_matrix_sync(fragment<accumulator, M, N, K, float>& f, const float* p, unsigned ldm,
                      layout_t layout) {
  detail::check_operand(p, ldm, "wmma::load_matrix_sync");
  const unsigned lane = detail::full_warp_lane("wmma::load_matrix_sync");
  for (int e = 0; e < f.num_elements; ++e) {
    const int idx = int(lane) * f.num_elements + e, r = idx / N, c = idx % N;
    f.x[e] = layout == mem_row_major ? p[size_t(r) * ldm + c] : p[r + size_t(c) * ldm];
  }
}

template <int M, int N, int K>
void store_matrix_sync(float* p, const fragment<accumulator, M, N, K, float>& f, unsigned ldm,
                       layout_t layout) {
  detail::check_operand(p, ldm, "wmma::store_matrix_sync");
  const unsigned lane = detail::full_warp_lane("wmma::store_matrix_sync");
  for (int e = 0; e < f.num_elements; ++e) {
    const int idx = int(lane) * f.num_elements + e, r = idx / N, c = idx % N;
    (layout == mem_row_major ? p[size_t(r) * ldm + c] : p[r + size_t(c) * ldm]) = f.x[e];
  }
}

// d = a * b + c over the warp: each lane's outputs from every lane's a and b elements.
template <int M, int N, int K, class T, class LA, class LB>
void mma_sync(fragment<accumulator, M, N, K, float>& d, const fragment<matrix_a, M, N, K, T, LA>& a,
              const fragment<matrix_b, M, N, K, T, LB>& b,
              const fragment<accumulator, M, N, K, float>& c) {
  using FA = fragment<matrix_a, M, N, K, T, LA>;
  using FB = fragment<matrix_b, M, N, K, T, LB>;
  struct Operands {
    const FA* a;
    const FB* b;
  };
  const unsigned lane = detail::full_warp_lane("wmma::mma_sync");
  const Operands mine{&a, &b};
  const uint64_t* slots = ck_emu::warp_publish(reinterpret_cast<uintptr_t>(&mine));
  auto lane_ops = [&](int l) { return reinterpret_cast<const Operands*>(uintptr_t(slots[l])); };
  float out[fragment<accumulator, M, N, K, float>::num_elements];
  for (int e = 0; e < d.num_elements; ++e) {
    const int idx = int(lane) * d.num_elements + e, i = idx / N, j = idx % N;
    float sum = c.x[e];
    for (int k = 0; k < K; ++k) {
      const int ia = i * K + k, ib = k * N + j;
      const float av = detail::widen(
          lane_ops(ia / FA::num_elements)->a->x[ia % FA::num_elements], FA::tf32);
      const float bv = detail::widen(
          lane_ops(ib / FB::num_elements)->b->x[ib % FB::num_elements], FB::tf32);
      sum = std::fmaf(av, bv, sum);
    }
    out[e] = sum;
  }
  ck_emu::warp_sync();  // every lane has read the operands before any lane changes them
  for (int e = 0; e < d.num_elements; ++e) d.x[e] = out[e];
}

// Rounds to the nearest TF32 value, ties away from zero (cvt.rna.tf32.f32).
inline float __float_to_tf32(float v) {
  uint32_t bits;
  std::memcpy(&bits, &v, 4);
  if ((bits & 0x7f800000u) != 0x7f800000u) bits = (bits + 0x1000u) & 0xffffe000u;
  std::memcpy(&v, &bits, 4);
  return v;
}

}  // namespace wmma
}  // namespace nvcuda
