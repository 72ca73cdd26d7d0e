// SPDX-License-Identifier: MIT
// eigencnn/kernels/conv2d_winograd.hpp
//
// 3x3 stride-1 convolution by Winograd's minimal filtering F(2x2, 3x3)
// (Lavin and Gray, "Fast Algorithms for Convolutional Neural Networks", CVPR
// 2016): each 2x2 tile of outputs from a 4x4 tile of the padded input with 16
// multiplies per input channel instead of 36, the products batched as 16
// matrix products over the channels (one per element xi of the 4x4 transform):
//
//   U[xi] = (G g G^T)[xi]          g = W[o, c] (3x3), G 4x3          U  [16, C, OC]
//   V[xi] = (B^T d B)[xi]          d = x_pad[c, 2ti .. 2ti+3, 2tj .. 2tj+3]    V  [16, T, C]
//   M[xi] = V[xi] U[xi]            (gemm(): T x C times C x OC)       M  [16, T, OC]
//   y[o, 2ti + u, 2tj + v] = (A^T m A)[u, v] + bias[o],  m = M[., t, o] (4x4)
//
//       | 1    0    0  |        | 1  0 -1  0 |        | 1  1  1  0 |
//   G = | 1/2  1/2  1/2|  B^T = | 0  1  1  0 |  A^T = | 0  1 -1 -1 |
//       | 1/2 -1/2  1/2|        | 0 -1  1  0 |
//       | 0    0    1  |        | 0  1  0 -1 |
//
// T = tiles (ceil(OH/2) x ceil(OW/2); the input is zero-padded to whole tiles
// and outputs past OH, OW dropped). Everything is channel-last so the
// transforms are vector adds over 16 channels (kGemmLanes) of one tile: the
// image is transposed in, y^T [P, OC] transposed out. The tiles go a group
// at a time (kWinogradGroup), so that V and M of a group stay in L2.
//
// The multiply-adds fall from 9 to 4 per output and input channel (2.25x);
// the transforms are adds. The input gradient of a stride-1 3x3 conv is the
// same operation on dy with the window flipped and W transposed (padding
// 2 - p), winograd_weights(..., flipped = true); the weight gradient sums
// V^T dM over the tiles in the transformed domain (below). The sums are in another order
// than the direct kernels' and the transforms round too: the results agree
// with im2col's to a few units in the last place of the largest terms, not
// bitwise (tests/test_kernels.cpp). Each output is computed the same way
// whatever the share of output channels a thread takes, so the result is the
// same on any number of threads. Needs gemm()'s vectors (AVX2 or AVX-512);
// C and OC in whole vectors.
#pragma once

#include "gemm.hpp"
#include "transpose.hpp"

#include <algorithm>

