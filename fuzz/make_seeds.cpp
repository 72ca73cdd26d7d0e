// SPDX-License-Identifier: MIT
// Writes the seed corpora of the fuzz targets: small valid IDX files (raw
// and gzip), small valid checkpoints and safetensors files, CIFAR-10 batches and image files, plus a few near-misses.
//   make_seeds DIR   -> DIR/idx/*, DIR/checkpoint/*, DIR/model/*, DIR/safetensors/*, DIR/cifar10/*, DIR/image/*, DIR/model_file/*
// Build: g++ -std=c++17 -Iinclude -I/usr/include/eigen3 -I/usr/include/stb fuzz/make_seeds.cpp -lz
#include <eigencnn/eigencnn.hpp>
#include <eigencnn/io/png.hpp>
#include <eigencnn/io/safetensors.hpp>

#define STB_IMAGE_WRITE_IMPLEMENTATION
#define STB_IMAGE_WRITE_STATIC
#include <stb_image_write.h>

#include <fstream>

using namespace eigencnn;

static void put(const std::string& path, const std::string& bytes) { std::ofstream(path, std::ios::binary) << bytes; }

static std::string idx(std::vector<std::uint32_t> dims) {
    std::string b{0, 0, 8, static_cast<char>(dims.size())};
    std::size_t n = 1;
    for (auto d : dims) {
        n *= d;
        for (int s = 24; s >= 0; s -= 8) b.push_back(static_cast<char>(d >> s));
    }
    for (std::size_t i = 0; i < n; ++i) b.push_back(static_cast<char>(i * 31));
    return b;
}

static std::string gz(const std::string& in) {
    z_stream zs{};
    deflateInit2(&zs, 9, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY);
    std::string out(deflateBound(&zs, in.size()) + 64, '\0');
    zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
    zs.avail_in = static_cast<uInt>(in.size());
    zs.next_out = reinterpret_cast<Bytef*>(&out[0]);
    zs.avail_out = static_cast<uInt>(out.size());
    deflate(&zs, Z_FINISH);
    out.resize(zs.total_out);
    deflateEnd(&zs);
    return out;
}

// fuzz_safetensors: the small model's file, the same tensors in other dtypes, extra tensors and metadata, and near misses.
static void safetensors_seeds(const std::string& dir, Sequential<float>& small) {
    put(dir + "small", encode_safetensors(small, {{"format", "pt"}}));
    Sequential<double> d(1);
    d.emplace<Conv2d>(1, 2, 3).emplace<ReLU>().emplace<MaxPool2d>(2).emplace<Flatten>().emplace<Linear>(2 * 3 * 3, 3);
    put(dir + "small_f64", encode_safetensors(d));
    // The same names and shapes as F16, BF16, F16, F64 (hand-made header: every value 1.0)
    auto le64 = [](std::uint64_t v) {
        std::string b;
        for (int i = 0; i < 8; ++i) b.push_back(static_cast<char>(v >> (8 * i)));
        return b;
    };
    auto ones = [](const std::string& dtype, int n) {
        std::string b;
        for (int i = 0; i < n; ++i) {
            if (dtype == "F16") b += std::string("\x00\x3c", 2);
            if (dtype == "BF16") b += std::string("\x80\x3f", 2);
            if (dtype == "F64") b += std::string("\x00\x00\x00\x00\x00\x00\xf0\x3f", 8);
            if (dtype == "I64") b += std::string("\x05\0\0\0\0\0\0\0", 8);
        }
        return b;
    };
    struct T { std::string name, dtype, shape; int n; };
    auto build = [&](const std::vector<T>& ts, const std::string& meta) {
        std::string json = "{" + meta, data;
        for (const auto& t : ts) {
            const std::size_t b = data.size();
            data += ones(t.dtype, t.n);
            json += (json.size() > 1 ? "," : "") + std::string("\"") + t.name + "\":{\"dtype\":\"" + t.dtype + "\",\"shape\":" + t.shape +
                    ",\"data_offsets\":[" + std::to_string(b) + "," + std::to_string(data.size()) + "]}";
        }
        json += "}";
        return le64(json.size()) + json + data;
    };
    const std::vector<T> mixed{{"0.weight", "F16", "[2,1,3,3]", 18}, {"0.bias", "BF16", "[2]", 2}, {"4.weight", "F16", "[3,18]", 54},
                               {"4.bias", "F64", "[3]", 3}};
    put(dir + "mixed_dtypes", build(mixed, R"("__metadata__":{"format":"pt","note":"mixed"})"));
    auto extra = mixed;
    extra.push_back({"1.num_batches_tracked", "I64", "[]", 1});
    put(dir + "extra_tensor", build(extra, ""));
    // near misses: truncated data, a shape off by one, one tensor missing, a duplicate key
    const std::string good = encode_safetensors(small);
    put(dir + "truncated", good.substr(0, good.size() - 5));
    auto off = mixed;
    off[1].shape = "[3]";
    put(dir + "wrong_size", build(off, ""));
    put(dir + "missing", build({mixed[0], mixed[1], mixed[2]}, ""));
    put(dir + "duplicate", build({mixed[0], {"0.weight", "BF16", "[2]", 2}, mixed[2], mixed[3]}, ""));
}

