// SPDX-License-Identifier: MIT
// Layers: forward against direct definitions, backward against finite differences (double).
#include "gradcheck.hpp"

#include <cstring>
#include <limits>
#include <ostream>

using namespace test;

namespace {

// y[n, o, i, j] = b[o] + sum_{c, a, b} w[o, c, a, b] x[n, c, i*s + a - p, j*s + b - p], straight from the definition.
Tensor<double> direct_conv(const Tensor<double>& x, Conv2d<double>& conv) {
    const Shape ys = conv.output_shape(x.shape());
    Tensor<double> y(ys);
    const Index K = conv.kernel_size(), s = conv.stride(), p = conv.padding();
    for (Index n = 0; n < ys[0]; ++n)
        for (Index o = 0; o < ys[1]; ++o)
            for (Index i = 0; i < ys[2]; ++i)
                for (Index j = 0; j < ys[3]; ++j) {
                    double acc = conv.bias()[o];
                    for (Index c = 0; c < x.dim(1); ++c)
                        for (Index a = 0; a < K; ++a)
                            for (Index b = 0; b < K; ++b) {
                                const Index h = i * s + a - p, w = j * s + b - p;
                                if (h >= 0 && h < x.dim(2) && w >= 0 && w < x.dim(3))
                                    acc += conv.weight()(o, c, a, b) * x(n, c, h, w);
                            }
                    y(n, o, i, j) = acc;
                }
    return y;
}

struct ConvCase {
    Index n, c, h, w, oc, k, stride, pad;
};
std::ostream& operator<<(std::ostream& os, const ConvCase& cc) {  // for CAPTURE
    return os << "[" << cc.n << ", " << cc.c << ", " << cc.h << ", " << cc.w << "] -> " << cc.oc << ", kernel " << cc.k
              << ", stride " << cc.stride << ", padding " << cc.pad;
}
const ConvCase conv_cases[] = {
    {2, 1, 8, 8, 3, 5, 1, 0},    // the seed model's first layer, small
    {2, 3, 7, 6, 4, 3, 1, 1},    // padding 1, non-square image
    {3, 2, 9, 9, 2, 3, 2, 1},    // stride 2 with padding
    {1, 2, 8, 7, 3, 3, 3, 0},    // stride 3, columns left over
    {2, 2, 5, 5, 3, 5, 1, 2},    // padding 2, "same" output size
    {2, 4, 6, 6, 5, 1, 1, 0},    // 1x1 kernel
    {2, 1, 4, 4, 2, 3, 2, 2},    // padding larger than half the kernel
};

}  // namespace

TEST_CASE("Conv2d forward matches the definition of cross-correlation") {
    Rng rng(1);
    for (const auto& cc : conv_cases) {
        CAPTURE(cc);
        Conv2d<double> conv(cc.c, cc.oc, cc.k, cc.stride, cc.pad, 3);
        const auto x = random_tensor(Shape{cc.n, cc.c, cc.h, cc.w}, rng);
        const Tensor<double> y = conv.forward(x);
        const Tensor<double> ref = direct_conv(x, conv);
        REQUIRE(y.shape() == ref.shape());
        CHECK((y.vector() - ref.vector()).cwiseAbs().maxCoeff() < 1e-12);
    }
}

