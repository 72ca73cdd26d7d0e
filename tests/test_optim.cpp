// Adam and SGD against updates worked out by hand for a single scalar parameter.
#include <doctest/doctest.h>
#include <eigencnn/eigencnn.hpp>

#include <cmath>

using namespace eigencnn;

namespace {
struct Scalar {
    Tensor<double> value{Shape{1}}, grad{Shape{1}};
    std::vector<Parameter<double>> params() { return {{"p", &value, &grad}}; }
};
}  // namespace

TEST_CASE("Adam: three steps with PyTorch's defaults, lr 0.1") {
    // p0 = 1, gradients 0.5, -0.3, 0.2.
    // t=1: m = 0.05, v = 0.00025; m/(1-0.9) = 0.5, v/(1-0.999) = 0.25, sqrt = 0.5
    //      p = 1 - 0.1 * 0.5 / (0.5 + 1e-8)                                  = 0.900000002
    // t=2: m = 0.045 - 0.03 = 0.015, v = 0.00024975 + 0.00009 = 0.00033975
    //      p = 0.900000002 - (0.1 / 0.19) * 0.015 / (sqrt(0.00033975 / 0.001999) + 1e-8) = 0.88085019894
    // t=3: m = 0.0135 + 0.02 = 0.0335, v = 0.00033941025 + 0.00004 = 0.00037941025
    //      p = 0.88085019894 - (0.1 / 0.271) * 0.0335 / (sqrt(0.00037941025 / 0.002997001) + 1e-8) = 0.84610743079
    Scalar s;
    s.value[0] = 1.0;
    Adam<double> adam(s.params(), AdamOptions{0.1});
    const double grads[] = {0.5, -0.3, 0.2};
    const double expected[] = {0.900000002, 0.8808501989417752, 0.846107430790882};
    for (int t = 0; t < 3; ++t) {
        s.grad[0] = grads[t];
        adam.step();
        CHECK(s.value[0] == doctest::Approx(expected[t]).epsilon(1e-12));
    }
    CHECK(adam.steps() == 3);
    CHECK(adam.exp_avg(0)[0] == doctest::Approx(0.0335).epsilon(1e-12));
    CHECK(adam.exp_avg_sq(0)[0] == doctest::Approx(0.00037941025).epsilon(1e-12));
}

TEST_CASE("Adam: weight decay is added to the gradient (L2, as torch.optim.Adam)") {
    // p0 = 2, gradient 1 twice, lr 0.01, weight_decay 0.1: g1 = 1 + 0.2 = 1.2, the first step moves by lr.
    //   t=1: p = 2 - 0.01 * 1.2 / (1.2 + 1e-8)                                 = 1.99000000008333
    //   t=2: g2 = 1 + 0.199 = 1.199; m = 0.108 + 0.1199 = 0.2279; v = 0.001438560 + 0.0014376 = ...
    //        p = 1.9800002183399172
    Scalar s;
    s.value[0] = 2.0;
    Adam<double> adam(s.params(), AdamOptions{0.01, 0.9, 0.999, 1e-8, 0.1});
    s.grad[0] = 1.0;
    adam.step();
    CHECK(s.value[0] == doctest::Approx(1.9900000000833333).epsilon(1e-12));
    s.grad[0] = 1.0;
    adam.step();
    CHECK(s.value[0] == doctest::Approx(1.9800002183399172).epsilon(1e-12));
}

TEST_CASE("Adam updates every element of every parameter independently") {
    Tensor<float> a(Shape{2, 2}, 1.0f), ga(Shape{2, 2}), b(Shape{3}, -1.0f), gb(Shape{3});
    ga[0] = 1, ga[1] = -1, ga[2] = 0, ga[3] = 4;
    gb.fill(2.0f);
    Adam<float> adam({{"a", &a, &ga}, {"b", &b, &gb}}, AdamOptions{0.5});
    adam.step();  // first step: p -= lr * sign(g) (up to eps) where g != 0
    CHECK(a[0] == doctest::Approx(0.5f));
    CHECK(a[1] == doctest::Approx(1.5f));
    CHECK(a[2] == 1.0f);
    CHECK(a[3] == doctest::Approx(0.5f));
    CHECK(b[2] == doctest::Approx(-1.5f));
}

