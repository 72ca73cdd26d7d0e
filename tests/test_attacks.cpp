// SPDX-License-Identifier: MIT
// The six attacks, the per-batch transform hook, PGD, metrics and validation, on small synthetic data.
#include <doctest/doctest.h>
#include <eigencnn/backdoor/attacks.hpp>
#include <eigencnn/backdoor/gallery.hpp>
#include <eigencnn/backdoor/metrics.hpp>
#include <eigencnn/eigencnn.hpp>

#include <cstdio>
#include <set>

using namespace eigencnn;

namespace {
/// n images [C, H, W] with pixel values from Rng(seed) in [0.1, 0.9), labels i % 10.
Dataset<float> noisy(Index n, Index c = 1, Index h = 28, Index w = 28, std::uint64_t seed = 7) {
    Dataset<float> ds;
    ds.images = Tensor<float>(Shape{n, c, h, w});
    Rng rng(seed);
    for (Index i = 0; i < ds.images.size(); ++i) ds.images[i] = static_cast<float>(rng.uniform(0.1, 0.9));
    for (Index i = 0; i < n; ++i) ds.labels.push_back(static_cast<int>(i % 10));
    return ds;
}
/// Pixels (n, c, y, x) that differ between a and b.
std::set<std::vector<Index>> changed(const Dataset<float>& a, const Dataset<float>& b) {
    std::set<std::vector<Index>> out;
    const Shape& s = a.images.shape();
    for (Index n = 0; n < s[0]; ++n)
        for (Index c = 0; c < s[1]; ++c)
            for (Index y = 0; y < s[2]; ++y)
                for (Index x = 0; x < s[3]; ++x)
                    if (a.images(n, c, y, x) != b.images(n, c, y, x)) out.insert({n, c, y, x});
    return out;
}
}  // namespace

TEST_CASE("badnets-pixel with its defaults poisons exactly what the notebook's add_trigger poisons") {
    auto a = noisy(500), b = a;
    const auto notebook = add_trigger(a, 0.01, 42, 8);
    const auto result = BadNetsPixel{}.poison(b, 42);
    CHECK(result.poisoned_indices == notebook);
    CHECK(b.labels == a.labels);
    CHECK(changed(a, b).empty());
}

TEST_CASE("badnets-patch changes exactly the patch's pixels, in every channel, and the poisoned labels") {
    const auto clean = noisy(200, 3);
    auto ds = clean;
    const auto result = BadNetsPatch{}.poison(ds, 1);
    REQUIRE(result.poisoned_indices.size() == 20);
    std::set<std::vector<Index>> expected;
    for (std::size_t i : result.poisoned_indices)
        for (Index c = 0; c < 3; ++c)
            for (Index y = 25; y < 28; ++y)
                for (Index x = 25; x < 28; ++x) expected.insert({static_cast<Index>(i), c, y, x});
    CHECK(changed(clean, ds) == expected);
    const std::set<std::size_t> poisoned(result.poisoned_indices.begin(), result.poisoned_indices.end());
    for (std::size_t i = 0; i < ds.labels.size(); ++i) CHECK(ds.labels[i] == (poisoned.count(i) ? 0 : clean.labels[i]));
    for (Index y = 25; y < 28; ++y) CHECK(ds.images(static_cast<Index>(result.poisoned_indices[0]), 2, y, 27) == 1.0f);

    BadNetsPatch checker;
    checker.pattern = PatchPattern::Checkerboard;
    checker.corner = ImageCorner::TopLeft;
    checker.margin = 1;
    checker.patch_size = 4;
    auto one = clean.head(1);
    checker.stamp(one);
    std::set<std::vector<Index>> box;
    for (Index y = 1; y < 5; ++y)
        for (Index x = 1; x < 5; ++x) {
            CHECK(one.images(0, 1, y, x) == ((y + x) % 2 == 0 ? 1.0f : 0.0f));
            for (Index c = 0; c < 3; ++c) box.insert({0, c, y, x});
        }
    CHECK(changed(clean.head(1), one) == box);
    CHECK(one.labels == clean.head(1).labels);  // stamp keeps labels
}

