// SPDX-License-Identifier: MIT
// Adam, AdamW and SGD against updates worked out by hand; schedules, clipping, and optimizer state through checkpoints.
#include <doctest/doctest.h>
#include <eigencnn/eigencnn.hpp>

#include <cmath>
#include <cstdio>
#include <limits>
#include <memory>
#include <vector>

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

TEST_CASE("all_finite finds one NaN or infinity anywhere, in tensors split among threads or not, on 1 and 2 threads") {
    const int threads_before = num_threads();
    for (int threads : {1, 2})
        for (Index n : {Index(1), Index(4095), Index(4097), Index(5 * kFixedChunk + 3)}) {  // the last: in parallel
            set_num_threads(threads);
            CAPTURE(threads);
            CAPTURE(n);
            Tensor<float> t(Shape{n});
            for (Index i = 0; i < n; ++i) t[i] = static_cast<float>(i % 7) - 3.0f;
            CHECK(all_finite(t));
            for (Index at : {Index(0), n / 2, n - 1})
                for (float bad : {std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::infinity(),
                                  -std::numeric_limits<float>::infinity()}) {
                    const float keep = t[at];
                    t[at] = bad;
                    CHECK_FALSE(all_finite(t));
                    t[at] = keep;
                }
            CHECK(all_finite(t));
        }
    set_num_threads(threads_before);
    CHECK(all_finite(Tensor<double>(Shape{0})));  // nothing to fail
}

