// SPDX-License-Identifier: MIT
// eigencnn/kernels/im2col.hpp
//
// Im2col: unfold one image into the columns a convolution multiplies, and
// fold their gradient back.
//
//   image [C, H, W]  ->  col [C*K*K, OH*OW]
//   col[(c, a, b), (i, j)] = image[c, i*s + a - p, j*s + b - p]   (0 outside the image)
//   fold:   dimage[c, h, w] = sum of dcol[(c, a, b), (i, j)] over h = i*s + a - p, w = j*s + b - p   (the adjoint)
//
// Each (c, a, b) row of col is OH segments of OW values; in the seed model
// the segments are 8 or 24 floats, so the per-segment overhead is the whole
// cost. configure() works out once which rows and columns fall inside the
// image for every kernel offset, and, for float with AVX-512 and stride 1,
// the lane masks of each 16-float chunk of a segment: each segment is then
// one masked load and one masked store per chunk (lanes outside the mask
// are neither read nor written), with no loop prologue, epilogue or
// bounds test. Before this, im2col took about 40% of Conv2d's forward.
#pragma once

#include "../core/tensor.hpp"

#include <algorithm>
#include <cstdint>
#include <type_traits>
#include <utility>
#include <vector>

#if defined(__AVX512F__)
#include <immintrin.h>
#endif

namespace eigencnn {

template <typename T>
class Im2col {
public:
    /// Geometry of a K x K convolution with equal stride and zero padding on both axes.
    void configure(Index C, Index H, Index W, Index K, Index stride, Index pad) {
        C_ = C, H_ = H, W_ = W, K_ = K, s_ = stride, p_ = pad;
        OH_ = (H + 2 * pad - K) / stride + 1;
        OW_ = (W + 2 * pad - K) / stride + 1;
        rows_ = inside(H, OH_);
        cols_ = inside(W, OW_);
        chunks_ = (OW_ + kLanes - 1) / kLanes;
        in_mask_.assign(static_cast<std::size_t>(K * chunks_), 0);
        out_mask_.assign(static_cast<std::size_t>(chunks_), 0);
        for (Index q = 0; q < chunks_; ++q) {
            out_mask_[static_cast<std::size_t>(q)] = lane_mask(0, OW_, q);
            for (Index b = 0; b < K; ++b) in_mask_[static_cast<std::size_t>(b * chunks_ + q)] = lane_mask(cols_[static_cast<std::size_t>(b)].first, cols_[static_cast<std::size_t>(b)].second, q);
        }
        // Several output rows per vector (see unfold_packed).
        group_ = 0;
        if (s_ == 1 && p_ == 0 && OW_ <= kLanes / 2 && OH_ > 0) {
            const Index g = std::min(kLanes / OW_, OH_);
            if ((g - 1) * W_ + OW_ + K_ - 1 <= 2 * kLanes) group_ = g;
        }
        // fold, stride 1: input column w takes output column w - b + p of kernel column b.
        wchunks_ = (W + kLanes - 1) / kLanes;
        width_mask_.assign(static_cast<std::size_t>(wchunks_), 0);
        fold_mask_.assign(static_cast<std::size_t>(K * wchunks_), 0);
        for (Index q = 0; q < wchunks_; ++q) {
            width_mask_[static_cast<std::size_t>(q)] = lane_mask(0, W, q);
            for (Index b = 0; b < K; ++b) fold_mask_[static_cast<std::size_t>(b * wchunks_ + q)] = lane_mask(b - pad, b - pad + OW_, q) & width_mask_[static_cast<std::size_t>(q)];
        }
    }

    Index rows() const { return C_ * K_ * K_; }  ///< C*K*K
    Index cols() const { return OH_ * OW_; }     ///< OH*OW
    Index out_height() const { return OH_; }
    Index out_width() const { return OW_; }