TEST_CASE("Adam on a tensor large enough to be split among threads matches the scalar update, on 1 and 2 threads") {
    // 40,001 elements: above Adam's parallel threshold, and not divisible by the thread count.
    const Index n = 40001;
    const auto run = [&](int threads) {
        set_num_threads(threads);
        Tensor<double> p(Shape{n}), g(Shape{n});
        for (Index i = 0; i < n; ++i) p[i] = 0.001 * static_cast<double>(i % 97) - 0.05;
        Adam<double> adam({{"p", &p, &g}}, AdamOptions{0.01, 0.9, 0.999, 1e-8, 0.1});
        for (int t = 0; t < 3; ++t) {
            for (Index i = 0; i < n; ++i) g[i] = std::sin(0.37 * static_cast<double>(i) + t);
            adam.step();
        }
        return p;
    };
    const Tensor<double> one = run(1), two = run(2);
    set_num_threads(2);
    CHECK(one.vector() == two.vector());
    // the update written out per element (torch.optim.Adam with L2 weight decay)
    for (Index i : {Index(0), Index(1), n / 2, n - 2, n - 1}) {
        CAPTURE(i);
        double p = 0.001 * static_cast<double>(i % 97) - 0.05, m = 0, v = 0;
        for (int t = 1; t <= 3; ++t) {
            const double g = std::sin(0.37 * static_cast<double>(i) + (t - 1)) + 0.1 * p;
            m = 0.9 * m + 0.1 * g;
            v = 0.999 * v + 0.001 * g * g;
            p -= 0.01 / (1 - std::pow(0.9, t)) * m / (std::sqrt(v) / std::sqrt(1 - std::pow(0.999, t)) + 1e-8);
        }
        CHECK(two[i] == doctest::Approx(p).epsilon(1e-12));
    }
}

TEST_CASE("SGD: plain, momentum and Nesterov steps") {
    const double grads[] = {0.5, -0.3, 0.2};
    SUBCASE("plain") {
        Scalar s;
        s.value[0] = 1.0;
        SGD<double> sgd(s.params(), SGDOptions{0.1});
        s.grad[0] = 0.5;
        sgd.step();
        CHECK(s.value[0] == doctest::Approx(0.95));
    }
    SUBCASE("momentum 0.9: buffers 0.5, 0.15, 0.335") {
        Scalar s;
        s.value[0] = 1.0;
        SGD<double> sgd(s.params(), SGDOptions{0.1, 0.9});
        const double expected[] = {0.95, 0.935, 0.9015};
        for (int t = 0; t < 3; ++t) {
            s.grad[0] = grads[t];
            sgd.step();
            CHECK(s.value[0] == doctest::Approx(expected[t]).epsilon(1e-12));
        }
    }
    SUBCASE("Nesterov: steps g + 0.9 b = 0.95, -0.165") {
        Scalar s;
        s.value[0] = 1.0;
        SGD<double> sgd(s.params(), SGDOptions{0.1, 0.9, 0.0, true});
        const double expected[] = {0.905, 0.9215};
        for (int t = 0; t < 2; ++t) {
            s.grad[0] = grads[t];
            sgd.step();
            CHECK(s.value[0] == doctest::Approx(expected[t]).epsilon(1e-12));
        }
    }
    SUBCASE("weight decay: g = 0.5 + 0.1 * 1") {
        Scalar s;
        s.value[0] = 1.0;
        SGD<double> sgd(s.params(), SGDOptions{0.1, 0.0, 0.1});
        s.grad[0] = 0.5;
        sgd.step();
        CHECK(s.value[0] == doctest::Approx(0.94));
    }
}

TEST_CASE("optimizers reject bad hyper-parameters") {
    Scalar s;
    CHECK_THROWS_WITH_AS(Adam<double>(s.params(), AdamOptions{-1.0}), doctest::Contains("lr=-1"), std::invalid_argument);
    CHECK_THROWS_AS(Adam<double>(s.params(), AdamOptions{0.1, 1.0}), std::invalid_argument);
    CHECK_THROWS_AS(Adam<double>(s.params(), AdamOptions{std::nan("")}), std::invalid_argument);
    CHECK_THROWS_AS(SGD<double>(s.params(), SGDOptions{0.1, 0.0, 0.0, true}), std::invalid_argument);
    Tensor<double> v(Shape{2}), g(Shape{3});
    CHECK_THROWS_WITH_AS(SGD<double>({{"w", &v, &g}}), doctest::Contains("'w'"), std::invalid_argument);
}
