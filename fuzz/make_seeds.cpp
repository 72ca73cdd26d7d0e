// Writes the seed corpora of the fuzz targets: small valid IDX files (raw
// and gzip) and small valid checkpoints, plus a few near-misses.
//   make_seeds DIR   -> DIR/idx/*, DIR/checkpoint/*
#include <eigencnn/eigencnn.hpp>

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
    return 0;
}
