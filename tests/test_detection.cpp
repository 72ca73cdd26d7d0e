// SPDX-License-Identifier: MIT
// The detection defenses (backdoor/defenses/): STRIP's entropy, threshold and
// AUC on hand-made numbers, the inverse normal CDF, Neural Cleanse's MAD
// anomaly index on given norms, its mask/pattern gradient against finite
// differences, and the reversed mask finding a trigger planted in a tiny model.
#include <doctest/doctest.h>
#include <eigencnn/eigencnn.hpp>
#include <eigencnn/backdoor/defenses/neural_cleanse.hpp>
#include <eigencnn/backdoor/defenses/strip.hpp>
#include <eigencnn/lab/detect.hpp>

#include <nlohmann/json.hpp>

#include <cstdio>
#include <fstream>

using namespace eigencnn;

TEST_CASE("normal_quantile: known values of the inverse standard normal CDF") {
    // Python: statistics.NormalDist().inv_cdf(p)
    CHECK(normal_quantile(0.01) == doctest::Approx(-2.3263478740408408).epsilon(1e-13));
    CHECK(normal_quantile(0.02) == doctest::Approx(-2.0537489106318225).epsilon(1e-13));
    CHECK(normal_quantile(0.03) == doctest::Approx(-1.8807936081512509).epsilon(1e-13));
    CHECK(normal_quantile(0.975) == doctest::Approx(1.9599639845400536).epsilon(1e-13));
    CHECK(normal_quantile(1e-10) == doctest::Approx(-6.361340902404056).epsilon(1e-12));
    CHECK(normal_quantile(0.999999) == doctest::Approx(4.753424308817089).epsilon(1e-10));
    CHECK(std::abs(normal_quantile(0.5)) < 1e-15);
    for (double p : {1e-300, 1e-6, 0.1, 0.3, 0.7, 0.9})  // round trip through Phi
        CHECK(0.5 * std::erfc(-normal_quantile(p) / std::sqrt(2.0)) == doctest::Approx(p).epsilon(1e-12));
    CHECK_THROWS_WITH_AS(normal_quantile(0), "normal_quantile: p must be in (0, 1), got 0.000000", std::invalid_argument);
    CHECK_THROWS_AS(normal_quantile(1), std::invalid_argument);
    CHECK_THROWS_AS(normal_quantile(std::nan("")), std::invalid_argument);
}

TEST_CASE("fit_normal, median, summarize") {
    const NormalFit f = fit_normal({1, 2, 3, 4});
    CHECK(f.mean == 2.5);
    CHECK(f.std == doctest::Approx(std::sqrt(1.25)));  // population std: divisor n
    CHECK(median({5, 1, 3}) == 3);
    CHECK(median({4, 1, 3, 2}) == 2.5);
    const Summary s = summarize({3, 1, 2});
    CHECK(s.count == 3);
    CHECK(s.min == 1);
    CHECK(s.max == 3);
    CHECK(s.median == 2);
    CHECK_THROWS_WITH_AS(fit_normal({}), "fit_normal: no values in the sample", std::invalid_argument);
    CHECK_THROWS_WITH_AS(median({1, std::nan("")}), "median: value 1 of the sample is not finite", std::invalid_argument);
}

TEST_CASE("roc_auc: hand-made scores, ties counted half") {
    CHECK(roc_auc({3, 4}, {1, 2}) == 1.0);
    CHECK(roc_auc({1, 2}, {3, 4}) == 0.0);
    CHECK(roc_auc({1}, {1}) == 0.5);
    // pos {1, 3}, neg {2, 3}: pairs (1,2) 0, (1,3) 0, (3,2) 1, (3,3) 1/2 -> 1.5 / 4
    CHECK(roc_auc({1, 3}, {2, 3}) == 0.375);
    // pos {2, 2, 5}, neg {1, 2}: (2,1) 1, (2,2) .5, twice; (5,1) 1, (5,2) 1 -> 5 / 6
    CHECK(roc_auc({2, 2, 5}, {1, 2}) == doctest::Approx(5.0 / 6.0));
    CHECK_THROWS_WITH_AS(roc_auc({}, {1}), "roc_auc: no values in the positive scores", std::invalid_argument);
}

