// SPDX-License-Identifier: MIT
// eigencnn/layers/linear.hpp
//
// Linear: fully connected layer, as torch.nn.Linear.
//
//   x [N, in], weight [out, in], bias [out]  ->  y [N, out]
//   y = x * weight^T + bias
// Backward:
//   dW = dy^T * x      [out, in]
//   db = sum_n dy[n]   [out]
//   dx = dy * W        [N, in]
// Each product runs in shares of rows (or columns) over the threads (kernels/matmul.hpp) whose every element is
// the same sum however they are shared, so results do not depend on the thread count. Float with AVX-512: on
// gemm() (gemm_rows), which wants its right operand's rows contiguous: the forward multiplies by a copy of W^T, or for batches under kCopyWeightRows computes
// y^T = W x^T from a copy of x^T (copying W for a few rows would cost more than the product), or for up to
// kLinearFewRows rows reads W in place, 16 x 16 blocks transposed in registers (linear_few_rows; y^T = W x^T
// would fill one lane of 16 at batch 1); dW is formed from a copy of dy^T (kernels/transpose.hpp). The three
// forwards are, element by element, the k-ordered sum of the same products, so a row's output does not depend on
// the batch it came in. Otherwise: Eigen (matmul_rows).
// Output mask (core/output_mask.hpp; inactive by default): y[n, o] = a[o] (W[o] . x[n]) + c[o] b[o];
// the products then use W' = diag(a) W and b' = c * b, and dW = diag(a) (dy^T x), db = c * sum_n dy[n].
#pragma once

#include "../core/init.hpp"
#include "../core/layer.hpp"
#include "../core/registry.hpp"
#include "../core/threads.hpp"
#include "../kernels/matmul.hpp"
#include "../kernels/transpose.hpp"

#include <type_traits>

namespace eigencnn {

template <typename T>
class Linear final : public Layer<T> {
public:
    static constexpr const char* kType = "Linear";

    Linear(Index in_features, Index out_features, bool bias = true, std::uint64_t seed = kDefaultInitSeed)
        : in_(in_features), out_(out_features), has_bias_(bias), mask_(out_features) {
        if (in_ < 1 || out_ < 1 || in_ > kMaxSizeArg || out_ > kMaxSizeArg)
            throw std::invalid_argument("Linear: need 1 <= in_features, out_features <= 2^31, got " + std::to_string(in_) + ", " +
                                        std::to_string(out_));
        checked_mul(in_, out_, "Linear(" + std::to_string(in_) + ", " + std::to_string(out_) + ") weight");
        weight_ = Tensor<T>(Shape{out_, in_});
        grad_weight_ = Tensor<T>(weight_.shape());
        bias_ = Tensor<T>(Shape{has_bias_ ? out_ : 0});
        grad_bias_ = Tensor<T>(bias_.shape());
        Rng rng(seed);
        reset_parameters(rng);
    }

    /// Spec {in_features, out_features, bias (0 or 1)}.
    static Linear from_spec(const LayerSpec& s) {
        s.expect_args(3);
        return Linear(s.int_arg(0, "in_features", 1, kMaxSizeArg), s.int_arg(1, "out_features", 1, kMaxSizeArg), s.int_arg(2, "bias", 0, 1) != 0);
    }
    static std::uint64_t parameter_count(const LayerSpec& s) {
        s.expect_args(3);
        const std::int64_t in = s.int_arg(0, "in_features", 1, kMaxSizeArg), out = s.int_arg(1, "out_features", 1, kMaxSizeArg);
        return static_cast<std::uint64_t>(checked_add(checked_mul(in, out, s.str()), s.int_arg(2, "bias", 0, 1) ? out : 0, s.str()));
    }

    void reset_parameters(Rng& rng) override {
        const double bound = default_init_bound(in_);
        uniform_fill(weight_, bound, rng);
        uniform_fill(bias_, bound, rng);
    }

