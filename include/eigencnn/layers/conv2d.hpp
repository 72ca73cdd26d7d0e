// SPDX-License-Identifier: MIT
// eigencnn/layers/conv2d.hpp
//
// Conv2d: 2-D cross-correlation, as torch.nn.Conv2d (square kernel, equal
// stride and zero padding on both axes, no dilation or groups).
//
//   x [N, C, H, W], weight [OC, C, K, K], bias [OC]  ->  y [N, OC, OH, OW]
//   OH = (H + 2*padding - K) / stride + 1   (likewise OW)
//   y[n, o, i, j] = bias[o] + sum_{c, a, b} weight[o, c, a, b] * x[n, c, i*stride + a - padding, j*stride + b - padding]
// With bias=false (as PyTorch's bias=False) there is no bias parameter: the
// layer keeps a bias of zeros internally, so every path below is unchanged.
//
// Computed as im2col + GEMM per image, images spread over threads (on
// this model that beats one batched GEMM, whose tall-skinny shape Eigen
// handles poorly, by 2-3x), each product a single-threaded gemm() (see
// kernels/gemm.hpp). With P = OH*OW and R = C*K*K, for each image n:
//   col_n [R + 1, P]   col_n[(c, a, b), (i, j)] = x[n, c, i*s + a - p, j*s + b - p]   (0 outside the image),
//                      and a last row of ones, so that the bias rides along in the GEMMs
//   y_n   [OC, P]      = [W | b] [OC, R + 1] * col_n      (written straight into y, which is NCHW)
// Backward, with dy_n [OC, P] read straight from dy. gemm() wants the right
// operand's rows contiguous, so the weight gradient is accumulated
// transposed, against dy_n^T [P, OC] (a small per-image transpose), and W^T
// is formed once per call:
//   [dW^T; db^T] = sum_n col_n * dy_n^T   [R + 1, OC]   (the ones row gives db)
//   dcol         = W^T * dy_n             [R, P]; col2im scatters (adds) it into dx_n
// (or, where the planes kernel applies, dx_n as the forward of the padded
// dy_n with W flipped: input_gradient_planes() below).
// The sums over n run over fixed chunks of images (kChunk each; a batch of
// fewer than 2 kChunk images in two halves: chunk_images) and then over the
// chunks in order, so the result does not depend on the number of threads.
// Forward keeps a copy of x, not the cols: backward recomputes col_n per
// image into per-thread scratch, where it stays in cache for both GEMMs.
// Stride-1 3x3 and 5x5 convs (float on AVX-512, output channels in 16s) skip
// the cols in the forward and in the weight gradient too (windows of up to
// 27 values, as the seed model's first conv, with all their accumulators in
// registers; wider ones, and stride 2, a tile of window rows at a time): kernels/conv2d_direct.hpp
// does the same FMAs in the same order straight from the image, bitwise the
// same results. Where the output rows come in whole 16s (stride 1 or 2, K of
// 1, 3 or 5, any channel counts), the forward writes y_n's planes straight
// from W in its own layout instead (kernels/conv2d_direct_planes.hpp), bitwise
// the same too: no transpose of the weights or of the output; stride 2 (forward
// and weight gradient) reads a copy of x_n padded and split into even and odd
// columns (input_copy()). The input gradient uses that kernel at stride 1 where
// the input rows come in 16s, and at stride 2 where dx has an even number of
// rows of whole 32s, as four products, one per phase of dx's rows and columns,
// interleaved (kernels/conv2d_input_phases.hpp); on small planes whose rows are
// not in 16s (stride 1, K 3 or 5, output rows of 4 to 12, input channels in 16s),
// a dx row at a time in registers (kernels/conv2d_input_rows.hpp); each a different
// order of sums: the same gradient within rounding. With fewer images than threads
// (or so few chunks of images that half of them would sit idle), backward shares
// each image among the threads instead, the weight gradient by window rows or input
// channels and dx by input channels or rows (backward_images_apart and
// backward_images_shared, below), and the direct forward by output rows, channels or
// runs of positions (forward_images_shared).
// Stride-1 3x3 convs with input and output channels in 16s (at least 16 in) run
// forward, input gradient and weight gradient by Winograd's F(2x2, 3x3) instead
// (kernels/conv2d_winograd.hpp: 4 multiply-adds per output and input channel
// where the direct kernels do 9; another rounding, within a few units in the last
// place of im2col's; the bias gradient is the direct one's); shared images split the
// weight gradient by output channels. Stride-1 5x5 convs with the same channels (padding
// up to 4) run all three by F(2x2, 5x5) (36 multiply-adds per 2x2 outputs where the
// direct kernels do 100; a larger rounding, still a few units in the last place). Each
// pass takes Winograd only where it pays on the plane it computes (detail::winograd_pays:
// not on one output, nor for a small plane's input gradient under wide padding, as the
// seed model's second conv's). set_winograd(false) keeps the direct kernels for both.
// Output mask (core/output_mask.hpp; inactive by default): y[n, o] = a[o] (W[o] (*) x_n) + c[o] b[o].
// Every path (forward, backward, backward_input, the fused step's) then uses
// [diag(a) W | c * b], and the weight gradients are scaled by a and c after.
// Two more ways back: backward_input (dx alone), and, for the fused
// Conv2d -> MaxPool2d step (fusion/conv_pool.hpp, a friend), the per-image
// building blocks and the winners-only backward (kernels/conv2d_winners.hpp:
// the whole backward when dy is nonzero only at the pool's winners).
#pragma once

#include "../core/omp.hpp"

#include "../core/init.hpp"
#include "../core/layer.hpp"
#include "../core/registry.hpp"
#include "../core/threads.hpp"
#include "../kernels/conv2d_direct.hpp"
#include "../kernels/conv2d_direct_planes.hpp"
#include "../kernels/conv2d_planar_pool.hpp"
#include "../kernels/conv2d_input_phases.hpp"
#include "../kernels/conv2d_input_rows.hpp"
#include "../kernels/conv2d_winners.hpp"
#include "../kernels/conv2d_winograd.hpp"
#include "../kernels/conv2d_winograd45.hpp"
#include "../kernels/gemm.hpp"
#include "../kernels/im2col.hpp"

#include <algorithm>
#include <cstdint>
#include <limits>
#include <numeric>
#include <type_traits>
#include <vector>

namespace eigencnn {

template <typename T>
class ConvPool;

/// Tag for a Conv2d without bias: Conv2d<float>(16, 32, 3, 1, 1, no_bias), as PyTorch's bias=False.
struct NoBias {};
inline constexpr NoBias no_bias{};

template <typename T>
class Conv2d final : public Layer<T> {
public:
    static constexpr const char* kType = "Conv2d";

    /// Weights and bias drawn as PyTorch does, from Rng(seed).
    Conv2d(Index in_channels, Index out_channels, Index kernel_size, Index stride = 1, Index padding = 0,
           std::uint64_t seed = kDefaultInitSeed, bool bias = true)
        : in_(in_channels), out_(out_channels), k_(kernel_size), stride_(stride), pad_(padding), has_bias_(bias), mask_(out_channels) {
        if (in_ < 1 || out_ < 1 || k_ < 1 || stride_ < 1 || pad_ < 0 || in_ > kMaxSizeArg || out_ > kMaxSizeArg || k_ > kMaxSizeArg ||
            stride_ > kMaxSizeArg || pad_ > kMaxSizeArg)
            throw std::invalid_argument("Conv2d: need 1 <= in_channels, out_channels, kernel_size, stride <= 2^31 and 0 <= padding <= 2^31, got " +
                                        describe());
        weight_count(in_, out_, k_, name());  // throws when the weight tensor's size overflows
        weight_ = Tensor<T>(Shape{out_, in_, k_, k_});
        bias_ = Tensor<T>(Shape{out_});
        grad_weight_ = Tensor<T>(weight_.shape());
        grad_bias_ = Tensor<T>(bias_.shape());
        Rng rng(seed);
        reset_parameters(rng);
    }

    /// Without bias: Conv2d(in, out, k, stride, padding, no_bias).
    Conv2d(Index in_channels, Index out_channels, Index kernel_size, Index stride, Index padding, NoBias,
           std::uint64_t seed = kDefaultInitSeed)
        : Conv2d(in_channels, out_channels, kernel_size, stride, padding, seed, false) {}

    /// Spec {in_channels, out_channels, kernel_size, stride, padding} with a bias (the form of every
    /// checkpoint before bias=false existed), {..., padding, 0} without.
    static Conv2d from_spec(const LayerSpec& s) {
        const bool bias = check_spec(s);
        return Conv2d(s.int_arg(0, "in_channels", 1, kMaxSizeArg), s.int_arg(1, "out_channels", 1, kMaxSizeArg),
                      s.int_arg(2, "kernel_size", 1, kMaxSizeArg), s.int_arg(3, "stride", 1, kMaxSizeArg), s.int_arg(4, "padding", 0, kMaxSizeArg),
                      kDefaultInitSeed, bias);
    }
    static std::uint64_t parameter_count(const LayerSpec& s) {
        const bool bias = check_spec(s);
        const std::int64_t in = s.int_arg(0, "in_channels", 1, kMaxSizeArg), out = s.int_arg(1, "out_channels", 1, kMaxSizeArg);
        s.int_arg(3, "stride", 1, kMaxSizeArg);
        s.int_arg(4, "padding", 0, kMaxSizeArg);
        return static_cast<std::uint64_t>(
            checked_add(weight_count(in, out, s.int_arg(2, "kernel_size", 1, kMaxSizeArg), s.str()), bias ? out : 0, s.str()));
    }

    /// PyTorch's default: weight, then bias (when there is one), from U(-1/sqrt(fan_in), 1/sqrt(fan_in)).
    void reset_parameters(Rng& rng) override {
        const double bound = default_init_bound(in_ * k_ * k_);
        uniform_fill(weight_, bound, rng);
        if (has_bias_) uniform_fill(bias_, bound, rng);
    }

    std::string name() const override { return "Conv2d(" + describe() + ")"; }
    LayerSpec spec() const override {
        if (has_bias_) return {kType, {in_, out_, k_, stride_, pad_}};
        return {kType, {in_, out_, k_, stride_, pad_, 0}};
    }

    Shape output_shape(const Shape& in) const override {
        if (in.rank() != 4 || in[1] != in_)
            detail::shape_error(name(), "[N, " + std::to_string(in_) + ", H, W]", in);
        const auto what = [this] { return name(); };  // built on the error path only
        const Index oh = checked_add(in[2], 2 * pad_, what) - k_, ow = checked_add(in[3], 2 * pad_, what) - k_;
        if (oh < 0 || ow < 0)
            detail::shape_error(name(), "H and W of at least " + std::to_string(k_ - 2 * pad_), in);
        const Shape out{in[0], out_, oh / stride_ + 1, ow / stride_ + 1};
        // the per-image im2col [C*K*K + 1, OH*OW] and the output must be addressable; winners are int32 positions and offsets into an image
        const Index plane = checked_mul(out[2], out[3], what);
        checked_mul(checked_add(weight_count(in_, 1, k_, what), 1, what), plane, [this] { return name() + " im2col"; });
        checked_mul(checked_mul(in[0], out_, what), plane, [this] { return name() + " output"; });
        if (plane > std::numeric_limits<std::int32_t>::max()) detail::shape_error(name(), "an output plane of fewer than 2^31 positions", in);
        if (checked_mul(checked_mul(in[1], in[2], what), in[3], what) > std::numeric_limits<std::int32_t>::max())
            detail::shape_error(name(), "an image [C, H, W] of fewer than 2^31 values", in);
        return out;
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
        return backward_images(
            dy.dim(0),
            [&](Index n, T*, T* gt) {
                const T* g = dy.data() + n * out_ * P;  // dy_n [OC, P]
                transpose(g, out_, P, gt);
                return g;
            },
            dy.data());
    }

    /// dL/dx alone, for when only the input gradient is wanted (e.g. optimising
    /// an input or a trigger against fixed weights): dx_n = fold(W^T * dy_n), or its planes-kernel form.
    /// Parameter gradients are left as they are; works after a forward with
    /// gradients enabled or not (it needs the weights, not the input). The same dx as backward.
    const Tensor<T>& backward_input(const Tensor<T>& dy) override {
        if (out_shape_.rank() == 0) throw std::logic_error(name() + ": backward_input before any forward");
        if (dy.shape() != out_shape_)
            detail::shape_error(name() + " backward_input", "gradient of shape " + out_shape_.str(), dy.shape());
        const Index P = out_shape_[2] * out_shape_[3];
        return backward_input_images(dy.dim(0), [&](Index n, T*) { return dy.data() + n * out_ * P; }, dy.data());
    }

    std::vector<Parameter<T>> parameters() override {
        if (!has_bias_) return {{"weight", &weight_, &grad_weight_}};
        return {{"weight", &weight_, &grad_weight_}, {"bias", &bias_, &grad_bias_}};
    }

    OutputMask<T>* output_mask() override { return &mask_; }