TEST_CASE("STRIP entropy of hand-made outputs") {
    CHECK(entropy_bits({0.5, 0.5}) == 1.0);
    CHECK(entropy_bits({1.0, 0.0, 0.0}) == 0.0);
    CHECK(entropy_bits({0.25, 0.25, 0.25, 0.25}) == 2.0);
    CHECK(entropy_bits({0.5, 0.25, 0.25}) == 1.5);
    const float uniform10[10] = {};
    CHECK(softmax_entropy_bits(uniform10, 10) == doctest::Approx(std::log2(10.0)));
    const double two[2] = {0.0, std::log(3.0)};  // softmax (1/4, 3/4)
    CHECK(softmax_entropy_bits(two, 2) == doctest::Approx(-(0.25 * std::log2(0.25) + 0.75 * std::log2(0.75))));
    const double sure[3] = {0.0, 2000.0, 0.0};  // exp underflows to 0: 0 log 0 = 0
    CHECK(softmax_entropy_bits(sure, 3) == 0.0);
}

TEST_CASE("STRIP thresholds, FRR and FAR from a known normal fit") {
    // clean entropies: mean 2, population std 0.5 (values 1.5 and 2.5, 50 each)
    std::vector<double> clean;
    for (int i = 0; i < 50; ++i) clean.push_back(1.5), clean.push_back(2.5);
    const std::vector<double> triggered{0.1, 0.2, 0.3, 1.0, 2.0};
    StripOptions o;
    const StripResult r = strip_detection(clean, triggered, o);
    CHECK(r.clean_fit.mean == doctest::Approx(2.0));
    CHECK(r.clean_fit.std == doctest::Approx(0.5));
    REQUIRE(r.operating_points.size() == 3);
    CHECK(r.operating_points[0].threshold == doctest::Approx(2.0 - 0.5 * 2.3263478740408408));  // 0.8368
    CHECK(r.operating_points[1].threshold == doctest::Approx(2.0 - 0.5 * 2.0537489106318225));  // 0.9731
    CHECK(r.operating_points[2].threshold == doctest::Approx(2.0 - 0.5 * 1.8807936081512509));  // 1.0596
    CHECK(r.operating_points[0].false_rejection_rate == 0.0);
    CHECK(*r.operating_points[0].false_acceptance_rate == doctest::Approx(2.0 / 5));  // 1.0 and 2.0 accepted
    CHECK(*r.operating_points[2].false_acceptance_rate == doctest::Approx(1.0 / 5));  // 1.0 <= 1.0596 rejected
    // AUC: triggered below every clean value except 2.0, which beats the 50 values 1.5 and loses to the 2.5s
    CHECK(*r.roc_auc == doctest::Approx((4 * 100 + 50) / 500.0));
    const nlohmann::ordered_json j = r;
    CHECK(j["operating_points"][0]["preset_false_rejection_rate"] == 0.01);
    CHECK(j["roc_auc"].get<double>() == doctest::Approx(0.9));
    const StripResult none = strip_detection(clean, {}, o);
    CHECK_FALSE(none.roc_auc);
    CHECK(nlohmann::ordered_json(none)["operating_points"][0]["false_acceptance_rate"].is_null());
    o.false_rejection_rates = {0.0};
    CHECK_THROWS_WITH_AS(strip_detection(clean, {}, o), "strip: a false-rejection rate must be in (0, 1), got 0.000000",
                         std::invalid_argument);
}

namespace {
/// A 2-class "model" on 1x2x2 images: logits (10 * x[0,0], 0) -- a bright top-left pixel is the trigger.
Sequential<float> corner_model() {
    Sequential<float> m(0);
    m.emplace<Flatten>().emplace<Linear>(4, 2);
    auto params = m.parameters();
    params[0].value->set_zero();
    (*params[0].value)(0, 0) = 10.0f;
    params[1].value->set_zero();
    return m;
}
}  // namespace

