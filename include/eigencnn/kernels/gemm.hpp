// SPDX-License-Identifier: MIT
// eigencnn/kernels/gemm.hpp
//
// gemm: the small single-threaded matrix products the layers are made of.
//
//   C[M, N] = A[M, K] * B[K, N]        (accumulate: C += A * B)
//   A, B, C row-major with leading dimensions lda, ldb, ldc (elements).
//
// Conv2d calls it per image, one call per thread, so it never threads
// itself; Linear calls it on each thread's share of rows (gemm_rows, matmul.hpp).
// Shapes here are small and
// skinny (conv2 of the seed model: M 32, N 64, K 400), where Eigen's general
// GEMM reaches 50-80% of one core; this one reaches 90-95% for float.
//
// float, with GCC or Clang: register-tiled micro-kernel. A tile of MR rows
// by NV vectors of C (NV*L columns, L = lanes of the widest vector the
// target has: 16 with AVX-512) lives in registers for the whole K loop;
// each step k loads NV vectors of row k of B, broadcasts A[m, k] and does
// MR*NV fused multiply-adds. B's rows are read in place where the layers
// lay them out contiguously; where B is wide (its panel's rows far apart)
// and enough tiles of rows reuse it, a panel is first copied a block of rows
// at a time into a contiguous block L1 holds (gemm_packed_panels). A is read
// a scalar at a time. Columns past the last whole vector go through the same
// kernel on a zero-padded copy.
// Every element is the k-ordered sum c = a0*b0 + a1*b1 + ..., the same
// wherever the element sits in a tile, so results do not depend on how the
// caller splits M among threads.
// Other scalar types (double in the gradient checks) and other compilers:
// Eigen.
#pragma once

#include "../core/tensor.hpp"

#include <algorithm>
#include <cstdint>
#include <type_traits>
#include <vector>

#if __has_include(<unistd.h>)
#include <unistd.h>  // sysconf: the L1 data cache's size
#endif

#if defined(__GNUC__) && (defined(__AVX__) || defined(__FMA__) || defined(__SSE__))
#include <immintrin.h>
#endif