    Tensor<T>& weight() { return weight_; }
    Tensor<T>& bias() { return bias_; }
    const Tensor<T>& grad_weight() const { return grad_weight_; }
    const Tensor<T>& grad_bias() const { return grad_bias_; }
    Index in_channels() const { return in_; }
    Index out_channels() const { return out_; }
    Index kernel_size() const { return k_; }
    Index stride() const { return stride_; }
    Index padding() const { return pad_; }
    bool has_bias() const { return has_bias_; }
    /// Winograd F(2x2, 3x3) and F(2x2, 5x5) for the forward, the input gradient and the weight gradient where
    /// they apply and pay (on by default; see the top of this file). Off: the direct kernels, whose sums are
    /// bitwise im2col + gemm's.
    void set_winograd(bool on) { winograd_ = on; }
    bool winograd() const { return winograd_; }
    /// The images of one partial weight gradient in a batch of N: kChunk (8), or half a batch of fewer than
    /// 2 kChunk (rounded up), so that two threads share a small batch by images (batch 8: two chunks of 4).
    /// [dW; db] sums each chunk's images in order and then the chunks in order: a function of N alone, never
    /// of the thread count, so gradients are bitwise the same on any number of threads.
    static Index chunk_images(Index N) { return N >= 2 * kChunk ? kChunk : std::max<Index>(1, (N + 1) / 2); }

private:
    friend class ConvPool<T>;

    // Building blocks of forward and backward, for fused execution
    // (fusion/conv_pool.hpp, a friend), which consumes each image's output while it is
    // still in cache instead of writing the whole [N, OC, OH, OW] tensor.
    //
    // forward_images: the forward pass (with its checks and the state
    // backward needs); y_n [OC, P] is written to dest(n, scratch), where
    // scratch is OC*P elements, and then sink(n, y_n) is called once. With
    // a batch of at least as many images as threads, scratch is private to
    // the calling thread and the sink runs on it. With fewer
    // (forward_images_shared), every thread calls dest(n, scratch) with the
    // same shared scratch (one of two, in turn) and must get the same pointer
    // back (each writes its own positions of y_n), and the sink runs on one of
    // them while the others may write the next image's y_n.
    template <typename Dest, typename Sink>
    void forward_images(const Tensor<T>& x, Dest&& dest, Sink&& sink) {
        const Shape ys = output_shape(x.shape());
        start_forward(x, ys);
#ifdef EIGENCNN_WINOGRAD
        if constexpr (std::is_same_v<T, float>)
            if (winograd_applies()) return forward_images_winograd(x, dest, sink);
#endif
        const Index N = ys[0], P = ys[2] * ys[3], R = in_ * k_ * k_, image_in = in_ * x.dim(2) * x.dim(3);
        // the direct kernels, if this geometry has one: into planes (output rows in 16s), else channel-last
        const auto planes = direct_forward_planes(ys[3]);
        const auto direct = planes ? nullptr : direct_forward();
        // per thread: [col; 1] (channel-last direct: y_n^T, then the padded image; planes: the padded image), then y_n
        const Index work = planes ? input_copy_size() : direct ? out_ * P + input_copy_size() : (R + 1) * P;
        const Index scratch = work + (small_batch(N) ? 2 : 1) * out_ * P;  // y_n (twice where forward_images_shared alternates them)
        col_.resize(Shape{num_threads(), scratch});
        const T* Wb = nullptr;  // [W | b] (planes: W and b apart, diag(a) W and c * b with a mask)
        const T* bias = nullptr;
        if (planes) {
            Wb = effective_weight();
            bias = effective_bias();
#ifdef EIGENCNN_DIRECT_CONV
            if constexpr (std::is_same_v<T, float>)
                if (small_batch(N)) return forward_images_shared(x, direct, planes, Wb, bias, dest, sink);
#endif
        } else if (direct) {
            size_weight_bias_t();
#ifdef EIGENCNN_DIRECT_CONV
            if constexpr (std::is_same_v<T, float>)
                if (small_batch(N)) return forward_images_shared(x, direct, planes, Wb, bias, dest, sink);
#endif
            transpose_weight_bias_rows(0, R + 1, weight_bias_t_.data());  // [W | b]^T, the direct kernels' weights
        } else {
            weight_bias_.resize(Shape{out_, R + 1});
            weight_bias_.matrix(out_, R + 1) << weight_.matrix(out_, R), bias_.vector();
            if (mask_.active())  // [diag(a) W | c * b]
                for (Index o = 0; o < out_; ++o) {
                    for (Index r = 0; r < R; ++r) weight_bias_.data()[o * (R + 1) + r] *= mask_.weight_factor(o);
                    weight_bias_.data()[o * (R + 1) + R] *= mask_.bias_factor(o);
                }
            Wb = weight_bias_.data();
        }
        (void)bias;  // read by the planes kernel only, which needs AVX-512
#ifdef EIGENCNN_DIRECT_CONV
        const auto planar = detail::direct_forward_planar_kernel(in_, k_, stride_, out_);  // few input channels
#endif
        EIGENCNN_OMP(parallel for schedule(static) if (N > 1 || !kSerialImage))  // one image: no team to wake
        for (Index n = 0; n < N; ++n) {
            T* col = col_.data() + thread_index() * scratch;
            T* y = dest(n, col + work);
            if (has_input_) std::copy(x.data() + n * image_in, x.data() + (n + 1) * image_in, input_.data() + n * image_in);
#ifdef EIGENCNN_DIRECT_CONV
            if constexpr (std::is_same_v<T, float>)
                if (planes || direct) {  // without the cols (kernels/conv2d_direct*.hpp)
                    const Index OH = ys[2], OW = ys[3], Hp = x.dim(2) + 2 * pad_, Wp = input_copy_pitch();
                    if (planes) {  // y_n = [W | b] [col_n; 1], straight into y_n
                        planes(in_, OH, OW, 0, OH, Hp, Wp, input_copy(x.data() + n * image_in, col), Wb, R, bias, 0, out_, y);
                    } else {  // y_n^T = [col_n; 1]^T [W | b]^T, then y_n
                        const T* xp = input_copy(x.data() + n * image_in, col + out_ * P);
                        if (planar) {
                            planar(OH, OW, Hp, Wp, xp, weight_bias_t_.data(), out_, y, 0, detail::direct_forward_planar_units(OH, OW));  // y_n itself
                        } else {
                            direct(in_, OH, OW, Hp, Wp, xp, weight_bias_t_.data(), out_, col);
                            transpose(col, P, out_, y);
                        }
                    }
                    sink(n, static_cast<const T*>(y));
                    continue;
                }
#endif
            im2col(x, n, col);
            gemm(out_, P, R + 1, Wb, R + 1, col, P, y, P);  // y_n = [W | b] * [col_n; 1]
            sink(n, static_cast<const T*>(y));
        }
    }

#ifdef EIGENCNN_WINOGRAD
    // The forward by Winograd F(2x2, 3x3) or F(2x2, 5x5). Images at least as many as threads: each thread builds
    // all of U for itself (one U built by one thread and read by all cost a transfer of every line of it between
    // cores per call: the seed model's second conv at batch 8 took 82 us against 50 when the two cores sat far
    // apart), then each image runs on one thread, all output channels. Fewer (small_batch): every image on all threads, each its
    // own output channels (a share in 16s) from the block of U it built itself (so no barrier before), each
    // transforming the whole image (a repeat of
    // about a tenth of the work, where sharing V cost a barrier and lines handed between cores); y_n
    // alternates between two scratches, one barrier per image, as forward_images_shared. Each output is
    // computed the same way on any number of threads.
    template <typename Dest, typename Sink>
    void forward_images_winograd(const Tensor<T>& x, Dest& dest, Sink& sink) {
        const Index N = out_shape_[0], P = out_shape_[2] * out_shape_[3], H = x.dim(2), W = x.dim(3), image_in = in_ * H * W;
        const bool shared = small_batch(N);
        // 5x5: F(4x4, 5x5), small images G at a time (kernels/conv2d_winograd45.hpp); 3x3: F(2x2, 3x3)
        const bool f45 = k_ == 5;
        // (at least one group a thread: the group does not change an output's sum, so it may follow the thread count)
        const Index G = f45 && !shared ? std::min(std::max<Index>(1, N / num_threads()), detail::winograd45_images_per_group(H, W, pad_)) : 1;
        const Index groups = (N + G - 1) / G;
        const Index work = f45 ? std::max(detail::winograd45_images_scratch(G, in_, out_, H, W, pad_), detail::winograd45_weights_scratch(in_, out_))
                               : std::max(detail::winograd_image_scratch(in_, out_, H, W, k_, pad_), detail::winograd_weights_scratch(in_, out_, k_));
        const Index per_thread = work + (shared ? 2 : G) * out_ * P;
        const Index XI = f45 ? detail::kWinograd45Elements : detail::winograd_tile_elements(k_);
        winograd_scratch_.resize(Shape{num_threads(), per_thread});
        winograd_u_.resize(Shape{shared ? 1 : num_threads(), XI, in_, out_});
        const T* w = effective_weight();
        const T* bias = effective_bias();
        T* U = winograd_u_.data();
        EIGENCNN_OMP(parallel)
        {
            const int t = thread_index(), team = num_threads_in_region();
            T* scratch = winograd_scratch_.data() + t * per_thread;
            auto weights = [&](Index o0, Index o1, T* Ut) {
                if (f45) detail::winograd45_weights(w, in_, o0, o1, Ut, scratch);
                else detail::winograd_weights(w, out_, in_, k_, false, o0, o1, Ut, scratch);
            };
            if (!shared) {
                T* Ut = U + t * XI * in_ * out_;  // its own U, all of it, one block
                weights(0, out_, Ut);
                EIGENCNN_OMP(for schedule(static))
                for (Index group = 0; group < groups; ++group) {
                    const Index n0 = group * G, count = std::min(G, N - n0);
                    T* ys[detail::kWinograd45Tiles];  // G <= kWinograd45Tiles (an image has a tile at least)
                    for (Index g = 0; g < count; ++g) {
                        const T* x_n = x.data() + (n0 + g) * image_in;
                        if (has_input_) std::copy(x_n, x_n + image_in, input_.data() + (n0 + g) * image_in);
                        ys[g] = dest(n0 + g, scratch + work + g * out_ * P);
                    }
                    if (f45) detail::winograd45_images(x.data() + n0 * image_in, image_in, count, in_, H, W, pad_, Ut, bias, 0, out_, ys, scratch);
                    else detail::winograd_image(x.data() + n0 * image_in, in_, H, W, k_, pad_, Ut, bias, out_, 0, out_, ys[0], scratch);
                    for (Index g = 0; g < count; ++g) sink(n0 + g, static_cast<const T*>(ys[g]));
                }
            } else {
                const ThreadShare outputs = thread_share(out_, t, team, detail::kGemmLanes), inputs = thread_share(in_, t, team);
                T* Ut = U + XI * in_ * outputs.begin;  // its own block of U
                if (outputs.end > outputs.begin) weights(outputs.begin, outputs.end, Ut);
                T* y_scratch = winograd_scratch_.data() + work;  // thread 0's two
                for (Index n = 0; n < N; ++n) {
                    const T* x_n = x.data() + n * image_in;
                    if (has_input_)
                        std::copy(x_n + inputs.begin * H * W, x_n + inputs.end * H * W, input_.data() + n * image_in + inputs.begin * H * W);
                    T* y = dest(n, y_scratch + (n % 2) * out_ * P);
                    if (outputs.end > outputs.begin) {
                        if (f45) detail::winograd45_images(x_n, image_in, 1, in_, H, W, pad_, Ut, bias, outputs.begin, outputs.end, &y, scratch);
                        else detail::winograd_image(x_n, in_, H, W, k_, pad_, Ut, bias, out_, outputs.begin, outputs.end, y, scratch);
                    }
                    EIGENCNN_OMP(barrier)
                    EIGENCNN_OMP(single nowait)  // the others write the next image's y_n, the other scratch, meanwhile
                    sink(n, static_cast<const T*>(y));
                }
            }
        }
    }
#endif
    // Whether the forward and the weight gradient run by Winograd (the input gradient: dx_winograd_,
    // choose_input_phases): where it applies and pays on the output plane of the last forward.
    bool winograd_applies() const {
#ifdef EIGENCNN_WINOGRAD
        if constexpr (std::is_same_v<T, float>)
            return winograd_ && detail::winograd_applies(in_, out_, k_, stride_, pad_) &&
                   detail::winograd_pays(k_, out_shape_[2], out_shape_[3], out_shape_[2] * out_shape_[3]);
#endif
        return false;
    }

