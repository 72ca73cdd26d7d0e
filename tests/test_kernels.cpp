// SPDX-License-Identifier: MIT
// The kernels under the layers.
// gemm: the float micro-kernel against a double reference, over shapes that
// hit every tile width, row remainder and column tail; leading dimensions
// larger than the width; accumulate; and no write outside C.
// Im2col: unfold against the definition, fold as its adjoint, for float
// (the AVX-512 path where available) and double (the plain loops), over
// paddings, strides and widths that cross 16-lane chunks.
// transpose: against element-by-element copies, with and without edges.
// Conv2d's direct small-window kernels (float, AVX-512): bitwise the
// im2col + gemm results they replace, forward and weight gradient.
#include "gradcheck.hpp"

#include <eigencnn/core/threads.hpp>
#include <eigencnn/kernels/conv2d_direct.hpp>
#include <eigencnn/kernels/conv2d_input_rows.hpp>
#include <eigencnn/kernels/conv2d_winners.hpp>
#include <eigencnn/kernels/gemm.hpp>
#include <eigencnn/kernels/im2col.hpp>
#include <eigencnn/kernels/transpose.hpp>
#include <eigencnn/layers/conv2d.hpp>
#include <eigencnn/layers/linear.hpp>

#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <utility>
#include <vector>

using namespace eigencnn;

namespace {

struct Case {
    Index M, N, K;
};

// A convolution of the Conv2d tests below: C -> OC channels, K x K windows, padding, input H x W, stride (1 unless given).
struct Geometry {
    Index C, OC, K, pad, H, W;
    Index stride = 1;
    Index OH() const { return (H + 2 * pad - K) / stride + 1; }
    Index OW() const { return (W + 2 * pad - K) / stride + 1; }
};

// Its layer with weights (and, with random_bias, a bias) from U(-1, 1), N images and output gradients from the
// same generator, drawn in that order.
struct ConvCase {
    Conv2d<float> conv;
    Tensor<float> x, dy;
};
ConvCase conv_case(const Geometry& g, Index N, Rng& rng, bool random_bias) {
    ConvCase c{Conv2d<float>(g.C, g.OC, g.K, g.stride, g.pad), Tensor<float>(Shape{N, g.C, g.H, g.W}), Tensor<float>(Shape{N, g.OC, g.OH(), g.OW()})};
    c.conv.set_winograd(false);  // the direct kernels' tests; Winograd has its own below
    uniform_fill(c.conv.weight(), 1.0, rng);
    if (random_bias) uniform_fill(c.conv.bias(), 1.0, rng);
    uniform_fill(c.x, 1.0, rng);
    uniform_fill(c.dy, 1.0, rng);
    return c;
}

// A layer whose weights are diag(a) W and bias c * b, W and b conv's: what conv with the output mask (a, c)
// must compute.
Conv2d<float> scaled_layer(const Geometry& g, Conv2d<float>& conv, const Tensor<float>& a, const Tensor<float>& c) {
    Conv2d<float> scaled(g.C, g.OC, g.K, g.stride, g.pad);
    const Index R = g.C * g.K * g.K;
    for (Index o = 0; o < g.OC; ++o) {
        for (Index r = 0; r < R; ++r) scaled.weight().data()[o * R + r] = conv.weight().data()[o * R + r] * a[o];
        scaled.bias().data()[o] = conv.bias().data()[o] * c[o];
    }
    return scaled;
}

// C = A * B (+ C0) in double, from the float inputs.
std::vector<double> reference(const Case& s, const std::vector<float>& A, Index lda, const std::vector<float>& B, Index ldb,
                              const std::vector<float>& C0, Index ldc, bool accumulate) {
    std::vector<double> C(static_cast<std::size_t>(s.M * s.N));
    for (Index i = 0; i < s.M; ++i)
        for (Index j = 0; j < s.N; ++j) {
            double acc = accumulate ? C0[i * ldc + j] : 0.0;
            for (Index k = 0; k < s.K; ++k) acc += double(A[i * lda + k]) * double(B[k * ldb + j]);
            C[i * s.N + j] = acc;
        }
    return C;
}

std::vector<float> random_vector(Index n, Rng& rng) {
    std::vector<float> v(static_cast<std::size_t>(n));
    for (auto& x : v) x = static_cast<float>(rng.uniform() * 2.0 - 1.0);
    return v;
}

void check_case(const Case& s, bool accumulate, Rng& rng) {
    const Index lda = s.K + 3, ldb = s.N + 5, ldc = s.N + 7;  // padded rows: the kernel must respect the strides
    const auto A = random_vector(s.M * lda, rng), B = random_vector(std::max<Index>(s.K, 1) * ldb, rng);
    const auto C0 = random_vector(s.M * ldc, rng);
    auto C = C0;
    gemm(s.M, s.N, s.K, A.data(), lda, B.data(), ldb, C.data(), ldc, accumulate);
    const auto want = reference(s, A, lda, B, ldb, C0, ldc, accumulate);
    double worst = 0;
    for (Index i = 0; i < s.M; ++i) {
        for (Index j = 0; j < s.N; ++j)
            worst = std::max(worst, std::abs(C[i * ldc + j] - want[i * s.N + j]) / (1.0 + std::sqrt(double(s.K))));
        for (Index j = s.N; j < ldc; ++j) REQUIRE(C[i * ldc + j] == C0[i * ldc + j]);  // padding untouched
    }
    INFO("M=" << s.M << " N=" << s.N << " K=" << s.K << " accumulate=" << accumulate);
    CHECK(worst < 1e-5);
}

}  // namespace

TEST_CASE("gemm matches a double reference on every tile width, remainder and tail") {
    Rng rng(7);
    const Index Ms[] = {1, 2, 5, 6, 7, 11, 12, 13, 25, 32};
    const Index Ns[] = {1, 3, 8, 15, 16, 17, 31, 32, 33, 48, 49, 64, 65, 80, 100, 130};
    const Index Ks[] = {0, 1, 7, 64};
    for (Index M : Ms)
        for (Index N : Ns)
            for (Index K : Ks)
                for (bool acc : {false, true}) check_case({M, N, K}, acc, rng);
}

TEST_CASE("gemm on the seed model's conv and linear shapes") {
    Rng rng(11);
    for (const Case& s : {Case{32, 64, 400}, Case{400, 64, 32}, Case{400, 32, 64}, Case{16, 576, 25}, Case{25, 16, 576},
                          Case{100, 512, 512}})
        for (bool acc : {false, true}) check_case(s, acc, rng);
}

TEST_CASE("gemm: a row of C does not depend on which other rows are computed with it") {
    // Conv2d and Linear split rows among threads; the result must not change. With enough rows gemm() packs B
    // a block of rows at a time (kernels/gemm.hpp: with a 48 KB L1, for 64-wide panels blocks of 128 rows; 32-wide,
    // 256; 16-wide, 512; with a 32 KB one 84, 168, 336), and 5 rows at a time it reads B in place: the shapes below take several blocks, a last partial one,
    // narrower panels and a tail, with and without accumulation.
    // the packed block: about 2/3 of this machine's L1 data cache, in whole rows of every panel width
    CHECK(detail::gemm_pack_floats() >= 2048);
    CHECK(detail::gemm_pack_floats() % 256 == 0);
    Rng rng(3);
    for (const Case& s : {Case{37, 75, 50}, Case{40, 232, 300}, Case{48, 40, 600}, Case{40, 20, 1100}, Case{19, 64, 129}})
        for (bool accumulate : {false, true}) {
            INFO("M=" << s.M << " N=" << s.N << " K=" << s.K << " accumulate=" << accumulate);
            const auto A = random_vector(s.M * s.K, rng), B = random_vector(s.K * s.N, rng), C0 = random_vector(s.M * s.N, rng);
            auto whole = C0, pieces = C0;
            gemm(s.M, s.N, s.K, A.data(), s.K, B.data(), s.N, whole.data(), s.N, accumulate);
            for (Index r = 0; r < s.M; r += 5) {
                const Index rows = std::min<Index>(5, s.M - r);
                gemm(rows, s.N, s.K, A.data() + r * s.K, s.K, B.data(), s.N, pieces.data() + r * s.N, s.N, accumulate);
            }
            CHECK(whole == pieces);
            check_case(s, accumulate, rng);  // and within rounding of the double reference
        }
}

