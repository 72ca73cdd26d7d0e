// SPDX-License-Identifier: MIT
// eigencnn/layers/flatten.hpp
//
// Flatten: [N, d1, d2, ...] -> [N, d1*d2*...], as torch.nn.Flatten() (the
// data are already contiguous, so this is a copy under a new shape).
// Backward reshapes dy back to the input shape.
#pragma once

#include "../core/layer.hpp"
#include "../core/registry.hpp"
#include "../core/threads.hpp"

namespace eigencnn {

template <typename T>
class Flatten final : public Layer<T> {
public:
    static constexpr const char* kType = "Flatten";
    static Flatten from_spec(const LayerSpec& s) {
        s.expect_args(0);
        return Flatten();
    }

    std::string name() const override { return "Flatten()"; }
    LayerSpec spec() const override { return {kType, {}}; }

    Shape output_shape(const Shape& in) const override {
        if (in.rank() < 1) detail::shape_error(name(), "[N, ...]", in);
        return Shape{in[0], in.sample_size()};
    }

    const Tensor<T>& forward(const Tensor<T>& x) override {
        in_shape_ = x.shape();
        output_.resize(output_shape(in_shape_));
        parallel_copy(x.data(), x.size(), output_.data());  // 2 MB at inference's batch of 1,000
        return output_;
    }

    const Tensor<T>& backward(const Tensor<T>& dy) override {
        if (dy.shape() != output_.shape())
            detail::shape_error(name() + " backward", "gradient of shape " + output_.shape().str(), dy.shape());
        grad_input_.resize(in_shape_);
        parallel_copy(dy.data(), dy.size(), grad_input_.data());
        return grad_input_;
    }

    /// No parameters: the same as backward.
    const Tensor<T>& backward_input(const Tensor<T>& dy) override { return backward(dy); }

private:
    Shape in_shape_;
    Tensor<T> output_, grad_input_;
};

EIGENCNN_REGISTER_LAYER(Flatten)

}  // namespace eigencnn
