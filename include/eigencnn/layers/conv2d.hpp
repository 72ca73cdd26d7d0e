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
// handles poorly, by 2-3x), each product a single-threaded gemm() (see
// core/gemm.hpp). With P = OH*OW and R = C*K*K, for each image n:
//   col_n [R + 1, P]   col_n[(c, a, b), (i, j)] = x[n, c, i*s + a - p, j*s + b - p]   (0 outside the image),
//                      and a last row of ones, so that the bias rides along in the GEMMs
//   y_n   [OC, P]      = [W | b] [OC, R + 1] * col_n      (written straight into y, which is NCHW)
// Backward, with dy_n [OC, P] read straight from dy. gemm() wants the right
// operand's rows contiguous, so the weight gradient is accumulated
// transposed, against dy_n^T [P, OC] (a small per-image transpose), and W^T
// is formed once per call:
//   [dW^T; db^T] = sum_n col_n * dy_n^T   [R + 1, OC]   (the ones row gives db)
//   dcol         = W^T * dy_n             [R, P]; col2im scatters (adds) it into dx_n
// The sums over n run over fixed chunks of kChunk images and then over the
// chunks in order, so the result does not depend on the number of threads.
// Forward keeps a copy of x, not the cols: backward recomputes col_n per
// image into per-thread scratch, where it stays in cache for both GEMMs.
// Two more ways back: backward_input (dx alone) and backward_sparse (the
// whole backward when dy is nonzero only at a following max-pool's winners;
// no im2col or GEMM, see there).
#pragma once

#include "../core/gemm.hpp"
#include "../core/im2col.hpp"
#include "../core/init.hpp"
#include "../core/layer.hpp"
#include "../core/threads.hpp"

