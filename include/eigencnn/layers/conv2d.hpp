// eigencnn/layers/conv2d.hpp
//
// Conv2d: 2-D cross-correlation, as torch.nn.Conv2d (square kernel, equal
// stride and zero padding on both axes, no dilation or groups).
//
//   x [N, C, H, W], weight [OC, C, K, K], bias [OC]  ->  y [N, OC, OH, OW]
//   OH = (H + 2*padding - K) / stride + 1   (likewise OW)
//   y[n, o, i, j] = bias[o] + sum_{c, a, b} weight[o, c, a, b] * x[n, c, i*stride + a - padding, j*stride + b - padding]
//
// Computed as im2col + GEMM per image, images spread over threads (on
// this model that beats one batched GEMM, whose tall-skinny shape Eigen
// handles poorly, by 2-3x). With P = OH*OW and R = C*K*K, for each image n:
//   col_n [R, P]    col_n[(c, a, b), (i, j)] = x[n, c, i*s + a - p, j*s + b - p]   (0 outside the image)
//   y_n   [OC, P]   = W [OC, R] * col_n + bias      (written straight into y, which is NCHW)
// Backward, with dy_n [OC, P] read straight from dy:
//   dW   = sum_n dy_n * col_n^T    [OC, R]
//   db   = sum_n dy_n * 1          [OC]
//   dcol = W^T * dy_n              [R, P]; col2im scatters (adds) it into dx_n
// The sums over n run over fixed chunks of kChunk images and then over the
// chunks in order, so the result does not depend on the number of threads.
// Forward keeps a copy of x, not the cols: backward recomputes col_n per
// image into per-thread scratch, where it stays in cache for both GEMMs.
#pragma once

#include "../core/init.hpp"
#include "../core/layer.hpp"
#include "../core/threads.hpp"

#include <algorithm>
#include <cstring>

namespace eigencnn {

template <typename T>
class Conv2d final : public Layer<T> {
public:
    /// Weights and bias drawn as PyTorch does, from Rng(seed).
    Conv2d(Index in_channels, Index out_channels, Index kernel_size, Index stride = 1, Index padding = 0,
           std::uint64_t seed = kDefaultInitSeed)
        : in_(in_channels), out_(out_channels), k_(kernel_size), stride_(stride), pad_(padding) {
        if (in_ < 1 || out_ < 1 || k_ < 1 || stride_ < 1 || pad_ < 0)
            throw std::invalid_argument("Conv2d: need in_channels, out_channels, kernel_size, stride >= 1 and padding >= 0, got " +
                                        describe());
        weight_ = Tensor<T>(Shape{out_, in_, k_, k_});
        bias_ = Tensor<T>(Shape{out_});
        grad_weight_ = Tensor<T>(weight_.shape());
        grad_bias_ = Tensor<T>(bias_.shape());
        Rng rng(seed);
        reset_parameters(rng);
    }

    void reset_parameters(Rng& rng) override {
        const double bound = default_init_bound(in_ * k_ * k_);
        uniform_fill(weight_, bound, rng);
        uniform_fill(bias_, bound, rng);
    }

    std::string name() const override { return "Conv2d(" + describe() + ")"; }
    LayerSpec spec() const override { return {"Conv2d", {in_, out_, k_, stride_, pad_}}; }

    Shape output_shape(const Shape& in) const override {
        if (in.rank() != 4 || in[1] != in_)
            detail::shape_error(name(), "[N, " + std::to_string(in_) + ", H, W]", in);
        const Index oh = (in[2] + 2 * pad_ - k_), ow = (in[3] + 2 * pad_ - k_);
        if (oh < 0 || ow < 0)
            detail::shape_error(name(), "H and W of at least " + std::to_string(k_ - 2 * pad_), in);
        return Shape{in[0], out_, oh / stride_ + 1, ow / stride_ + 1};
    }

