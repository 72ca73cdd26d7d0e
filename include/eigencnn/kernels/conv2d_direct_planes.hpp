// SPDX-License-Identifier: MIT
// eigencnn/kernels/conv2d_direct_planes.hpp
//
// The direct forward for output rows in whole 16s (OW % 16 == 0), stride 1 or
// 2, 1x1, 3x3 and 5x5 windows, any number of input and output channels, float
// with AVX-512: y written in its own planes [OC, P], from the weights in
// their own layout [OC, R] (R = C*K*K). Neither the weights nor the output is
// transposed, where the channel-last kernels (conv2d_direct.hpp) need
// [W | b]^T [R + 1, OC] and write y^T [P, OC].
//
// Image x [C, Hp, Wp], already padded; a run is 16 consecutive positions of
// one output row, p0..p0+15 = (i, j0..j0+15). A block is NV runs x NO output
// channels, NV * NO accumulators, each lane one output:
//   y[o, p0:p0+16] = sum_r w[o, r] * x[c, i + a, j0 + b : j0 + b + 16] + bias[o],   r = (c*K + a)*K + b
// Stride S = 2 reads every other column: there the padded rows are stored in
// two phases, row r as [x[c, r, 0], x[c, r, 2], ...; x[c, r, 1], x[c, r, 3], ...],
// each Wp / 2 long (pad_phases below), so that the 16 inputs of a run for
// window column b are again 16 consecutive values, at phase b % 2, offset b / 2:
//   y[o, i, j] = sum_r w[o, r] * x[c, 2i + a, 2j + b] = ... x_phase(b % 2)[c, 2i + a, j + b / 2]
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

#include <algorithm>
#include <type_traits>

#if defined(EIGENCNN_GEMM_KERNEL) && defined(__AVX512F__)
#include <immintrin.h>
#endif

