// SPDX-License-Identifier: MIT
// eigencnn/kernels/conv2d_winners.hpp
//
// The winners-only convolution backward: the gradients of a convolution
// whose output gradient is nonzero only at known positions (a following
// max-pool's winners), for one image. Conv2d's fused-step backward
// (layers/conv2d.hpp, used by fusion/conv_pool.hpp) runs it image by image
// and sums the images' contributions in fixed chunks.
//
// For each nonzero g = dy[o, i, j], with (h0, w0) = (i*s - p, j*s - p):
//   dW[o, c, a, b] += g * x[c, h0 + a, w0 + b]      db[o] += g
//   dx[c, h0 + a, w0 + b] += g * W[o, c, a, b]
// x and dx are held channel-last, xs [H, W, C], so that row a of the patch
// at (h0, w0) is K*C contiguous values starting at (h0 + a)*W*C + w0*C; W
// likewise as wt [OC, K, K, C], and dW accumulates as [OC, K, K, C] then db
// [OC]. Patches wholly inside the image go through blocked loops (dW[o]
// summed over the patches in registers, kWinnersBlock values at a time,
// when K*C is a multiple of it); the others, row by row. The reference is
// the dense backward (im2col + GEMM), which tests/test_model.cpp compares it
// with, and finite differences.
//
// dx alone (Conv2d::backward_input_winners, for input gradients with frozen
// weights) has its own kernel, conv2d_winners_input_image: the entries
// grouped by output position, each patch's gradient summed in registers.
#pragma once

#include "../core/omp.hpp"

#include "gemm.hpp"

#ifdef __AVX512F__
#include <immintrin.h>
#endif

#include <algorithm>
#include <cstdint>
#include <type_traits>
#include <vector>

