// SPDX-License-Identifier: MIT
// Per-batch data augmentation (data/transforms.hpp): RandomCrop, RandomHorizontalFlip, Normalize, Compose on
// the DataLoader's transform hook; known answers, the distribution of the draws, determinism, bad parameters.
#include <doctest/doctest.h>
#include <eigencnn/eigencnn.hpp>
#include <eigencnn/data/transforms.hpp>

#include <map>
#include <set>

using namespace eigencnn;

namespace {

/// n images [n, c, h, w] with value(n, c, y, x) = 1000 n + 100 c + 10 y + x (all distinct, all positive).
Dataset<float> numbered(Index n, Index c, Index h, Index w) {
    Dataset<float> d;
    d.images.resize(Shape{n, c, h, w});
    for (Index i = 0; i < n; ++i)
        for (Index ch = 0; ch < c; ++ch)
            for (Index y = 0; y < h; ++y)
                for (Index x = 0; x < w; ++x) d.images(i, ch, y, x) = static_cast<float>(1000 * i + 100 * ch + 10 * y + x);
    d.labels.assign(static_cast<std::size_t>(n), 0);
    return d;
}

Batch<float> batch_of(const Dataset<float>& d) {
    Batch<float> b;
    b.images = d.images;
    b.labels = d.labels;
    return b;
}

bool same(const Tensor<float>& a, const Tensor<float>& b) {
    if (a.shape() != b.shape()) return false;
    for (Index i = 0; i < a.size(); ++i)
        if (a[i] != b[i]) return false;
    return true;
}

/// Every batch of one epoch of `loader`, concatenated.
std::vector<float> epoch_values(DataLoader<float>& loader, std::uint64_t epoch) {
    loader.set_epoch(epoch);
    std::vector<float> all;
    Batch<float> b;
    for (std::size_t i = 0; i < loader.num_batches(); ++i) {
        loader.load(i, b);
        all.insert(all.end(), b.images.data(), b.images.data() + b.images.size());
    }
    return all;
}

}  // namespace

TEST_CASE("RandomCrop: padding 0 and the image's size is the identity, and draws nothing") {
    const auto d = numbered(4, 3, 5, 6);
    Rng rng(7), untouched(7);
    const RandomCrop<float> crop(5, 6, 0, 0.0f);
    const Tensor<float> out = crop.apply(d.images, rng);
    CHECK(same(out, d.images));
    CHECK(rng.next() == untouched.next());  // as torchvision: no draw when the crop is the whole image
}

TEST_CASE("RandomCrop: each sample is a window of its zero-padded image, every offset occurs, output of the crop size") {
    const auto d = numbered(200, 2, 4, 4);
    const RandomCrop<float> crop(4, /*padding=*/1);  // 6x6 padded -> 3 x 3 possible corners
    Rng rng(3);
    const Tensor<float> out = crop.apply(d.images, rng);
    REQUIRE(out.shape() == Shape{200, 2, 4, 4});
    std::map<std::pair<int, int>, int> seen;
    for (Index n = 0; n < 200; ++n) {
        int matches = 0;
        for (int i = 0; i <= 2; ++i)
            for (int j = 0; j <= 2; ++j) {
                bool ok = true;
                for (Index c = 0; c < 2; ++c)
                    for (Index y = 0; y < 4; ++y)
                        for (Index x = 0; x < 4; ++x) {
                            const Index sy = y + i - 1, sx = x + j - 1;
                            const float want = sy >= 0 && sy < 4 && sx >= 0 && sx < 4 ? d.images(n, c, sy, sx) : 0.0f;
                            ok = ok && out(n, c, y, x) == want;
                        }
                if (ok) ++matches, ++seen[{i, j}];
            }
        CHECK(matches == 1);
    }
    CHECK(seen.size() == 9);
    for (const auto& kv : seen) CHECK(kv.second > 8);  // 200 draws over 9 corners: about 22 each
    // A smaller crop, another fill value, non-square: [B, C, 2, 3] out of 4x4 padded by 2.
    Rng r2(5);
    const Tensor<float> small = RandomCrop<float>(2, 3, 2, -1.0f).apply(d.images, r2);
    CHECK(small.shape() == Shape{200, 2, 2, 3});
    std::set<float> values(small.data(), small.data() + small.size());
    CHECK(values.count(-1.0f) == 1);  // crops reaching into the padding see the fill value
}

TEST_CASE("RandomHorizontalFlip: a flipped image is its mirror, p = 0 and p = 1, and about p of the samples") {
    const auto d = numbered(1, 2, 2, 3);
    Rng rng(1);
    Tensor<float> im = d.images;
    RandomHorizontalFlip<float>(1.0).apply(im, rng);
    const std::vector<float> want{2, 1, 0, 12, 11, 10, 102, 101, 100, 112, 111, 110};
    CHECK(std::vector<float>(im.data(), im.data() + im.size()) == want);
    Tensor<float> kept = d.images;
    RandomHorizontalFlip<float>(0.0).apply(kept, rng);
    CHECK(same(kept, d.images));
    const auto many = numbered(1000, 1, 1, 2);  // value 1000 n + x: flipped when its first value is odd
    Tensor<float> m = many.images;
    RandomHorizontalFlip<float> flip;  // p = 0.5
    CHECK(flip.p() == 0.5);
    flip.apply(m, rng);
    int flipped = 0;
    for (Index n = 0; n < 1000; ++n) {
        const bool f = m(n, 0, 0, 0) == static_cast<float>(1000 * n + 1);
        CHECK((f || m(n, 0, 0, 0) == static_cast<float>(1000 * n)));
        flipped += f;
    }
    CHECK(flipped > 430);  // binomial(1000, 0.5): 500 +- 16 (one sd)
    CHECK(flipped < 570);
    Tensor<float> odd = numbered(1, 1, 1, 5).images;  // an odd width keeps its middle column
    RandomHorizontalFlip<float>(1.0).apply(odd, rng);
    CHECK(std::vector<float>(odd.data(), odd.data() + 5) == std::vector<float>{4, 3, 2, 1, 0});
}

