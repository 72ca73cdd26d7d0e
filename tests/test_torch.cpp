// SPDX-License-Identifier: MIT
// PyTorch as the oracle (label `torch`): every new layer, and a small PreAct-ResNet, in eigencnn and in
// PyTorch (tests/torch/oracle.py) on the same random input, weights and buffers, in train and eval mode;
// outputs, input gradients, parameter gradients and updated buffers agree within 1e-5 relative (float).
// Without Python's torch this test skips (exit code 77) unless EIGENCNN_REQUIRE_TORCH is set.
#include "gradcheck.hpp"

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <sys/stat.h>

using namespace test;

namespace {

std::string python() {
    const char* p = std::getenv("EIGENCNN_PYTHON");
    return p && *p ? p : EIGENCNN_PYTHON;
}

/// A LayerSpec as JSON: {"type": ..., "args": [...], "children": [...]}.
std::string spec_json(const LayerSpec& s) {
    std::string j = "{\"type\": \"" + s.type + "\", \"args\": [";
    for (std::size_t i = 0; i < s.args.size(); ++i) j += (i ? ", " : "") + s.args[i].str();
    j += "], \"children\": [";
    for (std::size_t i = 0; i < s.children.size(); ++i) j += (i ? ", " : "") + spec_json(s.children[i]);
    return j + "]}";
}

void write_raw(const std::string& path, const Tensor<float>& t) {
    std::ofstream f(path, std::ios::binary);
    f.write(reinterpret_cast<const char*>(t.data()), static_cast<std::streamsize>(sizeof(float) * static_cast<std::size_t>(t.size())));
    REQUIRE(f.good());
}

void write_shape(const std::string& path, const Shape& s) {
    std::ofstream f(path);
    for (Index d : s.dims()) f << d << ' ';
}

/// A float32 file of exactly the size of `shape`, or a failed REQUIRE naming it.
Tensor<float> read_raw(const std::string& path, const Shape& shape) {
    std::ifstream f(path, std::ios::binary | std::ios::ate);
    INFO("reading " << path);
    REQUIRE(f.good());
    REQUIRE(static_cast<Index>(f.tellg()) == shape.numel() * static_cast<Index>(sizeof(float)));
    Tensor<float> t(shape);
    f.seekg(0);
    f.read(reinterpret_cast<char*>(t.data()), static_cast<std::streamsize>(sizeof(float) * static_cast<std::size_t>(t.size())));
    return t;
}

/// max |a - b| / max(max |b|, 1e-6): the error relative to the tensor's scale.
double rel_error(const Tensor<float>& a, const Tensor<float>& b) {
    REQUIRE(a.shape() == b.shape());
    if (a.size() == 0) return 0;
    const double scale = std::max(1e-6, static_cast<double>(b.vector().cwiseAbs().maxCoeff()));
    return static_cast<double>((a.vector() - b.vector()).cwiseAbs().maxCoeff()) / scale;
}

struct Case {
    std::string name;
    bool train;
    Sequential<float> net;
    Shape in;
    Tensor<float> y, dx;
    std::vector<std::pair<std::string, Tensor<float>>> grads, buffers;  // eigencnn's, after forward and backward
};

Case make_case(std::string name, bool train, Sequential<float> net, const Shape& in) { return Case{std::move(name), train, std::move(net), in, {}, {}, {}, {}}; }

std::vector<Case> cases() {
    std::vector<Case> c;
    auto one = [](auto&& layer) {
        Sequential<float> net(7);
        net.add(std::move(layer));
        return net;
    };
    for (bool train : {true, false}) {
        const std::string m = train ? "_train" : "_eval";
        c.push_back(make_case("bn2d" + m, train, one(BatchNorm2d<float>(3)), Shape{4, 3, 5, 5}));
        c.push_back(make_case("bn1d" + m, train, one(BatchNorm1d<float>(5)), Shape{6, 5}));
        c.push_back(make_case("bn1d_seq" + m, train, one(BatchNorm1d<float>(4, 1e-3, 0.3)), Shape{3, 4, 7}));
        c.push_back(make_case("resnet" + m, train, preact_resnet<float>({4, 8}, 1, 5, 3, 11), Shape{2, 3, 8, 8}));
    }
    c.push_back(make_case("dropout_eval", false, one(Dropout<float>(0.3)), Shape{3, 4, 2, 2}));
    c.push_back(make_case("dropout_p0_train", true, one(Dropout<float>(0.0)), Shape{3, 4}));
    c.push_back(make_case("avgpool_3_2_1", true, one(AvgPool2d<float>(3, 2, 1)), Shape{2, 3, 7, 6}));
    c.push_back(make_case("avgpool_2", true, one(AvgPool2d<float>(2)), Shape{2, 3, 7, 6}));
    c.push_back(make_case("adaptive_1", true, one(AdaptiveAvgPool2d<float>(1)), Shape{2, 3, 7, 5}));
    c.push_back(make_case("adaptive_3", true, one(AdaptiveAvgPool2d<float>(3)), Shape{2, 3, 7, 5}));
    c.push_back(make_case("leaky_relu", true, one(LeakyReLU<float>(0.2)), Shape{2, 3, 4, 4}));
    c.push_back(make_case("sigmoid", true, one(Sigmoid<float>()), Shape{2, 3, 4, 4}));
    c.push_back(make_case("tanh", true, one(Tanh<float>()), Shape{2, 3, 4, 4}));
    c.push_back(make_case("softmax", false, one(Softmax<float>()), Shape{2, 3, 4, 4}));
    c.push_back(make_case("log_softmax", false, one(LogSoftmax<float>()), Shape{5, 7}));
    c.push_back(make_case("conv_no_bias", true, one(Conv2d<float>(3, 4, 3, 2, 1, no_bias)), Shape{2, 3, 7, 7}));
    // 3x3 stride 1, channels in 16s: forward and input gradient by Winograd F(2x2, 3x3); odd planes cut the last tiles
    c.push_back(make_case("conv3x3_winograd", true, one(Conv2d<float>(16, 32, 3, 1, 1)), Shape{2, 16, 9, 7}));
    c.push_back(make_case("conv3x3_winograd_pad2", true, one(Conv2d<float>(32, 16, 3, 1, 2)), Shape{1, 32, 6, 5}));
    // 5x5 stride 1, channels in 16s: by F(2x2, 5x5) (the seed model's second conv: its input gradient direct, Winograd
    // would not pay on 8x8 padded by 4), and padding 2 on odd planes
    c.push_back(make_case("conv5x5_winograd", true, one(Conv2d<float>(16, 32, 5)), Shape{3, 16, 12, 12}));
    c.push_back(make_case("conv5x5_winograd_pad2", true, one(Conv2d<float>(32, 16, 5, 1, 2)), Shape{2, 32, 9, 7}));
    Sequential<float> lin(7);
    lin.emplace<Flatten>().emplace<Linear>(12, 5, false);
    c.push_back(make_case("linear_no_bias", true, std::move(lin), Shape{3, 3, 2, 2}));
    Sequential<float> block(7);
    block.add(std::move(Residual<float>().emplace_body<Conv2d>(3, 4, 3, 2, 1, no_bias).emplace_body<BatchNorm2d>(4).emplace_body<ReLU>()
                                         .emplace_body<Conv2d>(4, 4, 3, 1, 1).emplace_shortcut<Conv2d>(3, 4, 1, 2, 0, no_bias)
                                         .emplace_shortcut<BatchNorm2d>(4)));
    c.push_back(make_case("residual_projection_bn", true, std::move(block), Shape{2, 3, 6, 6}));
    return c;
}

bool torch_or_skip() {
    const std::string probe = python() + " -c 'import torch, numpy' > /dev/null 2>&1";
    if (std::system(probe.c_str()) == 0) return true;
    const std::string why = "PyTorch is not importable by " + python() + " (install Debian's python3-torch, or set EIGENCNN_PYTHON)";
    if (std::getenv("EIGENCNN_REQUIRE_TORCH")) {
        FAIL(why << ", and EIGENCNN_REQUIRE_TORCH is set");
    }
    std::cout << "SKIP: " << why << std::endl;
    std::exit(77);
}

}  // namespace