    /// col [C*K*K, OH*OW] from image [C, H, W]; with a channel range [c0, c1),
    /// only the rows (c, a, b) of those channels (several threads can then
    /// share one image's unfold, as Conv2d's backward does for batches smaller
    /// than the thread count).
    void unfold(const T* image, T* col, Index c0 = 0, Index c1 = -1) const {
        const Index P = OH_ * OW_;
        if (c1 < 0) c1 = C_;
#if defined(__AVX512F__)
        if constexpr (std::is_same_v<T, float>)
            if (group_) {
                unfold_packed(image, col, c0, c1);
                return;
            }
#endif
        for (Index c = c0; c < c1; ++c) {
            const T* plane = image + c * H_ * W_;
            for (Index a = 0; a < K_; ++a)
                for (Index b = 0; b < K_; ++b) {
                    T* dst = col + ((c * K_ + a) * K_ + b) * P;
                    const auto [i0, i1] = rows_[static_cast<std::size_t>(a)];
                    const auto [j0, j1] = cols_[static_cast<std::size_t>(b)];
                    std::fill(dst, dst + i0 * OW_, T(0));
                    std::fill(dst + i1 * OW_, dst + P, T(0));
                    // Offsets, not pointers: with padding, the row and column before the first
                    // inside one can lie before the image.
                    const Index first = (i0 * s_ + a - p_) * W_ + b - p_;
#if defined(__AVX512F__)
                    if constexpr (std::is_same_v<T, float>)
                        if (s_ == 1 && j0 < j1) {
                            const std::uint16_t* in = in_mask_.data() + b * chunks_;
                            for (Index i = i0; i < i1; ++i) {
                                const T* src = plane + first + (i - i0) * W_;
                                T* row = dst + i * OW_;
                                for (Index q = 0; q < chunks_; ++q)
                                    _mm512_mask_storeu_ps(row + q * kLanes, out_mask_[static_cast<std::size_t>(q)],
                                                          _mm512_maskz_loadu_ps(in[q], src + q * kLanes));
                            }
                            continue;
                        }
#endif
                    for (Index i = i0; i < i1; ++i) {
                        const Index base = first + (i - i0) * s_ * W_;
                        T* row = dst + i * OW_;
                        for (Index j = 0; j < j0; ++j) row[j] = T(0);
                        for (Index j = j0; j < j1; ++j) row[j] = plane[base + j * s_];
                        for (Index j = j1; j < OW_; ++j) row[j] = T(0);
                    }
                }
        }
    }

