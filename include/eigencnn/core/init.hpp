// SPDX-License-Identifier: MIT
// eigencnn/core/init.hpp
//
// PyTorch's default initialisation for Conv2d and Linear:
// kaiming_uniform_(a = sqrt(5)) for the weight, which is U(-b, b) with
// b = 1 / sqrt(fan_in), and the same bound for the bias.
#pragma once

#include "random.hpp"
#include "tensor.hpp"

#include <cmath>

namespace eigencnn {

/// Fill t with independent draws from U(-bound, bound).
template <typename T>
void uniform_fill(Tensor<T>& t, double bound, Rng& rng) {
    for (Index i = 0; i < t.size(); ++i) t[i] = static_cast<T>(rng.uniform(-bound, bound));
}

/// The bound PyTorch uses for a layer with fan_in inputs per output.
inline double default_init_bound(Index fan_in) { return 1.0 / std::sqrt(static_cast<double>(fan_in)); }

/// Seed a layer uses when constructed without a generator.
constexpr std::uint64_t kDefaultInitSeed = 0x5eed;

}  // namespace eigencnn