namespace eigencnn {

constexpr Index kWinnersBlock = 16;  // values of dW per register block

#if defined(EIGENCNN_GEMM_KERNEL) && defined(__AVX512F__)
#define EIGENCNN_WHOLE_PATCH 1  // the whole-patch kernels below: one 16-float vector per block, 32 registers
constexpr bool kWinnersWholePatch = true;
#else
constexpr bool kWinnersWholePatch = false;
#endif

/// The geometry of one winners-only backward call.
struct WinnersGeometry {
    Index C, K, H, W, OC, Q;   ///< input channels, kernel, input plane, output channels, entries per output plane
    Index P;                   ///< positions in an output plane (OH*OW)
    bool blocked;              ///< K*C is a multiple of kWinnersBlock
    const Index* origin;       ///< per output position p: top-left input row origin[2p] and column origin[2p + 1]
    const Index* block_offset; ///< per block of kWinnersBlock values of dW[o]: its offset from a patch's top-left
};

// NB blocks of kWinnersBlock values of dW[o] from k0 on, each summed over the m
// patches (gradient gs[e], top-left at[e] in the channel-last image xs) in
// registers and added to dw once. Block k/kWinnersBlock of a patch starts
// block_offset[k/kWinnersBlock] after its top-left.
template <int NB, typename T>
void conv2d_winners_blocks(Index k0, Index m, const T* gs, const std::int32_t* at, const T* xs, T* dw, const Index* block_offset) {
    const Index* off = block_offset + k0 / kWinnersBlock;
#ifdef EIGENCNN_GEMM_KERNEL
    if constexpr (std::is_same_v<T, float>) {  // explicit vectors: the compiler splits the plain loops below badly
        using detail::gemm_vec;
        constexpr int V = kWinnersBlock / detail::kGemmLanes;  // vectors per block
        gemm_vec acc[NB * V];
#pragma GCC unroll 16
        for (int v = 0; v < NB * V; ++v) acc[v] = detail::gemm_load(dw + k0 + v * detail::kGemmLanes);
        for (Index e = 0; e < m; ++e) {
            const float g = gs[e];
            const float* x = xs + at[e];
#pragma GCC unroll 4
            for (int j = 0; j < NB; ++j)
#pragma GCC unroll 4
                for (int v = 0; v < V; ++v) acc[j * V + v] = detail::gemm_fma(g, detail::gemm_load(x + off[j] + v * detail::kGemmLanes), acc[j * V + v]);
        }
#pragma GCC unroll 16
        for (int v = 0; v < NB * V; ++v) detail::gemm_store(dw + k0 + v * detail::kGemmLanes, acc[v]);
        return;
    }
#endif
    T acc[NB * kWinnersBlock];
#pragma GCC unroll 64
    for (Index l = 0; l < NB * kWinnersBlock; ++l) acc[l] = dw[k0 + l];
    for (Index e = 0; e < m; ++e) {
        const T g = gs[e];
        const T* x = xs + at[e];
#pragma GCC unroll 4
        for (int j = 0; j < NB; ++j)
#pragma GCC unroll 16
            for (Index l = 0; l < kWinnersBlock; ++l) acc[j * kWinnersBlock + l] += g * x[off[j] + l];
    }
#pragma GCC unroll 64
    for (Index l = 0; l < NB * kWinnersBlock; ++l) dw[k0 + l] = acc[l];
}

// Whole patches in registers: a patch's K rows of KB = K*C/kWinnersBlock blocks, K*KB <= 25 accumulators
// (AVX-512 float has 32 vector registers), for the geometries winners_whole_patch lists. Every block is then
// a chain of its own (25 for the seed model's conv2: the FMA units never wait for the FMA before), and a
// block's address is a patch row's start plus a constant (no table of block offsets to load). The same FMAs
// in the same order as conv2d_winners_blocks and conv2d_winners_patch_blocks: bitwise the same results.
// row: values per image row (W*C).
//   dW[o] [K, KB blocks] += sum over the m patches e of gs[e] * x_e      (x_e at xs + at[e])
template <int K, int KB, typename Offset>
void conv2d_winners_patch_dw(Index m, const float* gs, const Offset* at, const float* xs, Index row, float* dw) {
#ifdef EIGENCNN_WHOLE_PATCH
    using detail::gemm_vec;
    gemm_vec acc[K * KB];
#pragma GCC unroll 32
    for (int r = 0; r < K * KB; ++r) acc[r] = detail::gemm_load(dw + r * kWinnersBlock);
    for (Index e = 0; e < m; ++e) {
        const float g = gs[e];
        const float* x = xs + at[e];
#pragma GCC unroll 8
        for (int a = 0; a < K; ++a) {
            const float* xa = x;
            // opaque to the optimiser, which otherwise keeps a*row for every row in registers it does not have
            __asm__("" : "+r"(xa));
#pragma GCC unroll 8
            for (int b = 0; b < KB; ++b) acc[a * KB + b] = detail::gemm_fma(g, detail::gemm_load(xa + b * kWinnersBlock), acc[a * KB + b]);
            x += row;
        }
    }
#pragma GCC unroll 32
    for (int r = 0; r < K * KB; ++r) detail::gemm_store(dw + r * kWinnersBlock, acc[r]);
#else
    (void)m, (void)gs, (void)at, (void)xs, (void)row, (void)dw;
#endif
}

//   d [K rows of KB blocks, rows `row` apart] += sum over the m entries e of gs[e] * W[o_e]   (W[o_e] at wt + woff[e])
template <int K, int KB>
void conv2d_winners_patch_dx(Index m, const float* gs, const Index* woff, const float* wt, Index row, float* d) {
#ifdef EIGENCNN_WHOLE_PATCH
    using detail::gemm_vec;
    gemm_vec acc[K * KB] = {};
    for (Index e = 0; e < m; ++e) {
        const float g = gs[e];
        const float* w = wt + woff[e];
#pragma GCC unroll 32
        for (int r = 0; r < K * KB; ++r) acc[r] = detail::gemm_fma(g, detail::gemm_load(w + r * kWinnersBlock), acc[r]);
    }
#pragma GCC unroll 8
    for (int a = 0; a < K; ++a)
#pragma GCC unroll 8
        for (int b = 0; b < KB; ++b) {
            float* p = d + a * row + b * kWinnersBlock;
            detail::gemm_store(p, detail::gemm_load(p) + acc[a * KB + b]);
        }
#else
    (void)m, (void)gs, (void)woff, (void)wt, (void)row, (void)d;
#endif
}

// Calls kernel(integral_constant K, integral_constant KB) and returns true when this geometry has a
// whole-patch kernel (float, AVX-512; 3x3 with 16 or 32 channels, 5x5 with 16), else false.
template <typename T, typename Kernel>
bool winners_whole_patch(const WinnersGeometry& geo, Kernel&& kernel) {
#ifdef EIGENCNN_WHOLE_PATCH
    if constexpr (std::is_same_v<T, float>) {
        using std::integral_constant;
        if (geo.K == 3 && geo.C == 16) {
            kernel(integral_constant<int, 3>{}, integral_constant<int, 3>{});
            return true;
        }
        if (geo.K == 3 && geo.C == 32) {
            kernel(integral_constant<int, 3>{}, integral_constant<int, 6>{});
            return true;
        }
        if (geo.K == 5 && geo.C == 16) {
            kernel(integral_constant<int, 5>{}, integral_constant<int, 5>{});
            return true;
        }
        return false;
    }
#endif
    (void)geo, (void)kernel;
    return false;
}

// part_db [OC] += sum over q of val[o, q], in q order (zeros change no sum: it is never -0), 64 channels at
// a time: one chain of adds per channel side by side instead of one channel's after another's.
template <typename T>
void conv2d_winners_bias(Index OC, Index Q, const T* val, T* part_db) {
    for (Index o0 = 0; o0 < OC; o0 += 64) {
        const Index count = std::min<Index>(64, OC - o0);
        T db[64] = {};
        for (Index q = 0; q < Q; ++q)
            for (Index o = 0; o < count; ++o) db[o] += val[(o0 + o) * Q + q];
        for (Index o = 0; o < count; ++o) part_db[o0 + o] += db[o];
    }
}

/// One image: entries pos [OC, Q] (positions i*OW + j in the output plane) with
/// gradients val [OC, Q]; adds into part (dW [OC, K, K, C], then db [OC]) and,
/// unless dxs is null, into dxs [H, W, C]. gs [Q] and at [Q] are scratch.
/// (dx alone: conv2d_winners_input_image below.)
template <typename T>
void conv2d_winners_image(const WinnersGeometry& geo, const T* xs, const T* wt, const std::int32_t* pos, const T* val, T* part, T* dxs,
                          T* gs, std::int32_t* at) {
    const Index C = geo.C, K = geo.K, H = geo.H, W = geo.W, Q = geo.Q, KKC = K * K * C;
    conv2d_winners_bias(geo.OC, Q, val, part + geo.OC * KKC);
    for (Index o = 0; o < geo.OC; ++o) {
        T* dw = part + o * KKC;
        const T* w = wt + o * KKC;
        Index m = 0;  // patches wholly inside the image, for the blocked loops below
        for (Index q = 0; q < Q; ++q) {
            const T g = val[o * Q + q];
            const Index h0 = geo.origin[2 * pos[o * Q + q]], w0 = geo.origin[2 * pos[o * Q + q] + 1];
            if (geo.blocked && h0 >= 0 && w0 >= 0 && h0 + K <= H && w0 + K <= W) {
                // kept when nonzero, without a branch on g: a ReLU before the pool zeroes about half the
                // entries in no pattern a branch predictor could follow
                gs[m] = g;
                at[m] = static_cast<std::int32_t>((h0 * W + w0) * C);  // fits: Conv2d::output_shape checks C*H*W < 2^31
                m += g != T(0);
                continue;
            }
            if (g == T(0)) continue;
            const Index b0 = std::max<Index>(0, -w0), len = (std::min(K, W - w0) - b0) * C;
            for (Index a = std::max<Index>(0, -h0); a < std::min(K, H - h0); ++a) {
                const Index i = ((h0 + a) * W + w0 + b0) * C, k = (a * K + b0) * C;
                EIGENCNN_OMP(simd)
                for (Index t = 0; t < len; ++t) dw[k + t] += g * xs[i + t];
                if (dxs)
                    EIGENCNN_OMP(simd)
                    for (Index t = 0; t < len; ++t) dxs[i + t] += g * w[k + t];
            }
        }
        if (m == 0) continue;
        // dW[o] in blocks of kWinnersBlock values (a block never straddles two kernel rows, as
        // kWinnersBlock divides K*C), summed over the patches in registers: the whole patch at once where
        // there is a kernel for it, else four blocks at a time.
        if (!winners_whole_patch<T>(geo, [&](auto k, auto kb) {
                conv2d_winners_patch_dw<decltype(k)::value, decltype(kb)::value>(m, gs, at, xs, W * C, dw);
            })) {
            Index k0 = 0;
            for (; k0 + 4 * kWinnersBlock <= KKC; k0 += 4 * kWinnersBlock) conv2d_winners_blocks<4>(k0, m, gs, at, xs, dw, geo.block_offset);
            for (; k0 < KKC; k0 += kWinnersBlock) conv2d_winners_blocks<1>(k0, m, gs, at, xs, dw, geo.block_offset);
        }
        if (!dxs) continue;
        // patch by patch: overlapping patches then update the same values far apart in time
        for (Index e = 0; e < m; ++e) {
            T* d = dxs + at[e];
            const T g = gs[e];
            for (Index k = 0; k < KKC; k += kWinnersBlock) {
                T* dk = d + geo.block_offset[k / kWinnersBlock];
                EIGENCNN_OMP(simd)
                for (Index l = 0; l < kWinnersBlock; ++l) dk[l] += g * w[k + l];
            }
        }
    }
}

/// dW and db of `count` images at once (Conv2d's chunk of images), when every
/// patch lies wholly inside its image and the geometry has a whole-patch kernel
/// (conv2d_winners_weight_images_apply; else false, nothing done:
/// conv2d_winners_image image by image). xs
/// [count, H, W, C], pos and val [count, OC, Q]; scratch gs [count*Q] and at
/// [count*Q]. dW[o] stays in registers over every image's patches, loaded from
/// part and stored once per chunk instead of once per image: the same FMAs in
/// the same order as conv2d_winners_image image after image, so bitwise the
/// same, with an eighth of the traffic to part (51 KB for the seed conv2, more
/// than the L1 cache holds beside the images).
template <typename T>
bool conv2d_winners_weight_images_apply(const WinnersGeometry& geo) {
    if (!geo.blocked || geo.P == 0) return false;
    const Index* last = geo.origin + 2 * (geo.P - 1);
    return geo.origin[0] >= 0 && geo.origin[1] >= 0 && last[0] + geo.K <= geo.H && last[1] + geo.K <= geo.W &&
           winners_whole_patch<T>(geo, [](auto, auto) {});
}
#if defined(EIGENCNN_GEMM_KERNEL) && defined(__AVX512F__)
// The lanes `keep` of 16 entries, in order, appended to two lists at m: g's values to gs, their 64-bit offsets
// (lanes 0-7 in low, 8-15 in high) to off; returns the new m. Compressed in registers and stored whole (compress
// straight to memory is slow on Zen 4): 16 floats at gs + m and 8 + 8 offsets from off + m, so the lists need
// room for 16 values past m (the callers' m never passes the entries already read).
inline Index store_kept_lanes(__mmask16 keep, __m512 g, __m512i low, __m512i high, float* gs, Index* off, Index m) {
    _mm512_storeu_ps(gs + m, _mm512_maskz_compress_ps(keep, g));
    const auto keep_low = static_cast<__mmask8>(keep & 0xff), keep_high = static_cast<__mmask8>(keep >> 8);
    _mm512_storeu_si512(off + m, _mm512_maskz_compress_epi64(keep_low, low));
    m += __builtin_popcount(keep_low);
    _mm512_storeu_si512(off + m, _mm512_maskz_compress_epi64(keep_high, high));
    return m + __builtin_popcount(keep_high);
}
#endif

// One output channel's nonzero entries over `count` images, in order: gs[0, m) their gradients, at[0, m) their
// patches' offsets in the chunk's images (image n at n * image; patch_at [P] per output position). val and pos at
// the channel's first entry of image 0, images E apart, Q entries each. Returns m. With AVX-512, 16 entries at a
// time: the nonzero ones compressed into place (a NaN counts as nonzero, -0 as zero, as `g != 0` below), their
// offsets gathered from patch_at; 16 lanes are stored at gs + m (8 and 8 at at + m), all within the count * Q
// entries the lists hold, since m never passes the entries already read.
template <typename T>
Index winners_nonzero_patches(Index count, Index Q, Index E, Index image, const T* val, const std::int32_t* pos, const std::int32_t* patch_at,
                              T* gs, Index* at) {
    Index m = 0;
    for (Index n = 0; n < count; ++n) {
        const T* v = val + n * E;
        const std::int32_t* p = pos + n * E;
        Index q = 0;
#if defined(EIGENCNN_GEMM_KERNEL) && defined(__AVX512F__)
        if constexpr (std::is_same_v<T, float>) {
            const __m512i base = _mm512_set1_epi64(static_cast<long long>(n * image));
            for (; q + 16 <= Q; q += 16) {
                const __m512 g = _mm512_loadu_ps(v + q);
                const __mmask16 keep = _mm512_cmp_ps_mask(g, _mm512_setzero_ps(), _CMP_NEQ_UQ);
                const __m512i offset = _mm512_i32gather_epi32(_mm512_loadu_si512(p + q), patch_at, 4);
                const __m512i at_low = _mm512_add_epi64(base, _mm512_cvtepi32_epi64(_mm512_castsi512_si256(offset)));
                const __m512i at_high = _mm512_add_epi64(base, _mm512_cvtepi32_epi64(_mm512_extracti64x4_epi64(offset, 1)));
                m = store_kept_lanes(keep, g, at_low, at_high, gs, at, m);
            }
        }
#endif
        for (; q < Q; ++q) {  // without a branch on the values
            gs[m] = v[q];
            at[m] = n * image + patch_at[p[q]];
            m += v[q] != T(0);
        }
    }
    return m;
}

template <typename T>
bool conv2d_winners_weight_images(const WinnersGeometry& geo, Index count, const T* xs, const std::int32_t* pos, const T* val, T* part,
                                  T* gs, Index* at) {
    const Index C = geo.C, K = geo.K, H = geo.H, W = geo.W, Q = geo.Q, OC = geo.OC, KKC = K * K * C, E = OC * Q;
    if (!conv2d_winners_weight_images_apply<T>(geo)) return false;
    // each output position's patch, from the image's start (every patch lies inside: C*H*W < 2^31, Conv2d checks)
    thread_local std::vector<std::int32_t> patch_at;
    patch_at.resize(static_cast<std::size_t>(geo.P));
    for (Index p = 0; p < geo.P; ++p) patch_at[static_cast<std::size_t>(p)] = static_cast<std::int32_t>((geo.origin[2 * p] * W + geo.origin[2 * p + 1]) * C);
    return winners_whole_patch<T>(geo, [&](auto k, auto kb) {
        for (Index n = 0; n < count; ++n) conv2d_winners_bias(OC, Q, val + n * E, part + OC * KKC);  // image after image, as conv2d_winners_image
        for (Index o = 0; o < OC; ++o) {
            const Index m = winners_nonzero_patches(count, Q, E, H * W * C, val + o * Q, pos + o * Q, patch_at.data(), gs, at);
            conv2d_winners_patch_dw<decltype(k)::value, decltype(kb)::value>(m, gs, at, xs, W * C, part + o * KKC);
        }
    });
}

// NB blocks of kWinnersBlock values from k0 on of one patch's input gradient,
// sum over the m entries e of gs[e] * W[o_e] (wt + woff[e] is W[o_e], channel-last),
// summed in registers and added to the patch at d once.
template <int NB, typename T>
void conv2d_winners_patch_blocks(Index k0, Index m, const T* gs, const Index* woff, const T* wt, T* d, const Index* block_offset) {
    const Index* off = block_offset + k0 / kWinnersBlock;
#ifdef EIGENCNN_GEMM_KERNEL
    if constexpr (std::is_same_v<T, float>) {
        using detail::gemm_vec;
        constexpr int V = kWinnersBlock / detail::kGemmLanes;
        gemm_vec acc[NB * V] = {};
        for (Index e = 0; e < m; ++e) {
            const float g = gs[e];
            const float* w = wt + woff[e] + k0;
#pragma GCC unroll 16
            for (int v = 0; v < NB * V; ++v) acc[v] = detail::gemm_fma(g, detail::gemm_load(w + v * detail::kGemmLanes), acc[v]);
        }
#pragma GCC unroll 4
        for (int j = 0; j < NB; ++j)
#pragma GCC unroll 4
            for (int v = 0; v < V; ++v) {
                float* dk = d + off[j] + v * detail::kGemmLanes;
                detail::gemm_store(dk, detail::gemm_load(dk) + acc[j * V + v]);
            }
        return;
    }
#endif
    T acc[NB * kWinnersBlock] = {};
    for (Index e = 0; e < m; ++e) {
        const T g = gs[e];
        const T* w = wt + woff[e] + k0;
#pragma GCC unroll 64
        for (Index l = 0; l < NB * kWinnersBlock; ++l) acc[l] += g * w[l];
    }
    for (int j = 0; j < NB; ++j)
        for (Index l = 0; l < kWinnersBlock; ++l) d[off[j] + l] += acc[j * kWinnersBlock + l];
}

// The index of mask's lowest set bit (mask != 0).
inline Index lowest_bit(std::uint64_t mask) {
#if defined(__GNUC__)
    return __builtin_ctzll(mask);
#else
    Index i = 0;
    for (; !(mask & 1); mask >>= 1) ++i;
    return i;
#endif
}

// Bit i of the result: g[i] != 0 (NaN counts as nonzero), for count <= 64 values.
template <typename T>
std::uint64_t nonzero_mask(const T* g, Index count) {
    std::uint64_t mask = 0;
    Index i = 0;
#ifdef __AVX512F__
    if constexpr (std::is_same_v<T, float>)
        for (; i + 16 <= count; i += 16)
            mask |= static_cast<std::uint64_t>(_mm512_cmp_ps_mask(_mm512_loadu_ps(g + i), _mm512_setzero_ps(), _CMP_NEQ_UQ)) << i;
#endif
    for (; i < count; ++i) mask |= static_cast<std::uint64_t>(g[i] != T(0)) << i;
    return mask;
}

/// dx alone for one image: entries pos [OC, Q] with gradients val [OC, Q] as for
/// conv2d_winners_image, added into dxs [H, W, C]. The entries go into a table
/// [P, OC] of gradients by output position (zero where a channel did not win);
/// each patch's gradient
///   dpatch_p = sum over the channels o that won at p of g[o, p] * W[o]      [K, K, C]
/// is summed in registers, channels in increasing order, and added to dxs once,
/// so a value of dxs is updated once per patch instead of once per entry. The
/// channels that won at p are read off the table a bitmask of 64 at a time (no
/// sort by position, no branch per entry). Scratch: table [P*OC], gs [OC], woff
/// [OC] (Index). A channel that wins twice at one position (overlapping pool
/// windows) gets the sum of its two gradients there, (g1 + g2) W[o] where the
/// sort gave g1 W[o] + g2 W[o]: equal up to rounding, the one case where this
/// kernel's dx is not bitwise the counting sort's.
template <typename T>
void conv2d_winners_input_image(const WinnersGeometry& geo, const T* wt, const std::int32_t* pos, const T* val, T* dxs, T* table,
                                T* gs, Index* woff) {
    const Index C = geo.C, K = geo.K, H = geo.H, W = geo.W, P = geo.P, OC = geo.OC, Q = geo.Q, KKC = K * K * C;
    std::fill(table, table + P * OC, T(0));
    for (Index o = 0; o < OC; ++o)
        for (Index q = 0; q < Q; ++q) table[pos[o * Q + q] * OC + o] += val[o * Q + q];
    for (Index p = 0; p < P; ++p) {
        const T* gp = table + p * OC;
        Index m = 0, o0 = 0;
#if defined(EIGENCNN_GEMM_KERNEL) && defined(__AVX512F__)
        if constexpr (std::is_same_v<T, float>) {  // 16 channels at a time, the nonzero ones compressed into place (as above)
            const long long k = static_cast<long long>(KKC);  // lane l's weight offset from the first's: l * KKC
            const __m512i lane_low = _mm512_setr_epi64(0, k, 2 * k, 3 * k, 4 * k, 5 * k, 6 * k, 7 * k);
            const __m512i lane_high = _mm512_add_epi64(lane_low, _mm512_set1_epi64(8 * k));
            for (; o0 + 16 <= OC; o0 += 16) {
                const __m512 g = _mm512_loadu_ps(gp + o0);
                const __mmask16 keep = _mm512_cmp_ps_mask(g, _mm512_setzero_ps(), _CMP_NEQ_UQ);
                if (!keep) continue;
                const __m512i first = _mm512_set1_epi64(static_cast<long long>(o0 * KKC));
                m = store_kept_lanes(keep, g, _mm512_add_epi64(first, lane_low), _mm512_add_epi64(first, lane_high), gs, woff, m);
            }
        }
#endif
        for (; o0 < OC; o0 += 64)
            for (std::uint64_t mask = nonzero_mask(gp + o0, std::min<Index>(64, OC - o0)); mask; mask &= mask - 1) {
                const Index o = o0 + lowest_bit(mask);
                gs[m] = gp[o];
                woff[m++] = o * KKC;
            }
        if (m == 0) continue;
        const Index h0 = geo.origin[2 * p], w0 = geo.origin[2 * p + 1];
        if (geo.blocked && h0 >= 0 && w0 >= 0 && h0 + K <= H && w0 + K <= W) {
            T* d = dxs + (h0 * W + w0) * C;
            if (winners_whole_patch<T>(geo, [&](auto k, auto kb) {
                    conv2d_winners_patch_dx<decltype(k)::value, decltype(kb)::value>(m, gs, woff, wt, W * C, d);
                }))
                continue;
            Index k0 = 0;
            for (; k0 + 4 * kWinnersBlock <= KKC; k0 += 4 * kWinnersBlock)
                conv2d_winners_patch_blocks<4>(k0, m, gs, woff, wt, d, geo.block_offset);
            for (; k0 < KKC; k0 += kWinnersBlock) conv2d_winners_patch_blocks<1>(k0, m, gs, woff, wt, d, geo.block_offset);
            continue;
        }
        // a patch cut by the border, or K*C not a multiple of kWinnersBlock: row by row, entry by entry
        const Index b0 = std::max<Index>(0, -w0), len = (std::min(K, W - w0) - b0) * C;
        for (Index a = std::max<Index>(0, -h0); a < std::min(K, H - h0); ++a) {
            T* d = dxs + ((h0 + a) * W + w0 + b0) * C;
            const Index k = (a * K + b0) * C;
            for (Index e = 0; e < m; ++e) {
                const T g = gs[e];
                const T* w = wt + woff[e] + k;
                EIGENCNN_OMP(simd)
                for (Index t = 0; t < len; ++t) d[t] += g * w[t];
            }
        }
    }
}

}  // namespace eigencnn