TEST_CASE("gemm_rows: bitwise one gemm() call on any thread count, rows or columns shared") {
    // Linear's products (kernels/matmul.hpp): shares of rows in whole tiles, or with few rows, of columns in
    // whole panels of 64 (the seed model's [10, 500] x [500, 512] weight gradient); shapes on both sides of the
    // switches, with column tails.
    Rng rng(23);
    const int saved = num_threads();
    for (const Case& s : {Case{500, 512, 64}, Case{130, 10, 64}, Case{61, 75, 30}, Case{10, 512, 500}, Case{59, 200, 100},
                          Case{3, 130, 300}, Case{10, 127, 40}})
        for (int threads : {1, 2, 3}) {
            INFO("M=" << s.M << " N=" << s.N << " K=" << s.K << " threads=" << threads);
            const auto A = random_vector(s.M * s.K, rng), B = random_vector(s.K * s.N, rng);
            std::vector<float> whole(static_cast<std::size_t>(s.M * s.N)), shared(whole.size(), 7.0f);
            gemm(s.M, s.N, s.K, A.data(), s.K, B.data(), s.N, whole.data(), s.N);
            set_num_threads(threads);
            gemm_rows(s.M, s.N, s.K, A.data(), s.K, B.data(), s.N, shared.data(), s.N);
            set_num_threads(saved);
            CHECK(std::memcmp(whole.data(), shared.data(), sizeof(float) * whole.size()) == 0);
        }
}

TEST_CASE("winners_nonzero_patches: the nonzero entries in order, as the scalar loop lists them") {
    // The fused conv -> pool backward's lists of patches for dW (kernels/conv2d_winners.hpp): with AVX-512, 16
    // entries at a time compressed into place; a NaN counts as nonzero, -0 as zero, as `g != 0` does.
    Rng rng(17);
    const Index P = 64, image = 2304, OC = 3;
    std::vector<std::int32_t> patch_at(static_cast<std::size_t>(P));
    for (Index p = 0; p < P; ++p) patch_at[static_cast<std::size_t>(p)] = static_cast<std::int32_t>(p * 16 + p % 5);
    for (const Index Q : {1, 15, 16, 20, 32, 37})
        for (const Index count : {1, 3}) {
            const Index E = OC * Q;
            std::vector<float> val(static_cast<std::size_t>(count * E));
            std::vector<std::int32_t> pos(val.size());
            for (std::size_t i = 0; i < val.size(); ++i) {
                const double u = rng.uniform();
                val[i] = u < 0.4 ? 0.0f : u < 0.45 ? -0.0f : u < 0.5 ? std::numeric_limits<float>::quiet_NaN() : static_cast<float>(u - 0.75);
                pos[i] = static_cast<std::int32_t>(rng.uniform() * double(P)) % static_cast<std::int32_t>(P);
            }
            for (Index o = 0; o < OC; ++o) {
                std::vector<float> want_g, gs(static_cast<std::size_t>(count * Q));
                std::vector<Index> want_at, at(gs.size());
                for (Index n = 0; n < count; ++n)
                    for (Index q = 0; q < Q; ++q) {
                        const std::size_t e = static_cast<std::size_t>(n * E + o * Q + q);
                        if (val[e] == 0.0f) continue;  // NaN kept, -0 dropped
                        want_g.push_back(val[e]);
                        want_at.push_back(n * image + patch_at[static_cast<std::size_t>(pos[e])]);
                    }
                const Index m = winners_nonzero_patches(count, Q, E, image, val.data() + o * Q, pos.data() + o * Q, patch_at.data(), gs.data(), at.data());
                INFO("Q=" << Q << " count=" << count << " o=" << o);
                REQUIRE(m == static_cast<Index>(want_g.size()));
                for (Index i = 0; i < m; ++i) {
                    const float g = gs[static_cast<std::size_t>(i)], w = want_g[static_cast<std::size_t>(i)];
                    CHECK((std::memcmp(&g, &w, sizeof g) == 0));  // bit for bit, NaN included
                    CHECK(at[static_cast<std::size_t>(i)] == want_at[static_cast<std::size_t>(i)]);
                }
            }
        }
}

TEST_CASE("gemm<double> (the Eigen path) agrees with the float kernel") {
    Rng rng(5);
    const Index M = 13, N = 70, K = 33;
    const auto A = random_vector(M * K, rng), B = random_vector(K * N, rng);
    std::vector<double> Ad(A.begin(), A.end()), Bd(B.begin(), B.end()), Cd(static_cast<std::size_t>(M * N));
    std::vector<float> C(Cd.size());
    gemm(M, N, K, A.data(), K, B.data(), N, C.data(), N);
    gemm(M, N, K, Ad.data(), K, Bd.data(), N, Cd.data(), N);
    for (std::size_t i = 0; i < C.size(); ++i) CHECK(std::abs(C[i] - Cd[i]) < 1e-5);
}

namespace {

template <typename T>
void check_im2col(Index C, Index H, Index W, Index K, Index s, Index p) {
    INFO("C=" << C << " H=" << H << " W=" << W << " K=" << K << " stride=" << s << " pad=" << p);
    Im2col<T> u;
    u.configure(C, H, W, K, s, p);
    const Index OH = (H + 2 * p - K) / s + 1, OW = (W + 2 * p - K) / s + 1, P = OH * OW, R = C * K * K;
    REQUIRE(u.rows() == R);
    REQUIRE(u.cols() == P);
    Rng rng(static_cast<std::uint64_t>(C * 1000 + H * 100 + W * 10 + K + s + p));
    std::vector<T> x(static_cast<std::size_t>(C * H * W)), col(static_cast<std::size_t>(R * P), T(-7));
    for (auto& v : x) v = static_cast<T>(rng.uniform() * 2 - 1);
    u.unfold(x.data(), col.data());
    for (Index c = 0; c < C; ++c)
        for (Index a = 0; a < K; ++a)
            for (Index b = 0; b < K; ++b)
                for (Index i = 0; i < OH; ++i)
                    for (Index j = 0; j < OW; ++j) {
                        const Index h = i * s + a - p, w = j * s + b - p;
                        const T want = h >= 0 && h < H && w >= 0 && w < W ? x[(c * H + h) * W + w] : T(0);
                        REQUIRE(col[((c * K + a) * K + b) * P + i * OW + j] == want);
                    }
    // fold is the adjoint of unfold: <unfold(x), d> == <x, fold(d)>.
    std::vector<T> d(col.size()), dx(x.size(), T(123));
    for (auto& v : d) v = static_cast<T>(rng.uniform() * 2 - 1);
    u.fold(d.data(), dx.data());
    double lhs = 0, rhs = 0;
    for (std::size_t i = 0; i < d.size(); ++i) lhs += double(col[i]) * double(d[i]);
    for (std::size_t i = 0; i < x.size(); ++i) rhs += double(x[i]) * double(dx[i]);
    CHECK(std::abs(lhs - rhs) < 1e-4 * (1 + std::abs(lhs)));
}

}  // namespace

TEST_CASE_TEMPLATE("Im2col unfold matches the definition and fold is its adjoint", T, float, double) {
    check_im2col<T>(16, 12, 12, 5, 1, 0);  // the seed's conv2
    check_im2col<T>(1, 28, 28, 5, 1, 0);   // the seed's conv1: 24-wide rows, two chunks
    check_im2col<T>(3, 9, 7, 3, 1, 1);
    check_im2col<T>(2, 5, 5, 3, 1, 2);     // padding wider than half the kernel
    check_im2col<T>(2, 6, 20, 1, 1, 0);    // 1x1
    check_im2col<T>(2, 17, 35, 3, 1, 1);   // 35 columns: three chunks, the last of 3 lanes
    check_im2col<T>(2, 11, 13, 3, 2, 1);   // stride 2: the plain loops
    check_im2col<T>(1, 4, 4, 4, 3, 0);
    // several output rows per vector (stride 1, no padding, rows of at most 8):
    check_im2col<T>(3, 9, 7, 3, 1, 0);     // rows of 5, groups of 3 rows, the last group of 1
    check_im2col<T>(2, 6, 4, 4, 1, 0);     // rows of 1
    check_im2col<T>(2, 5, 12, 5, 1, 0);    // a single output row
    check_im2col<T>(1, 21, 20, 13, 1, 0);  // rows of 8 whose two-row window exceeds 32 floats: not packed
}

TEST_CASE("transpose matches an element-by-element copy, whole 16 x 16 blocks and edges") {
    Rng rng(21);
    for (const auto& shape : std::vector<std::pair<Index, Index>>{{16, 16}, {32, 48}, {16, 576}, {576, 16}, {37, 50}, {5, 3}, {17, 33}, {1, 40}, {16, 25}}) {
        const Index rows = shape.first, cols = shape.second;  // not a structured binding: CAPTURE's lambda cannot use one in C++17
        CAPTURE(rows);
        CAPTURE(cols);
        const auto src = random_vector(rows * cols, rng);
        std::vector<float> dst(static_cast<std::size_t>(rows * cols), std::nanf("")), want(dst.size());
        for (Index r = 0; r < rows; ++r)
            for (Index c = 0; c < cols; ++c) want[c * rows + r] = src[r * cols + c];
        transpose(src.data(), rows, cols, dst.data());
        CHECK(std::memcmp(dst.data(), want.data(), sizeof(float) * dst.size()) == 0);
        // int32 (a pool's winners) through the same registers: every bit, NaN patterns as floats included
        std::vector<std::int32_t> bits(src.size()), bits_t(src.size(), -1), bits_want(src.size());
        for (std::size_t e = 0; e < bits.size(); ++e)
            bits[e] = static_cast<std::int32_t>(0x7fc00000u + static_cast<std::uint32_t>(e) * 2654435761u);
        for (Index r = 0; r < rows; ++r)
            for (Index c = 0; c < cols; ++c) bits_want[static_cast<std::size_t>(c * rows + r)] = bits[static_cast<std::size_t>(r * cols + c)];
        transpose(bits.data(), rows, cols, bits_t.data());
        CHECK(bits_t == bits_want);
    }
}

