// eigencnn/layers/relu.hpp
//
// ReLU: y = max(0, x), elementwise, any shape (NaN stays NaN, as in PyTorch).
// Backward: dx = dy * [y > 0]   (the gradient at 0 is taken as 0, as in PyTorch).
#pragma once

#include "../core/layer.hpp"

namespace eigencnn {

template <typename T>
class ReLU final : public Layer<T> {
public:
    std::string name() const override { return "ReLU()"; }
    LayerSpec spec() const override { return {"ReLU", {}}; }
    Shape output_shape(const Shape& in) const override { return in; }

    const Tensor<T>& forward(const Tensor<T>& x) override {
        output_.resize(x.shape());
        const T* in = x.data();
        T* y = output_.data();
        const Index n = x.size();
#pragma omp parallel for simd schedule(static)
        for (Index i = 0; i < n; ++i) y[i] = value(in[i]);
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
#pragma omp parallel for simd schedule(static)
        for (Index i = 0; i < n; ++i) dx[i] = gradient(y[i], g[i]);
        return grad_input_;
    }

    /// max(0, x); a NaN passes through, as in PyTorch.
    static T value(T x) { return x < T(0) ? T(0) : x; }
    /// dL/dx from the output y and dL/dy.
    static T gradient(T y, T dy) { return y > T(0) ? dy : T(0); }

private:
    Tensor<T> output_, grad_input_;
};

}  // namespace eigencnn
