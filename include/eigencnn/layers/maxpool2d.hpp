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
#pragma once

#include "../core/layer.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <type_traits>

#if defined(__AVX512F__)
#include <immintrin.h>
#endif

namespace eigencnn {

template <typename T>
class MaxPool2d final : public Layer<T> {
public:
    /// stride 0 means "equal to kernel_size".
    explicit MaxPool2d(Index kernel_size, Index stride = 0) : k_(kernel_size), stride_(stride ? stride : kernel_size) {
        if (k_ < 1 || stride_ < 1)
            throw std::invalid_argument("MaxPool2d: need kernel_size >= 1 and stride >= 0, got kernel_size=" + std::to_string(kernel_size) +
                                        ", stride=" + std::to_string(stride));
    }

    std::string name() const override {
        return "MaxPool2d(kernel_size=" + std::to_string(k_) + ", stride=" + std::to_string(stride_) + ")";
    }

    LayerSpec spec() const override { return {"MaxPool2d", {k_, stride_}}; }

    Shape output_shape(const Shape& in) const override {
        if (in.rank() != 4) detail::shape_error(name(), "[N, C, H, W]", in);
        if (in[2] < k_ || in[3] < k_) detail::shape_error(name(), "H and W of at least " + std::to_string(k_), in);
        return Shape{in[0], in[1], (in[2] - k_) / stride_ + 1, (in[3] - k_) / stride_ + 1};
    }

    const Tensor<T>& forward(const Tensor<T>& x) override {
        const Shape ys = output_shape(x.shape());
        in_shape_ = x.shape();
        const Index planes = ys[0] * ys[1], H = x.dim(2), W = x.dim(3), OH = ys[2], OW = ys[3];
        output_.resize(ys);
        has_argmax_ = this->training_;  // inference keeps no winners (less memory traffic)
        argmax_.resize(has_argmax_ ? static_cast<std::size_t>(ys.numel()) : 0);
        const T* xs = x.data();
        T* y = output_.data();
        std::int32_t* am = argmax_.data();
#pragma omp parallel for schedule(static)
        for (Index pl = 0; pl < planes; ++pl)
            pool_plane(xs + pl * H * W, H, W, y + pl * OH * OW, has_argmax_ ? am + pl * OH * OW : nullptr);
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
#pragma omp parallel for schedule(static)
        for (Index pl = 0; pl < planes; ++pl) unpool_plane(g + pl * OP, am + pl * OP, OP, dx + pl * HW, HW);
        return grad_input_;
    }

    // Per-plane kernels of forward and backward, public for fused execution (model/conv_pool.hpp).

    /// One plane: in [H, W] -> out [OH, OW], and the winners' positions in the
    /// plane into arg [OH, OW] unless arg is null.
    void pool_plane(const T* in, Index H, Index W, T* out, std::int32_t* arg) const {
        const Index OH = (H - k_) / stride_ + 1, OW = (W - k_) / stride_ + 1;
        if (k_ == 2 && stride_ == 2) {
            pool2x2(in, W, OH, OW, out, arg);
            return;
        }
        for (Index i = 0; i < OH; ++i)
            for (Index j = 0; j < OW; ++j) {
                Index best = (i * stride_) * W + j * stride_;
                T m = in[best];
                for (Index a = 0; a < k_; ++a)
                    for (Index b = 0; b < k_; ++b) {
                        const Index at = (i * stride_ + a) * W + j * stride_ + b;
                        if (wins(in[at], m)) {
                            m = in[at];
                            best = at;
                        }
                    }
                out[i * OW + j] = m;
                if (arg) arg[i * OW + j] = static_cast<std::int32_t>(best);
            }
    }

    /// One plane's gradient: dx [HW] = 0, then dx[arg[o]] += dy[o] for o < OP in order.
    static void unpool_plane(const T* dy, const std::int32_t* arg, Index OP, T* dx, Index HW) {
        std::fill(dx, dx + HW, T(0));
        for (Index o = 0; o < OP; ++o) dx[arg[o]] += dy[o];
    }

    Index kernel_size() const { return k_; }
    Index stride() const { return stride_; }

private:
    // v replaces the current maximum m: strictly greater, or the first NaN.
    static bool wins(T v, T m) { return !(v <= m) && (m == m); }

