// SPDX-License-Identifier: MIT
// eigencnn/kernels/conv2d_input_phases.hpp
//
// The input gradient of a stride-2 convolution as four stride-1 ones, one per
// phase (ph, pw) of dx's rows and columns, each run by the planes kernel
// (kernels/conv2d_direct_planes.hpp) and the four interleaved into dx.
//
// With x [C, H, W], W [OC, C, K, K], padding p, dy [OC, OH, OW]:
//   dx[c, h, w] = sum over (o, a, b) with h + p - a = 2i, w + p - b = 2j of W[o, c, a, b] dy[o, i, j]
// For h = 2u + ph, only the window rows a of parity ph + p take part (taps
// a_max, a_max - 2, ..., KA of them), at i = u + d with d = (ph + p - a) / 2:
//   dx[c, 2u + ph, 2v + pw] = sum_{o, ta, tb} Wph[c, (o, ta, tb)] dyQ[o, Q + d_row + u + ta, Q + d_col + v + tb]
//   Wph[c, (o, ta, tb)] = W[o, c, a_max - 2 ta, b_max - 2 tb],   d_row = (ph + p - a_max) / 2
// a stride-1 KA x KB "forward" of dy padded by Q on every side (dyQ) into the
// phase's plane [C, H / 2, W / 2]. 3x3: windows of 1 or 2 taps a side; 5x5:
// 2 or 3; 1x1: one phase of 1x1, the others zero.
//
// Each dx value is one phase's sum over (o, ta, tb) in order from zero (plus
// the kernel's bias of 0): the same gradient as im2col + col2im's within
// rounding, and the same on any number of threads. It applies where the phase
// planes' rows come in whole 16s: H even, W a multiple of 32 (float with AVX-512).
#pragma once

#include "conv2d_direct_planes.hpp"

#include <algorithm>
#include <type_traits>