TEST_CASE("transpose_block writes exactly its block of the transpose, for any row and column range") {
    Rng rng(22);
    for (const auto& shape : std::vector<std::pair<Index, Index>>{{256, 64}, {37, 50}, {17, 33}}) {
        const Index rows = shape.first, cols = shape.second;
        const auto src = random_vector(rows * cols, rng);
        const std::vector<std::pair<Index, Index>> row_ranges{{0, rows}, {0, 16}, {16, rows}, {3, std::min<Index>(20, rows)}, {rows - 1, rows}, {4, 4}};
        const std::vector<std::pair<Index, Index>> column_ranges{{0, cols}, {0, 16}, {16, cols}, {3, std::min<Index>(21, cols)}, {cols - 1, cols}, {5, 5}};
        for (const auto& row_range : row_ranges)
            for (const auto& column_range : column_ranges) {
                const Index r0 = row_range.first, r1 = row_range.second, c0 = column_range.first, c1 = column_range.second;
                CAPTURE(rows);
                CAPTURE(cols);
                CAPTURE(r0);
                CAPTURE(r1);
                CAPTURE(c0);
                CAPTURE(c1);
                std::vector<float> dst(static_cast<std::size_t>(rows * cols), std::nanf("")), want(dst.size(), std::nanf(""));
                for (Index r = r0; r < r1; ++r)
                    for (Index c = c0; c < c1; ++c) want[c * rows + r] = src[r * cols + c];
                transpose_block(src.data(), rows, cols, r0, r1, c0, c1, dst.data());
                CHECK(std::memcmp(dst.data(), want.data(), sizeof(float) * dst.size()) == 0);  // the NaNs outside the block too
            }
    }
}