TEST_CASE("every new layer and a small PreAct-ResNet agree with PyTorch: outputs, input and parameter gradients, buffers") {
    REQUIRE(torch_or_skip());
    const std::string root = "torch_cases";
    std::system(("rm -rf " + root).c_str());
    REQUIRE(mkdir(root.c_str(), 0755) == 0);
    auto all = cases();
    std::ofstream list(root + "/cases.txt");
    Rng rng(2024);
    for (auto& c : all) {
        const std::string dir = root + "/" + c.name;
        REQUIRE(mkdir(dir.c_str(), 0755) == 0);
        // Random state, so that no weight is a trivial 1 or 0 and the running statistics are not the initial ones.
        for (auto& p : c.net.parameters())
            for (Index i = 0; i < p.value->size(); ++i) (*p.value)[i] += static_cast<float>(rng.uniform(-0.3, 0.3));
        for (auto& b : c.net.buffers())
            for (Index i = 0; i < b.value->size(); ++i) {
                const bool count = b.name.find("num_batches_tracked") != std::string::npos, var = b.name.find("running_var") != std::string::npos;
                (*b.value)[i] = count ? 3.0f : static_cast<float>(var ? rng.uniform(0.5, 2.0) : rng.uniform(-0.5, 0.5));
            }
        for (auto& p : c.net.parameters()) write_raw(dir + "/param." + p.name + ".bin", *p.value);
        for (auto& b : c.net.buffers()) write_raw(dir + "/buf." + b.name + ".bin", *b.value);
        const Tensor<float> x = [&] {
            Tensor<float> t(c.in);
            for (Index i = 0; i < t.size(); ++i) t[i] = static_cast<float>(rng.uniform(-2, 2));
            return t;
        }();
        Tensor<float> dy(c.net.output_shape(c.in));
        for (Index i = 0; i < dy.size(); ++i) dy[i] = static_cast<float>(rng.uniform(-1, 1));
        write_raw(dir + "/x.bin", x);
        write_shape(dir + "/x.shape", x.shape());
        write_raw(dir + "/dy.bin", dy);
        write_shape(dir + "/dy.shape", dy.shape());
        std::string specs = "[";
        for (const auto& s : c.net.specs()) specs += (specs.size() > 1 ? ", " : "") + spec_json(s);
        list << c.name << '\t' << (c.train ? "train" : "eval") << '\t' << specs << "]\n";
        // eigencnn's side.
        c.net.train(c.train);
        c.net.set_input_grad(true);
        c.y = c.net.forward(x);
        c.dx = c.net.backward(dy);
        for (auto& p : c.net.parameters()) c.grads.emplace_back(p.name, *p.grad);
        for (auto& b : c.net.buffers()) c.buffers.emplace_back(b.name, *b.value);
    }
    list.close();
    const std::string cmd = python() + " " + EIGENCNN_SOURCE_DIR + "/tests/torch/oracle.py " + root;
    INFO(cmd);
    REQUIRE(std::system(cmd.c_str()) == 0);
    for (auto& c : all) {
        CAPTURE(c.name);
        const std::string dir = root + "/" + c.name;
        CHECK(rel_error(c.y, read_raw(dir + "/out.y.bin", c.y.shape())) < 1e-5);
        CHECK(rel_error(c.dx, read_raw(dir + "/out.dx.bin", c.dx.shape())) < 1e-5);
        for (auto& [name, g] : c.grads) {
            CAPTURE(name);
            CHECK(rel_error(g, read_raw(dir + "/grad." + name + ".bin", g.shape())) < 1e-5);
        }
        for (auto& [name, b] : c.buffers) {
            CAPTURE(name);
            CHECK(rel_error(b, read_raw(dir + "/after." + name + ".bin", b.shape())) < 1e-5);
        }
    }
}
