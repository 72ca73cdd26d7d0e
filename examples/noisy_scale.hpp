// SPDX-License-Identifier: MIT
// examples/noisy_scale.hpp: the layer of docs/writing-a-layer.md, a layer of
// one's own that uses every part of the layer contract. tests/test_design.cpp
// builds, trains, saves, loads and resumes it.
//
// NoisyScale: a learnable scale per channel, noise while training, and a
// running mean of each channel's input (a buffer, as BatchNorm's).
//
//   x [N, C, ...] -> y [N, C, ...]
//   y[n, c, i] = gamma[c] * x[n, c, i] + noise * u[n, c, i],  u ~ U(-1, 1) from the layer's own stream
//                (train mode only; in eval mode the noise term is 0)
//   running_mean[c] <- (1 - momentum) * running_mean[c] + momentum * mean_{n, i} x[n, c, i]   (train mode only)
// Backward:
//   dgamma[c] = sum_{n, i} dy[n, c, i] * x[n, c, i]
//   dx[n, c, i] = gamma[c] * dy[n, c, i]
#pragma once

#include <eigencnn/core/layer.hpp>
#include <eigencnn/core/registry.hpp>

namespace mylab {

using eigencnn::Index;
using eigencnn::LayerSpec;
using eigencnn::Shape;
using eigencnn::Tensor;

template <typename T>
class NoisyScale final : public eigencnn::Layer<T> {
public:
    static constexpr const char* kType = "NoisyScale";

    explicit NoisyScale(Index channels, double noise = 0.1, double momentum = 0.1)
        : channels_(channels), noise_(noise), momentum_(momentum) {
        if (channels < 1 || !(noise >= 0) || !(momentum >= 0 && momentum <= 1))
            throw std::invalid_argument("NoisyScale: need channels >= 1, noise >= 0 and momentum in [0, 1]");
        gamma_ = Tensor<T>(Shape{channels}, T(1));
        grad_gamma_ = Tensor<T>(Shape{channels});
        running_mean_ = Tensor<T>(Shape{channels});
    }

    // --- what the registry needs: rebuild from a spec, count parameters from it
    static NoisyScale from_spec(const LayerSpec& s) {
        s.expect_args(3);
        return NoisyScale(s.int_arg(0, "channels", 1, 1 << 20), s.real_arg(1, "noise", 0, 1e6), s.real_arg(2, "momentum", 0, 1));
    }
    static std::uint64_t parameter_count(const LayerSpec& s) { return static_cast<std::uint64_t>(from_spec(s).channels_); }
    LayerSpec spec() const override { return {kType, {channels_, noise_, momentum_}}; }

    std::string name() const override {
        return "NoisyScale(" + std::to_string(channels_) + ", noise=" + eigencnn::SpecArg(noise_).str() + ")";
    }

    Shape output_shape(const Shape& in) const override {
        if (in.rank() < 2 || in[1] != channels_)
            eigencnn::detail::shape_error(name(), "[N, " + std::to_string(channels_) + ", ...]", in);
        return in;
    }

    const Tensor<T>& forward(const Tensor<T>& x) override {
        output_.resize(output_shape(x.shape()));
        const Index N = x.dim(0), inner = x.shape().sample_size() / channels_;
        for (Index n = 0; n < N; ++n)
            for (Index c = 0; c < channels_; ++c)
                for (Index i = 0; i < inner; ++i) {
                    const Index e = (n * channels_ + c) * inner + i;
                    const T u = this->training() ? static_cast<T>(this->rng().uniform(-1.0, 1.0)) : T(0);
                    output_[e] = gamma_[c] * x[e] + static_cast<T>(noise_) * u;
                }
        if (this->training() && N > 0)
            for (Index c = 0; c < channels_; ++c) {
                T sum = 0;
                for (Index n = 0; n < N; ++n)
                    for (Index i = 0; i < inner; ++i) sum += x[(n * channels_ + c) * inner + i];
                running_mean_[c] = static_cast<T>((1 - momentum_) * running_mean_[c] + momentum_ * sum / static_cast<T>(N * inner));
            }
        if (this->grad_enabled()) input_ = x;  // kept for dgamma
        else input_ = Tensor<T>();
        return output_;
    }

    const Tensor<T>& backward(const Tensor<T>& dy) override {
        if (input_.shape() != dy.shape()) eigencnn::detail::no_backward_state(name());
        const Index N = dy.dim(0), inner = dy.shape().sample_size() / channels_;
        grad_gamma_.set_zero();
        for (Index n = 0; n < N; ++n)
            for (Index c = 0; c < channels_; ++c)
                for (Index i = 0; i < inner; ++i) grad_gamma_[c] += dy[(n * channels_ + c) * inner + i] * input_[(n * channels_ + c) * inner + i];
        return backward_input(dy);
    }

    // dx alone (the default would run backward and restore dgamma: right, but slower)
    const Tensor<T>& backward_input(const Tensor<T>& dy) override {
        if (dy.shape() != output_.shape())
            eigencnn::detail::shape_error(name() + " backward", "gradient of shape " + output_.shape().str(), dy.shape());
        grad_input_.resize(dy.shape());
        const Index N = dy.dim(0), inner = dy.shape().sample_size() / channels_;
        for (Index n = 0; n < N; ++n)
            for (Index c = 0; c < channels_; ++c)
                for (Index i = 0; i < inner; ++i) grad_input_[(n * channels_ + c) * inner + i] = gamma_[c] * dy[(n * channels_ + c) * inner + i];
        return grad_input_;
    }

    std::vector<eigencnn::Parameter<T>> parameters() override { return {{"weight", &gamma_, &grad_gamma_}}; }
    std::vector<eigencnn::Buffer<T>> buffers() override { return {{"running_mean", &running_mean_}}; }
    // reset_parameters: gamma starts at 1 whatever the model's seed, so the default (nothing) is right.

    const Tensor<T>& running_mean() const { return running_mean_; }

private:
    Index channels_;
    double noise_, momentum_;
    Tensor<T> gamma_, grad_gamma_, running_mean_;
    Tensor<T> input_, output_, grad_input_;
};

EIGENCNN_REGISTER_LAYER(NoisyScale)  // float and double, by name, when the program starts

}  // namespace mylab
