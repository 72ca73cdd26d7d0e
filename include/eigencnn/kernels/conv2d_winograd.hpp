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
//
// Stride-1 5x5 convs by F(2x2, 5x5), the same scheme on 6x6
// input tiles (36 products per tile and input channel instead of 100,
// 2.78x fewer), with the points 0, 1, -1, 2, -2 and infinity (the B^T of
// Lavin and Gray's F(4x4, 3x3), which uses the same points):
//
//       | 1/4    0     0     0     0  |        | 4  0 -5  0  1  0 |
//       |-1/6  -1/6  -1/6  -1/6  -1/6 |        | 0 -4 -4  1  1  0 |
//   G = |-1/6   1/6  -1/6   1/6  -1/6 |  B^T = | 0  4 -4 -1  1  0 |   A^T = | 1  1  1  1  1  0 |
//       | 1/24  1/12  1/6   1/3   2/3 |        | 0 -2 -1  2  1  0 |         | 0  1 -1  2 -2  1 |
//       | 1/24 -1/12  1/6  -1/3   2/3 |        | 0  2 -1 -2  1  0 |
//       | 0      0     0     0     1  |        | 0  4  0 -5  0  1 |
//
// (G's row i is s_i (1, p_i, p_i^2, p_i^3, p_i^4) at point p_i, the last the leading coefficient; A^T's
// columns (1, p_i), the last (0, 1); checked exactly in rationals before use). Its rounding error is larger
// than F(2x2, 3x3)'s (products of up to 5 x 2/3 in the transforms), still a few units in the last place of
// the largest terms (tests/test_kernels.cpp). The input gradient of a 5x5 conv is again the forward of dy
// (W turned and transposed, padding 4 - p). U is built separably here (G g G^T over 16 channels at a time,
// winograd5_weights_channel_last), the 3x3 one by a gemm(). Where each pass pays (its tiles' products against
// the direct kernels'): winograd_pays. Conv2d's 5x5 forward and weight gradient run by F(4x4, 5x5) instead
// (kernels/conv2d_winograd45.hpp: 8x8 tiles, 2.25x fewer products again); its input gradient by F(2x2, 5x5)
// here. Every F(2x2, 5x5) and F(4x4, 5x5) tile function goes through one separable pass (winograd_separable:
// a 1-D transform down the tile's columns, another along its rows).
#pragma once

#include "gemm.hpp"
#include "transpose.hpp"

#include <algorithm>

