// SPDX-License-Identifier: MIT
// eigencnn/kernels/matmul.hpp
//
// gemm_rows: C[M, N] = A[M, K] * B[K, N] (row-major, leading dimensions lda,
// ldb, ldc) on all threads, for Linear. Each thread takes a share of C's rows
// (or, with few rows, of its columns) and runs single-threaded gemm() calls
// (kernels/gemm.hpp) on it; gemm()'s every element is the k-ordered sum
// whatever the tile or call, so the result is bitwise the same on any number
// of threads. Eigen's path (matmul_rows) cuts the rows into fixed blocks of
// 64 instead: Eigen's own threaded GEMM splits rows by thread count, and its
// remainder kernels accumulate in another order.
//
// Linear used Eigen's GEMM per block (matmul_rows, below) until gemm()'s
// broadcast was fixed: Eigen packs the whole right-hand side again for every
// block of rows, and at [500, 512] x [512, 512] the register-tiled kernel,
// reading B in place, is now the faster with AVX-512 (forward, dW and dx:
// 1.00-1.07 -> 0.66-0.91 ms on 2 threads, scratch timing program, medians
// of 15). Elsewhere Linear keeps matmul_rows: not measured there.
#pragma once

#include "../core/omp.hpp"

#include "../core/tensor.hpp"
#include "../core/threads.hpp"
#include "gemm.hpp"
#include "transpose.hpp"

#include <algorithm>
#include <type_traits>