    // The weight gradient by Winograd where the forward runs by it (kernels/conv2d_winograd.hpp): per thread,
    // its block of dU [XI, C, width] for the chunk of images it is summing, then its scratch. Sized by
    // size_winograd_weight_grad; image n's gradients of output channels [o0, o1) into part (the bias row
    // directly, dW into dU); at the end of a chunk, part's weight rows, columns [o0, o1), set to G^T dU G.
    // 5x5: F(4x4, 5x5) (kernels/conv2d_winograd45.hpp), small images held winograd_group_ at a time (per thread:
    // winograd_held_ of them so far) and summed into dU when the group is full or the chunk ends; a larger image
    // (winograd_group_ 1) summed at once, 48 tiles at a time.
    void size_winograd_weight_grad() {
#ifdef EIGENCNN_WINOGRAD
        if constexpr (std::is_same_v<T, float>) {
            const Index H = in_shape_[2], W = in_shape_[3];
            winograd_group_ = k_ == 5 ? detail::winograd45_weight_grad_images(H, W, pad_) : 1;
            winograd_held_.assign(static_cast<std::size_t>(num_threads()), 0);
            const Index scratch = k_ == 5 ? detail::winograd45_weight_grad_scratch(winograd_group_, in_, out_, H, W, pad_)
                                          : detail::winograd_weight_grad_scratch(in_, out_, H, W, pad_);
            winograd_dw_.resize(Shape{num_threads(), winograd_du_size() + scratch});
        }
#endif
    }
    T* winograd_du(int t) { return winograd_dw_.data() + t * winograd_dw_.dim(1); }
    void winograd_weight_grad_image(Index n, const T* gt, Index o0, Index o1, T* part, int t) {
#ifdef EIGENCNN_WINOGRAD
        if constexpr (std::is_same_v<T, float>) {
            const Index H = in_shape_[2], W = in_shape_[3], R = in_ * k_ * k_;
            const T* x_n = input_.data() + n * in_ * H * W;
            T* scratch = winograd_du(t) + winograd_du_size();
            detail::winograd_bias_grad(gt, out_shape_[2] * out_shape_[3], out_, o0, o1, part + R * out_);
            if (k_ == 3) return detail::winograd_weight_grad_image(x_n, in_, H, W, pad_, gt, out_, o0, o1, winograd_du(t), scratch);
            Index& held = winograd_held_[static_cast<std::size_t>(t)];
            detail::winograd45_weight_grad_hold(x_n, in_, H, W, pad_, gt, out_, o0, o1, held, winograd_group_, winograd_du(t), scratch);
            if (winograd_group_ > 1 && ++held == winograd_group_) flush_winograd_weight_grad(o0, o1, t);
        }
#endif
        (void)n, (void)gt, (void)o0, (void)o1, (void)part, (void)t;
    }
    void flush_winograd_weight_grad(Index o0, Index o1, int t) {
#ifdef EIGENCNN_WINOGRAD
        if constexpr (std::is_same_v<T, float>) {
            Index& held = winograd_held_[static_cast<std::size_t>(t)];
            if (held > 0)
                detail::winograd45_weight_grad_flush(held, winograd_group_, in_, o1 - o0, in_shape_[2], in_shape_[3], pad_, winograd_du(t),
                                                     winograd_du(t) + winograd_du_size());
            held = 0;
        }
#endif
        (void)o0, (void)o1, (void)t;
    }
    void winograd_weight_grad_finish(Index o0, Index o1, T* part, int t) {
#ifdef EIGENCNN_WINOGRAD
        if constexpr (std::is_same_v<T, float>) {
            if (k_ == 3) return detail::winograd_weight_grad_finish(winograd_du(t), in_, out_, o0, o1, part);
            flush_winograd_weight_grad(o0, o1, t);
            detail::winograd45_weight_grad_finish(winograd_du(t), in_, out_, o0, o1, part);
        }
#endif
        (void)o0, (void)o1, (void)part, (void)t;
    }
    ThreadShare winograd_outputs(int t, int team) const {
#ifdef EIGENCNN_WINOGRAD
        return thread_share(out_, t, team, detail::kGemmLanes);
#else
        return thread_share(out_, t, team);
#endif
    }
    void zero_winograd_du(Index o0, Index o1, int t) {
        std::fill(winograd_du(t), winograd_du(t) + winograd_du_size() / out_ * (o1 - o0), T(0));
        if (!winograd_held_.empty()) winograd_held_[static_cast<std::size_t>(t)] = 0;
    }
    Index winograd_du_size() const {  // dU [XI, C, OC]
#ifdef EIGENCNN_WINOGRAD
        if (k_ == 5) return detail::kWinograd45Elements * in_ * out_;
#endif
        return detail::winograd_tile_elements(k_) * in_ * out_;
    }

    // forward_pooled: conv -> MaxPool2d(2, 2) [-> ReLU] in one kernel per image (kernels/conv2d_planar_pool.hpp,
    // the first conv of a small CNN), for ConvPool, which has checked x (ys = output_shape(x.shape())): out
    // [N, OC, PH, PW] and, unless arg is null, the winners'
    // positions in their conv planes, bitwise what forward_images and the pool give; the forward's state for
    // backward as forward_images keeps it. False, with nothing done, where no such kernel runs: another
    // geometry, no AVX-512, or fewer images than threads (forward_images then shares each image).
    bool forward_pooled(const Tensor<T>& x, const Shape& ys, bool relu, T* out, std::int32_t* arg) {
#ifdef EIGENCNN_DIRECT_CONV
        if constexpr (std::is_same_v<T, float>) {
            const auto kernel = detail::direct_forward_planar_pool_kernel(in_, k_, stride_, out_, ys[3]);
            if (!kernel || num_threads() > ys[0]) return false;
            start_forward(x, ys);
            const Index N = ys[0], R = in_ * k_ * k_, image_in = in_ * x.dim(2) * x.dim(3), PP = ys[2] / 2 * (ys[3] / 2);
            const Index Hp = x.dim(2) + 2 * pad_, Wp = input_copy_pitch(), scratch = std::max<Index>(1, input_copy_size());
            size_weight_bias_t();
            transpose_weight_bias_rows(0, R + 1, weight_bias_t_.data());  // [W | b]^T
            col_.resize(Shape{num_threads(), scratch});  // per thread: the padded image, if any
            EIGENCNN_OMP(parallel for schedule(static))
            for (Index n = 0; n < N; ++n) {
                const T* xn = x.data() + n * image_in;
                if (has_input_) std::copy(xn, xn + image_in, input_.data() + n * image_in);
                kernel(ys[2], Hp, Wp, input_copy(xn, col_.data() + thread_index() * scratch), weight_bias_t_.data(), out_, relu,
                       out + n * out_ * PP, arg ? arg + n * out_ * PP : nullptr);
            }
            return true;
        }
#endif
        (void)x, (void)ys, (void)relu, (void)out, (void)arg;
        return false;
    }

    // backward_images: the backward pass for a batch of N images (the last
    // forward's). source(n, g, gt) supplies image n's output gradient: it
    // fills gt [P, OC] with dy_n^T and returns a pointer to dy_n [OC, P],
    // either its own or g (OC*P scratch private to the thread; null when the
    // input gradient is not wanted, which needs only gt). dy: the batch's
    // gradient [N, OC, P] when source is its plain transpose (Conv2d::backward);
    // the shared path then transposes each image on all threads, each its
    // share of the positions, instead of calling source on one.
    template <typename Source>
    const Tensor<T>& backward_images(Index N, Source&& source, const T* dy = nullptr) {
        if (!has_input_) detail::no_backward_state(name());
        check_batch(N);
        const Index P = out_shape_[2] * out_shape_[3], R = in_ * k_ * k_;
        const Index chunk = chunk_images(N), chunks = (N + chunk - 1) / chunk;
        partial_.resize(Shape{chunks, R + 1, out_});
        const bool want_dx = this->input_grad_;
        grad_input_.resize(want_dx ? in_shape_ : Shape{0});
        const auto dx_planes = want_dx ? input_gradient_planes() : nullptr;
        const bool shared = share_weight_images(N) || share_chunks(N);
        choose_input_phases(want_dx);
        const T* WT = want_dx ? input_gradient_weights(dx_planes, shared) : nullptr;  // not built for dW alone
        const Index dx_scratch = input_gradient_scratch(dx_planes);
        const Index scratch = (R + 1) * P + dx_scratch + 2 * P * out_;
        col_.resize(Shape{num_threads(), scratch});  // per thread: [col; 1], dcol (planes: the padded dy_n; phases: it, then dx_n in phases), dy_n^T, dy_n
        const bool winograd_dw = winograd_applies();  // the weight gradient by Winograd too
        if (winograd_dw) size_winograd_weight_grad();
        if (shared && dy) backward_images_apart(N, WT, dx_planes, dx_scratch, dy);
        else if (shared) backward_images_shared(N, WT, dx_planes, dx_scratch, source);
        else {
            EIGENCNN_OMP(parallel if (chunks > 1 || !kSerialImage))  // one chunk: no team to wake
            {
                const int t = thread_index();
                T* col = col_.data() + t * scratch;
                T* dcol = col + (R + 1) * P;
                T* gt = dcol + dx_scratch;
                T* gs = want_dx ? gt + P * out_ : nullptr;
                const T* WTt = want_dx ? own_input_gradient_weights(dx_planes, WT, t) : WT;
                EIGENCNN_OMP(for schedule(static))
                for (Index c = 0; c < chunks; ++c) {
                    T* part = partial_.data() + c * (R + 1) * out_;
                    std::fill(part, part + (R + 1) * out_, T(0));
                    if (winograd_dw) zero_winograd_du(0, out_, t);
                    for (Index n = c * chunk; n < std::min(N, (c + 1) * chunk); ++n) {
                        const T* g = source(n, gs, gt);
                        if (winograd_dw) {
                            winograd_weight_grad_image(n, gt, 0, out_, part, t);
                        } else if (pointwise()) {
                            pointwise_weight_gradient(input_.data() + n * in_ * in_shape_[2] * in_shape_[3], gt, Index(0), out_, part);
                        } else if (!direct_weight_gradient(n, gt, part, col)) {
                            im2col(input_, n, col);
                            gemm(R + 1, out_, P, col, P, gt, out_, part, out_, true);  // [dW^T; db^T] += [col_n; 1] * dy_n^T
                        }
                        if (want_dx) input_gradient_channels(dx_planes, WTt, prepare_gradient(dx_planes, g, dcol), dcol, n, 0, in_);
                    }
                    if (winograd_dw) winograd_weight_grad_finish(0, out_, part, t);
                }
            }
        }
        finish_weight_gradients(chunks);
        return grad_input_;
    }

    // backward_unpooled: the weight and bias gradients alone (no dx) of N images (the last forward's) whose
    // output gradient dy_n is zero but at the winners of a max-pool whose windows do not overlap (stride >= kernel;
    // the fused step's conv -> pool, fusion/conv_pool.hpp). source(n, dzT, argT) fills dzT [PH * PW, OC] with the
    // pool's output gradient dz_n^T and argT with each window's winner, its position in the conv output plane.
    // The small-window direct kernel reads dy_n^T's vectors from those (kernels/conv2d_direct.hpp,
    // UnpooledGradient): bitwise backward_images with a source that zeroes dy_n^T and scatters dz_n into it, without
    // that dy_n^T (on the seed's conv1, 36 KB per image zeroed and scattered into took about as long as the
    // product). Returns the (empty) input gradient, or null with nothing done where this does not run: no such
    // kernel for the geometry (float, AVX-512, few input channels, stride 1), an input gradient wanted, the
    // weight gradient by Winograd, or images shared among threads (backward_images then).
    template <typename Source>
    const Tensor<T>* backward_unpooled(Index N, Index PH, Index PW, Index pool_stride, Source&& source) {
#ifdef EIGENCNN_DIRECT_CONV
        if constexpr (std::is_same_v<T, float>) {
            const auto kernel = detail::direct_weight_grad_unpooled_kernel(in_, k_, stride_, out_);
            if (!kernel || this->input_grad_ || !has_input_ || winograd_applies() || share_weight_images(N) || share_chunks(N))
                return nullptr;
            check_batch(N);
            const Index OH = out_shape_[2], OW = out_shape_[3], R = in_ * k_ * k_, OP = PH * PW;
            const Index H = in_shape_[2], W = in_shape_[3], Hp = H + 2 * pad_, Wp = input_copy_pitch();
            const Index chunk = chunk_images(N), chunks = (N + chunk - 1) / chunk, scratch = input_copy_size() + OP * out_;
            partial_.resize(Shape{chunks, R + 1, out_});
            grad_input_.resize(Shape{0});
            col_.resize(Shape{num_threads(), scratch});  // per thread: the padded image, if any; dz_n^T
            positions_.resize(static_cast<std::size_t>(num_threads() * OP * out_));  // per thread: the winners^T
            offsets_.resize(static_cast<std::size_t>(OH + OW));  // per conv row, then per column: its windows in dz_n^T
            for (Index i = 0; i < OH; ++i) offsets_[i] = i / pool_stride < PH ? i / pool_stride * PW * out_ : -1;
            for (Index j = 0; j < OW; ++j) offsets_[OH + j] = j / pool_stride < PW ? j / pool_stride * out_ : -1;
            EIGENCNN_OMP(parallel if (chunks > 1 || !kSerialImage))
            {
                const int t = thread_index();
                T* padded = col_.data() + t * scratch;
                T* dzT = padded + input_copy_size();
                std::int32_t* argT = positions_.data() + t * OP * out_;
                const detail::UnpooledGradient gradient{dzT, argT, offsets_.data(), offsets_.data() + OH, OW};
                EIGENCNN_OMP(for schedule(static))
                for (Index c = 0; c < chunks; ++c) {
                    T* part = partial_.data() + c * (R + 1) * out_;
                    std::fill(part, part + (R + 1) * out_, T(0));
                    for (Index n = c * chunk; n < std::min(N, (c + 1) * chunk); ++n) {
                        source(n, dzT, argT);
                        kernel(OH, OW, Hp, Wp, input_copy(input_.data() + n * in_ * H * W, padded), gradient, out_, part);
                    }
                }
            }
            finish_weight_gradients(chunks);
            return &grad_input_;
        }
#endif
        (void)N, (void)PH, (void)PW, (void)pool_stride, (void)source;
        return nullptr;
    }

