// SPDX-License-Identifier: MIT
// eigencnn/kernels/matmul.hpp
//
// matmul_rows(dst, lhs, rhs): dst = lhs * rhs, with the rows of dst cut into
// fixed blocks of 64 that OpenMP threads share. Inside a parallel region
// Eigen runs each block's GEMM on one thread, so every block, and every
// element, is computed the same way whatever the number of threads: the
// result is bitwise reproducible. (Eigen's own threaded GEMM splits rows by
// thread count, and its remainder kernels accumulate in another order, so
// results would change in the last bits between 1 and 2 threads.)
#pragma once

#include "../core/omp.hpp"

#include "../core/tensor.hpp"

#include <algorithm>

namespace eigencnn {

constexpr Index kMatmulRowBlock = 64;

template <typename Dst, typename Lhs, typename Rhs>
void matmul_rows(Dst&& dst, const Lhs& lhs, const Rhs& rhs) {
    const Index rows = dst.rows();
    const Index blocks = (rows + kMatmulRowBlock - 1) / kMatmulRowBlock;
    EIGENCNN_OMP(parallel for schedule(static))
    for (Index b = 0; b < blocks; ++b) {
        const Index r = b * kMatmulRowBlock, len = std::min(kMatmulRowBlock, rows - r);
        dst.middleRows(r, len).noalias() = lhs.middleRows(r, len) * rhs;
    }
}

}  // namespace eigencnn