namespace eigencnn {
namespace detail {

/// Whether Winograd F(2x2, 3x3) takes this conv: 3x3, stride 1, padding <= 2 (the input gradient's
/// padding 2 - p is then >= 0), C and OC in whole vectors and at least 16 input channels (fewer leave the
/// products too short to pay for the transforms). Never without gemm()'s vectors.
inline bool winograd_applies(Index C, Index OC, Index K, Index stride, Index pad) {
#if defined(EIGENCNN_GEMM_KERNEL)
    return K == 3 && stride == 1 && pad <= 2 && C >= 16 && C % kGemmLanes == 0 && OC % kGemmLanes == 0;
#else
    (void)C, (void)OC, (void)K, (void)stride, (void)pad;
    return false;
#endif
}

#if defined(EIGENCNN_GEMM_KERNEL)
#define EIGENCNN_WINOGRAD 1

constexpr Index kWinogradGroup = 36;  // tiles per group: 6 rows of gemm()'s tiles; a power of two put V's 16 planes in the same cache sets

/// The scratch winograd_weights needs: [pairs, 16] and [16, pairs].
inline Index winograd_weights_scratch(Index C, Index OC) { return 2 * 16 * C * OC; }

/// U of the conv that runs, for its output channels [o0, o1) only, as a block [16, Cin, o1 - o0] (threads
/// each build and read their own): forward (flipped = false: Cin = C, Cout = OC) from W [OC, C, 3, 3]; or
/// the input gradient's (flipped = true: Cin = OC, Cout = C), from W with its window turned by 180 degrees.
/// W's rows (o, c) as [pairs, 9] times (G (x) G)^T [9, 16] by gemm(), then transposed into place.
inline void winograd_weights(const float* W, Index OC, Index C, bool flipped, Index o0, Index o1, float* U, float* scratch) {
    static constexpr float G[4][3] = {{1.f, 0.f, 0.f}, {.5f, .5f, .5f}, {.5f, -.5f, .5f}, {0.f, 0.f, 1.f}};
    alignas(64) float GG[9 * 16];  // [k = 3a + b, xi = 4u + v] = G[u][a] G[v][b] (flipped: tap 8 - k)
    for (int k = 0; k < 9; ++k)
        for (int xi = 0; xi < 16; ++xi) {
            const int tap = flipped ? 8 - k : k;
            GG[k * 16 + xi] = G[xi / 4][tap / 3] * G[xi % 4][tap % 3];
        }
    const Index width = o1 - o0;
    float* UT = scratch;  // [pairs, 16]
    if (!flipped) {       // pairs (o, c), o in [o0, o1): W's rows in order
        float* Ux = scratch + 16 * C * OC;  // [16, pairs]
        gemm(width * C, Index(16), Index(9), W + o0 * C * 9, Index(9), GG, Index(16), UT, Index(16));
        transpose(UT, width * C, Index(16), Ux);  // [xi][o - o0][c]
        for (int xi = 0; xi < 16; ++xi) transpose(Ux + xi * width * C, width, C, U + xi * C * width);  // [xi][c][o - o0]
    } else {  // pairs (o, c), c in [o0, o1): a block of W's rows per o
        for (Index o = 0; o < OC; ++o)
            gemm(width, Index(16), Index(9), W + (o * C + o0) * 9, Index(9), GG, Index(16), UT + o * width * 16, Index(16));
        transpose(UT, OC * width, Index(16), U);  // [xi][o][c - o0]
    }
}

/// The padded input channel-last: xT [Hq, Wq, C] with Hq = 2 th + 2, Wq = 2 tw + 2, x [C, H, W] at rows and
/// columns pad.., zeros elsewhere. tmp: H*W*C scratch.
inline void winograd_input_layout(const float* x, Index C, Index H, Index W, Index pad, Index Hq, Index Wq, float* tmp,
                                  float* xT) {
    transpose(x, C, H * W, tmp);  // [H*W, C]
    const Index rows_end = std::min(Hq, pad + H);
    std::fill(xT, xT + pad * Wq * C, 0.f);
    for (Index r = pad; r < rows_end; ++r) {
        float* row = xT + r * Wq * C;
        std::fill(row, row + pad * C, 0.f);
        const Index cols = std::min(W, Wq - pad);
        std::copy(tmp + (r - pad) * W * C, tmp + ((r - pad) * W + cols) * C, row + pad * C);
        std::fill(row + (pad + cols) * C, row + Wq * C, 0.f);
    }
    std::fill(xT + rows_end * Wq * C, xT + Hq * Wq * C, 0.f);
}

/// V [16, count, C] for tiles [t0, t0 + count) (tile t = (t / tw, t % tw)) of xT [Hq, Wq, C].
inline void winograd_input_tiles(const float* xT, Index Wq, Index C, Index tw, Index t0, Index count, float* V) {
    constexpr Index L = kGemmLanes;
    for (Index t = 0; t < count; ++t) {
        const Index ti = (t0 + t) / tw, tj = (t0 + t) % tw;
        const float* d0 = xT + (2 * ti * Wq + 2 * tj) * C;
        for (Index c = 0; c < C; c += L) {
            gemm_vec r[4][4];  // (B^T d)[u][k]
            gemm_vec d[4][4];
#pragma GCC unroll 4
            for (int i = 0; i < 4; ++i)
#pragma GCC unroll 4
                for (int k = 0; k < 4; ++k) d[i][k] = gemm_load(d0 + (i * Wq + k) * C + c);
#pragma GCC unroll 4
            for (int k = 0; k < 4; ++k) {
                r[0][k] = d[0][k] - d[2][k];
                r[1][k] = d[1][k] + d[2][k];
                r[2][k] = d[2][k] - d[1][k];
                r[3][k] = d[1][k] - d[3][k];
            }
            float* v = V + t * C + c;
            const Index xi_stride = count * C;
#pragma GCC unroll 4
            for (int u = 0; u < 4; ++u) {  // (B^T d B)[u][.]
                gemm_store(v + (4 * u + 0) * xi_stride, r[u][0] - r[u][2]);
                gemm_store(v + (4 * u + 1) * xi_stride, r[u][1] + r[u][2]);
                gemm_store(v + (4 * u + 2) * xi_stride, r[u][2] - r[u][1]);
                gemm_store(v + (4 * u + 3) * xi_stride, r[u][1] - r[u][3]);
            }
        }
    }
}

/// yT [OH*OW, ldy] columns [o0, o1) for tiles [t0, t0 + count): from M [16, count, ldm] (columns o0.. at
/// M + 0), + bias[o] (bias may be null).
inline void winograd_output_tiles(const float* M, Index ldm, Index count, Index t0, Index tw, Index OH, Index OW,
                                  const float* bias, Index o0, Index o1, float* yT, Index ldy) {
    constexpr Index L = kGemmLanes;
    for (Index t = 0; t < count; ++t) {
        const Index ti = (t0 + t) / tw, tj = (t0 + t) % tw;
        for (Index o = o0; o < o1; o += L) {
            const float* m = M + t * ldm + (o - o0);
            const Index xi_stride = count * ldm;
            gemm_vec s[2][4];  // (A^T m)[u][v]
#pragma GCC unroll 4
            for (int v = 0; v < 4; ++v) {
                const gemm_vec m0 = gemm_load(m + (0 + v) * xi_stride), m1 = gemm_load(m + (4 + v) * xi_stride);
                const gemm_vec m2 = gemm_load(m + (8 + v) * xi_stride), m3 = gemm_load(m + (12 + v) * xi_stride);
                s[0][v] = m0 + m1 + m2;
                s[1][v] = m1 - m2 - m3;
            }
            const gemm_vec b = bias ? gemm_load(bias + o) : gemm_vec{};
            for (int u = 0; u < 2 && 2 * ti + u < OH; ++u) {
                float* row = yT + ((2 * ti + u) * OW + 2 * tj) * ldy + o;
                gemm_store(row, s[u][0] + s[u][1] + s[u][2] + b);
                if (2 * tj + 1 < OW) gemm_store(row + ldy, s[u][1] - s[u][2] - s[u][3] + b);
            }
        }
    }
}

/// The scratch winograd_image needs: the padded image channel-last, the transposed image or y^T, V and M of a group.
inline Index winograd_image_scratch(Index Cin, Index Cout, Index H, Index W, Index pad) {
    const Index OH = H + 2 * pad - 2, OW = W + 2 * pad - 2, th = (OH + 1) / 2, tw = (OW + 1) / 2;
    return (2 * th + 2) * (2 * tw + 2) * Cin + std::max(H * W * Cin, OH * OW * Cout) + 16 * kWinogradGroup * (Cin + Cout);
}

/// One image: rows [o0, o1) of y [Cout, OH, OW] = the 3x3 conv of x [Cin, H, W] padded by pad, with U
/// winograd_weights' block for those channels, and bias [Cout] (or null). OH = H + 2 pad - 2.
inline void winograd_image(const float* x, Index Cin, Index H, Index W, Index pad, const float* U, const float* bias,
                           Index Cout, Index o0, Index o1, float* y, float* scratch) {
    const Index OH = H + 2 * pad - 2, OW = W + 2 * pad - 2, th = (OH + 1) / 2, tw = (OW + 1) / 2, T = th * tw;
    const Index Hq = 2 * th + 2, Wq = 2 * tw + 2, width = o1 - o0;
    float* xT = scratch;
    float* tmp = xT + Hq * Wq * Cin;  // the transposed image, then y^T [P, width]
    float* V = tmp + std::max(H * W * Cin, OH * OW * Cout);
    float* M = V + 16 * kWinogradGroup * Cin;
    winograd_input_layout(x, Cin, H, W, pad, Hq, Wq, tmp, xT);
    float* yT = tmp;
    for (Index t0 = 0; t0 < T; t0 += kWinogradGroup) {
        const Index count = std::min(kWinogradGroup, T - t0);
        winograd_input_tiles(xT, Wq, Cin, tw, t0, count, V);
        for (int xi = 0; xi < 16; ++xi)
            gemm(count, width, Cin, V + xi * count * Cin, Cin, U + xi * Cin * width, width, M + xi * count * width, width);
        winograd_output_tiles(M, width, count, t0, tw, OH, OW, bias ? bias + o0 : nullptr, Index(0), width, yT, width);
    }
    transpose(yT, OH * OW, width, y + o0 * OH * OW);
}

// The weight gradient. With M = V U (above) and y = A^T m A per tile, dL/dM[xi] = (A g A^T)[xi] for the
// output gradient's 2x2 tile g, so
//   dU[xi] [C, OC] = sum over images and tiles of V[xi]^T dM[xi]        dM [16, T, OC]
//   dW[o, c] = G^T dU[., c, o] G                                         (once per chunk of images)
//        | 1  0 |          | 1  1/2  1/2  0 |
//   A =  | 1  1 |   G^T =  | 0  1/2 -1/2  0 |
//        | 1 -1 |          | 0  1/2  1/2  1 |
//        | 0 -1 |
// The products over the tiles want V[xi] as [C, count]: transposed per group (48 tiles: whole 16 x 16
// blocks). Output channels [o0, o1) only (a block [16, C, o1 - o0] of dU): threads sharing an image each take
// some; each element is summed over the tiles and images in the same order whatever the share.
constexpr Index kWinogradWeightGroup = 48;

/// dM [16, count, o1 - o0] for tiles [t0, t0 + count) from gt = dy_n^T [OH*OW, OC] (positions past OH, OW: 0).
inline void winograd_gradient_tiles(const float* gt, Index OC, Index OH, Index OW, Index tw, Index t0, Index count, Index o0,
                                    Index o1, float* dM) {
    constexpr Index L = kGemmLanes;
    const Index width = o1 - o0, xi_stride = count * width;
    for (Index t = 0; t < count; ++t) {
        const Index ti = (t0 + t) / tw, tj = (t0 + t) % tw;
        for (Index o = o0; o < o1; o += L) {
            gemm_vec g[2][2];
            for (int u = 0; u < 2; ++u)
                for (int v = 0; v < 2; ++v) {
                    const Index i = 2 * ti + u, j = 2 * tj + v;
                    g[u][v] = i < OH && j < OW ? gemm_load(gt + (i * OW + j) * OC + o) : gemm_vec{};
                }
            gemm_vec r[4][2];  // (A g)[k][v]
            for (int v = 0; v < 2; ++v) {
                r[0][v] = g[0][v];
                r[1][v] = g[0][v] + g[1][v];
                r[2][v] = g[0][v] - g[1][v];
                r[3][v] = gemm_vec{} - g[1][v];
            }
            float* m = dM + t * width + (o - o0);
            for (int k = 0; k < 4; ++k) {  // (A g A^T)[k][.]
                gemm_store(m + (4 * k + 0) * xi_stride, r[k][0]);
                gemm_store(m + (4 * k + 1) * xi_stride, r[k][0] + r[k][1]);
                gemm_store(m + (4 * k + 2) * xi_stride, r[k][0] - r[k][1]);
                gemm_store(m + (4 * k + 3) * xi_stride, gemm_vec{} - r[k][1]);
            }
        }
    }
}

/// The scratch winograd_weight_grad_image needs.
inline Index winograd_weight_grad_scratch(Index C, Index OC, Index H, Index W, Index pad) {
    const Index OH = H + 2 * pad - 2, OW = W + 2 * pad - 2, th = (OH + 1) / 2, tw = (OW + 1) / 2;
    return (2 * th + 2) * (2 * tw + 2) * C + H * W * C + 16 * kWinogradWeightGroup * (2 * C + OC);
}

/// dU [16, C, o1 - o0] += one image's (above): x [C, H, W] padded by pad, gt = dy_n^T [OH*OW, OC].
inline void winograd_weight_grad_image(const float* x, Index C, Index H, Index W, Index pad, const float* gt, Index OC, Index o0,
                                       Index o1, float* dU, float* scratch) {
    const Index OH = H + 2 * pad - 2, OW = W + 2 * pad - 2, th = (OH + 1) / 2, tw = (OW + 1) / 2, T = th * tw;
    const Index Hq = 2 * th + 2, Wq = 2 * tw + 2, width = o1 - o0;
    float* xT = scratch;
    float* tmp = xT + Hq * Wq * C;
    float* V = tmp + H * W * C;
    float* VT = V + 16 * kWinogradWeightGroup * C;
    float* dM = VT + 16 * kWinogradWeightGroup * C;
    winograd_input_layout(x, C, H, W, pad, Hq, Wq, tmp, xT);
    for (Index t0 = 0; t0 < T; t0 += kWinogradWeightGroup) {
        const Index count = std::min(kWinogradWeightGroup, T - t0);
        winograd_input_tiles(xT, Wq, C, tw, t0, count, V);
        winograd_gradient_tiles(gt, OC, OH, OW, tw, t0, count, o0, o1, dM);
        for (int xi = 0; xi < 16; ++xi) {
            transpose(V + xi * count * C, count, C, VT + xi * count * C);  // [C, count]
            gemm(C, width, count, VT + xi * count * C, count, dM + xi * count * width, width, dU + xi * C * width, width, true);
        }
    }
}

/// part [R + 1, OC] (rows r = (c, a, b), then the bias row) columns [o0, o1) += G^T dU G, dU [16, C, o1 - o0].
inline void winograd_weight_grad_finish(const float* dU, Index C, Index OC, Index o0, Index o1, float* part) {
    constexpr Index L = kGemmLanes;
    const Index width = o1 - o0;
    const gemm_vec half = gemm_vec{} + 0.5f;
    for (Index c = 0; c < C; ++c)
        for (Index o = o0; o < o1; o += L) {
            gemm_vec u[4][4];
            for (int xi = 0; xi < 16; ++xi) u[xi / 4][xi % 4] = gemm_load(dU + (xi * C + c) * width + (o - o0));
            gemm_vec s[3][4];  // (G^T u)[a][.]
            for (int v = 0; v < 4; ++v) {
                s[0][v] = u[0][v] + half * (u[1][v] + u[2][v]);
                s[1][v] = half * (u[1][v] - u[2][v]);
                s[2][v] = half * (u[1][v] + u[2][v]) + u[3][v];
            }
            float* row = part + c * 9 * OC + o;
            for (int a = 0; a < 3; ++a) {  // (G^T u G)[a][b]
                const gemm_vec w0 = s[a][0] + half * (s[a][1] + s[a][2]), w1 = half * (s[a][1] - s[a][2]);
                const gemm_vec w2 = half * (s[a][1] + s[a][2]) + s[a][3];
                gemm_store(row + (3 * a + 0) * OC, gemm_load(row + (3 * a + 0) * OC) + w0);
                gemm_store(row + (3 * a + 1) * OC, gemm_load(row + (3 * a + 1) * OC) + w1);
                gemm_store(row + (3 * a + 2) * OC, gemm_load(row + (3 * a + 2) * OC) + w2);
            }
        }
}

/// bias [OC] columns [o0, o1) += the sum over positions of gt = dy_n^T [P, OC], position by position.
inline void winograd_bias_grad(const float* gt, Index P, Index OC, Index o0, Index o1, float* bias) {
    constexpr Index L = kGemmLanes;
    for (Index o = o0; o < o1; o += L) {
        gemm_vec acc = gemm_load(bias + o);
        for (Index p = 0; p < P; ++p) acc = acc + gemm_load(gt + p * OC + o);
        gemm_store(bias + o, acc);
    }
}

#endif

}  // namespace detail
}  // namespace eigencnn
