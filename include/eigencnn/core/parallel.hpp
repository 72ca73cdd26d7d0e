// SPDX-License-Identifier: MIT
// eigencnn/core/parallel.hpp
//
// for_each_fixed_chunk(size, body): the loop every elementwise computation uses (optimizer updates,
// activation functions) so that its result is bitwise the same on any thread count.
//
// body(lo, n) handles [lo, lo + n). The range is cut into chunks of 4096 elements whatever the thread
// count, and threads share the chunks (in parallel from 2^14 elements on). A vectorised body (Eigen array
// expressions, `omp simd`) computes a chunk's elements with packets and its last few with scalar code,
// and the two may round differently (a contracted multiply-add in one and not the other; Eigen's packet
// exp or tanh against std::tanh). Every chunk starts at a multiple of 4096 elements, a multiple of every
// SIMD width and of the alignment of a Tensor's data (Eigen's, at most 64 bytes), so the same elements
// fall to the same code on 1 thread or 7. A split per thread (`parallel for` over elements) would move
// those boundaries.
//
// all_finite(t): whether a tensor holds no NaN and no infinity, over the same chunks on all threads: the
// checks training and inference make on every batch (a batch of 1,000 MNIST images is 3 MB to read).
#pragma once

#include "omp.hpp"
#include "tensor.hpp"

#include <algorithm>

namespace eigencnn {

constexpr Index kFixedChunk = Index{1} << 12;

/// Elements from which a layer's loop over elements, planes or rows wakes the thread team; below it the team's
/// start and end cost more than the loop (a batch of 1). Each element is computed the same way either way.
constexpr Index kParallelElements = 4 * kFixedChunk;

template <typename Body>
void for_each_fixed_chunk(Index size, Body&& body) {
    const Index chunks = (size + kFixedChunk - 1) / kFixedChunk;
    EIGENCNN_OMP(parallel for schedule(static) if (size >= 4 * kFixedChunk))
    for (Index c = 0; c < chunks; ++c) body(c * kFixedChunk, std::min(kFixedChunk, size - c * kFixedChunk));
}

/// Whether every value of t is finite (no NaN, no infinity); the answer does not depend on the thread count.
template <typename T>
bool all_finite(const Tensor<T>& t) {
    const Index size = t.size(), chunks = (size + kFixedChunk - 1) / kFixedChunk;
    const T* data = t.data();
    bool finite = true;
    EIGENCNN_OMP(parallel for schedule(static) reduction(&& : finite) if (size >= 4 * kFixedChunk))
    for (Index c = 0; c < chunks; ++c) {
        const Index n = std::min(kFixedChunk, size - c * kFixedChunk);
        finite = finite && Eigen::Map<const Eigen::Array<T, Eigen::Dynamic, 1>>(data + c * kFixedChunk, n).allFinite();
    }
    return finite;
}

}  // namespace eigencnn
