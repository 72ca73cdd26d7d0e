// SPDX-License-Identifier: MIT
// eigencnn/kernels/conv2d_winograd45.hpp
//
// The forward and the weight gradient of stride-1 5x5 convs by Winograd's F(4x4, 5x5): each 4x4 tile of outputs from an 8x8 tile of
// the padded input with 64 products per input channel where F(2x2, 5x5) (kernels/conv2d_winograd.hpp) takes 36
// per 2x2 tile, 144 per 4x4: 2.25x fewer, 6.25x fewer than the direct 400. The same scheme as there, on 8x8
// tiles, with the points 0, 1, -1, 2, -2, 1/2, -1/2 and infinity (those of Lavin and Gray's F(6x6, 3x3), the
// other 8x8 transform; the matrices below come from the Toom-Cook construction, checked in rationals
// (bench/winograd_error.py: A^T (G g . B^T d) is the 1-D correlation exactly), with G's and B^T's first rows
// negated, which leaves every product the same):
//
//       | 1      0      0      0      0    |          | 1   0  -21/4    0    21/4    0   -1  0 |
//       |-2/9   -2/9   -2/9   -2/9   -2/9  |          | 0   1    1    -17/4 -17/4    1    1  0 |
//       |-2/9    2/9   -2/9    2/9   -2/9  |          | 0  -1    1     17/4 -17/4   -1    1  0 |
//   G = | 1/90   1/45   2/45   4/45   8/45 |    B^T = | 0  1/2  1/4   -5/2  -5/4     2    1  0 |
//       | 1/90  -1/45   2/45  -4/45   8/45 |          | 0 -1/2  1/4    5/2  -5/4    -2    1  0 |
//       | 32/45  16/45  8/45   4/45   2/45 |          | 0   2    4    -5/2   -5    1/2   1  0 |
//       | 32/45 -16/45  8/45  -4/45   2/45 |          | 0  -2    4     5/2   -5   -1/2   1  0 |
//       | 0      0      0      0      1    |          | 0  -1    0     21/4   0   -21/4   0  1 |
//
//         | 1  1   1  1   1   1    1    0 |
//   A^T = | 0  1  -1  2  -2  1/2 -1/2   0 |
//         | 0  1   1  4   4  1/4  1/4   0 |
//         | 0  1  -1  8  -8  1/8 -1/8   1 |
//
//   U[xi] = (G g G^T)[xi]        g = W[o, c] (5x5)                                   U  [64, C, OC]
//   V[xi] = (B^T d B)[xi]        d = x_pad[c, 4ti .. 4ti+7, 4tj .. 4tj+7]             V  [64, T, C]
//   M[xi] = V[xi] U[xi]          (gemm(): T x C times C x OC)                       M  [64, T, OC]
//   y[o, 4ti + u, 4tj + v] = (A^T m A)[u, v] + bias[o],  m = M[., t, o] (8x8)
//
// An 8x8 output (the seed model's second conv) is 4 tiles: the products of one image would have 4 rows, so the
// tiles of several images go through them together (winograd45_images; kWinograd45Tiles tiles a group). Each
// output is the same sum whatever the group or the share of output channels a thread takes: the same on any
// number of threads and in any batch. Rounding: the transforms' larger constants (21/4, 17/4, 32/45) cost
// precision; against float64 on [16, 8, 8] x [16, 5, 5] tiles of nonnegative inputs (bench/winograd_error.py,
// which also rebuilds the matrices), the largest error was 1.4e-5 of the outputs' RMS (F(2x2, 5x5): 6.5e-6; the
// direct float32 sum: 3.0e-6).
// tests/test_kernels.cpp checks it against im2col. The weight gradient the same way (below); the input gradient
// stays on F(2x2, 5x5), where Winograd pays (kernels/conv2d_winograd.hpp).
#pragma once

#include "conv2d_winograd.hpp"