// Conv2d<float> forward and weight gradient against im2col + gemm done here, image by image, with the layer's
// own order of sums (Conv2d::chunk_images images a chunk, then the chunks in order): bitwise. On AVX-512 the geometries below
// run the direct kernels, which must be the same FMAs in the same order; elsewhere the layer runs im2col + gemm
// itself. Forward: the first eight straight into planes in runs of 16 positions (direct_forward_planar; rows of
// 24 and 19: runs that cross into the next row, and a last partial run for 19; rows of 9, 12, 15, 5 and 12: one
// masked run each; one image of the last two shared among threads by rows or runs), the next three
// channel-last with the weights streamed, those with output rows in 16s (any channel counts, 1x1 too) into
// planes from W itself (kernels/conv2d_direct_planes.hpp), the stride-2 ones the same from the padded image
// stored in two phases per row (but two, im2col). Weight gradient (stride 1 or 2, 3x3
// or 5x5, output channels in 16s): windows of up to 27 values with all their accumulators in registers
// (direct_weight_grad, stride 1), wider ones and stride 2 a tile of window rows at a time
// (direct_weight_grad_streamed; stride 2 from the image in phases, where it fits in the cols' space).
// Each geometry also runs one image alone on 1 to 3 threads (the larger ones have enough work to share it among
// them) and with an output mask.
TEST_CASE("Conv2d's direct small-window kernels give bitwise the im2col + gemm results") {
    const std::vector<Geometry> cases{{1, 16, 5, 0, 28, 28},   // the seed's conv1: forward and weight gradient
                                      {1, 32, 3, 1, 13, 9},    // two blocks of 16 channels, padding, odd widths
                                      {2, 16, 3, 0, 10, 21},   // two input channels
                                      {3, 16, 3, 1, 12, 12},   // 27 window values: 28 gradient accumulators
                                      {1, 16, 5, 2, 11, 15},   // padding 2; rows of 15: two blocks of 6 and a remainder
                                      {2, 48, 3, 0, 7, 7},     // three blocks of 16 channels
                                      {3, 64, 3, 1, 30, 12},   // rows of 12, one masked run each; one image shared by rows
                                      {1, 48, 5, 0, 28, 28},   // rows of 24, 48 channels; one image shared by runs
                                      // wider windows: the forward streams the weights (two vectors of channels, then one)
                                      {16, 32, 5, 0, 12, 12},  // the seed's conv2
                                      {8, 48, 3, 1, 9, 11},    // 32 + 16 channels, rows of 11: 8 positions and 3
                                      {5, 16, 5, 2, 7, 6},     // padding 2, rows of 6 (no whole block of 8)
                                      // output rows in 16s: the forward into planes, any channel counts
                                      {32, 32, 3, 1, 16, 16},  // 16 runs: four blocks of 4; batch 1 shared by rows
                                      {8, 64, 3, 1, 16, 16},   // batch 1 shared by channels on 2 threads, by rows on 3
                                      {3, 40, 3, 1, 5, 32},    // 10 runs: 4 + 4 + 2; 40 channels: 6 x 6 + 2 + 2
                                      {2, 13, 5, 2, 3, 16},    // 3 runs: 2 + 1; 13 channels: 6 + 6 + 1
                                      {7, 9, 1, 0, 7, 16},     // 1x1: 7 runs; 9 channels
                                      {1, 16, 5, 0, 20, 20},   // one channel, rows of 16 (not the planar kernel)
                                      {4, 48, 5, 0, 24, 24},   // 5 images shared: 5x5 tiles of 2 + 1 rows, 32 + 16 channels
                                      // stride 2, output rows in 16s: into planes from the image in two phases per row
                                      {32, 64, 3, 1, 32, 32, 2},  // padding 1 (odd: the phases swap); batch 1 shared by channels, rows on 3
                                      {5, 13, 3, 1, 31, 63, 2},   // odd input sizes: 2 runs a row, 16 rows; 13 channels
                                      {3, 8, 1, 0, 16, 32, 2},    // 1x1: the even phase only
                                      {2, 7, 5, 2, 9, 32, 2},     // padding 2 (even)
                                      {4, 6, 5, 0, 12, 35, 2},  // no padding, padded width 35: a pitch of 36
                                      {3, 16, 5, 2, 32, 32, 2},   // 5x5: weight gradient two window rows at a time
                                      {16, 32, 5, 2, 32, 32, 2},  // 5x5, enough work to share 5 images and one
                                      {32, 32, 3, 1, 31, 31, 2},  // padded width 33: a pitch of 34, the weight gradient too
                                      {32, 32, 3, 1, 20, 20, 2},  // rows of 10: forward by im2col, weight gradient direct
                                      {2, 16, 3, 0, 3, 3, 2}};    // one output: the image in phases would not fit in col: im2col
    // which geometries take this header's direct kernels (on AVX-512 the forward of the first nine, where the
    // planes kernel does not take it, and the weight gradient of those with output channels in 16s and 3x3 or 5x5
    // windows, but the one-output stride-2 case; none elsewhere)
    MESSAGE("direct kernels " << std::string(detail::direct_conv_runs(1, 5, 1, 16, true) ? "run" : "do not run (no AVX-512)") << " here");
    CHECK(detail::direct_conv_runs(1, 5, 1, 16, true) == detail::direct_conv_runs(1, 5, 1, 16, false));
    CHECK(detail::direct_conv_runs(3, 3, 1, 16, false) == detail::direct_conv_runs(1, 5, 1, 16, false));
    CHECK(detail::direct_conv_runs(3, 3, 1, 16, true) == detail::direct_conv_runs(1, 5, 1, 16, true));   // weights streamed
    CHECK(detail::direct_conv_runs(16, 5, 1, 32, true) == detail::direct_conv_runs(1, 5, 1, 16, true));  // the seed's conv2
    CHECK_FALSE(detail::direct_conv_runs(16, 7, 1, 32, true));  // 7x7: im2col + gemm
    CHECK_FALSE(detail::direct_conv_runs(1, 5, 2, 16, true));   // stride 2: no channel-last forward
    CHECK(detail::direct_conv_runs(64, 3, 2, 128, false) == detail::direct_conv_runs(1, 5, 1, 16, false));  // stride 2: weight gradient
    CHECK_FALSE(detail::direct_conv_runs(64, 1, 2, 128, false));  // 1x1 stride 2: im2col + gemm
    CHECK_FALSE(detail::direct_conv_runs(1, 5, 1, 24, false));  // output channels not in 16s
    CHECK(detail::direct_conv_runs(16, 5, 1, 32, false) == detail::direct_conv_runs(1, 5, 1, 16, false));  // the seed's conv2: tiles
    // the forward into planes (kernels/conv2d_direct_planes.hpp): stride 1, K of 1, 3 or 5, output rows in 16s
    const bool planes_run = detail::direct_forward_planes_kernel(3, 1, 16) != nullptr;
    CHECK(planes_run == detail::direct_conv_runs(1, 5, 1, 16, true));
    CHECK((detail::direct_forward_planes_kernel(1, 1, 32) != nullptr) == planes_run);
    CHECK((detail::direct_forward_planes_kernel(5, 1, 48) != nullptr) == planes_run);
    CHECK_FALSE((detail::direct_forward_planes_kernel(3, 1, 24) != nullptr));  // rows of 24
    CHECK((detail::direct_forward_planes_kernel(3, 2, 16) != nullptr) == planes_run);  // stride 2
    CHECK_FALSE((detail::direct_forward_planes_kernel(3, 3, 16) != nullptr));  // stride 3
    CHECK_FALSE((detail::direct_forward_planes_kernel(3, 2, 8) != nullptr));   // stride 2, rows of 8
    CHECK_FALSE((detail::direct_forward_planes_kernel(7, 1, 16) != nullptr));  // 7x7
    Rng rng(22);
    const int threads_before = num_threads();
    for (const Geometry& g : cases) {
        CAPTURE(g.C);
        CAPTURE(g.K);
        const Index N = 17, R = g.C * g.K * g.K;  // 17 images: two whole chunks of 8 and a partial one
        ConvCase setup = conv_case(g, N, rng, true);
        Conv2d<float>& conv = setup.conv;
        const Tensor<float>& x = setup.x;
        const Tensor<float>& dy = setup.dy;
        const Index OH = g.OH(), OW = g.OW(), P = OH * OW;
        // the reference: [W | b] * [col_n; 1] per image; [dW^T; db^T] of the first `count` images summed per
        // chunk of Conv2d::chunk_images(count) images, then over the chunks
        Im2col<float> unfold;
        unfold.configure(g.C, g.H, g.W, g.K, g.stride, g.pad);
        std::vector<float> Wb(static_cast<std::size_t>(g.OC * (R + 1))), col(static_cast<std::size_t>((R + 1) * P), 1.0f);
        for (Index o = 0; o < g.OC; ++o) {
            for (Index r = 0; r < R; ++r) Wb[o * (R + 1) + r] = conv.weight().data()[o * R + r];
            Wb[o * (R + 1) + R] = conv.bias().data()[o];
        }
        std::vector<float> y_want(static_cast<std::size_t>(N * g.OC * P)), gt(static_cast<std::size_t>(P * g.OC));
        for (Index n = 0; n < N; ++n) {
            unfold.unfold(x.data() + n * g.C * g.H * g.W, col.data());
            gemm(g.OC, P, R + 1, Wb.data(), R + 1, col.data(), P, y_want.data() + n * g.OC * P, P);
        }
        auto weight_gradient = [&](Index count) {
            const Index chunk = Conv2d<float>::chunk_images(count);
            std::vector<float> total(static_cast<std::size_t>((R + 1) * g.OC), 0.0f), part(total.size());
            for (Index n = 0; n < count; ++n) {
                unfold.unfold(x.data() + n * g.C * g.H * g.W, col.data());
                if (n % chunk == 0) std::fill(part.begin(), part.end(), 0.0f);
                transpose(dy.data() + n * g.OC * P, g.OC, P, gt.data());
                gemm(R + 1, g.OC, P, col.data(), P, gt.data(), g.OC, part.data(), g.OC, true);
                if (n % chunk == chunk - 1 || n == count - 1) {
                    if (n < chunk) total = part;
                    else
                        for (std::size_t i = 0; i < total.size(); ++i) total[i] += part[i];
                }
            }
            return total;
        };
        const std::vector<float> total = weight_gradient(N), first5 = weight_gradient(5);  // 5 images: chunks of 3 and 2
        for (int threads : {1, 2}) {
            CAPTURE(threads);
            set_num_threads(threads);
            const Tensor<float>& y = conv.forward(x);
            REQUIRE(y.size() == static_cast<Index>(y_want.size()));
            CHECK(std::memcmp(y.data(), y_want.data(), sizeof(float) * y_want.size()) == 0);
            conv.backward(dy);
            bool weights_equal = true, bias_equal = true;
            for (Index o = 0; o < g.OC; ++o) {
                for (Index r = 0; r < R; ++r) weights_equal = weights_equal && conv.grad_weight().data()[o * R + r] == total[r * g.OC + o];
                bias_equal = bias_equal && conv.grad_bias().data()[o] == total[R * g.OC + o];
            }
            CHECK(weights_equal);
            CHECK(bias_equal);
        }
        // the first 5 images: two chunks (3 + 2), a thread each on 2 or 3 threads; on 4, with enough work per
        // image (the larger geometries), each image's backward is shared among the threads (share_chunks)
        Tensor<float> x5(Shape{5, g.C, g.H, g.W}), dy5(Shape{5, g.OC, OH, OW});
        std::copy(x.data(), x.data() + x5.size(), x5.data());
        std::copy(dy.data(), dy.data() + dy5.size(), dy5.data());
        for (int threads : {1, 2, 3, 4}) {
            CAPTURE(threads);
            set_num_threads(threads);
            conv.forward(x5);
            conv.backward(dy5);
            bool weights_equal = true, bias_equal = true;
            for (Index o = 0; o < g.OC; ++o) {
                for (Index r = 0; r < R; ++r) weights_equal = weights_equal && conv.grad_weight().data()[o * R + r] == first5[static_cast<std::size_t>(r * g.OC + o)];
                bias_equal = bias_equal && conv.grad_bias().data()[o] == first5[static_cast<std::size_t>(R * g.OC + o)];
            }
            CHECK(weights_equal);
            CHECK(bias_equal);
        }
        // one image alone, on 1 to 3 threads: with enough work per image (the larger geometries),
        // shared among the threads (forward_images_shared)
        Tensor<float> x1(Shape{1, g.C, g.H, g.W}), other(x1.shape());
        std::copy(x.data(), x.data() + x1.size(), x1.data());
        std::copy(x.data() + x1.size(), x.data() + 2 * x1.size(), other.data());
        for (int threads : {1, 2, 3}) {
            CAPTURE(threads);
            set_num_threads(1);
            conv.forward(other);  // all of the output another image's first: no output left over from the last check
            set_num_threads(threads);
            CHECK(std::memcmp(conv.forward(x1).data(), y_want.data(), sizeof(float) * static_cast<std::size_t>(g.OC * P)) == 0);
        }
        // an output mask: bitwise the forward of a layer whose weights are diag(a) W and bias c * b
        Tensor<float> a(Shape{g.OC}), c(Shape{g.OC});
        uniform_fill(a, 1.0, rng);
        uniform_fill(c, 1.0, rng);
        conv.output_mask()->set_weight_mask(a);
        conv.output_mask()->set_bias_mask(c);
        Conv2d<float> scaled = scaled_layer(g, conv, a, c);
        scaled.set_winograd(false);
        for (int threads : {1, 2}) {
            CAPTURE(threads);
            set_num_threads(threads);
            const Tensor<float>* batches[] = {&x, &x1};
            for (const Tensor<float>* batch : batches) {
                const Tensor<float>& y_masked = conv.forward(*batch);
                CHECK(std::memcmp(y_masked.data(), scaled.forward(*batch).data(), sizeof(float) * static_cast<std::size_t>(y_masked.size())) == 0);
            }
        }
    }
    set_num_threads(threads_before);
}

