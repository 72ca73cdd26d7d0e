// SPDX-License-Identifier: MIT
// eigencnn/core/tensor_allocator.hpp
//
// TensorAllocator<T>: where Tensor keeps its elements. Blocks below
// kHugeBlockBytes come from Eigen's aligned allocation, as before. Larger ones
// (a data set, a batch's activations) are 2 MiB aligned, rounded up to whole
// 2 MiB, and marked MADV_HUGEPAGE on Linux, so that the kernel backs them with
// 2 MiB pages where it can: transparent huge pages in "madvise" mode,
// Debian's default, give them to exactly such regions. A fresh block is
// otherwise faulted in 4 KiB at a time, and in a virtual machine each fault is
// expensive: on the project machine, writing 188 MB just allocated (MNIST's
// training images as floats) took 520-600 ms in 4 KiB pages and 16 ms in
// 2 MiB ones (docs/performance.md). The memory a block uses grows by at most
// the rounding (under 2 MiB, and under a quarter of the block); where the
// kernel has no huge pages to give, the hint changes nothing.
#pragma once

#include <Eigen/Core>

#include <cstddef>
#include <cstdlib>
#include <limits>
#include <new>

#if defined(__linux__)
#include <sys/mman.h>
#endif

namespace eigencnn {

template <typename T>
struct TensorAllocator {
    using value_type = T;

    static constexpr std::size_t kHugePageBytes = std::size_t(2) << 20;
    static constexpr std::size_t kHugeBlockBytes = std::size_t(8) << 20;
#if defined(__linux__) && defined(MADV_HUGEPAGE)
    static constexpr bool kHugePages = true;  // blocks of kHugeBlockBytes and more: 2 MiB aligned, MADV_HUGEPAGE
#else
    static constexpr bool kHugePages = false;
#endif

    TensorAllocator() = default;
    template <typename U>
    TensorAllocator(const TensorAllocator<U>&) noexcept {}

    T* allocate(std::size_t n) {
        if (n > std::numeric_limits<std::size_t>::max() / sizeof(T) - kHugePageBytes) throw std::bad_array_new_length();
        const std::size_t bytes = n * sizeof(T);
#if defined(__linux__) && defined(MADV_HUGEPAGE)
        if (bytes >= kHugeBlockBytes) {
            const std::size_t rounded = (bytes + kHugePageBytes - 1) / kHugePageBytes * kHugePageBytes;
            void* p = nullptr;
            if (::posix_memalign(&p, kHugePageBytes, rounded) != 0) throw std::bad_alloc();
            (void)::madvise(p, rounded, MADV_HUGEPAGE);  // a hint: on failure (no THP in this kernel) plain pages
            return static_cast<T*>(p);
        }
#endif
        return static_cast<T*>(Eigen::internal::aligned_malloc(bytes));  // throws std::bad_alloc
    }

    void deallocate(T* p, std::size_t n) noexcept {
#if defined(__linux__) && defined(MADV_HUGEPAGE)
        if (n * sizeof(T) >= kHugeBlockBytes) return std::free(p);
#endif
        (void)n;
        Eigen::internal::aligned_free(p);
    }
};

template <typename T, typename U>
bool operator==(const TensorAllocator<T>&, const TensorAllocator<U>&) noexcept {
    return true;
}
template <typename T, typename U>
bool operator!=(const TensorAllocator<T>&, const TensorAllocator<U>&) noexcept {
    return false;
}

}  // namespace eigencnn
