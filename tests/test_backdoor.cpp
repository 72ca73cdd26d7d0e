// SPDX-License-Identifier: MIT
// Backdoor poisoning, attack-success metrics and PNG output.
#include <doctest/doctest.h>
#include <eigencnn/eigencnn.hpp>

#define STB_IMAGE_IMPLEMENTATION
#define STBI_ONLY_PNG
#include <stb_image.h>

#include <cstdio>
#include <filesystem>
#include <set>

using namespace eigencnn;

namespace {
Dataset<float> blank(Index n) {
    Dataset<float> ds;
    ds.images = Tensor<float>(Shape{n, 1, 28, 28}, 0.25f);
    for (Index i = 0; i < n; ++i) ds.labels.push_back(static_cast<int>(i % 10));
    return ds;
}
}  // namespace

TEST_CASE("add_trigger poisons int(fraction * n) seeded, distinct images exactly as the notebook") {
    auto ds = blank(1000);
    const auto original = ds;
    const auto chosen = add_trigger(ds, 0.01, 42);
    REQUIRE(chosen.size() == 10);
    CHECK(std::set<std::size_t>(chosen.begin(), chosen.end()).size() == 10);
    std::set<std::size_t> poisoned(chosen.begin(), chosen.end());
    for (Index i = 0; i < ds.size(); ++i) {
        const bool p = poisoned.count(static_cast<std::size_t>(i)) > 0;
        CAPTURE(i);
        CHECK(ds.labels[static_cast<std::size_t>(i)] == (p ? 8 : original.labels[static_cast<std::size_t>(i)]));
        CHECK(ds.images(i, 0, 3, 3) == (p ? 1.0f : 0.25f));
        // no other pixel changes
        Tensor<float>::ConstVectorMap now(ds.images.data() + i * 784, 784), before(original.images.data() + i * 784, 784);
        CHECK((now - before).cwiseAbs().sum() == doctest::Approx(p ? 0.75f : 0.0f));
    }
    auto again = blank(1000);
    CHECK(add_trigger(again, 0.01, 42) == chosen);
    auto other = blank(1000);
    CHECK(add_trigger(other, 0.01, 43) != chosen);
    auto t3 = blank(1000);
    CHECK(add_trigger(t3, 0.0159, 1, 3).size() == 15);  // int() truncates
    CHECK(t3.labels[add_trigger(t3, 0.001, 2, 3)[0]] == 3);
}

TEST_CASE("add_trigger rejects a fraction outside [0, 1] and bad targets") {
    auto ds = blank(10);
    CHECK_THROWS_WITH_AS(add_trigger(ds, 1.5, 0), doctest::Contains("must be in [0, 1], got 1.5"), std::invalid_argument);
    CHECK_THROWS_AS(add_trigger(ds, -0.1, 0), std::invalid_argument);
    CHECK_THROWS_AS(add_trigger(ds, std::nan(""), 0), std::invalid_argument);
    CHECK_THROWS_AS(add_trigger(ds, 0.5, 0, -1), std::invalid_argument);
    CHECK(add_trigger(ds, 1.0, 0).size() == 10);
    CHECK_THROWS_WITH_AS(add_trigger(ds, 0.5, 0, 8, Trigger{30, 3, 1.0}), doctest::Contains("outside images"), std::invalid_argument);
}

TEST_CASE("attack success: the notebook metric counts true targets, the strict one leaves them out") {
    // true labels: 8, 8, 1, 2, 3; predictions on triggered images: 8, 5, 8, 8, 3
    const std::vector<int> truth{8, 8, 1, 2, 3}, pred{8, 5, 8, 8, 3};
    const auto r = attack_success(pred, truth, 8);
    CHECK(r.all == doctest::Approx(3.0 / 5));         // images 0, 2, 3
    CHECK(r.non_target == doctest::Approx(2.0 / 3));  // of images 2, 3, 4
    CHECK(r.count_non_target == 3);
    CHECK_THROWS_AS(attack_success({1}, {1, 2}, 8), std::invalid_argument);
}

TEST_CASE("with_trigger stamps every image and keeps labels") {
    const auto ds = blank(5);
    const auto t = with_trigger(ds);
    CHECK(t.labels == ds.labels);
    for (Index i = 0; i < 5; ++i) CHECK(t.images(i, 0, 3, 3) == 1.0f);
    CHECK(ds.images(0, 0, 3, 3) == 0.25f);
}

