// SPDX-License-Identifier: MIT
// eigencnn/train/inference.hpp
//
// Reading a model's outputs over a whole data set, batch_size samples at a
// time, in evaluation mode with gradients off (InferenceScope; the model's
// settings come back afterwards). Nothing copies the model.
//
//   logits(model, data)            [N, K]     the last layer's output
//   features(model, data, layer)   [N, ...]   the output of `layer` (index as added), e.g. the
//                                             penultimate layer's representations for a defense
//   per_sample_loss(model, data)   N values   cross-entropy of each sample, -log softmax(z)[y]
//   predict(model, data)           N labels   argmax of each row of the logits (first on ties)
//
// Images holding NaN or infinity are refused (std::invalid_argument naming
// the sample), so that no confident answer comes out of them.
#pragma once

#include "../core/parallel.hpp"
#include "../data/data_loader.hpp"
#include "../model/sequential.hpp"

#include <algorithm>
#include <cmath>
#include <functional>

namespace eigencnn {

/// Index of the largest entry of each row of logits [N, K] (the first on ties).
template <typename T>
std::vector<int> argmax_rows(const Tensor<T>& logits) {
    if (logits.shape().rank() != 2) throw std::invalid_argument("argmax_rows: expected [N, K], got " + logits.shape().str());
    std::vector<int> out(static_cast<std::size_t>(logits.dim(0)));
    const Index K = logits.dim(1);
    for (Index n = 0; n < logits.dim(0); ++n) {
        const T* z = logits.data() + n * K;
        out[static_cast<std::size_t>(n)] = static_cast<int>(std::max_element(z, z + K) - z);
    }
    return out;
}

namespace detail {

/// Run `model` over `data` in order, batch_size samples at a time, in inference;
/// on_batch(first sample index, batch, output) sees the output of `tap_layer`
/// (or of the last layer when tap_layer is the model's size).
template <typename T>
void for_each_output(Sequential<T>& model, const Dataset<T>& data, Index batch_size, std::size_t tap_layer, const char* caller,
                     const std::function<void(Index, const Batch<T>&, const Tensor<T>&)>& on_batch) {
    InferenceScope<T> scope(model);
    DataLoader<T> loader(data, batch_size, /*shuffle=*/false);
    Batch<T> b;
    Index first = 0;
    for (std::size_t i = 0; i < loader.num_batches(); ++i) {
        loader.load(i, b);
        if (!all_finite(b.images)) {
            const Index S = b.images.shape().sample_size();
            Index bad = 0;
            while (bad + 1 < b.images.dim(0) && b.images.matrix(b.images.dim(0), S).row(bad).allFinite()) ++bad;
            throw std::invalid_argument(std::string(caller) + ": image " + std::to_string(first + bad) +
                                        " of the data holds a non-finite value (NaN or infinity)");
        }
        if (tap_layer >= model.size()) {
            on_batch(first, b, model.forward(b.images));
        } else {
            model.forward(b.images, {tap_layer}, [&](std::size_t, const Tensor<T>& out) { on_batch(first, b, out); });
        }
        first += b.images.dim(0);
    }
}

}  // namespace detail

/// The output of layer `layer` (index as added) for every sample: [N, ...].
template <typename T>
Tensor<T> features(Sequential<T>& model, const Dataset<T>& data, std::size_t layer, Index batch_size = 1000) {
    if (layer >= model.size())
        throw std::out_of_range("features: layer " + std::to_string(layer) + " of a model with " + std::to_string(model.size()) + " layers");
    Tensor<T> out;
    detail::for_each_output<T>(model, data, batch_size, layer, "features", [&](Index first, const Batch<T>&, const Tensor<T>& y) {
        if (first == 0) out.resize(y.shape().with_batch(data.size()));
        const Index S = y.shape().sample_size();
        std::copy(y.data(), y.data() + y.size(), out.data() + first * S);
    });
    return out;
}

/// The model's output for every sample: [N, K].
template <typename T>
Tensor<T> logits(Sequential<T>& model, const Dataset<T>& data, Index batch_size = 1000) {
    if (model.size() == 0) throw std::logic_error("logits: the model has no layers");
    return features(model, data, model.size() - 1, batch_size);
}

/// Cross-entropy of each sample on its label (natural log, as torch's
/// F.cross_entropy(..., reduction='none')), computed in double.
template <typename T>
std::vector<double> per_sample_loss(Sequential<T>& model, const Dataset<T>& data, Index batch_size = 1000) {
    std::vector<double> loss(static_cast<std::size_t>(data.size()));
    detail::for_each_output<T>(model, data, batch_size, model.size(), "per_sample_loss",
                               [&](Index first, const Batch<T>& b, const Tensor<T>& z) {
                                   if (z.shape().rank() != 2) throw std::invalid_argument("per_sample_loss: the model's output is " + z.shape().str() + ", not [N, K]");
                                   const Index K = z.dim(1);
                                   for (Index n = 0; n < z.dim(0); ++n) {
                                       const T* row = z.data() + n * K;
                                       const int y = b.labels[static_cast<std::size_t>(n)];
                                       if (y < 0 || y >= K)
                                           throw std::invalid_argument("per_sample_loss: label " + std::to_string(y) + " of sample " +
                                                                       std::to_string(first + n) + " is outside [0, " + std::to_string(K) + ")");
                                       const double m = static_cast<double>(*std::max_element(row, row + K));
                                       double sum = 0;
                                       for (Index k = 0; k < K; ++k) sum += std::exp(static_cast<double>(row[k]) - m);
                                       loss[static_cast<std::size_t>(first + n)] = m + std::log(sum) - static_cast<double>(row[y]);
                                   }
                               });
    return loss;
}

/// Predicted class of every sample of `data`.
template <typename T>
std::vector<int> predict(Sequential<T>& model, const Dataset<T>& data, Index batch_size = 1000) {
    std::vector<int> pred;
    pred.reserve(static_cast<std::size_t>(data.size()));
    detail::for_each_output<T>(model, data, batch_size, model.size(), "predict", [&](Index, const Batch<T>&, const Tensor<T>& z) {
        const auto p = argmax_rows(z);
        pred.insert(pred.end(), p.begin(), p.end());
    });
    return pred;
}

}  // namespace eigencnn