TEST_CASE("Conv2d<float> (gemm kernel, masked im2col and fold) agrees with Conv2d<double>, forward and backward") {
    // The double layer is checked against the definition and finite differences above; the float one takes
    // other code paths (core/gemm.hpp's kernel, AVX-512 im2col/fold where available).
    Rng rng(9);
    for (const auto& cc : conv_cases) {
        CAPTURE(cc);
        Conv2d<double> cd(cc.c, cc.oc, cc.k, cc.stride, cc.pad, 5);
        Conv2d<float> cf(cc.c, cc.oc, cc.k, cc.stride, cc.pad, 5);
        for (Index i = 0; i < cd.weight().size(); ++i) cf.weight().data()[i] = static_cast<float>(cd.weight().data()[i]);
        for (Index i = 0; i < cd.bias().size(); ++i) cf.bias().data()[i] = static_cast<float>(cd.bias().data()[i]);
        const auto xd = random_tensor(Shape{cc.n, cc.c, cc.h, cc.w}, rng);
        Tensor<float> xf(xd.shape());
        for (Index i = 0; i < xd.size(); ++i) xf.data()[i] = static_cast<float>(xd.data()[i]);
        const auto close = [](const Tensor<float>& f, const Tensor<double>& d) {
            REQUIRE(f.shape() == d.shape());
            double worst = 0;
            for (Index i = 0; i < d.size(); ++i) worst = std::max(worst, std::abs(double(f.data()[i]) - d.data()[i]));
            return worst;
        };
        CHECK(close(cf.forward(xf), cd.forward(xd)) < 1e-5);
        const auto gd = random_tensor(cd.output_shape(xd.shape()), rng);
        Tensor<float> gf(gd.shape());
        for (Index i = 0; i < gd.size(); ++i) gf.data()[i] = static_cast<float>(gd.data()[i]);
        CHECK(close(cf.backward(gf), cd.backward(gd)) < 1e-5);
        CHECK(close(cf.grad_weight(), cd.grad_weight()) < 1e-4);
        CHECK(close(cf.grad_bias(), cd.grad_bias()) < 1e-4);
    }
}

TEST_CASE("Conv2d output shape follows PyTorch's formula") {
    CHECK(Conv2d<float>(1, 16, 5).output_shape(Shape{7, 1, 28, 28}) == Shape{7, 16, 24, 24});
    CHECK(Conv2d<float>(3, 8, 3, 2, 1).output_shape(Shape{1, 3, 32, 32}) == Shape{1, 8, 16, 16});
    CHECK(Conv2d<float>(3, 8, 3, 2, 1).output_shape(Shape{1, 3, 7, 7}) == Shape{1, 8, 4, 4});
}

TEST_CASE("Conv2d gradients match finite differences") {
    Rng rng(2);
    for (const auto& cc : conv_cases) {
        CAPTURE(cc);
        Conv2d<double> conv(cc.c, cc.oc, cc.k, cc.stride, cc.pad, 4);
        check_layer_gradients(conv, random_tensor(Shape{cc.n, cc.c, cc.h, cc.w}, rng));
    }
}

TEST_CASE("Conv2d weight gradient sums over more images than one reduction chunk") {
    Rng rng(3);
    Conv2d<double> conv(2, 3, 3, 1, 1, 5);
    check_layer_gradients(conv, random_tensor(Shape{19, 2, 5, 5}, rng));
}

TEST_CASE("Conv2d's weight-gradient chunks follow the batch size alone, as docs/reliability.md states") {
    // 8 images a chunk from 16 images on; below, the batch's two halves (rounded up), so two threads split batch 8
    for (Index n : {0, 1, 2}) CHECK(Conv2d<float>::chunk_images(n) == 1);
    CHECK(Conv2d<float>::chunk_images(3) == 2);
    CHECK(Conv2d<float>::chunk_images(8) == 4);
    CHECK(Conv2d<float>::chunk_images(15) == 8);
    for (Index n : {16, 17, 500}) CHECK(Conv2d<double>::chunk_images(n) == 8);
}

TEST_CASE("Conv2d on an empty batch gives an empty output and zero gradients") {
    Conv2d<double> conv(2, 3, 3, 1, 1, 6);
    const Tensor<double> y = conv.forward(Tensor<double>(Shape{0, 2, 5, 5}));
    CHECK(y.shape() == Shape{0, 3, 5, 5});
    CHECK(conv.backward(y).shape() == Shape{0, 2, 5, 5});
    CHECK(conv.grad_weight().vector().cwiseAbs().sum() == 0.0);
    CHECK(conv.grad_bias().vector().cwiseAbs().sum() == 0.0);
}

TEST_CASE("Conv2d without input gradient still computes parameter gradients") {
    Rng rng(4);
    Conv2d<double> a(2, 3, 3, 1, 1, 6), b(2, 3, 3, 1, 1, 6);
    b.set_input_grad(false);
    const auto x = random_tensor(Shape{3, 2, 6, 6}, rng);
    const auto g = random_tensor(a.output_shape(x.shape()), rng);
    a.forward(x), b.forward(x);
    a.backward(g);
    CHECK(b.backward(g).size() == 0);
    CHECK(a.grad_weight().vector() == b.grad_weight().vector());
    CHECK(a.grad_bias().vector() == b.grad_bias().vector());
}