namespace eigencnn {

constexpr Index kMatmulRowBlock = 64;

/// f(r, len) for each fixed block of rows [r, r + len), len = kMatmulRowBlock but for the last, the blocks shared
/// among the OpenMP threads; the blocks do not depend on the thread count.
template <typename F>
void for_row_blocks(Index rows, F&& f) {
    const Index blocks = (rows + kMatmulRowBlock - 1) / kMatmulRowBlock;
    EIGENCNN_OMP(parallel for schedule(static))
    for (Index b = 0; b < blocks; ++b) {
        const Index r = b * kMatmulRowBlock;
        f(r, std::min(kMatmulRowBlock, rows - r));
    }
}

/// dst = lhs * rhs (Eigen expressions) in the fixed row blocks, each block Eigen's GEMM on one thread:
/// what Linear runs where gemm()'s speed was not measured (no AVX-512, or double).
template <typename Dst, typename Lhs, typename Rhs>
void matmul_rows(Dst&& dst, const Lhs& lhs, const Rhs& rhs) {
    for_row_blocks(dst.rows(), [&](Index r, Index len) { dst.middleRows(r, len).noalias() = lhs.middleRows(r, len) * rhs; });
}

/// gemm()'s rows over the threads: each thread one contiguous share of whole tiles (kGemmShareRows, a multiple of
/// both tile heights), in one call, so that gemm() packs each block of B once for all the share's rows (in calls
/// of 60 rows, packing made Linear(512, 512) slower, not faster).
/// gemm()'s every element is the k-ordered sum whatever the tile, so the result does not depend on the split; the
/// fixed blocks of 64 (for_row_blocks) left the thread holding the short last block waiting, and every block
/// ended in a short tile (M = 500 on two threads: 64 = 10 x 6 + 4; each panel's 4-row tile ran at half the rate).
/// Products of fewer than kGemmRowBlock rows run on one thread (or share columns: gemm_rows).
constexpr Index kGemmShareRows = 12, kGemmRowBlock = 60;
template <typename F>
void for_gemm_row_shares(Index rows, F&& f) {
    EIGENCNN_OMP(parallel if (rows > kGemmRowBlock))
    {
        const ThreadShare share = thread_share(rows, thread_index(), num_threads_in_region(), kGemmShareRows);
        if (share.end > share.begin) f(share.begin, share.end - share.begin);
    }
}

/// C[M, N] = A[M, K] * B[K, N] on all threads: gemm() calls over the rows; for float on gemm()'s kernel each
/// thread takes a share of whole tiles (for_gemm_row_shares), or, with fewer rows than one block and at least
/// two panels of columns, a share of the columns in whole panels (Linear's weight gradient with few outputs,
/// [10, 500] x [500, 512] on the seed model: one thread did it while the other waited); otherwise the fixed
/// row blocks.
template <typename T>
void gemm_rows(Index M, Index N, Index K, const T* A, Index lda, const T* B, Index ldb, T* C, Index ldc) {
    auto product = [&](Index r, Index len) { gemm(len, N, K, A + r * lda, lda, B, ldb, C + r * ldc, ldc); };
#ifdef EIGENCNN_GEMM_KERNEL
    if constexpr (std::is_same_v<T, float>) {
        constexpr Index panel = 4 * detail::kGemmLanes;
        if (M >= kGemmRowBlock || N < 2 * panel) return for_gemm_row_shares(M, product);
        EIGENCNN_OMP(parallel if (M * N * K >= (Index{1} << 20)))
        {
            const ThreadShare share = thread_share(N, thread_index(), num_threads_in_region(), panel);
            if (share.end > share.begin)
                gemm(M, share.end - share.begin, K, A, lda, B + share.begin, ldb, C + share.begin, ldc);
        }
        return;
    }
#endif
    for_row_blocks(M, product);
}

/// Batches up to this many rows take linear_few_rows (below) where it exists.
constexpr Index kLinearFewRows = 8;

#if defined(EIGENCNN_GEMM_KERNEL) && defined(__AVX512F__)
/// Linear's forward for a few rows (N <= kLinearFewRows, float, AVX-512): y [N, out] = x [N, in] W^T, reading
/// W [out, in] in place. gemm() wants W^T's rows contiguous: for a few rows, copying W (1 MB at 512 x 512) costs
/// more than the product, and y^T = W x^T instead fills 16 lanes with the N < 16 columns of x^T (batch 1: one
/// lane of 16). Here each 16 x 16 block of W is transposed in registers (transpose16), and every output's sum
/// runs over k in order from zero, as gemm()'s: bitwise the other two paths' values.
///   per block of 16 outputs o0..o0+15:  acc[n] += x[n, k] * W[o0:o0+16, k],  k = 0 .. in-1

template <int NR>
void linear_few_rows_block(Index in, Index out, const float* x, const float* w, Index o0, float* y) {
    const Index rows = std::min<Index>(16, out - o0);
    __m512 acc[NR];
    for (int n = 0; n < NR; ++n) acc[n] = _mm512_setzero_ps();
    for (Index k0 = 0; k0 < in; k0 += 16) {
        const Index kn = std::min<Index>(16, in - k0);
        const __mmask16 columns = static_cast<__mmask16>(kn == 16 ? 0xffff : (1u << kn) - 1);
        __m512 wt[16];
        for (Index i = 0; i < 16; ++i)
            wt[i] = i < rows ? _mm512_maskz_loadu_ps(columns, w + (o0 + i) * in + k0) : _mm512_setzero_ps();
        detail::transpose16(wt);  // wt[j] = W[o0:o0+16, k0 + j]
        if (kn == 16) {
#pragma GCC unroll 16
            for (int j = 0; j < 16; ++j)
#pragma GCC unroll 8
                for (int n = 0; n < NR; ++n) acc[n] = _mm512_fmadd_ps(_mm512_set1_ps(x[n * in + k0 + j]), wt[j], acc[n]);
        } else {
            for (Index j = 0; j < kn; ++j)
#pragma GCC unroll 8
                for (int n = 0; n < NR; ++n) acc[n] = _mm512_fmadd_ps(_mm512_set1_ps(x[n * in + k0 + j]), wt[j], acc[n]);
        }
    }
    const __mmask16 outputs = static_cast<__mmask16>(rows == 16 ? 0xffff : (1u << rows) - 1);
    for (int n = 0; n < NR; ++n) _mm512_mask_storeu_ps(y + n * out + o0, outputs, acc[n]);
}

template <int NR>
void linear_few_rows_n(Index in, Index out, const float* x, const float* w, float* y) {
    const Index blocks = (out + 15) / 16;
    EIGENCNN_OMP(parallel for schedule(static) if (blocks * in * NR >= (Index{1} << 13)))
    for (Index b = 0; b < blocks; ++b) linear_few_rows_block<NR>(in, out, x, w, 16 * b, y);
}

/// y [N, out] = x [N, in] W^T for 1 <= N <= kLinearFewRows (see above), output blocks of 16 shared among threads.
inline void linear_few_rows(Index N, Index in, Index out, const float* x, const float* w, float* y) {
    switch (N) {
        case 1: return linear_few_rows_n<1>(in, out, x, w, y);
        case 2: return linear_few_rows_n<2>(in, out, x, w, y);
        case 3: return linear_few_rows_n<3>(in, out, x, w, y);
        case 4: return linear_few_rows_n<4>(in, out, x, w, y);
        case 5: return linear_few_rows_n<5>(in, out, x, w, y);
        case 6: return linear_few_rows_n<6>(in, out, x, w, y);
        case 7: return linear_few_rows_n<7>(in, out, x, w, y);
        case 8: return linear_few_rows_n<8>(in, out, x, w, y);
        default: throw std::logic_error("linear_few_rows: N must be 1 to 8");
    }
}
#endif

}  // namespace eigencnn