// Conv2d<float>'s input gradient: where stride is 1, the input rows come in 16s and the padding is at most K - 1,
// the planes kernel computes it as the forward of the padded dy with W flipped and transposed (float, AVX-512),
// summing in another order than im2col's gemm + col2im, so it is checked against that reference within rounding
// and bitwise against the kernel run here on the padded dy and the flipped W; elsewhere the layer runs the
// im2col reference itself, but on small planes (stride 1, K 3 or 5, output rows of 4 to 12, input channels in 16s),
// where it runs by rows (kernels/conv2d_input_rows.hpp; checked the same two ways, against that kernel run here
// with W channel-last). At stride 2, where dx has an even number of rows of whole 32s, it runs by phases
// (kernels/conv2d_input_phases.hpp; checked the same two ways, against the phases run here). Either way: bitwise
// the same on 1, 2 and 3 threads, from backward and from
// backward_input, for one image alone (shared among the threads where it has the work), and with an output mask.
TEST_CASE("Conv2d's input gradient: the im2col result within rounding, bitwise the same on any thread count and batch") {
    const std::vector<Geometry> cases{{32, 32, 3, 1, 16, 16},  // planes, batch 1 shared
                                      {3, 40, 3, 1, 5, 32},    // planes, 3 input channels
                                      {2, 13, 5, 2, 3, 16},    // planes, dy padded by 2
                                      {7, 9, 1, 0, 7, 16},     // planes, 1x1: dy itself
                                      {4, 16, 3, 0, 6, 16},    // planes, dy padded by 2 (no forward padding)
                                      {64, 64, 1, 0, 16, 16},  // planes, 1x1, batch 1 shared: dy itself
                                      {2, 64, 5, 0, 32, 32},   // planes, dy padded by 4, batch 1 shared (3 threads: one without channels)
                                      {16, 32, 5, 0, 12, 12},  // rows of 12: by rows (the seed's conv2), batch 1 shared by rows
                                      {32, 16, 3, 1, 8, 8},    // by rows, 3x3 pad 1 on 8x8: 32 channels at a time
                                      {48, 24, 5, 0, 14, 14},  // by rows, outputs of 10: 16 channels at a time, three blocks
                                      {16, 8, 3, 2, 6, 6},     // by rows, padding 2: two positions a side dropped
                                      {16, 16, 3, 1, 7, 4},    // by rows, 7 rows of 4: shares of 2, 2 and 3 rows on 3 threads
                                      {8, 16, 5, 0, 12, 12},   // 8 input channels: im2col
                                      {8, 16, 3, 3, 8, 16},    // padding 3 > K - 1: im2col
                                      // stride 2, dx in an even number of rows of whole 32s: by phases
                                      {32, 64, 3, 1, 32, 32, 2},  // 1 or 2 taps a side, dy padded by 1; batch 1 shared
                                      {5, 16, 3, 1, 6, 64, 2},    // 2 runs a phase row
                                      {3, 8, 5, 2, 4, 32, 2},     // 5x5: 3 or 2 taps a side
                                      {6, 16, 5, 1, 8, 32, 2},    // 5x5, odd padding
                                      {64, 64, 1, 0, 32, 32, 2},  // 1x1: one phase, three of zeros, dy itself (Q = 0); batch 1 shared
                                      {4, 8, 1, 0, 8, 32, 2},     // 1x1: one phase, three of zeros
                                      {2, 16, 3, 0, 10, 32, 2},   // no padding
                                      {8, 16, 3, 1, 7, 32, 2}};   // 7 rows: im2col
    Rng rng(24);
    const int threads_before = num_threads();
    for (const Geometry& g : cases) {
        CAPTURE(g.C);
        CAPTURE(g.K);
        CAPTURE(g.pad);
        const Index N = 5, R = g.C * g.K * g.K, image = g.C * g.H * g.W;
        ConvCase setup = conv_case(g, N, rng, false);
        Conv2d<float>& conv = setup.conv;
        const Tensor<float>& x = setup.x;
        const Tensor<float>& dy = setup.dy;
        const Index OH = g.OH(), OW = g.OW(), P = OH * OW;
        Im2col<float> unfold;
        unfold.configure(g.C, g.H, g.W, g.K, g.stride, g.pad);
        const auto kernel = detail::direct_forward_planes_kernel(g.K, 1, g.W);
        const bool planes = g.stride == 1 && kernel && g.pad <= g.K - 1;
        const detail::InputPhases plan = detail::input_phases(g.C, g.OC, g.K, g.pad, g.H, g.W, OH, OW);
        const bool phases = g.stride == 2 && plan.applies;
        const auto rows_kernel = g.stride == 1 && !planes ? detail::input_grad_rows_kernel(g.C, g.K, g.stride, g.pad, OW) : nullptr;
        const bool rows = rows_kernel != nullptr;
        const bool avx512 = detail::direct_forward_planes_kernel(3, 1, 16) != nullptr;  // the direct kernels' targets
        CHECK(rows == (avx512 && g.stride == 1 && !planes && g.C % 16 == 0 && (g.K == 3 || g.K == 5) && g.pad < g.K && OW >= 4 &&
                       OW <= 12 && OW % 2 == 0));
        if (g.stride == 2) CHECK(phases == (g.H % 2 == 0 && g.W % 32 == 0 && detail::direct_forward_planes_kernel(3, 1, 16) != nullptr));
        // the references for weights W [OC, R]: fold(W^T dy_n) per image; and, where the planes kernel runs, that
        // kernel on dy_n padded by q = K - 1 - pad with Wf [C, OC*K*K], W flipped
        auto references = [&](const float* W, const float* dys, std::vector<float>& dx_im2col, std::vector<float>* dx_planes) {
            std::vector<float> WT(static_cast<std::size_t>(R * g.OC)), dcol(static_cast<std::size_t>(R * P));
            dx_im2col.assign(static_cast<std::size_t>(N * image), 0.0f);
            transpose(W, g.OC, R, WT.data());
            for (Index n = 0; n < N; ++n) {
                gemm(R, P, g.OC, WT.data(), g.OC, dys + n * g.OC * P, P, dcol.data(), P);
                unfold.fold(dcol.data(), dx_im2col.data() + n * image);
            }
            if (phases && dx_planes) {  // the phases (kernels/conv2d_input_phases.hpp) of dy_n padded by plan.Q
                const Index Q = plan.Q, Hq = OH + 2 * Q, Wq = OW + 2 * Q;
                std::vector<float> Wph(static_cast<std::size_t>(plan.weights_size)), zeros(static_cast<std::size_t>(g.C), 0.0f);
                std::vector<float> dyQ(static_cast<std::size_t>(g.OC * Hq * Wq)), scratch(static_cast<std::size_t>(image));
                detail::input_phase_weights(plan, W, Index(0), g.C, Wph.data());
                dx_planes->assign(static_cast<std::size_t>(N * image), 0.0f);
                for (Index n = 0; n < N; ++n) {
                    std::fill(dyQ.begin(), dyQ.end(), 0.0f);
                    for (Index o = 0; o < g.OC; ++o)
                        for (Index i = 0; i < OH; ++i)
                            for (Index j = 0; j < OW; ++j) dyQ[static_cast<std::size_t>((o * Hq + i + Q) * Wq + j + Q)] = dys[((n * g.OC + o) * OH + i) * OW + j];
                    detail::input_gradient_by_phases(plan, Wph.data(), dyQ.data(), zeros.data(), Index(0), g.C, scratch.data(), dx_planes->data() + n * image);
                }
                return;
            }
            if (rows && dx_planes) {  // the rows kernel with W channel-last [OC, K, K, C]
                const Index KK = g.K * g.K;
                std::vector<float> wt(static_cast<std::size_t>(R * g.OC));
                for (Index o = 0; o < g.OC; ++o)
                    for (Index ch = 0; ch < g.C; ++ch)
                        for (Index k = 0; k < KK; ++k) wt[static_cast<std::size_t>((o * KK + k) * g.C + ch)] = W[(o * g.C + ch) * KK + k];
                dx_planes->assign(static_cast<std::size_t>(N * image), 0.0f);
                for (Index n = 0; n < N; ++n) rows_kernel(g.C, g.OC, OH, g.pad, dys + n * g.OC * P, wt.data(), 0, g.H, dx_planes->data() + n * image);
                return;
            }
            if (!planes || !dx_planes) return;
            const Index q = g.K - 1 - g.pad, Hq = OH + 2 * q, Wq = OW + 2 * q, KK = g.K * g.K;
            std::vector<float> Wf(static_cast<std::size_t>(R * g.OC)), zeros(static_cast<std::size_t>(g.C), 0.0f);
            std::vector<float> dyq(static_cast<std::size_t>(g.OC * Hq * Wq));
            transpose_windows_flipped(W, g.OC, g.C, KK, Index(0), g.C, Wf.data());
            dx_planes->assign(static_cast<std::size_t>(N * image), 0.0f);
            for (Index n = 0; n < N; ++n) {
                std::fill(dyq.begin(), dyq.end(), 0.0f);
                for (Index o = 0; o < g.OC; ++o)
                    for (Index i = 0; i < OH; ++i)
                        for (Index j = 0; j < OW; ++j) dyq[static_cast<std::size_t>((o * Hq + i + q) * Wq + j + q)] = dy.data()[((n * g.OC + o) * OH + i) * OW + j];
                kernel(g.OC, g.H, g.W, 0, g.H, Hq, Wq, dyq.data(), Wf.data(), g.OC * KK, zeros.data(), 0, g.C, dx_planes->data() + n * image);
            }
        };
        // rounding: each element is a sum of n = OC*K*K products (fewer at the borders); its error scale is the sum of
        // their magnitudes, fold(|W|^T |dy_n|). Two orders of summation differ by a few sqrt(n) float epsilons of it.
        std::vector<float> dy_abs(dy.data(), dy.data() + dy.size()), magnitude;
        for (float& v : dy_abs) v = std::abs(v);
        auto magnitudes = [&](const float* W) {
            std::vector<float> W_abs(W, W + g.OC * R);
            for (float& v : W_abs) v = std::abs(v);
            references(W_abs.data(), dy_abs.data(), magnitude, nullptr);
        };
        const double tolerance = 4 * std::sqrt(static_cast<double>(g.OC * g.K * g.K)) * 1.2e-7;
        auto close = [&](const float* dx, const std::vector<float>& want) {
            double worst = 0;  // in units of the tolerance
            for (std::size_t i = 0; i < want.size(); ++i)
                worst = std::max(worst, std::abs(static_cast<double>(dx[i]) - want[i]) / (tolerance * (1e-30 + magnitude[i])));
            return worst;
        };
        std::vector<float> dx_want, dx_planes;
        references(conv.weight().data(), dy.data(), dx_want, &dx_planes);
        magnitudes(conv.weight().data());
        std::vector<float> dx_first;
        for (int threads : {1, 2, 3}) {
            CAPTURE(threads);
            set_num_threads(threads);
            conv.forward(x);
            const Tensor<float>& dx = conv.backward(dy);
            REQUIRE(dx.size() == N * image);
            CHECK(close(dx.data(), dx_want) <= 1.0);
            if (planes || phases || rows) CHECK(std::memcmp(dx.data(), dx_planes.data(), sizeof(float) * dx_planes.size()) == 0);
            if (dx_first.empty()) dx_first.assign(dx.data(), dx.data() + dx.size());
            CHECK(std::memcmp(dx.data(), dx_first.data(), sizeof(float) * dx_first.size()) == 0);
            CHECK(std::memcmp(conv.backward_input(dy).data(), dx_first.data(), sizeof(float) * dx_first.size()) == 0);
        }
        // image 0 alone (after image 1's, so that nothing is left over from image 0's own)
        Tensor<float> x1(Shape{1, g.C, g.H, g.W}), dy1(Shape{1, g.OC, OH, OW}), x_other(x1.shape()), dy_other(dy1.shape());
        std::copy(x.data(), x.data() + image, x1.data());
        std::copy(dy.data(), dy.data() + g.OC * P, dy1.data());
        std::copy(x.data() + image, x.data() + 2 * image, x_other.data());
        std::copy(dy.data() + g.OC * P, dy.data() + 2 * g.OC * P, dy_other.data());
        for (int threads : {1, 2, 3}) {
            CAPTURE(threads);
            set_num_threads(1);
            conv.forward(x_other);
            conv.backward(dy_other);
            set_num_threads(threads);
            conv.forward(x1);
            CHECK(std::memcmp(conv.backward(dy1).data(), dx_first.data(), sizeof(float) * static_cast<std::size_t>(image)) == 0);
            set_num_threads(1);
            conv.backward_input(dy_other);
            set_num_threads(threads);
            CHECK(std::memcmp(conv.backward_input(dy1).data(), dx_first.data(), sizeof(float) * static_cast<std::size_t>(image)) == 0);
        }
        // an output mask: the references with diag(a) W, on 1 and 2 threads
        Tensor<float> a(Shape{g.OC}), c(Shape{g.OC});
        uniform_fill(a, 1.0, rng);
        uniform_fill(c, 1.0, rng);
        conv.output_mask()->set_weight_mask(a);
        conv.output_mask()->set_bias_mask(c);
        std::vector<float> scaled(static_cast<std::size_t>(g.OC * R));
        for (Index o = 0; o < g.OC; ++o)
            for (Index r = 0; r < R; ++r) scaled[static_cast<std::size_t>(o * R + r)] = a[o] * conv.weight().data()[o * R + r];
        references(scaled.data(), dy.data(), dx_want, &dx_planes);
        magnitudes(scaled.data());
        for (int threads : {1, 2}) {
            CAPTURE(threads);
            set_num_threads(threads);
            conv.forward(x);
            const Tensor<float>& dx = conv.backward(dy);
            CHECK(close(dx.data(), dx_want) <= 1.0);
            if (planes || phases || rows) CHECK(std::memcmp(dx.data(), dx_planes.data(), sizeof(float) * dx_planes.size()) == 0);
        }
    }
    set_num_threads(threads_before);
}

