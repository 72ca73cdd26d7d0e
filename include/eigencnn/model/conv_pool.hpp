// eigencnn/model/conv_pool.hpp
//
// ConvPool<T>: Conv2d -> MaxPool2d [-> ReLU] run as one step, image by image.
// Sequential uses it wherever its execution order has that pattern (the
// seed model's Conv2d -> ReLU -> MaxPool2d is one, once the ReLU has moved
// behind the pool). Unfused, the convolution's whole output [N, OC, OH, OW]
// goes out to memory and comes back for the pool, and its gradient does the
// same in backward; on the seed model's first layer that is 18 MB each way
// per batch. Fused, each image's part stays in the thread's cache:
//
//   forward, per image n:   y_n  = conv(x_n)                  [OC, OH*OW]    (thread scratch)
//                           z_n  = pool(y_n), winners arg_n   [OC, PH*PW]
//                           out_n = relu(z_n) (or z_n)        -> out [N, OC, PH, PW]
//   backward, per image n:  dz_n = relu'(out_n) * dout_n      (or dout_n)
//     fewer than 8 input channels:
//                           dy_n[o, arg_n[o, q]] += dz_n[o, q]   (and the same into dy_n^T)
//                           then Conv2d's per-image backward with dy_n (im2col + GEMMs);
//     8 or more:            Conv2d::backward_sparse on the winners alone: dy_n is
//                           nonzero only there (a quarter of it with 2x2 pools), so
//                           the gradients are sums over those positions.
//
// Forward values are computed by the layers' own kernels in the same order
// as when they run one at a time, so outputs are bitwise the same; so are
// gradients on the dense path. The winners-only path sums in another order:
// its gradients agree to rounding (tests/test_model.cpp checks both, and
// finite differences); docs/performance.md has its measured speed. The
// layers' own forward/backward state is not touched: the fused step keeps
// its own output and winners.
#pragma once

#include "../layers/conv2d.hpp"
#include "../layers/maxpool2d.hpp"
#include "../layers/relu.hpp"

#include <cstdint>
#include <vector>

namespace eigencnn {

/// How ConvPool's backward computes the conv's gradients (see the top of the file).
enum class PooledBackward {
    Auto,    ///< Winners with 8 or more input channels, else Dense (the faster one on the seed model's two convs)
    Dense,   ///< scatter the winners' gradients into dy, then im2col + GEMMs
    Winners  ///< Conv2d::backward_sparse over the winners alone
};

template <typename T>
class ConvPool {
public:
    /// The layers must outlive this object; `relu` adds a ReLU after the pool.
    ConvPool(Conv2d<T>& conv, MaxPool2d<T>& pool, bool relu, PooledBackward how = PooledBackward::Auto)
        : conv_(&conv), pool_(&pool), relu_(relu), how_(how) {}

    /// x [N, C, H, W] -> [N, OC, PH, PW]. Shapes are checked by the layers.
    const Tensor<T>& forward(const Tensor<T>& x) {
        const Shape ys = conv_->output_shape(x.shape());
        const Shape zs = pool_->output_shape(ys);
        const Index OC = ys[1], H = ys[2], W = ys[3], OP = zs[2] * zs[3];
        output_.resize(zs);
        conv_plane_ = H * W;
        has_argmax_ = conv_->training();
        argmax_.resize(has_argmax_ ? static_cast<std::size_t>(zs.numel()) : 0);
        conv_->forward_images(
            x, [](Index, T* scratch) { return scratch; },
            [&](Index n, const T* y) {
                for (Index o = 0; o < OC; ++o) {
                    const Index plane = n * OC + o;
                    T* out = output_.data() + plane * OP;
                    pool_->pool_plane(y + o * H * W, H, W, out, has_argmax_ ? argmax_.data() + plane * OP : nullptr);
                    if (relu_)
                        for (Index q = 0; q < OP; ++q) out[q] = ReLU<T>::value(out[q]);
                }
            });
        return output_;
    }

    /// dout [N, OC, PH, PW] -> dx [N, C, H, W] (empty when the conv's input
    /// gradient is off); fills the conv's parameter gradients.
    const Tensor<T>& backward(const Tensor<T>& dout) {
        if (!has_argmax_) detail::no_backward_state(name());
        if (dout.shape() != output_.shape())
            detail::shape_error(name() + " backward", "gradient of shape " + output_.shape().str(), dout.shape());
        const Index N = dout.dim(0), OC = dout.dim(1), OP = dout.dim(2) * dout.dim(3);
        // dz at element e of [N, OC, PH, PW]: the pool output's gradient, through the ReLU if any
        const auto dz = [&](Index e) { return relu_ ? ReLU<T>::gradient(output_.data()[e], dout.data()[e]) : dout.data()[e]; };
        if (how_ == PooledBackward::Winners || (how_ == PooledBackward::Auto && conv_->in_channels() >= kSparseMinChannels))
            return conv_->backward_sparse(N, OP, [&](Index n, std::int32_t* pos, T* val) {
                const Index at = n * OC * OP;
                std::copy(argmax_.data() + at, argmax_.data() + at + OC * OP, pos);
                for (Index e = 0; e < OC * OP; ++e) val[e] = dz(at + e);
            });
        const Index P = conv_plane_;
        return conv_->backward_images(N, [&](Index n, T* g, T* gt) {
            std::fill(gt, gt + P * OC, T(0));
            if (g) std::fill(g, g + P * OC, T(0));
            for (Index o = 0; o < OC; ++o) {
                const Index plane = n * OC + o;
                const std::int32_t* arg = argmax_.data() + plane * OP;
                for (Index q = 0; q < OP; ++q) {
                    const T v = dz(plane * OP + q);
                    gt[arg[q] * OC + o] += v;
                    if (g) g[o * P + arg[q]] += v;
                }
            }
            return static_cast<const T*>(g);
        });
    }

    std::string name() const { return conv_->name() + " + " + pool_->name() + (relu_ ? " + ReLU()" : ""); }

private:
    // Auto's threshold. Measured (bench/conv_bench, pooled_backward): Winners is far faster on the seed
    // model's conv2 (16 channels) and far slower on conv1 (1 channel, too few to vectorise over).
    static constexpr Index kSparseMinChannels = 8;

    Conv2d<T>* conv_;
    MaxPool2d<T>* pool_;
    bool relu_;
    PooledBackward how_;
    Tensor<T> output_;                  // [N, OC, PH, PW], after the ReLU if any
    std::vector<std::int32_t> argmax_;  // winners' positions in their conv output plane (training mode only)
    bool has_argmax_ = false;
    Index conv_plane_ = 0;              // OH*OW of the conv output
};

}  // namespace eigencnn
