// SPDX-License-Identifier: MIT
// eigencnn/model/factory.hpp
//
// make_model<T>(specs): a Sequential from a list of LayerSpecs, each layer
// built by the layer registry (core/registry.hpp), which is how load_model
// rebuilds an architecture stored in a checkpoint. The built-in layers are
// included here so that they are registered; a layer of one's own is
// registered by its header (EIGENCNN_REGISTER_LAYER) or register_layer<L>().
// An unknown type or bad arguments throw std::invalid_argument naming the spec.
//
// make_architecture<T>(name, seed): the library's named architectures, for
// weights that come without one (a safetensors file holds tensors only):
//   mnist_cnn            the notebook's CNN (model/mnist_cnn.hpp)          [N, 1, 28, 28] -> [N, 10]
//   mnist_cnn_bn         the same with a BatchNorm2d after each Conv2d     [N, 1, 28, 28] -> [N, 10]
//   preact_resnet        PreAct-ResNet, widths 16-32-64 (model/preact_resnet.hpp)  [N, 3, 32, 32] -> [N, 10]
//   preact_resnet_mnist  the same with one input channel                   [N, 1, 28, 28] -> [N, 10]
// architecture_names() lists them; an unknown name throws std::invalid_argument listing them.
#pragma once

#include "../core/registry.hpp"
#include "../layers/adaptive_avgpool2d.hpp"
#include "../layers/avgpool2d.hpp"
#include "../layers/batchnorm.hpp"
#include "../layers/conv2d.hpp"
#include "../layers/dropout.hpp"
#include "../layers/flatten.hpp"
#include "../layers/leaky_relu.hpp"
#include "../layers/linear.hpp"
#include "../layers/maxpool2d.hpp"
#include "../layers/relu.hpp"
#include "../layers/residual.hpp"
#include "../layers/sigmoid.hpp"
#include "../layers/softmax.hpp"
#include "../layers/tanh.hpp"
#include "mnist_cnn.hpp"
#include "preact_resnet.hpp"
#include "sequential.hpp"

namespace eigencnn {

template <typename T>
Sequential<T> make_model(const std::vector<LayerSpec>& specs, std::uint64_t seed = kDefaultInitSeed) {
    Sequential<T> net(seed);
    for (const auto& s : specs) net.add(make_layer<T>(s));
    return net;
}

/// The names make_architecture knows, in the order it documents them.
inline std::vector<std::string> architecture_names() { return {"mnist_cnn", "mnist_cnn_bn", "preact_resnet", "preact_resnet_mnist"}; }

/// The named architecture with weights drawn from `seed` (see the top of the file).
template <typename T>
Sequential<T> make_architecture(const std::string& name, std::uint64_t seed = kDefaultInitSeed) {
    if (name == "mnist_cnn") return mnist_cnn<T>(seed);
    if (name == "mnist_cnn_bn") return mnist_cnn_bn<T>(seed);
    if (name == "preact_resnet") return preact_resnet<T>({16, 32, 64}, 1, 10, 3, seed);
    if (name == "preact_resnet_mnist") return preact_resnet<T>({16, 32, 64}, 1, 10, 1, seed);
    std::string valid;
    for (const auto& n : architecture_names()) valid += (valid.empty() ? "" : ", ") + n;
    throw std::invalid_argument("unknown architecture '" + name + "'; valid names: " + valid);
}

}  // namespace eigencnn
