// SPDX-License-Identifier: MIT
// eigencnn/layers/leaky_relu.hpp
//
// LeakyReLU: as torch.nn.LeakyReLU(negative_slope=0.01), elementwise, any shape.
//   y = x                   for x > 0
//   y = negative_slope * x  otherwise
// Backward: dx = dy * (x > 0 ? 1 : negative_slope). With negative_slope >= 0, x > 0 exactly when y > 0
// (NaN and -0 included), so the output stands in for x; only a negative slope keeps a copy of x.
#pragma once

#include "../core/omp.hpp"

#include "../core/layer.hpp"
#include "../core/parallel.hpp"
#include "../core/registry.hpp"

#include <cmath>

namespace eigencnn {

template <typename T>
class LeakyReLU final : public Layer<T> {
public:
    static constexpr const char* kType = "LeakyReLU";

    explicit LeakyReLU(double negative_slope = 0.01) : slope_(negative_slope) {
        if (!std::isfinite(slope_)) throw std::invalid_argument("LeakyReLU: negative_slope must be finite, got " + SpecArg(slope_).str());
    }
    /// Spec {negative_slope}.
    static LeakyReLU from_spec(const LayerSpec& s) {
        s.expect_args(1);
        return LeakyReLU(s.real_arg(0, "negative_slope", -1e300, 1e300));
    }
    static std::uint64_t parameter_count(const LayerSpec& s) {
        from_spec(s);
        return 0;
    }

    std::string name() const override { return "LeakyReLU(negative_slope=" + SpecArg(slope_).str() + ")"; }
    LayerSpec spec() const override { return {kType, {slope_}}; }
    Shape output_shape(const Shape& in) const override { return in; }

    const Tensor<T>& forward(const Tensor<T>& x) override {
        output_.resize(x.shape());
        if (slope_ < 0) input_ = x;
        const T a = static_cast<T>(slope_);
        const Index n = x.size();
        const T* in = x.data();
        T* y = output_.data();
        EIGENCNN_OMP(parallel for simd schedule(static) if (n >= kParallelElements))
        for (Index i = 0; i < n; ++i) y[i] = in[i] > T(0) ? in[i] : a * in[i];
        return output_;
    }

    const Tensor<T>& backward(const Tensor<T>& dy) override {
        if (dy.shape() != output_.shape())
            detail::shape_error(name() + " backward", "gradient of shape " + output_.shape().str(), dy.shape());
        grad_input_.resize(dy.shape());
        const T a = static_cast<T>(slope_);
        const Index n = dy.size();
        const T* x = slope_ < 0 ? input_.data() : output_.data();  // only its sign is read
        const T* g = dy.data();
        T* dx = grad_input_.data();
        EIGENCNN_OMP(parallel for simd schedule(static) if (n >= kParallelElements))
        for (Index i = 0; i < n; ++i) dx[i] = x[i] > T(0) ? g[i] : a * g[i];
        return grad_input_;
    }

    /// No parameters: the same as backward.
    const Tensor<T>& backward_input(const Tensor<T>& dy) override { return backward(dy); }

    double negative_slope() const { return slope_; }

private:
    double slope_;
    Tensor<T> input_;  // a copy of x, kept only for a negative slope
    Tensor<T> output_, grad_input_;
};

EIGENCNN_REGISTER_LAYER(LeakyReLU)

}  // namespace eigencnn
