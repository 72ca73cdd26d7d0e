// SPDX-License-Identifier: MIT
// eigencnn/layers/avgpool2d.hpp
//
// AvgPool2d: mean over K x K windows, as torch.nn.AvgPool2d(kernel_size,
// stride=kernel_size, padding=0) with its defaults count_include_pad=True
// and floor mode.
//
//   x [N, C, H, W] -> y [N, C, OH, OW],  OH = (H + 2*padding - K) / stride + 1   (likewise OW)
//   y[n, c, i, j] = (1 / K^2) * sum_{a, b < K} x[n, c, i*stride + a - padding, j*stride + b - padding]
//                   (padding counts as zeros, in the sum and in the K^2)
// Backward: dx[n, c, h, w] = sum over the windows (i, j) that hold (h, w) of dy[n, c, i, j] / K^2.
// Planes run in parallel, each plane's sums in a fixed order.
#pragma once

#include "../core/omp.hpp"

#include "../core/layer.hpp"
#include "../core/parallel.hpp"
#include "../core/registry.hpp"

#include <algorithm>

namespace eigencnn {

template <typename T>
class AvgPool2d final : public Layer<T> {
public:
    static constexpr const char* kType = "AvgPool2d";

    /// stride 0 means "equal to kernel_size".
    explicit AvgPool2d(Index kernel_size, Index stride = 0, Index padding = 0)
        : k_(kernel_size), stride_(stride ? stride : kernel_size), pad_(padding) {
        if (k_ < 1 || stride_ < 1 || pad_ < 0 || k_ > kMaxSizeArg || stride_ > kMaxSizeArg || 2 * pad_ > k_)
            throw std::invalid_argument("AvgPool2d: need 1 <= kernel_size, stride <= 2^31 and 0 <= padding <= kernel_size / 2, got kernel_size=" +
                                        std::to_string(kernel_size) + ", stride=" + std::to_string(stride) + ", padding=" + std::to_string(padding));
    }

    /// Spec {kernel_size, stride, padding}.
    static AvgPool2d from_spec(const LayerSpec& s) {
        s.expect_args(3);
        return AvgPool2d(s.int_arg(0, "kernel_size", 1, kMaxSizeArg), s.int_arg(1, "stride", 1, kMaxSizeArg), s.int_arg(2, "padding", 0, kMaxSizeArg));
    }
    static std::uint64_t parameter_count(const LayerSpec& s) {
        from_spec(s);
        return 0;
    }

    std::string name() const override {
        return "AvgPool2d(kernel_size=" + std::to_string(k_) + ", stride=" + std::to_string(stride_) +
               (pad_ ? ", padding=" + std::to_string(pad_) : "") + ")";
    }
    LayerSpec spec() const override { return {kType, {k_, stride_, pad_}}; }

    Shape output_shape(const Shape& in) const override {
        if (in.rank() != 4) detail::shape_error(name(), "[N, C, H, W]", in);
        const auto what = [this] { return name(); };  // built on the error path only
        if (checked_add(in[2], 2 * pad_, what) < k_ || checked_add(in[3], 2 * pad_, what) < k_)
            detail::shape_error(name(), "H and W of at least " + std::to_string(k_ - 2 * pad_), in);
        return Shape{in[0], in[1], (in[2] + 2 * pad_ - k_) / stride_ + 1, (in[3] + 2 * pad_ - k_) / stride_ + 1};
    }

    const Tensor<T>& forward(const Tensor<T>& x) override {
        const Shape ys = output_shape(x.shape());
        in_shape_ = x.shape();
        output_.resize(ys);
        const Index planes = ys[0] * ys[1], H = x.dim(2), W = x.dim(3), OH = ys[2], OW = ys[3];
        const T scale = T(1) / static_cast<T>(k_ * k_);
        const T* xs = x.data();
        T* y = output_.data();
        EIGENCNN_OMP(parallel for schedule(static) if (planes * H * W >= kParallelElements))
        for (Index pl = 0; pl < planes; ++pl)
            for (Index i = 0; i < OH; ++i)
                for (Index j = 0; j < OW; ++j) {
                    T sum = 0;
                    for (Index h = std::max<Index>(0, i * stride_ - pad_); h < std::min(H, i * stride_ - pad_ + k_); ++h)
                        for (Index w = std::max<Index>(0, j * stride_ - pad_); w < std::min(W, j * stride_ - pad_ + k_); ++w)
                            sum += xs[(pl * H + h) * W + w];
                    y[(pl * OH + i) * OW + j] = sum * scale;
                }
        return output_;
    }

    const Tensor<T>& backward(const Tensor<T>& dy) override {
        if (dy.shape() != output_.shape() || in_shape_.rank() != 4)
            detail::shape_error(name() + " backward", "gradient of shape " + output_.shape().str(), dy.shape());
        grad_input_.resize(in_shape_);
        grad_input_.set_zero();
        const Index planes = dy.dim(0) * dy.dim(1), H = in_shape_[2], W = in_shape_[3], OH = dy.dim(2), OW = dy.dim(3);
        const T scale = T(1) / static_cast<T>(k_ * k_);
        const T* g = dy.data();
        T* dx = grad_input_.data();
        EIGENCNN_OMP(parallel for schedule(static) if (planes * H * W >= kParallelElements))
        for (Index pl = 0; pl < planes; ++pl)
            for (Index i = 0; i < OH; ++i)
                for (Index j = 0; j < OW; ++j) {
                    const T v = g[(pl * OH + i) * OW + j] * scale;
                    for (Index h = std::max<Index>(0, i * stride_ - pad_); h < std::min(H, i * stride_ - pad_ + k_); ++h)
                        for (Index w = std::max<Index>(0, j * stride_ - pad_); w < std::min(W, j * stride_ - pad_ + k_); ++w)
                            dx[(pl * H + h) * W + w] += v;
                }
        return grad_input_;
    }

    /// No parameters: the same as backward.
    const Tensor<T>& backward_input(const Tensor<T>& dy) override { return backward(dy); }

    Index kernel_size() const { return k_; }
    Index stride() const { return stride_; }
    Index padding() const { return pad_; }

private:
    Index k_, stride_, pad_;
    Shape in_shape_;
    Tensor<T> output_, grad_input_;
};

EIGENCNN_REGISTER_LAYER(AvgPool2d)

}  // namespace eigencnn
