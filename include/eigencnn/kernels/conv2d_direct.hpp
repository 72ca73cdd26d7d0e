// SPDX-License-Identifier: MIT
// eigencnn/kernels/conv2d_direct.hpp
//
// Direct kernels for stride-1 3x3 and 5x5 convolutions with output channels
// in whole vectors of 16: small windows (C*K*K values few enough to sit in
// the vector registers) and, streaming the weights or tiling the window
// rows, wider ones; the tiled weight gradient at stride 2 too. Float with
// AVX-512 only; elsewhere (and for every other shape) Conv2d keeps im2col + gemm().
//
// Image x [C, Hp, Wp], already padded; output position p = (i, j), P = OH*OW;
// the window of p, in im2col's row order r = (c*K + a)*K + b:
//   x_p[r] = x[c, i + a, j + b]
// Weight gradient of one image (R + 1 <= 28: all rows at once for 16 output channels o0..o0+15 at a time,
// direct_weight_grad; wider windows a tile of window rows for 32 or 16 channels, direct_weight_grad_streamed), with
// gt = dy_n^T [P, OC] and part = [dW^T; db^T] [R + 1, OC] (R = C*K*K):
//   part[r, o0:o0+16] += sum_p x_p[r] * gt[p, o0:o0+16]        r < R
//   part[R, o0:o0+16] += sum_p gt[p, o0:o0+16]                  (db)
// Forward of one image, channel-last, with wb = [W | b]^T [R + 1, OC]:
//   yT[p, o0:o0+16] = sum_r x_p[r] * wb[r, o0:o0+16], then + wb[R, o0:o0+16]
// or, for R <= 27 (direct_forward_planar, which Conv2d prefers there), straight into planes,
// 16 positions p0..p0+15 at a time:
//   y[o, p0:p0+16] = sum_r wb[r, o] * x_{p0:p0+16}[r], then + wb[R, o]
//
// Both are the very FMAs gemm() does on im2col's columns [col_n; 1], in the
// same order (gemm's sums run over k in order, the bias row last, from zero
// or from the accumulated value), so the results are bitwise those of
// im2col + gemm (tests/test_kernels.cpp checks it). What changes is where the
// operands live: each window value is broadcast straight from the image (a
// load folded into the FMA); for small windows the R + 1 accumulators (weight
// gradient) or the R weight vectors (forward) stay in registers for the whole
// image, for wider ones a tile's accumulators (below); no im2col is written. For the seed model's first conv (1 -> 16, 5x5 on 28x28)
// im2col cost about as much as the product itself.
#pragma once

#include "conv2d_direct_planes.hpp"
#include "gemm.hpp"
#include "transpose.hpp"

#include <algorithm>
#include <cstdint>
#include <type_traits>

