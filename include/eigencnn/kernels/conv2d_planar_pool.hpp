// SPDX-License-Identifier: MIT
// eigencnn/kernels/conv2d_planar_pool.hpp
//
// A small CNN's first conv and the 2x2 max pool after it, in one kernel: the conv's output never leaves the
// registers. Few input channels (C*K*K <= 27, the geometries of direct_forward_planar in conv2d_direct.hpp),
// stride 1, output channels in whole 16s, output rows OW of 8 or 24 (two rows in whole vectors, where the
// planes kernel of conv2d_direct_planes.hpp does not apply), float with AVX-512. Unfused, the seed model's
// conv1 writes y_n [16, 24 * 24] (36 KB, more than Zen 4's L1) and the pool reads it back with masked loads,
// 12 of 16 lanes used.
//
// Image x [C, Hp, Wp], already padded; wb = [W | b]^T [R + 1, OC], R = C*K*K, r = (c*K + a)*K + b.
// For pooled row m < PH = OH / 2 and a block of NO output channels, conv rows 2m and 2m + 1 are the 2*OW
// consecutive plane positions p = 2m*OW + t, t < 2*OW: V = 2*OW / 16 runs of 16 (with OW = 24 the middle run
// holds the end of row 2m and the start of row 2m + 1: two masked loads per window value, as in
// direct_forward_planar_run), NO x V accumulators:
//   s[o, t] = sum_r wb[r, o] * x[c, i + a, j + b] + wb[R, o],      (i, j) = position p,  [NO, 2*OW]
// then per channel, pooled column q < PW = OW / 2, two permutes per candidate:
//   a = s[o, 2q], b = s[o, 2q + 1]                (row 2m)
//   c = s[o, OW + 2q], d = s[o, OW + 2q + 1]      (row 2m + 1)
//   out[o, m, q] = the first maximum of a, b, c, d in that order (maxpool2x2_winners), then ReLU if asked
//   arg[o, m, q] = its position in the conv plane [OH, OW] (null arg: not written)
//
// Each s is direct_forward_planar's sum (from zero over r in order, then + bias: bitwise im2col + gemm), and the
// selects are maxpool2x2_plane's, so out and arg are bitwise those of conv -> MaxPool2d(2) [-> ReLU] run apart
// (tests/test_kernels.cpp). With OH odd the last conv row is not computed (the pool drops it).
#pragma once

#include "conv2d_direct.hpp"
#include "gemm.hpp"
#include "maxpool.hpp"

#include <cstdint>

