// SPDX-License-Identifier: MIT
// eigencnn/fusion/conv_pool.hpp
//
// ConvPool<T>: Conv2d -> MaxPool2d [-> ReLU] run as one step, image by image.
// The fusion pass (fusion/plan.hpp) uses it wherever the execution order has
// that pattern (the seed model's Conv2d -> ReLU -> MaxPool2d is one, once the
// ReLU has moved behind the pool). Unfused, the convolution's whole output [N, OC, OH, OW]
// goes out to memory and comes back for the pool, and its gradient does the
// same in backward; on the seed model's first layer that is 18 MB each way
// per batch. Fused, each image's part stays in the thread's cache:
//
//   forward, per image n:   y_n  = conv(x_n)                  [OC, OH*OW]    (thread scratch)
//                           z_n  = pool(y_n), winners arg_n   [OC, PH*PW]
//                           out_n = relu(z_n) (or z_n)        -> out [N, OC, PH, PW]
//     (few input channels and a 2x2 pool: all three in one kernel, y_n two rows at a time in registers,
//     Conv2d::forward_pooled and kernels/conv2d_planar_pool.hpp)
//   backward, per image n:  dz_n = relu'(out_n) * dout_n      (or dout_n)
//     fewer than 8 input channels:
//                           dy_n[o, arg_n[o, q]] += dz_n[o, q]   (and the same into dy_n^T)
//                           then Conv2d's per-image backward with dy_n (im2col + GEMMs, or its
//                           direct kernels); with windows apart and no input gradient wanted,
//                           the direct kernel reads dz_n^T and the winners instead of dy_n^T
//                           (Conv2d::backward_unpooled: the same values, nothing scattered);
//     8 or more:            the winners-only backward (kernels/conv2d_winners.hpp): dy_n is
//                           nonzero only there (a quarter of it with 2x2 pools), so
//                           the gradients are sums over those positions.
//
//   backward_input, per image (no parameter gradient touched):
//     fewer than 8 input channels: dy_n = scatter of dz_n to the winners, dx_n = fold(W^T * dy_n)
//                           or its planes-kernel form (the conv's own input-gradient path);
//     8 or more:            dx_n alone from the winners (Conv2d::backward_input_winners).
//
// Forward values are computed by the layers' own kernels in the same order
// as when they run one at a time, so outputs are bitwise the same; so are
// gradients on the dense path. The winners-only path sums in another order:
// its gradients agree to rounding (tests/test_model.cpp checks both, and
// finite differences); docs/performance.md has its measured speed. The
// layers' own forward/backward state is not touched: the fused step keeps
// its own output and winners.
#pragma once

#include "../kernels/maxpool.hpp"
#include "../layers/conv2d.hpp"
#include "../layers/maxpool2d.hpp"
#include "../layers/relu.hpp"
#include "step.hpp"

#include <cstdint>
#include <vector>

namespace eigencnn {

/// How ConvPool's backward and backward_input compute the conv's gradients (see the top of the file).
enum class PooledBackward {
    Auto,    ///< Winners with 8 or more input channels, else Dense (the faster one on the seed model's two convs)
    Dense,   ///< scatter the winners' gradients into dy, then im2col + GEMMs
    Winners  ///< the winners-only backward (kernels/conv2d_winners.hpp)
};

template <typename T>
class ConvPool final : public FusedStep<T> {
public:
    /// The layers must outlive this object; `relu` adds a ReLU after the pool.
    ConvPool(Conv2d<T>& conv, MaxPool2d<T>& pool, bool relu, PooledBackward how = PooledBackward::Auto)
        : conv_(&conv), pool_(&pool), relu_(relu), how_(how) {}

    /// x [N, C, H, W] -> [N, OC, PH, PW]. Shapes are checked by the layers.
    const Tensor<T>& forward(const Tensor<T>& x) override {
        const Shape ys = conv_->output_shape(x.shape());
        const Shape zs = pool_->output_shape(ys);
        const Index OC = ys[1], H = ys[2], W = ys[3], OP = zs[2] * zs[3];
        output_.resize(zs);
        conv_plane_ = H * W;
        has_argmax_ = conv_->grad_enabled();
        argmax_.resize(has_argmax_ ? static_cast<std::size_t>(zs.numel()) : 0);
        // a 2x2 pool in the conv kernel's registers where one runs (the first conv of a small CNN)
        if (pool_->kernel_size() == 2 && pool_->stride() == 2 &&
            conv_->forward_pooled(x, ys, relu_, output_.data(), has_argmax_ ? argmax_.data() : nullptr))
            return output_;
        conv_->forward_images(
            x, [](Index, T* scratch) { return scratch; },
            [&](Index n, const T* y) {
                for (Index o = 0; o < OC; ++o) {
                    const Index plane = n * OC + o;
                    T* out = output_.data() + plane * OP;
                    maxpool_plane(y + o * H * W, H, W, pool_->kernel_size(), pool_->stride(), out,
                                  has_argmax_ ? argmax_.data() + plane * OP : nullptr);
                    if (relu_)
                        for (Index q = 0; q < OP; ++q) out[q] = relu_value(out[q]);
                }
            });
        return output_;
    }

