// SPDX-License-Identifier: MIT
// eigencnn/loss/cross_entropy.hpp
//
// cross_entropy: torch.nn.CrossEntropyLoss on logits, mean over the batch.
//
//   logits z [N, K], labels y[n] in [0, K)
//   log_softmax(z)[n, k] = z[n, k] - m_n - log(sum_j exp(z[n, j] - m_n)),  m_n = max_j z[n, j]
//   loss = -(1/N) * sum_n log_softmax(z)[n, y_n]
//   dloss/dz[n, k] = (softmax(z)[n, k] - [k == y_n]) / N
#pragma once

#include "../core/tensor.hpp"

#include <cmath>
#include <stdexcept>
#include <string>
#include <vector>

namespace eigencnn {

template <typename T>
struct LossResult {
    T loss;          ///< mean loss over the batch
    Tensor<T> grad;  ///< dloss/dlogits, same shape as the logits
};

/// Loss and gradient into `grad` (resized to the logits' shape, reusing its storage).
template <typename T>
T cross_entropy(const Tensor<T>& logits, const std::vector<int>& labels, Tensor<T>& grad) {
    if (logits.shape().rank() != 2)
        throw std::invalid_argument("cross_entropy: expected logits [N, classes], got " + logits.shape().str());
    const Index N = logits.dim(0), K = logits.dim(1);
    if (N == 0) throw std::invalid_argument("cross_entropy: empty batch");
    if (static_cast<Index>(labels.size()) != N)
        throw std::invalid_argument("cross_entropy: " + std::to_string(labels.size()) + " labels for " + std::to_string(N) +
                                    " rows of logits");
    grad.resize(logits.shape());
    double total = 0;  // accumulated in double: the mean of 500 float losses loses digits otherwise
    for (Index n = 0; n < N; ++n) {
        const int y = labels[static_cast<std::size_t>(n)];
        if (y < 0 || y >= K)
            throw std::invalid_argument("cross_entropy: label " + std::to_string(y) + " of sample " + std::to_string(n) +
                                        " is outside [0, " + std::to_string(K) + ")");
        const T* z = logits.data() + n * K;
        T* g = grad.data() + n * K;
        T m = z[0];
        for (Index k = 1; k < K; ++k) m = std::max(m, z[k]);
        T sum = 0;
        for (Index k = 0; k < K; ++k) sum += (g[k] = std::exp(z[k] - m));
        const T log_sum = std::log(sum);
        total -= static_cast<double>(z[y] - m - log_sum);
        const T scale = T(1) / (sum * static_cast<T>(N));
        for (Index k = 0; k < K; ++k) g[k] *= scale;
        g[y] -= T(1) / static_cast<T>(N);
    }
    return static_cast<T>(total / static_cast<double>(N));
}

/// Convenience form that returns a fresh gradient tensor.
template <typename T>
LossResult<T> cross_entropy(const Tensor<T>& logits, const std::vector<int>& labels) {
    LossResult<T> r;
    r.loss = cross_entropy(logits, labels, r.grad);
    return r;
}

}  // namespace eigencnn