TEST_CASE("strip_entropies: superimposition, determinism and batching") {
    Sequential<float> m = corner_model();
    Tensor<float> inputs(Shape{3, 1, 2, 2}), overlays(Shape{4, 1, 2, 2});
    inputs(0, 0, 0, 0) = 1.0f;  // triggered: logit 10 whatever the overlay -> low entropy
    inputs(2, 0, 0, 0) = 0.3f;
    for (Index i = 0; i < 4; ++i) overlays(i, 0, 0, 0) = 0.25f * static_cast<float>(i);  // 0, .25, .5, .75
    StripOptions o;
    o.overlays = 10;
    o.batch_size = 20;
    const auto h = strip_entropies(m, inputs, overlays, o);
    REQUIRE(h.size() == 3);
    const double bits_at = [] { const float z[2] = {10.0f, 0.0f}; return softmax_entropy_bits(z, 2); }();
    CHECK(h[0] == doctest::Approx(bits_at));  // clip(1 + o) = 1 for every overlay
    CHECK(h[1] > h[0]);
    o.batch_size = 1;  // one input per forward: the same entropies
    CHECK(strip_entropies(m, inputs, overlays, o) == h);
    o.seed = 5;
    CHECK(strip_entropies(m, inputs, overlays, o) != h);
    CHECK_THROWS_WITH_AS(strip_entropies(m, inputs, Tensor<float>(Shape{2, 1, 3, 3}), o),
                         "strip: overlays must be [M >= 1, 1, 2, 2] like the inputs, got [2, 1, 3, 3]", std::invalid_argument);
    inputs[1] = std::nanf("");
    CHECK_THROWS_WITH_AS(strip_entropies(m, inputs, overlays, o), "strip: the inputs hold a non-finite value (NaN or infinity)",
                         std::invalid_argument);
}

TEST_CASE("Neural Cleanse's MAD anomaly index and flags on given norms") {
    // sorted: 2 10 11 12 13 14 15, median 12; |dev| 10 2 1 0 1 2 3 -> median 2, MAD 1.4826 * 2 = 2.9652
    const std::vector<double> l1{10, 11, 12, 13, 14, 15, 2};
    const auto index = mad_anomaly_index(l1);
    CHECK(index[6] == doctest::Approx(10 / 2.9652));  // 3.3725
    CHECK(index[5] == doctest::Approx(3 / 2.9652));   // 1.0117
    CHECK(index[2] == 0.0);
    CHECK(flag_labels(l1, index, 2.0) == std::vector<int>{6});
    // 1 2 3 4 100: median 3, |dev| 2 1 0 1 97 -> MAD 1.4826; 100 is far out but ABOVE the median: not flagged
    const std::vector<double> high{1, 2, 3, 4, 100};
    const auto hi = mad_anomaly_index(high);
    CHECK(hi[4] == doctest::Approx(97 / 1.4826));
    CHECK(hi[0] == doctest::Approx(2 / 1.4826));
    CHECK(flag_labels(high, hi, 2.0).empty());
    // two small norms, listed by increasing L1: 20 20 20 20 20 21 19 1 0.5 -> median 20, |dev| 0 0 0 0 0 1 1 19 19.5
    // -> median 0, MAD 0: equal norms get 0, others +infinity
    const std::vector<double> two{20, 20, 20, 20, 20, 21, 19, 1, 0.5};
    const auto t = mad_anomaly_index(two);
    CHECK(t[0] == 0.0);
    CHECK(std::isinf(t[7]));
    CHECK(flag_labels(two, t, 2.0) == std::vector<int>{8, 7, 6});
}