// Winograd F(2x2, 3x3) (kernels/conv2d_winograd.hpp) for the forward, input gradient and weight gradient of
// stride-1 3x3 convs with channels in whole vectors: against the direct path (set_winograd(false), bitwise im2col + gemm
// above) within rounding, scaled by the terms' count; the bias gradient bitwise the direct one; bitwise the same
// on 1-4 threads (a batch of 5 is two chunks, 3 + 2: a thread each on 2 and 3 threads, on 4 each image is shared,
// the weight gradient by output channels), alone (batch 1) or in a batch; with an output mask, bitwise a layer with diag(a) W and c * b.
// Stride-1 5x5 convs by F(2x2, 5x5) the same way. Each pass where Winograd pays on its plane
// (detail::winograd_pays), the direct kernels' bits elsewhere.
TEST_CASE("Conv2d by Winograd F(2x2, 3x3), F(4x4, 5x5) and F(2x2, 5x5): the direct results within rounding, the same on any thread count and batch") {
    // 5x5: the forward and the weight gradient by F(4x4, 5x5), small images several to a group
    // (kernels/conv2d_winograd45.hpp); the input gradient by F(2x2, 5x5)
    if (!detail::winograd_applies(16, 16, 3, 1, 1)) {
        MESSAGE("no gemm() vectors here: Winograd does not run");
        return;
    }
    CHECK_FALSE(detail::winograd_applies(8, 16, 3, 1, 1));    // fewer than 16 input channels
    CHECK_FALSE(detail::winograd_applies(16, 18, 3, 1, 1));   // output channels not in whole vectors (of 4, 8 or 16)
    CHECK_FALSE(detail::winograd_applies(16, 16, 3, 2, 1));   // stride 2
    CHECK_FALSE(detail::winograd_applies(16, 16, 3, 1, 3));   // padding 3: the input gradient's 2 - p < 0
    CHECK(detail::winograd_applies(16, 16, 5, 1, 4));
    CHECK_FALSE(detail::winograd_applies(16, 16, 5, 1, 5));   // padding 5: the input gradient's 4 - p < 0
    CHECK_FALSE(detail::winograd_applies(8, 16, 5, 1, 0));    // fewer than 16 input channels
    CHECK_FALSE(detail::winograd_applies(16, 16, 5, 2, 0));   // stride 2
    CHECK_FALSE(detail::winograd_applies(16, 16, 7, 1, 0));   // 7x7
    CHECK(detail::winograd_pays(3, 8, 8, 64));                        // 16 tiles x 16 products against 64 x 9
    CHECK_FALSE(detail::winograd_pays(3, 1, 1, 1));                   // one output: 16 against 9
    CHECK(detail::winograd_pays(5, 8, 8, 64));                        // the seed's second conv: 16 x 36 against 64 x 25
    CHECK_FALSE(detail::winograd_pays(5, 12, 12, 64));                // its input gradient: 36 x 36 against 64 x 25
    struct WinogradCase {
        Geometry g;
        bool forward, dx;  // which run by Winograd (where it pays, detail::winograd_pays); the weight gradient with the forward
    };
    const std::vector<WinogradCase> cases{{{16, 16, 3, 1, 16, 16}, true, true},   // whole tiles, 64 of them: two groups
                                          {{32, 48, 3, 1, 9, 7}, true, true},     // odd outputs: the last tile row and column cut; 3 blocks of 16
                                          {{16, 32, 3, 0, 16, 16}, true, true},   // no padding: the input gradient's padding 2
                                          {{16, 32, 3, 0, 10, 11}, true, false},  // its input gradient's 30 tiles x 16 against 72 x 9: direct
                                          {{48, 16, 3, 2, 5, 6}, true, true},     // padding 2: the input gradient's 0
                                          {{64, 64, 3, 1, 8, 8}, true, true},     // batch 1 on 3 threads: 4 blocks of 16 channels, 1 + 2 + 1
                                          {{16, 16, 3, 1, 1, 1}, false, false},   // one output: all direct
                                          {{16, 32, 5, 0, 12, 12}, true, false},  // 5x5: the seed model's second conv, 4 tiles (F(4x4)): 5 images a group
                                          {{16, 16, 5, 2, 14, 13}, true, true},   // 16 tiles, 3 images a group: 3 + 2; odd columns; dx: 49 tiles, two groups
                                          {{32, 48, 5, 4, 3, 4}, true, true},     // padding 4, odd rows; 3 blocks of 16 output channels
                                          {{64, 64, 5, 2, 6, 6}, true, true},     // 4 tiles; batch 1 on 3 threads: 1 + 2 + 1
                                          {{16, 16, 5, 2, 30, 29}, true, true}};  // 64 tiles: one image, groups of 48 + 16; odd columns
    Rng rng(31);
    const int threads_before = num_threads();
    for (const WinogradCase& wc : cases) {
        const Geometry& g = wc.g;
        CAPTURE(g.C);
        CAPTURE(g.OC);
        CAPTURE(g.K);
        CAPTURE(g.pad);
        CAPTURE(g.H);
        const Index N = 5, image_in = g.C * g.H * g.W, image_out = g.OC * g.OH() * g.OW();
        ConvCase setup = conv_case(g, N, rng, true);
        Conv2d<float>& direct = setup.conv;  // set_winograd(false)
        Conv2d<float> wino(g.C, g.OC, g.K, 1, g.pad);
        wino.weight() = direct.weight();
        wino.bias() = direct.bias();
        CHECK(wino.winograd());
        const Tensor<float>& x = setup.x;
        const Tensor<float>& dy = setup.dy;
        auto worst = [](const Tensor<float>& got, const Tensor<float>& want, double terms) {  // in units of 1e-6 * terms
            double w = 0;
            for (Index i = 0; i < want.size(); ++i) w = std::max(w, std::abs(double(got.data()[i]) - want.data()[i]));
            return w / (1e-6 * terms);
        };
        set_num_threads(2);
        const Tensor<float> y_want = direct.forward(x), dx_want = direct.backward(dy), dw_want = direct.grad_weight();
        const Tensor<float> y = wino.forward(x), dx = wino.backward(dy);
        const Tensor<float> dw = wino.grad_weight(), db = wino.grad_bias();
        CHECK(worst(y, y_want, double(g.C * g.K * g.K)) <= 1.0);
        CHECK(worst(dx, dx_want, double(g.OC * g.K * g.K)) <= 1.0);
        CHECK(worst(dw, dw_want, double(N * g.OH() * g.OW())) <= 1.0);
        // Winograd did run where it should (another rounding), and only there (the direct kernels' bits)
        CHECK((std::memcmp(y.data(), y_want.data(), sizeof(float) * y.size()) != 0) == wc.forward);
        CHECK((std::memcmp(dx.data(), dx_want.data(), sizeof(float) * dx.size()) != 0) == wc.dx);
        CHECK((std::memcmp(dw.data(), dw_want.data(), sizeof(float) * dw.size()) != 0) == wc.forward);
        CHECK(std::memcmp(db.data(), direct.grad_bias().data(), sizeof(float) * db.size()) == 0);
        CHECK(std::memcmp(wino.backward_input(dy).data(), dx.data(), sizeof(float) * dx.size()) == 0);
        // image 1 alone and in the batch, on 1-4 threads
        Tensor<float> x1(Shape{1, g.C, g.H, g.W}), dy1(Shape{1, g.OC, g.OH(), g.OW()});
        std::copy(x.data() + image_in, x.data() + 2 * image_in, x1.data());
        std::copy(dy.data() + image_out, dy.data() + 2 * image_out, dy1.data());
        for (int threads : {1, 2, 3, 4}) {
            CAPTURE(threads);
            set_num_threads(threads);
            CHECK(std::memcmp(wino.forward(x).data(), y.data(), sizeof(float) * y.size()) == 0);
            CHECK(std::memcmp(wino.backward(dy).data(), dx.data(), sizeof(float) * dx.size()) == 0);
            CHECK(std::memcmp(wino.grad_weight().data(), dw.data(), sizeof(float) * dw.size()) == 0);
            CHECK(std::memcmp(wino.grad_bias().data(), db.data(), sizeof(float) * db.size()) == 0);
            CHECK(std::memcmp(wino.backward_input(dy).data(), dx.data(), sizeof(float) * dx.size()) == 0);
            CHECK(std::memcmp(wino.forward(x1).data(), y.data() + image_out, sizeof(float) * static_cast<std::size_t>(image_out)) == 0);
            CHECK(std::memcmp(wino.backward(dy1).data(), dx.data() + image_in, sizeof(float) * static_cast<std::size_t>(image_in)) == 0);
            CHECK(std::memcmp(wino.backward_input(dy1).data(), dx.data() + image_in, sizeof(float) * static_cast<std::size_t>(image_in)) == 0);
        }
        // an output mask: bitwise a layer whose weights are diag(a) W and bias c * b
        Tensor<float> a(Shape{g.OC}), c(Shape{g.OC});
        uniform_fill(a, 1.0, rng);
        uniform_fill(c, 1.0, rng);
        wino.output_mask()->set_weight_mask(a);
        wino.output_mask()->set_bias_mask(c);
        Conv2d<float> scaled = scaled_layer(g, direct, a, c);  // Winograd's too
        for (int threads : {1, 2}) {
            CAPTURE(threads);
            set_num_threads(threads);
            const Tensor<float> y_scaled = scaled.forward(x), dx_scaled = scaled.backward(dy);
            CHECK(std::memcmp(wino.forward(x).data(), y_scaled.data(), sizeof(float) * y_scaled.size()) == 0);
            CHECK(std::memcmp(wino.backward(dy).data(), dx_scaled.data(), sizeof(float) * dx_scaled.size()) == 0);
        }
    }
    set_num_threads(threads_before);
}

