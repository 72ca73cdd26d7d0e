// SPDX-License-Identifier: MIT
// eigencnn/backdoor/defenses/representations.hpp
//
// What the representation-based defenses read from a model, through
// train/inference.hpp's features() (batches, eval mode, no gradients, the
// model not copied):
//
//   penultimate_layer(model)          index of the layer before the last: for mnist_cnn the
//                                     ReLU after Linear(512, 512), the "last hidden layer"
//   representations(model, data, l)   R [N, S] in double: layer l's output per sample, flattened
//   indices_by_label(labels, K)       the sample indices of each label 0..K-1
#pragma once

#include "../../analysis/pca.hpp"
#include "../../train/inference.hpp"

#include <vector>

namespace eigencnn {

/// The layer before the model's last (its representations feed the classifier).
template <typename T>
std::size_t penultimate_layer(const Sequential<T>& model) {
    if (model.size() < 2) throw std::invalid_argument("penultimate_layer: the model has " + std::to_string(model.size()) + " layers, needs 2");
    return model.size() - 2;
}

/// Layer `layer`'s output for every sample of `data`, one flattened row per sample: [N, S].
template <typename T>
Eigen::MatrixXd representations(Sequential<T>& model, const Dataset<T>& data, std::size_t layer, Index batch_size = 1000) {
    const Tensor<T> f = features(model, data, layer, batch_size);
    return f.matrix(data.size(), f.shape().sample_size()).template cast<double>();
}

/// indices_by_label(labels, K)[k]: the indices i with labels[i] == k, increasing.
inline std::vector<std::vector<std::size_t>> indices_by_label(const std::vector<int>& labels, int num_classes) {
    std::vector<std::vector<std::size_t>> by(static_cast<std::size_t>(num_classes));
    for (std::size_t i = 0; i < labels.size(); ++i) {
        if (labels[i] < 0 || labels[i] >= num_classes)
            throw std::invalid_argument("indices_by_label: label " + std::to_string(labels[i]) + " of sample " + std::to_string(i) +
                                        " is outside [0, " + std::to_string(num_classes) + ")");
        by[static_cast<std::size_t>(labels[i])].push_back(i);
    }
    return by;
}

/// The rows `rows` of M.
inline Eigen::MatrixXd gather_rows(const Eigen::MatrixXd& M, const std::vector<std::size_t>& rows) {
    Eigen::MatrixXd out(static_cast<Eigen::Index>(rows.size()), M.cols());
    for (std::size_t r = 0; r < rows.size(); ++r) out.row(static_cast<Eigen::Index>(r)) = M.row(static_cast<Eigen::Index>(rows[r]));
    return out;
}

}  // namespace eigencnn
