// SPDX-License-Identifier: MIT
// eigencnn/fusion/fold_batchnorm.hpp
//
// FoldedBatchNorm<T, L>: a Conv2d (or Linear) followed by a BatchNorm2d (or
// BatchNorm1d) run as one convolution (or product) in eval mode, the
// inference-time folding of batch normalisation into the preceding layer.
// In eval mode BatchNorm is a fixed affine map per channel o:
//
//   y[n, o, ...] = gamma[o] * (z[n, o, ...] - mean[o]) / sqrt(var[o] + eps) + beta[o],   z = conv(x) or linear(x)
//
// so with s[o] = gamma[o] / sqrt(var[o] + eps) (mean, var: the running statistics)
//
//   W'[o, ...] = W[o, ...] * s[o]                      W  [OC, C, K, K] (Conv2d) or [OUT, IN] (Linear)
//   b'[o]      = (b[o] - mean[o]) * s[o] + beta[o]     b  [OC]  (0 for a layer without bias)
//   y          = conv(x; W', b')                       x [N, C, H, W] -> y [N, OC, OH, OW]  (Linear: [N, IN] -> [N, OUT])
//
// and the BatchNorm pass over the whole output disappears. With a MaxPool2d
// [and a ReLU] after the BatchNorm2d in execution order, the folded conv runs
// through ConvPool (fusion/conv_pool.hpp), image by image.
//
// The fold is part of the execution plan (fusion/plan.hpp), not a change to
// the model: the step keeps its own folded layer and recomputes W', b' from
// the layers' current values at every forward (O(weights), small next to the
// convolution), so training steps, loaded weights and checkpoints all see the
// original Conv2d and BatchNorm2d. Train mode never folds (batch statistics
// depend on the batch); the plan folds only for eval mode.
//
// Gradients, with dW', db' the folded layer's parameter gradients and
// inv[o] = 1 / sqrt(var[o] + eps):
//   dW[o] = dW'[o] * s[o]          db[o] = db'[o] * s[o]            (the layer's own, if it has a bias)
//   dbeta[o] = db'[o]              dgamma[o] = inv[o] * (sum W[o] . dW'[o] + (b[o] - mean[o]) * db'[o])
//   dx = the folded layer's input gradient (BatchNorm in eval mode is affine, so this is exact)
// which is what the layers one by one give in eval mode, to rounding (tests/test_fold.cpp).
//
// Folding follows Ioffe and Szegedy (2015), section 3.2 (inference uses the
// population statistics, so normalisation is a linear transform that can be
// composed with the preceding layer); the formulas are the ones PyTorch's
// torch.nn.utils.fusion.fuse_conv_bn_weights uses.
#pragma once

#include "../layers/batchnorm.hpp"
#include "../layers/conv2d.hpp"
#include "../layers/linear.hpp"
#include "../layers/maxpool2d.hpp"
#include "conv_pool.hpp"
#include "step.hpp"

#include <cmath>
#include <memory>
#include <stdexcept>
#include <type_traits>

namespace eigencnn {

template <typename T, template <typename> class L>
class FoldedBatchNorm final : public FusedStep<T> {
    static_assert(std::is_same_v<L<T>, Conv2d<T>> || std::is_same_v<L<T>, Linear<T>>, "FoldedBatchNorm: Conv2d or Linear");

public:
    /// The layers must outlive this object. `pool` (Conv2d only): a MaxPool2d after the BatchNorm, and `relu` a ReLU after it.
    FoldedBatchNorm(L<T>& layer, BatchNormBase<T>& bn, MaxPool2d<T>* pool = nullptr, bool relu = false)
        : layer_(&layer), bn_(&bn), pool_(pool), relu_(relu) {
        if constexpr (std::is_same_v<L<T>, Conv2d<T>>)
            folded_ = std::make_unique<Conv2d<T>>(layer.in_channels(), layer.out_channels(), layer.kernel_size(), layer.stride(), layer.padding());
        else
            folded_ = std::make_unique<Linear<T>>(layer.in_features(), layer.out_features(), true);
        if (pool_) {
            if constexpr (std::is_same_v<L<T>, Conv2d<T>>) pooled_ = std::make_unique<ConvPool<T>>(*folded_, *pool_, relu_);
            else throw std::logic_error("FoldedBatchNorm: a pool after a Linear");
        }
    }

