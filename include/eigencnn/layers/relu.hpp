// SPDX-License-Identifier: MIT
// eigencnn/layers/relu.hpp
//
// ReLU: y = max(0, x), elementwise, any shape (NaN stays NaN, as in PyTorch).
// Backward: dx = dy * [y > 0]   (the gradient at 0 is taken as 0, as in PyTorch).
// The scalar kernels relu_value / relu_gradient are shared with the fused
// steps (fusion/conv_pool.hpp).
#pragma once

#include "../core/omp.hpp"

#include "../core/layer.hpp"
#include "../core/parallel.hpp"
#include "../core/registry.hpp"

namespace eigencnn {

/// max(0, x); a NaN passes through, as in PyTorch.
template <typename T>
inline T relu_value(T x) {
    return x < T(0) ? T(0) : x;
}
/// dL/dx from the output y and dL/dy.
template <typename T>
inline T relu_gradient(T y, T dy) {
    return y > T(0) ? dy : T(0);
}

template <typename T>
class ReLU final : public Layer<T> {
public:
    static constexpr const char* kType = "ReLU";
    static ReLU from_spec(const LayerSpec& s) {
        s.expect_args(0);
        return ReLU();
    }

    std::string name() const override { return "ReLU()"; }
    LayerSpec spec() const override { return {kType, {}}; }
    Shape output_shape(const Shape& in) const override { return in; }

    const Tensor<T>& forward(const Tensor<T>& x) override {
        output_.resize(x.shape());
        const T* in = x.data();
        T* y = output_.data();
        const Index n = x.size();
        EIGENCNN_OMP(parallel for simd schedule(static) if (n >= kParallelElements))
        for (Index i = 0; i < n; ++i) y[i] = relu_value(in[i]);
        return output_;
    }

    const Tensor<T>& backward(const Tensor<T>& dy) override {
        if (dy.shape() != output_.shape())
            detail::shape_error(name() + " backward", "gradient of shape " + output_.shape().str(), dy.shape());
        grad_input_.resize(dy.shape());
        const T* y = output_.data();
        const T* g = dy.data();
        T* dx = grad_input_.data();
        const Index n = dy.size();
        EIGENCNN_OMP(parallel for simd schedule(static) if (n >= kParallelElements))
        for (Index i = 0; i < n; ++i) dx[i] = relu_gradient(y[i], g[i]);
        return grad_input_;
    }

    /// No parameters: the same as backward.
    const Tensor<T>& backward_input(const Tensor<T>& dy) override { return backward(dy); }

private:
    Tensor<T> output_, grad_input_;
};

EIGENCNN_REGISTER_LAYER(ReLU)

}  // namespace eigencnn
