// SPDX-License-Identifier: MIT
// eigencnn/model/mnist_cnn.hpp
//
// The notebook's MNIST network:
//   [N, 1, 28, 28] Conv2d(1, 16, 5) ReLU MaxPool2d(2)    -> [N, 16, 12, 12]
//                  Conv2d(16, 32, 5) ReLU MaxPool2d(2)   -> [N, 32, 4, 4]
//                  Flatten Linear(512, 512) ReLU Linear(512, 10) -> [N, 10] logits
// mnist_cnn_bn: the same with a BatchNorm2d after each Conv2d (Conv2d, BatchNorm2d,
// ReLU, MaxPool2d), the "BatchNorm CNN" of the benchmarks; in eval mode the
// plan folds each BatchNorm2d into its Conv2d (fusion/fold_batchnorm.hpp).
#pragma once

#include "../layers/batchnorm.hpp"
#include "../layers/conv2d.hpp"
#include "../layers/flatten.hpp"
#include "../layers/linear.hpp"
#include "../layers/maxpool2d.hpp"
#include "../layers/relu.hpp"
#include "sequential.hpp"

namespace eigencnn {

template <typename T>
Sequential<T> mnist_cnn(std::uint64_t seed = kDefaultInitSeed) {
    Sequential<T> net(seed);
    net.template emplace<Conv2d>(1, 16, 5)
        .template emplace<ReLU>()
        .template emplace<MaxPool2d>(2)
        .template emplace<Conv2d>(16, 32, 5)
        .template emplace<ReLU>()
        .template emplace<MaxPool2d>(2)
        .template emplace<Flatten>()
        .template emplace<Linear>(512, 512)
        .template emplace<ReLU>()
        .template emplace<Linear>(512, 10);
    return net;
}

template <typename T>
Sequential<T> mnist_cnn_bn(std::uint64_t seed = kDefaultInitSeed) {
    Sequential<T> net(seed);
    net.template emplace<Conv2d>(1, 16, 5)
        .template emplace<BatchNorm2d>(16)
        .template emplace<ReLU>()
        .template emplace<MaxPool2d>(2)
        .template emplace<Conv2d>(16, 32, 5)
        .template emplace<BatchNorm2d>(32)
        .template emplace<ReLU>()
        .template emplace<MaxPool2d>(2)
        .template emplace<Flatten>()
        .template emplace<Linear>(512, 512)
        .template emplace<ReLU>()
        .template emplace<Linear>(512, 10);
    return net;
}

}  // namespace eigencnn
