// SPDX-License-Identifier: MIT
// eigencnn/kernels/transpose.hpp
//
// transpose: dst [cols, rows] = src [rows, cols]^T, both row-major.
//
// Conv2d turns each image's output gradient dy_n [OC, P] into dy_n^T [P, OC]
// for the weight gradient, and the direct kernels' channel-last output back
// into planes. Element by element, the strided side of the copy cost about
// as much as the small products around it. For float with AVX-512, whole
// 16 x 16 blocks go through registers: 16 row loads, 64 shuffles (32-bit
// unpacks, 64-bit unpacks, then two rounds of 128-bit lane shuffles), 16
// stores (int32 too: the same bits). The edges (rows or columns past the last whole 16) and every other
// type or target go element by element. A copy: bitwise exact either way.
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
namespace detail {

template <typename T>
void transpose_elements(const T* src, Index r0, Index r1, Index c0, Index c1, Index rows, Index cols, T* dst) {
    for (Index r = r0; r < r1; ++r)
        for (Index c = c0; c < c1; ++c) dst[c * rows + r] = src[r * cols + c];
}

#if defined(__AVX512F__)
// GCC 12 warns inside its own unpack and shuffle intrinsics (their unused
// pass-through operand is _mm512_undefined_ps(), which it sees as uninitialised).
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
// 16 x 16 in registers: r[k] row k in, r[j] column j out.
inline void transpose16(__m512 (&r)[16]) {
    __m512 t[16];
    for (int k = 0; k < 16; k += 2) {  // in each 128-bit lane l: rows k, k+1 interleaved by element
        t[k] = _mm512_unpacklo_ps(r[k], r[k + 1]);
        t[k + 1] = _mm512_unpackhi_ps(r[k], r[k + 1]);
    }
    for (int k = 0; k < 16; k += 4)  // then rows k..k+3 of one column per lane, by 64-bit pairs
        for (int h = 0; h < 2; ++h) {
            r[k + h] = _mm512_castpd_ps(_mm512_unpacklo_pd(_mm512_castps_pd(t[k + h]), _mm512_castps_pd(t[k + 2 + h])));
            r[k + 2 + h] = _mm512_castpd_ps(_mm512_unpackhi_pd(_mm512_castps_pd(t[k + h]), _mm512_castps_pd(t[k + 2 + h])));
        }
    // r[4q + m] holds, in lane l, rows 4q..4q+3 of column 4l + column[m]: gather the four q's of each lane
    constexpr int column[4] = {0, 2, 1, 3};
    for (int m = 0; m < 4; ++m) {
        const int c = column[m];
        const __m512 a = _mm512_shuffle_f32x4(r[m], r[4 + m], 0x88), b = _mm512_shuffle_f32x4(r[m], r[4 + m], 0xdd);
        const __m512 e = _mm512_shuffle_f32x4(r[8 + m], r[12 + m], 0x88), f = _mm512_shuffle_f32x4(r[8 + m], r[12 + m], 0xdd);
        t[c] = _mm512_shuffle_f32x4(a, e, 0x88);       // lane 0: column c
        t[c + 4] = _mm512_shuffle_f32x4(b, f, 0x88);   // lane 1
        t[c + 8] = _mm512_shuffle_f32x4(a, e, 0xdd);   // lane 2
        t[c + 12] = _mm512_shuffle_f32x4(b, f, 0xdd);  // lane 3
    }
    for (int j = 0; j < 16; ++j) r[j] = t[j];
}

// The 16 x 16 block at (r0, c0); any 4-byte element (float, or int32 such as a pool's winners), moved as bits.
template <typename T>
inline void transpose_block16(const T* src, Index r0, Index c0, Index rows, Index cols, T* dst) {
    static_assert(sizeof(T) == 4 && std::is_trivially_copyable_v<T>, "32-bit elements");
    __m512 r[16];
    for (int k = 0; k < 16; ++k) r[k] = _mm512_loadu_ps(src + (r0 + k) * cols + c0);
    transpose16(r);
    for (int j = 0; j < 16; ++j) _mm512_storeu_ps(dst + (c0 + j) * rows + r0, r[j]);
}
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif
#endif

}  // namespace detail