namespace eigencnn {
namespace detail {

/// The plan of one stride-2 input gradient by phases (see above).
struct InputPhases {
    struct Phase {
        Index KA = 0, KB = 0;      ///< taps along rows and columns (0: the phase gets no gradient)
        Index a_max = 0, b_max = 0;
        Index row0 = 0, col0 = 0;  ///< where the phase's windows start in dyQ: Q + d_row, Q + d_col
        Index weights = 0;         ///< offset of its Wph [C, OC*KA*KB] in the phase weights
        DirectForwardPlanes kernel = nullptr;
    };
    bool applies = false;
    Index C = 0, OC = 0, K = 0, H = 0, W = 0, OH = 0, OW = 0, Q = 0;
    Phase phase[2][2];
    Index weights_size = 0;  ///< of all four Wph
    Index Hq() const { return OH + 2 * Q; }
    Index Wq() const { return OW + 2 * Q; }
    Index padded_size() const { return OC * Hq() * Wq(); }
    Index plane() const { return (H / 2) * (W / 2); }  ///< one phase plane of one channel
};

/// The plan for a stride-2 conv with this geometry; applies == false where it does not apply.
inline InputPhases input_phases(Index C, Index OC, Index K, Index pad, Index H, Index W, Index OH, Index OW) {
    InputPhases plan;
    plan.C = C, plan.OC = OC, plan.K = K, plan.H = H, plan.W = W, plan.OH = OH, plan.OW = OW;
    // dx's rows of whole 32s: phase rows of whole 16s, the planes kernel's runs (AVX-512)
    if (H % 2 != 0 || W % 32 != 0 || K > 5 || C <= 0 || OC <= 0 || OH <= 0 || OW <= 0) return plan;
    // taps of parity `ph` along one side: the largest window index of parity ph + p, how many, the first offset d
    auto taps = [&](Index ph, Index& top, Index& count, Index& d) {
        top = (K - 1 - ph - pad) % 2 == 0 ? K - 1 : K - 2;
        count = top >= 0 ? top / 2 + 1 : 0;
        d = count ? (ph + pad - top) / 2 : 0;  // exact: ph + pad - top is even
    };
    // dyQ's padding: every phase's windows inside it
    Index Q = 0, d_row[2] = {}, d_col[2] = {};
    for (Index ph = 0; ph < 2; ++ph) {
        Index top, count;
        taps(ph, top, count, d_row[ph]);
        if (count) Q = std::max({Q, -d_row[ph], d_row[ph] + H / 2 + count - 1 - OH});
        taps(ph, top, count, d_col[ph]);
        if (count) Q = std::max({Q, -d_col[ph], d_col[ph] + W / 2 + count - 1 - OW});
    }
    plan.Q = Q;
    for (Index ph = 0; ph < 2; ++ph)
        for (Index pw = 0; pw < 2; ++pw) {
            InputPhases::Phase& f = plan.phase[ph][pw];
            Index d;
            taps(ph, f.a_max, f.KA, d);
            taps(pw, f.b_max, f.KB, d);
            if (!f.KA || !f.KB) {
                f.KA = f.KB = 0;
                continue;
            }
            f.row0 = Q + d_row[ph];
            f.col0 = Q + d_col[pw];
            f.weights = plan.weights_size;
            plan.weights_size += C * OC * f.KA * f.KB;
            f.kernel = direct_forward_planes_window_kernel(f.KA, f.KB);
            if (!f.kernel) return plan;  // no AVX-512
        }
    plan.applies = true;
    return plan;
}

// One phase's Wph rows [c0, c1) (KA x KB taps, their values' offsets in a window of w given): blocks of 16
// input channels, for each output channel the block's 16 windows of w (16 K K contiguous values) in turn.
template <int KA, int KB, typename T>
void input_phase_weights_taps(const T* w, Index C, Index OC, Index KK, const Index (&from)[KA * KB], Index c0, Index c1, T* out) {
    constexpr Index kBlock = 16;
    for (Index cb = c0; cb < c1; cb += kBlock)
        for (Index o = 0; o < OC; ++o)
            for (Index c = cb; c < std::min(c1, cb + kBlock); ++c) {
                const T* window = w + (o * C + c) * KK;
                T* to = out + (c * OC + o) * KA * KB;
                for (int t = 0; t < KA * KB; ++t) to[t] = window[from[t]];
            }
}

/// Rows [c0, c1) of every phase's Wph (see above) from w [OC, C, K, K], into out (plan.weights_size): a phase
/// at a time, its taps' count fixed at compile time (up to 3 x 3: K up to 5). Channel by channel with the
/// taps in loops of unknown length, w read at a stride of C K K values, it took 155 us on the stride-2
/// 3x3 64 -> 128, more than half of that conv's batch-1 input gradient on one thread.
template <typename T>
void input_phase_weights(const InputPhases& plan, const T* w, Index c0, Index c1, T* out) {
    const Index C = plan.C, OC = plan.OC, K = plan.K;
    for (const auto& row : plan.phase)
        for (const InputPhases::Phase& f : row) {
            if (!f.KA) continue;
            Index from[9] = {};  // tap (ta, tb): w's value (a_max - 2 ta, b_max - 2 tb) of the window
            for (Index ta = 0; ta < f.KA; ++ta)
                for (Index tb = 0; tb < f.KB; ++tb) from[ta * f.KB + tb] = (f.a_max - 2 * ta) * K + f.b_max - 2 * tb;
            T* to = out + f.weights;
            auto run = [&](auto ka, auto kb) {
                constexpr int KA = decltype(ka)::value, KB = decltype(kb)::value;
                Index taps[KA * KB];
                std::copy(from, from + KA * KB, taps);
                input_phase_weights_taps<KA, KB>(w, C, OC, K * K, taps, c0, c1, to);
            };
            using one = std::integral_constant<int, 1>;
            using two = std::integral_constant<int, 2>;
            using three = std::integral_constant<int, 3>;
            const Index shape = f.KA * 4 + f.KB;
            if (shape == 1 * 4 + 1) run(one{}, one{});
            else if (shape == 1 * 4 + 2) run(one{}, two{});
            else if (shape == 2 * 4 + 1) run(two{}, one{});
            else if (shape == 2 * 4 + 2) run(two{}, two{});
            else if (shape == 2 * 4 + 3) run(two{}, three{});
            else if (shape == 3 * 4 + 2) run(three{}, two{});
            else if (shape == 3 * 4 + 3) run(three{}, three{});
            else if (shape == 1 * 4 + 3) run(one{}, three{});
            else if (shape == 3 * 4 + 1) run(three{}, one{});
            else  // not reached (K <= 5: at most 3 x 3 taps); the same copies with the taps in loops
                for (Index o = 0; o < OC; ++o)
                    for (Index c = c0; c < c1; ++c)
                        for (Index t = 0; t < f.KA * f.KB; ++t) to[(c * OC + o) * f.KA * f.KB + t] = w[(o * C + c) * K * K + from[t]];
        }
}

/// Channels [c0, c1) of dx [C, H, W] from dyQ [OC, Hq, Wq] (dy padded by plan.Q): each phase by the planes
/// kernel into scratch [4][C, H/2, W/2], then interleaved into dx. zeros: C zeros (the kernel's bias).
inline void input_gradient_by_phases(const InputPhases& plan, const float* weights, const float* dyQ, const float* zeros, Index c0,
                                     Index c1, float* scratch, float* dx) {
    const Index Hh = plan.H / 2, Wh = plan.W / 2, plane = plan.plane(), C = plan.C;
    const float* out[2][2] = {};
    for (Index ph = 0; ph < 2; ++ph)
        for (Index pw = 0; pw < 2; ++pw) {
            const InputPhases::Phase& f = plan.phase[ph][pw];
            if (!f.KA) continue;
            float* y = scratch + (ph * 2 + pw) * C * plane;
            f.kernel(plan.OC, Hh, Wh, 0, Hh, plan.Hq(), plan.Wq(), dyQ + f.row0 * plan.Wq() + f.col0, weights + f.weights,
                     plan.OC * f.KA * f.KB, zeros, c0, c1, y);
            out[ph][pw] = y;
        }
    // dx row 2u + ph = phase (ph, 0) and (ph, 1) of row u, interleaved
    for (Index c = c0; c < c1; ++c)
        for (Index u = 0; u < Hh; ++u)
            for (Index ph = 0; ph < 2; ++ph) {
                float* row = dx + (c * plan.H + 2 * u + ph) * plan.W;
                const float* even = out[ph][0] ? out[ph][0] + c * plane + u * Wh : nullptr;
                const float* odd = out[ph][1] ? out[ph][1] + c * plane + u * Wh : nullptr;
#if defined(EIGENCNN_GEMM_KERNEL) && defined(__AVX512F__)
                const __m512i first = _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
                const __m512i second = _mm512_setr_epi32(8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
                for (Index v = 0; v < Wh; v += kGemmLanes) {  // 16 of each into 32 of dx
                    const __m512 e = even ? _mm512_loadu_ps(even + v) : _mm512_setzero_ps();
                    const __m512 o = odd ? _mm512_loadu_ps(odd + v) : _mm512_setzero_ps();
                    _mm512_storeu_ps(row + 2 * v, _mm512_permutex2var_ps(e, first, o));
                    _mm512_storeu_ps(row + 2 * v + kGemmLanes, _mm512_permutex2var_ps(e, second, o));
                }
#else
                for (Index v = 0; v < Wh; ++v) {
                    row[2 * v] = even ? even[v] : 0.0f;
                    row[2 * v + 1] = odd ? odd[v] : 0.0f;
                }
#endif
            }
}

}  // namespace detail
}  // namespace eigencnn
