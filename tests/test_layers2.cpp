// SPDX-License-Identifier: MIT
// The layers of issue 11: values by hand, gradients against finite differences (double) in train and
// eval mode, backward_input against backward, specs through the registry, Dropout's stream.
#include "gradcheck.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <limits>

using namespace test;

namespace {

/// backward_input(G) gives backward(G)'s dx (to `tol`) and leaves every parameter gradient as it was.
void check_backward_input(Layer<double>& layer, const Tensor<double>& x, double tol = 1e-12) {
    Rng rng(11);
    const Tensor<double> y = layer.forward(x);
    const Tensor<double> G = random_tensor(y.shape(), rng);
    const Tensor<double> dx = layer.backward(G);
    for (auto& p : layer.parameters()) p.grad->fill(42.0);
    const Tensor<double> dx2 = layer.backward_input(G);
    CAPTURE(layer.name());
    REQUIRE(dx2.shape() == dx.shape());
    CHECK((dx2.vector() - dx.vector()).cwiseAbs().maxCoeff() <= tol);
    for (auto& p : layer.parameters()) {
        CAPTURE(p.name);
        CHECK(p.grad->vector().cwiseAbs().minCoeff() == 42.0);
        CHECK(p.grad->vector().cwiseAbs().maxCoeff() == 42.0);
    }
}

/// Both checks, for a layer in the given mode.
void check_all(Layer<double>& layer, const Shape& in, Mode mode, std::uint64_t seed = 1) {
    layer.set_mode(mode);
    Rng rng(seed);
    const auto x = random_tensor(in, rng);
    check_layer_gradients(layer, x);
    check_backward_input(layer, x);
}

template <typename T>
void randomise(BatchNormBase<T>& bn, std::uint64_t seed) {
    Rng rng(seed);
    for (Index c = 0; c < bn.num_features(); ++c) {
        bn.weight()[c] = static_cast<T>(rng.uniform(0.5, 1.5));
        bn.bias()[c] = static_cast<T>(rng.uniform(-0.5, 0.5));
        bn.running_mean()[c] = static_cast<T>(rng.uniform(-0.5, 0.5));
        bn.running_var()[c] = static_cast<T>(rng.uniform(0.5, 2.0));
    }
}

}  // namespace

TEST_CASE("BatchNorm2d and BatchNorm1d: gradients match finite differences in train and eval mode") {
    for (Mode mode : {Mode::Train, Mode::Eval}) {
        CAPTURE(mode == Mode::Train);
        BatchNorm2d<double> bn2(3);
        randomise(bn2, 2);
        check_all(bn2, Shape{4, 3, 3, 2}, mode);
        BatchNorm1d<double> bn1(5);
        randomise(bn1, 3);
        check_all(bn1, Shape{6, 5}, mode);
        BatchNorm1d<double> bn1l(2, 1e-3, 0.3);
        randomise(bn1l, 4);
        check_all(bn1l, Shape{3, 2, 4}, mode);
    }
}