TEST_CASE("Neural Cleanse: the mask and pattern gradients agree with finite differences") {
    Sequential<double> model(3);
    model.emplace<Flatten>().emplace<Linear>(18, 6).emplace<Tanh>().emplace<Linear>(6, 3);
    Rng rng(11);
    Tensor<double> x(Shape{4, 2, 3, 3}), a(Shape{1, 1, 3, 3}), b(Shape{1, 2, 3, 3});
    for (Index k = 0; k < x.size(); ++k) x[k] = rng.uniform();
    for (Index k = 0; k < a.size(); ++k) a[k] = rng.uniform(-1.5, 1.5);
    for (Index k = 0; k < b.size(); ++k) b[k] = rng.uniform(-1.5, 1.5);
    const double cost = 0.3;
    Tensor<double> ga, gb, unused_a, unused_b;
    const TriggerLoss base = trigger_loss_and_gradient(model, x, 1, a, b, cost, ga, gb);
    CHECK(base.loss == doctest::Approx(base.cross_entropy + cost * base.l1));
    const double h = 1e-6;
    auto loss_at = [&](Tensor<double>& v, Index k, double delta) {
        const double keep = v[k];
        v[k] = keep + delta;
        const double l = trigger_loss_and_gradient(model, x, 1, a, b, cost, unused_a, unused_b).loss;
        v[k] = keep;
        return l;
    };
    for (Index k = 0; k < a.size(); ++k) {
        const double fd = (loss_at(a, k, h) - loss_at(a, k, -h)) / (2 * h);
        CHECK(ga[k] == doctest::Approx(fd).epsilon(1e-6));
    }
    for (Index k = 0; k < b.size(); ++k) {
        const double fd = (loss_at(b, k, h) - loss_at(b, k, -h)) / (2 * h);
        CHECK(gb[k] == doctest::Approx(fd).epsilon(1e-6));
    }
    // the model's parameter gradients are untouched (backward_input), the model is back in its mode
    CHECK(model.is_training());
}

namespace {
/// 9x9 images of 5 classes: classes 0-3 light one 4x4 quadrant (rows/cols 0-3 or 5-8, value ~0.8); the
/// centre pixel (4, 4) is always 0. The model sums each quadrant into logits 0-3; logit 4 = 30 x[4, 4] - 5:
/// a planted one-pixel trigger for label 4.
struct Planted {
    Sequential<float> model{0};
    Tensor<float> images;
    Planted() {
        model.emplace<Flatten>().emplace<Linear>(81, 5);
        auto params = model.parameters();
        Tensor<float>& w = *params[0].value;
        Tensor<float>& bias = *params[1].value;
        w.set_zero(), bias.set_zero();
        for (int q = 0; q < 4; ++q)
            for (int r = 0; r < 4; ++r)
                for (int c = 0; c < 4; ++c) w(q, (r + 5 * (q / 2)) * 9 + c + 5 * (q % 2)) = 1.0f;
        w(4, 4 * 9 + 4) = 30.0f;
        bias[4] = -5.0f;
        images = Tensor<float>(Shape{200, 1, 9, 9});
        Rng rng(2);
        for (Index n = 0; n < 200; ++n) {
            const Index q = n % 4;
            for (Index r = 0; r < 9; ++r)
                for (Index c = 0; c < 9; ++c) {
                    const bool lit = r != 4 && c != 4 && (r > 4) == (q / 2 == 1) && (c > 4) == (q % 2 == 1);
                    images(n, 0, r, c) = static_cast<float>(lit ? rng.uniform(0.7, 0.9) : rng.uniform(0.0, 0.1));
                }
            images(n, 0, 4, 4) = 0.0f;
        }
    }
};
}  // namespace