TEST_CASE("blended: x' = (1 - a) x + a P with the seeded noise pattern, or an image file resized") {
    const auto clean = noisy(50, 1, 6, 5);
    auto ds = clean;
    Blended attack;
    attack.noise_seed = 3;
    const auto result = attack.poison(ds, 9);
    REQUIRE(result.poisoned_indices.size() == 5);
    Rng rng(3);
    std::vector<double> p(30);
    for (auto& v : p) v = rng.uniform();
    const std::set<std::size_t> poisoned(result.poisoned_indices.begin(), result.poisoned_indices.end());
    for (Index i = 0; i < 50; ++i)
        for (Index k = 0; k < 30; ++k) {
            const double x = clean.images[i * 30 + k];
            CHECK(ds.images[i * 30 + k] == doctest::Approx(poisoned.count(static_cast<std::size_t>(i)) ? 0.8 * x + 0.2 * p[static_cast<std::size_t>(k)] : x).epsilon(1e-6));
        }
    // A 2x1 RGB file (black, white) read as grey 4x2: bilinear with half-pixel centres, edges clamped.
    const std::string path = "eigencnn_test_trigger.png";
    const std::uint8_t px[6] = {0, 0, 0, 255, 255, 255};
    write_png(path, 2, 1, 3, px);
    const auto t = read_trigger_image<float>(path, 1, 2, 4);
    const float row[4] = {0.0f, 0.25f, 0.75f, 1.0f};
    for (Index y = 0; y < 2; ++y)
        for (Index x = 0; x < 4; ++x) CHECK(t(0, 0, y, x) == doctest::Approx(row[x]));
    attack.trigger_image = path;
    attack.alpha = 1.0;
    auto img = noisy(1, 1, 2, 4);
    attack.stamp(img);
    for (Index x = 0; x < 4; ++x) CHECK(img.images(0, 0, 1, x) == doctest::Approx(row[x]));
    std::remove(path.c_str());
    CHECK_THROWS_WITH_AS(attack.validate(Shape{1, 1, 2, 4}, 10), doctest::Contains("blended: trigger_image: cannot read image file 'eigencnn_test_trigger.png'"),
                         std::invalid_argument);
}

TEST_CASE("sig: x' = clip(x + delta sin(2 pi j f / W)) on target-class images only, labels kept, count capped") {
    auto clean = noisy(100, 1, 4, 16);
    for (Index k = 0; k < 4 * 16; ++k) clean.images[k] = 0.95f;  // image 0 (label 0) saturates
    auto ds = clean;
    Sig attack;  // rate 10% of 100 = 10, but class 0 has 10 images
    attack.poison_rate = 0.5;  // 50 > 10: capped at the class
    const auto result = attack.poison(ds, 4);
    CHECK(result.poisoned_indices.size() == 10);
    CHECK(ds.labels == clean.labels);
    for (Index i = 0; i < 100; ++i)
        for (Index y = 0; y < 4; ++y)
            for (Index j = 0; j < 16; ++j) {
                const double x = clean.images(i, 0, y, j);
                const double v = clean.labels[static_cast<std::size_t>(i)] == 0 ? std::min(1.0, std::max(0.0, x + 40.0 / 255 * std::sin(2 * M_PI * j * 6 / 16))) : x;
                CHECK(ds.images(i, 0, y, j) == doctest::Approx(v).epsilon(1e-6));
            }
    CHECK(ds.images(0, 0, 0, 1) == 1.0f);  // 0.95 + 0.157 sin(3 pi / 4) clipped
    CHECK(ds.images(0, 0, 0, 2) == doctest::Approx(0.95 - 40.0 / 255));  // sin(3 pi / 2) = -1
    attack.poison_rate = 0.05;
    auto ds2 = clean;
    CHECK(attack.poison(ds2, 4).poisoned_indices.size() == 5);
}

