// SPDX-License-Identifier: MIT
// eigencnn/train/evaluate.hpp
//
// accuracy: share of predictions equal to the labels, a fraction in [0, 1];
// evaluate: a model's accuracy on a data set (predict is in inference.hpp).
#pragma once

#include "inference.hpp"

namespace eigencnn {

/// Share of `predicted` equal to `labels`.
inline double accuracy(const std::vector<int>& predicted, const std::vector<int>& labels) {
    if (predicted.size() != labels.size() || labels.empty())
        throw std::invalid_argument("accuracy: " + std::to_string(predicted.size()) + " predictions for " + std::to_string(labels.size()) +
                                    " labels");
    std::size_t ok = 0;
    for (std::size_t i = 0; i < labels.size(); ++i) ok += predicted[i] == labels[i];
    return static_cast<double>(ok) / static_cast<double>(labels.size());
}

/// Test accuracy of `model` on `data`.
template <typename T>
double evaluate(Sequential<T>& model, const Dataset<T>& data, Index batch_size = 1000) {
    return accuracy(predict(model, data, batch_size), data.labels);
}

}  // namespace eigencnn