    // backward_input_images: dx alone for N images (the last forward's);
    // source(n, g) returns dy_n [OC, P], its own or written into g (OC*P
    // scratch private to the thread). dx_n = fold(W^T * dy_n) (or by the planes kernel, input_gradient_planes()).
    // dy: the batch's gradient [N, OC, P] when source returns its images as they are (Conv2d::backward_input).
    template <typename Source>
    const Tensor<T>& backward_input_images(Index N, Source&& source, const T* dy = nullptr) {
        check_batch(N);
        const Index P = out_shape_[2] * out_shape_[3];
        grad_input_.resize(in_shape_);
        const auto dx_planes = input_gradient_planes();
        const bool shared = share_images(N);
        choose_input_phases(true);
        const T* WT = input_gradient_weights(dx_planes, shared);
        const Index dx_scratch = input_gradient_scratch(dx_planes);
        const Index scratch = dx_scratch + out_ * P;
        col_.resize(Shape{num_threads(), scratch});  // per thread: dcol (planes: the padded dy_n; phases: it, then dx_n in phases), dy_n
        if (shared) return backward_input_images_shared(N, WT, dx_planes, dx_scratch, source, dy);
        EIGENCNN_OMP(parallel if (N > 1 || !kSerialImage))  // one image: no team to wake
        {
            const int t = thread_index();
            T* dcol = col_.data() + t * scratch;
            const T* WTt = own_input_gradient_weights(dx_planes, WT, t);
            EIGENCNN_OMP(for schedule(static))
            for (Index n = 0; n < N; ++n) {
                const T* g = source(n, dcol + dx_scratch);
                input_gradient_channels(dx_planes, WTt, prepare_gradient(dx_planes, g, dcol), dcol, n, 0, in_);
            }
        }
        return grad_input_;
    }

    // backward_winners: the same backward as backward_images when each output
    // plane's gradient is nonzero at Q known positions at most (a following
    // max-pool's winners): entries(n, pos, val) fills pos [OC, Q] (positions
    // i*OW + j in the output plane) and val [OC, Q] for image n. The
    // per-image work is kernels/conv2d_winners.hpp's; here x_n and dx_n go
    // channel-last and back, and the images' dW are summed over fixed chunks,
    // so the result does not depend on the thread count. Gradients agree with
    // backward_images up to rounding (the sums run in another order).
    template <typename Entries>
    const Tensor<T>& backward_winners(Index N, Index Q, Entries&& entries) {
        if (!has_input_) detail::no_backward_state(name());
        check_batch(N);
        const Index C = in_, K = k_, H = in_shape_[2], W = in_shape_[3], HW = H * W;
        const Index KKC = K * K * C, stride = (KKC + 1) * out_;  // per chunk: dW [OC, K, K, C], then db [OC]
        const Index chunk = chunk_images(N), chunks = (N + chunk - 1) / chunk;
        partial_.resize(Shape{chunks, stride});
        const bool want_dx = this->input_grad_;
        grad_input_.resize(want_dx ? in_shape_ : Shape{0});
        const WinnersGeometry geo = winners_geometry(Q);
        const Index E = out_ * Q, P = geo.P;
        // dW of a whole chunk at once where it can (conv2d_winners_weight_images), after every image's entries;
        // else image by image. Per thread: x_n channel-last (a chunk's: [chunk, HW*C]), dx_n channel-last, dx's
        // table by position, val (a chunk's: [chunk, E]), gs; pos (a chunk's) and one image's patch offsets at
        // [Q] (int32); dx's weight offsets woff [OC] and the chunk's patch offsets [chunk*Q] (Index)
        const bool chunk_dw = conv2d_winners_weight_images_apply<T>(geo);
        const Index images = chunk_dw ? chunk : 1;
        const Index table = want_dx ? P * out_ : 0, gs_size = std::max(images * Q, out_);
        const Index scratch = (images * HW * C + HW * C + table + images * E + gs_size + 15) / 16 * 16;  // whole 64-byte lines
        col_.resize(Shape{num_threads(), scratch});
        const Index ints = images * E + Q, longs = out_ + (chunk_dw ? chunk * Q : 0);
        positions_.resize(static_cast<std::size_t>(num_threads() * ints));
        offsets_.resize(static_cast<std::size_t>(num_threads() * longs));
        EIGENCNN_OMP(parallel if (chunks > 1 || !kSerialImage))  // one chunk: no team to wake
        {
            T* xs_chunk = col_.data() + thread_index() * scratch;
            T* dxs = xs_chunk + images * HW * C;
            T* by_position = dxs + HW * C;
            T* val_chunk = by_position + table;
            T* gs = val_chunk + images * E;
            std::int32_t* pos_chunk = positions_.data() + thread_index() * ints;
            std::int32_t* at = pos_chunk + images * E;
            Index* woff = offsets_.data() + thread_index() * longs;
            Index* at_chunk = woff + out_;
            EIGENCNN_OMP(for schedule(static))
            for (Index ch = 0; ch < chunks; ++ch) {
                T* part = partial_.data() + ch * stride;
                std::fill(part, part + stride, T(0));
                const Index first = ch * chunk, count = std::min(N, first + chunk) - first;
                for (Index n = first; n < first + count; ++n) {
                    const Index slot = chunk_dw ? n - first : 0;
                    std::int32_t* pos = pos_chunk + slot * E;
                    T* val = val_chunk + slot * E;
                    T* xs = xs_chunk + slot * HW * C;
                    entries(n, pos, val);
                    transpose(input_.data() + n * C * HW, C, HW, xs);
                    if (want_dx) std::fill(dxs, dxs + HW * C, T(0));
                    // With blocked patches (K*C a multiple of kWinnersBlock), dx goes by output position, each
                    // patch's gradient summed in registers (as backward_input_winners): entry by entry, each update
                    // of an overlapping patch waited for the one before (seed conv2: 9.4 -> 7.0 ms on one thread).
                    // Otherwise (one channel, say) entry by entry is the faster.
                    const bool grouped_dx = want_dx && geo.blocked;
                    if (!chunk_dw) conv2d_winners_image(geo, xs, weight_t_.data(), pos, val, part, want_dx && !grouped_dx ? dxs : nullptr, gs, at);
                    if (grouped_dx) conv2d_winners_input_image(geo, weight_t_.data(), pos, val, dxs, by_position, gs, woff);
                    if (want_dx) transpose(dxs, HW, C, grad_input_.data() + n * C * HW);
                }
                if (chunk_dw) conv2d_winners_weight_images(geo, count, xs_chunk, pos_chunk, val_chunk, part, gs, at_chunk);
            }
        }
        // Sum the chunks in order, then back to [OC, C, K, K].
        grad_weight_.set_zero();
        grad_bias_.set_zero();
        if (chunks == 0) return grad_input_;
        sum_chunks(chunks, stride);
        const T* sum = partial_.data();
        for (Index o = 0; o < out_; ++o) transpose(sum + o * KKC, K * K, C, grad_weight_.data() + o * KKC);  // [KK, C] -> [C, KK]
        std::copy(sum + out_ * KKC, sum + out_ * KKC + out_, grad_bias_.data());
        finish_mask_gradients();
        return grad_input_;
    }

    // backward_input_winners: dx alone, when each output plane's gradient is
    // nonzero at Q known positions at most (entries as for backward_winners):
    // dx[c, h0 + a, w0 + b] += g * W[o, c, a, b] for each entry g, and nothing
    // else, per output position (kernels/conv2d_winners.hpp,
    // conv2d_winners_input_image); the parameter gradients are not touched.
    // Images are independent, so the result does not depend on the thread
    // count; it agrees with backward_input_images up to rounding (the sums
    // run in another order).
    template <typename Entries>
    const Tensor<T>& backward_input_winners(Index N, Index Q, Entries&& entries) {
        check_batch(N);
        const Index C = in_, HW = in_shape_[2] * in_shape_[3];
        grad_input_.resize(in_shape_);
        const WinnersGeometry geo = winners_geometry(Q);
        const Index E = out_ * Q, P = geo.P;
        const Index scratch = (HW * C + P * out_ + E + out_ + 15) / 16 * 16;  // whole 64-byte lines: each thread's dx_n aligned
        col_.resize(Shape{num_threads(), scratch});  // per thread: dx_n channel-last, the table by position, val, gs
        positions_.resize(static_cast<std::size_t>(num_threads() * E));  // per thread: pos
        offsets_.resize(static_cast<std::size_t>(num_threads() * out_));  // per thread: woff
        EIGENCNN_OMP(parallel if (N > 1 || !kSerialImage))  // one image: no team to wake
        {
            T* dxs = col_.data() + thread_index() * scratch;
            T* by_position = dxs + HW * C;
            T* val = by_position + P * out_;
            T* gs = val + E;
            std::int32_t* pos = positions_.data() + thread_index() * E;
            Index* woff = offsets_.data() + thread_index() * out_;
            EIGENCNN_OMP(for schedule(static))
            for (Index n = 0; n < N; ++n) {
                entries(n, pos, val);
                std::fill(dxs, dxs + HW * C, T(0));
                conv2d_winners_input_image(geo, weight_t_.data(), pos, val, dxs, by_position, gs, woff);
                transpose(dxs, HW, C, grad_input_.data() + n * C * HW);
            }
        }
        return grad_input_;
    }

    std::string describe() const {
        std::string s = std::to_string(in_) + ", " + std::to_string(out_) + ", kernel_size=" + std::to_string(k_) +
                        ", stride=" + std::to_string(stride_);
        if (pad_) s += ", padding=" + std::to_string(pad_);
        if (!has_bias_) s += ", bias=false";
        return s;
    }

    // Backward for batches smaller than the thread count (batch 1 above all), or of too few chunks
    // (share_chunks): the images in turn, each one's work shared by all threads, so that none sits idle.
    // The weight gradient by rows of [dW^T; db^T]: with the direct kernel (direct_weight_grad_rows), a share of
    // the window rows (c, a), from the padded channels they read, so that even one input channel has K rows to
    // share; with im2col, a share of the input channels, whose rows of col_n the thread unfolds itself; the
    // last thread also the bias row. The input gradient by input channels: those rows of dcol = W^T dy_n, folded
    // into those channels of dx_n (or the planes kernel on the padded dy_n with those rows of Wf; or by phases,
    // with the phase weights built before the parallel region), from rows of W^T or Wf each thread builds itself.
    // With the batch's dy at hand (Conv2d::backward, backward_input) no thread reads what another wrote:
    // each transposes (and pads) dy_n itself, and there is no barrier (backward_images_apart). From a source
    // callback (the fused step's dense backward), thread 0 calls it, pads dy_n once, and two barriers per image
    // hand its results to the others (backward_images_shared; backward_input: whichever thread enters the single).
    // gemm() and the direct kernels compute every element as the same position-ordered sum however the rows
    // are split, and the chunk sums run as in the image-parallel path, so results are bitwise those of that
    // path on any number of threads. That holds for gemm()'s float kernel only (Eigen's GEMM, for double or
    // other compilers, sums its leftover rows in another order depending on M), so other types keep the
    // image-parallel path. Only where more threads get work than there are images (min(units, threads) > N:
    // input channels, or window rows with the direct kernel), and for products of at least kSharedBackwardWork
    // multiply-adds per image (measured paying from 44k on a Zen 4; the barrier version cost more per image,
    // and the threshold was 2^20). The im2col forward is not shared: split by output
    // rows, the threads' columns of col_n and y_n meet inside cache lines on
    // every row (false sharing; the buffers are not 64-byte aligned), and split
    // by output channels, each thread reads the half of col_n the other one
    // unfolded; both measured slower than one thread on several shapes. The
    // direct forward is (forward_images_shared, from kSharedWork multiply-adds per image): it has no col_n,
    // its rows of y_n^T are whole 64-byte multiples, and its shares of y_n's columns start at whole 16s of
    // positions where that keeps every thread busy.
    bool share_images(Index N) const { return shares_among(in_, N); }
    bool share_weight_images(Index N) const { return shares_among(weight_share_units(direct_weight_gradient_rows() != nullptr), N); }
    bool shares_among(Index units, Index N) const {
        return std::min<Index>(units, num_threads()) > N && shares_pay(kSharedBackwardWork);
    }