TEST_CASE("Normalize: (x - mean[c]) / std[c], one value for every channel, and a whole data set") {
    Tensor<float> x(Shape{2, 3, 1, 2});
    for (Index i = 0; i < x.size(); ++i) x[i] = static_cast<float>(i);  // sample 0: channel c holds 2c, 2c + 1
    Tensor<float> a = x;
    Normalize<float>({1.0, 2.0, 3.0}, {0.5, 2.0, 4.0}).apply(a);
    CHECK(a(0, 0, 0, 0) == -2.0f);  // (0 - 1) / 0.5
    CHECK(a(0, 0, 0, 1) == 0.0f);
    CHECK(a(0, 1, 0, 1) == 0.5f);   // (3 - 2) / 2
    CHECK(a(1, 2, 0, 0) == 1.75f);  // sample 1, channel 2 holds 10 and 11: (10 - 3) / 4
    CHECK(a(1, 2, 0, 1) == 2.0f);   // (11 - 3) / 4
    Tensor<float> b = x;
    Normalize<float>({0.5}, {0.5}).apply(b);  // MNIST-style single values: every channel, 2x - 1
    for (Index i = 0; i < b.size(); ++i) CHECK(b[i] == 2.0f * x[i] - 1.0f);
    Batch<float> batch;
    batch.images = x;
    Rng rng(0);
    Normalize<float>({0.0}, {2.0})(batch, rng);
    CHECK(batch.images[5] == 2.5f);
}

TEST_CASE("Compose on the DataLoader's hook: same seed, same batches on any thread count; other seeds differ") {
    const auto d = numbered(37, 3, 6, 6);
    const Compose<float> augment({RandomCrop<float>(6, 2), RandomHorizontalFlip<float>(),
                                  Normalize<float>({100.0, 200.0, 300.0}, {10.0, 20.0, 30.0})});
    CHECK(augment.size() == 3);
    auto run = [&](std::uint64_t seed, int threads) {
        set_num_threads(threads);
        DataLoader<float> loader(d, 8, true, seed);
        loader.set_transform(augment);
        auto v = epoch_values(loader, 0);
        const auto e1 = epoch_values(loader, 1);
        v.insert(v.end(), e1.begin(), e1.end());
        return v;
    };
    const auto one = run(1, 1);
    CHECK(run(1, 3) == one);
    CHECK(run(1, 2) == one);
    CHECK(run(2, 1) != one);
    set_num_threads(1);
    // The composition is the transforms in order on one Rng: the same as calling them by hand.
    Batch<float> b = batch_of(d), by_hand = batch_of(d);
    Rng r1(9), r2(9);
    augment(b, r1);
    RandomCrop<float>(6, 2)(by_hand, r2);
    RandomHorizontalFlip<float>()(by_hand, r2);
    Normalize<float>({100.0, 200.0, 300.0}, {10.0, 20.0, 30.0})(by_hand, r2);
    CHECK(same(b.images, by_hand.images));
}

TEST_CASE("transforms: bad parameters are refused naming the transform and the parameter") {
    CHECK_THROWS_WITH_AS(Normalize<float>({0.5, 0.5}, {0.2, 0.0}), "Normalize: std[1] is 0 (a division by zero)", std::invalid_argument);
    CHECK_THROWS_WITH_AS(Normalize<float>({}, {1.0}), "Normalize: mean is empty (one value, or one per channel)", std::invalid_argument);
    CHECK_THROWS_WITH_AS(Normalize<float>({std::nan("")}, {1.0}), "Normalize: mean[0] is not finite", std::invalid_argument);
    Tensor<float> rgb(Shape{1, 3, 2, 2});
    CHECK_THROWS_WITH_AS(Normalize<float>({0.1, 0.2}, {1.0}).apply(rgb),
                         "Normalize: mean has 2 values, the images [1, 3, 2, 2] have 3 channels", std::invalid_argument);
    CHECK_THROWS_WITH_AS(Normalize<float>({0.1}, {1.0, 2.0}).apply(rgb),
                         "Normalize: std has 2 values, the images [1, 3, 2, 2] have 3 channels", std::invalid_argument);
    Rng rng(0);
    CHECK_THROWS_WITH_AS(RandomCrop<float>(9, 2).apply(rgb, rng),
                         "RandomCrop: size 9x9 is larger than the padded image 6x6 (images 2x2, padding 2)", std::invalid_argument);
    CHECK_THROWS_WITH_AS(RandomCrop<float>(0), "RandomCrop: size must be positive, got 0x0", std::invalid_argument);
    CHECK_THROWS_WITH_AS(RandomCrop<float>(3, -1), "RandomCrop: padding must be >= 0, got -1", std::invalid_argument);
    CHECK_THROWS_WITH_AS(RandomHorizontalFlip<float>(1.5), doctest::Contains("RandomHorizontalFlip: p must be in [0, 1], got 1.5"), std::invalid_argument);
    CHECK_THROWS_AS(RandomHorizontalFlip<float>(std::nan("")), std::invalid_argument);
    Tensor<float> flat(Shape{2, 4});
    CHECK_THROWS_WITH_AS(RandomHorizontalFlip<float>().apply(flat, rng), "RandomHorizontalFlip: images must be [B, C, H, W], got [2, 4]",
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(Compose<float>({DataLoader<float>::BatchTransform()}), "Compose: transform 0 is empty", std::invalid_argument);
}