    const Tensor<T>& forward(const Tensor<T>& x) override {
        if (bn_->training())
            throw std::logic_error(name() + ": the BatchNorm layer is in train mode; the plan folds it only in eval mode");
        fold();
        folded_->set_mode(Mode::Eval);
        folded_->set_grad_enabled(layer_->grad_enabled());
        folded_->set_input_grad(layer_->input_grad());
        return pooled_ ? pooled_->forward(x) : folded_->forward(x);
    }

    const Tensor<T>& backward(const Tensor<T>& dy) override {
        const Tensor<T>& dx = pooled_ ? pooled_->backward(dy) : folded_->backward(dy);
        unfold_gradients();
        return dx;
    }

    const Tensor<T>& backward_input(const Tensor<T>& dy) override {
        return pooled_ ? pooled_->backward_input(dy) : folded_->backward_input(dy);
    }

    /// "Conv2d(...) + BatchNorm2d(...) [+ MaxPool2d(...) [+ ReLU()]]"
    std::string name() const override {
        return layer_->name() + " + " + bn_->name() + (pool_ ? " + " + pool_->name() : "") + (relu_ ? " + ReLU()" : "");
    }

    /// The folded layer (W', b' of the last forward).
    const L<T>& folded() const { return *folded_; }

private:
    Index channels() const { return layer_->weight().dim(0); }

    // W' = W * s, b' = (b - mean) * s + beta, in double, from the layers' current values.
    void fold() {
        const Index OC = channels(), R = layer_->weight().size() / OC;
        const T* W = layer_->weight().data();
        T* Wf = folded_->weight().data();
        T* bf = folded_->bias().data();
        const bool bias = layer_->has_bias();
        for (Index o = 0; o < OC; ++o) {
            const double inv = 1 / std::sqrt(static_cast<double>(bn_->running_var()[o]) + bn_->eps());
            const double s = static_cast<double>(bn_->weight()[o]) * inv;
            for (Index r = 0; r < R; ++r) Wf[o * R + r] = static_cast<T>(W[o * R + r] * s);
            const double b = bias ? static_cast<double>(layer_->bias()[o]) : 0.0;
            bf[o] = static_cast<T>((b - bn_->running_mean()[o]) * s + bn_->bias()[o]);
        }
    }

    // The folded layer's parameter gradients back onto the layer's and the BatchNorm's (see the top of the file).
    void unfold_gradients() {
        auto lp = layer_->parameters();
        auto bp = bn_->parameters();  // weight (gamma), bias (beta)
        auto fp = folded_->parameters();
        const Tensor<T>& dWf = *fp[0].grad;
        const Tensor<T>& dbf = *fp[1].grad;
        Tensor<T>& dW = *lp[0].grad;
        Tensor<T>& dgamma = *bp[0].grad;
        Tensor<T>& dbeta = *bp[1].grad;
        const Index OC = channels(), R = layer_->weight().size() / OC;
        const T* W = layer_->weight().data();
        const bool bias = layer_->has_bias();
        for (Index o = 0; o < OC; ++o) {
            const double inv = 1 / std::sqrt(static_cast<double>(bn_->running_var()[o]) + bn_->eps());
            const double s = static_cast<double>(bn_->weight()[o]) * inv;
            double dot = 0;
            for (Index r = 0; r < R; ++r) {
                dot += static_cast<double>(W[o * R + r]) * dWf[o * R + r];
                dW[o * R + r] = static_cast<T>(dWf[o * R + r] * s);
            }
            const double b = bias ? static_cast<double>(layer_->bias()[o]) : 0.0;
            if (bias) (*lp[1].grad)[o] = static_cast<T>(dbf[o] * s);
            dbeta[o] = dbf[o];
            dgamma[o] = static_cast<T>(inv * (dot + (b - bn_->running_mean()[o]) * dbf[o]));
        }
    }

    L<T>* layer_;
    BatchNormBase<T>* bn_;
    MaxPool2d<T>* pool_;
    bool relu_;
    std::unique_ptr<L<T>> folded_;
    std::unique_ptr<ConvPool<T>> pooled_;
};

}  // namespace eigencnn