// Linear's forward takes one of two products by batch size (a copy of W^T from 64 rows, else y^T = W x^T); on
// gemm() both are every element's k-ordered sum of the same products, so each row's output must be bitwise the
// same whatever batch it came in. On Eigen (no AVX-512) only closeness is asserted.
TEST_CASE("Linear: a row's output does not depend on the batch it came in") {
    Rng rng(23);
    Linear<float> layer(70, 37);
    uniform_fill(layer.weight(), 1.0, rng);
    uniform_fill(layer.bias(), 1.0, rng);
    Tensor<float> big(Shape{100, 70});
    uniform_fill(big, 1.0, rng);
    const Tensor<float> y_big = layer.forward(big);  // 100 rows: the W^T copy
    for (Index rows : {1, 2, 5, 8, 9, 63}) {
        CAPTURE(rows);
        Tensor<float> small(Shape{rows, 70});
        std::copy(big.data(), big.data() + rows * 70, small.data());
        // up to 8 rows: W read in place, 16 x 16 blocks transposed in registers (70 inputs: four whole blocks and
        // 6 columns; 37 outputs: two whole blocks and 5 rows); 9 to 63: y^T = W x^T
        const Tensor<float>& y = layer.forward(small);
        if (Linear<float>::on_gemm()) {
            CHECK(std::memcmp(y.data(), y_big.data(), sizeof(float) * static_cast<std::size_t>(rows * 37)) == 0);
        } else {
            double worst = 0;
            for (Index i = 0; i < rows * 37; ++i) worst = std::max(worst, static_cast<double>(std::abs(y.data()[i] - y_big.data()[i])));
            CHECK(worst < 1e-5);
        }
    }
}