namespace eigencnn {
namespace detail {

#if defined(EIGENCNN_WINOGRAD)

constexpr Index kWinograd45Elements = 64;  // an 8x8 transformed tile
constexpr Index kWinograd45Tiles = 48;     // tiles per group (of one image, or of several small ones)

inline constexpr float kWinogradG45[8][5] = {{1.f, 0.f, 0.f, 0.f, 0.f},
                                             {-2.f / 9, -2.f / 9, -2.f / 9, -2.f / 9, -2.f / 9},
                                             {-2.f / 9, 2.f / 9, -2.f / 9, 2.f / 9, -2.f / 9},
                                             {1.f / 90, 1.f / 45, 2.f / 45, 4.f / 45, 8.f / 45},
                                             {1.f / 90, -1.f / 45, 2.f / 45, -4.f / 45, 8.f / 45},
                                             {32.f / 45, 16.f / 45, 8.f / 45, 4.f / 45, 2.f / 45},
                                             {32.f / 45, -16.f / 45, 8.f / 45, -4.f / 45, 2.f / 45},
                                             {0.f, 0.f, 0.f, 0.f, 1.f}};

// out = B^T d (8 -> 8): rows 1-6 in pairs a + b, a - b.
inline void winograd45_bt(const gemm_vec* d, gemm_vec* out) {
    out[0] = (d[0] - d[6]) + 5.25f * (d[4] - d[2]);
    gemm_vec a = (d[2] + d[6]) - 4.25f * d[4], b = (d[1] + d[5]) - 4.25f * d[3];
    out[1] = a + b;
    out[2] = a - b;
    a = (0.25f * d[2] + d[6]) - 1.25f * d[4];
    b = (0.5f * d[1] + 2.f * d[5]) - 2.5f * d[3];
    out[3] = a + b;
    out[4] = a - b;
    a = (4.f * d[2] + d[6]) - 5.f * d[4];
    b = (2.f * d[1] + 0.5f * d[5]) - 2.5f * d[3];
    out[5] = a + b;
    out[6] = a - b;
    out[7] = (d[7] - d[1]) + 5.25f * (d[3] - d[5]);
}
// out = A^T m (8 -> 4)
inline void winograd45_at(const gemm_vec* m, gemm_vec* out) {
    const gemm_vec p12 = m[1] + m[2], q12 = m[1] - m[2], p34 = m[3] + m[4], q34 = m[3] - m[4], p56 = m[5] + m[6], q56 = m[5] - m[6];
    out[0] = m[0] + p12 + p34 + p56;
    out[1] = q12 + 2.f * q34 + 0.5f * q56;
    out[2] = p12 + 4.f * p34 + 0.25f * p56;
    out[3] = q12 + 8.f * q34 + 0.125f * q56 + m[7];
}
// out = G g (5 -> 8)
inline void winograd45_g(const gemm_vec* g, gemm_vec* out) {
    constexpr auto& G = kWinogradG45;
    out[0] = g[0];
#pragma GCC unroll 6
    for (int u = 1; u < 7; ++u) out[u] = G[u][0] * g[0] + G[u][1] * g[1] + G[u][2] * g[2] + G[u][3] * g[3] + G[u][4] * g[4];
    out[7] = g[4];
}

/// The scratch winograd45_weights needs: W channel-last.
inline Index winograd45_weights_scratch(Index C, Index OC) { return 25 * C * OC; }

/// U [64, C, o1 - o0] for output channels [o0, o1) from W [OC, C, 5, 5]: W's rows channel-last (Wt [C, 25,
/// width]), then G g G^T a vector of 16 channels at a time, G down the window's columns then along its rows.
inline void winograd45_weights(const float* W, Index C, Index o0, Index o1, float* U, float* scratch) {
    constexpr Index L = kGemmLanes;
    const Index width = o1 - o0, xi_stride = C * width;
    float* Wt = scratch;
    transpose(W + o0 * C * 25, width, C * 25, Wt);  // rows (o, .) -> [(c, tap), o - o0]
    for (Index c = 0; c < C; ++c)
        for (Index s = 0; s < width; s += L) {
            float* out = U + c * width + s;
            winograd_separable<5, 5, 8, 8, winograd45_g, winograd45_g>(  // (G g G^T)[u][v]
                [&](int a, int b) { return gemm_load(Wt + (c * 25 + 5 * a + b) * width + s); },
                [&](int u, const gemm_vec* e) {
#pragma GCC unroll 8
                    for (int v = 0; v < 8; ++v) gemm_store(out + (8 * u + v) * xi_stride, e[v]);
                });
        }
}

/// V's tiles [0, count) from tiles [t0, t0 + count) (tile t = (t / tw, t % tw)) of xT [Hq, Wq, C]; V's 64
/// planes `planes` * C apart. B^T d a column at a time, then (B^T d) B a row at a time.
inline void winograd45_input_tiles(const float* xT, Index Wq, Index C, Index tw, Index t0, Index count, float* V, Index planes) {
    winograd_input_tiles_of<4, 8, winograd45_bt>(xT, Wq, C, tw, t0, count, V, planes);
}

/// yT [OH*OW, ldy] columns [0, width) for tiles [t0, t0 + count) from M's tiles [0, count) (M's 64 planes
/// `planes` * width apart, each tile's row `width` long), + bias[o] (bias may be null); outputs past OH, OW
/// dropped.
inline void winograd45_output_tiles(const float* M, Index width, Index count, Index t0, Index tw, Index OH, Index OW,
                                    const float* bias, float* yT, Index ldy, Index planes) {
    constexpr Index L = kGemmLanes;
    const Index xi_stride = planes * width;
    for (Index t = 0; t < count; ++t) {
        const Index ti = (t0 + t) / tw, tj = (t0 + t) % tw;
        for (Index o = 0; o < width; o += L) {
            const float* m = M + t * width + o;
            const gemm_vec b = bias ? gemm_load(bias + o) : gemm_vec{};
            winograd_separable<8, 8, 4, 4, winograd45_at, winograd45_at>(  // (A^T m A)[u][w], past OH, OW dropped
                [&](int i, int v) { return gemm_load(m + (8 * i + v) * xi_stride); },
                [&](int u, const gemm_vec* y) {
                    float* row = yT + ((4 * ti + u) * OW + 4 * tj) * ldy + o;
                    for (int w = 0; w < 4 && 4 * tj + w < OW; ++w) gemm_store(row + w * ldy, y[w] + b);
                },
                static_cast<int>(std::min<Index>(4, OH - 4 * ti)));
        }
    }
}

/// An image's tiles for a 5x5 conv of x [C, H, W] padded by pad: outputs OH x OW in th x tw tiles of 4x4 (T of
/// them), read from the padded image channel-last, Hq x Wq (whole 8x8 tiles).
struct Winograd45Tiles {
    Index OH, OW, th, tw, T, Hq, Wq;
    Winograd45Tiles(Index H, Index W, Index pad)
        : OH(H + 2 * pad - 4), OW(W + 2 * pad - 4), th((OH + 3) / 4), tw((OW + 3) / 4), T(th * tw), Hq(4 * th + 4), Wq(4 * tw + 4) {}
};

/// Tiles a group takes, forward or weight gradient: G images' (G > 1), or one image's kWinograd45Tiles at a time.
inline Index winograd45_group_tiles(Index G, Index T) { return G > 1 ? G * T : std::min(T, kWinograd45Tiles); }

/// Images per call of winograd45_images: as many whole images as kWinograd45Tiles holds (at least one).
inline Index winograd45_images_per_group(Index H, Index W, Index pad) {
    return std::max<Index>(1, kWinograd45Tiles / Winograd45Tiles(H, W, pad).T);
}

/// The scratch winograd45_images needs for G images and `width` output channels: each image's padded image
/// channel-last, one transposed image or y^T, V and M of a group.
inline Index winograd45_images_scratch(Index G, Index Cin, Index width, Index H, Index W, Index pad) {
    const Winograd45Tiles s(H, W, pad);
    const Index group = winograd45_group_tiles(G, s.T);
    return G * s.Hq * s.Wq * Cin + std::max(H * W * Cin, s.OH * s.OW * width) + kWinograd45Elements * group * (Cin + width);
}

/// Output channels [o0, o1) of G images: y_g [Cout, OH, OW] (ys[g], rows o0.. written) = the 5x5 conv of
/// x_g = x + g * image_stride [Cin, H, W] padded by pad, with U winograd45_weights' block for those channels
/// and bias [Cout] (or null). G images of T tiles each: one group of G*T tiles (G > 1 only where G*T <=
/// kWinograd45Tiles), or one image's tiles in groups of kWinograd45Tiles.
inline void winograd45_images(const float* x, Index image_stride, Index G, Index Cin, Index H, Index W, Index pad, const float* U,
                              const float* bias, Index o0, Index o1, float* const* ys, float* scratch) {
    const Winograd45Tiles s(H, W, pad);
    const Index OH = s.OH, OW = s.OW, tw = s.tw, T = s.T, Hq = s.Hq, Wq = s.Wq, width = o1 - o0, P = OH * OW;
    const Index group = winograd45_group_tiles(G, T);
    float* xTs = scratch;
    float* tmp = xTs + G * Hq * Wq * Cin;  // a transposed image, then y^T [P, width]
    float* V = tmp + std::max(H * W * Cin, P * width);
    float* M = V + kWinograd45Elements * group * Cin;
    const float* b = bias ? bias + o0 : nullptr;
    auto products = [&](Index rows) {
        for (Index xi = 0; xi < kWinograd45Elements; ++xi)
            gemm(rows, width, Cin, V + xi * group * Cin, Cin, U + xi * Cin * width, width, M + xi * group * width, width);
    };
    if (G > 1) {
        for (Index g = 0; g < G; ++g) {
            float* xT = xTs + g * Hq * Wq * Cin;
            winograd_input_layout(x + g * image_stride, Cin, H, W, pad, Hq, Wq, tmp, xT);
            winograd45_input_tiles(xT, Wq, Cin, tw, 0, T, V + g * T * Cin, group);
        }
        products(group);
        for (Index g = 0; g < G; ++g) {
            winograd45_output_tiles(M + g * T * width, width, T, 0, tw, OH, OW, b, tmp, width, group);
            transpose(tmp, P, width, ys[g] + o0 * P);
        }
        return;
    }
    winograd_input_layout(x, Cin, H, W, pad, Hq, Wq, tmp, xTs);
    for (Index t0 = 0; t0 < T; t0 += group) {
        const Index count = std::min(group, T - t0);
        winograd45_input_tiles(xTs, Wq, Cin, tw, t0, count, V, group);
        products(count);
        winograd45_output_tiles(M, width, count, t0, tw, OH, OW, b, tmp, width, group);
    }
    transpose(tmp, P, width, ys[0] + o0 * P);
}

// The weight gradient. With M = V U and y = A^T m A per 4x4 tile, dL/dM[xi] = (A g A^T)[xi] for the output
// gradient's 4x4 tile g (A = (A^T)^T, 8x4), so
//   dU[xi] [C, OC] = sum over images and tiles of V[xi]^T dM[xi]        dM [64, T, OC]
//   dW[o, c] = G^T dU[., c, o] G                                         (once per chunk of images)
// An image's 4 tiles (8x8 outputs) would make each product a sum of 4: the V and dM of up to kWinograd45Tiles
// tiles of consecutive images are held (winograd45_weight_grad_hold) and summed in one product per element
// (winograd45_weight_grad_flush), each element of dU still the sum over the tiles in order, from its value
// before: the same bits whatever the group.

// out = A h (4 -> 8), a column of a 4x4 tile
inline void winograd45_a(const gemm_vec* h, gemm_vec* out) {
    const gemm_vec e1 = h[0] + h[2], o1 = h[1] + h[3];
    const gemm_vec e2 = h[0] + 4.f * h[2], o2 = 2.f * h[1] + 8.f * h[3];
    const gemm_vec e3 = h[0] + 0.25f * h[2], o3 = 0.5f * h[1] + 0.125f * h[3];
    out[0] = h[0];
    out[1] = e1 + o1;
    out[2] = e1 - o1;
    out[3] = e2 + o2;
    out[4] = e2 - o2;
    out[5] = e3 + o3;
    out[6] = e3 - o3;
    out[7] = h[3];
}
// out = G^T u (8 -> 5)
inline void winograd45_gt(const gemm_vec* u, gemm_vec* out) {
    constexpr auto& G = kWinogradG45;
#pragma GCC unroll 5
    for (int a = 0; a < 5; ++a) out[a] = G[1][a] * u[1] + G[2][a] * u[2] + G[3][a] * u[3] + G[4][a] * u[4] + G[5][a] * u[5] + G[6][a] * u[6];
    out[0] = out[0] + u[0];
    out[4] = out[4] + u[7];
}

/// dM's tiles [0, count) (its 64 planes `planes` * (o1 - o0) apart) from tiles [t0, t0 + count) of gt = dy_n^T
/// [OH*OW, OC], columns [o0, o1) (positions past OH, OW: 0): A g A^T, down the columns and then along the rows.
inline void winograd45_gradient_tiles(const float* gt, Index OC, Index OH, Index OW, Index tw, Index t0, Index count, Index o0,
                                      Index o1, float* dM, Index planes) {
    constexpr Index L = kGemmLanes;
    const Index width = o1 - o0, xi_stride = planes * width;
    for (Index t = 0; t < count; ++t) {
        const Index ti = (t0 + t) / tw, tj = (t0 + t) % tw;
        for (Index o = o0; o < o1; o += L) {
            float* m = dM + t * width + (o - o0);
            winograd_separable<4, 4, 8, 8, winograd45_a, winograd45_a>(  // (A g A^T)[k][l]
                [&](int u, int v) {
                    const Index i = 4 * ti + u, j = 4 * tj + v;
                    return i < OH && j < OW ? gemm_load(gt + (i * OW + j) * OC + o) : gemm_vec{};
                },
                [&](int k, const gemm_vec* e) {
#pragma GCC unroll 8
                    for (int l = 0; l < 8; ++l) gemm_store(m + (8 * k + l) * xi_stride, e[l]);
                });
        }
    }
}

/// Images a weight-gradient group holds: as many as kWinograd45Tiles tiles take (at least one).
inline Index winograd45_weight_grad_images(Index H, Index W, Index pad) { return winograd45_images_per_group(H, W, pad); }

/// The scratch the weight gradient needs beyond dU, for groups of G images and `width` output channels: the
/// padded image channel-last, a transposed image, V, one plane of V^T, dM.
inline Index winograd45_weight_grad_scratch(Index G, Index C, Index width, Index H, Index W, Index pad) {
    const Winograd45Tiles s(H, W, pad);
    const Index GT = winograd45_group_tiles(G, s.T);
    return s.Hq * s.Wq * C + H * W * C + kWinograd45Elements * GT * C + GT * C + kWinograd45Elements * GT * width;
}

/// Where V starts in that scratch (after the padded image and the transposed one); V^T and dM follow it.
inline Index winograd45_weight_grad_v_offset(const Winograd45Tiles& s, Index C, Index H, Index W) { return s.Hq * s.Wq * C + H * W * C; }

// dU [64, C, width] += V[xi]^T dM[xi] over the group's first `rows` tiles (GT tiles a plane), per element xi.
inline void winograd45_weight_grad_products(Index rows, Index GT, Index C, Index width, const float* V, float* VT, const float* dM,
                                            float* dU) {
    for (Index xi = 0; xi < kWinograd45Elements; ++xi) {
        transpose(V + xi * GT * C, rows, C, VT);  // [C, rows]
        gemm(C, width, rows, VT, rows, dM + xi * GT * width, width, dU + xi * C * width, width, true);
    }
}

/// Image g of a group of G (scratch as sized above), x [C, H, W] padded by pad and gt = dy_n^T [OH*OW, OC],
/// columns [o0, o1): with G > 1, its tiles' V and dM held for winograd45_weight_grad_flush; with G = 1, summed into
/// dU [64, C, o1 - o0] at once, kWinograd45Tiles tiles at a time.
inline void winograd45_weight_grad_hold(const float* x, Index C, Index H, Index W, Index pad, const float* gt, Index OC, Index o0,
                                        Index o1, Index g, Index G, float* dU, float* scratch) {
    const Winograd45Tiles s(H, W, pad);
    const Index OH = s.OH, OW = s.OW, tw = s.tw, T = s.T, Hq = s.Hq, Wq = s.Wq, GT = winograd45_group_tiles(G, T), width = o1 - o0;
    float* xT = scratch;
    float* tmp = xT + Hq * Wq * C;
    float* V = scratch + winograd45_weight_grad_v_offset(s, C, H, W);
    float* VT = V + kWinograd45Elements * GT * C;
    float* dM = VT + GT * C;
    winograd_input_layout(x, C, H, W, pad, Hq, Wq, tmp, xT);
    if (G > 1) {
        winograd45_input_tiles(xT, Wq, C, tw, 0, T, V + g * T * C, GT);
        winograd45_gradient_tiles(gt, OC, OH, OW, tw, 0, T, o0, o1, dM + g * T * width, GT);
        return;
    }
    for (Index t0 = 0; t0 < T; t0 += GT) {
        const Index count = std::min(GT, T - t0);
        winograd45_input_tiles(xT, Wq, C, tw, t0, count, V, GT);
        winograd45_gradient_tiles(gt, OC, OH, OW, tw, t0, count, o0, o1, dM, GT);
        winograd45_weight_grad_products(count, GT, C, width, V, VT, dM, dU);
    }
}

/// dU [64, C, width] += the first `held` images of a group of G > 1 (held by winograd45_weight_grad_hold).
inline void winograd45_weight_grad_flush(Index held, Index G, Index C, Index width, Index H, Index W, Index pad, float* dU,
                                         float* scratch) {
    const Winograd45Tiles s(H, W, pad);
    const Index GT = winograd45_group_tiles(G, s.T);
    float* V = scratch + winograd45_weight_grad_v_offset(s, C, H, W);
    float* VT = V + kWinograd45Elements * GT * C;
    winograd45_weight_grad_products(held * s.T, GT, C, width, V, VT, VT + GT * C, dU);
}

/// part [R + 1, OC] weight rows (r = (c, a, b)), columns [o0, o1) = G^T dU G, dU [64, C, o1 - o0]; set, not
/// added (as winograd_weight_grad_finish).
inline void winograd45_weight_grad_finish(const float* dU, Index C, Index OC, Index o0, Index o1, float* part) {
    constexpr Index L = kGemmLanes;
    const Index width = o1 - o0;
    for (Index c = 0; c < C; ++c)
        for (Index o = o0; o < o1; o += L) {
            float* row = part + c * 25 * OC + o;
            winograd_separable<8, 8, 5, 5, winograd45_gt, winograd45_gt>(  // (G^T u G)[a][b], u = dU[., c, o] (8x8)
                [&](int i, int v) { return gemm_load(dU + ((8 * i + v) * C + c) * width + (o - o0)); },
                [&](int a, const gemm_vec* w) {
#pragma GCC unroll 5
                    for (int b = 0; b < 5; ++b) gemm_store(row + (5 * a + b) * OC, w[b]);
                });
        }
}

#endif

}  // namespace detail
}  // namespace eigencnn
