// SPDX-License-Identifier: MIT
// eigencnn/layers/adaptive_avgpool2d.hpp
//
// AdaptiveAvgPool2d: mean over the regions that split H x W into S x S
// output cells, as torch.nn.AdaptiveAvgPool2d(S) (square output size; S = 1
// is the global average pool of ResNets).
//
//   x [N, C, H, W] -> y [N, C, S, S]
//   rows of cell i: [floor(i*H/S), ceil((i+1)*H/S))   (likewise columns of cell j)
//   y[n, c, i, j] = mean of x[n, c, rows(i), cols(j)]
// Backward: dx[n, c, h, w] = sum over the cells (i, j) that hold (h, w) of dy[n, c, i, j] / |cell(i, j)|.
// Planes run in parallel, each plane's sums in a fixed order.
#pragma once

#include "../core/omp.hpp"

#include "../core/layer.hpp"
#include "../core/parallel.hpp"
#include "../core/registry.hpp"

#include <Eigen/Core>

namespace eigencnn {

template <typename T>
class AdaptiveAvgPool2d final : public Layer<T> {
public:
    static constexpr const char* kType = "AdaptiveAvgPool2d";

    explicit AdaptiveAvgPool2d(Index output_size = 1) : s_(output_size) {
        if (s_ < 1 || s_ > kMaxSizeArg)
            throw std::invalid_argument("AdaptiveAvgPool2d: need 1 <= output_size <= 2^31, got " + std::to_string(output_size));
    }

    /// Spec {output_size}.
    static AdaptiveAvgPool2d from_spec(const LayerSpec& s) {
        s.expect_args(1);
        return AdaptiveAvgPool2d(s.int_arg(0, "output_size", 1, kMaxSizeArg));
    }
    static std::uint64_t parameter_count(const LayerSpec& s) {
        from_spec(s);
        return 0;
    }

    std::string name() const override { return "AdaptiveAvgPool2d(output_size=" + std::to_string(s_) + ")"; }
    LayerSpec spec() const override { return {kType, {s_}}; }

    Shape output_shape(const Shape& in) const override {
        if (in.rank() != 4) detail::shape_error(name(), "[N, C, H, W]", in);
        if (in[2] < 1 || in[3] < 1) detail::shape_error(name(), "H and W of at least 1", in);
        return Shape{in[0], in[1], s_, s_};
    }

    const Tensor<T>& forward(const Tensor<T>& x) override {
        output_.resize(output_shape(x.shape()));
        in_shape_ = x.shape();
        const Index planes = x.dim(0) * x.dim(1), H = x.dim(2), W = x.dim(3);
        const T* xs = x.data();
        T* y = output_.data();
        EIGENCNN_OMP(parallel for schedule(static) if (planes * H * W >= kParallelElements))
        for (Index pl = 0; pl < planes; ++pl)
            for (Index i = 0; i < s_; ++i)
                for (Index j = 0; j < s_; ++j) {
                    T sum = 0;
                    if (lo(j, W) == 0 && hi(j, W) == W)  // whole rows (the global 1x1 case): one contiguous, vectorised sum
                        sum = Eigen::Map<const Eigen::Array<T, Eigen::Dynamic, 1>>(xs + (pl * H + lo(i, H)) * W, (hi(i, H) - lo(i, H)) * W).sum();
                    else
                        for (Index h = lo(i, H); h < hi(i, H); ++h)
                            for (Index w = lo(j, W); w < hi(j, W); ++w) sum += xs[(pl * H + h) * W + w];
                    y[(pl * s_ + i) * s_ + j] = sum / static_cast<T>((hi(i, H) - lo(i, H)) * (hi(j, W) - lo(j, W)));
                }
        return output_;
    }

    const Tensor<T>& backward(const Tensor<T>& dy) override {
        if (dy.shape() != output_.shape() || in_shape_.rank() != 4)
            detail::shape_error(name() + " backward", "gradient of shape " + output_.shape().str(), dy.shape());
        grad_input_.resize(in_shape_);
        grad_input_.set_zero();
        const Index planes = in_shape_[0] * in_shape_[1], H = in_shape_[2], W = in_shape_[3];
        const T* g = dy.data();
        T* dx = grad_input_.data();
        EIGENCNN_OMP(parallel for schedule(static) if (planes * H * W >= kParallelElements))
        for (Index pl = 0; pl < planes; ++pl)
            for (Index i = 0; i < s_; ++i)
                for (Index j = 0; j < s_; ++j) {
                    const T v = g[(pl * s_ + i) * s_ + j] / static_cast<T>((hi(i, H) - lo(i, H)) * (hi(j, W) - lo(j, W)));
                    for (Index h = lo(i, H); h < hi(i, H); ++h)
                        for (Index w = lo(j, W); w < hi(j, W); ++w) dx[(pl * H + h) * W + w] += v;
                }
        return grad_input_;
    }

    /// No parameters: the same as backward.
    const Tensor<T>& backward_input(const Tensor<T>& dy) override { return backward(dy); }

    Index output_size() const { return s_; }

private:
    Index lo(Index i, Index n) const { return i * n / s_; }                  // floor(i*n/S)
    Index hi(Index i, Index n) const { return ((i + 1) * n + s_ - 1) / s_; }  // ceil((i+1)*n/S)

    Index s_;
    Shape in_shape_;
    Tensor<T> output_, grad_input_;
};

EIGENCNN_REGISTER_LAYER(AdaptiveAvgPool2d)

}  // namespace eigencnn