    const Tensor<T>& forward(const Tensor<T>& x) override {
        const Shape ys = output_shape(x.shape());
        in_shape_ = x.shape();
        const Index N = ys[0], P = ys[2] * ys[3], R = in_ * k_ * k_;
        // Backward recomputes each image's col from a copy of x (far smaller than
        // the cols of the whole batch); inference keeps nothing.
        has_input_ = this->training_;
        if (has_input_) input_ = x;
        col_.resize(Shape{num_threads(), R, P});
        output_.resize(ys);
        const auto W = weight_.matrix(out_, R);
        const auto b = bias_.vector();
#pragma omp parallel for schedule(static)
        for (Index n = 0; n < N; ++n) {
            T* col = col_.data() + thread_index() * R * P;
            im2col(x, n, ys[2], ys[3], col);
            MatMap y(output_.data() + n * out_ * P, out_, P);
            y.noalias() = W * ConstMatMap(col, R, P);
            y.colwise() += b;
        }
        return output_;
    }

    const Tensor<T>& backward(const Tensor<T>& dy) override {
        if (!has_input_) detail::no_backward_state(name());
        if (dy.shape() != output_.shape())
            detail::shape_error(name() + " backward", "gradient of shape " + output_.shape().str(), dy.shape());
        const Index N = dy.dim(0), P = dy.dim(2) * dy.dim(3), R = in_ * k_ * k_;
        const Index chunks = (N + kChunk - 1) / kChunk;
        partial_w_.resize(Shape{chunks, out_, R});
        partial_b_.resize(Shape{chunks, out_});
        const bool want_dx = this->input_grad_;
        grad_input_.resize(want_dx ? in_shape_ : Shape{0});
        const auto W = weight_.matrix(out_, R);
        col_.resize(Shape{num_threads(), 2 * R, P});  // per thread: col and dcol
#pragma omp parallel
        {
            T* col = col_.data() + thread_index() * 2 * R * P;
            T* dcol = col + R * P;
#pragma omp for schedule(static)
            for (Index c = 0; c < chunks; ++c) {
                MatMap dw(partial_w_.data() + c * out_ * R, out_, R);
                VecMap db(partial_b_.data() + c * out_, out_);
                dw.setZero();
                db.setZero();
                for (Index n = c * kChunk; n < std::min(N, (c + 1) * kChunk); ++n) {
                    const ConstMatMap g(dy.data() + n * out_ * P, out_, P);
                    im2col(input_, n, dy.dim(2), dy.dim(3), col);
                    dw.noalias() += g * ConstMatMap(col, R, P).transpose();
                    db += g.rowwise().sum();
                    if (!want_dx) continue;
                    MatMap(dcol, R, P).noalias() = W.transpose() * g;
                    col2im(dcol, n, dy.dim(2), dy.dim(3));
                }
            }
        }
        auto gw = grad_weight_.matrix(out_, R);
        auto gb = grad_bias_.vector();
        gw.setZero();  // an empty batch has no chunks and zero gradients
        gb.setZero();
        for (Index c = 0; c < chunks; ++c) {
            gw += ConstMatMap(partial_w_.data() + c * out_ * R, out_, R);
            gb += ConstVecMap(partial_b_.data() + c * out_, out_);
        }
        return grad_input_;
    }

    std::vector<Parameter<T>> parameters() override {
        return {{"weight", &weight_, &grad_weight_}, {"bias", &bias_, &grad_bias_}};
    }

    Tensor<T>& weight() { return weight_; }
    Tensor<T>& bias() { return bias_; }
    const Tensor<T>& grad_weight() const { return grad_weight_; }
    const Tensor<T>& grad_bias() const { return grad_bias_; }
    Index in_channels() const { return in_; }
    Index out_channels() const { return out_; }
    Index kernel_size() const { return k_; }
    Index stride() const { return stride_; }
    Index padding() const { return pad_; }

private:
    std::string describe() const {
        std::string s = std::to_string(in_) + ", " + std::to_string(out_) + ", kernel_size=" + std::to_string(k_) +
                        ", stride=" + std::to_string(stride_);
        if (pad_) s += ", padding=" + std::to_string(pad_);
        return s;
    }

