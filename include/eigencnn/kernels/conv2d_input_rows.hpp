// SPDX-License-Identifier: MIT
// eigencnn/kernels/conv2d_input_rows.hpp
//
// The input gradient of a stride-1 convolution on small planes, channel-last,
// one dx row at a time, every multiply-add a product of the gradient (no
// padding of dy, so none wasted on zeros).
//
// With x [C, H, W], W [OC, C, K, K], padding p, dy [OC, OH, OW] (H = OH + K - 1 - 2p):
//   dx[c, h, w] = sum over (a, o, b) with i = h + p - a in [0, OH), j = w + p - b in [0, OW) of
//                 W[o, c, a, b] dy[o, i, j]
// Row h of dx, channel-last, lives in registers as OW + K - 1 positions w + p
// (the p at either end are the padding's, dropped) times NV vectors of 16
// channels: for each window row a that reaches it, each o, each b, one vector
// load per channel block of W channel-last, wt [OC, K, K, C], and OW FMAs with
// dy[o, i, j] broadcast from memory, acc[j + b] += dy[o, i, j] * wt[o, a, b, :];
// then each vector's W <= 16 positions are transposed in registers (transpose16)
// into 16 channels' rows, stored with a mask. Rows are independent: threads
// that share an image take rows of it, with no scratch. OW is the template's: the seed model's conv2 has input rows of 12 (12 x 12 -> 8 x 8,
// 5x5), which the planes kernel (rows in 16s) does not take, and im2col's
// dcol = W^T dy_n (a product over only OC = 32) then its fold ran at about 70%
// of oneDNN.
//
// Each dx value is summed over (a, o, b) in that order from zero: the same
// gradient as im2col + col2im's within rounding, and the same on any number of
// threads (a row is one thread's). Float with AVX-512 (gemm.hpp's vectors).
#pragma once

#include "gemm.hpp"
#include "transpose.hpp"

#include <algorithm>

namespace eigencnn {
namespace detail {

/// Rows [h0, h1) of dx [C, H, W] for one image: (C, OC, OH, pad, dy, wt, h0, h1, dx).
using InputGradRows = void (*)(Index, Index, Index, Index, const float*, const float*, Index, Index, float*);

#if defined(EIGENCNN_GEMM_KERNEL) && defined(__AVX512F__)

/// Rows [h0, h1) of dx [C, H, W] (channels [c0, c0 + 16 NV) of them) for one image: dy [OC, OH, OW], wt
/// [OC, K, K, C] (see above). W = OW + K - 1 - 2 pad <= 16, H = OH + K - 1 - 2 pad.
template <int K, int OW, int NV>
void input_grad_rows(Index C, Index OC, Index OH, Index pad, const float* dy, const float* wt, Index c0, Index h0, Index h1,
                     float* dx) {
    constexpr int NWP = OW + K - 1;  // positions w + pad of one dx row
    static_assert(NWP <= 16, "a row of dx in one vector per channel");
    const Index W = NWP - 2 * pad, H = OH + K - 1 - 2 * pad;
    const __mmask16 row_lanes = static_cast<__mmask16>((1u << W) - 1u);
    for (Index h = h0; h < h1; ++h) {
        gemm_vec acc[NWP][NV];
#pragma GCC unroll 32
        for (int q = 0; q < NWP; ++q)
#pragma GCC unroll 2
            for (int v = 0; v < NV; ++v) acc[q][v] = gemm_vec{};
        const Index a_first = std::max<Index>(0, h + pad - (OH - 1)), a_last = std::min<Index>(K - 1, h + pad);
        for (Index a = a_first; a <= a_last; ++a) {
            const Index i = h + pad - a;
            for (Index o = 0; o < OC; ++o) {
                const float* w = wt + (o * K + a) * K * C + c0;
#pragma GCC unroll 8
                for (int b = 0; b < K; ++b) {
                    const float* row = dy + (o * OH + i) * OW;
                    // Opaque to the optimiser: the OW values broadcast from memory in every b, not kept in
                    // registers (with the accumulators, more than there are).
                    __asm__("" : "+r"(row));
                    gemm_vec wv[NV];
#pragma GCC unroll 2
                    for (int v = 0; v < NV; ++v) wv[v] = gemm_load(w + b * C + v * kGemmLanes);
#pragma GCC unroll 16
                    for (int j = 0; j < OW; ++j)
#pragma GCC unroll 2
                        for (int v = 0; v < NV; ++v) acc[j + b][v] = gemm_fma(row[j], wv[v], acc[j + b][v]);
                }
            }
        }
#pragma GCC unroll 2
        for (int v = 0; v < NV; ++v) {  // positions x 16 channels -> 16 channels' rows
            __m512 r[16];
            for (int q = 0; q < 16; ++q) r[q] = q < W ? __m512(acc[q + pad][v]) : _mm512_setzero_ps();
            transpose16(r);
            float* dx_c = dx + ((c0 + v * kGemmLanes) * H + h) * W;
            for (int c = 0; c < 16; ++c) _mm512_mask_storeu_ps(dx_c + c * H * W, row_lanes, r[c]);
        }
    }
}

/// dx rows [h0, h1), every channel block: 32 channels at a time where the accumulators fit, then 16.
template <int K, int OW>
void input_grad_rows_all(Index C, Index OC, Index OH, Index pad, const float* dy, const float* wt, Index h0, Index h1, float* dx) {
    constexpr bool two = (OW + K - 1) * 2 <= 24;  // 2 x positions accumulators, + 2 weight vectors
    Index c0 = 0;
    if constexpr (two)
        for (; c0 + 2 * kGemmLanes <= C; c0 += 2 * kGemmLanes) input_grad_rows<K, OW, 2>(C, OC, OH, pad, dy, wt, c0, h0, h1, dx);
    for (; c0 < C; c0 += kGemmLanes) input_grad_rows<K, OW, 1>(C, OC, OH, pad, dy, wt, c0, h0, h1, dx);
}

/// input_grad_rows_all<K, OW> for this row width, or null.
template <int K>
inline InputGradRows input_grad_rows_for_width(Index OW) {
    switch (OW) {
        case 4: return &input_grad_rows_all<K, 4>;
        case 6: return &input_grad_rows_all<K, 6>;
        case 8: return &input_grad_rows_all<K, 8>;
        case 10: return &input_grad_rows_all<K, 10>;
        case 12: return &input_grad_rows_all<K, 12>;
        default: return nullptr;
    }
}

/// The kernel for this geometry, or null: stride 1, K of 3 or 5, padding below K, output rows of 4 to 12,
/// input channels in 16s.
inline InputGradRows input_grad_rows_kernel(Index C, Index K, Index stride, Index pad, Index OW) {
    if (stride != 1 || C % kGemmLanes != 0 || pad >= K) return nullptr;
    if (K == 3) return input_grad_rows_for_width<3>(OW);
    if (K == 5) return input_grad_rows_for_width<5>(OW);
    return nullptr;
}

#else

inline InputGradRows input_grad_rows_kernel(Index, Index, Index, Index, Index) { return nullptr; }  // float with AVX-512 only

#endif

}  // namespace detail
}  // namespace eigencnn