    // The forward's test: fewer images than threads and enough work per image to share; float on gemm()'s
    // kernel only.
    bool small_batch(Index N) const { return num_threads() > N && shares_pay(kSharedWork); }
    bool shares_pay(Index threshold) const {
#ifdef EIGENCNN_GEMM_KERNEL
        if constexpr (std::is_same_v<T, float>) {
            const Index P = out_shape_[2] * out_shape_[3], R = in_ * k_ * k_;
            return out_ * P * (R + 1) >= threshold;
        }
#endif
        (void)threshold;
        return false;
    }

    // A batch of at least as many images as threads but of so few chunks (chunk_images each, the unit of the
    // image-parallel backward) that half the threads that could take a share of the weight gradient or more
    // would sit idle: batch 8 on 4 threads is two chunks, two threads busy. backward then shares each image
    // among the threads too (backward_images_shared, which sums the chunks the same way).
    bool share_chunks(Index N) const {
        const Index chunk = chunk_images(N), chunks = (N + chunk - 1) / chunk;
        const Index units = weight_share_units(direct_weight_gradient_rows() != nullptr);
        return N >= num_threads() && 2 * chunks <= std::min<Index>(units, num_threads()) && shares_pay(kSharedBackwardWork);
    }

#ifdef EIGENCNN_DIRECT_CONV
    // The forward of a batch smaller than the thread count, direct kernels only: every image shared among the
    // threads. Per image, each thread keeps (for backward) a share of the input channels, pads the whole image
    // into its own scratch (a copy the other threads repeat: shared, it cost a barrier per image and lines handed
    // from core to core), and computes its share of y_n; after a barrier, one thread hands y_n to the sink while
    // the others go on to the next image, whose y_n is the other of two scratches (thread 0's row of col_:
    // channel-last y_n^T, y_n, y_n again). The share of y_n:
    // - planes kernel (output rows in 16s): straight into y_n, a share of the output channels where each
    //   thread gets at least kPlanesChannelsPerThread (blocks of 6 for the most part), else of the output rows
    //   (in whole blocks of 4 runs where every thread still gets rows);
    // - planar kernel (few input channels, other row widths): straight into y_n, a share of its runs of 16
    //   positions (or of its rows, when narrower);
    // - channel-last kernel: a share of the output rows, as rows of y_n^T [P, OC], transposed into those
    //   columns of y_n [OC, P].
    // Those two read [W | b]^T, which each thread transposes for itself first (shared, half of it came from
    // the other core: seed conv2's 51 KB cost more than a thread's own transpose).
    // The kernels compute every output from its own window as before, so the result is bitwise the
    // image-parallel one (test_model, test_kernels).
    template <typename Dest, typename Sink>
    void forward_images_shared(const Tensor<T>& x, detail::DirectForward direct, detail::DirectForwardPlanes planes, const T* w,
                               const T* bias, Dest& dest, Sink& sink) {
        const Index N = out_shape_[0], OH = out_shape_[2], OW = out_shape_[3], P = OH * OW;
        const Index H = x.dim(2), W = x.dim(3), plane = H * W, image_in = in_ * plane, Wp = input_copy_pitch();
        const Index scratch = col_.size() / std::max<Index>(1, col_.dim(0)), image_at = planes ? 0 : out_ * P;
        T* yT = col_.data();  // channel-last only
        T* y_scratch = col_.data() + image_at + input_copy_size();
        const bool copies = input_copy_size() > 0;
        // Row shares start at whole 16s of positions where that lines up with 64 bytes (P a multiple of 16) and
        // leaves every thread some rows; else at any row (the threads' columns of y_n then meet in a line or
        // two per channel at the edges of their shares).
        Index row_align = P % detail::kGemmLanes == 0 ? detail::kGemmLanes / std::gcd(OW, detail::kGemmLanes) : 1;
        if (planes) row_align = 4 * detail::kGemmLanes / std::gcd(OW, 4 * detail::kGemmLanes);  // whole blocks of 4 runs
        if (OH / row_align < num_threads()) row_align = 1;
        // the planes kernel: shares of the output channels where each thread gets blocks of 6 for the most part, else of the rows
        const bool by_channels = out_ >= kPlanesChannelsPerThread * num_threads();
        // few input channels: the planar kernel, whatever the rows (planes would split 16 output channels 6 + 2)
        const auto planar = detail::direct_forward_planar_kernel(in_, k_, stride_, out_);
        if (planar) planes = nullptr;
        if (!planes) weight_bias_t_.resize(Shape{num_threads(), in_ * k_ * k_ + 1, out_});  // one [W | b]^T per thread
        const Index planar_units = detail::direct_forward_planar_units(OH, OW);
        EIGENCNN_OMP(parallel)
        {
            const int t = thread_index(), team = num_threads_in_region();
            const ThreadShare inputs = thread_share(in_, t, team), rows = thread_share(OH, t, team, row_align),
                              channels = thread_share(out_, t, team);
            T* padded_image = col_.data() + t * scratch + image_at;  // this thread's
            T* wbt = weight_bias_t_.data() + (planes ? 0 : t * (in_ * k_ * k_ + 1) * out_);  // this thread's [W | b]^T
            if (!planes) transpose_weight_bias_rows(0, in_ * k_ * k_ + 1, wbt);
            for (Index n = 0; n < N; ++n) {
                const T* x_n = x.data() + n * image_in;
                if (has_input_) std::copy(x_n + inputs.begin * plane, x_n + inputs.end * plane, input_.data() + n * image_in + inputs.begin * plane);
                const T* xp = copies ? input_copy(x_n, padded_image) : x_n;
                T* y = dest(n, y_scratch + (n % 2) * out_ * P);
                if (planes) {
                    if (by_channels)
                        planes(in_, OH, OW, 0, OH, H + 2 * pad_, Wp, xp, w, in_ * k_ * k_, bias, channels.begin, channels.end, y);
                    else
                        planes(in_, OH, OW, rows.begin, rows.end, H + 2 * pad_, Wp, xp, w, in_ * k_ * k_, bias, 0, out_, y);
                } else if (planar) {
                    const ThreadShare units = thread_share(planar_units, t, team);
                    planar(OH, OW, H + 2 * pad_, Wp, xp, wbt, out_, y, units.begin, units.end);
                } else {
                    direct(in_, rows.end - rows.begin, OW, H + 2 * pad_, Wp, xp + rows.begin * Wp, wbt, out_, yT + rows.begin * OW * out_);
                    transpose_block(yT, P, out_, rows.begin * OW, rows.end * OW, Index(0), out_, y);
                }
                EIGENCNN_OMP(barrier)
                EIGENCNN_OMP(single nowait)  // the others write the next image's y_n, the other scratch, meanwhile
                sink(n, static_cast<const T*>(y));
            }
        }
    }
#endif

    template <typename Source>
    void backward_images_shared(Index N, const T* WT, detail::DirectForwardPlanes dx_planes, Index dx_scratch, Source& source) {
        const Index P = out_shape_[2] * out_shape_[3], R = in_ * k_ * k_, chunk = chunk_images(N);
        const auto wg = direct_weight_gradient_rows();
        const bool want_dx = this->input_grad_, copies = input_copy_size() > 0;
        T* col = col_.data();
        T* dcol = col + (R + 1) * P;
        T* gt = dcol + dx_scratch;
        T* gs = want_dx ? gt + P * out_ : nullptr;
        const T* g = nullptr;
        const bool winograd_dw = winograd_applies();
        EIGENCNN_OMP(parallel)
        {
            const int t = thread_index(), team = num_threads_in_region();
            const ThreadShare channels = thread_share(in_, t, team), dx_channels = input_gradient_share(t, team);
            const WeightShare w = weight_share(wg != nullptr, t, team);
            const Index r0 = w.begin * k_, rows = w.rows(k_);
            const T* WTt = want_dx ? input_gradient_weight_rows(dx_planes, WT, t, dx_channels.begin, dx_channels.end) : WT;
            const ThreadShare outputs = winograd_outputs(t, team);  // Winograd's weight gradient: by output channels
            const ThreadShare columns = pointwise_share(t, team);     // a pointwise one: likewise
            for (Index n = 0; n < N; ++n) {
                T* part = partial_.data() + (n / chunk) * (R + 1) * out_;
                const T* x_n = input_.data() + n * in_ * in_shape_[2] * in_shape_[3];
                if (winograd_dw) {  // each thread reads x_n itself
                    if (n % chunk == 0) zero_winograd_du(outputs.begin, outputs.end, t);
                } else if (wg) {  // its channels of the padded image (stride 2: in phases), in col; read by all after the barrier
                    if (copies) copy_input_channels(x_n, col, channels.begin, channels.end);
                } else if (!pointwise()) {  // pointwise: the image in place
                    unfold_.unfold(x_n, col, channels.begin, channels.end);
                    if (w.bias) std::fill(col + R * P, col + (R + 1) * P, T(1));
                }
                if (t == 0) {
                    if (n % chunk == 0) std::fill(part, part + (R + 1) * out_, T(0));
                    g = source(n, gs, gt);
                    if (want_dx) g = prepare_gradient(dx_planes, g, dcol);
                }
                EIGENCNN_OMP(barrier)
                if (winograd_dw) {  // its output channels, from the whole image and dy_n^T
                    if (outputs.end > outputs.begin) {
                        winograd_weight_grad_image(n, gt, outputs.begin, outputs.end, part, t);
                        if (n % chunk == chunk - 1 || n == N - 1) winograd_weight_grad_finish(outputs.begin, outputs.end, part, t);
                    }
                } else if (wg) {  // the same rows by the direct kernel, from the padded image
                    if (rows > 0) weight_gradient_rows(wg, copies ? static_cast<const T*>(col) : x_n, gt, part, w);
                } else if (pointwise()) {  // its output channels' columns
                    pointwise_weight_gradient(x_n, gt, columns.begin, columns.end, part);
                } else if (rows > 0) {  // [dW^T; db^T][share] += [col_n; 1][share] * dy_n^T
                    gemm(rows, out_, P, col + r0 * P, P, gt, out_, part + r0 * out_, out_, true);
                }
                if (want_dx) input_gradient_channels(dx_planes, WTt, g, dcol, n, dx_channels.begin, dx_channels.end);
                EIGENCNN_OMP(barrier)
            }
        }
    }