    // col_n[(c, a, b), (i, j)] = x[n, c, i*s + a - p, j*s + b - p], 0 outside the image.
    void im2col(const Tensor<T>& x, Index n, Index OH, Index OW, T* col) const {
        const Index C = in_, H = in_shape_[2], W = in_shape_[3], P = OH * OW;
        for (Index c = 0; c < C; ++c) {
            const T* plane = x.data() + (n * C + c) * H * W;
            for (Index a = 0; a < k_; ++a)
                for (Index b = 0; b < k_; ++b) {
                    T* dst = col + ((c * k_ + a) * k_ + b) * P;
                    const auto [j0, j1] = inside_columns(b, W, OW);
                    for (Index i = 0; i < OH; ++i) {
                        const Index h = i * stride_ + a - pad_;
                        T* row = dst + i * OW;
                        if (h < 0 || h >= H) {
                            std::fill(row, row + OW, T(0));
                            continue;
                        }
                        const Index base = h * W + b - pad_;  // + j*s: the input element of column j
                        std::fill(row, row + j0, T(0));
                        if (stride_ == 1) std::memcpy(row + j0, plane + base + j0, sizeof(T) * static_cast<std::size_t>(j1 - j0));
                        else
                            for (Index j = j0; j < j1; ++j) row[j] = plane[base + j * stride_];
                        std::fill(row + j1, row + OW, T(0));
                    }
                }
        }
    }

    // dx[n, c, i*s + a - p, j*s + b - p] += dcol[(c, a, b), (i, j)]; dx_n is overwritten.
    void col2im(const T* dcol, Index n, Index OH, Index OW) {
        const Index C = in_, H = in_shape_[2], W = in_shape_[3], P = OH * OW;
        T* dx = grad_input_.data() + n * C * H * W;
        std::fill(dx, dx + C * H * W, T(0));
        for (Index c = 0; c < C; ++c) {
            T* plane = dx + c * H * W;
            for (Index a = 0; a < k_; ++a)
                for (Index b = 0; b < k_; ++b) {
                    const T* src = dcol + ((c * k_ + a) * k_ + b) * P;
                    const auto [j0, j1] = inside_columns(b, W, OW);
                    for (Index i = 0; i < OH; ++i) {
                        const Index h = i * stride_ + a - pad_;
                        if (h < 0 || h >= H) continue;
                        const Index base = h * W + b - pad_;
                        const T* s = src + i * OW;
                        for (Index j = j0; j < j1; ++j) plane[base + j * stride_] += s[j];
                    }
                }
        }
    }

    static Index ceil_div(Index a, Index b) { return a <= 0 ? 0 : (a + b - 1) / b; }

    // Output columns j in [j0, j1) read the image at kernel column b
    // (0 <= j*s + b - p < W); the others fall in the zero padding.
    std::pair<Index, Index> inside_columns(Index b, Index W, Index OW) const {
        const Index j0 = std::min(OW, ceil_div(std::max<Index>(0, pad_ - b), stride_));
        return {j0, std::max(j0, std::min(OW, ceil_div(W + pad_ - b, stride_)))};
    }

    using MatMap = Eigen::Map<typename Tensor<T>::Matrix>;
    using ConstMatMap = Eigen::Map<const typename Tensor<T>::Matrix>;
    using VecMap = Eigen::Map<Eigen::Matrix<T, Eigen::Dynamic, 1>>;
    using ConstVecMap = Eigen::Map<const Eigen::Matrix<T, Eigen::Dynamic, 1>>;
    static constexpr Index kChunk = 8;  // images per partial weight gradient

    Index in_, out_, k_, stride_, pad_;
    Tensor<T> weight_, bias_, grad_weight_, grad_bias_;
    Tensor<T> input_, col_, output_, grad_input_;  // input_: copy of x for backward; col_: per-thread scratch
    bool has_input_ = false;
    Tensor<T> partial_w_, partial_b_;       // per-chunk gradients [chunks, OC, R], [chunks, OC]
    Shape in_shape_;
};

}  // namespace eigencnn