TEST_CASE("Neural Cleanse finds a planted one-pixel trigger and flags its label") {
    // 6,000 steps on 32 tiny images: one thread (OpenMP's fork/join would cost more than the work on a busy machine)
    const int threads = num_threads();
    set_num_threads(1);
    Planted p;
    REQUIRE(predict(p.model, Dataset<float>{p.images, std::vector<int>(200, 0)}) == [] {
        std::vector<int> y;
        for (int n = 0; n < 200; ++n) y.push_back(n % 4);
        return y;
    }());
    NeuralCleanseOptions o;
    o.batches_per_epoch = 4;
    o.max_epochs = 150;
    const NeuralCleanseResult<float> r = run_neural_cleanse(p.model, p.images, o);
    REQUIRE(r.triggers.size() == 5);
    const ReversedTrigger<float>& t = r.triggers[4];
    CHECK(t.reached_threshold);
    const Index peak = static_cast<Index>(std::max_element(t.mask.data(), t.mask.data() + 81) - t.mask.data());
    CHECK(peak == 4 * 9 + 4);  // the centre pixel
    CHECK(t.pattern[peak] > 0.5f);
    CHECK(t.l1_norm < 2.0);
    for (int label = 0; label < 4; ++label) CHECK(r.l1_norms[static_cast<std::size_t>(label)] > 3 * t.l1_norm);
    CHECK(r.flagged_labels == std::vector<int>{4});
    CHECK(r.anomaly_index[4] > 2.0);
    // the same seed, the same triggers; the JSON has one index per label and the flagged list
    const NeuralCleanseResult<float> again = run_neural_cleanse(p.model, p.images, o);
    CHECK(again.l1_norms == r.l1_norms);
    const nlohmann::ordered_json j = r;
    CHECK(j["anomaly_index"].size() == 5);
    CHECK(j["flagged_labels"] == nlohmann::json::array({4}));
    // unlearning with the reversed trigger keeps the image count and names the label
    Dataset<float> train{p.images, {}};
    for (int n = 0; n < 200; ++n) train.labels.push_back(n % 4);
    UnlearningOptions u;
    u.clean_share = 0.5;
    const UnlearningResult ur = unlearn_reversed_triggers(p.model, train, {&t}, u);
    CHECK(ur.images == 100);
    CHECK(ur.stamped_images == 20);
    CHECK(ur.trigger_labels == std::vector<int>{4});
    set_num_threads(threads);
}

TEST_CASE("Neural Cleanse refuses bad options and shapes") {
    Planted p;
    NeuralCleanseOptions o;
    o.lr = -1;
    CHECK_THROWS_WITH_AS(run_neural_cleanse(p.model, p.images, o), "neural-cleanse: lr must be a positive number, got -1.000000", std::invalid_argument);
    o = {};
    o.batch_size = 0;
    CHECK_THROWS_AS(run_neural_cleanse(p.model, p.images, o), std::invalid_argument);
    CHECK_THROWS_WITH_AS(run_neural_cleanse(p.model, Tensor<float>(Shape{0, 1, 9, 9}), NeuralCleanseOptions{}),
                         "neural-cleanse: clean images must be [N >= 1, C, H, W], got [0, 1, 9, 9]", std::invalid_argument);
    Tensor<float> out;
    CHECK_THROWS_AS(apply_reversed_trigger(p.images, Tensor<float>(Shape{1, 1, 8, 8}), Tensor<float>(Shape{1, 1, 9, 9}), out), std::invalid_argument);
}

TEST_CASE("the real trigger of badnets-patch and the reversed-trigger PNG beside it") {
    const auto [mask, stamp] = real_trigger(make_attack("badnets-patch"), Shape{1, 1, 28, 28});
    double l1 = 0;
    for (Index k = 0; k < mask.size(); ++k) l1 += mask[k];
    CHECK(l1 == 9.0);  // the 3x3 patch, rows and columns 25-27
    CHECK(mask(0, 0, 27, 27) == 1.0f);
    CHECK(mask(0, 0, 24, 27) == 0.0f);
    CHECK(stamp(0, 0, 25, 25) == 1.0f);
    NeuralCleanseResult<float> r;
    for (int label = 0; label < 3; ++label) {
        ReversedTrigger<float> t;
        t.label = label;
        t.mask = Tensor<float>(Shape{1, 1, 28, 28}, 0.1f * static_cast<float>(label));
        t.pattern = Tensor<float>(Shape{1, 1, 28, 28}, 1.0f);
        r.triggers.push_back(t);
    }
    r.flagged_labels = {0};
    const std::string path = "reversed_triggers_test.png";
    write_reversed_triggers_png(path, r, std::make_pair(mask, stamp));
    std::ifstream in(path, std::ios::binary);
    std::string head(8, '\0');
    in.read(&head[0], 8);
    CHECK(head == std::string("\x89PNG\r\n\x1a\n", 8));
    std::remove(path.c_str());
    CHECK_THROWS_AS(write_reversed_triggers_png(path, NeuralCleanseResult<float>{}), std::invalid_argument);
}