TEST_CASE("Conv2d::backward_input gives backward's input gradient and leaves the parameter gradients alone") {
    Rng rng(7);
    for (const auto& cc : conv_cases) {
        CAPTURE(cc);
        Conv2d<float> conv(cc.c, cc.oc, cc.k, cc.stride, cc.pad, 8);
        Tensor<float> x(Shape{cc.n, cc.c, cc.h, cc.w}), g(conv.output_shape(x.shape()));
        uniform_fill(x, 1.0, rng);
        uniform_fill(g, 1.0, rng);
        conv.forward(x);
        const Tensor<float> dx = conv.backward(g);
        const Tensor<float> gw = conv.grad_weight();
        Tensor<float> g2 = g;
        g2.vector() *= 2.0f;
        conv.set_grad_enabled(false);  // needs no stored input
        conv.forward(x);
        const Tensor<float> dx2 = conv.backward_input(g2);
        Tensor<float> want = dx;
        want.vector() *= 2.0f;  // exact: a power of two
        CHECK(dx2.vector() == want.vector());
        CHECK(conv.grad_weight().vector() == gw.vector());
    }
    Conv2d<float> fresh(1, 2, 3);
    CHECK_THROWS_WITH_AS(fresh.backward_input(Tensor<float>(Shape{1, 2, 3, 3})), doctest::Contains("before any forward"), std::logic_error);
    fresh.forward(Tensor<float>(Shape{1, 1, 5, 5}));
    CHECK_THROWS_WITH_AS(fresh.backward_input(Tensor<float>(Shape{1, 2, 2, 2})), doctest::Contains("[1, 2, 3, 3]"), std::invalid_argument);
}

TEST_CASE("MaxPool2d forward takes window maxima; gradients match finite differences") {
    Tensor<double> x(Shape{1, 1, 4, 4});
    for (Index i = 0; i < 16; ++i) x[i] = static_cast<double>((i * 7) % 16);  // 0 7 14 5 / 12 3 10 1 / 8 15 6 13 / 4 11 2 9
    MaxPool2d<double> pool(2);
    const Tensor<double> y = pool.forward(x);
    REQUIRE(y.shape() == Shape{1, 1, 2, 2});
    CHECK(y[0] == 12);
    CHECK(y[1] == 14);
    CHECK(y[2] == 15);
    CHECK(y[3] == 13);

    Rng rng(5);
    MaxPool2d<double> p2(2), p3(3, 1), p2s1(2, 1), p3s2(3, 2);
    check_layer_gradients(p2, random_tensor(Shape{2, 3, 6, 6}, rng));
    check_layer_gradients(p3, random_tensor(Shape{2, 2, 5, 5}, rng));
    check_layer_gradients(p2s1, random_tensor(Shape{1, 2, 5, 4}, rng));
    check_layer_gradients(p3s2, random_tensor(Shape{2, 1, 7, 8}, rng));  // leftover rows and columns get no gradient
}

