// SPDX-License-Identifier: MIT
// The kernels under the layers.
// gemm: the float micro-kernel against a double reference, over shapes that
// hit every tile width, row remainder and column tail; leading dimensions
// larger than the width; accumulate; and no write outside C.
// Im2col: unfold against the definition, fold as its adjoint, for float
// (the AVX-512 path where available) and double (the plain loops), over
// paddings, strides and widths that cross 16-lane chunks.
#include "gradcheck.hpp"

#include <eigencnn/kernels/gemm.hpp>
#include <eigencnn/kernels/im2col.hpp>

#include <doctest/doctest.h>

#include <cmath>
#include <vector>

using namespace eigencnn;

namespace {

struct Case {
    Index M, N, K;
};

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
    // Conv2d and Linear split rows among threads; the result must not change.
    Rng rng(3);
    const Index M = 37, N = 75, K = 50;
    const auto A = random_vector(M * K, rng), B = random_vector(K * N, rng);
    std::vector<float> whole(static_cast<std::size_t>(M * N)), pieces(whole.size());
    gemm(M, N, K, A.data(), K, B.data(), N, whole.data(), N);
    for (Index r = 0; r < M; r += 5) {
        const Index rows = std::min<Index>(5, M - r);
        gemm(rows, N, K, A.data() + r * K, K, B.data(), N, pieces.data() + r * N, N);
    }
    CHECK(whole == pieces);
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
