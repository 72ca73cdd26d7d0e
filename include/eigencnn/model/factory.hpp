// eigencnn/model/factory.hpp
//
// make_layer<T>(spec): build a built-in layer from its LayerSpec, and
// make_model<T>(specs): a Sequential from a list of them (how load_model
// rebuilds an architecture stored in a checkpoint). Arguments are checked
// by the layers' constructors; an unknown type or a wrong argument count
// throws std::invalid_argument naming the spec.
#pragma once

#include "../layers/conv2d.hpp"
#include "../layers/flatten.hpp"
#include "../layers/linear.hpp"
#include "../layers/maxpool2d.hpp"
#include "../layers/relu.hpp"
#include "sequential.hpp"

#include <limits>

namespace eigencnn {

template <typename T>
LayerPtr<T> make_layer(const LayerSpec& s) {
    auto need = [&](std::size_t n) {
        if (s.args.size() != n)
            throw std::invalid_argument("make_layer: " + s.str() + " needs " + std::to_string(n) + " arguments");
        for (auto a : s.args)
            if (a < 0 || a > (std::int64_t(1) << 31))
                throw std::invalid_argument("make_layer: argument " + std::to_string(a) + " of " + s.str() + " is out of range");
    };
    if (s.type == "Conv2d") {
        need(5);
        return LayerPtr<T>(new Conv2d<T>(s.args[0], s.args[1], s.args[2], s.args[3], s.args[4]));
    }
    if (s.type == "MaxPool2d") {
        need(2);
        if (s.args[1] == 0) throw std::invalid_argument("make_layer: " + s.str() + " has stride 0");
        return LayerPtr<T>(new MaxPool2d<T>(s.args[0], s.args[1]));
    }
    if (s.type == "ReLU") {
        need(0);
        return LayerPtr<T>(new ReLU<T>());
    }
    if (s.type == "Flatten") {
        need(0);
        return LayerPtr<T>(new Flatten<T>());
    }
    if (s.type == "Linear") {
        need(3);
        if (s.args[2] > 1) throw std::invalid_argument("make_layer: " + s.str() + ": bias flag must be 0 or 1");
        return LayerPtr<T>(new Linear<T>(s.args[0], s.args[1], s.args[2] != 0));
    }
    throw std::invalid_argument("make_layer: unknown layer type '" + s.type + "'");
}

/// Number of trainable scalars the layer `s` would have, computed without
/// building it (so that a checkpoint can be checked before any allocation).
/// Throws std::invalid_argument on overflow or an unknown type.
inline std::uint64_t spec_parameter_count(const LayerSpec& s) {
    auto arg = [&](std::size_t i) -> std::uint64_t {
        if (i >= s.args.size() || s.args[i] < 0 || s.args[i] > (std::int64_t(1) << 31))
            throw std::invalid_argument("spec_parameter_count: bad arguments in " + s.str());
        return static_cast<std::uint64_t>(s.args[i]);
    };
    auto mul = [&](std::uint64_t a, std::uint64_t b) {
        if (b && a > std::numeric_limits<std::uint64_t>::max() / b) throw std::invalid_argument("spec_parameter_count: " + s.str() + " is too large");
        return a * b;
    };
    if (s.type == "Conv2d") return mul(mul(mul(arg(1), arg(0)), arg(2)), arg(2)) + arg(1);
    if (s.type == "Linear") return mul(arg(1), arg(0)) + (arg(2) ? arg(1) : 0);
    if (s.type == "MaxPool2d" || s.type == "ReLU" || s.type == "Flatten") return 0;
    throw std::invalid_argument("make_layer: unknown layer type '" + s.type + "'");
}

template <typename T>
Sequential<T> make_model(const std::vector<LayerSpec>& specs, std::uint64_t seed = kDefaultInitSeed) {
    Sequential<T> net(seed);
    for (const auto& s : specs) net.add(make_layer<T>(s));
    return net;
}

}  // namespace eigencnn
