// SPDX-License-Identifier: MIT
// eigencnn/layers/batchnorm.hpp
//
// BatchNorm2d and BatchNorm1d: batch normalisation, as torch.nn.BatchNorm2d
// and torch.nn.BatchNorm1d (affine, tracking running statistics).
//
//   BatchNorm2d: x [N, C, H, W]          BatchNorm1d: x [N, C] or [N, C, L]      -> y of the same shape
//   per channel c, over its M = N*H*W (or N, N*L) values:
//   train mode:  mean = sum x / M,  var = sum (x - mean)^2 / M           (biased, for normalising)
//                running_mean <- (1 - momentum) * running_mean + momentum * mean
//                running_var  <- (1 - momentum) * running_var  + momentum * var * M / (M - 1)   (unbiased)
//                num_batches_tracked += 1
//   eval mode:   mean = running_mean, var = running_var
//   xhat = (x - mean) / sqrt(var + eps),   y = weight[c] * xhat + bias[c]
// Parameters weight (ones) and bias (zeros); buffers running_mean (zeros),
// running_var (ones), num_batches_tracked (a rank-0 count), PyTorch's names and order.
// Backward, with inv = 1 / sqrt(var + eps):
//   dbias[c]   = sum dy                dweight[c] = sum dy * xhat
//   train:  dx = weight[c] * inv / M * (M * dy - dbias[c] - xhat * dweight[c])   (mean and var depend on x)
//   eval:   dx = weight[c] * inv * dy                                            (the affine per-channel map)
// Channels run in parallel, in blocks (BatchNorm1d on [N, C]: 32 neighbouring
// features, read row by row; otherwise up to 8 channels, their sums interleaved);
// each channel's sums run in a fixed order (in double), so results do not
// depend on the thread count or the blocking.
#pragma once

#include "../core/omp.hpp"

#include "../core/layer.hpp"
#include "../core/registry.hpp"
#include "../core/threads.hpp"

#include <algorithm>
#include <cmath>
#include <type_traits>

namespace eigencnn {

template <typename T>
class BatchNormBase : public Layer<T> {
public:
    /// Spec {num_features, eps, momentum}.
    static std::uint64_t parameter_count(const LayerSpec& s) {
        s.expect_args(3);
        s.real_arg(1, "eps", 0, 1e300);
        s.real_arg(2, "momentum", 0, 1);
        return 2 * static_cast<std::uint64_t>(s.int_arg(0, "num_features", 1, kMaxSizeArg));
    }

    std::string name() const override {
        std::string s = type_ + "(" + std::to_string(c_);
        if (eps_ != 1e-5) s += ", eps=" + SpecArg(eps_).str();
        if (momentum_ != 0.1) s += ", momentum=" + SpecArg(momentum_).str();
        return s + ")";
    }
    LayerSpec spec() const override { return {type_, {c_, eps_, momentum_}}; }

    Shape output_shape(const Shape& in) const override {
        const bool rank_ok = type_ == "BatchNorm2d" ? in.rank() == 4 : (in.rank() == 2 || in.rank() == 3);
        if (!rank_ok || in[1] != c_)
            detail::shape_error(name(), type_ == "BatchNorm2d" ? "[N, " + std::to_string(c_) + ", H, W]"
                                                               : "[N, " + std::to_string(c_) + "] or [N, " + std::to_string(c_) + ", L]",
                                in);
        return in;
    }

    /// weight = 1, bias = 0 whatever the generator, as PyTorch (the running statistics are left as they are).
    void reset_parameters(Rng& /*rng*/) override {
        weight_.fill(T(1));
        bias_.set_zero();
    }

    const Tensor<T>& forward(const Tensor<T>& x) override {
        output_.resize(output_shape(x.shape()));
        const Index N = x.dim(0), inner = x.shape().sample_size() / c_, M = N * inner;
        const bool train = this->training();
        if (train && M < 2)
            throw std::invalid_argument(name() + ": expected more than 1 value per channel when training, got input " + x.shape().str());
        keep_ = this->grad_enabled_;
        xhat_.resize(keep_ ? x.shape() : Shape{0});
        const T* xs = x.data();
        T* y = output_.data();
        T* xh = keep_ ? xhat_.data() : nullptr;
        for_each_channel_block(inner, [&](auto flat, Index c0, Index width) {
            forward_channels<decltype(flat)::value>(xs, y, xh, N, inner, c0, width, train);
        });
        if (train) num_batches_tracked_[0] += T(1);
        batch_stats_ = train;
        return output_;
    }