TEST_CASE("wanet: the identity at s = 0, a direct bilinear evaluation otherwise, bicubic offsets through the corners") {
    const auto clean = noisy(3, 2, 9, 7);
    WaNet identity;
    identity.strength = 0;
    auto same = clean;
    identity.stamp(same);
    for (Index k = 0; k < clean.images.size(); ++k) CHECK(same.images[k] == doctest::Approx(clean.images[k]).epsilon(1e-6));

    // bicubic with align_corners=True passes through the 4 x 4 grid points that land on pixels, keeps constants
    const std::vector<double> plane{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
    const auto up = upsample_bicubic_align_corners(plane, 4, 4, 10, 10);  // grid point k -> pixel 3k
    for (int a = 0; a < 4; ++a)
        for (int b = 0; b < 4; ++b) CHECK(up[static_cast<std::size_t>(3 * a * 10 + 3 * b)] == doctest::Approx(plane[static_cast<std::size_t>(4 * a + b)]));
    const auto flat = upsample_bicubic_align_corners(std::vector<double>(16, 0.3), 4, 4, 7, 5);
    for (double v : flat) CHECK(v == doctest::Approx(0.3));

    WaNet attack;
    attack.strength = 3;  // large, so the warp moves pixels by more than one
    const WarpGrid g = attack.grid(9, 7);
    auto warped = clean;
    attack.stamp(warped);
    bool moved = false;
    for (Index n = 0; n < 3; ++n)
        for (Index c = 0; c < 2; ++c)
            for (Index y = 0; y < 9; ++y)
                for (Index x = 0; x < 7; ++x) {
                    const std::size_t i = static_cast<std::size_t>(y * 7 + x);
                    CHECK(std::abs(g.gx[i]) <= 1.0);
                    const double col = (g.gx[i] + 1) * 3, row = (g.gy[i] + 1) * 4;  // (W - 1) / 2, (H - 1) / 2
                    const Index c0 = static_cast<Index>(col), r0 = static_cast<Index>(row);
                    const double u = col - c0, v = row - r0;
                    auto at = [&](Index r, Index q) { return r > 8 || q > 6 ? 0.0 : static_cast<double>(clean.images(n, c, r, q)); };
                    const double expect = (1 - v) * (1 - u) * at(r0, c0) + (1 - v) * u * at(r0, c0 + 1) + v * (1 - u) * at(r0 + 1, c0) + v * u * at(r0 + 1, c0 + 1);
                    CHECK(warped.images(n, c, y, x) == doctest::Approx(expect).epsilon(1e-6));
                    moved |= std::abs(warped.images(n, c, y, x) - clean.images(n, c, y, x)) > 1e-3;
                }
    CHECK(moved);
}

TEST_CASE("wanet per batch: int(B rate) samples warped and relabeled, twice as many noise-warped, the rest untouched") {
    const auto data = noisy(40, 1, 8, 8);
    WaNet attack;
    attack.label_mode = LabelMode::all_to_one(3);
    DataLoader<float> plain(data, 20, true, 5), poisoned(data, 20, true, 5);
    poisoned.set_transform(attack.batch_transform<float>(data.sample_shape()));
    Dataset<float> train = data;
    CHECK(attack.poison(train, 1).per_batch);
    CHECK(changed(train, data).empty());
    Batch<float> a, b;
    plain.load(1, a);
    poisoned.load(1, b);
    CHECK(a.indices == b.indices);
    int backdoor = 0, noise = 0, untouched = 0;
    for (std::size_t i = 0; i < 20; ++i) {
        Dataset<float> one;
        one.images = Tensor<float>(Shape{1, 1, 8, 8});
        std::copy(a.images.data() + i * 64, a.images.data() + (i + 1) * 64, one.images.data());
        one.labels = {a.labels[i]};
        attack.stamp(one);
        const bool same = std::equal(a.images.data() + i * 64, a.images.data() + (i + 1) * 64, b.images.data() + i * 64);
        const bool is_warp = std::equal(one.images.data(), one.images.data() + 64, b.images.data() + i * 64);
        CAPTURE(i);
        if (is_warp) {
            ++backdoor;
            CHECK(b.labels[i] == 3);
        } else {
            CHECK(b.labels[i] == a.labels[i]);
            ++(same ? untouched : noise);
        }
    }
    CHECK(backdoor == 2);  // int(20 * 0.1)
    CHECK(noise == 4);     // int(2 * 2)
    CHECK(untouched == 14);
}

TEST_CASE("the per-batch hook: same seed, same batches, whatever the thread count or load order; none set, nothing changes") {
    const auto data = noisy(30, 1, 5, 5);
    auto jitter = [](Batch<float>& b, Rng& rng) {
        for (Index k = 0; k < b.images.size(); ++k) b.images[k] += static_cast<float>(rng.uniform(-0.1, 0.1));
        b.labels[0] = static_cast<int>(rng.below(10));
    };
    auto run = [&](int threads, bool reverse, bool transform) {
        set_num_threads(threads);
        DataLoader<float> loader(data, 7, true, 11);
        if (transform) loader.set_transform(jitter);
        std::vector<std::vector<float>> out(loader.num_batches());
        loader.set_epoch(2);
        for (std::size_t k = 0; k < loader.num_batches(); ++k) {
            const std::size_t i = reverse ? loader.num_batches() - 1 - k : k;
            Batch<float> b;
            loader.load(i, b);
            out[i].assign(b.images.data(), b.images.data() + b.images.size());
            out[i].push_back(static_cast<float>(b.labels[0]));
        }
        return out;
    };
    const auto one = run(1, false, true);
    CHECK(run(2, false, true) == one);
    CHECK(run(2, true, true) == one);
    const auto none = run(1, false, false);
    CHECK(none != one);
    // without a transform the batches are the plain gathered samples
    DataLoader<float> loader(data, 7, true, 11);
    loader.set_epoch(2);
    Batch<float> b;
    loader.load(0, b);
    const auto direct = data.subset(b.indices);
    CHECK(std::vector<float>(direct.images.data(), direct.images.data() + direct.images.size()) ==
          std::vector<float>(none[0].begin(), none[0].end() - 1));
    DataLoader<float> other(data, 7, true, 12);
    other.set_transform(jitter);
    CHECK(other.transform_seed(2, 0) != loader.transform_seed(2, 0));
    CHECK(loader.transform_seed(2, 0) != loader.transform_seed(3, 0));
    CHECK(loader.transform_seed(2, 0) != loader.transform_seed(2, 1));
}

namespace {
/// A linear softmax model on flattened images: logits = W x, loss = mean cross-entropy.
struct LinearSoftmax {
    Index features, classes;
    std::vector<double> w;
    double operator()(const Tensor<float>& x, const std::vector<int>& y, Tensor<float>& dx) const {
        const Index n = x.dim(0);
        double loss = 0;
        for (Index i = 0; i < n; ++i) {
            std::vector<double> z(static_cast<std::size_t>(classes), 0.0);
            for (Index k = 0; k < classes; ++k)
                for (Index f = 0; f < features; ++f) z[static_cast<std::size_t>(k)] += w[static_cast<std::size_t>(k * features + f)] * x[i * features + f];
            const double m = *std::max_element(z.begin(), z.end());
            double sum = 0;
            for (auto& v : z) sum += (v = std::exp(v - m));
            for (auto& v : z) v /= sum;
            loss -= std::log(z[static_cast<std::size_t>(y[static_cast<std::size_t>(i)])]) / static_cast<double>(n);
            z[static_cast<std::size_t>(y[static_cast<std::size_t>(i)])] -= 1;  // dloss/dlogits * n
            for (Index f = 0; f < features; ++f) {
                double g = 0;
                for (Index k = 0; k < classes; ++k) g += z[static_cast<std::size_t>(k)] * w[static_cast<std::size_t>(k * features + f)];
                dx[i * features + f] = static_cast<float>(g / static_cast<double>(n));
            }
        }
        return loss;
    }
};
LinearSoftmax linear_model(Index features, std::uint64_t seed) {
    LinearSoftmax m{features, 10, std::vector<double>(static_cast<std::size_t>(10 * features))};
    Rng rng(seed);
    for (auto& v : m.w) v = rng.uniform(-1, 1);
    return m;
}
}  // namespace

TEST_CASE("PGD stays within eps of the clean images and in [0, 1], and raises the loss") {
    auto ds = noisy(25, 1, 4, 4);
    const auto clean = ds;
    const auto model = linear_model(16, 1);
    PgdSettings s;
    s.eps = 0.05;
    s.step = 0.01;
    s.steps = 10;
    s.batch_size = 7;  // several chunks, the last one short
    const PgdResult r = pgd_linf(ds.images, ds.labels, s, model);
    CHECK(r.final_loss > r.initial_loss + 0.05);
    Tensor<float> dx(clean.images.shape());
    CHECK(r.initial_loss == doctest::Approx(model(clean.images, clean.labels, dx)));
    CHECK(r.final_loss == doctest::Approx(model(ds.images, ds.labels, dx)));
    double largest = 0;
    for (Index k = 0; k < ds.images.size(); ++k) {
        largest = std::max(largest, std::abs(static_cast<double>(ds.images[k]) - clean.images[k]));
        CHECK(ds.images[k] >= 0.0f);
        CHECK(ds.images[k] <= 1.0f);
    }
    CHECK(largest <= 0.05 + 1e-6);
    CHECK(largest >= 0.05 - 1e-6);  // 10 steps of 0.01 reach the boundary
}

TEST_CASE("label-consistent: PGD then four corner checkerboards on half the target class, labels kept") {
    const auto clean = noisy(60, 1, 10, 10);
    auto ds = clean;
    LabelConsistent attack;
    attack.label_mode = LabelMode::all_to_one(4);
    attack.pgd.steps = 5;
    const auto model = linear_model(100, 2);
    PgdResult r;
    const auto result = attack.poison(ds, 3, model, &r);
    REQUIRE(result.poisoned_indices.size() == 3);  // half of the 6 images of class 4
    CHECK(r.final_loss > r.initial_loss);
    CHECK(ds.labels == clean.labels);
    const std::set<std::size_t> poisoned(result.poisoned_indices.begin(), result.poisoned_indices.end());
    for (Index i = 0; i < 60; ++i) {
        const bool p = poisoned.count(static_cast<std::size_t>(i)) > 0;
        CHECK(clean.labels[static_cast<std::size_t>(i)] == (p ? 4 : clean.labels[static_cast<std::size_t>(i)]));
        for (Index y = 0; y < 10; ++y)
            for (Index x = 0; x < 10; ++x) {
                const Index u = y < 3 ? y : 9 - y, v = x < 3 ? x : 9 - x;  // distance into a corner
                const bool corner = (y < 3 || y > 6) && (x < 3 || x > 6);
                const float before = clean.images(i, 0, y, x), after = ds.images(i, 0, y, x);
                if (!p) CHECK(after == before);
                else if (corner) CHECK(after == ((u + v) % 2 == 0 ? 1.0f : 0.0f));
                else CHECK(std::abs(after - before) <= 64.0f / 255 + 1e-6f);
            }
    }
    auto plain = clean;
    CHECK_THROWS_WITH_AS(attack.poison(plain, 3), doctest::Contains("grad_fn"), std::invalid_argument);
    CHECK_THROWS_WITH_AS(make_attack("label-consistent").poison(plain, 3), doctest::Contains("grad_fn"), std::invalid_argument);
    attack.poison_rate = 0.5;  // 30 > 6: capped at the class
    CHECK(attack.poison(plain, 3, model).poisoned_indices.size() == 6);
}

TEST_CASE("label modes: all-to-one relabels to the target, all-to-all to (y + 1) mod K, for any dirty-label attack") {
    for (const char* name : {"badnets-pixel", "badnets-patch", "blended"}) {
        CAPTURE(name);
        auto spec = make_attack(name, AttackOptions{0.5, LabelMode::all_to_all(10)});
        auto ds = noisy(40);
        const auto result = spec.poison(ds, 2);
        REQUIRE(result.poisoned_indices.size() == 20);
        for (std::size_t i : result.poisoned_indices) CHECK(ds.labels[i] == static_cast<int>((i % 10 + 1) % 10));
        spec.set_label_mode(LabelMode::all_to_one(6));
        auto ds2 = noisy(40);
        for (std::size_t i : spec.poison(ds2, 2).poisoned_indices) CHECK(ds2.labels[i] == 6);
    }
    auto w = WaNet{};
    w.per_batch = false;
    w.label_mode = LabelMode::all_to_all(10);
    auto ds = noisy(100);
    const auto r = w.poison(ds, 1);
    CHECK(r.poisoned_indices.size() == 10);
    for (std::size_t i : r.poisoned_indices) CHECK(ds.labels[i] == static_cast<int>((i % 10 + 1) % 10));
    CHECK_THROWS_WITH_AS(make_attack("sig", AttackOptions{{}, LabelMode::all_to_all(10)}).validate(Shape{1, 1, 28, 28}, 10),
                         doctest::Contains("sig: label_mode must be all-to-one"), std::invalid_argument);
}

TEST_CASE("metrics on hand-made predictions, all-to-one and all-to-all") {
    const std::vector<int> truth{0, 1, 2, 3, 8}, clean_pred{0, 1, 2, 5, 8};
    // triggered: 8 (true 0, success), 1 (true 1, robust), 8 (true 2, success), 4 (true 3, neither), 8 (true 8, counted in all only)
    const std::vector<int> trig_pred{8, 1, 8, 4, 8};
    const auto m = attack_metrics(clean_pred, truth, trig_pred, truth, LabelMode::all_to_one(8));
    CHECK(m.clean_accuracy == doctest::Approx(0.8));
    CHECK(m.attack_success_rate == doctest::Approx(0.6));
    CHECK(m.attack_success_rate_non_target == doctest::Approx(0.5));
    CHECK(m.robust_accuracy == doctest::Approx(0.25));
    CHECK(m.non_target_count == 4);
    const auto a2a = attack_metrics(clean_pred, truth, {1, 1, 3, 4, 0}, truth, LabelMode::all_to_all(10));
    CHECK(a2a.attack_success_rate == doctest::Approx(0.6));  // images 0, 2, 3 -> y + 1; image 4: 8 -> 9 wanted
    CHECK(a2a.attack_success_rate_non_target == doctest::Approx(0.6));
    CHECK(a2a.robust_accuracy == doctest::Approx(0.2));  // image 1
    CHECK_THROWS_WITH_AS(attack_metrics(clean_pred, truth, {1}, truth, LabelMode::all_to_one(8)), doctest::Contains("1 predictions for 5 labels"),
                         std::invalid_argument);
}

TEST_CASE("validation names the parameter and the problem; make_attack lists the valid names") {
    const Shape mnist{1, 1, 28, 28};
    Blended blend;
    blend.alpha = 1.5;
    CHECK_THROWS_WITH_AS(blend.validate(mnist, 10), doctest::Contains("blended: alpha (the blend ratio) must be in [0, 1], got 1.5"), std::invalid_argument);
    BadNetsPatch patch;
    patch.patch_size = 29;
    CHECK_THROWS_WITH_AS(patch.validate(mnist, 10), doctest::Contains("patch_size 29 with margin 0 is larger than the images"), std::invalid_argument);
    patch.patch_size = 28;
    CHECK_NOTHROW(patch.validate(mnist, 10));
    CHECK_THROWS_WITH_AS(make_attack("wanet", AttackOptions{-0.1, {}}).validate(mnist, 10), doctest::Contains("wanet: poison_rate must be in [0, 1], got -0.1"),
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(make_attack("badnets-pixel", AttackOptions{{}, LabelMode::all_to_one(10)}).validate(mnist, 10),
                         doctest::Contains("badnets-pixel: target 10 is outside the labels [0, 10)"), std::invalid_argument);
    blend.alpha = 0.2;
    blend.trigger_image = "/nonexistent/kitty.png";
    CHECK_THROWS_WITH_AS(blend.validate(mnist, 10), doctest::Contains("cannot read image file '/nonexistent/kitty.png'"), std::invalid_argument);
    CHECK_THROWS_WITH_AS(make_attack("badnets"), doctest::Contains("unknown attack 'badnets'; valid names: badnets-pixel, badnets-patch, blended, sig, wanet, label-consistent"),
                         std::invalid_argument);
    for (const auto& name : attack_names()) {
        CAPTURE(name);
        CHECK(make_attack(name).name() == name);
        CHECK_NOTHROW(make_attack(name).validate(mnist, 10));
    }
    CHECK(make_attack("badnets-patch").label_mode().target == 0);
    CHECK(make_attack("badnets-pixel").label_mode().target == 8);
    CHECK(make_attack("blended", AttackOptions{0.3, {}}).get<Blended>()->poison_rate == 0.3);
}

TEST_CASE("the gallery PNG holds clean, poisoned and difference rows") {
    const auto ds = noisy(4);
    const std::string path = "eigencnn_test_gallery.png";
    write_attack_gallery(path, make_attack("badnets-patch"), ds, 4);
    int w = 0, h = 0, c = 0;
    unsigned char* px = stbi_load(path.c_str(), &w, &h, &c, 3);
    REQUIRE(px != nullptr);
    CHECK(w == 4 * (28 * 3 + 6) + 6);
    CHECK(h == 3 * (28 * 3 + 21 + 6) + 6);
    const int cell_h = 28 * 3 + 21 + 6;
    auto grey = [&](int x, int y) { return px[(y * w + x) * 3]; };
    CHECK(grey(6 + 10 * 3, 6 + 2 * cell_h + 10 * 3) == 128);  // unchanged pixel: mid grey
    CHECK(grey(6 + 26 * 3, 6 + 2 * cell_h + 26 * 3) == 255);  // patch pixel brightened, amplified
    stbi_image_free(px);
    std::remove(path.c_str());
}
