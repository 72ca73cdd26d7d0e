// SPDX-License-Identifier: MIT
// eigencnn/layers/maxpool2d.hpp
//
// MaxPool2d: maximum over K x K windows, as torch.nn.MaxPool2d (no padding,
// floor mode; stride defaults to the kernel size).
//
//   x [N, C, H, W] -> y [N, C, OH, OW],  OH = (H - K) / stride + 1
//   y[n, c, i, j] = max_{a, b < K} x[n, c, i*stride + a, j*stride + b]
// Backward routes each output gradient to the input element that won
// (the first maximum in row-major order; a NaN wins, as in PyTorch):
//   dx[n, c, argmax(n, c, i, j)] += dy[n, c, i, j]
// The per-plane kernels are in kernels/maxpool.hpp. With gradients disabled
// forward keeps no winners (less memory traffic) and backward throws.
#pragma once

#include "../core/omp.hpp"

#include "../core/layer.hpp"
#include "../core/parallel.hpp"
#include "../core/registry.hpp"
#include "../kernels/maxpool.hpp"

#include <cstdint>
#include <limits>

namespace eigencnn {

template <typename T>
class MaxPool2d final : public Layer<T> {
public:
    static constexpr const char* kType = "MaxPool2d";

    /// stride 0 means "equal to kernel_size".
    explicit MaxPool2d(Index kernel_size, Index stride = 0) : k_(kernel_size), stride_(stride ? stride : kernel_size) {
        if (k_ < 1 || stride_ < 1 || k_ > kMaxSizeArg || stride_ > kMaxSizeArg)
            throw std::invalid_argument("MaxPool2d: need 1 <= kernel_size <= 2^31 and 0 <= stride <= 2^31, got kernel_size=" +
                                        std::to_string(kernel_size) + ", stride=" + std::to_string(stride));
    }

    /// Spec {kernel_size, stride}.
    static MaxPool2d from_spec(const LayerSpec& s) {
        s.expect_args(2);
        return MaxPool2d(s.int_arg(0, "kernel_size", 1, kMaxSizeArg), s.int_arg(1, "stride", 1, kMaxSizeArg));
    }
    static std::uint64_t parameter_count(const LayerSpec& s) {
        from_spec(s);
        return 0;
    }

    std::string name() const override {
        return "MaxPool2d(kernel_size=" + std::to_string(k_) + ", stride=" + std::to_string(stride_) + ")";
    }

    LayerSpec spec() const override { return {kType, {k_, stride_}}; }

    Shape output_shape(const Shape& in) const override {
        if (in.rank() != 4) detail::shape_error(name(), "[N, C, H, W]", in);
        if (in[2] < k_ || in[3] < k_) detail::shape_error(name(), "H and W of at least " + std::to_string(k_), in);
        if (checked_mul(in[2], in[3], [this] { return name(); }) > std::numeric_limits<std::int32_t>::max())
            detail::shape_error(name(), "planes of fewer than 2^31 elements", in);
        return Shape{in[0], in[1], (in[2] - k_) / stride_ + 1, (in[3] - k_) / stride_ + 1};
    }

    const Tensor<T>& forward(const Tensor<T>& x) override {
        const Shape ys = output_shape(x.shape());
        in_shape_ = x.shape();
        const Index planes = ys[0] * ys[1], H = x.dim(2), W = x.dim(3), OH = ys[2], OW = ys[3];
        output_.resize(ys);
        has_argmax_ = this->grad_enabled_;
        argmax_.resize(has_argmax_ ? static_cast<std::size_t>(ys.numel()) : 0);
        const T* xs = x.data();
        T* y = output_.data();
        std::int32_t* am = argmax_.data();
        EIGENCNN_OMP(parallel for schedule(static) if (planes * H * W >= kParallelElements))
        for (Index pl = 0; pl < planes; ++pl)
            maxpool_plane(xs + pl * H * W, H, W, k_, stride_, y + pl * OH * OW, has_argmax_ ? am + pl * OH * OW : nullptr);
        return output_;
    }

    const Tensor<T>& backward(const Tensor<T>& dy) override {
        if (!has_argmax_) detail::no_backward_state(name());
        if (dy.shape() != output_.shape())
            detail::shape_error(name() + " backward", "gradient of shape " + output_.shape().str(), dy.shape());
        grad_input_.resize(in_shape_);
        const Index planes = dy.dim(0) * dy.dim(1), HW = in_shape_[2] * in_shape_[3], OP = dy.dim(2) * dy.dim(3);
        const T* g = dy.data();
        const std::int32_t* am = argmax_.data();
        T* dx = grad_input_.data();
        EIGENCNN_OMP(parallel for schedule(static) if (planes * HW >= kParallelElements))
        for (Index pl = 0; pl < planes; ++pl) maxpool_plane_backward(g + pl * OP, am + pl * OP, OP, dx + pl * HW, HW);
        return grad_input_;
    }

    /// No parameters: the same as backward.
    const Tensor<T>& backward_input(const Tensor<T>& dy) override { return backward(dy); }

    Index kernel_size() const { return k_; }
    Index stride() const { return stride_; }

private:
    Index k_, stride_;
    Shape in_shape_;
    Tensor<T> output_, grad_input_;
    std::vector<std::int32_t> argmax_;  // index within the input plane, per output element (gradients enabled only)
    bool has_argmax_ = false;
};

EIGENCNN_REGISTER_LAYER(MaxPool2d)

}  // namespace eigencnn