    const Tensor<T>& backward(const Tensor<T>& dy) override { return run_backward(dy, true, "backward"); }

    /// dx alone; weight and bias gradients untouched.
    const Tensor<T>& backward_input(const Tensor<T>& dy) override { return run_backward(dy, false, "backward_input"); }

    std::vector<Parameter<T>> parameters() override { return {{"weight", &weight_, &grad_weight_}, {"bias", &bias_, &grad_bias_}}; }
    std::vector<Buffer<T>> buffers() override {
        return {{"running_mean", &running_mean_}, {"running_var", &running_var_}, {"num_batches_tracked", &num_batches_tracked_}};
    }

    Tensor<T>& weight() { return weight_; }
    Tensor<T>& bias() { return bias_; }
    Tensor<T>& running_mean() { return running_mean_; }
    Tensor<T>& running_var() { return running_var_; }
    const Tensor<T>& num_batches_tracked() const { return num_batches_tracked_; }
    const Tensor<T>& grad_weight() const { return grad_weight_; }
    const Tensor<T>& grad_bias() const { return grad_bias_; }
    Index num_features() const { return c_; }
    double eps() const { return eps_; }
    double momentum() const { return momentum_; }

protected:
    BatchNormBase(std::string type, Index num_features, double eps, double momentum)
        : type_(std::move(type)), c_(num_features), eps_(eps), momentum_(momentum) {
        if (c_ < 1 || c_ > kMaxSizeArg || !(eps_ > 0) || !std::isfinite(eps_) || !(momentum_ >= 0 && momentum_ <= 1))
            throw std::invalid_argument(type_ + ": need 1 <= num_features <= 2^31, eps > 0 and momentum in [0, 1], got " +
                                        std::to_string(c_) + ", eps=" + SpecArg(eps_).str() + ", momentum=" + SpecArg(momentum_).str());
        weight_ = Tensor<T>(Shape{c_}, T(1));
        bias_ = Tensor<T>(Shape{c_});
        grad_weight_ = Tensor<T>(Shape{c_});
        grad_bias_ = Tensor<T>(Shape{c_});
        running_mean_ = Tensor<T>(Shape{c_});
        running_var_ = Tensor<T>(Shape{c_}, T(1));
        num_batches_tracked_ = Tensor<T>(Shape{});
        inv_ = Tensor<T>(Shape{c_});
    }

private:
    const Tensor<T>& run_backward(const Tensor<T>& dy, bool write_params, const char* what) {
        if (dy.shape() != output_.shape())
            detail::shape_error(name() + " " + what, "gradient of shape " + output_.shape().str(), dy.shape());
        if (!keep_) detail::no_backward_state(name());
        const bool want_dx = this->input_grad_ || !write_params;
        grad_input_.resize(want_dx ? dy.shape() : Shape{0});
        const Index N = dy.dim(0), inner = dy.shape().sample_size() / c_;
        const T* g = dy.data();
        const T* xh = xhat_.data();
        T* dx = grad_input_.data();
        for_each_channel_block(inner, [&](auto flat, Index c0, Index width) {
            backward_channels<decltype(flat)::value>(g, xh, want_dx ? dx : nullptr, N, inner, c0, width, write_params);
        });
        return grad_input_;
    }

    /// work(flat, c0, width) for every block of channels [c0, c0 + width), the blocks spread over the threads;
    /// flat is std::true_type when inner == 1 (blocks of kFeatureBlock channels), else std::false_type (blocks of
    /// up to kPlaneBlock channels, a whole number of them per thread where there are enough channels).
    template <typename Work>
    void for_each_channel_block(Index inner, const Work& work) const {
        // planes: as many blocks of up to kPlaneBlock as a whole number of per thread, evened out
        const Index threads = num_threads(), even = ((c_ + kPlaneBlock - 1) / kPlaneBlock + threads - 1) / threads * threads;
        const Index block = inner == 1 ? kFeatureBlock : (c_ + even - 1) / even;
        const Index blocks = (c_ + block - 1) / block;
        EIGENCNN_OMP(parallel for schedule(static))
        for (Index b = 0; b < blocks; ++b) {
            const Index c0 = b * block, width = std::min(block, c_ - c0);
            if (inner == 1) work(std::true_type{}, c0, width);
            else work(std::false_type{}, c0, width);
        }
    }