TEST_CASE("parallel_copy and Flatten copy every element, split among threads or not") {
    const int threads_before = num_threads();
    set_num_threads(2);  // the large cases below then copy in two shares
    for (Index n : {Index(0), Index(5), (Index(1) << 16) + 1}) {  // the last: in parallel
        CAPTURE(n);
        std::vector<float> src(static_cast<std::size_t>(n)), dst(src.size(), -1.0f);
        for (Index i = 0; i < n; ++i) src[static_cast<std::size_t>(i)] = static_cast<float>(i) * 0.5f;
        parallel_copy(src.data(), n, dst.data());
        CHECK(dst == src);
    }
    Flatten<float> flatten;
    Tensor<float> x(Shape{4, 16, 32, 32});  // 65,536 values: the parallel branch
    for (Index i = 0; i < x.size(); ++i) x[i] = static_cast<float>(i % 1001);
    const Tensor<float>& y = flatten.forward(x);
    CHECK(y.shape() == Shape{4, 16 * 32 * 32});
    CHECK(y.vector() == x.vector());
    const Tensor<float>& dx = flatten.backward(y);
    CHECK(dx.shape() == x.shape());
    CHECK(dx.vector() == x.vector());
    set_num_threads(threads_before);
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

TEST_CASE("AdamW: PyTorch's defaults, decoupled weight decay, three steps by hand") {
    const AdamWOptions defaults;
    CHECK(defaults.lr == 1e-3);
    CHECK(defaults.beta1 == 0.9);
    CHECK(defaults.beta2 == 0.999);
    CHECK(defaults.eps == 1e-8);
    CHECK(defaults.weight_decay == 1e-2);
    // p0 = 1, lr 0.1, weight_decay 0.01, gradients 0.5, -0.3, 0.2 (the Adam case above, plus p *= 1 - 0.001 first):
    // t=1: p = 0.999 - 0.1 * 0.5 / (0.5 + 1e-8)                                           = 0.899000002
    // t=2: p = 0.899000002 * 0.999 = 0.898101001998; m = 0.015, v = 0.00033975
    //      p -= (0.1 / 0.19) * 0.015 / (sqrt(0.00033975 / 0.001999) + 1e-8)                = 0.878951198939775
    // t=3: p = 0.878951198939775 * 0.999; m = 0.0335, v = 0.00037941025
    //      p -= (0.1 / 0.271) * 0.0335 / (sqrt(0.00037941025 / 0.002997001) + 1e-8)        = 0.8433294795899421
    Scalar s;
    s.value[0] = 1.0;
    AdamW<double> adamw(s.params(), AdamWOptions{0.1});
    const double grads[] = {0.5, -0.3, 0.2};
    const double expected[] = {0.899000002, 0.878951198939775, 0.8433294795899421};
    for (int t = 0; t < 3; ++t) {
        s.grad[0] = grads[t];
        adamw.step();
        CHECK(s.value[0] == doctest::Approx(expected[t]).epsilon(1e-12));
    }
    CHECK(adamw.kind() == "AdamW");
    CHECK(adamw.exp_avg(0)[0] == doctest::Approx(0.0335).epsilon(1e-12));
    // With a zero gradient only the decay acts: p *= 1 - lr * wd (m and v stay 0, so the Adam term is 0).
    Scalar z;
    z.value[0] = 2.0;
    AdamW<double> decay_only(z.params(), AdamWOptions{0.5, 0.9, 0.999, 1e-8, 0.2});
    decay_only.step();
    CHECK(z.value[0] == doctest::Approx(2.0 * 0.9).epsilon(1e-15));
    CHECK_THROWS_WITH_AS(AdamW<double>(s.params(), AdamWOptions{0.1, 0.9, 0.999, 1e-8, -1.0}), doctest::Contains("AdamW: need"), std::invalid_argument);
}

TEST_CASE("AdamW on a tensor split among threads is bitwise the same on 1 and 2 threads") {
    const Index n = 40001;
    const auto run = [&](int threads) {
        set_num_threads(threads);
        Tensor<float> p(Shape{n}), g(Shape{n});
        for (Index i = 0; i < n; ++i) p[i] = 0.001f * static_cast<float>(i % 97);
        AdamW<float> opt({{"p", &p, &g}});
        for (int t = 0; t < 3; ++t) {
            for (Index i = 0; i < n; ++i) g[i] = std::sin(0.37f * static_cast<float>(i) + static_cast<float>(t));
            opt.step();
        }
        return p;
    };
    const Tensor<float> one = run(1), two = run(2);
    set_num_threads(2);
    CHECK(one.vector() == two.vector());
}

TEST_CASE("SGD with Nesterov momentum and weight decay, by hand") {
    // p0 = 1, lr 0.1, momentum 0.9, weight_decay 0.1, gradients 0.5, -0.3:
    // t=1: g = 0.5 + 0.1 = 0.6; b = 0.6; step g + 0.9 b = 1.14;            p = 1 - 0.114 = 0.886
    // t=2: g = -0.3 + 0.0886 = -0.2114; b = 0.54 - 0.2114 = 0.3286; step -0.2114 + 0.29574 = 0.08434; p = 0.8775660
    Scalar s;
    s.value[0] = 1.0;
    SGD<double> sgd(s.params(), SGDOptions{0.1, 0.9, 0.1, true});
    s.grad[0] = 0.5;
    sgd.step();
    CHECK(s.value[0] == doctest::Approx(0.886).epsilon(1e-14));
    s.grad[0] = -0.3;
    sgd.step();
    CHECK(s.value[0] == doctest::Approx(0.877566).epsilon(1e-14));
}

TEST_CASE("StepLR and CosineAnnealingLR: PyTorch's closed forms, set on the optimizer, resumable") {
    Scalar s;
    SGD<double> sgd(s.params(), SGDOptions{0.1});
    StepLR<double> step(sgd, 3, 0.5);
    const double want_step[] = {0.1, 0.1, 0.1, 0.05, 0.05, 0.05, 0.025, 0.025};
    for (int e = 0; e < 8; ++e) {
        CAPTURE(e);
        CHECK(step.last_epoch() == e);
        CHECK(sgd.lr() == doctest::Approx(want_step[e]).epsilon(1e-15));
        CHECK(step.get_last_lr() == sgd.lr());
        step.step();
    }
    // Default gamma 0.1.
    Adam<double> adam(s.params(), AdamOptions{1.0});
    StepLR<double> tenth(adam, 2);
    tenth.step(), tenth.step();
    CHECK(adam.lr() == doctest::Approx(0.1).epsilon(1e-15));

    // Cosine, T_max 4, eta_min 0.001: 0.001 + 0.099 * (1 + cos(pi e / 4)) / 2.
    AdamW<double> adamw(s.params(), AdamWOptions{0.1});
    CosineAnnealingLR<double> cosine(adamw, 4, 0.001);
    const double want_cos[] = {0.1, 0.0855017856687341, 0.0505, 0.0154982143312659, 0.001, 0.0154982143312659};
    for (int e = 0; e < 6; ++e) {
        CAPTURE(e);
        CHECK(adamw.lr() == doctest::Approx(want_cos[e]).epsilon(1e-14));
        cosine.step();
    }
    // eta_min defaults to 0; half way the lr is base / 2.
    SGD<double> sgd2(s.params(), SGDOptions{0.2});
    CosineAnnealingLR<double> to_zero(sgd2, 10);
    to_zero.set_last_epoch(5);
    CHECK(sgd2.lr() == doctest::Approx(0.1).epsilon(1e-15));
    to_zero.set_last_epoch(10);
    CHECK(std::abs(sgd2.lr()) < 1e-17);
    // Resuming: a schedule made over a fresh optimizer and moved to epoch 4 gives the same lr as one stepped 4 times.
    SGD<double> fresh(s.params(), SGDOptions{0.1});
    StepLR<double> resumed(fresh, 3, 0.5);
    resumed.set_last_epoch(4);
    CHECK(fresh.lr() == doctest::Approx(0.05).epsilon(1e-15));
    CHECK_THROWS_AS(StepLR<double>(fresh, 0), std::invalid_argument);
    CHECK_THROWS_AS(CosineAnnealingLR<double>(fresh, 0), std::invalid_argument);
    CHECK_THROWS_AS(resumed.set_last_epoch(-1), std::invalid_argument);
}

TEST_CASE("clip_grad_norm: the total norm as torch.nn.utils.clip_grad_norm_ returns it, gradients scaled by max_norm / (total + 1e-6)") {
    Tensor<double> a(Shape{2}), ga(Shape{2}), b(Shape{1}), gb(Shape{1});
    ga[0] = 3, ga[1] = 4, gb[0] = 12;  // total norm sqrt(9 + 16 + 144) = 13
    const std::vector<Parameter<double>> params{{"a", &a, &ga}, {"b", &b, &gb}};
    CHECK(clip_grad_norm(params, 20.0) == doctest::Approx(13.0).epsilon(1e-15));
    CHECK(ga[0] == 3.0);  // under the limit: untouched
    CHECK(gb[0] == 12.0);
    CHECK(clip_grad_norm(params, 6.5) == doctest::Approx(13.0).epsilon(1e-15));
    const double coef = 6.5 / (13.0 + 1e-6);
    CHECK(ga[0] == doctest::Approx(3 * coef).epsilon(1e-15));
    CHECK(ga[1] == doctest::Approx(4 * coef).epsilon(1e-15));
    CHECK(gb[0] == doctest::Approx(12 * coef).epsilon(1e-15));
    CHECK(clip_grad_norm(params, 6.5) == doctest::Approx(6.5).epsilon(1e-6));
    CHECK_THROWS_AS(clip_grad_norm(params, -1.0), std::invalid_argument);
}

TEST_CASE("AdamW and Nesterov SGD state saves and resumes bitwise through a checkpoint") {
    auto build = [] {
        Sequential<float> net(2);
        net.emplace<Flatten>().emplace<Linear>(6, 4).emplace<Tanh>().emplace<Linear>(4, 3);
        return net;
    };
    Tensor<float> x(Shape{5, 6});
    for (Index i = 0; i < x.size(); ++i) x[i] = std::sin(static_cast<float>(i));
    const std::vector<int> labels{0, 1, 2, 1, 0};
    auto train = [&](Sequential<float>& net, Optimizer<float>& opt, int steps) {
        Tensor<float> g;
        for (int i = 0; i < steps; ++i) {
            cross_entropy(net.forward(x), labels, g);
            net.backward(g);
            clip_grad_norm(net.parameters(), 0.5);
            opt.step();
        }
    };
    for (int which = 0; which < 2; ++which) {
        CAPTURE(which);
        auto make = [&](Sequential<float>& net) -> std::unique_ptr<Optimizer<float>> {
            if (which == 0) return std::make_unique<AdamW<float>>(net.parameters(), AdamWOptions{0.05});
            return std::make_unique<SGD<float>>(net.parameters(), SGDOptions{0.1, 0.9, 0.01, true});
        };
        auto straight = build();
        auto opt_s = make(straight);
        train(straight, *opt_s, 6);
        auto first = build();
        auto opt_f = make(first);
        train(first, *opt_f, 3);
        save_checkpoint("test_optim_resume.ckpt", first, opt_f.get());
        auto resumed = build();
        auto opt_r = make(resumed);
        load_checkpoint("test_optim_resume.ckpt", resumed, opt_r.get());
        CHECK(opt_r->steps() == 3);
        train(resumed, *opt_r, 3);
        std::vector<float> a, b;
        for (auto& p : resumed.parameters()) a.insert(a.end(), p.value->data(), p.value->data() + p.value->size());
        for (auto& p : straight.parameters()) b.insert(b.end(), p.value->data(), p.value->data() + p.value->size());
        CHECK(a == b);
    }
    // A checkpoint of one optimizer does not resume another.
    auto net = build();
    AdamW<float> adamw(net.parameters());
    Adam<float> adam(net.parameters());
    save_checkpoint("test_optim_resume.ckpt", net, static_cast<Optimizer<float>*>(&adamw));
    CHECK_THROWS_WITH_AS(load_checkpoint("test_optim_resume.ckpt", net, static_cast<Optimizer<float>*>(&adam)),
                         doctest::Contains("optimizer mismatch: AdamW in the checkpoint, Adam given"), CheckpointError);
    std::remove("test_optim_resume.ckpt");
}
