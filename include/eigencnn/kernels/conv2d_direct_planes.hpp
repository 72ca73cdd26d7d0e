// SPDX-License-Identifier: MIT
// eigencnn/kernels/conv2d_direct_planes.hpp
//
// The direct forward for output rows in whole 16s (OW % 16 == 0), stride 1,
// 1x1, 3x3 and 5x5 windows, any number of input and output channels, float
// with AVX-512: y written in its own planes [OC, P], from the weights in
// their own layout [OC, R] (R = C*K*K). Neither the weights nor the output is
// transposed, where the channel-last kernels (conv2d_direct.hpp) need
// [W | b]^T [R + 1, OC] and write y^T [P, OC].
//
// Image x [C, Hp, Wp], already padded; a run is 16 consecutive positions of
// one output row, p0..p0+15 = (i, j0..j0+15). A block is NV runs x NO output
// channels, NV * NO accumulators, each lane one output:
//   y[o, p0:p0+16] = sum_r w[o, r] * x[c, i + a, j0 + b : j0 + b + 16] + bias[o],   r = (c*K + a)*K + b
// For each window value r: NV loads of 16 input values (one per run), NO
// broadcasts of a weight, NV * NO FMAs; with NV = 4 and NO = 6, 10 loads for
// 24 FMAs, against the channel-last kernels' 10 for 16.
//
// Every output is gemm()'s sum on im2col's column (conv2d_direct.hpp): from
// zero over r in order, then + bias (gemm's fma(b, 1, acc)), so bitwise the
// im2col + gemm result whatever the blocking, and whatever share of the
// channels a thread takes (tests/test_kernels.cpp).
#pragma once

#include "gemm.hpp"

#if defined(EIGENCNN_GEMM_KERNEL) && defined(__AVX512F__)
#include <immintrin.h>
#endif

namespace eigencnn {
namespace detail {

/// direct_forward_planes' signature (a null one where there is no such kernel: without AVX-512).
using DirectForwardPlanes = void (*)(Index C, Index OH, Index OW, Index i0, Index i1, Index Hp, Index Wp, const float* x,
                                     const float* w, Index ldw, const float* bias, Index o0, Index o1, float* y);

#if defined(EIGENCNN_GEMM_KERNEL) && defined(__AVX512F__)

/// One block: NV runs starting at window offsets start[v] (the runs' top-left input, i * Wp + j0) and
/// output positions p[v], for NO output channels (weight rows w, w + ldw, ...; bias, bias + 1, ...).
template <int K, int NV, int NO>
inline void direct_forward_planes_block(Index C, Index plane, Index Wp, const float* x, const Index* start, const Index* p,
                                        const float* w, Index ldw, const float* bias, float* y, Index P) {
    __m512 acc[NO][NV];
#pragma GCC unroll 8
    for (int o = 0; o < NO; ++o)
#pragma GCC unroll 4
        for (int v = 0; v < NV; ++v) acc[o][v] = _mm512_setzero_ps();
    for (Index c = 0; c < C; ++c)
        for (int a = 0; a < K; ++a) {  // not unrolled: as fast, and a shorter compile under sanitizers
            const float* xa = x + c * plane + a * Wp;
            const float* wa = w + (c * K + a) * K;
#pragma GCC unroll 8
            for (int b = 0; b < K; ++b) {
                __m512 xv[NV];
#pragma GCC unroll 4
                for (int v = 0; v < NV; ++v) {
                    xv[v] = _mm512_loadu_ps(xa + start[v] + b);
                    // in a register: else GCC folds the load into each of the NO FMAs, NO loads instead of one
                    __asm__("" : "+v"(xv[v]));
                }
#pragma GCC unroll 8
                for (int o = 0; o < NO; ++o) {
                    const __m512 wv = _mm512_set1_ps(wa[o * ldw + b]);
#pragma GCC unroll 4
                    for (int v = 0; v < NV; ++v) acc[o][v] = _mm512_fmadd_ps(wv, xv[v], acc[o][v]);
                }
            }
        }
#pragma GCC unroll 8
    for (int o = 0; o < NO; ++o)
#pragma GCC unroll 4
        for (int v = 0; v < NV; ++v) _mm512_storeu_ps(y + o * P + p[v], _mm512_add_ps(acc[o][v], _mm512_set1_ps(bias[o])));
}

// NV runs, output channels [o0, o1): blocks of 6 channels, then 2, then 1.
template <int K, int NV>
inline void direct_forward_planes_runs(Index C, Index plane, Index Wp, const float* x, const Index* start, const Index* p,
                                       const float* w, Index ldw, const float* bias, Index o0, Index o1, float* y, Index P) {
    Index o = o0;
    for (; o + 6 <= o1; o += 6)
        direct_forward_planes_block<K, NV, 6>(C, plane, Wp, x, start, p, w + o * ldw, ldw, bias + o, y + o * P, P);
    for (; o + 2 <= o1; o += 2)
        direct_forward_planes_block<K, NV, 2>(C, plane, Wp, x, start, p, w + o * ldw, ldw, bias + o, y + o * P, P);
    if (o < o1) direct_forward_planes_block<K, NV, 1>(C, plane, Wp, x, start, p, w + o * ldw, ldw, bias + o, y + o * P, P);
}

/// y [OC, P]: output rows [i0, i1) of output channels [o0, o1) of one image (see above), P = OH * OW. w [OC, R]
/// with row stride ldw (R, or R + 1 for [W | b]), bias [OC].
template <int K>
void direct_forward_planes(Index C, Index OH, Index OW, Index i0, Index i1, Index Hp, Index Wp, const float* x, const float* w,
                           Index ldw, const float* bias, Index o0, Index o1, float* y) {
    constexpr Index L = kGemmLanes;
    const Index plane = Hp * Wp, P = OH * OW, last = i1 * OW / L;
    Index start[4], p[4];
    auto locate = [&](Index run, int v) {  // run -> its output position and window offset
        p[v] = run * L;
        start[v] = p[v] / OW * Wp + p[v] % OW;
    };
    Index run = i0 * OW / L;
    for (; run + 4 <= last; run += 4) {
        for (int v = 0; v < 4; ++v) locate(run + v, v);
        direct_forward_planes_runs<K, 4>(C, plane, Wp, x, start, p, w, ldw, bias, o0, o1, y, P);
    }
    if (run + 2 <= last) {
        for (int v = 0; v < 2; ++v) locate(run + v, v);
        direct_forward_planes_runs<K, 2>(C, plane, Wp, x, start, p, w, ldw, bias, o0, o1, y, P);
        run += 2;
    }
    if (run < last) {
        locate(run, 0);
        direct_forward_planes_runs<K, 1>(C, plane, Wp, x, start, p, w, ldw, bias, o0, o1, y, P);
    }
}

/// The forward kernel into planes for this geometry (stride 1, K 1, 3 or 5, output rows in whole 16s), or null.
inline DirectForwardPlanes direct_forward_planes_kernel(Index K, Index stride, Index OW) {
    if (stride != 1 || OW % kGemmLanes != 0 || OW == 0) return nullptr;
    if (K == 1) return &direct_forward_planes<1>;
    if (K == 3) return &direct_forward_planes<3>;
    if (K == 5) return &direct_forward_planes<5>;
    return nullptr;
}
#else
/// Without AVX-512 there is none.
inline DirectForwardPlanes direct_forward_planes_kernel(Index, Index, Index) { return nullptr; }
#endif

}  // namespace detail
}  // namespace eigencnn