    // The work of one block of channels [c0, c0 + width) over the whole batch. Each channel's sums run
    // over n, then i, in that order, in double, whatever the blocking: the result does not depend on the
    // block size or the thread count. The sums loop over the block's channels innermost: each channel's sum
    // is a chain of dependent double additions (4 cycles each), and a block's chains interleave, so that
    // the adds of up to kPlaneBlock channels are in flight at once (one channel at a time, BatchNorm2d's
    // forward was bound by that latency: 16 channels of [128, 16, 32, 32] took 2.1 ms on 2 threads).
    // kFlat (inner == 1: BatchNorm1d on [N, C]) blocks kFeatureBlock neighbouring channels, which then
    // also read memory in order (one channel at a time reads with a stride of C values); otherwise a
    // block's channels read kPlaneBlock streams [n, c, 0..inner), each in order.
    static constexpr Index kFeatureBlock = 32, kPlaneBlock = 8;

    // a[j] and b[j] += the terms of channel c0 + j (add(e, j, a[j], b[j]) for its value e), over n, then i, the
    // block's channels innermost: their chains of sums interleave. A whole block of kPlaneBlock channels keeps
    // its sums in registers (the loop over them unrolled); others (the flat blocks, a last partial block) in
    // the arrays.
    template <bool kFlat, typename Add>
    void block_sums(Index N, Index inner_dyn, Index c0, Index width, double* a, double* b, const Add& add) const {
        const Index inner = kFlat ? 1 : inner_dyn;
        if (!kFlat && width == kPlaneBlock) {
            double as[kPlaneBlock], bs[kPlaneBlock];
            std::copy(a, a + kPlaneBlock, as);
            std::copy(b, b + kPlaneBlock, bs);
            for (Index n = 0; n < N; ++n)
                for (Index i = 0; i < inner; ++i)
#pragma GCC unroll 8
                    for (Index j = 0; j < kPlaneBlock; ++j) add((n * c_ + c0 + j) * inner + i, j, as[j], bs[j]);
            std::copy(as, as + kPlaneBlock, a);
            std::copy(bs, bs + kPlaneBlock, b);
            return;
        }
        for (Index n = 0; n < N; ++n)
            for (Index i = 0; i < inner; ++i)
                for (Index j = 0; j < width; ++j) add((n * c_ + c0 + j) * inner + i, j, a[j], b[j]);
    }

    template <bool kFlat>
    void forward_channels(const T* xs, T* y, T* xh, Index N, Index inner_dyn, Index c0, Index width, bool train) {
        const Index inner = kFlat ? 1 : inner_dyn, M = N * inner;
        const auto at = [&](Index n, Index j, Index i) { return (n * c_ + c0 + j) * inner + i; };
        double mean[kFeatureBlock], var[kFeatureBlock], inv[kFeatureBlock], w[kFeatureBlock], b[kFeatureBlock];
        if (train) {
            double sum[kFeatureBlock] = {}, sq[kFeatureBlock] = {}, none[kFeatureBlock] = {};
            block_sums<kFlat>(N, inner, c0, width, sum, none, [&](Index e, Index, double& a, double&) { a += xs[e]; });
            for (Index j = 0; j < width; ++j) mean[j] = sum[j] / static_cast<double>(M);
            block_sums<kFlat>(N, inner, c0, width, sq, none, [&](Index e, Index j, double& a, double&) {
                const double d = xs[e] - mean[j];
                a += d * d;
            });
            for (Index j = 0; j < width; ++j) {
                const Index c = c0 + j;
                var[j] = sq[j] / static_cast<double>(M);
                running_mean_[c] = static_cast<T>((1 - momentum_) * running_mean_[c] + momentum_ * mean[j]);
                running_var_[c] = static_cast<T>((1 - momentum_) * running_var_[c] + momentum_ * var[j] * static_cast<double>(M) / static_cast<double>(M - 1));
            }
        } else {
            for (Index j = 0; j < width; ++j) mean[j] = running_mean_[c0 + j], var[j] = running_var_[c0 + j];
        }
        for (Index j = 0; j < width; ++j) {
            inv[j] = 1 / std::sqrt(var[j] + eps_);
            inv_[c0 + j] = static_cast<T>(inv[j]);
            w[j] = weight_[c0 + j];
            b[j] = bias_[c0 + j];
        }
        for (Index n = 0; n < N; ++n)
            for (Index j = 0; j < width; ++j)
                for (Index i = 0; i < inner; ++i) {
                    const Index e = at(n, j, i);
                    const double h = (xs[e] - mean[j]) * inv[j];
                    if (xh) xh[e] = static_cast<T>(h);
                    y[e] = static_cast<T>(w[j] * h + b[j]);
                }
    }