// fuzz_cifar10: two records, a bad label, a size that is not whole records, and class names (batches.meta.txt).
static void cifar10_seeds(const std::string& dir) {
    auto record = [](int label, int seed) {
        std::string r(1, static_cast<char>(label));
        for (int i = 0; i < 3072; ++i) r.push_back(static_cast<char>((seed * 7 + i * 13) % 256));
        return r;
    };
    put(dir + "two_records", record(3, 0) + record(9, 1));
    put(dir + "bad_label", record(4, 0) + record(10, 1));
    put(dir + "truncated", record(1, 2).substr(0, 3000));
    put(dir + "batches.meta.txt", "airplane\nautomobile\nbird\ncat\ndeer\ndog\nfrog\nhorse\nship\ntruck\n\n");
}

// fuzz_image: small images in each format the image folder reads (PNG grey, grey+alpha, RGB, RGBA; JPEG; BMP; PGM;
// PPM), and a truncated PNG.
static void image_seeds(const std::string& dir) {
    auto pixels = [](int w, int h, int c) {
        std::vector<std::uint8_t> px;
        for (int i = 0; i < w * h * c; ++i) px.push_back(static_cast<std::uint8_t>(i * 29 + 3));
        return px;
    };
    for (int c = 1; c <= 4; ++c) {
        const auto px = pixels(6, 5, c);
        put(dir + "png_" + std::to_string(c) + "ch", encode_png(6, 5, c, px.data()));
    }
    auto to_memory = [](void* context, void* data, int size) { static_cast<std::string*>(context)->append(static_cast<char*>(data), static_cast<std::size_t>(size)); };
    const auto rgb = pixels(9, 7, 3);
    std::string jpg, bmp;
    stbi_write_jpg_to_func(to_memory, &jpg, 9, 7, 3, rgb.data(), 90);
    stbi_write_bmp_to_func(to_memory, &bmp, 9, 7, 3, rgb.data());
    put(dir + "rgb.jpg", jpg);
    put(dir + "rgb.bmp", bmp);
    const auto grey = pixels(4, 3, 1);
    put(dir + "grey.pgm", "P5\n4 3\n255\n" + std::string(grey.begin(), grey.end()));
    const auto rgb_small = pixels(4, 3, 3);
    put(dir + "rgb.ppm", "P6\n4 3\n255\n" + std::string(rgb_small.begin(), rgb_small.end()));
    const std::string png = encode_png(9, 7, 3, rgb.data());
    put(dir + "truncated.png", png.substr(0, png.size() / 2));
}