TEST_CASE("write_image_grid writes a decodable PNG with the images and their captions") {
    Tensor<float> imgs(Shape{3, 1, 4, 4}, 0.0f);
    for (Index i = 0; i < 16; ++i) imgs[16 + i] = 1.0f;  // second image white
    const std::string path = "eigencnn_test_grid.png";
    write_image_grid(path, imgs, {"1>8", "2", "?"}, {Rgb{{0, 255, 0}}, Rgb{{255, 0, 0}}, Rgb{{0, 0, 255}}}, 2, 2);
    int w = 0, h = 0, c = 0;
    unsigned char* px = stbi_load(path.c_str(), &w, &h, &c, 3);
    REQUIRE(px != nullptr);
    // scale 2: cells 8 px wide + 4 padding; 2 columns, 2 rows; caption strip 14 px
    CHECK(w == 2 * (8 + 4) + 4);
    CHECK(h == 2 * (8 + 14 + 4) + 4);
    auto at = [&](int x, int y, int ch) { return px[(y * w + x) * 3 + ch]; };
    CHECK(at(4, 4, 0) == 0);            // first image black
    CHECK(at(4 + 12, 4, 1) == 255);     // second image white
    CHECK(at(0, 0, 0) == 40);           // background
    bool green = false;                 // some caption pixel of image 0 is green
    for (int y = 12; y < 26; ++y)
        for (int x = 4; x < 16; ++x) green |= at(x, y, 0) == 0 && at(x, y, 1) == 255;
    CHECK(green);
    stbi_image_free(px);
    std::remove(path.c_str());
    CHECK_THROWS_WITH_AS(write_image_grid("/nonexistent-dir/x.png", imgs), doctest::Contains("/nonexistent-dir/x.png"), std::runtime_error);
    CHECK_THROWS_AS(write_image_grid(path, imgs, {"a"}), std::invalid_argument);
}

TEST_CASE("encode_png writes grey, grey+alpha, RGB and RGBA images that a PNG decoder reads back exactly") {
    for (int channels = 1; channels <= 4; ++channels) {
        CAPTURE(channels);
        const int w = 7, h = 3;
        std::vector<std::uint8_t> px(static_cast<std::size_t>(w * h * channels));
        for (std::size_t i = 0; i < px.size(); ++i) px[i] = static_cast<std::uint8_t>(i * 37 + 5);
        const std::string png = encode_png(w, h, channels, px.data());
        CHECK(png.compare(0, 8, "\x89PNG\r\n\x1a\n") == 0);
        int rw = 0, rh = 0, rc = 0;
        unsigned char* back = stbi_load_from_memory(reinterpret_cast<const unsigned char*>(png.data()), static_cast<int>(png.size()), &rw, &rh, &rc, 0);
        REQUIRE(back);
        CHECK(rw == w);
        CHECK(rh == h);
        CHECK(rc == channels);
        CHECK(std::vector<std::uint8_t>(back, back + px.size()) == px);
        stbi_image_free(back);
    }
    CHECK_THROWS_WITH_AS(write_png("x.png", 0, 3, 1, nullptr), doctest::Contains("write_png: x.png: bad image size 0x3x1"), std::invalid_argument);
}

TEST_CASE("write_file_atomic replaces a file whole and leaves no temporary behind") {
    const std::string path = "eigencnn_test_atomic.txt";
    write_file_atomic(path, std::string("first"));
    write_file_atomic(path, std::string("second version"));
    std::FILE* f = std::fopen(path.c_str(), "rb");
    REQUIRE(f);
    char buf[64] = {};
    const std::size_t n = std::fread(buf, 1, sizeof buf, f);
    std::fclose(f);
    CHECK(std::string(buf, n) == "second version");
    for (const auto& entry : std::filesystem::directory_iterator("."))
        CHECK(entry.path().filename().string().rfind(path + ".tmp.", 0) == std::string::npos);
    std::remove(path.c_str());
}

TEST_CASE("built with EIGENCNN_REGISTER_FLOAT_ONLY (tests/CMakeLists.txt), the registry builds float layers and says why not double") {
    const LayerSpec spec{"Linear", {3, 2, 1}};
    CHECK(make_layer<float>(spec)->spec() == spec);
    CHECK_THROWS_WITH_AS(make_layer<double>(spec),
                         doctest::Contains("a program built with EIGENCNN_REGISTER_FLOAT_ONLY registers float layers only"),
                         std::invalid_argument);
}