TEST_CASE("BatchNorm2d: batch statistics, running statistics and eval output by hand") {
    // One channel, values 1, 2, 3, 4: mean 2.5, biased variance 1.25 (normalising), unbiased 5/3 (running).
    BatchNorm2d<double> bn(1);
    Tensor<double> x(Shape{2, 1, 1, 2});
    for (Index i = 0; i < 4; ++i) x[i] = static_cast<double>(i + 1);
    CHECK(bn.parameters().size() == 2);
    CHECK(bn.parameters()[0].name == "weight");
    CHECK(bn.weight()[0] == 1.0);
    CHECK(bn.bias()[0] == 0.0);
    const Tensor<double> y = bn.forward(x);
    for (Index i = 0; i < 4; ++i) CHECK(y[i] == doctest::Approx((x[i] - 2.5) / std::sqrt(1.25 + 1e-5)).epsilon(1e-14));
    CHECK(bn.running_mean()[0] == doctest::Approx(0.25).epsilon(1e-15));                      // 0.9 * 0 + 0.1 * 2.5
    CHECK(bn.running_var()[0] == doctest::Approx(0.9 + 0.1 * 5.0 / 3.0).epsilon(1e-15));      // 0.9 * 1 + 0.1 * 5/3
    CHECK(bn.num_batches_tracked()[0] == 1.0);
    bn.forward(x);
    CHECK(bn.running_mean()[0] == doctest::Approx(0.9 * 0.25 + 0.25).epsilon(1e-15));
    CHECK(bn.num_batches_tracked()[0] == 2.0);
    std::vector<std::string> names;
    for (auto& b : bn.buffers()) names.push_back(b.name);
    CHECK(names == std::vector<std::string>{"running_mean", "running_var", "num_batches_tracked"});

    // Eval mode: the running statistics, which stay as they are.
    bn.set_mode(Mode::Eval);
    bn.weight()[0] = 2.0;
    bn.bias()[0] = 0.5;
    const double rm = bn.running_mean()[0], rv = bn.running_var()[0];
    const Tensor<double> ye = bn.forward(x);
    for (Index i = 0; i < 4; ++i) CHECK(ye[i] == doctest::Approx(2.0 * (x[i] - rm) / std::sqrt(rv + 1e-5) + 0.5).epsilon(1e-14));
    CHECK(bn.running_mean()[0] == rm);
    CHECK(bn.num_batches_tracked()[0] == 2.0);
    // ...and its input gradient is the per-channel affine map.
    Tensor<double> g(x.shape(), 1.0);
    const Tensor<double> dx = bn.backward(g);
    for (Index i = 0; i < 4; ++i) CHECK(dx[i] == doctest::Approx(2.0 / std::sqrt(rv + 1e-5)).epsilon(1e-14));

    // Train mode needs two values per channel; shapes are checked.
    BatchNorm1d<float> one(3);
    CHECK_THROWS_WITH_AS(one.forward(Tensor<float>(Shape{1, 3})), doctest::Contains("more than 1 value per channel"), std::invalid_argument);
    one.set_mode(Mode::Eval);
    CHECK(one.forward(Tensor<float>(Shape{1, 3})).shape() == Shape{1, 3});
    CHECK_THROWS_WITH_AS(BatchNorm2d<float>(3).forward(Tensor<float>(Shape{2, 4, 2, 2})), doctest::Contains("BatchNorm2d(3): expected input [N, 3, H, W]"),
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(BatchNorm2d<float>(0), doctest::Contains("BatchNorm2d: need 1 <= num_features"), std::invalid_argument);
    CHECK_THROWS_AS(BatchNorm1d<float>(2, 1e-5, 1.5), std::invalid_argument);
}

TEST_CASE("BatchNorm2d<float> agrees with BatchNorm2d<double> and is bitwise the same on 1 and 2 threads") {
    Rng rng(5);
    const auto xd = random_tensor(Shape{8, 4, 5, 5}, rng, -3, 3);
    Tensor<float> xf(xd.shape());
    for (Index i = 0; i < xd.size(); ++i) xf[i] = static_cast<float>(xd[i]);
    auto run = [&](int threads) {
        set_num_threads(threads);
        BatchNorm2d<float> bn(4);
        randomise(bn, 6);
        Tensor<float> y = bn.forward(xf);
        Tensor<float> dx = bn.backward(y);
        return std::make_pair(y, dx);
    };
    const auto one = run(1), two = run(2);
    set_num_threads(2);
    CHECK(one.first.vector() == two.first.vector());
    CHECK(one.second.vector() == two.second.vector());
    BatchNorm2d<double> bd(4);
    randomise(bd, 6);
    const Tensor<double> yd = bd.forward(xd);
    for (Index i = 0; i < yd.size(); ++i) REQUIRE(std::abs(one.first[i] - yd[i]) < 1e-5);
}

// BatchNorm2d's sums run a block of channels at a time, interleaved (a whole block of 8 in registers, other
// blocks in arrays); the block size follows the thread count. Each channel's sums keep their order (over n,
// then i), so everything is bitwise the same on 1 to 4 threads (16 channels: blocks of 8 on 1 and 2 threads,
// 6 and 4 on 3 and 4; 19 channels: 7 and 5), and the running mean is exactly the per-channel sum's.
TEST_CASE("BatchNorm2d: blocks of interleaved channel sums, bitwise the same on 1 to 4 threads, the running mean exact") {
    Rng rng(10);
    for (const Index C : {16, 19}) {
        CAPTURE(C);
        const auto xd = random_tensor(Shape{6, C, 5, 7}, rng, -3, 3), gd = random_tensor(Shape{6, C, 5, 7}, rng);
        Tensor<float> x(xd.shape()), dy(gd.shape());
        for (Index i = 0; i < x.size(); ++i) x[i] = static_cast<float>(xd[i]), dy[i] = static_cast<float>(gd[i]);
        std::vector<std::vector<float>> outputs;
        for (const int threads : {1, 2, 3, 4}) {
            set_num_threads(threads);
            BatchNorm2d<float> bn(C);
            randomise(bn, 11);
            const float running_mean_before = bn.running_mean()[C - 1];
            const Tensor<float> y = bn.forward(x);
            const Tensor<float> dx = bn.backward(dy);
            std::vector<float> all(y.data(), y.data() + y.size());
            all.insert(all.end(), dx.data(), dx.data() + dx.size());
            for (Index c = 0; c < C; ++c)
                all.push_back(bn.grad_weight()[c]), all.push_back(bn.grad_bias()[c]), all.push_back(bn.running_mean()[c]), all.push_back(bn.running_var()[c]);
            outputs.push_back(all);
            double sum = 0;  // the last channel's mean, over n then i, in double
            for (Index n = 0; n < 6; ++n)
                for (Index i = 0; i < 35; ++i) sum += x[(n * C + C - 1) * 35 + i];
            CHECK(bn.running_mean()[C - 1] == static_cast<float>(0.9 * running_mean_before + 0.1 * (sum / 210.0)));
        }
        set_num_threads(2);
        for (std::size_t t = 1; t < outputs.size(); ++t) CHECK(outputs[0] == outputs[t]);
    }
}

namespace {

/// The per-channel reference for BatchNorm1d on [N, C] (llm.c style: the loops of the formula at the top
/// of batchnorm.hpp, one channel at a time, sums over n in double), train or eval, forward and backward.
struct BatchNormReference {
    std::vector<float> y, dx, dweight, dbias, running_mean, running_var;
};

BatchNormReference batchnorm1d_reference(BatchNorm1d<float>& bn, const Tensor<float>& x, const Tensor<float>& dy, bool train) {
    const Index N = x.dim(0), C = x.dim(1);
    BatchNormReference r;
    r.y.resize(static_cast<std::size_t>(N * C));
    r.dx.resize(r.y.size());
    for (Index c = 0; c < C; ++c) {
        double mean = bn.running_mean()[c], var = bn.running_var()[c];
        if (train) {
            double sum = 0, sq = 0;
            for (Index n = 0; n < N; ++n) sum += x[n * C + c];
            mean = sum / static_cast<double>(N);
            for (Index n = 0; n < N; ++n) sq += (x[n * C + c] - mean) * (x[n * C + c] - mean);
            var = sq / static_cast<double>(N);
            r.running_mean.push_back(static_cast<float>(0.9 * bn.running_mean()[c] + 0.1 * mean));
            r.running_var.push_back(static_cast<float>(0.9 * bn.running_var()[c] + 0.1 * var * static_cast<double>(N) / static_cast<double>(N - 1)));
        }
        const double inv = 1 / std::sqrt(var + bn.eps());
        std::vector<float> xhat(static_cast<std::size_t>(N));
        for (Index n = 0; n < N; ++n) {
            const double h = (x[n * C + c] - mean) * inv;
            xhat[static_cast<std::size_t>(n)] = static_cast<float>(h);
            r.y[static_cast<std::size_t>(n * C + c)] = static_cast<float>(static_cast<double>(bn.weight()[c]) * h + static_cast<double>(bn.bias()[c]));
        }
        double db = 0, dw = 0;
        for (Index n = 0; n < N; ++n) {
            db += dy[n * C + c];
            dw += static_cast<double>(dy[n * C + c]) * xhat[static_cast<std::size_t>(n)];
        }
        r.dbias.push_back(static_cast<float>(db));
        r.dweight.push_back(static_cast<float>(dw));
        const double k = static_cast<double>(bn.weight()[c]) * static_cast<float>(inv), m = static_cast<double>(N);
        for (Index n = 0; n < N; ++n) {
            const std::size_t e = static_cast<std::size_t>(n * C + c);
            r.dx[e] = train ? static_cast<float>(k / m * (m * dy[n * C + c] - db - xhat[static_cast<std::size_t>(n)] * dw)) : static_cast<float>(k * dy[n * C + c]);
        }
    }
    return r;
}

}  // namespace

TEST_CASE("BatchNorm1d on [N, C]: the blocked, vectorised loops agree with the per-channel reference, bitwise on 1, 2 and 3 threads") {
    // 77 features: two full blocks of 32 and a partial one; 33 samples.
    Rng rng(8);
    const auto xd = random_tensor(Shape{33, 77}, rng, -3, 3), gd = random_tensor(Shape{33, 77}, rng);
    Tensor<float> x(xd.shape()), dy(gd.shape());
    for (Index i = 0; i < x.size(); ++i) x[i] = static_cast<float>(xd[i]), dy[i] = static_cast<float>(gd[i]);
    for (const bool train : {true, false}) {
        CAPTURE(train);
        std::vector<std::vector<float>> outputs;
        for (const int threads : {1, 2, 3}) {
            set_num_threads(threads);
            BatchNorm1d<float> bn(77);
            randomise(bn, 9);
            bn.set_mode(train ? Mode::Train : Mode::Eval);
            const BatchNormReference ref = batchnorm1d_reference(bn, x, dy, train);
            const Tensor<float> y = bn.forward(x);
            const Tensor<float> dx = bn.backward(dy);
            std::vector<float> all(y.data(), y.data() + y.size());
            all.insert(all.end(), dx.data(), dx.data() + dx.size());
            for (Index c = 0; c < 77; ++c) all.push_back(bn.grad_weight()[c]), all.push_back(bn.grad_bias()[c]), all.push_back(bn.running_mean()[c]);
            outputs.push_back(all);
            // Against the reference: the same sums in the same order, so equal up to the compiler's
            // freedom to fuse w * h + b into one rounding (1 ulp of y); the statistics exactly.
            for (Index i = 0; i < y.size(); ++i) REQUIRE(std::abs(y[i] - ref.y[static_cast<std::size_t>(i)]) <= 4e-7f * (1 + std::abs(ref.y[static_cast<std::size_t>(i)])));
            for (Index i = 0; i < dx.size(); ++i) REQUIRE(std::abs(dx[i] - ref.dx[static_cast<std::size_t>(i)]) <= 4e-7f * (1 + std::abs(ref.dx[static_cast<std::size_t>(i)])));
            for (Index c = 0; c < 77; ++c) {
                const std::size_t k = static_cast<std::size_t>(c);
                REQUIRE(bn.grad_bias()[c] == ref.dbias[k]);
                REQUIRE(std::abs(bn.grad_weight()[c] - ref.dweight[k]) <= 1e-6f * (1 + std::abs(ref.dweight[k])));
                if (train) {
                    REQUIRE(bn.running_mean()[c] == ref.running_mean[k]);
                    REQUIRE(bn.running_var()[c] == ref.running_var[k]);
                }
            }
        }
        set_num_threads(2);
        CHECK(outputs[0] == outputs[1]);
        CHECK(outputs[0] == outputs[2]);
    }
}

TEST_CASE("Dropout: inverted scaling from the layer's stream, identity in eval mode, gradients through the mask") {
    Dropout<double> drop(0.25);
    drop.rng().reseed(77);
    Tensor<double> x(Shape{50, 40}, 1.0);
    const Tensor<double> y = drop.forward(x);
    Rng same(77);
    Index zeros = 0;
    for (Index i = 0; i < y.size(); ++i) {
        const bool keep = same.uniform() >= 0.25;  // the draw the layer makes for element i
        REQUIRE(y[i] == (keep ? 1.0 / 0.75 : 0.0));
        zeros += !keep;
    }
    CHECK(zeros > 400);  // about a quarter of 2000
    CHECK(zeros < 600);
    // dx = dy * mask
    Tensor<double> g(x.shape());
    for (Index i = 0; i < g.size(); ++i) g[i] = static_cast<double>(i);
    const Tensor<double> dx = drop.backward(g);
    for (Index i = 0; i < g.size(); ++i) REQUIRE(dx[i] == g[i] * y[i]);
    CHECK(drop.backward_input(g).vector() == dx.vector());
    // The next forward draws a new mask.
    CHECK(drop.forward(x).vector() != y.vector());
    // Finite differences with the mask held fixed (the stream rewound before each forward).
    Rng rng(3);
    auto xr = random_tensor(Shape{4, 6}, rng);
    const auto state = drop.rng().state();
    const Tensor<double> yr = drop.forward(xr);
    const Tensor<double> G = random_tensor(yr.shape(), rng);
    const Tensor<double> dxr = drop.backward(G);
    CHECK(max_rel_error(xr, dxr, [&] {
              drop.rng().set_state(state);
              return dot(drop.forward(xr), G);
          }) < 1e-8);
    // Eval mode: the identity, and no draw from the stream.
    drop.set_mode(Mode::Eval);
    const auto before = drop.rng().state();
    CHECK(drop.forward(xr).vector() == xr.vector());
    CHECK(drop.backward(G).vector() == G.vector());
    CHECK(drop.rng().state() == before);
    // p = 0 and p = 1
    Dropout<float> none(0.0), all(1.0);
    Tensor<float> xf(Shape{3, 3}, 2.0f);
    CHECK(none.forward(xf).vector() == xf.vector());
    CHECK(all.forward(xf).vector().cwiseAbs().maxCoeff() == 0.0f);
    CHECK_THROWS_WITH_AS(Dropout<float>(1.5), doctest::Contains("Dropout: p must be in [0, 1], got 1.5"), std::invalid_argument);
}

TEST_CASE("AvgPool2d: windows by hand (padding counted), gradients by finite differences") {
    Tensor<double> x(Shape{1, 1, 3, 3});
    for (Index i = 0; i < 9; ++i) x[i] = static_cast<double>(i + 1);
    AvgPool2d<double> pool(2, 1, 1);  // windows over the padded 5x5 image, all divided by 4
    const Tensor<double> y = pool.forward(x);
    REQUIRE(y.shape() == Shape{1, 1, 4, 4});
    CHECK(y(0, 0, 0, 0) == doctest::Approx(1.0 / 4));
    CHECK(y(0, 0, 1, 1) == doctest::Approx((1 + 2 + 4 + 5) / 4.0));
    CHECK(y(0, 0, 3, 3) == doctest::Approx(9.0 / 4));
    CHECK(AvgPool2d<double>(2).forward(x).shape() == Shape{1, 1, 1, 1});
    CHECK(AvgPool2d<double>(2).forward(x)[0] == doctest::Approx(3.0));
    for (const auto& [k, s, p] : std::vector<std::array<Index, 3>>{{2, 2, 0}, {3, 2, 1}, {3, 1, 1}, {2, 3, 1}}) {
        AvgPool2d<double> ap(k, s, p);
        check_all(ap, Shape{2, 3, 7, 6}, Mode::Train);
    }
    CHECK(AvgPool2d<float>(4).name() == "AvgPool2d(kernel_size=4, stride=4)");
    CHECK_THROWS_WITH_AS(AvgPool2d<float>(2, 2, 2), doctest::Contains("padding <= kernel_size / 2"), std::invalid_argument);
    CHECK_THROWS_WITH_AS(AvgPool2d<float>(5).forward(Tensor<float>(Shape{1, 1, 4, 4})), doctest::Contains("AvgPool2d(kernel_size=5, stride=5)"),
                         std::invalid_argument);
}

TEST_CASE("AdaptiveAvgPool2d: the global mean, PyTorch's cells for other sizes, gradients") {
    Rng rng(8);
    const auto x = random_tensor(Shape{2, 3, 5, 4}, rng);
    AdaptiveAvgPool2d<double> gap(1);
    const Tensor<double> y = gap.forward(x);
    REQUIRE(y.shape() == Shape{2, 3, 1, 1});
    for (Index n = 0; n < 2; ++n)
        for (Index c = 0; c < 3; ++c) {
            double s = 0;
            for (Index h = 0; h < 5; ++h)
                for (Index w = 0; w < 4; ++w) s += x(n, c, h, w);
            CHECK(y(n, c, 0, 0) == doctest::Approx(s / 20).epsilon(1e-14));
        }
    // Output 3 over 5 rows: cells [0, 2), [1, 4), [3, 5) as PyTorch's floor/ceil split.
    AdaptiveAvgPool2d<double> ap3(3);
    const Tensor<double> y3 = ap3.forward(x);
    CHECK(y3(1, 2, 1, 0) == doctest::Approx((x(1, 2, 1, 0) + x(1, 2, 2, 0) + x(1, 2, 3, 0) + x(1, 2, 1, 1) + x(1, 2, 2, 1) + x(1, 2, 3, 1)) / 6));
    check_all(gap, Shape{2, 3, 5, 4}, Mode::Train);
    check_all(ap3, Shape{2, 2, 5, 7}, Mode::Train);
    CHECK_THROWS_WITH_AS(AdaptiveAvgPool2d<float>(0), doctest::Contains("AdaptiveAvgPool2d: need 1 <= output_size"), std::invalid_argument);
}

TEST_CASE("LeakyReLU, Sigmoid, Tanh, Softmax and LogSoftmax: values and gradients") {
    Tensor<double> x(Shape{1, 4});
    x[0] = -2, x[1] = -0.5, x[2] = 0.5, x[3] = 3;
    LeakyReLU<double> leaky;
    CHECK(leaky.forward(x)[0] == doctest::Approx(-0.02));
    CHECK(leaky.forward(x)[3] == 3.0);
    CHECK(leaky.name() == "LeakyReLU(negative_slope=0.01)");
    Sigmoid<double> sig;
    CHECK(sig.forward(x)[2] == doctest::Approx(1 / (1 + std::exp(-0.5))).epsilon(1e-15));
    Tensor<double> big(Shape{1, 2});
    big[0] = -800, big[1] = 800;  // no overflow either way
    CHECK(sig.forward(big)[0] == 0.0);
    CHECK(sig.forward(big)[1] == 1.0);
    Tanh<double> th;
    CHECK(th.forward(x)[1] == doctest::Approx(std::tanh(-0.5)).epsilon(1e-15));
    Softmax<double> sm;
    const double z = std::exp(-2) + std::exp(-0.5) + std::exp(0.5) + std::exp(3);
    CHECK(sm.forward(x)[3] == doctest::Approx(std::exp(3) / z).epsilon(1e-14));
    LogSoftmax<double> lsm;
    CHECK(lsm.forward(x)[0] == doctest::Approx(-2 - std::log(z)).epsilon(1e-14));
    CHECK(sm.forward(big)[1] == 1.0);  // shifted by the maximum: no overflow
    CHECK(lsm.forward(big)[0] == doctest::Approx(-1600));

    LeakyReLU<double> steep(0.3), flat(0.0), negative(-0.5);  // a negative slope keeps a copy of x for backward
    for (Layer<double>* l : std::vector<Layer<double>*>{&leaky, &steep, &flat, &negative, &sig, &th, &sm, &lsm}) {
        check_all(*l, Shape{3, 5}, Mode::Train);
        check_all(*l, Shape{2, 3, 2, 3}, Mode::Eval, 2);  // Softmax over dim 1 of an image: per pixel, across channels
    }
    // Softmax of [N, C, H, W] sums to 1 over the channels at each pixel.
    Rng rng(4);
    const Tensor<double> p = sm.forward(random_tensor(Shape{2, 3, 2, 2}, rng, -5, 5));
    for (Index n = 0; n < 2; ++n)
        for (Index i = 0; i < 4; ++i) CHECK(p[n * 12 + i] + p[n * 12 + 4 + i] + p[n * 12 + 8 + i] == doctest::Approx(1.0).epsilon(1e-14));
    CHECK_THROWS_WITH_AS(sm.forward(Tensor<double>(Shape{4})), doctest::Contains("Softmax(dim=1): expected input [N, C, ...]"), std::invalid_argument);
}

TEST_CASE("Sigmoid and Tanh in float (vectorised): within 1e-6 relative of the exact value, NaN kept, any thread count") {
    // About 460,000 floats spread geometrically over 1e-8..100 of both signs, and the edges: relative error against
    // long double where the exact value is a normal float (sigmoid of a large negative x keeps its relative accuracy).
    std::vector<float> values{0.0f, -0.0f, 1e-30f, -1e-30f, 88.0f, -88.0f, 1e4f, -1e4f, std::numeric_limits<float>::infinity(),
                              -std::numeric_limits<float>::infinity()};
    for (float v = 1e-8f; v < 100.0f; v = std::nextafter(v, 200.0f) + v * 1e-4f) values.push_back(v), values.push_back(-v);
    Tensor<float> x(Shape{static_cast<Index>(values.size())});
    std::copy(values.begin(), values.end(), x.data());
    Sigmoid<float> sig;
    Tanh<float> th;
    const Tensor<float> s = sig.forward(x), t = th.forward(x);
    double sig_error = 0, tanh_error = 0;
    for (Index i = 0; i < x.size(); ++i) {
        const long double xi = x[i];
        const long double s_exact = 1.0L / (1.0L + std::exp(-xi)), t_exact = std::tanh(xi);
        if (s_exact > 1e-37L) sig_error = std::max(sig_error, static_cast<double>(std::fabs(s[i] - s_exact) / s_exact));
        if (std::fabs(t_exact) > 1e-37L) tanh_error = std::max(tanh_error, static_cast<double>(std::fabs(t[i] - t_exact) / std::fabs(t_exact)));
        else CHECK(t[i] == 0.0f);
    }
    INFO(x.size(), " values; largest relative error sigmoid ", sig_error, ", tanh ", tanh_error);
    CHECK(x.size() > 100000);
    CHECK(sig_error < 1e-6);
    CHECK(tanh_error < 1e-6);
    CHECK(s[0] == 0.5f);
    CHECK(s[8] == 1.0f);
    CHECK(s[9] == 0.0f);
    CHECK(t[8] == 1.0f);
    CHECK(t[9] == -1.0f);
    x[3] = std::numeric_limits<float>::quiet_NaN();
    CHECK(std::isnan(sig.forward(x)[3]));
    CHECK(std::isnan(th.forward(x)[3]));

    // Bitwise the same on 1, 2 and 3 threads (the packet and scalar paths round differently: fixed chunks).
    Rng rng(7);
    const auto to_float = [](const Tensor<double>& d) {
        Tensor<float> f(d.shape());
        for (Index i = 0; i < d.size(); ++i) f[i] = static_cast<float>(d[i]);
        return f;
    };
    const Tensor<float> z = to_float(random_tensor(Shape{3, 7, 53, 41}, rng, -6, 6)), dz = to_float(random_tensor(z.shape(), rng));
    const auto run = [&](Layer<float>& layer, int threads) {
        set_num_threads(threads);
        const Tensor<float>& y = layer.forward(z);
        std::vector<float> both(y.data(), y.data() + y.size());
        const Tensor<float>& dx = layer.backward(dz);
        both.insert(both.end(), dx.data(), dx.data() + dx.size());
        return both;
    };
    for (Layer<float>* layer : std::vector<Layer<float>*>{&sig, &th}) {
        const auto one = run(*layer, 1);
        CHECK(run(*layer, 2) == one);
        CHECK(run(*layer, 3) == one);
    }
    set_num_threads(2);
}

TEST_CASE("Conv2d without bias: no bias parameter, no bias in the output, gradients, the 6-argument spec") {
    Conv2d<double> conv(2, 3, 3, 1, 1, no_bias);
    CHECK(conv.parameters().size() == 1);
    CHECK(conv.num_parameters() == 3 * 2 * 9);
    CHECK(conv.name() == "Conv2d(2, 3, kernel_size=3, stride=1, padding=1, bias=false)");
    CHECK(conv.spec() == LayerSpec{"Conv2d", {2, 3, 3, 1, 1, 0}});
    // Zero input, zero output: nothing is added.
    CHECK(conv.forward(Tensor<double>(Shape{1, 2, 4, 4})).vector().cwiseAbs().maxCoeff() == 0.0);
    check_all(conv, Shape{3, 2, 5, 4}, Mode::Train);
    // Same weights as a biased conv whose bias is 0: the same output.
    Conv2d<double> with(2, 3, 3, 1, 1, 9, true);
    with.weight() = conv.weight();
    with.bias().set_zero();
    Rng rng(1);
    const auto x = random_tensor(Shape{2, 2, 5, 5}, rng);
    CHECK(with.forward(x).vector() == conv.forward(x).vector());
    // The weight draws are PyTorch's order without the bias draws: the same weights as a biased conv from the same seed.
    CHECK(Conv2d<float>(2, 3, 3, 1, 1, 5, false).weight().vector() == Conv2d<float>(2, 3, 3, 1, 1, 5).weight().vector());
    // Old 5-argument specs mean bias=true; {..., 1} too; spec_parameter_count agrees.
    CHECK(make_layer<float>({"Conv2d", {2, 3, 3, 1, 1}})->parameters().size() == 2);
    CHECK(make_layer<float>({"Conv2d", {2, 3, 3, 1, 1, 1}})->parameters().size() == 2);
    CHECK(spec_parameter_count<float>({"Conv2d", {2, 3, 3, 1, 1, 0}}) == 54);
    CHECK(spec_parameter_count<float>({"Conv2d", {2, 3, 3, 1, 1}}) == 57);
    CHECK_THROWS_WITH_AS(make_layer<float>({"Conv2d", {2, 3, 3, 1, 1, 2}}), doctest::Contains("bias = 2 is outside [0, 1]"), std::invalid_argument);
    CHECK_THROWS_WITH_AS(make_layer<float>({"Conv2d", {2, 3, 3, 1}}), doctest::Contains("Conv2d takes 5 arguments"), std::invalid_argument);
    // Fused with a pool (the conv-pool step uses the internal zero bias): same output as unfused.
    Sequential<float> fused(3), plain(3);
    for (auto* net : {&fused, &plain}) net->emplace<Conv2d>(2, 8, 3, 1, 1, no_bias).emplace<ReLU>().emplace<MaxPool2d>(2);
    plain.set_fusion(false);
    Tensor<float> xf(Shape{2, 2, 6, 6});
    for (Index i = 0; i < xf.size(); ++i) xf[i] = static_cast<float>(x[i % x.size()]);
    CHECK(fused.forward(xf).vector() == plain.forward(xf).vector());
}

TEST_CASE("every new layer's spec goes through the registry and back, float and double") {
    const std::vector<LayerSpec> specs{{"BatchNorm2d", {16, 1e-5, 0.1}}, {"BatchNorm1d", {7, 0.001, 0.25}}, {"Dropout", {0.3}},
                                       {"AvgPool2d", {3, 2, 1}},         {"AdaptiveAvgPool2d", {1}},         {"LeakyReLU", {0.2}},
                                       {"Sigmoid", {}},                  {"Tanh", {}},                       {"Softmax", {}},
                                       {"LogSoftmax", {}},               {"Conv2d", {3, 4, 3, 2, 1, 0}}};
    for (const auto& s : specs) {
        CAPTURE(s.str());
        CHECK(make_layer<float>(s)->spec() == s);
        CHECK(make_layer<double>(s)->spec() == s);
        CHECK(spec_parameter_count<float>(s) == static_cast<std::uint64_t>(make_layer<float>(s)->num_parameters()));
    }
    CHECK(BatchNorm2d<float>(16).spec() == specs[0]);
    CHECK(BatchNorm2d<float>(16).name() == "BatchNorm2d(16)");
    CHECK(make_layer<float>(specs[1])->name() == "BatchNorm1d(7, eps=0.001, momentum=0.25)");
    CHECK_THROWS_WITH_AS(make_layer<float>({"Dropout", {1.5}}), doctest::Contains("p = 1.5 is outside [0.0, 1.0]"), std::invalid_argument);
    CHECK_THROWS_WITH_AS(make_layer<float>({"BatchNorm2d", {16}}), doctest::Contains("BatchNorm2d takes 3 arguments"), std::invalid_argument);
}