#include <algorithm>
#include <cstdint>
#include <type_traits>
#include <vector>

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
        output_.resize(output_shape(x.shape()));
        const Index image = output_.size() / std::max<Index>(1, output_.dim(0));
        forward_images(x, [&](Index n, T*) { return output_.data() + n * image; }, [](Index, const T*) {});
        return output_;
    }

    const Tensor<T>& backward(const Tensor<T>& dy) override {
        if (!has_input_) detail::no_backward_state(name());
        if (dy.shape() != out_shape_)
            detail::shape_error(name() + " backward", "gradient of shape " + out_shape_.str(), dy.shape());
        const Index P = dy.dim(2) * dy.dim(3);
        return backward_images(dy.dim(0), [&](Index n, T*, T* gt) {
            const T* g = dy.data() + n * out_ * P;  // dy_n [OC, P]
            for (Index p = 0; p < P; ++p)
                for (Index o = 0; o < out_; ++o) gt[p * out_ + o] = g[o * P + p];
            return g;
        });
    }

    /// dL/dx alone, for when only the input gradient is wanted (e.g. optimising
    /// an input or a trigger against fixed weights): dx_n = fold(W^T * dy_n).
    /// Parameter gradients are left as they are; works after a forward in
    /// either mode (it needs the weights, not the input). The same dx as backward.
    const Tensor<T>& backward_input(const Tensor<T>& dy) {
        if (out_shape_.rank() == 0) throw std::logic_error(name() + ": backward_input before any forward");
        if (dy.shape() != out_shape_)
            detail::shape_error(name() + " backward_input", "gradient of shape " + out_shape_.str(), dy.shape());
        const Index N = dy.dim(0), P = out_shape_[2] * out_shape_[3], R = in_ * k_ * k_;
        grad_input_.resize(in_shape_);
        const T* WT = transposed_weight();
        col_.resize(Shape{num_threads(), R * P});  // per thread: dcol
#pragma omp parallel for schedule(static)
        for (Index n = 0; n < N; ++n) {
            T* dcol = col_.data() + thread_index() * R * P;
            gemm(R, P, out_, WT, out_, dy.data() + n * out_ * P, P, dcol, P);  // dcol = W^T * dy_n
            col2im(dcol, n);
        }
        return grad_input_;
    }

    // Building blocks of forward and backward, public for fused execution
    // (model/conv_pool.hpp), which consumes each image's output while it is
    // still in cache instead of writing the whole [N, OC, OH, OW] tensor.
    //
    // forward_images: the forward pass (with its checks and the state
    // backward needs); y_n [OC, P] is written to dest(n, scratch), where
    // scratch is OC*P elements private to the calling thread, and then
    // sink(n, y_n) is called on the same thread.
    template <typename Dest, typename Sink>
    void forward_images(const Tensor<T>& x, Dest&& dest, Sink&& sink) {
        const Shape ys = output_shape(x.shape());
        in_shape_ = x.shape();
        out_shape_ = ys;
        const Index N = ys[0], P = ys[2] * ys[3], R = in_ * k_ * k_;
        // Backward recomputes each image's col from a copy of x (far smaller than
        // the cols of the whole batch); inference keeps nothing.
        has_input_ = this->training_;
        if (has_input_) input_ = x;
        unfold_.configure(in_, x.dim(2), x.dim(3), k_, stride_, pad_);
        const Index scratch = (R + 1) * P + out_ * P;
        col_.resize(Shape{num_threads(), scratch});  // per thread: [col; 1], y_n
        weight_bias_.resize(Shape{out_, R + 1});      // [W | b]
        weight_bias_.matrix(out_, R + 1) << weight_.matrix(out_, R), bias_.vector();
        const T* Wb = weight_bias_.data();
#pragma omp parallel for schedule(static)
        for (Index n = 0; n < N; ++n) {
            T* col = col_.data() + thread_index() * scratch;
            im2col(x, n, col);
            T* y = dest(n, col + (R + 1) * P);
            gemm(out_, P, R + 1, Wb, R + 1, col, P, y, P);  // y_n = [W | b] * [col_n; 1]
            sink(n, static_cast<const T*>(y));
        }
    }

    // backward_images: the backward pass for a batch of N images (the last
    // forward's). source(n, g, gt) supplies image n's output gradient: it
    // fills gt [P, OC] with dy_n^T and returns a pointer to dy_n [OC, P],
    // either its own or g (OC*P scratch private to the thread; null when the
    // input gradient is not wanted, which needs only gt).
    template <typename Source>
    const Tensor<T>& backward_images(Index N, Source&& source) {
        if (!has_input_) detail::no_backward_state(name());
        check_batch(N);
        const Index P = out_shape_[2] * out_shape_[3], R = in_ * k_ * k_;
        const Index chunks = (N + kChunk - 1) / kChunk;
        partial_.resize(Shape{chunks, R + 1, out_});
        const bool want_dx = this->input_grad_;
        grad_input_.resize(want_dx ? in_shape_ : Shape{0});
        const T* WT = transposed_weight();
        const Index scratch = (R + 1) * P + R * P + 2 * P * out_;
        col_.resize(Shape{num_threads(), scratch});  // per thread: [col; 1], dcol, dy_n^T, dy_n
#pragma omp parallel
        {
            T* col = col_.data() + thread_index() * scratch;
            T* dcol = col + (R + 1) * P;
            T* gt = dcol + R * P;
            T* gs = want_dx ? gt + P * out_ : nullptr;
#pragma omp for schedule(static)
            for (Index c = 0; c < chunks; ++c) {
                T* part = partial_.data() + c * (R + 1) * out_;
                std::fill(part, part + (R + 1) * out_, T(0));
                for (Index n = c * kChunk; n < std::min(N, (c + 1) * kChunk); ++n) {
                    const T* g = source(n, gs, gt);
                    im2col(input_, n, col);
                    gemm(R + 1, out_, P, col, P, gt, out_, part, out_, true);  // [dW^T; db^T] += [col_n; 1] * dy_n^T
                    if (!want_dx) continue;
                    gemm(R, P, out_, WT, out_, g, P, dcol, P);  // dcol = W^T * dy_n
                    col2im(dcol, n);
                }
            }
        }
        // Sum the chunks in order into chunk 0 (so the result does not depend on the thread count), then transpose.
        auto gw = grad_weight_.matrix(out_, R);
        auto gb = grad_bias_.vector();
        gw.setZero();  // an empty batch has no chunks and zero gradients
        gb.setZero();
        if (chunks == 0) return grad_input_;
        MatMap sum(partial_.data(), R + 1, out_);
        for (Index c = 1; c < chunks; ++c) sum += ConstMatMap(partial_.data() + c * (R + 1) * out_, R + 1, out_);
        gw = sum.topRows(R).transpose();
        gb = sum.row(R).transpose();
        return grad_input_;
    }

    // backward_sparse: the same backward when each output plane's gradient is
    // nonzero at Q known positions at most (a following max-pool's winners):
    // entries(n, pos, val) fills pos [OC, Q] (positions i*OW + j in the output
    // plane) and val [OC, Q] for image n. Each nonzero g = dy[n, o, i, j] is
    // an outer product, vectorised over the input channels c, with x and dx
    // held channel-last ([H, W, C]) so that the K*C values of a kernel row are
    // contiguous:
    //   dW[o, c, a, b] += g * x[n, c, i*s + a - p, j*s + b - p]
    //   dx[n, c, i*s + a - p, j*s + b - p] += g * W[o, c, a, b]
    //   db[o] += g
    // With a 2x2 pool that is a quarter of the dense products, fewer still
    // where a ReLU zeroed the gradient, and no im2col or fold. Gradients agree
    // with backward_images up to rounding (the sums run in another order).
    template <typename Entries>
    const Tensor<T>& backward_sparse(Index N, Index Q, Entries&& entries);  // in conv2d_sparse.hpp

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

    // backward_sparse's inner loop: NB blocks of kBlock values of dW[o] from k0 on, each
    // summed over the m patches (gradient gs[e], top-left at[e] in the channel-last image
    // xs) in registers and added to dw once. Block k/kBlock of a patch starts
    // block_offset[k/kBlock] after its top-left.
    template <int NB>
    static void sparse_blocks(Index k0, Index m, const T* gs, const std::int32_t* at, const T* xs, T* dw, const Index* block_offset);

    void check_batch(Index N) const {
        if (N != in_shape_[0])
            throw std::invalid_argument(name() + " backward: gradient for " + std::to_string(N) + " images after a forward of " +
                                        std::to_string(in_shape_[0]));
    }

    // W^T [R, OC] into weight_t_, for the input gradient's product.
    const T* transposed_weight() {
        const Index R = in_ * k_ * k_;
        weight_t_.resize(Shape{R, out_});
        weight_t_.matrix(R, out_) = weight_.matrix(out_, R).transpose();
        return weight_t_.data();
    }

    // col_n [R + 1, P]: the image's columns, then a row of ones (the bias's input).
    void im2col(const Tensor<T>& x, Index n, T* col) const {
        const Index R = unfold_.rows(), P = unfold_.cols();
        unfold_.unfold(x.data() + n * in_ * in_shape_[2] * in_shape_[3], col);
        std::fill(col + R * P, col + (R + 1) * P, T(1));
    }

    // dx_n = fold of dcol.
    void col2im(const T* dcol, Index n) { unfold_.fold(dcol, grad_input_.data() + n * in_ * in_shape_[2] * in_shape_[3]); }

    using MatMap = Eigen::Map<typename Tensor<T>::Matrix>;
    using ConstMatMap = Eigen::Map<const typename Tensor<T>::Matrix>;
    static constexpr Index kChunk = 8;   // images per partial weight gradient
    static constexpr Index kBlock = 16;  // backward_sparse: values of dW per register block

    Index in_, out_, k_, stride_, pad_;
    Tensor<T> weight_, bias_, grad_weight_, grad_bias_;
    Tensor<T> input_, col_, output_, grad_input_;  // input_: copy of x for backward; col_: per-thread scratch
    bool has_input_ = false;
    Tensor<T> weight_bias_, weight_t_;      // [W | b] [OC, R + 1] for forward; W^T [R, OC] for the input gradient
    Tensor<T> partial_;                     // per-chunk gradients [dW^T; db^T], [chunks, R + 1, OC] (or backward_sparse's)
    std::vector<std::int32_t> positions_;   // backward_sparse: per thread, the entries' positions [OC, Q] and patch offsets [Q]
    std::vector<Index> origin_, block_offset_;             // backward_sparse: per output position, its window's top-left input row and column; per block of dW, its offset in a patch
    Im2col<T> unfold_;                      // geometry of the last forward's input
    Shape in_shape_, out_shape_;
};

}  // namespace eigencnn

#include "conv2d_sparse.hpp"
