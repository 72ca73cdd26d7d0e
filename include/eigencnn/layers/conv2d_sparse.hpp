// eigencnn/layers/conv2d_sparse.hpp
//
// Conv2d::backward_sparse, the backward of a convolution whose output
// gradient is nonzero only at known positions: a following max-pool's
// winners (see the declaration in conv2d.hpp and model/conv_pool.hpp).
// Included by conv2d.hpp; kept apart because it is long.
//
// For image n and each nonzero g = dy[n, o, i, j], with (h0, w0) = (i*s - p, j*s - p):
//   dW[o, c, a, b] += g * x[n, c, h0 + a, w0 + b]      db[o] += g
//   dx[n, c, h0 + a, w0 + b] += g * W[o, c, a, b]
// x_n and dx_n are held channel-last, xs [H, W, C], so that row a of the
// patch at (h0, w0) is K*C contiguous values starting at (h0 + a)*W*C + w0*C;
// W likewise as [OC, K, K, C]. Patches wholly inside the image go through
// blocked loops (dW[o] summed over the patches in registers, kBlock values
// at a time, when K*C is a multiple of kBlock); the others, row by row.
#pragma once

namespace eigencnn {

template <typename T>
template <typename Entries>
const Tensor<T>& Conv2d<T>::backward_sparse(Index N, Index Q, Entries&& entries) {
    if (!has_input_) detail::no_backward_state(name());
    check_batch(N);
    const Index C = in_, K = k_, H = in_shape_[2], W = in_shape_[3], OW = out_shape_[3], HW = H * W;
    const Index KKC = K * K * C, stride = (KKC + 1) * out_;  // per chunk: dW [OC, K, K, C], then db [OC]
    const Index chunks = (N + kChunk - 1) / kChunk;
    partial_.resize(Shape{chunks, stride});
    const bool want_dx = this->input_grad_;
    grad_input_.resize(want_dx ? in_shape_ : Shape{0});
    weight_t_.resize(Shape{out_, K, K, C});  // W channel-last
    for (Index o = 0; o < out_; ++o)
        for (Index c = 0; c < C; ++c)
            for (Index ab = 0; ab < K * K; ++ab) weight_t_.data()[(o * K * K + ab) * C + c] = weight_.data()[(o * C + c) * K * K + ab];
    const Index scratch = 2 * HW * C + out_ * Q + Q;
    col_.resize(Shape{num_threads(), scratch});  // per thread: x_n and dx_n channel-last, val, gs
    positions_.resize(static_cast<std::size_t>(num_threads() * (out_ * Q + Q)));  // per thread: pos, at
    const bool blocked = (K * C) % kBlock == 0;
    block_offset_.resize(blocked ? static_cast<std::size_t>(KKC / kBlock) : 0);  // (a, b, c) -> (a*W + b)*C
    for (std::size_t j = 0; j < block_offset_.size(); ++j) {
        const Index k = static_cast<Index>(j) * kBlock;
        block_offset_[j] = k / (K * C) * W * C + k % (K * C);
    }
    origin_.resize(static_cast<std::size_t>(2 * out_shape_[2] * OW));  // output position -> top-left input row, column
    for (Index p = 0; p < out_shape_[2] * OW; ++p) {
        origin_[2 * p] = p / OW * stride_ - pad_;
        origin_[2 * p + 1] = p % OW * stride_ - pad_;
    }
#pragma omp parallel
    {
        T* xs = col_.data() + thread_index() * scratch;
        T* dxs = xs + HW * C;
        T* val = dxs + HW * C;
        T* gs = val + out_ * Q;
        std::int32_t* pos = positions_.data() + thread_index() * (out_ * Q + Q);
        std::int32_t* at = pos + out_ * Q;
#pragma omp for schedule(static)
        for (Index ch = 0; ch < chunks; ++ch) {
            T* part = partial_.data() + ch * stride;
            std::fill(part, part + stride, T(0));
            for (Index n = ch * kChunk; n < std::min(N, (ch + 1) * kChunk); ++n) {
                entries(n, pos, val);
                MatMap(xs, HW, C) = ConstMatMap(input_.data() + n * C * HW, C, HW).transpose();
                if (want_dx) std::fill(dxs, dxs + HW * C, T(0));
                for (Index o = 0; o < out_; ++o) {
                    T* dw = part + o * KKC;
                    const T* w = weight_t_.data() + o * KKC;
                    T db = 0;
                    Index m = 0;  // patches wholly inside the image, for the blocked loops below
                    for (Index q = 0; q < Q; ++q) {
                        const T g = val[o * Q + q];
                        if (g == T(0)) continue;
                        db += g;
                        const Index h0 = origin_[2 * pos[o * Q + q]], w0 = origin_[2 * pos[o * Q + q] + 1];
                        if (blocked && h0 >= 0 && w0 >= 0 && h0 + K <= H && w0 + K <= W) {
                            gs[m] = g;
                            at[m++] = (h0 * W + w0) * C;
                            continue;
                        }
                        const Index b0 = std::max<Index>(0, -w0), len = (std::min(K, W - w0) - b0) * C;
                        for (Index a = std::max<Index>(0, -h0); a < std::min(K, H - h0); ++a) {
                            const Index i = ((h0 + a) * W + w0 + b0) * C, k = (a * K + b0) * C;
#pragma omp simd
                            for (Index t = 0; t < len; ++t) dw[k + t] += g * xs[i + t];
                            if (want_dx)
#pragma omp simd
                                for (Index t = 0; t < len; ++t) dxs[i + t] += g * w[k + t];
                        }
                    }
                    part[out_ * KKC + o] += db;
                    if (m == 0) continue;
                    // dW[o] in blocks of kBlock values (a block never straddles two kernel rows, as
                    // kBlock divides K*C), four at a time, summed over the patches in registers.
                    Index k0 = 0;
                    for (; k0 + 4 * kBlock <= KKC; k0 += 4 * kBlock) sparse_blocks<4>(k0, m, gs, at, xs, dw, block_offset_.data());
                    for (; k0 < KKC; k0 += kBlock) sparse_blocks<1>(k0, m, gs, at, xs, dw, block_offset_.data());
                    if (!want_dx) continue;
                    // patch by patch: overlapping patches then update the same values far apart in time
                    for (Index e = 0; e < m; ++e) {
                        T* d = dxs + at[e];
                        const T g = gs[e];
                        for (Index k = 0; k < KKC; k += kBlock) {
                            T* dk = d + block_offset_[k / kBlock];
#pragma omp simd
                            for (Index l = 0; l < kBlock; ++l) dk[l] += g * w[k + l];
                        }
                    }
                }
                if (!want_dx) continue;
                MatMap(grad_input_.data() + n * C * HW, C, HW) = ConstMatMap(dxs, HW, C).transpose();
            }
        }
    }
    // Sum the chunks in order, then back to [OC, C, K, K].
    grad_weight_.set_zero();
    grad_bias_.set_zero();
    if (chunks == 0) return grad_input_;
    MatMap total(partial_.data(), 1, stride);
    for (Index ch = 1; ch < chunks; ++ch) total += ConstMatMap(partial_.data() + ch * stride, 1, stride);
    const T* sum = partial_.data();
    for (Index o = 0; o < out_; ++o) {
        for (Index c = 0; c < C; ++c)
            for (Index ab = 0; ab < K * K; ++ab) grad_weight_.data()[(o * C + c) * K * K + ab] = sum[(o * K * K + ab) * C + c];
        grad_bias_.data()[o] = sum[out_ * KKC + o];
    }
    return grad_input_;
}

template <typename T>
template <int NB>
void Conv2d<T>::sparse_blocks(Index k0, Index m, const T* gs, const std::int32_t* at, const T* xs, T* dw, const Index* block_offset) {
    const Index* off = block_offset + k0 / kBlock;
#ifdef EIGENCNN_GEMM_KERNEL
    if constexpr (std::is_same_v<T, float>) {  // explicit vectors: the compiler splits the plain loops below badly
        using detail::gemm_vec;
        constexpr int V = kBlock / detail::kGemmLanes;  // vectors per block
        gemm_vec acc[NB * V];
#pragma GCC unroll 16
        for (int v = 0; v < NB * V; ++v) acc[v] = detail::gemm_load(dw + k0 + v * detail::kGemmLanes);
        for (Index e = 0; e < m; ++e) {
            const float g = gs[e];
            const float* x = xs + at[e];
#pragma GCC unroll 4
            for (int j = 0; j < NB; ++j)
#pragma GCC unroll 4
                for (int v = 0; v < V; ++v) acc[j * V + v] += g * detail::gemm_load(x + off[j] + v * detail::kGemmLanes);
        }
#pragma GCC unroll 16
        for (int v = 0; v < NB * V; ++v) detail::gemm_store(dw + k0 + v * detail::kGemmLanes, acc[v]);
        return;
    }
#endif
    T acc[NB * kBlock];
#pragma GCC unroll 64
    for (Index l = 0; l < NB * kBlock; ++l) acc[l] = dw[k0 + l];
    for (Index e = 0; e < m; ++e) {
        const T g = gs[e];
        const T* x = xs + at[e];
#pragma GCC unroll 4
        for (int j = 0; j < NB; ++j)
#pragma GCC unroll 16
            for (Index l = 0; l < kBlock; ++l) acc[j * kBlock + l] += g * x[off[j] + l];
    }
#pragma GCC unroll 64
    for (Index l = 0; l < NB * kBlock; ++l) dw[k0 + l] = acc[l];
}

}  // namespace eigencnn
