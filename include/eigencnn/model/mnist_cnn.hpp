// eigencnn/model/mnist_cnn.hpp
//
// The notebook's MNIST network:
//   [N, 1, 28, 28] Conv2d(1, 16, 5) ReLU MaxPool2d(2)    -> [N, 16, 12, 12]
//                  Conv2d(16, 32, 5) ReLU MaxPool2d(2)   -> [N, 32, 4, 4]
//                  Flatten Linear(512, 512) ReLU Linear(512, 10) -> [N, 10] logits
#pragma once

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

}  // namespace eigencnn
