// eigencnn/train/evaluate.hpp
//
// predict: class with the largest logit for each image, in batches.
// accuracy: share of a dataset predicted correctly, a fraction in [0, 1].
#pragma once

#include "../data/data_loader.hpp"
#include "../model/sequential.hpp"

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

/// Predicted class of every sample of `data`, computed batch_size at a time
/// in inference mode (the model's mode is restored afterwards).
template <typename T>
std::vector<int> predict(Sequential<T>& model, const Dataset<T>& data, Index batch_size = 1000) {
    struct Restore {
        Sequential<T>& m;
        bool was;
        ~Restore() { m.train(was); }
    } restore{model, model.is_training()};
    model.eval();
    DataLoader<T> loader(data, batch_size, /*shuffle=*/false);
    std::vector<int> pred;
    pred.reserve(static_cast<std::size_t>(data.size()));
    Batch<T> b;
    for (std::size_t i = 0; i < loader.num_batches(); ++i) {
        loader.load(i, b);
        const auto p = argmax_rows(model.forward(b.images));
        pred.insert(pred.end(), p.begin(), p.end());
    }
    return pred;
}

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