/// The block rows [r0, r1) x columns [c0, c1) of src [rows, cols], transposed into dst [cols, rows]:
/// dst[c * rows + r] = src[r * cols + c] there, and nothing else written (row-major; dst must not overlap
/// src). Threads that share a matrix each transpose their own block this way.
template <typename T>
void transpose_block(const T* src, Index rows, Index cols, Index r0, Index r1, Index c0, Index c1, T* dst) {
#if defined(__AVX512F__)
    if constexpr (std::is_same_v<T, float> || std::is_same_v<T, std::int32_t>) {
        // The rows (columns) past the last whole 16: one more 16 x 16 block ending at r1 (c1), over some the
        // blocks before it wrote already (the same values again), where the block is 16 wide; else element
        // by element. Conv2d's [C, 25] windows at C = 16: 144 of their 400 values were moved one at a time.
        const Index R16 = r0 + (r1 - r0) / 16 * 16, C16 = c0 + (c1 - c0) / 16 * 16;
        const bool last_rows = R16 < r1 && r1 - r0 >= 16, last_columns = C16 < c1 && c1 - c0 >= 16;
        auto block_row = [&](Index r) {
            for (Index c = c0; c < C16; c += 16) detail::transpose_block16(src, r, c, rows, cols, dst);
            if (last_columns) detail::transpose_block16(src, r, c1 - 16, rows, cols, dst);
            else detail::transpose_elements(src, r, r + 16, C16, c1, rows, cols, dst);
        };
        for (Index r = r0; r < R16; r += 16) block_row(r);
        if (last_rows) block_row(r1 - 16);
        else detail::transpose_elements(src, R16, r1, c0, c1, rows, cols, dst);
        return;
    }
#endif
    detail::transpose_elements(src, r0, r1, c0, c1, rows, cols, dst);
}

/// dst [cols, rows] = src [rows, cols]^T (row-major; dst must not overlap src).
template <typename T>
void transpose(const T* src, Index rows, Index cols, T* dst) {
    transpose_block(src, rows, cols, Index(0), rows, Index(0), cols, dst);
}

/// transpose() on all threads, each taking fixed blocks of kTransposeRows rows of src (a copy: the
/// result is the same on any thread count). Where a layer would otherwise transpose a large matrix on one
/// thread while the others wait (Linear's W^T and dy^T at batch 500: 1 MB each).
constexpr Index kTransposeRows = 64;
template <typename T>
void parallel_transpose(const T* src, Index rows, Index cols, T* dst) {
    const Index blocks = (rows + kTransposeRows - 1) / kTransposeRows;
    EIGENCNN_OMP(parallel for schedule(static) if (rows * cols >= (Index{1} << 16)))
    for (Index b = 0; b < blocks; ++b)
        transpose_block(src, rows, cols, b * kTransposeRows, std::min(rows, (b + 1) * kTransposeRows), Index(0), cols, dst);
}

namespace detail {
template <int KK, typename T>
void transpose_windows_flipped_rows(const T* src, Index rows, Index cols, Index c0, Index c1, T* dst) {
    for (Index c = c0; c < c1; ++c)
        for (Index r = 0; r < rows; ++r) {
            const T* from = src + (r * cols + c) * KK;
            T* to = dst + (c * rows + r) * KK;
#pragma GCC unroll 25
            for (int k = 0; k < KK; ++k) to[k] = from[KK - 1 - k];
        }
}
}  // namespace detail

/// Rows [c0, c1) of dst [cols, rows, KK] = src [rows, cols, KK] with rows and columns swapped and each window of
/// KK values reversed: dst[c, r, k] = src[r, c, KK - 1 - k]. Conv2d's weights for its input gradient by the
/// forward kernel (W [OC, C, K, K] -> [C, OC, K, K] rotated by 180 degrees). KK = 1, 9 and 25 with the window
/// loop unrolled: 2-13x faster than a loop of unknown length (3x3 128 -> 128: 55 -> 24 us).
template <typename T>
void transpose_windows_flipped(const T* src, Index rows, Index cols, Index KK, Index c0, Index c1, T* dst) {
    if (KK == 1) return transpose_block(src, rows, cols, Index(0), rows, c0, c1, dst);
    if (KK == 9) return detail::transpose_windows_flipped_rows<9>(src, rows, cols, c0, c1, dst);
    if (KK == 25) return detail::transpose_windows_flipped_rows<25>(src, rows, cols, c0, c1, dst);
    for (Index c = c0; c < c1; ++c)
        for (Index r = 0; r < rows; ++r)
            for (Index k = 0; k < KK; ++k) dst[(c * rows + r) * KK + k] = src[(r * cols + c) * KK + KK - 1 - k];
}

}  // namespace eigencnn
