// SPDX-License-Identifier: MIT
// eigencnn/kernels/matmul.hpp
//
// gemm_rows: C[M, N] = A[M, K] * B[K, N] (row-major, leading dimensions lda,
// ldb, ldc) on all threads, for Linear. The rows of C are cut into fixed
// blocks of 64 that OpenMP threads share, each block one single-threaded
// gemm() (kernels/gemm.hpp), whose every element is the k-ordered sum
// whatever the block: the result is bitwise the same on any number of
// threads. (Eigen's own threaded GEMM splits rows by thread count, and its
// remainder kernels accumulate in another order.)
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
#include "gemm.hpp"

#include <algorithm>

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

/// C[M, N] = A[M, K] * B[K, N] in the fixed row blocks, each block one gemm() call.
template <typename T>
void gemm_rows(Index M, Index N, Index K, const T* A, Index lda, const T* B, Index ldb, T* C, Index ldc) {
    for_row_blocks(M, [&](Index r, Index len) { gemm(len, N, K, A + r * lda, lda, B, ldb, C + r * ldc, ldc); });
}

}  // namespace eigencnn
