// SPDX-License-Identifier: MIT
// eigencnn/optim/clip.hpp
//
// clip_grad_norm: gradient clipping by global norm, as
// torch.nn.utils.clip_grad_norm_(parameters, max_norm) (norm_type 2):
//
//   total = sqrt(sum over every parameter's gradient of g^2)
//   coef  = max_norm / (total + 1e-6)
//   if coef < 1: every gradient *= coef
//   returns total (the norm before clipping)
// The sum runs in double, in parameter and element order, so the result does
// not depend on the thread count. A non-finite total leaves the gradients
// as they are (and is returned, so that the caller can tell).
#pragma once

#include "../core/layer.hpp"

#include <cmath>

namespace eigencnn {

template <typename T>
double clip_grad_norm(const std::vector<Parameter<T>>& params, double max_norm) {
    if (!(max_norm >= 0)) throw std::invalid_argument("clip_grad_norm: max_norm must be >= 0, got " + std::to_string(max_norm));
    double sum = 0;
    for (const auto& p : params) {
        if (!p.grad) throw std::invalid_argument("clip_grad_norm: parameter '" + p.name + "' has no gradient");
        const T* g = p.grad->data();
        for (Index i = 0; i < p.grad->size(); ++i) sum += static_cast<double>(g[i]) * static_cast<double>(g[i]);
    }
    const double total = std::sqrt(sum);
    const double coef = max_norm / (total + 1e-6);
    if (std::isfinite(total) && coef < 1)
        for (const auto& p : params) p.grad->vector() *= static_cast<T>(coef);
    return total;
}

}  // namespace eigencnn