namespace eigencnn {
namespace detail {

/// direct_forward_planar_pool's signature: one image (see above); out [OC, PH, PW], arg likewise or null.
using DirectForwardPlanarPool = void (*)(Index OH, Index Hp, Index Wp, const float* x, const float* wb, Index OC, bool relu,
                                         float* out, std::int32_t* arg);

#if defined(EIGENCNN_GEMM_KERNEL) && defined(__AVX512F__)

/// Pooled row m's NO channels from accumulators s [NO][V] (bias added): out and arg rows of PW = OW / 2 values,
/// channel o's at out + o * PP (PP = PH * PW).
template <int OW, int V, int NO>
inline void planar_pool_rows(const __m512 (&s)[NO][V], Index m, Index PP, bool relu, float* out, std::int32_t* arg) {
    constexpr int top = 0, bottom = OW / 16;  // the runs where rows 2m and 2m + 1 start
    constexpr int top_next = top + 1 < V ? top + 1 : V - 1, bottom_next = bottom + 1 < V ? bottom + 1 : V - 1;
    // a's lane q: 2q of runs (top, top_next); c's: OW % 16 + 2q of runs (bottom, bottom_next); b and d one further.
    // Lanes q >= PW read anything (indices wrap at 32) and are not stored.
    const __m512i twice = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    const __m512i one = _mm512_set1_epi32(1), c_lane = _mm512_add_epi32(twice, _mm512_set1_epi32(OW % 16));
    const __m512i a_at = _mm512_add_epi32(twice, _mm512_set1_epi32(static_cast<std::int32_t>(2 * m * OW)));
    const __m512i c_at = _mm512_add_epi32(a_at, _mm512_set1_epi32(OW));
    constexpr __mmask16 lanes = static_cast<__mmask16>((1u << (OW / 2)) - 1);
#pragma GCC unroll 16
    for (int o = 0; o < NO; ++o) {
        const __m512 a = _mm512_permutex2var_ps(s[o][top], twice, s[o][top_next]);
        const __m512 b = _mm512_permutex2var_ps(s[o][top], _mm512_add_epi32(twice, one), s[o][top_next]);
        const __m512 c = _mm512_permutex2var_ps(s[o][bottom], c_lane, s[o][bottom_next]);
        const __m512 d = _mm512_permutex2var_ps(s[o][bottom], _mm512_add_epi32(c_lane, one), s[o][bottom_next]);
        const Maxpool2x2Winners win = maxpool2x2_winners(a, b, c, d, a_at, c_at);
        // ReLU: max(0, v) returns v when v is NaN or -0 (vmaxps gives its second operand then), as relu_value does
        const __m512 value = relu ? _mm512_max_ps(_mm512_setzero_ps(), win.value) : win.value;
        _mm512_mask_storeu_ps(out + o * PP + m * (OW / 2), lanes, value);
        if (arg) _mm512_mask_storeu_epi32(arg + o * PP + m * (OW / 2), lanes, win.at);
    }
}

/// One pooled row m for output channels o0 .. o0 + NO - 1 (wb, out and arg already at o0).
template <int C, int K, int OW, int NO>
inline void planar_pool_block(const float* x, Index plane, Index Wp, Index m, const float* wb, Index OC, Index PP, bool relu,
                              float* out, std::int32_t* arg) {
    constexpr int V = 2 * OW / 16;
    // run t: plane positions 2m*OW + 16t + l, l < 16; its first in_row lanes in its own row (i, j), the rest at
    // the start of the next row (a run holds at most two rows' positions: OW >= 8)
    Index first[V], second[V];
    __mmask16 first_lanes[V], second_lanes[V];
#pragma GCC unroll 4
    for (int t = 0; t < V; ++t) {
        const int i = 16 * t / OW, j = 16 * t % OW, in_row = OW - j < 16 ? OW - j : 16;
        first[t] = (2 * m + i) * Wp + j;
        second[t] = (2 * m + i + 1) * Wp - in_row;
        first_lanes[t] = static_cast<__mmask16>(in_row == 16 ? 0xffff : (1u << in_row) - 1);
        second_lanes[t] = static_cast<__mmask16>(~first_lanes[t]);
    }
    __m512 s[NO][V];
#pragma GCC unroll 16
    for (int o = 0; o < NO; ++o)
#pragma GCC unroll 4
        for (int t = 0; t < V; ++t) s[o][t] = _mm512_setzero_ps();
    // only the b loop unrolled, as in direct_forward_planar_run (compile time under sanitizers)
#pragma GCC unroll 1
    for (int c = 0; c < C; ++c)
#pragma GCC unroll 1
        for (int a = 0; a < K; ++a)
#pragma GCC unroll 8
            for (int b = 0; b < K; ++b) {
                const float* window = x + c * plane + a * Wp + b;
                __m512 xv[V];
#pragma GCC unroll 4
                for (int t = 0; t < V; ++t) {
                    xv[t] = _mm512_maskz_loadu_ps(first_lanes[t], window + first[t]);
                    if (OW % 16 != 0 && 16 * t % OW + 16 > OW)  // this run crosses into the next row (known at compile time)
                        xv[t] = _mm512_mask_loadu_ps(xv[t], second_lanes[t], window + second[t]);
                }
                const float* w = wb + ((c * K + a) * K + b) * OC;
#pragma GCC unroll 16
                for (int o = 0; o < NO; ++o) {
                    const __m512 wv = _mm512_set1_ps(w[o]);
#pragma GCC unroll 4
                    for (int t = 0; t < V; ++t) s[o][t] = _mm512_fmadd_ps(wv, xv[t], s[o][t]);
                }
            }
    const float* bias = wb + C * K * K * OC;
#pragma GCC unroll 16
    for (int o = 0; o < NO; ++o)
#pragma GCC unroll 4
        for (int t = 0; t < V; ++t) s[o][t] = _mm512_add_ps(s[o][t], _mm512_set1_ps(bias[o]));
    planar_pool_rows<OW, V, NO>(s, m, PP, relu, out, arg);
}

/// out [OC, PH, PW] (and arg) of one image: conv (C, K from the template, stride 1) -> MaxPool2d(2, 2) [-> ReLU].
template <int C, int K, int OW>
void direct_forward_planar_pool(Index OH, Index Hp, Index Wp, const float* x, const float* wb, Index OC, bool relu, float* out,
                                std::int32_t* arg) {
    // NO x V accumulators, V run vectors and a broadcast weight within the 32 registers
    constexpr int V = 2 * OW / 16, NO = V == 1 ? 16 : 8;
    const Index plane = Hp * Wp, PH = OH / 2, PP = PH * (OW / 2);
    for (Index o0 = 0; o0 < OC; o0 += NO)
        for (Index m = 0; m < PH; ++m)
            planar_pool_block<C, K, OW, NO>(x, plane, Wp, m, wb + o0, OC, PP, relu, out + o0 * PP, arg ? arg + o0 * PP : nullptr);
}

/// The fused kernel for this geometry (see the top of the file), or null.
inline DirectForwardPlanarPool direct_forward_planar_pool_kernel(Index C, Index K, Index stride, Index OC, Index OW) {
    if (stride != 1 || OC % kGemmLanes != 0 || (OW != 8 && OW != 24)) return nullptr;
    const bool wide = OW == 24;
    return small_window_kernel(C, K, [wide](auto c, auto k) {
        constexpr int CC = decltype(c)::value, KK = decltype(k)::value;
        return wide ? &direct_forward_planar_pool<CC, KK, 24> : &direct_forward_planar_pool<CC, KK, 8>;
    });
}
#else
/// Without AVX-512 there is none.
inline DirectForwardPlanarPool direct_forward_planar_pool_kernel(Index, Index, Index, Index, Index) { return nullptr; }
#endif

}  // namespace detail
}  // namespace eigencnn