namespace eigencnn {
namespace detail {

template <typename T>
void gemm_eigen(Index M, Index N, Index K, const T* A, Index lda, const T* B, Index ldb, T* C, Index ldc, bool accumulate) {
    using Mat = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
    using Stride = Eigen::OuterStride<>;
    if (M == 0 || N == 0) return;
    Eigen::Map<Mat, 0, Stride> c(C, M, N, Stride(ldc));
    if (K == 0) {
        if (!accumulate) c.setZero();
        return;
    }
    const Eigen::Map<const Mat, 0, Stride> a(A, M, K, Stride(lda)), b(B, K, N, Stride(ldb));
    if (accumulate) c.noalias() += a * b;
    else c.noalias() = a * b;
}

/// A buffer of at least `floats` floats, 64-byte aligned, one per thread and per Owner (a tag type: each user of
/// such a buffer its own, so that one cannot overwrite another's while it is in use). It grows, never shrinks.
template <typename Owner>
float* aligned_thread_buffer(Index floats) {
    thread_local std::vector<float> buffer;
    constexpr Index align = 64 / sizeof(float);
    if (static_cast<Index>(buffer.size()) < floats + align) buffer.resize(static_cast<std::size_t>(floats + align));
    float* p = buffer.data();
    return p + (align - static_cast<Index>(reinterpret_cast<std::uintptr_t>(p) / sizeof(float) % align)) % align;
}

// The packed block takes about 2/3 of the L1 data cache, with room for A's rows and C's tile: 32 KB of a 48 KB L1
// (best of 16, 24 and 32 KB here), 21 KB of a 32 KB one. The size is the system's (sysconf, where there is one),
// read once; the blocking changes no bit.
constexpr Index kGemmPackFloatsDefault = 8192;
inline Index gemm_pack_floats() {
    static const Index floats = [] {
        long l1 = 0;
#if defined(_SC_LEVEL1_DCACHE_SIZE)
        l1 = sysconf(_SC_LEVEL1_DCACHE_SIZE);
#endif
        if (l1 < 16 * 1024 || l1 > 1024 * 1024) return kGemmPackFloatsDefault;  // unknown or implausible
        return static_cast<Index>(l1 / 3 * 2) / Index(sizeof(float)) / 256 * 256;
    }();
    return floats;
}
#if defined(__GNUC__)
#define EIGENCNN_GEMM_KERNEL 1
#if defined(__AVX512F__)
constexpr int kGemmLanes = 16, kGemmRegisters = 32;
#elif defined(__AVX__)
constexpr int kGemmLanes = 8, kGemmRegisters = 16;
#else
constexpr int kGemmLanes = 4, kGemmRegisters = 16;
#endif
typedef float gemm_vec __attribute__((vector_size(kGemmLanes * sizeof(float))));

inline gemm_vec gemm_load(const float* p) {
    gemm_vec v;
    __builtin_memcpy(&v, p, sizeof v);  // an unaligned load
    return v;
}
inline void gemm_store(float* p, gemm_vec v) { __builtin_memcpy(p, &v, sizeof v); }

// c + a * b with one rounding where the target has FMA, and never contracted
// differently in different tiles: left to the compiler, `c += a * b` became
// an FMA in some tile shapes and a multiply and an add in others (seen with
// AVX2 on the 1-row tile), so a row's result depended on how M was split.
// The broadcast is set1, not `gemm_vec{} + a`: adding a vector of zeros
// cannot be dropped (it turns -0 into +0), so GCC emitted a scalar add on an
// FP pipe before every broadcast, a third instruction per FMA that held the
// kernel to about 60% of the FMA peak.
inline gemm_vec gemm_fma(float a, gemm_vec b, gemm_vec c) {
#if defined(__AVX512F__)
    return _mm512_fmadd_ps(_mm512_set1_ps(a), b, c);
#elif defined(__FMA__) && defined(__AVX__)
    return _mm256_fmadd_ps(_mm256_set1_ps(a), b, c);
#elif defined(__FMA__)
    return _mm_fmadd_ps(_mm_set1_ps(a), b, c);
#else
#if defined(__AVX__)
    const gemm_vec av = _mm256_set1_ps(a);
#elif defined(__SSE__)
    const gemm_vec av = _mm_set1_ps(a);
#else
    const gemm_vec av = gemm_vec{} + a;
#endif
    gemm_vec product = av * b;
    __asm__("" : "+x"(product));  // keep the product rounded: no contraction with the add
    return c + product;
#endif
}

// One MR x (NV*L) tile of C, over the whole K.
template <int MR, int NV>
inline void gemm_tile(bool accumulate, Index K, const float* A, Index lda, const float* B, Index ldb, float* C, Index ldc) {
    constexpr int L = kGemmLanes;
    gemm_vec c[MR][NV];
#pragma GCC unroll 16
    for (int m = 0; m < MR; ++m)
#pragma GCC unroll 16
        for (int v = 0; v < NV; ++v) c[m][v] = accumulate ? gemm_load(C + m * ldc + v * L) : gemm_vec{};
#pragma GCC unroll 4  // fewer pointer updates and branches among the FMAs (+3-5% in L1)
    for (Index k = 0; k < K; ++k) {
        gemm_vec b[NV];
#pragma GCC unroll 16
        for (int v = 0; v < NV; ++v) b[v] = gemm_load(B + k * ldb + v * L);
#pragma GCC unroll 16
        for (int m = 0; m < MR; ++m) {
            const float a = A[m * lda + k];
#pragma GCC unroll 16
            for (int v = 0; v < NV; ++v) c[m][v] = gemm_fma(a, b[v], c[m][v]);
        }
    }
#pragma GCC unroll 16
    for (int m = 0; m < MR; ++m)
#pragma GCC unroll 16
        for (int v = 0; v < NV; ++v) gemm_store(C + m * ldc + v * L, c[m][v]);
}

// Tile with `rows` <= MR rows: picks gemm_tile<rows, NV> at run time.
template <int MR, int NV>
inline void gemm_tile_rows(int rows, bool accumulate, Index K, const float* A, Index lda, const float* B, Index ldb, float* C,
                           Index ldc) {
    if constexpr (MR > 0) {
        if (rows == MR) gemm_tile<MR, NV>(accumulate, K, A, lda, B, ldb, C, ldc);
        else gemm_tile_rows<MR - 1, NV>(rows, accumulate, K, A, lda, B, ldb, C, ldc);
    }
}

// Columns [j, j + NV*L) for all M rows, in tiles of MR rows.
template <int MR, int NV>
inline void gemm_panel(Index M, Index K, const float* A, Index lda, const float* B, Index ldb, float* C, Index ldc, bool accumulate) {
    for (Index i = 0; i < M; i += MR)
        gemm_tile_rows<MR, NV>(static_cast<int>(std::min<Index>(MR, M - i)), accumulate, K, A + i * lda, lda, B, ldb, C + i * ldc, ldc);
}

// Panels of NV vectors, then the remaining whole vectors (fewer than NV)
// in one narrower panel. Returns how many columns were done.
template <int MR, int NV>
inline Index gemm_panels(Index M, Index N, Index K, const float* A, Index lda, const float* B, Index ldb, float* C, Index ldc,
                         bool accumulate) {
    constexpr Index width = NV * kGemmLanes;
    Index j = 0;
    for (; j + width <= N; j += width) gemm_panel<MR, NV>(M, K, A, lda, B + j, ldb, C + j, ldc, accumulate);
    const Index rest = (N - j) / kGemmLanes;
    if constexpr (NV > 3)
        if (rest == 3) gemm_panel<MR, 3>(M, K, A, lda, B + j, ldb, C + j, ldc, accumulate);
    if constexpr (NV > 2)
        if (rest == 2) gemm_panel<MR, 2>(M, K, A, lda, B + j, ldb, C + j, ldc, accumulate);
    if constexpr (NV > 1)
        if (rest == 1) gemm_panel<MR, 1>(M, K, A, lda, B + j, ldb, C + j, ldc, accumulate);
    return j + rest * kGemmLanes;
}

// The last N % L columns: copied into an L-wide zero-padded scratch and run
// through the same kernel, so that they too are k-ordered sums.
template <int MR>
inline void gemm_tail(Index M, Index cols, Index K, const float* A, Index lda, const float* B, Index ldb, float* C, Index ldc,
                      bool accumulate) {
    constexpr int L = kGemmLanes;
    thread_local std::vector<float> scratch;
    scratch.assign(static_cast<std::size_t>((K + M) * L), 0.0f);
    float* b = scratch.data();
    float* c = b + K * L;
    for (Index k = 0; k < K; ++k) std::copy(B + k * ldb, B + k * ldb + cols, b + k * L);
    if (accumulate)
        for (Index i = 0; i < M; ++i) std::copy(C + i * ldc, C + i * ldc + cols, c + i * L);
    gemm_panel<MR, 1>(M, K, A, lda, b, L, c, L, accumulate);
    for (Index i = 0; i < M; ++i) std::copy(c + i * L, c + i * L + cols, C + i * ldc);
}

// B's panel of NV vectors packed a block of rows at a time: rows [k0, k0 + rows) copied one after another,
// so that the block is contiguous in L1 while every tile of rows runs over it. Read in place, a panel's
// rows sit ldb apart; with ldb a multiple of 256 floats (a 1x1 conv's 16 x 16 plane, Linear's 512) they
// all fall in a quarter of L1's sets, and a panel of 64 rows already overflows their ways: every tile then
// streamed the panel from L2 (one thread, 128 x 256 x 64 over 32 images: 58% of the FMA peak; 128 x 256 x
// 576: 56%). Copying a whole row of several panels at a time, for the prefetchers, gained nothing.
struct GemmPackBuffer;  // gemm()'s own aligned_thread_buffer
inline float* gemm_pack_buffer() { return aligned_thread_buffer<GemmPackBuffer>(gemm_pack_floats()); }

//   packed[k][0, NV * L) = B[k, (0, NV * L)],  k < rows
template <int NV>
inline void gemm_pack_panel(Index rows, const float* B, Index ldb, float* packed) {
    constexpr int L = kGemmLanes;
    for (Index k = 0; k < rows; ++k)
#pragma GCC unroll 16
        for (int v = 0; v < NV; ++v) gemm_store(packed + k * NV * L + v * L, gemm_load(B + k * ldb + v * L));
}

// gemm_panels on packed blocks: for each panel, for each block of B's rows, all M rows of C. A tile's sum
// carries over blocks through C (stored and reloaded exactly), so every element is still the k-ordered
// sum from zero: bitwise gemm_panels' result.
template <int MR, int NV>
inline Index gemm_packed_panels(Index M, Index N, Index K, const float* A, Index lda, const float* B, Index ldb, float* C,
                                Index ldc, bool accumulate) {
    constexpr Index width = NV * kGemmLanes;
    const Index block = gemm_pack_floats() / width;
    float* packed = gemm_pack_buffer();
    Index j = 0;
    for (; j + width <= N; j += width)
        for (Index k0 = 0; k0 < K; k0 += block) {
            const Index rows = std::min(block, K - k0);
            gemm_pack_panel<NV>(rows, B + k0 * ldb + j, ldb, packed);
            gemm_panel<MR, NV>(M, rows, A + k0, lda, packed, width, C + j, ldc, accumulate || k0 > 0);
        }
    if (j < N) return j + gemm_panels<MR, NV>(M, N - j, K, A, lda, B + j, ldb, C + j, ldc, accumulate);  // the narrower panel: in place
    return j;
}

// Packing pays where a panel's rows are spread (B at least 4 panels wide) and enough tiles of rows reuse
// each block. A product of a few rows or of a short K reads B in place, and so does one whose panel is (nearly)
// contiguous already: the Winograd products (kernels/conv2d_winograd.hpp, 36 rows times U[xi], 64 or 128
// wide) packed made conv_bench's 3x3 64- and 128-channel cells 6-17% slower.
constexpr Index kGemmPackMinTiles = 3, kGemmPackMinK = 16, kGemmPackMinPanels = 4;
template <int MR, int NV>
inline Index gemm_some_panels(Index M, Index N, Index K, const float* A, Index lda, const float* B, Index ldb, float* C,
                              Index ldc, bool accumulate) {
    if (K > kGemmPackMinK && M >= kGemmPackMinTiles * MR && ldb >= kGemmPackMinPanels * NV * kGemmLanes)
        return gemm_packed_panels<MR, NV>(M, N, K, A, lda, B, ldb, C, ldc, accumulate);
    return gemm_panels<MR, NV>(M, N, K, A, lda, B, ldb, C, ldc, accumulate);
}

inline void gemm_float(Index M, Index N, Index K, const float* A, Index lda, const float* B, Index ldb, float* C, Index ldc,
                       bool accumulate) {
    // Tiles use about 3/4 of the vector registers for C: 6x4 or 12x2 with 32, 3x4 or 6x2 with 16.
    constexpr int wide = kGemmRegisters == 32 ? 6 : 3, narrow = 2 * wide;
    Index done;
    if (N >= 4 * kGemmLanes) done = gemm_some_panels<wide, 4>(M, N, K, A, lda, B, ldb, C, ldc, accumulate);
    else if (N >= 2 * kGemmLanes) done = gemm_some_panels<narrow, 2>(M, N, K, A, lda, B, ldb, C, ldc, accumulate);
    else done = gemm_some_panels<narrow, 1>(M, N, K, A, lda, B, ldb, C, ldc, accumulate);
    if (done < N) gemm_tail<narrow>(M, N - done, K, A, lda, B + done, ldb, C + done, ldc, accumulate);
}
#endif

}  // namespace detail

namespace detail {
#ifdef EIGENCNN_GEMM_KERNEL
// Columns [j, j + NV*L) of gemm_ones_row: NV chains of adds side by side.
template <int NV>
inline void gemm_ones_row_vectors(Index j, Index K, const float* B, Index ldb, float* c) {
    gemm_vec acc[NV];
    for (int v = 0; v < NV; ++v) acc[v] = gemm_load(c + j + v * kGemmLanes);
    for (Index k = 0; k < K; ++k)
        for (int v = 0; v < NV; ++v) acc[v] = acc[v] + gemm_load(B + k * ldb + j + v * kGemmLanes);
    for (int v = 0; v < NV; ++v) gemm_store(c + j + v * kGemmLanes, acc[v]);
}
#endif
}  // namespace detail

/// c[0, N) += B[0, .] + B[1, .] + ... + B[K - 1, .], in that order: the row of C that a row of ones in A gives
/// (gemm's fma(1, b, c) is c + b, one rounding), bitwise, without A's row. B [K, N] with leading dimension ldb.
/// Four vectors of columns at a time (then two, then one), so that four chains of adds wait on each other's
/// latency, not one.
template <typename T>
void gemm_ones_row(Index N, Index K, const T* B, Index ldb, T* c) {
    Index j = 0;
#ifdef EIGENCNN_GEMM_KERNEL
    if constexpr (std::is_same_v<T, float>) {
        constexpr Index L = detail::kGemmLanes;
        for (; j + 4 * L <= N; j += 4 * L) detail::gemm_ones_row_vectors<4>(j, K, B, ldb, c);
        if (j + 2 * L <= N) detail::gemm_ones_row_vectors<2>(j, K, B, ldb, c), j += 2 * L;
        if (j + L <= N) detail::gemm_ones_row_vectors<1>(j, K, B, ldb, c), j += L;
    }
#endif
    for (; j < N; ++j) {
        T acc = c[j];
        for (Index k = 0; k < K; ++k) acc += B[k * ldb + j];
        c[j] = acc;
    }
}

/// C[M, N] = A[M, K] * B[K, N], or C += A * B when `accumulate`; row-major
/// with leading dimensions lda, ldb, ldc. Single-threaded; C must not
/// overlap A or B.
template <typename T>
void gemm(Index M, Index N, Index K, const T* A, Index lda, const T* B, Index ldb, T* C, Index ldc, bool accumulate = false) {
#ifdef EIGENCNN_GEMM_KERNEL
    if constexpr (std::is_same_v<T, float>) {
        detail::gemm_float(M, N, K, A, lda, B, ldb, C, ldc, accumulate);
        return;
    }
#endif
    detail::gemm_eigen(M, N, K, A, lda, B, ldb, C, ldc, accumulate);
}

}  // namespace eigencnn