namespace eigencnn {
namespace detail {

struct PlanesPackBuffer;  // the 1x1 kernel's packed runs: its own aligned_thread_buffer (kernels/gemm.hpp)

/// direct_forward_planes' signature (a null one where there is no such kernel: without AVX-512).
using DirectForwardPlanes = void (*)(Index C, Index OH, Index OW, Index i0, Index i1, Index Hp, Index Wp, const float* x,
                                     const float* w, Index ldw, const float* bias, Index o0, Index o1, float* y);

/// Where window column b's inputs start in a padded row, from the window's first input: b at stride 1; at
/// stride 2, in the row's phase b % 2 (each pitch / 2 long), at b / 2 (the layout pad_phases writes, below).
/// The stride-2 forward here and weight gradient (conv2d_direct.hpp) both read the image this way.
constexpr Index phase_column(int b, int S, Index pitch) { return b % S * (pitch / S) + b / S; }

#if defined(EIGENCNN_GEMM_KERNEL) && defined(__AVX512F__)

/// One block: NV runs starting at window offsets start[v] (the runs' top-left input, i * Wp + j0) and
/// output positions p[v], for NO output channels (weight rows w, w + ldw, ...; bias, bias + 1, ...).
template <int KH, int KW, int S, int NV, int NO>
inline void direct_forward_planes_block(Index C, Index plane, Index Wp, const float* x, const Index* start, const Index* p,
                                        const float* w, Index ldw, const float* bias, float* y, Index P) {
    Index column[KW];  // window column b's first input of a run, from the run's start in the row (stride 1: b)
#pragma GCC unroll 8
    for (int b = 0; b < KW; ++b) column[b] = phase_column(b, S, Wp);
    __m512 acc[NO][NV];
#pragma GCC unroll 8
    for (int o = 0; o < NO; ++o)
#pragma GCC unroll 4
        for (int v = 0; v < NV; ++v) acc[o][v] = _mm512_setzero_ps();
    for (Index c = 0; c < C; ++c)
        for (int a = 0; a < KH; ++a) {  // not unrolled: as fast, and a shorter compile under sanitizers
            const float* xa = x + c * plane + a * Wp;
            const float* wa = w + (c * KH + a) * KW;
#pragma GCC unroll 8
            for (int b = 0; b < KW; ++b) {
                __m512 xv[NV];
#pragma GCC unroll 4
                for (int v = 0; v < NV; ++v) {
                    xv[v] = _mm512_loadu_ps(xa + start[v] + column[b]);
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

// A block's output channels and runs: 24 accumulators, 4 loads of inputs and 6 broadcasts of weights for
// 24 FMAs. 8 x 3 ran as fast on most shapes here (and 8% faster with 16 output channels: no blocks of 2), 5 x 5
// and 7 x 4 slower (GCC spilled their registers).
constexpr int kPlanesBlockChannels = 6, kPlanesBlockRuns = 4;

// NV runs, output channels [o0, o1): blocks of kPlanesBlockChannels, then 2, then 1.
template <int KH, int KW, int S, int NV>
inline void direct_forward_planes_runs(Index C, Index plane, Index Wp, const float* x, const Index* start, const Index* p,
                                       const float* w, Index ldw, const float* bias, Index o0, Index o1, float* y, Index P) {
    constexpr int NO = kPlanesBlockChannels;
    Index o = o0;
    for (; o + NO <= o1; o += NO)
        direct_forward_planes_block<KH, KW, S, NV, NO>(C, plane, Wp, x, start, p, w + o * ldw, ldw, bias + o, y + o * P, P);
    for (; o + 2 <= o1; o += 2)
        direct_forward_planes_block<KH, KW, S, NV, 2>(C, plane, Wp, x, start, p, w + o * ldw, ldw, bias + o, y + o * P, P);
    if (o < o1) direct_forward_planes_block<KH, KW, S, NV, 1>(C, plane, Wp, x, start, p, w + o * ldw, ldw, bias + o, y + o * P, P);
}

/// y [OC, P]: output rows [i0, i1) of output channels [o0, o1) of one image (see above), P = OH * OW. w [OC, R]
/// with row stride ldw (R, or R + 1 for [W | b]), bias [OC]. x [C, Hp, Wp] (stride 2: in phases, Wp even).
/// A KH x KW window (r = (c*KH + a)*KW + b); direct_forward_planes<K, S> below is the square one.
template <int KH, int KW, int S>
void direct_forward_planes_window(Index C, Index OH, Index OW, Index i0, Index i1, Index Hp, Index Wp, const float* x,
                                  const float* w, Index ldw, const float* bias, Index o0, Index o1, float* y) {
    constexpr Index L = kGemmLanes;
    const Index plane = Hp * Wp, P = OH * OW, last = i1 * OW / L;
    constexpr int NV = kPlanesBlockRuns;
    Index start[NV], p[NV];
    auto locate = [&](Index run, int v) {  // run -> its output position and window offset
        p[v] = run * L;
        start[v] = p[v] / OW * S * Wp + p[v] % OW;
    };
    Index run = i0 * OW / L;
    if constexpr (KH == 1 && KW == 1 && S == 1) {
        // A 1x1 window: each group of runs' inputs packed, [C, NV x 16], before the blocks of output channels
        // read them. In place they sit a plane apart, and a plane of 16 x 16 (1 KB) puts every channel's
        // vectors in the same quarter of L1's sets: 64 channels overflow its ways, and each block of
        // channels read them again from L2 (as gemm's panels, kernels/gemm.hpp). The same values in the
        // same order: the same bits.
        float* packed = aligned_thread_buffer<PlanesPackBuffer>(C * NV * L);
        Index packed_start[NV];
        for (int v = 0; v < NV; ++v) packed_start[v] = v * L;
        for (; run + NV <= last; run += NV) {
            for (int v = 0; v < NV; ++v) locate(run + v, v);
            for (Index c = 0; c < C; ++c)
#pragma GCC unroll 4
                for (int v = 0; v < NV; ++v) _mm512_storeu_ps(packed + (c * NV + v) * L, _mm512_loadu_ps(x + c * plane + start[v]));
            direct_forward_planes_runs<1, 1, 1, NV>(C, NV * L, NV * L, packed, packed_start, p, w, ldw, bias, o0, o1, y, P);
        }
    }
    for (; run + NV <= last; run += NV) {
        for (int v = 0; v < NV; ++v) locate(run + v, v);
        direct_forward_planes_runs<KH, KW, S, NV>(C, plane, Wp, x, start, p, w, ldw, bias, o0, o1, y, P);
    }
    for (; run + 2 <= last; run += 2) {
        for (int v = 0; v < 2; ++v) locate(run + v, v);
        direct_forward_planes_runs<KH, KW, S, 2>(C, plane, Wp, x, start, p, w, ldw, bias, o0, o1, y, P);
    }
    if (run < last) {
        locate(run, 0);
        direct_forward_planes_runs<KH, KW, S, 1>(C, plane, Wp, x, start, p, w, ldw, bias, o0, o1, y, P);
    }
}

template <int K, int S>
void direct_forward_planes(Index C, Index OH, Index OW, Index i0, Index i1, Index Hp, Index Wp, const float* x, const float* w,
                           Index ldw, const float* bias, Index o0, Index o1, float* y) {
    direct_forward_planes_window<K, K, S>(C, OH, OW, i0, i1, Hp, Wp, x, w, ldw, bias, o0, o1, y);
}

/// The stride-1 kernel for a KH x KW window, KH and KW from 1 to 3 and apart by at most 1 (the phases of a
/// stride-2 input gradient: ceil(K/2) or floor(K/2) taps a side), or null.
inline DirectForwardPlanes direct_forward_planes_window_kernel(Index KH, Index KW) {
    if (KH < 1 || KH > 3 || KW < 1 || KW > 3 || KH - KW > 1 || KW - KH > 1) return nullptr;
    static constexpr DirectForwardPlanes kernels[3][3] = {
        {&direct_forward_planes_window<1, 1, 1>, &direct_forward_planes_window<1, 2, 1>, nullptr},
        {&direct_forward_planes_window<2, 1, 1>, &direct_forward_planes_window<2, 2, 1>, &direct_forward_planes_window<2, 3, 1>},
        {nullptr, &direct_forward_planes_window<3, 2, 1>, &direct_forward_planes_window<3, 3, 1>}};
    return kernels[KH - 1][KW - 1];
}

/// The forward kernel into planes for this geometry (stride 1 or 2, K 1, 3 or 5, output rows in whole 16s), or null.
inline DirectForwardPlanes direct_forward_planes_kernel(Index K, Index stride, Index OW) {
    if (OW % kGemmLanes != 0 || OW == 0) return nullptr;
    if (stride == 1) {
        if (K == 1) return &direct_forward_planes<1, 1>;
        if (K == 3) return &direct_forward_planes<3, 1>;
        if (K == 5) return &direct_forward_planes<5, 1>;
    }
    if (stride == 2) {
        if (K == 1) return &direct_forward_planes<1, 2>;
        if (K == 3) return &direct_forward_planes<3, 2>;
        if (K == 5) return &direct_forward_planes<5, 2>;
    }
    return nullptr;
}
#else
/// Without AVX-512 there is none.
inline DirectForwardPlanes direct_forward_planes_kernel(Index, Index, Index) { return nullptr; }
inline DirectForwardPlanes direct_forward_planes_window_kernel(Index, Index) { return nullptr; }
#endif

/// Row pitch of the image the planes kernel reads for stride S: W + 2 pad, rounded up to even for stride 2.
inline Index planes_row_pitch(Index W, Index pad, Index stride) {
    const Index Wp = W + 2 * pad;
    return stride == 2 ? Wp + Wp % 2 : Wp;
}

/// Planes [c0, c1) of x [C, H, W], zero-padded by `pad` on every side, into dst [C, H + 2 pad, pitch] in the
/// two phases of stride 2 (see the top of the file): padded column q goes to q % 2 * (pitch / 2) + q / 2.
template <typename T>
void pad_phases(const T* x, Index H, Index W, Index pad, Index pitch, Index c0, Index c1, T* dst) {
    const Index Hp = H + 2 * pad, half = pitch / 2;
    for (Index c = c0; c < c1; ++c) {
        T* plane = dst + c * Hp * pitch;
        std::fill(plane, plane + pad * pitch, T(0));
        std::fill(plane + (pad + H) * pitch, plane + Hp * pitch, T(0));
        for (Index h = 0; h < H; ++h) {
            const T* from = x + (c * H + h) * W;
            T* row = plane + (h + pad) * pitch;
            std::fill(row, row + pitch, T(0));  // the padding columns (and the row in cache for the writes below)
            // input column w is padded column q = pad + w: phase q % 2, at q / 2. Even pad: w = 2m goes to phase 0
            // at pad / 2 + m, w = 2m + 1 to phase 1 at the same place; odd pad: w = 2m to phase 1 at pad / 2 + m,
            // w = 2m + 1 to phase 0 at pad / 2 + m + 1.
            T* from_even = row + (pad % 2 == 0 ? 0 : half) + pad / 2;  // where w = 2m goes, m = 0
            T* from_odd = row + (pad % 2 == 0 ? half : 1) + pad / 2;   // where w = 2m + 1 goes
            Index m = 0;
#if defined(EIGENCNN_GEMM_KERNEL) && defined(__AVX512F__)
            if constexpr (std::is_same_v<T, float>) {
                const __m512i evens = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
                const __m512i odds = _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
                for (; 2 * m + 32 <= W; m += 16) {
                    const __m512 lo = _mm512_loadu_ps(from + 2 * m), hi = _mm512_loadu_ps(from + 2 * m + 16);
                    _mm512_storeu_ps(from_even + m, _mm512_permutex2var_ps(lo, evens, hi));
                    _mm512_storeu_ps(from_odd + m, _mm512_permutex2var_ps(lo, odds, hi));
                }
            }
#endif
            for (Index k = m; 2 * k < W; ++k) from_even[k] = from[2 * k];
            for (Index k = m; 2 * k + 1 < W; ++k) from_odd[k] = from[2 * k + 1];
        }
    }
}

}  // namespace detail
}  // namespace eigencnn
