// SPDX-License-Identifier: MIT
// eigencnn/layers/dropout.hpp
//
// Dropout: as torch.nn.Dropout(p), any shape, inverted scaling.
//
//   train mode:  mask[i] = (u_i >= p) / (1 - p),  u_i ~ U[0, 1) from the layer's own stream rng(),
//                drawn in element order;  y = x * mask   (p = 1: y = 0)
//   eval mode:   y = x
// Backward: dx = dy * mask (train), dx = dy (eval).
// The mask comes from rng(), which Sequential seeds from the model's seed
// and the layer's index and checkpoints save, so a resumed run draws the
// same masks as an uninterrupted one. The draws are sequential (one stream),
// so the masks do not depend on the thread count.
#pragma once

#include "../core/layer.hpp"
#include "../core/registry.hpp"

namespace eigencnn {

template <typename T>
class Dropout final : public Layer<T> {
public:
    static constexpr const char* kType = "Dropout";

    explicit Dropout(double p = 0.5) : p_(p) {
        if (!(p_ >= 0 && p_ <= 1)) throw std::invalid_argument("Dropout: p must be in [0, 1], got " + SpecArg(p_).str());
    }

    /// Spec {p}.
    static Dropout from_spec(const LayerSpec& s) {
        s.expect_args(1);
        return Dropout(s.real_arg(0, "p", 0, 1));
    }
    static std::uint64_t parameter_count(const LayerSpec& s) {
        from_spec(s);
        return 0;
    }

    std::string name() const override { return "Dropout(p=" + SpecArg(p_).str() + ")"; }
    LayerSpec spec() const override { return {kType, {p_}}; }
    Shape output_shape(const Shape& in) const override { return in; }

    const Tensor<T>& forward(const Tensor<T>& x) override {
        output_.resize(x.shape());
        masked_ = this->training();
        if (!masked_) {
            output_.vector() = x.vector();
            return output_;
        }
        mask_.resize(x.shape());
        const T scale = p_ < 1 ? static_cast<T>(1 / (1 - p_)) : T(0);
        Rng& rng = this->rng();
        for (Index i = 0; i < x.size(); ++i) mask_[i] = rng.uniform() >= p_ ? scale : T(0);
        output_.vector() = x.vector().cwiseProduct(mask_.vector());
        return output_;
    }

    const Tensor<T>& backward(const Tensor<T>& dy) override {
        if (dy.shape() != output_.shape())
            detail::shape_error(name() + " backward", "gradient of shape " + output_.shape().str(), dy.shape());
        grad_input_.resize(dy.shape());
        if (masked_) grad_input_.vector() = dy.vector().cwiseProduct(mask_.vector());
        else grad_input_.vector() = dy.vector();
        return grad_input_;
    }

    /// No parameters: the same as backward.
    const Tensor<T>& backward_input(const Tensor<T>& dy) override { return backward(dy); }

    double p() const { return p_; }
    /// The last train-mode mask: 0 or 1 / (1 - p) per element.
    const Tensor<T>& mask() const { return mask_; }

private:
    double p_;
    bool masked_ = false;
    Tensor<T> mask_, output_, grad_input_;
};

EIGENCNN_REGISTER_LAYER(Dropout)

}  // namespace eigencnn
