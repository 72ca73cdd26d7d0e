// eigencnn/core/layer.hpp
//
// Layer<T>: the interface every layer implements.
//
//   const Tensor<T>& forward(const Tensor<T>& x);      // y = f(x); keeps what backward needs
//   const Tensor<T>& backward(const Tensor<T>& dy);    // dL/dx from dL/dy; writes dL/dparams
//
// forward and backward return references to tensors the layer owns and
// reuses between calls (no allocation once batch sizes repeat); they stay
// valid until the next call of the same method. backward must follow the
// forward whose gradient it computes; it overwrites (does not accumulate)
// the parameter gradients.
#pragma once

#include "random.hpp"
#include "tensor.hpp"

#include <memory>
#include <string>
#include <vector>

namespace eigencnn {

/// What a layer is, as data: its type name and constructor arguments
/// (e.g. {"Conv2d", {1, 16, 5, 1, 0}}). Checkpoints store it to record and
/// check the architecture.
struct LayerSpec {
    std::string type;
    std::vector<std::int64_t> args;
    bool operator==(const LayerSpec& o) const { return type == o.type && args == o.args; }
    bool operator!=(const LayerSpec& o) const { return !(*this == o); }
    std::string str() const {
        std::string s = type + "(";
        for (std::size_t i = 0; i < args.size(); ++i) s += (i ? ", " : "") + std::to_string(args[i]);
        return s + ")";
    }
};

/// A trainable tensor and its gradient, both owned by a layer.
template <typename T>
struct Parameter {
    std::string name;     ///< e.g. "weight", "bias"
    Tensor<T>* value;
    Tensor<T>* grad;
};

template <typename T>
class Layer {
public:
    virtual ~Layer() = default;

    /// Human-readable description, PyTorch style: "Conv2d(1, 16, kernel_size=5, stride=1)".
    virtual std::string name() const = 0;

    /// Type and constructor arguments; layers of one's own that do not
    /// override it are described by name() alone.
    virtual LayerSpec spec() const { return {name(), {}}; }

    /// Shape of forward(x) for an input of shape `input`. Throws
    /// std::invalid_argument naming the expected shape when `input` does not fit.
    virtual Shape output_shape(const Shape& input) const = 0;

    virtual const Tensor<T>& forward(const Tensor<T>& x) = 0;
    virtual const Tensor<T>& backward(const Tensor<T>& grad_output) = 0;

    /// Trainable parameters (empty for layers without any).
    virtual std::vector<Parameter<T>> parameters() { return {}; }

    /// Draw fresh parameters as PyTorch's default initialisation does
    /// (nothing for layers without parameters).
    virtual void reset_parameters(Rng& /*rng*/) {}

    /// Total number of trainable scalars.
    Index num_parameters() {
        Index n = 0;
        for (auto& p : parameters()) n += p.value->size();
        return n;
    }

    /// When false, backward still computes parameter gradients but may skip
    /// dL/dx and return an empty tensor. Sequential turns it off for its
    /// first layer, whose input gradient nobody reads.
    void set_input_grad(bool needed) { input_grad_ = needed; }
    bool input_grad() const { return input_grad_; }

    /// Training mode (the default) keeps what backward needs; inference mode
    /// (false) lets a layer skip that and use less memory, after which
    /// backward throws std::logic_error until the next training-mode forward.
    void set_training(bool training) { training_ = training; }
    bool training() const { return training_; }

protected:
    bool input_grad_ = true;
    bool training_ = true;
};

template <typename T>
using LayerPtr = std::unique_ptr<Layer<T>>;

namespace detail {
/// Throw std::invalid_argument("<layer>: expected <what>, got <shape>").
/// Throw std::logic_error when backward follows an inference-mode forward.
[[noreturn]] inline void no_backward_state(const std::string& layer) {
    throw std::logic_error(layer + ": backward after a forward in inference mode (call train() on the model first)");
}

[[noreturn]] inline void shape_error(const std::string& layer, const std::string& expected, const Shape& got) {
    throw std::invalid_argument(layer + ": expected input " + expected + ", got " + got.str());
}
}  // namespace detail

}  // namespace eigencnn
