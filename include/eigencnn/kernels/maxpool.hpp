// SPDX-License-Identifier: MIT
// eigencnn/kernels/maxpool.hpp
//
// Max-pooling kernels over one plane, used by MaxPool2d and by the fused
// Conv2d -> MaxPool2d step (fusion/conv_pool.hpp).
//
//   maxpool_plane:           in [H, W] -> out [OH, OW], OH = (H - K) / stride + 1,
//                            out[i, j] = max_{a, b < K} in[i*stride + a, j*stride + b],
//                            and the winner's position in the plane into arg [OH, OW]
//                            (the first maximum in row-major order; a NaN wins, as in PyTorch)
//   maxpool_plane_backward:  dx [H*W] = 0, then dx[arg[o]] += dy[o], o in order
//
// The general loop is the reference; 2x2 stride 2 has a select-based
// version (and an AVX-512 one for float) that picks the same winners,
// checked against the general loop in tests/test_design.cpp.
#pragma once

#include "../core/omp.hpp"

#include "../core/tensor.hpp"

#include <algorithm>
#include <cstdint>
#include <type_traits>

#if defined(__AVX512F__)
#include <immintrin.h>
#endif

namespace eigencnn {

/// v replaces the current maximum m: strictly greater, or the first NaN.
template <typename T>
inline bool maxpool_wins(T v, T m) { return !(v <= m) && (m == m); }

#if defined(__AVX512F__)
/// 16 windows' winners: the first maximum of a, b (top row) and c, d (bottom row), in that order
/// (maxpool_wins' selects, lane by lane), and its position from a's and c's (b and d one further).
struct Maxpool2x2Winners {
    __m512 value;
    __m512i at;
};
inline Maxpool2x2Winners maxpool2x2_winners(__m512 a, __m512 b, __m512 c, __m512 d, __m512i a_at, __m512i c_at) {
    // wins(v, m): v is not <= m (or is NaN), and m is not NaN
    const auto wins = [](__m512 v, __m512 m) {
        return static_cast<__mmask16>(_mm512_cmp_ps_mask(v, m, _CMP_NLE_UQ) & _mm512_cmp_ps_mask(m, m, _CMP_ORD_Q));
    };
    const __m512i one = _mm512_set1_epi32(1);
    const __mmask16 wb = wins(b, a), wd = wins(d, c);
    const __m512 top = _mm512_mask_blend_ps(wb, a, b), bottom = _mm512_mask_blend_ps(wd, c, d);
    const __mmask16 wbot = wins(bottom, top);
    const __m512i top_at = _mm512_mask_add_epi32(a_at, wb, a_at, one), bottom_at = _mm512_mask_add_epi32(c_at, wd, c_at, one);
    return {_mm512_mask_blend_ps(wbot, top, bottom), _mm512_mask_blend_epi32(wbot, top_at, bottom_at)};
}

// The same selects, 16 outputs at a time: two masked loads per input row
// (32 floats) split into even and odd columns, so the window's four
// candidates a, b / c, d sit in the same lane. The plain loop below reads
// with stride 2, which the compiler does not vectorize well.
inline void maxpool2x2_plane_avx512(const float* in, Index W, Index OH, Index OW, float* out, std::int32_t* arg) {
    const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    const __m512i odd = _mm512_add_epi32(even, _mm512_set1_epi32(1));
    const __m512i one = _mm512_set1_epi32(1);
    Index i = 0;
    if (W == 8 && OW == 4) {
        // Rows of 8 (the seed model's conv2 output): 16 outputs from four pooled rows at once instead of 4 of
        // 16 lanes per row. Vector k holds input rows 2(i + k) and 2(i + k) + 1; output lane L = 4k + j takes a,
        // b from lanes 2j, 2j + 1 of vector k and c, d from lanes 8 + 2j, 9 + 2j: one permute of vectors 0-1 and
        // one of 2-3 each, joined by 128-bit lanes. The same selects as below.
        const __m512i pick = _mm512_setr_epi32(0, 2, 4, 6, 16, 18, 20, 22, 0, 2, 4, 6, 16, 18, 20, 22);  // a; + 1: b, + 8: c, + 9: d
        const __m512i lane_at = _mm512_setr_epi32(0, 2, 4, 6, 16, 18, 20, 22, 32, 34, 36, 38, 48, 50, 52, 54);  // a's position - 16 i
        const auto gather = [](__m512 v0, __m512 v1, __m512 v2, __m512 v3, __m512i idx) {
            return _mm512_shuffle_f32x4(_mm512_permutex2var_ps(v0, idx, v1), _mm512_permutex2var_ps(v2, idx, v3), 0x44);
        };
        for (; i + 4 <= OH; i += 4) {
            const float* r = in + 2 * i * W;
            const __m512 v0 = _mm512_loadu_ps(r), v1 = _mm512_loadu_ps(r + 16), v2 = _mm512_loadu_ps(r + 32), v3 = _mm512_loadu_ps(r + 48);
            const __m512 a = gather(v0, v1, v2, v3, pick), b = gather(v0, v1, v2, v3, _mm512_add_epi32(pick, one));
            const __m512 c = gather(v0, v1, v2, v3, _mm512_add_epi32(pick, _mm512_set1_epi32(8)));
            const __m512 d = gather(v0, v1, v2, v3, _mm512_add_epi32(pick, _mm512_set1_epi32(9)));
            const __m512i a_at = _mm512_add_epi32(lane_at, _mm512_set1_epi32(static_cast<std::int32_t>(2 * i * W)));
            const Maxpool2x2Winners win = maxpool2x2_winners(a, b, c, d, a_at, _mm512_add_epi32(a_at, _mm512_set1_epi32(8)));
            _mm512_storeu_ps(out + i * OW, win.value);
            if (arg) _mm512_storeu_si512(arg + i * OW, win.at);
        }
    }
    for (; i < OH; ++i) {
        const float* r0 = in + 2 * i * W;
        const float* r1 = r0 + W;
        for (Index j = 0; j < OW; j += 16) {
            const Index n = std::min<Index>(16, OW - j);  // outputs in this chunk, 2n inputs per row
            const __mmask16 m_out = static_cast<__mmask16>(n == 16 ? 0xFFFF : (1u << n) - 1);
            const __mmask16 m_lo = static_cast<__mmask16>(n >= 8 ? 0xFFFF : (1u << (2 * n)) - 1);
            const __mmask16 m_hi = static_cast<__mmask16>(n <= 8 ? 0 : n == 16 ? 0xFFFF : (1u << (2 * n - 16)) - 1);
            const __m512 t_lo = _mm512_maskz_loadu_ps(m_lo, r0 + 2 * j), t_hi = _mm512_maskz_loadu_ps(m_hi, r0 + 2 * j + 16);
            const __m512 b_lo = _mm512_maskz_loadu_ps(m_lo, r1 + 2 * j), b_hi = _mm512_maskz_loadu_ps(m_hi, r1 + 2 * j + 16);
            const __m512 a = _mm512_permutex2var_ps(t_lo, even, t_hi), b = _mm512_permutex2var_ps(t_lo, odd, t_hi);
            const __m512 c = _mm512_permutex2var_ps(b_lo, even, b_hi), d = _mm512_permutex2var_ps(b_lo, odd, b_hi);
            // positions: row*W + 2*(j + lane) (+1 for the odd column)
            const __m512i col = _mm512_add_epi32(_mm512_set1_epi32(static_cast<std::int32_t>(2 * j)), even);
            const __m512i a_at = _mm512_add_epi32(col, _mm512_set1_epi32(static_cast<std::int32_t>(2 * i * W)));
            const __m512i c_at = _mm512_add_epi32(col, _mm512_set1_epi32(static_cast<std::int32_t>((2 * i + 1) * W)));
            const Maxpool2x2Winners win = maxpool2x2_winners(a, b, c, d, a_at, c_at);
            _mm512_mask_storeu_ps(out + i * OW + j, m_out, win.value);
            if (arg) _mm512_mask_storeu_epi32(arg + i * OW + j, m_out, win.at);
        }
    }
}
#endif

// The common 2x2, stride 2 case. Pairs within each row first, then the
// two rows: the result is the first maximum in row-major order, exactly
// as the general loop. Written as selects over contiguous arrays so that
// it vectorizes (the winner's position is random, so branches mispredict).
template <typename T>
void maxpool2x2_plane(const T* in, Index W, Index OH, Index OW, T* out, std::int32_t* arg) {
#if defined(__AVX512F__)
    if constexpr (std::is_same_v<T, float>) {
        maxpool2x2_plane_avx512(in, W, OH, OW, out, arg);
        return;
    }
#endif
    for (Index i = 0; i < OH; ++i) {
        const T* r0 = in + 2 * i * W;
        const T* r1 = r0 + W;
        const std::int32_t row0 = static_cast<std::int32_t>(2 * i * W), row1 = static_cast<std::int32_t>((2 * i + 1) * W);
        EIGENCNN_OMP(simd)
        for (Index j = 0; j < OW; ++j) {
            const T a = r0[2 * j], b = r0[2 * j + 1], c = r1[2 * j], d = r1[2 * j + 1];
            const std::int32_t col = static_cast<std::int32_t>(2 * j);
            const bool wb = maxpool_wins(b, a), wd = maxpool_wins(d, c);
            const T top = wb ? b : a, bottom = wd ? d : c;
            const std::int32_t itop = row0 + col + wb, ibottom = row1 + col + wd;
            const bool wbot = maxpool_wins(bottom, top);
            out[i * OW + j] = wbot ? bottom : top;
            if (arg) arg[i * OW + j] = wbot ? ibottom : itop;
        }
    }
}

/// The general loop over one plane: the reference the 2x2 versions are tested against.
template <typename T>
void maxpool_plane_reference(const T* in, Index H, Index W, Index k, Index stride, T* out, std::int32_t* arg) {
    const Index OH = (H - k) / stride + 1, OW = (W - k) / stride + 1;
    for (Index i = 0; i < OH; ++i)
        for (Index j = 0; j < OW; ++j) {
            Index best = (i * stride) * W + j * stride;
            T m = in[best];
            for (Index a = 0; a < k; ++a)
                for (Index b = 0; b < k; ++b) {
                    const Index at = (i * stride + a) * W + j * stride + b;
                    if (maxpool_wins(in[at], m)) {
                        m = in[at];
                        best = at;
                    }
                }
            out[i * OW + j] = m;
            if (arg) arg[i * OW + j] = static_cast<std::int32_t>(best);
        }
}

/// One plane: in [H, W] -> out [OH, OW], and the winners' positions into arg unless it is null.
template <typename T>
void maxpool_plane(const T* in, Index H, Index W, Index k, Index stride, T* out, std::int32_t* arg) {
    if (k == 2 && stride == 2)
        maxpool2x2_plane(in, W, (H - 2) / 2 + 1, (W - 2) / 2 + 1, out, arg);
    else
        maxpool_plane_reference(in, H, W, k, stride, out, arg);
}

/// One plane's gradient: dx [HW] = 0, then dx[arg[o]] += dy[o] for o < OP in order.
template <typename T>
void maxpool_plane_backward(const T* dy, const std::int32_t* arg, Index OP, T* dx, Index HW) {
    std::fill(dx, dx + HW, T(0));
    for (Index o = 0; o < OP; ++o) dx[arg[o]] += dy[o];
}

}  // namespace eigencnn