    std::string name() const override {
        return "Linear(in_features=" + std::to_string(in_) + ", out_features=" + std::to_string(out_) +
               (has_bias_ ? "" : ", bias=false") + ")";
    }

    LayerSpec spec() const override { return {kType, {in_, out_, has_bias_ ? 1 : 0}}; }

    Shape output_shape(const Shape& in) const override {
        if (in.rank() != 2 || in[1] != in_)
            detail::shape_error(name(), "[N, " + std::to_string(in_) + "]" + (in.rank() > 2 ? " (add a Flatten before it)" : ""), in);
        return Shape{in[0], out_};
    }

    const Tensor<T>& forward(const Tensor<T>& x) override {
        output_.resize(output_shape(x.shape()));
        if (this->grad_enabled_) {
            input_.resize(x.shape());
            parallel_copy(x.data(), x.size(), input_.data());  // kept for dW; a copy so that x need not outlive the call
        } else {
            input_.resize(Shape{0});
        }
        auto y = output_.matrix();
        const Tensor<T>& w = effective_weight();
        const Index N = x.dim(0);
        if (!kOnGemm) matmul_rows(y, x.matrix(), w.matrix().transpose());
        else if (N >= kCopyWeightRows) {
            transposed_.resize(Shape{in_, out_});
            parallel_transpose(w.data(), out_, in_, transposed_.data());  // W^T [in, out]
            const T* b = has_bias_ ? (mask_.active() ? bias_eff_ : bias_).data() : nullptr;
            for_gemm_row_shares(N, [&](Index r, Index len) {  // y = x W^T (+ b, while the block is in cache)
                T* y_rows = output_.data() + r * out_;
                gemm(len, out_, in_, x.data() + r * in_, in_, transposed_.data(), out_, y_rows, out_);
                if (b)
                    for (Index n = 0; n < len; ++n)
                        EIGENCNN_OMP(simd)
                        for (Index o = 0; o < out_; ++o) y_rows[n * out_ + o] += b[o];
            });
            return output_;
        } else if (kOnGemm && N >= 1 && N <= kLinearFewRows) {
            forward_few_rows(x, w);
        } else {
            transposed_.resize(Shape{in_ * N + out_ * N});
            T* xt = transposed_.data();
            T* yt = xt + in_ * N;
            transpose(x.data(), N, in_, xt);                                  // x^T [in, N]
            gemm_rows(out_, N, in_, w.data(), in_, xt, N, yt, N);             // y^T = W x^T [out, N]
            transpose(yt, out_, N, output_.data());
        }
        if (has_bias_) y.rowwise() += (mask_.active() ? bias_eff_ : bias_).vector().transpose();
        return output_;
    }

    const Tensor<T>& backward(const Tensor<T>& dy) override {
        if (dy.shape() != output_.shape())
            detail::shape_error(name() + " backward", "gradient of shape " + output_.shape().str(), dy.shape());
        if (input_.shape() != Shape{dy.dim(0), in_}) detail::no_backward_state(name());
        auto g = dy.matrix();
        const Index N = dy.dim(0);
        if (!kOnGemm) matmul_rows(grad_weight_.matrix(), g.transpose(), input_.matrix());
        else {
            transposed_.resize(Shape{out_, N});
            parallel_transpose(dy.data(), N, out_, transposed_.data());                                        // dy^T [out, N]
            gemm_rows(out_, in_, N, transposed_.data(), N, input_.data(), in_, grad_weight_.data(), in_);  // dW = dy^T x
        }
        if (has_bias_) grad_bias_.vector().noalias() = g.colwise().sum().transpose();
        if (mask_.active()) mask_.finish_gradients(weight_.data(), has_bias_ ? bias_.data() : nullptr, in_, grad_weight_.data(), grad_bias_.data());
        if (!this->input_grad_) {
            grad_input_.resize(Shape{0});
            return grad_input_;
        }
        grad_input_.resize(input_.shape());
        input_gradient(dy);
        return grad_input_;
    }