    /// dimage [C, H, W] = fold of dcol [C*K*K, OH*OW] (overwritten); with a
    /// channel range [c0, c1), only those channels' planes (from their rows of dcol).
    void fold(const T* dcol, T* dimage, Index c0 = 0, Index c1 = -1) const {
        const Index P = OH_ * OW_;
        if (c1 < 0) c1 = C_;
#if defined(__AVX512F__)
        // Gather instead of scatter: each 16-wide chunk of an input row sums its
        // K*K contributions in a register and is stored once. Scattering
        // (dimage += shifted dcol segments) stores and reloads overlapping,
        // misaligned ranges, which stalls on store forwarding: it took a third
        // of Conv2d's backward.
        if constexpr (std::is_same_v<T, float>)
            if (s_ == 1) {
                for (Index c = c0; c < c1; ++c)
                    for (Index h = 0; h < H_; ++h)
                        for (Index q = 0; q < wchunks_; ++q) {
                            __m512 acc = _mm512_setzero_ps();
                            for (Index a = 0; a < K_; ++a) {
                                const Index i = h - a + p_;  // the output row that reads input row h at kernel row a
                                if (i < 0 || i >= OH_) continue;
                                for (Index b = 0; b < K_; ++b) {
                                    // lane l (input column w = 16q + l) takes output column j = w - b + p
                                    const Index at = ((c * K_ + a) * K_ + b) * P + i * OW_ + q * kLanes - b + p_;
                                    acc = _mm512_add_ps(acc, _mm512_maskz_loadu_ps(fold_mask_[static_cast<std::size_t>(b * wchunks_ + q)], dcol + at));
                                }
                            }
                            _mm512_mask_storeu_ps(dimage + (c * H_ + h) * W_ + q * kLanes, width_mask_[static_cast<std::size_t>(q)], acc);
                        }
                return;
            }
#endif
        std::fill(dimage + c0 * H_ * W_, dimage + c1 * H_ * W_, T(0));
        for (Index c = c0; c < c1; ++c) {
            T* plane = dimage + c * H_ * W_;
            for (Index a = 0; a < K_; ++a)
                for (Index b = 0; b < K_; ++b) {
                    const T* src = dcol + ((c * K_ + a) * K_ + b) * P;
                    const auto [i0, i1] = rows_[static_cast<std::size_t>(a)];
                    const auto [j0, j1] = cols_[static_cast<std::size_t>(b)];
                    const Index first = (i0 * s_ + a - p_) * W_ + b - p_;
                    for (Index i = i0; i < i1; ++i) {
                        const Index base = first + (i - i0) * s_ * W_;
                        const T* s = src + i * OW_;
                        for (Index j = j0; j < j1; ++j) plane[base + j * s_] += s[j];
                    }
                }
        }
    }

private:
    static constexpr Index kLanes = 16;

#if defined(__AVX512F__)
    // Stride 1, no padding, rows of at most 8 outputs (conv2 of the seed
    // model: 8): a vector holds g = group_ output rows i..i+g-1 of col row
    // (c, a, b), lane l = r*OW + j being image[c, a + i + r, b + j]. Those
    // come from one window of at most 32 floats starting at image[c, a + i, 0],
    // loaded once (two masked loads) for all K values of b; each b is then one
    // two-source permute and one store, instead of g masked copies of OW floats.
    void unfold_packed(const float* image, float* col, Index c0, Index c1) const {
        const Index P = OH_ * OW_, g = group_;
        alignas(64) std::int32_t lane[kLanes];
        for (Index l = 0; l < kLanes; ++l) lane[l] = static_cast<std::int32_t>(l < g * OW_ ? (l / OW_) * W_ + l % OW_ : 0);
        const __m512i idx0 = _mm512_load_si512(lane), one = _mm512_set1_epi32(1);
        for (Index i = 0; i < OH_; i += g) {
            const Index rows = std::min(g, OH_ - i);
            const Index span = (rows - 1) * W_ + OW_ + K_ - 1;  // floats of the window, <= 32
            const __mmask16 m_lo = static_cast<__mmask16>(span >= kLanes ? 0xFFFF : (1u << span) - 1);
            const __mmask16 m_hi = static_cast<__mmask16>(span <= kLanes ? 0 : (1u << (span - kLanes)) - 1);
            const __mmask16 m_out = static_cast<__mmask16>(rows * OW_ >= kLanes ? 0xFFFF : (1u << (rows * OW_)) - 1);
            for (Index c = c0; c < c1; ++c)
                for (Index a = 0; a < K_; ++a) {
                    const float* src = image + (c * H_ + a + i) * W_;
                    const __m512 lo = _mm512_maskz_loadu_ps(m_lo, src), hi = _mm512_maskz_loadu_ps(m_hi, src + kLanes);
                    float* dst = col + (c * K_ + a) * K_ * P + i * OW_;
                    __m512i idx = idx0;
                    for (Index b = 0; b < K_; ++b, dst += P, idx = _mm512_add_epi32(idx, one))
                        _mm512_mask_storeu_ps(dst, m_out, _mm512_permutex2var_ps(lo, idx, hi));
                }
        }
    }
#endif

    static Index ceil_div(Index a, Index b) { return a <= 0 ? 0 : (a + b - 1) / b; }

    // For each kernel offset t < K: the outputs [o0, o1) whose input o*s + t - p lies in [0, size).
    std::vector<std::pair<Index, Index>> inside(Index size, Index out) const {
        std::vector<std::pair<Index, Index>> r(static_cast<std::size_t>(K_));
        for (Index t = 0; t < K_; ++t) {
            const Index o0 = std::min(out, ceil_div(std::max<Index>(0, p_ - t), s_));
            r[static_cast<std::size_t>(t)] = {o0, std::max(o0, std::min(out, ceil_div(size + p_ - t, s_)))};
        }
        return r;
    }

    // Bits of the lanes of chunk q (columns 16q .. 16q+15) that lie in [lo, hi).
    static std::uint16_t lane_mask(Index lo, Index hi, Index q) {
        std::uint32_t m = 0;
        for (Index l = 0; l < kLanes; ++l)
            if (q * kLanes + l >= lo && q * kLanes + l < hi) m |= 1u << l;
        return static_cast<std::uint16_t>(m);
    }

    Index C_ = 0, H_ = 0, W_ = 0, K_ = 1, s_ = 1, p_ = 0, OH_ = 0, OW_ = 0, chunks_ = 0, wchunks_ = 0;
    Index group_ = 0;  // output rows per vector in unfold_packed (0: not used)
    std::vector<std::pair<Index, Index>> rows_, cols_;  // per kernel row a / column b: outputs inside the image
    std::vector<std::uint16_t> in_mask_, out_mask_;     // per (b, chunk): lanes inside the image; per chunk: lanes < OW
    std::vector<std::uint16_t> fold_mask_, width_mask_; // per (b, input chunk): lanes with an output column; lanes < W
};

}  // namespace eigencnn
