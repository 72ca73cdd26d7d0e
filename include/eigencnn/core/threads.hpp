// SPDX-License-Identifier: MIT
// eigencnn/core/threads.hpp
//
// One setting for all parallelism: set_num_threads(n) sets both OpenMP's
// thread count (used by the library's own loops) and Eigen's (used by GEMM).
// Without OpenMP everything runs on one thread.
#pragma once

#include "omp.hpp"

#include <Eigen/Core>
#include <algorithm>
#include <cstdint>
#include <stdexcept>
#include <string>

#ifdef _OPENMP
#include <omp.h>
#endif

namespace eigencnn {

/// The most threads set_num_threads accepts (OpenMP runtimes crash or run out of memory far above it).
constexpr int kMaxThreads = 1024;

/// Use n threads (1 <= n <= kMaxThreads) for every later computation.
inline void set_num_threads(int n) {
    if (n < 1 || n > kMaxThreads)
        throw std::invalid_argument("set_num_threads: need 1 to " + std::to_string(kMaxThreads) + " threads, got " + std::to_string(n));
#ifdef _OPENMP
    omp_set_num_threads(n);
#endif
    Eigen::setNbThreads(n);
}

/// The number of threads computations will use.
inline int num_threads() {
#ifdef _OPENMP
    return omp_get_max_threads();
#else
    return 1;
#endif
}

/// Index of the calling thread inside a parallel region (0 outside one).
inline int thread_index() {
#ifdef _OPENMP
    return omp_get_thread_num();
#else
    return 0;
#endif
}

/// Number of threads of the enclosing parallel region (1 outside one).
inline int num_threads_in_region() {
#ifdef _OPENMP
    return omp_get_num_threads();
#else
    return 1;
#endif
}

/// Thread `part` of `parts`'s share [begin, end) of `count` items: nearly equal
/// contiguous ranges, in order, whose inner boundaries are multiples of `align`
/// (a range may be empty when count is small).
struct ThreadShare {
    std::int64_t begin, end;
};
inline ThreadShare thread_share(std::int64_t count, int part, int parts, std::int64_t align = 1) {
    auto boundary = [&](int k) {
        if (k >= parts) return count;
        const std::int64_t b = (count * k / parts + align / 2) / align * align;
        return b < count ? b : count;
    };
    return ThreadShare{boundary(part), boundary(part + 1)};
}

/// dst[0, count) = src[0, count), the threads copying one contiguous share each (above 64K elements). Layers
/// keep copies of their inputs for backward; copied on one thread, the seed model's were a serial part of each
/// training step that the other thread waited for.
template <typename T>
void parallel_copy(const T* src, std::int64_t count, T* dst) {
    EIGENCNN_OMP(parallel if (count >= (std::int64_t{1} << 16)))
    {
        const ThreadShare share = thread_share(count, thread_index(), num_threads_in_region(), 16);
        std::copy(src + share.begin, src + share.end, dst + share.begin);
    }
}

}  // namespace eigencnn
