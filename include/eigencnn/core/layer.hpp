// SPDX-License-Identifier: MIT
// eigencnn/core/layer.hpp
//
// Layer<T>: the interface every layer implements (docs/writing-a-layer.md
// is the how-to).
//
//   const Tensor<T>& forward(const Tensor<T>& x);          y = f(x); keeps what backward needs
//   const Tensor<T>& backward(const Tensor<T>& dy);        dL/dx from dL/dy; writes dL/dparams
//   const Tensor<T>& backward_input(const Tensor<T>& dy);  dL/dx alone; parameter gradients untouched
//
// forward and backward return references to tensors the layer owns and
// reuses between calls (no allocation once batch sizes repeat); they stay
// valid until the next call of the same method. backward must follow the
// forward whose gradient it computes; it overwrites (does not accumulate)
// the parameter gradients.
//
// Two switches, apart (as torch's module.train()/eval() and set_grad_enabled):
//   mode()          Mode::Train or Mode::Eval: changes what forward computes
//                   (Dropout, BatchNorm); the layers without such behaviour ignore it.
//   grad_enabled()  whether forward keeps what backward needs. Off, a layer may
//                   keep nothing (less memory) and backward throws until the
//                   next forward with it on. Eval mode with gradients on is
//                   how input gradients of a frozen model are taken.
// State that is not a parameter but is saved with the model: buffers()
// (running statistics), and rng(), a random stream of the layer's own,
// seeded by the model from its seed and the layer's index.
// Layers with weights may offer per-output masks (output_mask(), for pruning).
#pragma once

#include "output_mask.hpp"
#include "random.hpp"
#include "spec.hpp"
#include "tensor.hpp"

#include <memory>
#include <string>
#include <vector>

namespace eigencnn {

/// A trainable tensor and its gradient, both owned by a layer.
template <typename T>
struct Parameter {
    std::string name;     ///< e.g. "weight", "bias"
    Tensor<T>* value;
    Tensor<T>* grad;
};

/// A non-trainable tensor that is part of the model's state (e.g. "running_mean").
template <typename T>
struct Buffer {
    std::string name;
    Tensor<T>* value;
};

/// What forward computes: training behaviour or evaluation behaviour.
enum class Mode { Train, Eval };

template <typename T>
class Layer {
public:
    using scalar_type = T;

    virtual ~Layer() = default;

    /// Human-readable description, PyTorch style: "Conv2d(1, 16, kernel_size=5, stride=1)".
    virtual std::string name() const = 0;

    /// Type and constructor arguments, as the registry rebuilds the layer from
    /// them. Layers of one's own that do not override it are described by name() alone.
    virtual LayerSpec spec() const { return {name(), {}}; }

    /// Shape of forward(x) for an input of shape `input`. Throws
    /// std::invalid_argument naming the expected shape when `input` does not fit.
    virtual Shape output_shape(const Shape& input) const = 0;

    virtual const Tensor<T>& forward(const Tensor<T>& x) = 0;
    virtual const Tensor<T>& backward(const Tensor<T>& grad_output) = 0;

    /// dL/dx of the last forward, leaving every parameter gradient as it was.
    /// This default runs backward with the gradients saved and restored, which
    /// is right for any layer but costs a whole backward: layers override it
    /// with a path that computes dL/dx alone.
    virtual const Tensor<T>& backward_input(const Tensor<T>& grad_output);

    /// Trainable parameters (empty for layers without any).
    virtual std::vector<Parameter<T>> parameters() { return {}; }

    /// Non-parameter state saved in checkpoints (empty for layers without any).
    virtual std::vector<Buffer<T>> buffers() { return {}; }

    /// Per-output multipliers (core/output_mask.hpp) for layers that have them
    /// (Conv2d: output channels, Linear: output units); nullptr for the others.
    virtual OutputMask<T>* output_mask() { return nullptr; }

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

    /// Training or evaluation behaviour (Mode::Train by default).
    void set_mode(Mode mode) { mode_ = mode; }
    Mode mode() const { return mode_; }
    bool training() const { return mode_ == Mode::Train; }

    /// Whether forward keeps what backward needs (on by default).
    void set_grad_enabled(bool on) { grad_enabled_ = on; }
    bool grad_enabled() const { return grad_enabled_; }

    /// The layer's own random stream (Dropout's masks, noise); saved in checkpoints.
    Rng& rng() { return rng_; }
    const Rng& rng() const { return rng_; }

protected:
    bool input_grad_ = true;
    bool grad_enabled_ = true;
    Mode mode_ = Mode::Train;
    Rng rng_{0};
};

template <typename T>
using LayerPtr = std::unique_ptr<Layer<T>>;

template <typename T>
const Tensor<T>& Layer<T>::backward_input(const Tensor<T>& grad_output) {
    struct Restore {  // parameter gradients and the input-gradient switch, whatever backward does
        Layer& layer;
        std::vector<Parameter<T>> params;
        std::vector<Tensor<T>> saved;
        bool input_grad;
        ~Restore() {
            for (std::size_t i = 0; i < params.size(); ++i) *params[i].grad = std::move(saved[i]);
            layer.input_grad_ = input_grad;
        }
    } restore{*this, parameters(), {}, input_grad_};
    for (const auto& p : restore.params) restore.saved.push_back(*p.grad);
    input_grad_ = true;
    return backward(grad_output);
}

namespace detail {
/// Throw std::logic_error when backward follows a forward that kept no state.
[[noreturn]] inline void no_backward_state(const std::string& layer) {
    throw std::logic_error(layer + ": backward after a forward with gradients disabled (set_grad_enabled(true) on the model first)");
}

/// Throw std::invalid_argument("<layer>: expected <what>, got <shape>").
[[noreturn]] inline void shape_error(const std::string& layer, const std::string& expected, const Shape& got) {
    throw std::invalid_argument(layer + ": expected input " + expected + ", got " + got.str());
}
}  // namespace detail

}  // namespace eigencnn