    // backward_images_shared with the whole batch's dy at hand: nothing any thread writes is read by
    // another, so no barrier. Each thread keeps its own dy_n^T (the whole of it, a transpose per image that
    // the other threads repeat), its own padded dy_n for dx, and its own rows of col_n (or of the padded
    // image), and writes only its rows of part and its channels of dx_n. Sharing the transpose and the padded
    // dy_n (one thread's, or each its part) cost a barrier per image and lines handed from core to core,
    // which measured up to twice as slow as one thread when the two cores sit far apart (docs/performance.md).
    // The same kernels on the same rows: bitwise backward_images_shared's results.
    void backward_images_apart(Index N, const T* WT, detail::DirectForwardPlanes dx_planes, Index dx_scratch, const T* dy) {
        const Index P = out_shape_[2] * out_shape_[3], R = in_ * k_ * k_, chunk = chunk_images(N);
        const bool winograd_dw = winograd_applies();
        const Index scratch = col_.size() / std::max<Index>(1, col_.dim(0));
        const auto wg = direct_weight_gradient_rows();
        const bool want_dx = this->input_grad_, copies = input_copy_size() > 0;
        EIGENCNN_OMP(parallel)
        {
            const int t = thread_index(), team = num_threads_in_region();
            T* col = col_.data() + t * scratch;
            T* dcol = col + (R + 1) * P;
            T* gt = dcol + dx_scratch;
            const ThreadShare channels = thread_share(in_, t, team), dx_channels = input_gradient_share(t, team);
            const WeightShare w = weight_share(wg != nullptr, t, team);
            const Index r0 = w.begin * k_, r1 = w.end * k_, rows = w.rows(k_);
            const T* WTt = want_dx ? input_gradient_weight_rows(dx_planes, WT, t, dx_channels.begin, dx_channels.end) : WT;
            const ThreadShare outputs = winograd_outputs(t, team);  // Winograd's weight gradient: by output channels
            const ThreadShare columns = pointwise_share(t, team);     // a pointwise one: likewise
            for (Index n = 0; n < N; ++n) {
                T* part = partial_.data() + (n / chunk) * (R + 1) * out_;
                const T* g = dy + n * out_ * P;
                const T* x_n = input_.data() + n * in_ * in_shape_[2] * in_shape_[3];
                if (winograd_dw) {  // its columns of every row of the chunk's sums; dy_n^T, all of it
                    if (outputs.end > outputs.begin) {
                        if (n % chunk == 0) {  // the bias row (winograd_weight_grad_finish sets the weight rows)
                            std::fill(part + R * out_ + outputs.begin, part + R * out_ + outputs.end, T(0));
                            zero_winograd_du(outputs.begin, outputs.end, t);
                        }
                        transpose(g, out_, P, gt);
                        winograd_weight_grad_image(n, gt, outputs.begin, outputs.end, part, t);
                        if (n % chunk == chunk - 1 || n == N - 1) winograd_weight_grad_finish(outputs.begin, outputs.end, part, t);
                    }
                    if (want_dx && dx_channels.end > dx_channels.begin)
                        input_gradient_channels(dx_planes, WTt, prepare_gradient(dx_planes, g, dcol), dcol, n, dx_channels.begin, dx_channels.end);
                    continue;
                }
                if (pointwise()) {  // its columns of every row of the chunk's sums, from its rows of dy_n transposed
                    if (columns.end > columns.begin) {
                        if (n % chunk == 0)
                            for (Index r = 0; r <= R; ++r) std::fill(part + r * out_ + columns.begin, part + r * out_ + columns.end, T(0));
                        transpose_block(g, out_, P, columns.begin, columns.end, Index(0), P, gt);
                        pointwise_weight_gradient(x_n, gt, columns.begin, columns.end, part);
                    }
                } else {
                    if (n % chunk == 0) {  // its rows of the chunk's sums
                        std::fill(part + r0 * out_, part + r1 * out_, T(0));
                        if (w.bias) std::fill(part + R * out_, part + (R + 1) * out_, T(0));
                    }
                    if (rows > 0) transpose(g, out_, P, gt);  // dy_n^T, all of it
                    if (wg) {  // the channels of its window rows of the padded image (stride 2: in phases), in col
                        if (copies) copy_input_channels(x_n, col, w.first_channel(k_), w.end_channel(k_));
                        if (rows > 0) weight_gradient_rows(wg, copies ? static_cast<const T*>(col) : x_n, gt, part, w);
                    } else if (rows > 0) {  // [dW^T; db^T][share] += [col_n; 1][share] * dy_n^T
                        unfold_.unfold(x_n, col, channels.begin, channels.end);
                        if (w.bias) std::fill(col + R * P, col + (R + 1) * P, T(1));
                        gemm(rows, out_, P, col + r0 * P, P, gt, out_, part + r0 * out_, out_, true);
                    }
                }
                if (want_dx && dx_channels.end > dx_channels.begin)
                    input_gradient_channels(dx_planes, WTt, prepare_gradient(dx_planes, g, dcol), dcol, n, dx_channels.begin, dx_channels.end);
            }
        }
    }

    // With dy at hand, each thread pads dy_n itself (into its own dcol) and no barrier is needed, as in
    // backward_images_apart; from source, one thread calls it and the others wait.
    template <typename Source>
    const Tensor<T>& backward_input_images_shared(Index N, const T* WT, detail::DirectForwardPlanes dx_planes, Index dx_scratch,
                                                  Source& source, const T* dy) {
        const Index scratch = col_.size() / std::max<Index>(1, col_.dim(0)), dy_image = out_ * out_shape_[2] * out_shape_[3];
        T* dcol = col_.data();
        const T* g = nullptr;
        EIGENCNN_OMP(parallel)
        {
            const int t = thread_index(), team = num_threads_in_region();
            const ThreadShare channels = input_gradient_share(t, team);
            const T* WTt = input_gradient_weight_rows(dx_planes, WT, t, channels.begin, channels.end);
            T* own = col_.data() + t * scratch;
            if (dy) {  // the same on every thread: all take this branch or the other
                for (Index n = 0; n < N && channels.end > channels.begin; ++n)
                    input_gradient_channels(dx_planes, WTt, prepare_gradient(dx_planes, dy + n * dy_image, own), own, n, channels.begin,
                                            channels.end);
            } else {
                for (Index n = 0; n < N; ++n) {
                    EIGENCNN_OMP(single)
                    {
                        g = prepare_gradient(dx_planes, source(n, dcol + dx_scratch), dcol);
                    }
                    input_gradient_channels(dx_planes, WTt, g, dcol, n, channels.begin, channels.end);
                    EIGENCNN_OMP(barrier)
                }
            }
        }
        return grad_input_;
    }

    // Checks the spec's argument count (5, or 6 with a last argument 0 or 1); returns whether it has a bias.
    static bool check_spec(const LayerSpec& s) {
        if (s.args.size() != 6) s.expect_args(5);
        return s.args.size() == 5 || s.int_arg(5, "bias", 0, 1) != 0;
    }

    // Number of weights OC * C * K * K, checked.
    template <typename What>  // a name, or a callable that builds it (checked_mul)
    static std::int64_t weight_count(std::int64_t in, std::int64_t out, std::int64_t k, const What& what) {
        return checked_mul(checked_mul(checked_mul(out, in, what), k, what), k, what);
    }

    void check_batch(Index N) const {
        if (N != in_shape_[0])
            throw std::invalid_argument(name() + " backward: gradient for " + std::to_string(N) + " images after a forward of " +
                                        std::to_string(in_shape_[0]));
    }

    // The winners-only geometry for Q entries per output plane; fills weight_t_ with W channel-last
    // [OC, K, K, C] (diag(a) W with a mask), block_offset_ and origin_, which the result points into.
    WinnersGeometry winners_geometry(Index Q) {
        const Index C = in_, K = k_, W = in_shape_[3], OW = out_shape_[3], KKC = K * K * C;
        effective_weight();  // weight_eff_ with a mask
        weight_t_.resize(Shape{out_, K, K, C});
        channel_last_weight(weight_t_.data());
        const bool blocked = (K * C) % kWinnersBlock == 0;
        block_offset_.resize(blocked ? static_cast<std::size_t>(KKC / kWinnersBlock) : 0);  // (a, b, c) -> (a*W + b)*C
        for (std::size_t j = 0; j < block_offset_.size(); ++j) {
            const Index k = static_cast<Index>(j) * kWinnersBlock;
            block_offset_[j] = k / (K * C) * W * C + k % (K * C);
        }
        origin_.resize(static_cast<std::size_t>(2 * out_shape_[2] * OW));  // output position -> top-left input row, column
        for (Index p = 0; p < out_shape_[2] * OW; ++p) {
            origin_[static_cast<std::size_t>(2 * p)] = p / OW * stride_ - pad_;
            origin_[static_cast<std::size_t>(2 * p + 1)] = p % OW * stride_ - pad_;
        }
        return WinnersGeometry{C, K, in_shape_[2], W, out_, Q, out_shape_[2] * OW, blocked, origin_.data(), block_offset_.data()};
    }

    // The direct small-window kernels (kernels/conv2d_direct.hpp), for float on AVX-512: the forward's, or
    // null when this geometry has none (then im2col + gemm).
    auto direct_forward() const {
#ifdef EIGENCNN_DIRECT_CONV
        if constexpr (std::is_same_v<T, float>) return detail::direct_forward_kernel(in_, k_, stride_, out_);
#endif
        return static_cast<void (*)(Index, Index, Index, Index, Index, const float*, const float*, Index, float*)>(nullptr);
    }

    // The direct forward into planes (kernels/conv2d_direct_planes.hpp) for output rows of OW, or null.
    detail::DirectForwardPlanes direct_forward_planes(Index OW) const {
#ifdef EIGENCNN_DIRECT_CONV
        if constexpr (std::is_same_v<T, float>) return detail::direct_forward_planes_kernel(k_, stride_, OW);
#endif
        (void)OW;
        return nullptr;
    }

    // The forward's state for backward, set by forward_images and forward_pooled: the shapes, and a copy of x
    // (sized here, filled image by image by the thread that reads the image). Backward recomputes each image's
    // col from it (far smaller than the cols of the whole batch); inference keeps nothing. ys: y's shape, from
    // output_shape(x.shape()), which checks x.
    void start_forward(const Tensor<T>& x, const Shape& ys) {
        in_shape_ = x.shape();
        out_shape_ = ys;
        has_input_ = this->grad_enabled_;
        if (has_input_) input_.resize(x.shape());
        unfold_.configure(in_, x.dim(2), x.dim(3), k_, stride_, pad_);
    }

    // The padded image [C, H + 2p, W + 2p]'s size, for the direct kernels (0 without padding).
    Index padded_size() const { return pad_ ? in_ * (in_shape_[2] + 2 * pad_) * (in_shape_[3] + 2 * pad_) : 0; }

    // The image the direct forward kernels read: stride 1, the padded image above (x_n itself without padding);
    // stride 2 (the planes kernel only), always a copy, padded and in two phases per row, [C, H + 2p, pitch]
    // (detail::pad_phases). Its row pitch, size (0: none), the copy, and the copy of channels [c0, c1).
    Index input_copy_pitch() const { return detail::planes_row_pitch(in_shape_[3], pad_, stride_); }
    // (Other strides have no direct kernels: these are never asked for them.)
    Index input_copy_size() const { return stride_ != 2 ? padded_size() : in_ * (in_shape_[2] + 2 * pad_) * input_copy_pitch(); }
    const T* input_copy(const T* x, T* scratch) const {
        if (stride_ != 2) return padded(x, scratch);
        copy_input_channels(x, scratch, 0, in_);
        return scratch;
    }
    void copy_input_channels(const T* x, T* scratch, Index c0, Index c1) const {
        if (stride_ != 2) pad_channels(x, scratch, c0, c1);
        else detail::pad_phases(x, in_shape_[2], in_shape_[3], pad_, input_copy_pitch(), c0, c1, scratch);
    }

    // x_n itself without padding; with it, a zero-padded copy in scratch (padded_size() elements).
    const T* padded(const T* x, T* scratch) const {
        if (!pad_) return x;
        pad_channels(x, scratch, 0, in_);
        return scratch;
    }

    // Channels [c0, c1) of that padded copy.
    void pad_channels(const T* x, T* scratch, Index c0, Index c1) const { pad_planes(x, in_shape_[2], in_shape_[3], pad_, c0, c1, scratch); }

    // Planes [c0, c1) of x [C, H, W] into scratch [C, H + 2q, W + 2q], zero-padded by q on every side.
    static void pad_planes(const T* x, Index H, Index W, Index q, Index c0, Index c1, T* scratch) {
        const Index Hp = H + 2 * q, Wp = W + 2 * q;
        std::fill(scratch + c0 * Hp * Wp, scratch + c1 * Hp * Wp, T(0));
        for (Index c = c0; c < c1; ++c)
            for (Index h = 0; h < H; ++h) std::copy(x + (c * H + h) * W, x + (c * H + h + 1) * W, scratch + (c * Hp + h + q) * Wp + q);
    }