namespace eigencnn {
namespace detail {

#if defined(EIGENCNN_GEMM_KERNEL) && defined(__AVX512F__)
#define EIGENCNN_DIRECT_CONV 1

// Where the small-window weight gradient below reads dy_n^T's vector of 16 output channels at output position
// (i, j): from dy_n^T [P, OC] itself (DenseGradient), or, under a max-pool whose windows do not overlap, from the
// pool's output gradient and winners (UnpooledGradient): dy_n is zero but at each window's winner, so the
// vector is the window's dz [16] where its winner is (i, j) and zero elsewhere, the very values a dy_n^T zeroed
// and scattered into would hold (+0 included), without writing it.
struct DenseGradient {
    const float* gt;  // dy_n^T [P, OC]
    Index OW, OC;
    gemm_vec operator()(Index i, Index j, Index o0) const { return gemm_load(gt + (i * OW + j) * OC + o0); }
};
struct UnpooledGradient {
    const float* dzT;            // the pool's output gradient dz_n^T [PH * PW, OC]
    const std::int32_t* argT;    // each window's winner, its position i * OW + j in the conv plane, [PH * PW, OC]
    const Index* window_row;     // per conv output row i: the first element of its windows' rows in dzT, or -1
    const Index* window_column;  // per conv output column j: its window's offset in such a row, or -1
    Index OW;
    gemm_vec operator()(Index i, Index j, Index o0) const {
        if (window_row[i] < 0 || window_column[j] < 0) return gemm_vec{};
        const Index e = window_row[i] + window_column[j] + o0;
        const __mmask16 won = _mm512_cmpeq_epi32_mask(_mm512_loadu_si512(argT + e), _mm512_set1_epi32(static_cast<int>(i * OW + j)));
        return gemm_vec(_mm512_maskz_loadu_ps(won, dzT + e));
    }
};

/// part[R + 1, OC] += the weight and bias gradients of one image (see above), dy_n^T's vectors from `gradient`;
/// C is the template's.
template <int C, int K, typename Gradient>
void direct_weight_grad_from(Index OH, Index OW, Index Hp, Index Wp, const float* x, const Gradient& gradient, Index OC, float* part) {
    constexpr int R = C * K * K;
    const Index plane = Hp * Wp;
    for (Index o0 = 0; o0 < OC; o0 += kGemmLanes) {
        gemm_vec acc[R + 1];
#pragma GCC unroll 32
        for (int r = 0; r <= R; ++r) acc[r] = gemm_load(part + r * OC + o0);
        for (Index i = 0; i < OH; ++i) {
            const float* row = x + i * Wp;
            for (Index j = 0; j < OW; ++j) {
                const gemm_vec gv = gradient(i, j, o0);
                const float* window = row + j;
                // Opaque to the optimiser: GCC's predictive commoning (-O3) otherwise carries the
                // window values over to the next j in registers, spilling most of the accumulators.
                __asm__("" : "+r"(window));
#pragma GCC unroll 4
                for (int c = 0; c < C; ++c)
#pragma GCC unroll 8
                    for (int a = 0; a < K; ++a) {
                        // One pointer per window row, its K values at displacements 0, 4, ... bytes: left with
                        // the whole offset c * plane + a * Wp + b, GCC kept each of the R offsets in a register
                        // of its own, spilled them and reloaded one per FMA (the seed's conv1: 10% slower).
                        const float* window_row = window + c * plane + a * Wp;
                        __asm__("" : "+r"(window_row));
#pragma GCC unroll 8
                        for (int b = 0; b < K; ++b) {
                            const int r = (c * K + a) * K + b;
                            acc[r] = gemm_fma(window_row[b], gv, acc[r]);
                        }
                    }
                acc[R] = acc[R] + gv;  // gemm's fma(1, g, acc): the same rounding
            }
        }
#pragma GCC unroll 32
        for (int r = 0; r <= R; ++r) gemm_store(part + r * OC + o0, acc[r]);
    }
}

/// part[R + 1, OC] += the weight and bias gradients of one image from dy_n^T [P, OC] (see above).
template <int C, int K>
void direct_weight_grad(Index, Index OH, Index OW, Index Hp, Index Wp, const float* x, const float* gt, Index OC, float* part) {
    direct_weight_grad_from<C, K>(OH, OW, Hp, Wp, x, DenseGradient{gt, OW, OC}, OC, part);
}

/// The same from a max-pool's output gradient and winners (UnpooledGradient): bitwise direct_weight_grad on the
/// dy_n^T they stand for.
template <int C, int K>
void direct_weight_grad_unpooled(Index OH, Index OW, Index Hp, Index Wp, const float* x, const UnpooledGradient& gradient, Index OC,
                                 float* part) {
    direct_weight_grad_from<C, K>(OH, OW, Hp, Wp, x, gradient, OC, part);
}

// Wider windows (any C): the weight gradient a tile at a time, each tile the rows r = (c, a, b) of RA window
// rows a0..a0+RA-1 of one channel (all K columns b) x NV vectors of 16 output channels, RA*K*NV accumulators
// over every position in order: per position, NV loads of dy_n^T and RA*K window values broadcast from the
// image. The same FMAs in gemm's order as for the small windows above, so bitwise im2col + gemm; what goes is
// im2col's [R + 1, P] columns, written and then read row by row. Stride S = 2 reads the image padded in two
// phases per row (kernels/conv2d_direct_planes.hpp, pad_phases): x[c, 2i + a, 2j + b] is at row 2i + a, phase
// b % 2, column j + b / 2.
template <int K, int S, int RA, int NV>
inline void direct_weight_grad_tile(Index OH, Index OW, Index Wp, const float* xc, Index a0, const float* gt, Index OC, float* part) {
    constexpr int NR = RA * K;
    Index column[K];  // window column b from the window's start (stride 1: b)
#pragma GCC unroll 8
    for (int b = 0; b < K; ++b) column[b] = phase_column(b, S, Wp);
    gemm_vec acc[NR][NV];
#pragma GCC unroll 32
    for (int r = 0; r < NR; ++r)
#pragma GCC unroll 2
        for (int v = 0; v < NV; ++v) acc[r][v] = gemm_load(part + r * OC + v * kGemmLanes);
    for (Index i = 0; i < OH; ++i) {
        const float* row = xc + (S * i + a0) * Wp;
        const float* g = gt + i * OW * OC;
        for (Index j = 0; j < OW; ++j) {
            gemm_vec gv[NV];
#pragma GCC unroll 2
            for (int v = 0; v < NV; ++v) gv[v] = gemm_load(g + j * OC + v * kGemmLanes);
            const float* window = row + j;
            __asm__("" : "+r"(window));  // as in direct_weight_grad: no window values carried over to the next j
#pragma GCC unroll 4
            for (int a = 0; a < RA; ++a)
#pragma GCC unroll 8
                for (int b = 0; b < K; ++b)
#pragma GCC unroll 2
                    for (int v = 0; v < NV; ++v) acc[a * K + b][v] = gemm_fma(window[a * Wp + column[b]], gv[v], acc[a * K + b][v]);
        }
    }
#pragma GCC unroll 32
    for (int r = 0; r < NR; ++r)
#pragma GCC unroll 2
        for (int v = 0; v < NV; ++v) gemm_store(part + r * OC + v * kGemmLanes, acc[r][v]);
}

// Window rows a0..a0+rows-1 of one channel (rows <= RA, all K columns each) as one tile.
template <int K, int S, int RA, int NV>
inline void direct_weight_grad_rows_tile(int rows, Index OH, Index OW, Index Wp, const float* xc, Index a0, const float* gt, Index OC,
                                         float* part) {
    if constexpr (RA > 1)
        if (rows < RA) return direct_weight_grad_rows_tile<K, S, RA - 1, NV>(rows, OH, OW, Wp, xc, a0, gt, OC, part);
    direct_weight_grad_tile<K, S, RA, NV>(OH, OW, Wp, xc, a0, gt, OC, part);
}

/// Window rows [u0, u1) of part[R + 1, OC] (window row u = c K + a: rows r = u K + b of input channel c, for
/// every b), and its bias row R when `bias`, += the gradients of one image (see above): 32 output channels at a
/// time (18 accumulators for 3x3, 20 for 5x5 two window rows at a time), then 16; each channel's window rows in
/// the share RA at a time; the bias row as gemm's row of ones. x [C, Hp, Wp] (stride 2: in phases); only the
/// channels of the share are read. Threads that share an image each take some window rows (input channels
/// [c0, c1) are rows [c0 K, c1 K)): every element is summed over the positions in order whatever the share,
/// so the result is bitwise direct_weight_grad's and im2col + gemm's.
template <int K, int S = 1>
void direct_weight_grad_rows(Index C, Index u0, Index u1, bool bias, Index OH, Index OW, Index Hp, Index Wp, const float* x,
                             const float* gt, Index OC, float* part) {
    constexpr int RA = K == 3 ? 3 : 2;
    const Index plane = Hp * Wp, R = C * K * K, P = OH * OW;
    for (Index o0 = 0; o0 < OC;) {
        const int vectors = OC - o0 >= 2 * kGemmLanes ? 2 : 1;
        for (Index u = u0; u < u1;) {
            const Index c = u / K, a = u % K;
            const int rows = static_cast<int>(std::min<Index>({RA, K - a, u1 - u}));
            float* part_u = part + u * K * OC + o0;
            if (vectors == 2) direct_weight_grad_rows_tile<K, S, RA, 2>(rows, OH, OW, Wp, x + c * plane, a, gt + o0, OC, part_u);
            else direct_weight_grad_rows_tile<K, S, RA, 1>(rows, OH, OW, Wp, x + c * plane, a, gt + o0, OC, part_u);
            u += rows;
        }
        if (bias) gemm_ones_row(vectors * kGemmLanes, P, gt + o0, OC, part + R * OC + o0);  // db: gemm's row of ones
        o0 += vectors * kGemmLanes;
    }
}

/// part[R + 1, OC] += the weight and bias gradients of one image, any C.
template <int K, int S = 1>
void direct_weight_grad_streamed(Index C, Index OH, Index OW, Index Hp, Index Wp, const float* x, const float* gt, Index OC, float* part) {
    direct_weight_grad_rows<K, S>(C, 0, C * K, true, OH, OW, Hp, Wp, x, gt, OC, part);
}

// NP consecutive output positions of one output row, 16 channels: row points
// at the window's top-left of the first, w holds the R weight vectors.
template <int C, int K, int NP>
inline void direct_forward_positions(const float* row, Index plane, Index Wp, const gemm_vec* w, gemm_vec bias, float* yT, Index OC) {
    __asm__("" : "+r"(row));  // as in direct_weight_grad: no window values carried over between calls
    gemm_vec acc[NP];
#pragma GCC unroll 8
    for (int t = 0; t < NP; ++t) acc[t] = gemm_vec{};
#pragma GCC unroll 4
    for (int c = 0; c < C; ++c)
#pragma GCC unroll 8
        for (int a = 0; a < K; ++a)
#pragma GCC unroll 8
            for (int b = 0; b < K; ++b)
#pragma GCC unroll 8
                for (int t = 0; t < NP; ++t) {
                    const int r = (c * K + a) * K + b;
                    acc[t] = gemm_fma(row[c * plane + a * Wp + t + b], w[r], acc[t]);
                }
#pragma GCC unroll 8
    for (int t = 0; t < NP; ++t) gemm_store(yT + t * OC, acc[t] + bias);  // gemm's bias row: fma(b, 1, acc)
}

/// yT [P, OC] = the forward of one image, channel-last (see above); C is the template's.
template <int C, int K>
void direct_forward(Index, Index OH, Index OW, Index Hp, Index Wp, const float* x, const float* wb, Index OC, float* yT) {
    constexpr int R = C * K * K;
    constexpr int NP = R <= 9 ? 8 : 6;  // accumulators beside the R weight vectors, out of 32 registers
    const Index plane = Hp * Wp;
    for (Index o0 = 0; o0 < OC; o0 += kGemmLanes) {
        gemm_vec w[R];
#pragma GCC unroll 32
        for (int r = 0; r < R; ++r) w[r] = gemm_load(wb + r * OC + o0);
        const gemm_vec bias = gemm_load(wb + R * OC + o0);
        for (Index i = 0; i < OH; ++i) {
            const float* row = x + i * Wp;
            float* y = yT + i * OW * OC + o0;
            Index j = 0;
            for (; j + NP <= OW; j += NP) direct_forward_positions<C, K, NP>(row + j, plane, Wp, w, bias, y + j * OC, OC);
            for (; j < OW; ++j) direct_forward_positions<C, K, 1>(row + j, plane, Wp, w, bias, y + j * OC, OC);
        }
    }
}

// Few input channels (C*K*K <= 27: the first layer of a model): the forward straight into planes, y [OC, P],
// vectorised over 16 output positions instead of over 16 channels. For each run of 16 positions (in the
// plane's row-major order) and block of 16 channels, 16 accumulators (one per channel) take one FMA per
// window value each: the window values of the 16 positions are one load (two masked ones where the run
// crosses into the next output row), each weight a broadcast. Same sums in the same order (from zero over r,
// then + b), so bitwise the channel-last kernel above. Lanes past the plane are neither loaded nor stored.
template <int C, int K>
inline void direct_forward_planar_run(const float* x, Index plane, Index Wp, Index first, __mmask16 first_lanes, Index second,
                                      __mmask16 second_lanes, const float* wb, Index OC, float* y, Index P) {
    gemm_vec acc[kGemmLanes];
#pragma GCC unroll 16
    for (int o = 0; o < kGemmLanes; ++o) acc[o] = gemm_vec{};
    // only the b loop unrolled: as fast, and a compile under sanitizers (clang -O1 with ASan) 57 -> 30 s
#pragma GCC unroll 1
    for (int c = 0; c < C; ++c)
#pragma GCC unroll 1
        for (int a = 0; a < K; ++a)
#pragma GCC unroll 8
            for (int b = 0; b < K; ++b) {
                const int r = (c * K + a) * K + b;
                const float* window = x + c * plane + a * Wp + b;
                __m512 xv = _mm512_maskz_loadu_ps(first_lanes, window + first);
                if (second_lanes) xv = _mm512_mask_loadu_ps(xv, second_lanes, window + second);
                const float* w = wb + r * OC;
#pragma GCC unroll 16
                for (int o = 0; o < kGemmLanes; ++o) acc[o] = gemm_fma(w[o], xv, acc[o]);
            }
    const float* bias = wb + C * K * K * OC;
    const __mmask16 lanes = first_lanes | second_lanes;
#pragma GCC unroll 16
    for (int o = 0; o < kGemmLanes; ++o) _mm512_mask_storeu_ps(y + o * P, lanes, acc[o] + _mm512_set1_ps(bias[o]));
}

/// The units of work of direct_forward_planar (see below): runs of 16 positions, or rows when they are narrower.
inline Index direct_forward_planar_units(Index OH, Index OW) { return OW >= kGemmLanes ? (OH * OW + kGemmLanes - 1) / kGemmLanes : OH; }

/// y [OC, OH * OW] (units [u0, u1) of it: threads that share an image each take some) = the forward of one
/// image, few input channels.
template <int C, int K>
void direct_forward_planar(Index OH, Index OW, Index Hp, Index Wp, const float* x, const float* wb, Index OC, float* y, Index u0,
                           Index u1) {
    const Index plane = Hp * Wp, P = OH * OW;
    auto mask = [](Index lanes) { return lanes >= kGemmLanes ? __mmask16(0xffff) : __mmask16((1u << lanes) - 1); };
    for (Index o0 = 0; o0 < OC; o0 += kGemmLanes) {
        if (OW >= kGemmLanes)  // a run covers the rest of its row and the start of the next
            for (Index p = u0 * kGemmLanes; p < std::min(P, u1 * kGemmLanes); p += kGemmLanes) {
                const Index i = p / OW, j = p % OW, in_row = std::min<Index>(OW - j, kGemmLanes), in_plane = std::min<Index>(P - p, kGemmLanes);
                const __mmask16 first = mask(std::min(in_row, in_plane)), all = mask(in_plane);
                // lane l >= in_row is position (i + 1, l - in_row): its window starts (i + 1) * Wp + l - in_row
                direct_forward_planar_run<C, K>(x, plane, Wp, i * Wp + j, first, (i + 1) * Wp - in_row, __mmask16(all & ~first),
                                                wb + o0, OC, y + o0 * P + p, P);
            }
        else  // narrow rows: one run per row, masked
            for (Index i = u0; i < u1; ++i)
                direct_forward_planar_run<C, K>(x, plane, Wp, i * Wp, mask(OW), 0, 0, wb + o0, OC, y + o0 * P + i * OW, P);
    }
}

// Wider windows (C*K*K > 25, e.g. the seed model's conv2: 16 x 5 x 5 = 400) leave no room for the weights in
// registers: the weights are read from wb as they are needed instead (two vectors per window value, from L1 or
// L2), and the registers hold the accumulators of NP positions x V vectors of 16 channels. Same FMAs, same
// order, so also bitwise im2col + gemm; what goes is im2col's [R + 1, P] columns, written and read once each.
template <int K, int NP, int V>
inline void direct_forward_streamed_positions(const float* row, Index C, Index plane, Index Wp, const float* wb, Index OC,
                                              float* yT) {
    gemm_vec acc[V][NP];
#pragma GCC unroll 8
    for (int t = 0; t < NP; ++t)
#pragma GCC unroll 2
        for (int v = 0; v < V; ++v) acc[v][t] = gemm_vec{};
    for (Index c = 0; c < C; ++c) {
        const float* xc = row + c * plane;
        const float* wc = wb + c * K * K * OC;
        for (int a = 0; a < K; ++a)  // not unrolled: as fast, and a fifth of the code (compile time under sanitizers)
#pragma GCC unroll 8
            for (int b = 0; b < K; ++b) {
                gemm_vec w[V];
#pragma GCC unroll 2
                for (int v = 0; v < V; ++v) w[v] = gemm_load(wc + (a * K + b) * OC + v * kGemmLanes);
#pragma GCC unroll 8
                for (int t = 0; t < NP; ++t)
#pragma GCC unroll 2
                    for (int v = 0; v < V; ++v) acc[v][t] = gemm_fma(xc[a * Wp + t + b], w[v], acc[v][t]);
            }
    }
    const float* bias = wb + C * K * K * OC;
#pragma GCC unroll 8
    for (int t = 0; t < NP; ++t)
#pragma GCC unroll 2
        for (int v = 0; v < V; ++v) gemm_store(yT + t * OC + v * kGemmLanes, acc[v][t] + gemm_load(bias + v * kGemmLanes));
}

// One output row's positions for V vectors of channels: 8 at a time, then the remainder as 4, 2 and 1.
template <int K, int V>
inline void direct_forward_streamed_row(const float* row, Index C, Index plane, Index Wp, Index OW, const float* wb, Index OC,
                                        float* yT) {
    Index j = 0;  // V * 8 accumulators: 16 with two vectors
    for (; j + 8 <= OW; j += 8) direct_forward_streamed_positions<K, 8, V>(row + j, C, plane, Wp, wb, OC, yT + j * OC);
    if (j + 4 <= OW) direct_forward_streamed_positions<K, 4, V>(row + j, C, plane, Wp, wb, OC, yT + j * OC), j += 4;
    if (j + 2 <= OW) direct_forward_streamed_positions<K, 2, V>(row + j, C, plane, Wp, wb, OC, yT + j * OC), j += 2;
    if (j < OW) direct_forward_streamed_positions<K, 1, V>(row + j, C, plane, Wp, wb, OC, yT + j * OC);
}

/// yT [P, OC] = the forward of one image, channel-last, weights streamed (any C; K from the template).
template <int K>
void direct_forward_streamed(Index C, Index OH, Index OW, Index Hp, Index Wp, const float* x, const float* wb, Index OC, float* yT) {
    const Index plane = Hp * Wp;
    for (Index i = 0; i < OH; ++i) {
        Index o0 = 0;
        for (; o0 + 2 * kGemmLanes <= OC; o0 += 2 * kGemmLanes)
            direct_forward_streamed_row<K, 2>(x + i * Wp, C, plane, Wp, OW, wb + o0, OC, yT + i * OW * OC + o0);
        for (; o0 < OC; o0 += kGemmLanes)
            direct_forward_streamed_row<K, 1>(x + i * Wp, C, plane, Wp, OW, wb + o0, OC, yT + i * OW * OC + o0);
    }
}

using DirectWeightGrad = void (*)(Index, Index, Index, Index, Index, const float*, const float*, Index, float*);
using DirectWeightGradRows = void (*)(Index, Index, Index, bool, Index, Index, Index, Index, const float*, const float*, Index,
                                          float*);
using DirectForward = void (*)(Index, Index, Index, Index, Index, const float*, const float*, Index, float*);
using DirectForwardPlanar = void (*)(Index, Index, Index, Index, const float*, const float*, Index, float*, Index, Index);

/// The small windows (C*K*K <= 27: few input channels, the first conv of a model) whose kernels keep a whole
/// window's weights or gradient accumulators in registers: pick(C, K), both as std::integral_constant, for the
/// one this geometry is, or null. One list for every kernel of that kind (the weight gradient's, read from
/// dy_n^T or a pool's winners; the forward into planes; with its pool, kernels/conv2d_planar_pool.hpp).
template <typename Pick>
auto small_window_kernel(Index C, Index K, Pick pick)
    -> decltype(pick(std::integral_constant<int, 1>{}, std::integral_constant<int, 3>{})) {
    using one = std::integral_constant<int, 1>;
    using two = std::integral_constant<int, 2>;
    using three = std::integral_constant<int, 3>;
    using five = std::integral_constant<int, 5>;
    if (C == 1 && K == 3) return pick(one{}, three{});
    if (C == 1 && K == 5) return pick(one{}, five{});
    if (C == 2 && K == 3) return pick(two{}, three{});
    if (C == 3 && K == 3) return pick(three{}, three{});  // the weight gradient: 28 accumulators
    return nullptr;
}

/// The weight-gradient kernel for this geometry, or null (then: im2col + gemm). Stride 2 reads the image in
/// phases (pad_phases).
inline DirectWeightGrad direct_weight_grad_kernel(Index C, Index K, Index stride, Index OC) {
    if (OC % kGemmLanes != 0) return nullptr;
    if (stride == 2) {
        if (K == 3) return &direct_weight_grad_streamed<3, 2>;
        if (K == 5) return &direct_weight_grad_streamed<5, 2>;
        return nullptr;
    }
    if (stride != 1) return nullptr;
    const auto small = small_window_kernel(C, K, [](auto c, auto k) { return &direct_weight_grad<decltype(c)::value, decltype(k)::value>; });
    if (small) return small;
    if (K == 3) return &direct_weight_grad_streamed<3>;
    if (K == 5) return &direct_weight_grad_streamed<5>;
    return nullptr;
}

using DirectWeightGradUnpooled = void (*)(Index, Index, Index, Index, const float*, const UnpooledGradient&, Index, float*);

/// direct_weight_grad_unpooled for this geometry (the small windows of direct_weight_grad), or null.
inline DirectWeightGradUnpooled direct_weight_grad_unpooled_kernel(Index C, Index K, Index stride, Index OC) {
    if (stride != 1 || OC % kGemmLanes != 0) return nullptr;
    return small_window_kernel(C, K, [](auto c, auto k) { return &direct_weight_grad_unpooled<decltype(c)::value, decltype(k)::value>; });
}

/// The weight-gradient kernel by window rows for this geometry (any C), or null: for images shared among threads.
inline DirectWeightGradRows direct_weight_grad_rows_kernel(Index K, Index stride, Index OC) {
    if (OC % kGemmLanes != 0) return nullptr;
    if (stride == 2) {
        if (K == 3) return &direct_weight_grad_rows<3, 2>;
        if (K == 5) return &direct_weight_grad_rows<5, 2>;
        return nullptr;
    }
    if (stride != 1) return nullptr;
    if (K == 3) return &direct_weight_grad_rows<3>;
    if (K == 5) return &direct_weight_grad_rows<5>;
    return nullptr;
}

/// The forward kernel straight into planes for this geometry, or null: up to 27 window values.
inline DirectForwardPlanar direct_forward_planar_kernel(Index C, Index K, Index stride, Index OC) {
    if (stride != 1 || OC % kGemmLanes != 0) return nullptr;
    return small_window_kernel(C, K, [](auto c, auto k) { return &direct_forward_planar<decltype(c)::value, decltype(k)::value>; });
}

/// The forward kernel for this geometry, or null. Up to 25 window values: R weight vectors and 6 accumulators
/// in registers; wider 3x3 and 5x5 windows: the weights streamed.
inline DirectForward direct_forward_kernel(Index C, Index K, Index stride, Index OC) {
    if (stride != 1 || OC % kGemmLanes != 0) return nullptr;
    if (C == 1 && K == 3) return &direct_forward<1, 3>;
    if (C == 1 && K == 5) return &direct_forward<1, 5>;
    if (C == 2 && K == 3) return &direct_forward<2, 3>;
    if (K == 3) return &direct_forward_streamed<3>;
    if (K == 5) return &direct_forward_streamed<5>;
    return nullptr;
}
#endif

/// Whether Conv2d<float> runs one of this header's direct kernels for this geometry (the forward's, or the weight
/// gradient's): never without AVX-512 (EIGENCNN_DIRECT_CONV), where it keeps im2col + gemm. Output rows in 16s take
/// the forward of conv2d_direct_planes.hpp instead (direct_forward_planes_kernel), whatever this says.
inline bool direct_conv_runs(Index C, Index K, Index stride, Index OC, bool forward) {
#ifdef EIGENCNN_DIRECT_CONV
    return forward ? direct_forward_kernel(C, K, stride, OC) != nullptr : direct_weight_grad_kernel(C, K, stride, OC) != nullptr;
#else
    (void)C, (void)K, (void)stride, (void)OC, (void)forward;
    return false;
#endif
}

}  // namespace detail
}  // namespace eigencnn