TEST_CASE("MaxPool2d 2x2 (float, the vectorised path) takes the first maximum in row-major order, ties and NaN included") {
    Rng rng(21);
    for (Index H : {2, 3, 8})
        for (Index W : {2, 3, 5, 8, 12, 24, 33, 40, 65}) {
            CAPTURE(H);
            CAPTURE(W);
            Tensor<float> x(Shape{2, 3, H, W});
            for (Index i = 0; i < x.size(); ++i) x.data()[i] = static_cast<float>(rng.below(4)) - 1.0f;  // many ties
            x.data()[rng.below(static_cast<std::uint64_t>(x.size()))] = std::numeric_limits<float>::quiet_NaN();
            MaxPool2d<float> pool(2);
            const Tensor<float> y = pool.forward(x);
            Tensor<float> dy(y.shape());
            for (Index i = 0; i < dy.size(); ++i) dy.data()[i] = static_cast<float>(i + 1);
            const Tensor<float> dx = pool.backward(dy);
            Tensor<float> want_dx(x.shape(), 0.0f);
            for (Index n = 0; n < 2; ++n)
                for (Index c = 0; c < 3; ++c)
                    for (Index i = 0; i < H / 2; ++i)
                        for (Index j = 0; j < W / 2; ++j) {
                            Index bh = 2 * i, bw = 2 * j;  // first maximum in row-major order; a NaN wins
                            for (Index a = 0; a < 2; ++a)
                                for (Index b = 0; b < 2; ++b) {
                                    const float v = x(n, c, 2 * i + a, 2 * j + b), m = x(n, c, bh, bw);
                                    if (!(v <= m) && m == m) bh = 2 * i + a, bw = 2 * j + b;
                                }
                            const float got = y(n, c, i, j), want = x(n, c, bh, bw);
                            REQUIRE((got == want || (std::isnan(got) && std::isnan(want))));
                            want_dx(n, c, bh, bw) += dy(n, c, i, j);
                        }
            CHECK(std::memcmp(dx.data(), want_dx.data(), sizeof(float) * static_cast<std::size_t>(dx.size())) == 0);
        }
}

TEST_CASE("MaxPool2d with gradients disabled gives the same output, keeps no winners and refuses backward") {
    Rng rng(4);
    Tensor<float> x(Shape{2, 3, 6, 6});
    uniform_fill(x, 1.0, rng);
    MaxPool2d<float> pool(2);
    const Tensor<float> train_out = pool.forward(x);
    pool.set_grad_enabled(false);
    CHECK(pool.forward(x).vector() == train_out.vector());
    CHECK_THROWS_WITH_AS(pool.backward(train_out), doctest::Contains("backward after a forward with gradients disabled"), std::logic_error);
}

TEST_CASE("MaxPool2d lets a NaN through rather than hiding it") {
    Tensor<float> x(Shape{1, 1, 2, 2}, 1.0f);
    x[3] = std::nanf("");
    MaxPool2d<float> pool(2);
    CHECK(std::isnan(pool.forward(x)[0]));
}

TEST_CASE("ReLU and Flatten: forward values and finite-difference gradients") {
    Tensor<double> x(Shape{1, 4}, 0.0);
    x[0] = -2, x[1] = -0.5, x[2] = 0.5, x[3] = 3;
    ReLU<double> relu;
    const Tensor<double> y = relu.forward(x);
    CHECK(y[0] == 0);
    CHECK(y[1] == 0);
    CHECK(y[2] == 0.5);
    CHECK(y[3] == 3);

    Rng rng(6);
    ReLU<double> r;
    check_layer_gradients(r, random_tensor(Shape{3, 2, 4, 4}, rng));
    Flatten<double> f;
    CHECK(f.output_shape(Shape{3, 2, 4, 5}) == Shape{3, 40});
    check_layer_gradients(f, random_tensor(Shape{3, 2, 4, 5}, rng));
}

TEST_CASE("Linear forward is x W^T + b; gradients match finite differences") {
    Linear<double> lin(3, 2, true, 9);
    Tensor<double> x(Shape{1, 3});
    x[0] = 1, x[1] = 2, x[2] = 3;
    const Tensor<double> y = lin.forward(x);
    for (Index o = 0; o < 2; ++o)
        CHECK(y[o] == doctest::Approx(lin.bias()[o] + lin.weight()(o, 0) + 2 * lin.weight()(o, 1) + 3 * lin.weight()(o, 2)));

    Rng rng(7);
    Linear<double> a(6, 4, true, 1), b(5, 3, false, 2);
    check_layer_gradients(a, random_tensor(Shape{5, 6}, rng));
    check_layer_gradients(b, random_tensor(Shape{2, 5}, rng));
    CHECK(b.parameters().size() == 1);
}

