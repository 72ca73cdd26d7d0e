// eigencnn/model/factory.hpp
//
// make_model<T>(specs): a Sequential from a list of LayerSpecs, each layer
// built by the layer registry (core/registry.hpp), which is how load_model
// rebuilds an architecture stored in a checkpoint. The built-in layers are
// included here so that they are registered; a layer of one's own is
// registered by its header (EIGENCNN_REGISTER_LAYER) or register_layer<L>().
// An unknown type or bad arguments throw std::invalid_argument naming the spec.
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
#include "sequential.hpp"

namespace eigencnn {

template <typename T>
Sequential<T> make_model(const std::vector<LayerSpec>& specs, std::uint64_t seed = kDefaultInitSeed) {
    Sequential<T> net(seed);
    for (const auto& s : specs) net.add(make_layer<T>(s));
    return net;
}

}  // namespace eigencnn