    // The input gradient by the planes kernel (kernels/conv2d_direct_planes.hpp), or null: stride 1, input rows
    // in 16s, padding at most K - 1 (float on AVX-512). dx_n is then the forward of dy_n padded by q = K - 1 - p,
    // with the weights flipped and transposed, Wf [C, OC*K*K] (flipped_weight()), and no bias:
    //   dx[c, i, j] = sum_{o, a, b} W[o, c, K-1-a, K-1-b] * dy_q[o, i + a, j + b]
    // each element summed over (o, a, b) in that order from zero (plus the kernel's bias of 0: -0 becomes +0),
    // where the im2col path sums W^T dy_n over o, then adds up the K*K window values in col2im: the same
    // gradient rounded differently, and on any number of threads the same.
    detail::DirectForwardPlanes input_gradient_planes() const {
        if (stride_ != 1 || pad_ > k_ - 1) return nullptr;
        return direct_forward_planes(in_shape_[3]);
    }
    Index padded_gradient_size() const {
        const Index q = k_ - 1 - pad_;
        return out_ * (out_shape_[2] + 2 * q) * (out_shape_[3] + 2 * q);
    }
    // dy_n, padded by q = K - 1 - p into scratch (padded_gradient_size() elements) unless q = 0.
    const T* pad_gradient(const T* g, T* scratch) const {
        const Index q = k_ - 1 - pad_;
        if (q == 0) return g;
        pad_planes(g, out_shape_[2], out_shape_[3], q, 0, out_, scratch);
        return scratch;
    }
    // The input gradient's weights: Wf for the planes kernel, the phases' weights at stride 2
    // (choose_input_phases), W channel-last by rows, else W^T. When the image is shared, Wf, W^T and W
    // channel-last are only sized here: each thread builds the rows of its own channels of Wf or W^T, or a
    // whole W channel-last of its own (the rows kernel's threads each read all of it), in
    // input_gradient_weight_rows, so that no core reads what another one has just written. Its scratch per
    // image: the padded dy_n (phases: then dx_n's four phases), or dcol (none by rows).
    const T* input_gradient_weights(detail::DirectForwardPlanes planes, bool shared) {
#ifdef EIGENCNN_WINOGRAD
        if constexpr (std::is_same_v<T, float>)
            if (dx_winograd_) return winograd_input_gradient_weights(shared);
#endif
        if (dx_phases_) return phase_weights();
        if (dx_rows_) {  // one channel-last W per thread, each built on its own thread (input_gradient_weight_rows)
            effective_weight();  // weight_eff_ with a mask
            weight_t_.resize(Shape{num_threads(), out_, k_ * k_, in_});
            return weight_t_.data();
        }
        if (!planes) return shared ? size_transposed_weight() : transposed_weight();
        return shared ? size_flipped_weight() : flipped_weight();
    }
    // The weights thread t reads for whole images (images apart, not shared): its own channel-last W for the
    // rows kernel, built on that thread (one W built before the region and read by both cores cost a transfer of
    // each line of it per call), else WT as input_gradient_weights built it.
    const T* own_input_gradient_weights(detail::DirectForwardPlanes planes, const T* WT, int t) {
        return dx_rows_ ? input_gradient_weight_rows(planes, WT, t, 0, in_) : WT;
    }
    // Thread t's part of them (channels [c0, c1)); returns the weights it reads.
    const T* input_gradient_weight_rows(detail::DirectForwardPlanes planes, const T* WT, int t, Index c0, Index c1) {
#ifdef EIGENCNN_WINOGRAD
        if constexpr (std::is_same_v<T, float>)
            if (dx_winograd_) {  // its own block of U
                T* Ut = winograd_u_.data() + detail::winograd_tile_elements(k_) * out_ * c0;
                if (c1 > c0) detail::winograd_weights(effective_weight_data(), out_, in_, k_, true, c0, c1, Ut, winograd_scratch(t));
                return Ut;
            }
#endif
        if (dx_phases_) return WT;  // built whole before the parallel region
        if (dx_rows_) return channel_last_weight(weight_t_.data() + t * out_ * k_ * k_ * in_);
        if (planes) {
            flip_weight_rows(c0, c1);
            return WT;
        }
        const Index KK = k_ * k_;
        transpose_block(effective_weight_data(), out_, in_ * KK, Index(0), out_, c0 * KK, c1 * KK, weight_t_.data());
        return WT;
    }
    Index input_gradient_scratch(detail::DirectForwardPlanes planes) const {
        if (dx_phases_) return phases_.padded_size() + in_ * in_shape_[2] * in_shape_[3];  // dy padded, then dx's phases
        if (dx_rows_ || dx_winograd_) return 0;
        return planes ? padded_gradient_size() : in_ * k_ * k_ * out_shape_[2] * out_shape_[3];
    }
#ifdef EIGENCNN_WINOGRAD
    // U [XI, OC, C] of the input gradient by Winograd into winograd_u_, and the per-thread scratch. Shared
    // images: only sized here, each thread builds the block of its own channels (input_gradient_weight_rows);
    // else built here, a whole U per thread, each on its own thread (as the forward: one U read by every core
    // cost a transfer of each line of it per call), input_gradient_channels picking the thread's.
    const T* winograd_input_gradient_weights(bool shared) {
        const Index q = k_ - 1 - pad_, block = detail::winograd_tile_elements(k_) * out_ * in_;
        winograd_scratch_.resize(Shape{num_threads(), std::max(detail::winograd_image_scratch(out_, in_, out_shape_[2], out_shape_[3], k_, q),
                                                               detail::winograd_weights_scratch(in_, out_, k_))});
        winograd_u_.resize(Shape{shared ? 1 : num_threads(), block});
        const T* w = effective_weight();
        if constexpr (std::is_same_v<T, float>)  // dx_winograd_ is float's only
            if (!shared) {
                EIGENCNN_OMP(parallel)
                detail::winograd_weights(w, out_, in_, k_, true, 0, in_, winograd_u_.data() + thread_index() * block,
                                         winograd_scratch(thread_index()));
            }
        return winograd_u_.data();
    }
    T* winograd_scratch(int t) { return winograd_scratch_.data() + t * winograd_scratch_.dim(1); }
#endif
    // A thread's share of dx's input channels when an image is shared: in whole vectors for Winograd.
    ThreadShare input_gradient_share(int t, int team) const {
#ifdef EIGENCNN_WINOGRAD
        if (dx_winograd_) return thread_share(in_, t, team, detail::kGemmLanes);
#endif
        return thread_share(in_, t, team);
    }

    // dy_n as input_gradient_channels reads it: padded into scratch for the planes kernel (phases: by their Q), else itself.
    const T* prepare_gradient(detail::DirectForwardPlanes planes, const T* g, T* scratch) const {
        if (dx_winograd_) return g;
        if (dx_phases_) {
            if (phases_.Q == 0) return g;
            pad_planes(g, out_shape_[2], out_shape_[3], phases_.Q, 0, out_, scratch);
            return scratch;
        }
        return planes ? pad_gradient(g, scratch) : g;
    }
    // Channels [c0, c1) of dx_n from dy_n as prepare_gradient left it: by the planes kernel with Wf, or
    // dcol[their rows] = W^T[their rows] * dy_n folded into them; by rows, all channels of rows
    // [c0 H / C, c1 H / C) with W channel-last (so that shares of the channels give shares of the rows).
    void input_gradient_channels(detail::DirectForwardPlanes planes, const T* WT, const T* g, T* dcol, Index n, Index c0, Index c1) {
        if (c1 <= c0) return;
        const Index H = in_shape_[2], W = in_shape_[3], P = out_shape_[2] * out_shape_[3];
        T* dx = grad_input_.data() + n * in_ * H * W;
#ifdef EIGENCNN_WINOGRAD
        if constexpr (std::is_same_v<T, float>)
            if (dx_winograd_) {  // WT: the thread's own block (shared images: one U) or the first of the threads' copies
                const T* U = winograd_u_.dim(0) > 1 ? WT + thread_index() * winograd_u_.dim(1) : WT;
                return detail::winograd_image(g, out_, out_shape_[2], out_shape_[3], k_, k_ - 1 - pad_, U, nullptr, in_, c0, c1, dx,
                                              winograd_scratch(thread_index()));
            }
#endif
#ifdef EIGENCNN_DIRECT_CONV
        if constexpr (std::is_same_v<T, float>) {
            if (dx_phases_)  // stride 2 by phases: scratch after the padded dy
                return detail::input_gradient_by_phases(phases_, WT, g, zeros_.data(), c0, c1, dcol + phases_.padded_size(), dx);
            if (dx_rows_) return input_rows_kernel()(in_, out_, out_shape_[2], pad_, g, WT, c0 * H / in_, c1 * H / in_, dx);
        }
#endif
        if (planes) {
            if constexpr (std::is_same_v<T, float>) {  // the kernel is float's
                const Index q = k_ - 1 - pad_;
                planes(out_, H, W, 0, H, out_shape_[2] + 2 * q, out_shape_[3] + 2 * q, g, WT, out_ * k_ * k_, zeros_.data(), c0, c1, dx);
            }
            return;
        }
        const Index r0 = c0 * k_ * k_, r1 = c1 * k_ * k_;
        gemm(r1 - r0, P, out_, WT + r0 * out_, out_, g, P, dcol + r0 * P, P);
        unfold_.fold(dcol, dx, c0, c1);
    }

    // part [R + 1, OC] += image n's [dW^T; db^T] by the direct kernel, if this geometry has one and the
    // padded image fits in col ((R + 1) * P elements; it always does at stride 1). False: nothing done.
    bool direct_weight_gradient(Index n, const T* gt, T* part, T* col) const {
#ifdef EIGENCNN_DIRECT_CONV
        if constexpr (std::is_same_v<T, float>) {
            const auto kernel = detail::direct_weight_grad_kernel(in_, k_, stride_, out_);
            const Index OH = out_shape_[2], OW = out_shape_[3], R = in_ * k_ * k_;
            // the image the kernel reads (stride 2: in phases) must fit in col: it always does at stride 1
            // (Hp = OH + K - 1 <= K * OH), not always at stride 2 (tiny outputs)
            if (!kernel || input_copy_size() > (R + 1) * OH * OW) return false;
            const Index H = in_shape_[2], W = in_shape_[3];
            kernel(in_, OH, OW, H + 2 * pad_, input_copy_pitch(), input_copy(input_.data() + n * in_ * H * W, col), gt, out_, part);
            return true;
        }
#endif
        (void)n, (void)gt, (void)part, (void)col;
        return false;
    }

    // The weight-gradient kernel by window rows (kernels/conv2d_direct.hpp) for a shared image, or null; it
    // reads the image (stride 2: in phases) from col, which must hold it (see direct_weight_gradient).
    auto direct_weight_gradient_rows() const {
#ifdef EIGENCNN_DIRECT_CONV
        if constexpr (std::is_same_v<T, float>)
            if (input_copy_size() <= (in_ * k_ * k_ + 1) * out_shape_[2] * out_shape_[3])
                return detail::direct_weight_grad_rows_kernel(k_, stride_, out_);
#endif
        return static_cast<void (*)(Index, Index, Index, bool, Index, Index, Index, Index, const float*, const float*, Index, float*)>(nullptr);
    }

    // A thread's share of the weight gradient when an image is shared: window rows [begin, end) (window row
    // u = c K + a is rows u K .. u K + K - 1 of [dW^T; db^T]), and the bias row on the last thread. The direct
    // kernel takes any window rows, so a conv of one input channel still has K to share (the bias row counts
    // as one more); im2col unfolds by channel, so there the shares are whole channels.
    struct WeightShare {
        Index begin, end;
        bool bias;
        Index rows(Index K) const { return (end - begin) * K + bias; }
        Index first_channel(Index K) const { return begin / K; }
        Index end_channel(Index K) const { return (end + K - 1) / K; }
    };
    WeightShare weight_share(bool direct, int t, int team) const {
        const Index units = weight_row_units(direct);
        const ThreadShare s = thread_share(units + direct, t, team);
        const Index per_unit = direct ? 1 : k_;  // window rows per unit
        return WeightShare{std::min(s.begin, units) * per_unit, std::min(s.end, units) * per_unit, t == team - 1};
    }
    Index weight_row_units(bool direct) const { return direct ? in_ * k_ : in_; }  // window rows, or input channels
    // The units a shared image's weight gradient splits into: output channels in 16s for a pointwise conv, else
    // weight_share's units of rows.
    Index weight_share_units(bool direct) const { return pointwise() ? (out_ + kPointwiseColumns - 1) / kPointwiseColumns : weight_row_units(direct); }

    // A 1x1 conv of stride 1 without padding: col_n is x_n itself, [R = C, P]. Its weight gradient reads the
    // image in place (no unfold) and, where threads share an image, is split by output channels (whole 16s,
    // pointwise_share): each thread then transposes only its rows of dy_n (backward_images_apart), where a split
    // by input channels had each transpose all of dy_n (1x1 64 -> 128 on 16 x 16: 128 KB per thread and image).
    bool pointwise() const { return k_ == 1 && stride_ == 1 && pad_ == 0; }
    ThreadShare pointwise_share(int t, int team) const { return thread_share(out_, t, team, kPointwiseColumns); }

    // Columns [o0, o1) of part [R + 1, OC] += x_n [R, P] * dy_n^T [P, OC] (the weight rows, by gemm from the image
    // in place) and the column sums of dy_n^T (the bias row: gemm's row of ones, fma(1, g, acc) = acc + g, summed
    // over the positions in order): bitwise im2col + gemm on [x_n; 1].
    void pointwise_weight_gradient(const T* x_n, const T* gt, Index o0, Index o1, T* part) const {
        const Index P = out_shape_[2] * out_shape_[3], R = in_;
        if (o1 <= o0) return;
        gemm(R, o1 - o0, P, x_n, P, gt + o0, out_, part + o0, out_, true);
        gemm_ones_row(o1 - o0, P, gt + o0, out_, part + R * out_ + o0);
    }

    // Window rows [w.begin, w.end) of part [R + 1, OC] (and the bias row with w.bias) += one image's, from
    // its padded copy xp.
    template <typename Kernel>
    void weight_gradient_rows(Kernel kernel, const T* xp, const T* gt, T* part, const WeightShare& w) const {
        if constexpr (std::is_same_v<T, float>)
            kernel(in_, w.begin, w.end, w.bias, out_shape_[2], out_shape_[3], in_shape_[2] + 2 * pad_, input_copy_pitch(), xp, gt, out_, part);
        else
            (void)kernel, (void)xp, (void)gt, (void)part, (void)w;
    }

