// SPDX-License-Identifier: MIT
// eigencnn/layers/softmax.hpp
//
// Softmax and LogSoftmax over dim 1 (the channels or classes), as
// torch.nn.Softmax(dim=1) and torch.nn.LogSoftmax(dim=1); for inference,
// with a backward all the same.
//
//   x [N, C, ...] -> y of the same shape; for each n and each position i of the trailing dimensions,
//   over c:  m = max_c x[n, c, i],  s = sum_c exp(x[n, c, i] - m)
//   Softmax:     y = exp(x - m) / s                 dx = y * (dy - sum_c dy * y)
//   LogSoftmax:  y = x - m - log(s)                 dx = dy - exp(y) * sum_c dy
// Images run in parallel; each sum over c runs in order.
#pragma once

#include "../core/omp.hpp"

#include "../core/layer.hpp"
#include "../core/parallel.hpp"
#include "../core/registry.hpp"

#include <cmath>

namespace eigencnn {

template <typename T, bool Log>
class SoftmaxOverChannels : public Layer<T> {
public:
    std::string name() const override { return std::string(Log ? "LogSoftmax" : "Softmax") + "(dim=1)"; }
    LayerSpec spec() const override { return {Log ? "LogSoftmax" : "Softmax", {}}; }
    Shape output_shape(const Shape& in) const override {
        if (in.rank() < 2) detail::shape_error(name(), "[N, C, ...]", in);
        return in;
    }

    const Tensor<T>& forward(const Tensor<T>& x) override {
        output_.resize(output_shape(x.shape()));
        const Index N = x.dim(0), C = x.dim(1), inner = C ? x.shape().sample_size() / C : 0;
        const T* xs = x.data();
        T* ys = output_.data();
        EIGENCNN_OMP(parallel for schedule(static) if (N * C * inner >= kParallelElements))
        for (Index n = 0; n < N; ++n)
            for (Index i = 0; i < inner; ++i) {
                const T* in = xs + n * C * inner + i;
                T* y = ys + n * C * inner + i;
                T m = in[0];
                for (Index c = 1; c < C; ++c) m = std::max(m, in[c * inner]);
                T s = 0;
                for (Index c = 0; c < C; ++c) s += std::exp(in[c * inner] - m);
                const T log_s = std::log(s);
                for (Index c = 0; c < C; ++c) y[c * inner] = Log ? in[c * inner] - m - log_s : std::exp(in[c * inner] - m) / s;
            }
        return output_;
    }

    const Tensor<T>& backward(const Tensor<T>& dy) override {
        if (dy.shape() != output_.shape())
            detail::shape_error(name() + " backward", "gradient of shape " + output_.shape().str(), dy.shape());
        grad_input_.resize(dy.shape());
        const Index N = dy.dim(0), C = dy.dim(1), inner = C ? dy.shape().sample_size() / C : 0;
        const T* gs = dy.data();
        const T* ys = output_.data();
        T* dxs = grad_input_.data();
        EIGENCNN_OMP(parallel for schedule(static) if (N * C * inner >= kParallelElements))
        for (Index n = 0; n < N; ++n)
            for (Index i = 0; i < inner; ++i) {
                const Index o = n * C * inner + i;
                T s = 0;
                for (Index c = 0; c < C; ++c) s += Log ? gs[o + c * inner] : gs[o + c * inner] * ys[o + c * inner];
                for (Index c = 0; c < C; ++c) {
                    const Index e = o + c * inner;
                    dxs[e] = Log ? gs[e] - std::exp(ys[e]) * s : ys[e] * (gs[e] - s);
                }
            }
        return grad_input_;
    }

    /// No parameters: the same as backward.
    const Tensor<T>& backward_input(const Tensor<T>& dy) override { return backward(dy); }

private:
    Tensor<T> output_, grad_input_;
};

template <typename T>
class Softmax final : public SoftmaxOverChannels<T, false> {
public:
    static constexpr const char* kType = "Softmax";
    static Softmax from_spec(const LayerSpec& s) {
        s.expect_args(0);
        return Softmax();
    }
};

template <typename T>
class LogSoftmax final : public SoftmaxOverChannels<T, true> {
public:
    static constexpr const char* kType = "LogSoftmax";
    static LogSoftmax from_spec(const LayerSpec& s) {
        s.expect_args(0);
        return LogSoftmax();
    }
};

EIGENCNN_REGISTER_LAYER(Softmax)
EIGENCNN_REGISTER_LAYER(LogSoftmax)

}  // namespace eigencnn