    /// dbias, dweight (written when write_params) and dx (when dx is not null) for one block of channels.
    template <bool kFlat>
    void backward_channels(const T* g, const T* xh, T* dx, Index N, Index inner_dyn, Index c0, Index width, bool write_params) {
        const Index inner = kFlat ? 1 : inner_dyn, M = N * inner;
        const auto at = [&](Index n, Index j, Index i) { return (n * c_ + c0 + j) * inner + i; };
        double db[kFeatureBlock] = {}, dw[kFeatureBlock] = {}, k[kFeatureBlock];
        block_sums<kFlat>(N, inner, c0, width, db, dw, [&](Index e, Index, double& a, double& b) {
            a += g[e];
            b += static_cast<double>(g[e]) * xh[e];
        });
        if (write_params)
            for (Index j = 0; j < width; ++j) {
                grad_bias_[c0 + j] = static_cast<T>(db[j]);
                grad_weight_[c0 + j] = static_cast<T>(dw[j]);
            }
        if (!dx) return;
        for (Index j = 0; j < width; ++j) k[j] = static_cast<double>(weight_[c0 + j]) * inv_[c0 + j];
        const double m = static_cast<double>(M);
        if (batch_stats_)  // train: the mean and variance depend on x
            for (Index n = 0; n < N; ++n)
                for (Index j = 0; j < width; ++j)
                    for (Index i = 0; i < inner; ++i) {
                        const Index e = at(n, j, i);
                        dx[e] = static_cast<T>(k[j] / m * (m * g[e] - db[j] - xh[e] * dw[j]));
                    }
        else  // eval: the per-channel affine map
            for (Index n = 0; n < N; ++n)
                for (Index j = 0; j < width; ++j)
                    for (Index i = 0; i < inner; ++i) dx[at(n, j, i)] = static_cast<T>(k[j] * g[at(n, j, i)]);
    }

    std::string type_;
    Index c_;
    double eps_, momentum_;
    Tensor<T> weight_, bias_, grad_weight_, grad_bias_;
    Tensor<T> running_mean_, running_var_, num_batches_tracked_;
    Tensor<T> output_, xhat_, inv_, grad_input_;  // xhat_ [x's shape], inv_ [C]: what backward needs
    bool keep_ = false, batch_stats_ = false;
};

template <typename T>
class BatchNorm2d final : public BatchNormBase<T> {
public:
    static constexpr const char* kType = "BatchNorm2d";
    explicit BatchNorm2d(Index num_features, double eps = 1e-5, double momentum = 0.1) : BatchNormBase<T>(kType, num_features, eps, momentum) {}
    static BatchNorm2d from_spec(const LayerSpec& s) {
        BatchNormBase<T>::parameter_count(s);
        return BatchNorm2d(s.int_arg(0, "num_features", 1, kMaxSizeArg), s.real_arg(1, "eps", 0, 1e300), s.real_arg(2, "momentum", 0, 1));
    }
};

template <typename T>
class BatchNorm1d final : public BatchNormBase<T> {
public:
    static constexpr const char* kType = "BatchNorm1d";
    explicit BatchNorm1d(Index num_features, double eps = 1e-5, double momentum = 0.1) : BatchNormBase<T>(kType, num_features, eps, momentum) {}
    static BatchNorm1d from_spec(const LayerSpec& s) {
        BatchNormBase<T>::parameter_count(s);
        return BatchNorm1d(s.int_arg(0, "num_features", 1, kMaxSizeArg), s.real_arg(1, "eps", 0, 1e300), s.real_arg(2, "momentum", 0, 1));
    }
};

EIGENCNN_REGISTER_LAYER(BatchNorm2d)
EIGENCNN_REGISTER_LAYER(BatchNorm1d)

}  // namespace eigencnn