    /// dout [N, OC, PH, PW] -> dx [N, C, H, W] (empty when the conv's input
    /// gradient is off); fills the conv's parameter gradients.
    const Tensor<T>& backward(const Tensor<T>& dout) override {
        check_gradient(dout, "backward");
        const Index N = dout.dim(0), OC = dout.dim(1), OP = dout.dim(2) * dout.dim(3), P = conv_plane_;
        if (winners()) return conv_->backward_winners(N, OP, winner_entries(dout));
        dz_.resize(Shape{num_threads(), OC * OP});
        if (pool_->stride() >= pool_->kernel_size()) {  // windows apart: dW and db straight from dz_n and the winners
            auto unpooled = [&](Index n, T* dzT, std::int32_t* argT) {
                T* dz = dz_.data() + thread_index() * OC * OP;
                image_gradient(dout, n, dz);
                transpose(dz, OC, OP, dzT);
                transpose(argmax_.data() + n * OC * OP, OC, OP, argT);
            };
            if (const Tensor<T>* dx = conv_->backward_unpooled(N, dout.dim(2), dout.dim(3), pool_->stride(), unpooled)) return *dx;
        }
        return conv_->backward_images(N, [&](Index n, T* g, T* gt) {
            T* dz = dz_.data() + thread_index() * OC * OP;
            image_gradient(dout, n, dz);
            std::fill(gt, gt + P * OC, T(0));
            if (g) std::fill(g, g + P * OC, T(0));
            if (pool_->stride() >= pool_->kernel_size() && !g) {
                // windows apart: each position is one window's at most, stored once
                for (Index o = 0; o < OC; ++o) {
                    const std::int32_t* arg = argmax_.data() + (n * OC + o) * OP;
                    for (Index q = 0; q < OP; ++q) gt[arg[q] * OC + o] = dz[o * OP + q];
                }
                return static_cast<const T*>(g);
            }
            for (Index o = 0; o < OC; ++o) {
                const std::int32_t* arg = argmax_.data() + (n * OC + o) * OP;
                for (Index q = 0; q < OP; ++q) {
                    const T v = dz[o * OP + q];
                    gt[arg[q] * OC + o] += v;
                    if (g) g[o * P + arg[q]] += v;
                }
            }
            return static_cast<const T*>(g);
        });
    }

    /// dout [N, OC, PH, PW] -> dx [N, C, H, W]; no parameter gradient is touched.
    const Tensor<T>& backward_input(const Tensor<T>& dout) override {
        check_gradient(dout, "backward_input");
        const Index N = dout.dim(0), OC = dout.dim(1), OP = dout.dim(2) * dout.dim(3), P = conv_plane_;
        if (winners()) return conv_->backward_input_winners(N, OP, winner_entries(dout));
        dz_.resize(Shape{num_threads(), OC * OP});
        return conv_->backward_input_images(N, [&](Index n, T* g) {
            T* dz = dz_.data() + thread_index() * OC * OP;
            image_gradient(dout, n, dz);
            std::fill(g, g + P * OC, T(0));
            for (Index o = 0; o < OC; ++o) {
                const std::int32_t* arg = argmax_.data() + (n * OC + o) * OP;
                for (Index q = 0; q < OP; ++q) g[o * P + arg[q]] += dz[o * OP + q];
            }
            return static_cast<const T*>(g);
        });
    }

    std::string name() const override { return conv_->name() + " + " + pool_->name() + (relu_ ? " + ReLU()" : ""); }

private:
    void check_gradient(const Tensor<T>& dout, const char* what) const {
        if (!has_argmax_) detail::no_backward_state(name());
        if (dout.shape() != output_.shape())
            detail::shape_error(name() + " " + what, "gradient of shape " + output_.shape().str(), dout.shape());
    }

    // Whether the conv's gradients come from the winners-only kernels (see PooledBackward).
    bool winners() const {
        return how_ == PooledBackward::Winners || (how_ == PooledBackward::Auto && conv_->in_channels() >= kSparseMinChannels);
    }

    // entries(n, pos, val) for Conv2d's winners-only paths: image n's winners and their gradients dz, [OC, PH*PW] each.
    auto winner_entries(const Tensor<T>& dout) const {
        const Index OCP = dout.dim(1) * dout.dim(2) * dout.dim(3);
        return [this, &dout, OCP](Index n, std::int32_t* pos, T* val) {
            std::copy(argmax_.data() + n * OCP, argmax_.data() + (n + 1) * OCP, pos);
            image_gradient(dout, n, val);
        };
    }

    // dz [OC, PH*PW] of image n: the pool output's gradient, through the ReLU if any. One
    // loop without a branch per value, apart from the scatters that use it: the ReLU's
    // data-dependent branch inside a scatter loop mispredicts about half the time.
    void image_gradient(const Tensor<T>& dout, Index n, T* dz) const {
        const Index OCP = dout.dim(1) * dout.dim(2) * dout.dim(3);
        const T* d = dout.data() + n * OCP;
        if (!relu_) {
            std::copy(d, d + OCP, dz);
            return;
        }
        const T* y = output_.data() + n * OCP;
        EIGENCNN_OMP(simd)
        for (Index e = 0; e < OCP; ++e) dz[e] = relu_gradient(y[e], d[e]);
    }

    // Auto's threshold. Measured (bench/conv_bench, pooled_backward): Winners is far faster on the seed
    // model's conv2 (16 channels) and far slower on conv1 (1 channel, too few to vectorise over).
    static constexpr Index kSparseMinChannels = 8;

    Conv2d<T>* conv_;
    MaxPool2d<T>* pool_;
    bool relu_;
    PooledBackward how_;
    Tensor<T> output_;                  // [N, OC, PH, PW], after the ReLU if any
    Tensor<T> dz_;                      // dense backward paths: per thread, one image's dz [OC, PH*PW]
    std::vector<std::int32_t> argmax_;  // winners' positions in their conv output plane (gradients enabled only)
    bool has_argmax_ = false;
    Index conv_plane_ = 0;              // OH*OW of the conv output
};

}  // namespace eigencnn