    // The common 2x2, stride 2 case. Pairs within each row first, then the
    // two rows: the result is the first maximum in row-major order, exactly
    // as the general loop. Written as selects over contiguous arrays so that
    // it vectorizes (the winner's position is random, so branches mispredict).
    static void pool2x2(const T* in, Index W, Index OH, Index OW, T* out, std::int32_t* arg) {
#if defined(__AVX512F__)
        if constexpr (std::is_same_v<T, float>) {
            pool2x2_avx512(in, W, OH, OW, out, arg);
            return;
        }
#endif
        for (Index i = 0; i < OH; ++i) {
            const T* r0 = in + 2 * i * W;
            const T* r1 = r0 + W;
            const std::int32_t row0 = static_cast<std::int32_t>(2 * i * W), row1 = static_cast<std::int32_t>((2 * i + 1) * W);
#pragma omp simd
            for (Index j = 0; j < OW; ++j) {
                const T a = r0[2 * j], b = r0[2 * j + 1], c = r1[2 * j], d = r1[2 * j + 1];
                const std::int32_t col = static_cast<std::int32_t>(2 * j);
                const bool wb = wins(b, a), wd = wins(d, c);
                const T top = wb ? b : a, bottom = wd ? d : c;
                const std::int32_t itop = row0 + col + wb, ibottom = row1 + col + wd;
                const bool wbot = wins(bottom, top);
                out[i * OW + j] = wbot ? bottom : top;
                if (arg) arg[i * OW + j] = wbot ? ibottom : itop;
            }
        }
    }

#if defined(__AVX512F__)
    // The same selects, 16 outputs at a time: two masked loads per input row
    // (32 floats) split into even and odd columns, so the window's four
    // candidates a, b / c, d sit in the same lane. The plain loop above reads
    // with stride 2, which the compiler does not vectorize well.
    static void pool2x2_avx512(const float* in, Index W, Index OH, Index OW, float* out, std::int32_t* arg) {
        const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
        const __m512i odd = _mm512_add_epi32(even, _mm512_set1_epi32(1));
        const __m512i one = _mm512_set1_epi32(1);
        // wins(v, m): v is not <= m (or is NaN), and m is not NaN
        const auto wins = [](__m512 v, __m512 m) {
            return static_cast<__mmask16>(_mm512_cmp_ps_mask(v, m, _CMP_NLE_UQ) & _mm512_cmp_ps_mask(m, m, _CMP_ORD_Q));
        };
        for (Index i = 0; i < OH; ++i) {
            const float* r0 = in + 2 * i * W;
            const float* r1 = r0 + W;
            for (Index j = 0; j < OW; j += 16) {
                const Index n = std::min<Index>(16, OW - j);  // outputs in this chunk, 2n inputs per row
                const __mmask16 m_out = static_cast<__mmask16>(n == 16 ? 0xFFFF : (1u << n) - 1);
                const __mmask16 m_lo = static_cast<__mmask16>(n >= 8 ? 0xFFFF : (1u << (2 * n)) - 1);
                const __mmask16 m_hi = static_cast<__mmask16>(n <= 8 ? 0 : n == 16 ? 0xFFFF : (1u << (2 * n - 16)) - 1);
                const __m512 t_lo = _mm512_maskz_loadu_ps(m_lo, r0 + 2 * j), t_hi = _mm512_maskz_loadu_ps(m_hi, r0 + 2 * j + 16);
                const __m512 b_lo = _mm512_maskz_loadu_ps(m_lo, r1 + 2 * j), b_hi = _mm512_maskz_loadu_ps(m_hi, r1 + 2 * j + 16);
                const __m512 a = _mm512_permutex2var_ps(t_lo, even, t_hi), b = _mm512_permutex2var_ps(t_lo, odd, t_hi);
                const __m512 c = _mm512_permutex2var_ps(b_lo, even, b_hi), d = _mm512_permutex2var_ps(b_lo, odd, b_hi);
                const __mmask16 wb = wins(b, a), wd = wins(d, c);
                const __m512 top = _mm512_mask_blend_ps(wb, a, b), bottom = _mm512_mask_blend_ps(wd, c, d);
                const __mmask16 wbot = wins(bottom, top);
                // positions: row*W + 2*(j + lane) (+1 for the odd column)
                const __m512i col = _mm512_add_epi32(_mm512_set1_epi32(static_cast<std::int32_t>(2 * j)), even);
                const __m512i top_at = _mm512_add_epi32(col, _mm512_set1_epi32(static_cast<std::int32_t>(2 * i * W)));
                const __m512i bottom_at = _mm512_add_epi32(col, _mm512_set1_epi32(static_cast<std::int32_t>((2 * i + 1) * W)));
                const __m512i itop = _mm512_mask_add_epi32(top_at, wb, top_at, one);
                const __m512i ibot = _mm512_mask_add_epi32(bottom_at, wd, bottom_at, one);
                _mm512_mask_storeu_ps(out + i * OW + j, m_out, _mm512_mask_blend_ps(wbot, top, bottom));
                if (arg) _mm512_mask_storeu_epi32(arg + i * OW + j, m_out, _mm512_mask_blend_epi32(wbot, itop, ibot));
            }
        }
    }
#endif

    Index k_, stride_;
    Shape in_shape_;
    Tensor<T> output_, grad_input_;
    std::vector<std::int32_t> argmax_;  // index within the input plane, per output element (training mode only)
    bool has_argmax_ = false;
};

}  // namespace eigencnn