    // The weight and bias gradients from the chunks' [dW^T; db^T] in partial_: summed in order into chunk 0 (so
    // the result does not depend on the thread count), then transposed; both by blocks of kTransposeRows rows of
    // [dW^T; db^T] shared among the threads (run on one thread after the backward's region, the sum, the zeroing
    // of dW and its transpose took ~10% of a batch-1 stride-2 3x3 64 -> 128 weight gradient on two threads).
    void finish_weight_gradients(Index chunks) {
        const Index R = in_ * k_ * k_, size = (R + 1) * out_;
        if (chunks == 0) {  // an empty batch: zero gradients
            grad_weight_.set_zero();
            grad_bias_.set_zero();
            return;
        }
        const T* total = partial_.data();  // the chunks summed into chunk 0
        const Index blocks = (R + 1 + kTransposeRows - 1) / kTransposeRows;
        EIGENCNN_OMP(parallel for schedule(static) if (chunks * size >= Index{1} << 16))
        for (Index b = 0; b < blocks; ++b) {
            const Index r0 = b * kTransposeRows, r1 = std::min(R + 1, r0 + kTransposeRows);
            sum_chunk_columns(chunks, size, r0 * out_, r1 * out_);
            if (r0 < R) transpose_block(total, R, out_, r0, std::min(r1, R), Index(0), out_, grad_weight_.data());  // dW [OC, R]
            if (r1 > R) std::copy(total + R * out_, total + (R + 1) * out_, grad_bias_.data());
        }
        finish_mask_gradients();
    }

    // partial_ [chunks, size]: chunk 0 += chunk 1, then += chunk 2, ... (the same order whatever the thread
    // count), the columns shared among the threads: on one thread this sum took about 3% of the seed conv2's
    // fused backward.
    void sum_chunks(Index chunks, Index size) {
        constexpr Index kColumns = 1024;
        EIGENCNN_OMP(parallel for schedule(static) if (chunks * size >= 1 << 16))
        for (Index j0 = 0; j0 < size; j0 += kColumns) sum_chunk_columns(chunks, size, j0, std::min(size, j0 + kColumns));
    }
    // Columns [j0, j1) of that sum, on the calling thread.
    void sum_chunk_columns(Index chunks, Index size, Index j0, Index j1) {
        T* total = partial_.data();
        for (Index ch = 1; ch < chunks; ++ch) {
            const T* part = partial_.data() + ch * size;
            EIGENCNN_OMP(simd)
            for (Index j = j0; j < j1; ++j) total[j] += part[j];
        }
    }

    // [W | b]^T [R + 1, OC] into weight_bias_t_ ([diag(a) W | c * b]^T with a mask), for the direct forward: the
    // values of [W | b] (a * w = w * a), transposed in 16 x 16 blocks. First sized (and the masked weights
    // made), then its rows [r0, r1) written, by one thread or shared among several.
    void size_weight_bias_t() {
        weight_bias_t_.resize(Shape{in_ * k_ * k_ + 1, out_});
        effective_weight();  // weight_eff_ with a mask
    }
    void transpose_weight_bias_rows(Index r0, Index r1, T* wbt) {
        const Index R = in_ * k_ * k_;
        transpose_block(effective_weight_data(), out_, R, Index(0), out_, std::min(r0, R), std::min(r1, R), wbt);
        if (r0 <= R && r1 > R)
            for (Index o = 0; o < out_; ++o) wbt[R * out_ + o] = mask_.bias_factor(o) * bias_.data()[o];
    }

    // Whether this backward's input gradient runs by phases (stride 2, kernels/conv2d_input_phases.hpp): float on
    // AVX-512, dx in an even number of rows of whole 32s, and an input gradient wanted (`allowed`). The shared
    // paths too (each thread its channels of each phase): the same result on any thread count.
    // Else, on small planes the planes kernel does not take (input rows not in 16s), by rows
    // (kernels/conv2d_input_rows.hpp: stride 1, K 3 or 5, output rows of 4 to 12, input channels in 16s); the
    // shared paths give each thread the rows of dx in proportion to its share of the input channels.
    void choose_input_phases(bool allowed) {
        dx_phases_ = false;
        dx_rows_ = false;
        dx_winograd_ = false;
#ifdef EIGENCNN_WINOGRAD
        if constexpr (std::is_same_v<T, float>)  // dx as the Winograd forward of dy: OC -> C channels, padding K - 1 - p
            dx_winograd_ = allowed && winograd_ && detail::winograd_applies(out_, in_, k_, stride_, k_ - 1 - pad_) &&
                           detail::winograd_pays(k_, in_shape_[2], in_shape_[3], out_shape_[2] * out_shape_[3]);
        if (dx_winograd_) return;
#endif
#ifdef EIGENCNN_DIRECT_CONV
        if constexpr (std::is_same_v<T, float>) {
            if (allowed && stride_ == 2) {
                phases_ = detail::input_phases(in_, out_, k_, pad_, in_shape_[2], in_shape_[3], out_shape_[2], out_shape_[3]);
                dx_phases_ = phases_.applies;
            }
            dx_rows_ = allowed && !dx_phases_ && !input_gradient_planes() && input_rows_kernel() != nullptr;
        }
#endif
        (void)allowed;
    }
    detail::InputGradRows input_rows_kernel() const { return detail::input_grad_rows_kernel(in_, k_, stride_, pad_, out_shape_[3]); }
    // The four phases' weights (detail::input_phase_weights; diag(a) W with a mask) into weight_t_, zeros_ [C].
    const T* phase_weights() {
        effective_weight();  // weight_eff_ with a mask
        weight_t_.resize(Shape{phases_.weights_size});
        zeros_.resize(Shape{in_});
        zeros_.set_zero();
        const T* w = effective_weight_data();
        EIGENCNN_OMP(parallel if (in_ * out_ * k_ * k_ >= (1 << 16)))
        {
            const ThreadShare rows = thread_share(in_, thread_index(), num_threads_in_region());
            detail::input_phase_weights(phases_, w, rows.begin, rows.end, weight_t_.data());
        }
        return weight_t_.data();
    }

    // Wf [C, OC*K*K] into weight_t_, Wf[c, (o, a, b)] = W[o, c, K-1-a, K-1-b] (diag(a) W with a mask), for the
    // input gradient by the planes kernel; zeros_ [C], its bias. First sized (and the masked weights made), then
    // its rows [c0, c1) written, by one thread or shared among several (each the rows of its own channels).
    const T* size_flipped_weight() {
        effective_weight();  // weight_eff_ with a mask
        weight_t_.resize(Shape{in_, out_ * k_ * k_});
        zeros_.resize(Shape{in_});
        zeros_.set_zero();
        return weight_t_.data();
    }
    void flip_weight_rows(Index c0, Index c1) {
        transpose_windows_flipped(effective_weight_data(), out_, in_, k_ * k_, c0, c1, weight_t_.data());
    }
    const T* flipped_weight() {
        const T* Wf = size_flipped_weight();
        EIGENCNN_OMP(parallel if (in_ * out_ * k_ * k_ >= (1 << 16)))
        {
            const ThreadShare rows = thread_share(in_, thread_index(), num_threads_in_region());
            flip_weight_rows(rows.begin, rows.end);
        }
        return Wf;
    }

    // W^T [R, OC] into weight_t_ (diag(a) W with a mask), for the input gradient's product.
    // W channel-last, [OC, K, K, C] (diag(a) W with a mask: effective_weight() made it), into dst: W[o] [C, KK] -> [KK, C].
    const T* channel_last_weight(T* dst) const {
        const Index KKC = k_ * k_ * in_;
        const T* Wd = effective_weight_data();
        for (Index o = 0; o < out_; ++o) transpose(Wd + o * KKC, in_, k_ * k_, dst + o * KKC);
        return dst;
    }
    const T* transposed_weight() {
        transpose(effective_weight(), out_, in_ * k_ * k_, size_transposed_weight());
        return weight_t_.data();
    }
    T* size_transposed_weight() {
        effective_weight();  // weight_eff_ with a mask
        weight_t_.resize(Shape{in_ * k_ * k_, out_});
        return weight_t_.data();
    }

    // The weights the products use: weight_, or diag(a) W with a mask (into weight_eff_).
    const T* effective_weight() {
        if (!mask_.active()) return weight_.data();
        weight_eff_.resize(weight_.shape());
        mask_.apply(weight_.data(), nullptr, in_ * k_ * k_, weight_eff_.data(), nullptr);
        return weight_eff_.data();
    }

    // The weights effective_weight() last made (weight_eff_ with a mask), for threads that each read their part.
    const T* effective_weight_data() const { return mask_.active() ? weight_eff_.data() : weight_.data(); }

    // The bias the products use: bias_, or c * b with a mask (into bias_eff_).
    const T* effective_bias() {
        if (!mask_.active()) return bias_.data();
        bias_eff_.resize(bias_.shape());
        for (Index o = 0; o < out_; ++o) bias_eff_.data()[o] = mask_.bias_factor(o) * bias_.data()[o];
        return bias_eff_.data();
    }

    // With a mask: the gradients just computed are with respect to the effective weights; scale them (output_mask.hpp).
    void finish_mask_gradients() {
        if (mask_.active())
            mask_.finish_gradients(weight_.data(), has_bias_ ? bias_.data() : nullptr, in_ * k_ * k_, grad_weight_.data(), grad_bias_.data());
    }

    // col_n [R + 1, P]: the image's columns, then a row of ones (the bias's input).
    void im2col(const Tensor<T>& x, Index n, T* col) const {
        const Index R = unfold_.rows(), P = unfold_.cols();
        unfold_.unfold(x.data() + n * in_ * in_shape_[2] * in_shape_[3], col);
        std::fill(col + R * P, col + (R + 1) * P, T(1));
    }

    static constexpr Index kChunk = 8;   // images per partial weight gradient
    static constexpr Index kPointwiseColumns = 16;  // output channels per unit of a shared pointwise weight gradient (a vector)
    // Whether one image (or one chunk) may run outside a parallel region, with no team woken for it: float on
    // gemm()'s own kernel. Elsewhere gemm() is Eigen's, which threads itself outside a parallel region and then
    // sums in an order that follows the thread count (test_model checks double at batch 1 on 1-3 threads).
#ifdef EIGENCNN_GEMM_KERNEL
    static constexpr bool kSerialImage = std::is_same_v<T, float>;
#else
    static constexpr bool kSerialImage = false;
#endif
    static constexpr Index kSharedWork = Index(1) << 18;  // multiply-adds per image from which the forward shares images (seed conv1, 240k: 5.3 -> 4.2 us at one time, 5.2 -> 12.3 at another: not shared)
    static constexpr Index kSharedBackwardWork = Index(1) << 15;  // the same for backward (no barriers with dy at hand)
    static constexpr Index kPlanesChannelsPerThread = 24;  // output channels per thread from which a shared image is split by channels

    Index in_, out_, k_, stride_, pad_;
    bool has_bias_;                         // false: bias_ stays zero and is not a parameter
    OutputMask<T> mask_;                    // per output channel (inactive by default)
    Tensor<T> weight_, bias_, grad_weight_, grad_bias_;
    Tensor<T> weight_eff_, bias_eff_;       // with a mask: diag(a) W, c * b
    Tensor<T> input_, col_, output_, grad_input_;  // input_: copy of x for backward; col_: per-thread scratch
    bool has_input_ = false;
    Tensor<T> weight_bias_, weight_t_;      // [W | b] [OC, R + 1] for forward; W^T [R, OC] (or Wf) for the input gradient
    Tensor<T> zeros_;                       // [C]: the bias of the input gradient by the planes kernel (stride 1 or by phases)
    detail::InputPhases phases_;            // the stride-2 input gradient by phases: its plan, and whether this backward uses it
    bool dx_phases_ = false;
    bool dx_rows_ = false;                  // this backward's input gradient by rows (kernels/conv2d_input_rows.hpp)
    bool dx_winograd_ = false;              // this backward's input gradient by Winograd F(2x2, 3x3) or F(2x2, 5x5)
    bool winograd_ = true;                  // set_winograd
    Tensor<T> winograd_u_;                  // Winograd's U: [XI, C, OC] (forward: one per thread unless shared) or [XI, OC, C] (input gradient); XI 16 or 64 (forward), 16 or 36 (input gradient)
    Index winograd_group_ = 1;              // the weight gradient by F(4x4, 5x5): images a group holds
    std::vector<Index> winograd_held_;      // ... and per thread, how many it holds now
    Tensor<T> winograd_scratch_;            // Winograd's per-thread scratch
    Tensor<T> winograd_dw_;                 // Winograd's weight gradient: per thread, dU [XI, C, its OC], then scratch
    Tensor<T> weight_bias_t_;               // [W | b]^T [R + 1, OC], for the direct forward kernel
    Tensor<T> partial_;                     // per-chunk gradients [dW^T; db^T], [chunks, R + 1, OC] (or backward_winners')
    std::vector<std::int32_t> positions_;   // winners paths: per thread, the entries' positions [OC, Q], then (backward_winners) patch offsets [Q]; backward_unpooled: per thread, the winners [Q, OC]
    std::vector<Index> offsets_;            // winners paths' dx by position: per thread, the weight offsets of one position's entries [OC]; backward_unpooled: per conv row, then column, its window in dz_n^T
    std::vector<Index> origin_, block_offset_;             // winners paths (winners_geometry): per output position, its window's top-left input row and column; per block of dW, its offset in a patch
    Im2col<T> unfold_;                      // geometry of the last forward's input
    Shape in_shape_, out_shape_;
};

EIGENCNN_REGISTER_LAYER(Conv2d)

}  // namespace eigencnn
