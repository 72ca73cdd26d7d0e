// SPDX-License-Identifier: MIT
// Replays the fuzz seed corpus and every saved fuzz finding (fuzz/corpus,
// fuzz/regressions) through the fuzz targets' code: each input must parse or
// be refused with the parser's own error. Under scripts/sanitize.sh this also
// runs with AddressSanitizer and UndefinedBehaviorSanitizer.
#include "../fuzz/targets.hpp"

#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <iterator>

namespace fs = std::filesystem;

namespace {
template <typename F>
std::size_t replay(const std::string& target, F run) {
    std::size_t n = 0;
    for (const char* kind : {"corpus", "regressions"}) {
        const fs::path dir = fs::path(EIGENCNN_SOURCE_DIR) / "fuzz" / kind / target;
        if (!fs::exists(dir)) continue;
        for (const auto& entry : fs::directory_iterator(dir)) {
            if (!entry.is_regular_file() || entry.path().filename().string()[0] == '.') continue;
            // stb_image 2.27 shifts a zero by 33 on this JPEG: harmless, exempted from UBSan for clang only (io/stb_image.hpp)
            if (fuzz::kUbsanReportsStbZeroShift && entry.path().filename() == fuzz::kStbZeroShiftInput) {
                MESSAGE("skipped under GCC's UBSan: " << entry.path().string());
                continue;
            }
            std::ifstream f(entry.path(), std::ios::binary);
            const std::vector<std::uint8_t> bytes((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
            CAPTURE(entry.path().string());
            CHECK_NOTHROW(run(bytes.data(), bytes.size()));
            ++n;
        }
    }
    return n;
}
}  // namespace

TEST_CASE("fuzz inputs: IDX reader") { CHECK(replay("idx", fuzz::idx) >= 4); }
TEST_CASE("fuzz inputs: checkpoint loader") { CHECK(replay("checkpoint", fuzz::checkpoint) >= 6); }
TEST_CASE("fuzz inputs: models from arbitrary specs") { CHECK(replay("model", fuzz::model) >= 2); }
TEST_CASE("fuzz inputs: safetensors loader") { CHECK(replay("safetensors", fuzz::safetensors) >= 8); }
TEST_CASE("fuzz inputs: model-file loader") { CHECK(replay("model_file", fuzz::model_file) >= 5); }
TEST_CASE("fuzz inputs: CIFAR-10 reader") { CHECK(replay("cifar10", fuzz::cifar10) >= 4); }
TEST_CASE("fuzz inputs: image decoder") { CHECK(replay("image", fuzz::image) == (fuzz::kUbsanReportsStbZeroShift ? 13u : 14u)); }

TEST_CASE("the image seeds decode (every format the image folder reads), except the truncated one") {
    for (const char* name : {"png_1ch", "png_2ch", "png_3ch", "png_4ch", "rgb.jpg", "rgb.bmp", "grey.pgm", "rgb.ppm", "truncated.png"}) {
        const fs::path p = fs::path(EIGENCNN_SOURCE_DIR) / "fuzz/corpus/image" / name;
        std::ifstream f(p, std::ios::binary);
        const std::vector<std::uint8_t> b((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
        CAPTURE(name);
        if (std::string(name) == "truncated.png") CHECK_THROWS_AS(eigencnn::decode_image(b.data(), b.size(), 3, p.string()), eigencnn::ImageError);
        else CHECK(eigencnn::decode_image(b.data(), b.size(), 3, p.string()).pixels.size() > 0);
    }
}

TEST_CASE("fuzz targets accept the seeds as valid, so the fuzzer starts from real files") {
    const fs::path seed = fs::path(EIGENCNN_SOURCE_DIR) / "fuzz/corpus/checkpoint/model_adam";
    std::ifstream f(seed, std::ios::binary);
    const std::vector<std::uint8_t> bytes((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    const auto d = eigencnn::decode_checkpoint<float>(bytes.data(), bytes.size(), seed.string());
    CHECK(d.optimizer == "Adam");
    CHECK(d.architecture.size() == 5);
    CHECK(d.version == 2);
    const fs::path v1 = fs::path(EIGENCNN_SOURCE_DIR) / "fuzz/corpus/checkpoint/v1_model_adam";
    std::ifstream f1(v1, std::ios::binary);
    const std::vector<std::uint8_t> old((std::istreambuf_iterator<char>(f1)), std::istreambuf_iterator<char>());
    CHECK(eigencnn::decode_checkpoint<float>(old.data(), old.size(), v1.string()).version == 1);
    // the model seed builds and runs a whole CNN (forward and backward), not just a refusal
    const fs::path cnn = fs::path(EIGENCNN_SOURCE_DIR) / "fuzz/corpus/model/cnn";
    std::ifstream f2(cnn, std::ios::binary);
    const std::vector<std::uint8_t> spec((std::istreambuf_iterator<char>(f2)), std::istreambuf_iterator<char>());
    REQUIRE(spec.size() == 4 + 2 + 5 * 9 + 2 + 2 * 9 + 2 + 2 + 2 + 3 * 9);
    // the safetensors seeds load into the fuzz target's model (all dtypes), and the near misses are refused
    for (const char* name : {"small", "small_f64", "mixed_dtypes", "extra_tensor", "truncated", "wrong_size", "missing", "duplicate"}) {
        const fs::path st = fs::path(EIGENCNN_SOURCE_DIR) / "fuzz/corpus/safetensors" / name;
        std::ifstream f3(st, std::ios::binary);
        const std::vector<std::uint8_t> b((std::istreambuf_iterator<char>(f3)), std::istreambuf_iterator<char>());
        eigencnn::Sequential<float> net(1);
        net.emplace<eigencnn::Conv2d>(1, 2, 3).emplace<eigencnn::ReLU>().emplace<eigencnn::MaxPool2d>(2).emplace<eigencnn::Flatten>().emplace<eigencnn::Linear>(18, 3);
        const bool valid = std::string(name) == "small" || std::string(name) == "small_f64" || std::string(name) == "mixed_dtypes";
        CAPTURE(name);
        if (valid) CHECK_NOTHROW(eigencnn::decode_safetensors(net, b.data(), b.size(), st.string()));
        else CHECK_THROWS_AS(eigencnn::decode_safetensors(net, b.data(), b.size(), st.string()), eigencnn::SafetensorsError);
    }
    eigencnn::Sequential<float> net(1);
    net.emplace<eigencnn::Conv2d>(1, 2, 3).emplace<eigencnn::ReLU>().emplace<eigencnn::MaxPool2d>(2).emplace<eigencnn::Flatten>().emplace<eigencnn::Linear>(18, 3);
    const fs::path extra = fs::path(EIGENCNN_SOURCE_DIR) / "fuzz/corpus/safetensors/extra_tensor";
    std::ifstream f4(extra, std::ios::binary);
    const std::vector<std::uint8_t> e((std::istreambuf_iterator<char>(f4)), std::istreambuf_iterator<char>());
    CHECK_NOTHROW(eigencnn::decode_safetensors(net, e.data(), e.size(), extra.string(), eigencnn::SafetensorsLoadOptions{false}));
}