    /// dx = dy * W alone (needs only the weights, so it also works after a forward with gradients disabled).
    const Tensor<T>& backward_input(const Tensor<T>& dy) override {
        if (dy.shape() != output_.shape())
            detail::shape_error(name() + " backward_input", "gradient of shape " + output_.shape().str(), dy.shape());
        grad_input_.resize(Shape{dy.dim(0), in_});
        input_gradient(dy);
        return grad_input_;
    }

    std::vector<Parameter<T>> parameters() override {
        std::vector<Parameter<T>> p{{"weight", &weight_, &grad_weight_}};
        if (has_bias_) p.push_back({"bias", &bias_, &grad_bias_});
        return p;
    }

    OutputMask<T>* output_mask() override { return &mask_; }

    Tensor<T>& weight() { return weight_; }
    Tensor<T>& bias() { return bias_; }
    const Tensor<T>& grad_weight() const { return grad_weight_; }
    const Tensor<T>& grad_bias() const { return grad_bias_; }
    Index in_features() const { return in_; }
    Index out_features() const { return out_; }
    bool has_bias() const { return has_bias_; }

    /// Whether the products run on gemm() (float with AVX-512; see the file's header), where a row's output does
    /// not depend on the batch it came in; otherwise on Eigen.
    static constexpr bool on_gemm() { return kOnGemm; }

private:
    // The weights forward multiplies by: weight_, or with a mask, diag(a) W (and c * b into bias_eff_).
    const Tensor<T>& effective_weight() {
        if (!mask_.active()) return weight_;
        weight_eff_.resize(weight_.shape());
        bias_eff_.resize(bias_.shape());
        mask_.apply(weight_.data(), has_bias_ ? bias_.data() : nullptr, in_, weight_eff_.data(), bias_eff_.data());
        return weight_eff_;
    }

    // grad_input_ [N, in] = dy [N, out] * W (diag(a) W with a mask, as of the last forward).
    void input_gradient(const Tensor<T>& dy) {
        const Tensor<T>& w = mask_.active() ? weight_eff_ : weight_;
        if (kOnGemm) gemm_rows(dy.dim(0), in_, out_, dy.data(), out_, w.data(), in_, grad_input_.data(), in_);
        else matmul_rows(grad_input_.matrix(), dy.matrix(), w.matrix());
    }

#if defined(EIGENCNN_GEMM_KERNEL) && defined(__AVX512F__)
    static constexpr bool kOnGemm = std::is_same_v<T, float>;  // see the file's header
#else
    static constexpr bool kOnGemm = false;
#endif
    static constexpr Index kCopyWeightRows = 64;  // forward: from this batch size on, copy W^T rather than x^T
    // forward (on gemm()'s side): batches of at most kLinearFewRows rows read W in place, 16 x 16 blocks
    // transposed in registers (linear_few_rows, kernels/matmul.hpp); the same values as the other two paths
    void forward_few_rows(const Tensor<T>& x, const Tensor<T>& w) {
#if defined(EIGENCNN_GEMM_KERNEL) && defined(__AVX512F__)
        if constexpr (std::is_same_v<T, float>) linear_few_rows(x.dim(0), in_, out_, x.data(), w.data(), output_.data());
#endif
        (void)x, (void)w;
    }

    Index in_, out_;
    bool has_bias_;
    OutputMask<T> mask_;
    Tensor<T> weight_, bias_, grad_weight_, grad_bias_;
    Tensor<T> weight_eff_, bias_eff_;  // with a mask: diag(a) W, c * b (as of the last forward)
    Tensor<T> input_, output_, grad_input_;
    Tensor<T> transposed_;             // scratch (float, AVX-512): W^T [in, out] or x^T, y^T in forward; dy^T [out, N] in backward
};

EIGENCNN_REGISTER_LAYER(Linear)

}  // namespace eigencnn
