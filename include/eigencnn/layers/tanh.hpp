// SPDX-License-Identifier: MIT
// eigencnn/layers/tanh.hpp
//
// Tanh: as torch.nn.Tanh(), elementwise, any shape.
//   y = tanh(x)
// Backward: dx = dy * (1 - y^2)   (from the output)
#pragma once

#include "../core/omp.hpp"

#include "../core/layer.hpp"
#include "../core/registry.hpp"

#include <cmath>

namespace eigencnn {

template <typename T>
class Tanh final : public Layer<T> {
public:
    static constexpr const char* kType = "Tanh";
    static Tanh from_spec(const LayerSpec& s) {
        s.expect_args(0);
        return Tanh();
    }

    std::string name() const override { return "Tanh()"; }
    LayerSpec spec() const override { return {kType, {}}; }
    Shape output_shape(const Shape& in) const override { return in; }

    const Tensor<T>& forward(const Tensor<T>& x) override {
        output_.resize(x.shape());
        const Index n = x.size();
        const T* in = x.data();
        T* y = output_.data();
        EIGENCNN_OMP(parallel for schedule(static))
        for (Index i = 0; i < n; ++i) y[i] = std::tanh(in[i]);
        return output_;
    }

    const Tensor<T>& backward(const Tensor<T>& dy) override {
        if (dy.shape() != output_.shape())
            detail::shape_error(name() + " backward", "gradient of shape " + output_.shape().str(), dy.shape());
        grad_input_.resize(dy.shape());
        const Index n = dy.size();
        const T* y = output_.data();
        const T* g = dy.data();
        T* dx = grad_input_.data();
        EIGENCNN_OMP(parallel for simd schedule(static))
        for (Index i = 0; i < n; ++i) dx[i] = g[i] * (T(1) - y[i] * y[i]);
        return grad_input_;
    }

    /// No parameters: the same as backward.
    const Tensor<T>& backward_input(const Tensor<T>& dy) override { return backward(dy); }

private:
    Tensor<T> output_, grad_input_;
};

EIGENCNN_REGISTER_LAYER(Tanh)

}  // namespace eigencnn