int main(int argc, char** argv) {
    if (argc != 2) return 2;
    const std::string dir = argv[1];
    put(dir + "/idx/labels", idx({10}));
    put(dir + "/idx/images", idx({3, 4, 4}));
    put(dir + "/idx/images.gz", gz(idx({2, 5, 5})));
    put(dir + "/idx/truncated", idx({3, 4, 4}).substr(0, 30));
    Sequential<float> small(1);
    small.emplace<Conv2d>(1, 2, 3).emplace<ReLU>().emplace<MaxPool2d>(2).emplace<Flatten>().emplace<Linear>(2 * 3 * 3, 3);
    put(dir + "/checkpoint/model", encode_checkpoint(small, static_cast<Optimizer<float>*>(nullptr), {{"epoch", "1"}}));
    Adam<float> adam(small.parameters());
    put(dir + "/checkpoint/model_adam", encode_checkpoint(small, static_cast<Optimizer<float>*>(&adam)));
    Sequential<float> lin(2);
    lin.emplace<Flatten>().emplace<Linear>(4, 2, false);
    put(dir + "/checkpoint/linear", encode_checkpoint(lin));
    Sequential<float> res(3);  // format 3: a Residual block's nested specs, BatchNorm buffers, a Dropout stream
    res.emplace<Conv2d>(1, 2, 3, 1, 1, no_bias).emplace<BatchNorm2d>(2).emplace<Dropout>(0.25);
    res.add(std::move(Residual<float>().emplace_body<ReLU>().emplace_body<Conv2d>(2, 2, 1).emplace_shortcut<AvgPool2d>(1)));
    res.emplace<AdaptiveAvgPool2d>(1).emplace<Flatten>().emplace<Linear>(2, 3);
    put(dir + "/checkpoint/residual", encode_checkpoint(res));
    // fuzz_model: N C H W, then layers (type, argument count, per argument: kind byte + 8 value bytes)
    auto layer = [](std::string& b, int type, std::vector<std::int64_t> args) {
        b.push_back(static_cast<char>(type));
        b.push_back(static_cast<char>(args.size()));
        for (std::int64_t a : args) {
            b.push_back(0);
            for (int i = 0; i < 8; ++i) b.push_back(static_cast<char>(static_cast<std::uint64_t>(a) >> (8 * i)));
        }
    };
    std::string cnn{2, 0, 12, 12};  // [3, 1, 12, 12]
    layer(cnn, 0, {1, 4, 3, 1, 1});  // Conv2d
    layer(cnn, 2, {});               // ReLU
    layer(cnn, 1, {2, 2});           // MaxPool2d
    layer(cnn, 3, {});               // Flatten
    layer(cnn, 4, {4 * 6 * 6, 5, 1});  // Linear
    put(dir + "/model/cnn", cnn);
    std::string padded{1, 2, 5, 7};
    layer(padded, 0, {3, 2, 5, 2, 3});
    layer(padded, 1, {3, 1});
    put(dir + "/model/padded", padded);
    safetensors_seeds(dir + "/safetensors/", small);
    cifar10_seeds(dir + "/cifar10/");
    image_seeds(dir + "/image/");
    // fuzz_model_file: a checkpoint of each format, safetensors files (a mismatch with mnist_cnn, a broken one), near misses
    put(dir + "/model_file/model", encode_checkpoint(small, static_cast<Optimizer<float>*>(nullptr), {{"epoch", "1"}}));
    put(dir + "/model_file/residual", encode_checkpoint(res));
    const std::string st = encode_safetensors(small, {{"format", "pt"}});
    put(dir + "/model_file/small", st);
    put(dir + "/model_file/truncated", st.substr(0, st.size() - 37));
    put(dir + "/model_file/almost_magic", "EIGENCN");
    put(dir + "/model_file/empty_header", std::string("\x02\0\0\0\0\0\0\0{}", 10));
    return 0;
}