TEST_CASE("cross_entropy: value from its definition, gradient from finite differences") {
    Tensor<double> z(Shape{2, 3});
    z[0] = 1, z[1] = 2, z[2] = 3, z[3] = 1000, z[4] = 0, z[5] = -1000;  // the second row would overflow a naive softmax
    const std::vector<int> y{2, 0};
    const auto r = cross_entropy(z, y);
    const double row0 = -(3 - std::log(std::exp(1.0) + std::exp(2.0) + std::exp(3.0)));
    CHECK(r.loss == doctest::Approx((row0 + 0.0) / 2).epsilon(1e-12));
    CHECK(std::isfinite(r.grad[4]));

    Rng rng(8);
    Tensor<double> logits = random_tensor(Shape{4, 5}, rng, -3, 3);
    const std::vector<int> labels{0, 4, 2, 2};
    const auto res = cross_entropy(logits, labels);
    CHECK(max_rel_error(logits, res.grad, [&] { return static_cast<double>(cross_entropy(logits, labels).loss); }) < 1e-8);
}

TEST_CASE("cross_entropy rejects bad labels and shapes") {
    Tensor<float> z(Shape{2, 3});
    CHECK_THROWS_WITH_AS(cross_entropy(z, {0, 3}), doctest::Contains("label 3 of sample 1 is outside [0, 3)"), std::invalid_argument);
    CHECK_THROWS_WITH_AS(cross_entropy(z, {0}), doctest::Contains("1 labels for 2 rows"), std::invalid_argument);
    CHECK_THROWS_WITH_AS(cross_entropy(Tensor<float>(Shape{2, 3, 1}), {0, 1}), doctest::Contains("[N, classes]"), std::invalid_argument);
}

TEST_CASE("layers initialise as PyTorch does: U(-1/sqrt(fan_in), 1/sqrt(fan_in)), seeded") {
    Conv2d<float> c(16, 32, 5, 1, 0, 11);
    const float bound = 1.0f / std::sqrt(16.0f * 25.0f);
    CHECK(c.weight().vector().cwiseAbs().maxCoeff() <= bound);
    CHECK(c.weight().vector().cwiseAbs().maxCoeff() > 0.95f * bound);  // the range is used, not a fraction of it
    CHECK(c.bias().vector().cwiseAbs().maxCoeff() <= bound);
    CHECK(std::abs(c.weight().vector().mean()) < 0.05f * bound);
    Conv2d<float> same(16, 32, 5, 1, 0, 11), other(16, 32, 5, 1, 0, 12);
    CHECK(same.weight().vector() == c.weight().vector());
    CHECK(other.weight().vector() != c.weight().vector());
    Linear<float> l(512, 10, true, 3);
    CHECK(l.weight().vector().cwiseAbs().maxCoeff() <= 1.0f / std::sqrt(512.0f));
}

TEST_CASE("layers reject impossible sizes and wrong input shapes") {
    CHECK_THROWS_AS(Conv2d<float>(0, 4, 3), std::invalid_argument);
    CHECK_THROWS_AS(Conv2d<float>(1, 4, 3, 0), std::invalid_argument);
    CHECK_THROWS_AS(Conv2d<float>(1, 4, 3, 1, -1), std::invalid_argument);
    CHECK_THROWS_AS(MaxPool2d<float>(0), std::invalid_argument);
    CHECK_THROWS_AS(Linear<float>(0, 3), std::invalid_argument);
    Conv2d<float> conv(3, 4, 5);
    CHECK_THROWS_WITH_AS(conv.forward(Tensor<float>(Shape{1, 1, 28, 28})), doctest::Contains("expected input [N, 3, H, W], got [1, 1, 28, 28]"),
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(conv.forward(Tensor<float>(Shape{1, 3, 4, 4})), doctest::Contains("got [1, 3, 4, 4]"), std::invalid_argument);
    Linear<float> lin(512, 10);
    CHECK_THROWS_WITH_AS(lin.forward(Tensor<float>(Shape{2, 32, 4, 4})), doctest::Contains("add a Flatten"), std::invalid_argument);
    CHECK_THROWS_AS(MaxPool2d<float>(3).forward(Tensor<float>(Shape{1, 1, 2, 2})), std::invalid_argument);
    ReLU<float> relu;
    relu.forward(Tensor<float>(Shape{2, 3}));
    CHECK_THROWS_WITH_AS(relu.backward(Tensor<float>(Shape{3, 2})), doctest::Contains("gradient of shape [2, 3]"), std::invalid_argument);
}