namespace eigencnn {
namespace detail {

/// Whether Winograd takes this conv: F(2x2, 3x3) for 3x3, F(2x2, 5x5) for 5x5; stride 1, padding <= K - 1
/// (the input gradient's padding K - 1 - p is then >= 0), C and OC in whole vectors and at least 16 input
/// channels (fewer leave the products too short to pay for the transforms). Never without gemm()'s vectors.
/// Conv2d asks winograd_pays too.
inline bool winograd_applies(Index C, Index OC, Index K, Index stride, Index pad) {
#if defined(EIGENCNN_GEMM_KERNEL)
    return (K == 3 || K == 5) && stride == 1 && pad >= 0 && pad <= K - 1 && C >= 16 && C % kGemmLanes == 0 && OC % kGemmLanes == 0;
#else
    (void)C, (void)OC, (void)K, (void)stride, (void)pad;
    return false;
#endif
}

/// Elements of a transformed tile: (K + 1)^2, 16 for F(2x2, 3x3), 36 for F(2x2, 5x5).
constexpr Index winograd_tile_elements(Index K) { return (K + 1) * (K + 1); }

/// Whether Winograd pays on this plane: its products (a transformed tile per 2x2 outputs of the OH x OW
/// plane it computes) at most 2/3 of the direct kernels' (K*K per position of the forward's output,
/// `positions`; the direct input gradient skips the padding's taps, so for it these are fewer than dx's
/// plane would suggest). On one output, or the seed model's 8x8 second conv's input gradient (12 x 12,
/// padding 4: 36 tiles x 36 against 64 x 25, 1.23x), the direct kernels were as fast or faster.
constexpr bool winograd_pays(Index K, Index OH, Index OW, Index positions) {
    return 3 * ((OH + 1) / 2) * ((OW + 1) / 2) * winograd_tile_elements(K) <= 2 * positions * K * K;
}

#if defined(EIGENCNN_GEMM_KERNEL)
#define EIGENCNN_WINOGRAD 1

constexpr Index kWinogradGroup = 36;  // tiles per group: 6 rows of gemm()'s tiles; a power of two put V's 16 planes in the same cache sets

/// The scratch winograd_weights needs: [pairs, XI] and [XI, pairs].
inline Index winograd_weights_scratch(Index C, Index OC, Index K) { return 2 * winograd_tile_elements(K) * C * OC; }

/// F(2x2, 5x5)'s G (the top of this file).
inline constexpr float kWinogradG5[6][5] = {{1.f / 4, 0.f, 0.f, 0.f, 0.f},
                                            {-1.f / 6, -1.f / 6, -1.f / 6, -1.f / 6, -1.f / 6},
                                            {-1.f / 6, 1.f / 6, -1.f / 6, 1.f / 6, -1.f / 6},
                                            {1.f / 24, 1.f / 12, 1.f / 6, 1.f / 3, 2.f / 3},
                                            {1.f / 24, -1.f / 12, 1.f / 6, -1.f / 3, 2.f / 3},
                                            {0.f, 0.f, 0.f, 0.f, 1.f}};

/// A 1-D transform of a column or row of vectors (in -> out), applied down a tile's columns and then along its rows.
using WinogradTransform = void (*)(const gemm_vec* in, gemm_vec* out);

/// The separable 2-D transform of one tile of 16 (L) channels, as every F(2x2, 5x5) and F(4x4, 5x5) function
/// below runs it: First (Rows -> Mid values) down each of the tile's Cols columns, load(i, k) giving element (i,
/// k); then Second (Cols -> Out values) along each of the first `rows` (<= Mid) rows of that result, store(u, e)
/// taking row u's Out values. So out[u][w] = Second(First(in)^T)..., e.g. B^T d B, A^T m A, G g G^T.
///   r[k] = First(in[., k])          k < Cols          r [Cols][Mid]
///   e    = Second(r[., u])          u < rows          e [Out]
template <int Rows, int Cols, int Mid, int Out, WinogradTransform First, WinogradTransform Second, typename Load, typename Store>
inline void winograd_separable(Load&& load, Store&& store, int rows = Mid) {
    gemm_vec r[Cols][Mid];
#pragma GCC unroll 8
    for (int k = 0; k < Cols; ++k) {
        gemm_vec column[Rows];
#pragma GCC unroll 8
        for (int i = 0; i < Rows; ++i) column[i] = load(i, k);
        First(column, r[k]);
    }
#pragma GCC unroll 8
    for (int u = 0; u < Mid; ++u) {
        if (u >= rows) break;
        gemm_vec row[Cols], e[Out];
#pragma GCC unroll 8
        for (int k = 0; k < Cols; ++k) row[k] = r[k][u];
        Second(row, e);
        store(u, e);
    }
}

// F(2x2, 5x5)'s four 1-D transforms, each applied down a tile's columns and then along its rows.
// out = B^T d (6 -> 6)
inline void winograd5_bt(const gemm_vec* d, gemm_vec* out) {
    const gemm_vec d4m2 = d[4] - d[2], d3m1 = d[3] - d[1];
    out[0] = 4.f * d[0] - 5.f * d[2] + d[4];
    out[1] = (d[3] + d[4]) - 4.f * (d[1] + d[2]);
    out[2] = (d[4] - d[3]) + 4.f * (d[1] - d[2]);
    out[3] = d4m2 + 2.f * d3m1;
    out[4] = d4m2 - 2.f * d3m1;
    out[5] = 4.f * d[1] - 5.f * d[3] + d[5];
}
// out = A^T m (6 -> 2)
inline void winograd5_at(const gemm_vec* m, gemm_vec* out) {
    out[0] = m[0] + (m[1] + m[2]) + (m[3] + m[4]);
    out[1] = (m[1] - m[2]) + 2.f * (m[3] - m[4]) + m[5];
}
// out = G g (5 -> 6)
inline void winograd5_g(const gemm_vec* g, gemm_vec* out) {
    constexpr auto& G = kWinogradG5;
    out[0] = G[0][0] * g[0];
#pragma GCC unroll 4
    for (int u = 1; u < 5; ++u) out[u] = G[u][0] * g[0] + G[u][1] * g[1] + G[u][2] * g[2] + G[u][3] * g[3] + G[u][4] * g[4];
    out[5] = g[4];
}

/// F(2x2, 5x5)'s U [36, R, width] from Wt [R, 25, width] (the taps of each row r channel-last; flipped: read
/// tap 24 - k for k): G g G^T a vector of 16 columns at a time, G applied down the window's columns then along
/// its rows (330 multiply-adds per window where the product with G (x) G is 900; at batch 1 and 8 of the seed
/// model's second conv, building U by that product cost more than the images).
inline void winograd5_weights_channel_last(const float* Wt, Index R, Index width, bool flipped, float* U) {
    constexpr Index L = kGemmLanes;
    const Index xi_stride = R * width;
    for (Index r = 0; r < R; ++r)
        for (Index s = 0; s < width; s += L) {
            float* out = U + r * width + s;
            winograd_separable<5, 5, 6, 6, winograd5_g, winograd5_g>(  // (G g G^T)[u][v]
                [&](int a, int b) { return gemm_load(Wt + (r * 25 + (flipped ? 24 - (5 * a + b) : 5 * a + b)) * width + s); },
                [&](int u, const gemm_vec* e) {
#pragma GCC unroll 6
                    for (int v = 0; v < 6; ++v) gemm_store(out + (6 * u + v) * xi_stride, e[v]);
                });
        }
}

/// U of the conv that runs, for its output channels [o0, o1) only, as a block [XI, Cin, o1 - o0] (threads
/// each build and read their own; XI = winograd_tile_elements(K)): forward (flipped = false: Cin = C,
/// Cout = OC) from W [OC, C, K, K]; or the input gradient's (flipped = true: Cin = OC, Cout = C), from W
/// with its window turned by 180 degrees. 3x3: W's rows (o, c) as [pairs, 9] times (G (x) G)^T [9, 16] by
/// gemm(), then transposed into place; 5x5: W channel-last, then winograd5_weights_channel_last.
inline void winograd_weights(const float* W, Index OC, Index C, Index K, bool flipped, Index o0, Index o1, float* U, float* scratch) {
    const Index width = o1 - o0;
    if (K == 5) {  // Wt [Cin, 25, width] in scratch
        float* Wt = scratch;
        if (!flipped) transpose(W + o0 * C * 25, width, C * 25, Wt);  // rows (o, .) -> [(c, tap), o - o0]
        else
            for (Index o = 0; o < OC; ++o) transpose(W + (o * C + o0) * 25, width, Index(25), Wt + o * 25 * width);  // [(o, tap), c - o0]
        return winograd5_weights_channel_last(Wt, flipped ? OC : C, width, flipped, U);
    }
    static constexpr float G[4][3] = {{1.f, 0.f, 0.f}, {.5f, .5f, .5f}, {.5f, -.5f, .5f}, {0.f, 0.f, 1.f}};
    alignas(64) float GG[9 * 16];  // [k = 3a + b, xi = 4u + v] = G[u][a] G[v][b] (flipped: tap 8 - k)
    for (int k = 0; k < 9; ++k)
        for (int xi = 0; xi < 16; ++xi) {
            const int tap = flipped ? 8 - k : k;
            GG[k * 16 + xi] = G[xi / 4][tap / 3] * G[xi % 4][tap % 3];
        }
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

/// The padded input channel-last: xT [Hq, Wq, C] with Hq = 2 th + K - 1, Wq = 2 tw + K - 1, x [C, H, W] at rows and
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

/// V's tiles [0, count) from tiles [t0, t0 + count) (tile t = (t / tw, t % tw), its corner at (Step ti, Step tj))
/// of xT [Hq, Wq, C], each N x N, by B^T down its columns and along its rows: V's N * N planes `planes`
/// * C apart. F(2x2, 5x5): Step 2, N 6 (winograd5_input_tiles); F(4x4, 5x5): Step 4, N 8 (conv2d_winograd45.hpp).
template <int Step, int N, WinogradTransform BT>
inline void winograd_input_tiles_of(const float* xT, Index Wq, Index C, Index tw, Index t0, Index count, float* V, Index planes) {
    constexpr Index L = kGemmLanes;
    const Index xi_stride = planes * C;
    for (Index t = 0; t < count; ++t) {
        const Index ti = (t0 + t) / tw, tj = (t0 + t) % tw;
        const float* d0 = xT + (Step * ti * Wq + Step * tj) * C;
        for (Index c = 0; c < C; c += L) {
            float* v = V + t * C + c;
            winograd_separable<N, N, N, N, BT, BT>(  // (B^T d B)[u][w]
                [&](int i, int k) { return gemm_load(d0 + (i * Wq + k) * C + c); },
                [&](int u, const gemm_vec* e) {
#pragma GCC unroll 8
                    for (int w = 0; w < N; ++w) gemm_store(v + (N * u + w) * xi_stride, e[w]);
                });
        }
    }
}

/// F(2x2, 5x5): V [36, count, C] for tiles [t0, t0 + count) of xT [Hq, Wq, C], as winograd_input_tiles.
inline void winograd5_input_tiles(const float* xT, Index Wq, Index C, Index tw, Index t0, Index count, float* V) {
    winograd_input_tiles_of<2, 6, winograd5_bt>(xT, Wq, C, tw, t0, count, V, count);
}

/// F(2x2, 5x5): yT columns [o0, o1) for tiles [t0, t0 + count) from M [36, count, ldm], + bias[o], as
/// winograd_output_tiles.
inline void winograd5_output_tiles(const float* M, Index ldm, Index count, Index t0, Index tw, Index OH, Index OW,
                                   const float* bias, Index o0, Index o1, float* yT, Index ldy) {
    constexpr Index L = kGemmLanes;
    const Index xi_stride = count * ldm;
    for (Index t = 0; t < count; ++t) {
        const Index ti = (t0 + t) / tw, tj = (t0 + t) % tw;
        for (Index o = o0; o < o1; o += L) {
            const float* m = M + t * ldm + (o - o0);
            const gemm_vec b = bias ? gemm_load(bias + o) : gemm_vec{};
            winograd_separable<6, 6, 2, 2, winograd5_at, winograd5_at>(  // (A^T m A)[u][v], rows past OH dropped
                [&](int i, int v) { return gemm_load(m + (6 * i + v) * xi_stride); },
                [&](int u, const gemm_vec* y) {
                    float* row = yT + ((2 * ti + u) * OW + 2 * tj) * ldy + o;
                    gemm_store(row, y[0] + b);
                    if (2 * tj + 1 < OW) gemm_store(row + ldy, y[1] + b);
                },
                static_cast<int>(std::min<Index>(2, OH - 2 * ti)));
        }
    }
}

/// The scratch winograd_image needs: the padded image channel-last, the transposed image or y^T, V and M of a group.
inline Index winograd_image_scratch(Index Cin, Index Cout, Index H, Index W, Index K, Index pad) {
    const Index OH = H + 2 * pad - K + 1, OW = W + 2 * pad - K + 1, th = (OH + 1) / 2, tw = (OW + 1) / 2;
    return (2 * th + K - 1) * (2 * tw + K - 1) * Cin + std::max(H * W * Cin, OH * OW * Cout) +
           winograd_tile_elements(K) * kWinogradGroup * (Cin + Cout);
}

/// One image: rows [o0, o1) of y [Cout, OH, OW] = the KxK conv (K 3 or 5) of x [Cin, H, W] padded by pad,
/// with U winograd_weights' block for those channels, and bias [Cout] (or null). OH = H + 2 pad - K + 1.
inline void winograd_image(const float* x, Index Cin, Index H, Index W, Index K, Index pad, const float* U, const float* bias,
                           Index Cout, Index o0, Index o1, float* y, float* scratch) {
    const Index OH = H + 2 * pad - K + 1, OW = W + 2 * pad - K + 1, th = (OH + 1) / 2, tw = (OW + 1) / 2, T = th * tw;
    const Index Hq = 2 * th + K - 1, Wq = 2 * tw + K - 1, width = o1 - o0, XI = winograd_tile_elements(K);
    float* xT = scratch;
    float* tmp = xT + Hq * Wq * Cin;  // the transposed image, then y^T [P, width]
    float* V = tmp + std::max(H * W * Cin, OH * OW * Cout);
    float* M = V + XI * kWinogradGroup * Cin;
    winograd_input_layout(x, Cin, H, W, pad, Hq, Wq, tmp, xT);
    float* yT = tmp;
    for (Index t0 = 0; t0 < T; t0 += kWinogradGroup) {
        const Index count = std::min(kWinogradGroup, T - t0);
        if (K == 5) winograd5_input_tiles(xT, Wq, Cin, tw, t0, count, V);
        else winograd_input_tiles(xT, Wq, Cin, tw, t0, count, V);
        for (Index xi = 0; xi < XI; ++xi)
            gemm(count, width, Cin, V + xi * count * Cin, Cin, U + xi * Cin * width, width, M + xi * count * width, width);
        if (K == 5) winograd5_output_tiles(M, width, count, t0, tw, OH, OW, bias ? bias + o0 : nullptr, Index(0), width, yT, width);
        else winograd_output_tiles(M, width, count, t0, tw, OH, OW, bias ? bias + o0 : nullptr, Index(0), width, yT, width);
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
// blocks). Output channels [o0, o1) only (a block [XI, C, o1 - o0] of dU): threads sharing an image each take
// some; each element is summed over the tiles and images in the same order whatever the share. 5x5 weight
// gradients run by F(4x4, 5x5) (kernels/conv2d_winograd45.hpp; an F(2x2, 5x5) one was here before it).
constexpr Index kWinogradWeightGroup = 48;

/// (A h)[k] for a pair h = (h0, h1) of A's columns: rows (1, 0), (1, 1), (1, -1), (0, -1).
inline void winograd_gradient_pair(gemm_vec h0, gemm_vec h1, gemm_vec* out) {
    out[0] = h0;
    out[1] = h0 + h1;
    out[2] = h0 - h1;
    out[3] = gemm_vec{} - h1;
}

/// dM [16, count, o1 - o0] for tiles [t0, t0 + count) from gt = dy_n^T [OH*OW, OC] (positions past OH, OW:
/// 0): A g A^T of each 2x2 tile g, down the columns and then along the rows.
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
            gemm_vec r[2][4];  // (A g)[k][v] as r[v][k]
            for (int v = 0; v < 2; ++v) winograd_gradient_pair(g[0][v], g[1][v], r[v]);
            float* m = dM + t * width + (o - o0);
            for (int k = 0; k < 4; ++k) {  // (A g A^T)[k][.]
                gemm_vec row[4];
                winograd_gradient_pair(r[0][k], r[1][k], row);
                for (int l = 0; l < 4; ++l) gemm_store(m + (4 * k + l) * xi_stride, row[l]);
            }
        }
    }
}

/// The scratch winograd_weight_grad_image needs (3x3).
inline Index winograd_weight_grad_scratch(Index C, Index OC, Index H, Index W, Index pad) {
    constexpr Index K = 3;
    const Index OH = H + 2 * pad - K + 1, OW = W + 2 * pad - K + 1, th = (OH + 1) / 2, tw = (OW + 1) / 2;
    return (2 * th + K - 1) * (2 * tw + K - 1) * C + H * W * C + winograd_tile_elements(K) * kWinogradWeightGroup * (2 * C + OC);
}

/// dU [16, C, o1 - o0] += one image's (above) of a 3x3 conv: x [C, H, W] padded by pad, gt = dy_n^T [OH*OW, OC].
inline void winograd_weight_grad_image(const float* x, Index C, Index H, Index W, Index pad, const float* gt, Index OC, Index o0,
                                       Index o1, float* dU, float* scratch) {
    constexpr Index K = 3;
    const Index OH = H + 2 * pad - K + 1, OW = W + 2 * pad - K + 1, th = (OH + 1) / 2, tw = (OW + 1) / 2, T = th * tw;
    const Index Hq = 2 * th + K - 1, Wq = 2 * tw + K - 1, width = o1 - o0, XI = winograd_tile_elements(K);
    float* xT = scratch;
    float* tmp = xT + Hq * Wq * C;
    float* V = tmp + H * W * C;
    float* VT = V + XI * kWinogradWeightGroup * C;
    float* dM = VT + XI * kWinogradWeightGroup * C;
    winograd_input_layout(x, C, H, W, pad, Hq, Wq, tmp, xT);
    for (Index t0 = 0; t0 < T; t0 += kWinogradWeightGroup) {
        const Index count = std::min(kWinogradWeightGroup, T - t0);
        winograd_input_tiles(xT, Wq, C, tw, t0, count, V);
        winograd_gradient_tiles(gt, OC, OH, OW, tw, t0, count, o0, o1, dM);
        for (Index xi = 0; xi < XI; ++xi) {
            transpose(V + xi * count * C, count, C, VT + xi * count * C);  // [C, count]
            gemm(C, width, count, VT + xi * count * C, count, dM + xi * count * width, width, dU + xi * C * width, width, true);
        }
    }
}

/// part [R + 1, OC] (rows r = (c, a, b), then the bias row) weight rows, columns [o0, o1) = G^T dU G, dU
/// [16, C, o1 - o0] of a 3x3 conv. Set, not added: dU holds the whole chunk's sums, so the caller need not zero
/// those rows (zeroing them a row of 16 columns at a time cost a third of a batch-1 weight gradient).
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
                gemm_store(row + (3 * a + 0) * OC, w0);
                gemm_store(row + (3 * a + 1) * OC, w1);
                gemm_store(row + (3 * a + 2) * OC, w2);
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