TEST_CASE("the winners-only kernels: whole patches in registers are bitwise the block loops, both within rounding of a double reference") {
    // One image, 70 channels (a whole and a partial mask of 64 for dx), entries at random output positions (about
    // a third of the gradients zero as after a ReLU, one of them -0), for geometries with a
    // whole-patch kernel (3x3 on 16 and 32 channels, 5x5 on 16) and one without (5x5 on 32); with padding 1
    // (border patches: the row-by-row loops beside the whole patches) and with positions a channel wins twice
    // (overlapping pool windows). dW and db (conv2d_winners_image) and dx (conv2d_winners_input_image) against
    // (1) the same sums by the block loops the whole-patch kernels replace (conv2d_winners_blocks,
    // conv2d_winners_patch_blocks), bitwise, where every patch is inside and positions are distinct; (2) a plain
    // double loop over the entries; (3) dW of a chunk of images at once against image after image, bitwise.
    struct Case { Index K, C; bool whole; Index pad; bool distinct; };
    for (const Case c : {Case{3, 16, true, 0, true}, Case{3, 32, true, 0, true}, Case{5, 16, true, 0, true}, Case{5, 32, false, 0, true},
                         Case{3, 16, true, 1, true}, Case{5, 16, true, 0, false}}) {
        CAPTURE(c.K);
        CAPTURE(c.C);
        CAPTURE(c.pad);
        CAPTURE(c.distinct);
        const Index K = c.K, C = c.C, pad = c.pad, H = 9, W = 11, OH = H + 2 * pad - K + 1, OW = W + 2 * pad - K + 1, P = OH * OW;
        const Index OC = 70, Q = 7, E = OC * Q, KKC = K * K * C;
        const bool inside = pad == 0;
        Rng rng(static_cast<std::uint64_t>(K * 100 + C + 7 * pad + (c.distinct ? 0 : 3)));
        std::vector<float> xs(static_cast<std::size_t>(H * W * C)), wt(static_cast<std::size_t>(OC * KKC)), val(E);
        for (auto& v : xs) v = static_cast<float>(rng.uniform(-1, 1));
        for (auto& v : wt) v = static_cast<float>(rng.uniform(-1, 1));
        std::vector<std::int32_t> pos(E);
        for (Index e = 0; e < E; ++e) {
            pos[e] = static_cast<std::int32_t>(rng.below(static_cast<std::uint64_t>(P)));
            val[e] = rng.uniform(0, 1) < 0.35 ? 0.0f : static_cast<float>(rng.uniform(-1, 1));
        }
        val[5] = -0.0f;  // dropped as a zero
        if (c.distinct) {
            for (Index o = 0; o < OC; ++o)  // a channel's positions are distinct (its pool windows do not overlap)
                for (Index q = 1; q < Q; ++q)
                    for (Index r = 0; r < q; ++r)
                        if (pos[o * Q + q] == pos[o * Q + r]) pos[o * Q + q] = static_cast<std::int32_t>((pos[o * Q + q] + 1) % P), r = -1;
        } else {
            for (Index o = 0; o < OC; o += 3) pos[o * Q + 1] = pos[o * Q], val[o * Q + 1] = 0.5f;  // a position won twice
        }
        std::vector<Index> origin(2 * P), block_offset(KKC / kWinnersBlock);
        for (Index p = 0; p < P; ++p) origin[2 * p] = p / OW - pad, origin[2 * p + 1] = p % OW - pad;
        for (Index j = 0; j < KKC / kWinnersBlock; ++j) block_offset[j] = j * kWinnersBlock / (K * C) * W * C + j * kWinnersBlock % (K * C);
        const WinnersGeometry geo{C, K, H, W, OC, Q, P, true, origin.data(), block_offset.data()};
        CHECK(winners_whole_patch<float>(geo, [](auto, auto) {}) == (c.whole && kWinnersWholePatch));
        CHECK(conv2d_winners_weight_images_apply<float>(geo) == (c.whole && kWinnersWholePatch && inside));

        // the kernels under test
        std::vector<float> part(static_cast<std::size_t>(OC * KKC + OC), 0.5f), dxs(xs.size(), 0.25f), gs(std::max(Q, OC)), table(P * OC, 7.0f);
        std::vector<std::int32_t> at(Q);
        std::vector<Index> woff(OC);
        conv2d_winners_image(geo, xs.data(), wt.data(), pos.data(), val.data(), part.data(), static_cast<float*>(nullptr), gs.data(), at.data());
        conv2d_winners_input_image(geo, wt.data(), pos.data(), val.data(), dxs.data(), table.data(), gs.data(), woff.data());

        // (1) the block loops, one block at a time, entry by entry in the kernels' order
        if (inside && c.distinct) {
            std::vector<float> part1(part.size(), 0.5f), dxs1(dxs.size(), 0.25f);
            for (Index o = 0; o < OC; ++o) {
                std::vector<float> g;
                std::vector<std::int32_t> a;
                float db = 0;
                for (Index q = 0; q < Q; ++q) {
                    db += val[o * Q + q];
                    if (val[o * Q + q] == 0.0f) continue;
                    g.push_back(val[o * Q + q]);
                    a.push_back(static_cast<std::int32_t>((origin[2 * pos[o * Q + q]] * W + origin[2 * pos[o * Q + q] + 1]) * C));
                }
                part1[OC * KKC + o] += db;
                for (Index k0 = 0; k0 < KKC; k0 += kWinnersBlock)
                    conv2d_winners_blocks<1>(k0, static_cast<Index>(g.size()), g.data(), a.data(), xs.data(), part1.data() + o * KKC, block_offset.data());
            }
            for (Index p = 0; p < P; ++p) {
                std::vector<float> g;
                std::vector<Index> wo;
                for (Index e = 0; e < E; ++e)
                    if (pos[e] == p && val[e] != 0.0f) g.push_back(val[e]), wo.push_back(e / Q * KKC);
                if (g.empty()) continue;
                float* d = dxs1.data() + (origin[2 * p] * W + origin[2 * p + 1]) * C;
                for (Index k0 = 0; k0 < KKC; k0 += kWinnersBlock)
                    conv2d_winners_patch_blocks<1>(k0, static_cast<Index>(g.size()), g.data(), wo.data(), wt.data(), d, block_offset.data());
            }
            CHECK(std::memcmp(part.data(), part1.data(), sizeof(float) * part.size()) == 0);
            CHECK(std::memcmp(dxs.data(), dxs1.data(), sizeof(float) * dxs.size()) == 0);
        }

        // (2) the definition, in double
        std::vector<double> part2(part.size(), 0.5), dxs2(dxs.size(), 0.25);
        for (Index e = 0; e < E; ++e) {
            const Index o = e / Q, h0 = origin[2 * pos[e]], w0 = origin[2 * pos[e] + 1];
            part2[OC * KKC + o] += val[e];
            for (Index a = 0; a < K; ++a)
                for (Index b = 0; b < K; ++b)
                    for (Index ch = 0; ch < C; ++ch) {
                        if (h0 + a < 0 || h0 + a >= H || w0 + b < 0 || w0 + b >= W) continue;  // padding
                        const Index i = ((h0 + a) * W + w0 + b) * C + ch, k = (a * K + b) * C + ch;
                        part2[o * KKC + k] += double(val[e]) * xs[i];
                        dxs2[i] += double(val[e]) * wt[o * KKC + k];
                    }
        }
        double err_w = 0, err_x = 0;
        for (std::size_t i = 0; i < part.size(); ++i) err_w = std::max(err_w, std::abs(part[i] - part2[i]));
        for (std::size_t i = 0; i < dxs.size(); ++i) err_x = std::max(err_x, std::abs(dxs[i] - dxs2[i]));
        CHECK(err_w < 1e-5);
        CHECK(err_x < 1e-5);

        // (3) a chunk of three images at once (dW in registers across the images) against image after image,
        // bitwise; the first image as above, the others its entries shifted and its values scaled
        const Index HWC = H * W * C;
        std::vector<float> xs3(static_cast<std::size_t>(3 * HWC)), val3(3 * E), gs3(3 * Q);
        std::vector<std::int32_t> pos3(3 * E);
        std::vector<Index> at3(3 * Q);
        for (Index n = 0; n < 3; ++n) {
            for (Index i = 0; i < HWC; ++i) xs3[n * HWC + i] = xs[(i + 7 * n) % HWC] * (1.0f + 0.25f * n);
            for (Index e = 0; e < E; ++e) pos3[n * E + e] = pos[e], val3[n * E + e] = val[(e + 3 * n) % E];
        }
        std::vector<float> chunk(part.size(), 0.5f), one_by_one(part.size(), 0.5f);
        const bool applied = conv2d_winners_weight_images(geo, 3, xs3.data(), pos3.data(), val3.data(), chunk.data(), gs3.data(), at3.data());
        CHECK(applied == (c.whole && kWinnersWholePatch && inside));
        if (applied) {
            for (Index n = 0; n < 3; ++n)
                conv2d_winners_image(geo, xs3.data() + n * HWC, wt.data(), pos3.data() + n * E, val3.data() + n * E, one_by_one.data(),
                                     static_cast<float*>(nullptr), gs.data(), at.data());
            CHECK(std::memcmp(chunk.data(), one_by_one.data(), sizeof(float) * chunk.size()) == 0);
        }
    }
}

TEST_CASE("the winners-only whole-patch kernels are chosen by kernel size and channels, nothing else") {
    // K = 4 with 420 channels or K = 2 with 824 once shared a lookup key with 5x5 on 16 and 3x3 on 16 channels
    // (K*100 + K*C/16): those must take the block loops, not a whole-patch kernel of another shape.
    const Index origin[2] = {0, 0}, block_offset[1] = {0};
    struct Shape2 { Index K, C; bool whole; };
    for (const Shape2 c : {Shape2{5, 16, true}, Shape2{3, 16, true}, Shape2{3, 32, true}, Shape2{4, 420, false}, Shape2{2, 824, false},
                           Shape2{1, 3248, false}, Shape2{2, 848, false}, Shape2{5, 32, false}, Shape2{3, 48, false}}) {
        const Index K = c.K, C = c.C;
        const bool whole = c.whole;
        CAPTURE(K);
        CAPTURE(C);
        const WinnersGeometry geo{C, K, 8, 8, 16, 4, 1, (K * C) % kWinnersBlock == 0, origin, block_offset};
        int called = 0;
        CHECK(winners_whole_patch<float>(geo, [&](auto k, auto kb) {
            ++called;
            CHECK(decltype(k)::value == K);
            CHECK(decltype(kb)::value * kWinnersBlock == K * C);
        }) == (whole && kWinnersWholePatch));
        CHECK(called == (whole && kWinnersWholePatch ? 1 : 0));
        CHECK_FALSE(winners_whole_patch<double>(geo, [](auto, auto) {}));
    }
}
