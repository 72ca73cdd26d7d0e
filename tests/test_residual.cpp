// SPDX-License-Identifier: MIT
// Residual blocks and the small PreAct-ResNet: gradients, nested names and specs, checkpoints (format 3),
// Dropout streams inside and outside blocks through a resume, and a few training steps.
#include "gradcheck.hpp"

#include <cstdio>
#include <fstream>

using namespace test;

namespace {

Residual<double> projection_block() {  // 2 -> 4 channels, stride 2, with a BatchNorm2d in the shortcut
    Residual<double> r;
    r.emplace_body<Conv2d>(2, 4, 3, 2, 1, no_bias).emplace_body<BatchNorm2d>(4).emplace_body<ReLU>().emplace_body<Conv2d>(4, 4, 3, 1, 1);
    r.emplace_shortcut<Conv2d>(2, 4, 1, 2, 0, no_bias).emplace_shortcut<BatchNorm2d>(4);
    return r;
}

Residual<double> identity_block() {
    Residual<double> r;
    r.emplace_body<BatchNorm2d>(2).emplace_body<LeakyReLU>(0.1).emplace_body<Conv2d>(2, 2, 3, 1, 1);
    return r;
}

std::uint32_t file_version(const std::string& path) {
    std::ifstream f(path, std::ios::binary);
    unsigned char h[12] = {};
    f.read(reinterpret_cast<char*>(h), 12);
    return h[8] | (h[9] << 8) | (h[10] << 16) | (static_cast<std::uint32_t>(h[11]) << 24);
}

}  // namespace

TEST_CASE("Residual: y = body(x) + shortcut(x), gradients by finite differences in train and eval mode") {
    Rng rng(1);
    const auto x = random_tensor(Shape{3, 2, 6, 5}, rng);
    for (Mode mode : {Mode::Train, Mode::Eval}) {
        CAPTURE(mode == Mode::Train);
        auto id = identity_block();
        id.set_mode(mode);
        // The definition, layer by layer.
        const Tensor<double> y = id.forward(x);
        const Tensor<double> b = id.body(2).forward(id.body(1).forward(id.body(0).forward(x)));
        CHECK((y.vector() - (b.vector() + x.vector())).cwiseAbs().maxCoeff() < 1e-14);
        check_layer_gradients(id, x);
        auto proj = projection_block();
        proj.set_mode(mode);
        CHECK(proj.output_shape(x.shape()) == Shape{3, 4, 3, 3});
        check_layer_gradients(proj, x);
        // backward_input: backward's dx, parameter gradients untouched (inner layers included).
        const Tensor<double> G = random_tensor(Shape{3, 4, 3, 3}, rng);
        proj.forward(x);
        const Tensor<double> dx = proj.backward(G);
        for (auto& p : proj.parameters()) p.grad->fill(7.0);
        CHECK((proj.backward_input(G).vector() - dx.vector()).cwiseAbs().maxCoeff() < 1e-13);
        for (auto& p : proj.parameters()) CHECK(p.grad->vector().cwiseAbs().maxCoeff() == 7.0);
    }
}

TEST_CASE("Residual: nested PyTorch-like names, buffers, spec through the registry, shape errors") {
    Sequential<float> net(3);
    net.emplace<Conv2d>(2, 2, 3, 1, 1);
    Residual<float> r;
    r.emplace_body<Conv2d>(2, 4, 3, 2, 1, no_bias).emplace_body<BatchNorm2d>(4);
    r.emplace_shortcut<Conv2d>(2, 4, 1, 2, 0, no_bias);
    net.add(std::move(r));
    std::vector<std::string> names, buffers;
    for (auto& p : net.parameters()) names.push_back(p.name);
    for (auto& b : net.buffers()) buffers.push_back(b.name);
    CHECK(names == std::vector<std::string>{"0.weight", "0.bias", "1.body.0.weight", "1.body.1.weight", "1.body.1.bias", "1.shortcut.0.weight"});
    CHECK(buffers == std::vector<std::string>{"1.body.1.running_mean", "1.body.1.running_var", "1.body.1.num_batches_tracked"});
    const LayerSpec s = net[1].spec();
    const LayerSpec want{"Residual", {2}, {{"Conv2d", {2, 4, 3, 2, 1, 0}}, {"BatchNorm2d", {4, 1e-5, 0.1}}, {"Conv2d", {2, 4, 1, 2, 0, 0}}}};
    CHECK(s == want);
    CHECK(s.str() == "Residual(2)[Conv2d(2, 4, 3, 2, 1, 0), BatchNorm2d(4, 1e-05, 0.1), Conv2d(2, 4, 1, 2, 0, 0)]");
    CHECK(make_layer<double>(s)->spec() == s);
    CHECK(spec_parameter_count<float>(s) == static_cast<std::uint64_t>(net[1].num_parameters()));
    CHECK(LayerSpec{"Residual", {1}, {{"ReLU", {}}}} != LayerSpec{"Residual", {1}, {{"Tanh", {}}}});
    CHECK_THROWS_WITH_AS(make_layer<float>({"Residual", {1}}), doctest::Contains("at least one body layer"), std::invalid_argument);
    CHECK_THROWS_WITH_AS(make_layer<float>({"Residual", {2}, {{"ReLU", {}}}}), doctest::Contains("body_layers = 2 is outside [1, 1]"),
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(make_layer<float>({"Residual", {1}, {{"Conv3d", {}}}}), doctest::Contains("unknown layer type 'Conv3d'"), std::invalid_argument);
    // A body whose shape the shortcut does not match: the error names both.
    Sequential<float> bad;
    bad.add(std::move(Residual<float>().emplace_body<Conv2d>(2, 4, 3, 1, 1)));
    CHECK_THROWS_WITH_AS(bad.forward(Tensor<float>(Shape{1, 2, 5, 5})), doctest::Contains("the body gives [1, 4, 5, 5] and the shortcut [1, 2, 5, 5]"),
                         std::invalid_argument);
    // Parameters are re-initialised by the model's seed, inner layers included.
    Sequential<float> a(9), b(9), c(10);
    for (auto* m : {&a, &b, &c}) m->add(std::move(Residual<float>().emplace_body<Conv2d>(2, 2, 3, 1, 1)));
    CHECK(weights_of(a) == weights_of(b));
    CHECK(weights_of(a) != weights_of(c));
}

TEST_CASE("a PreAct-ResNet saves as checkpoint version 3 and loads through the registry, same outputs; plain models stay version 2") {
    auto net = preact_resnet<float>({4, 8}, 1, 5, 3, 21);
    Tensor<float> x(Shape{2, 3, 8, 8});
    Rng rng(2);
    for (Index i = 0; i < x.size(); ++i) x[i] = static_cast<float>(rng.uniform(-1, 1));
    net.forward(x);  // moves the running statistics off their initial values
    net.eval();
    const Tensor<float> y = net.forward(x);
    save_checkpoint("test_residual.ckpt", net);
    CHECK(file_version("test_residual.ckpt") == 3);
    auto back = load_model<float>("test_residual.ckpt");
    CHECK(back.specs() == net.specs());
    back.eval();
    CHECK(back.forward(x).vector() == y.vector());
    // A model without nested layers is written as version 2, readable by older builds.
    Sequential<float> plain;
    plain.emplace<Conv2d>(3, 4, 3).emplace<BatchNorm2d>(4);
    save_checkpoint("test_residual_plain.ckpt", plain);
    CHECK(file_version("test_residual_plain.ckpt") == 2);
    CHECK(load_model<float>("test_residual_plain.ckpt").specs() == plain.specs());
    std::remove("test_residual.ckpt");
    std::remove("test_residual_plain.ckpt");
}

TEST_CASE("a checkpoint nesting layers too deep is refused with a clear error") {
    LayerSpec deep{"ReLU", {}};
    for (int i = 0; i < 20; ++i) deep = LayerSpec{"Residual", {1}, {deep}};
    detail::ByteWriter w;
    w.u32(1);
    detail::write_spec(w, deep, true);
    w.u32(0), w.u32(0), w.u32(1);
    for (int i = 0; i < 4; ++i) w.u64(1);
    w.str(""), w.u64(0), w.u32(0), w.u32(0);
    std::string file(detail::kCkptMagic, 8);
    detail::ByteWriter h;
    h.u32(3), h.u32(4), h.u64(w.out.size());
    file += h.out + w.out;
    detail::ByteWriter c;
    c.u32(detail::crc32_of(reinterpret_cast<const std::uint8_t*>(file.data()), file.size()));
    file += c.out;
    CHECK_THROWS_WITH_AS(decode_checkpoint<float>(reinterpret_cast<const std::uint8_t*>(file.data()), file.size()),
                         doctest::Contains("nests layers more than 16 deep"), CheckpointError);
}

TEST_CASE("Dropout inside and outside a Residual: seeded streams, bitwise resume through a checkpoint") {
    Dataset<float> data;
    Rng rng(5);
    data.images = Tensor<float>(Shape{24, 2, 6, 6});
    for (Index i = 0; i < data.images.size(); ++i) data.images[i] = static_cast<float>(rng.uniform(0, 1));
    for (int i = 0; i < 24; ++i) data.labels.push_back(i % 3);
    auto build = [] {
        Sequential<float> net(4);
        net.emplace<Conv2d>(2, 4, 3, 1, 1).emplace<Dropout>(0.3);
        net.add(std::move(Residual<float>().emplace_body<BatchNorm2d>(4).emplace_body<ReLU>().emplace_body<Dropout>(0.5).emplace_body<Conv2d>(4, 4, 3, 1, 1)));
        net.emplace<AdaptiveAvgPool2d>(1).emplace<Flatten>().emplace<Linear>(4, 3);
        return net;
    };
    auto run = [&](Sequential<float>& net, AdamW<float>& opt, int from, int to) {
        DataLoader<float> loader(data, 8, true, 6);
        for (int e = from; e < to; ++e) train_epoch(net, opt, loader, static_cast<std::uint64_t>(e));
    };
    auto straight = build();
    AdamW<float> opt_straight(straight.parameters(), AdamWOptions{0.01});
    run(straight, opt_straight, 0, 4);
    auto first = build();
    AdamW<float> opt_first(first.parameters(), AdamWOptions{0.01});
    run(first, opt_first, 0, 2);
    save_checkpoint("test_residual_resume.ckpt", first, static_cast<Optimizer<float>*>(&opt_first));
    auto resumed = load_model<float>("test_residual_resume.ckpt");
    AdamW<float> opt_resumed(resumed.parameters(), AdamWOptions{0.01});
    load_checkpoint("test_residual_resume.ckpt", resumed, static_cast<Optimizer<float>*>(&opt_resumed));
    run(resumed, opt_resumed, 2, 4);
    CHECK(weights_of(resumed) == weights_of(straight));
    CHECK(weights_of(resumed) != weights_of(first));
    // Without the block's saved stream, the inner Dropout draws other masks and the run differs.
    auto other = build();
    AdamW<float> opt_other(other.parameters(), AdamWOptions{0.01});
    load_checkpoint("test_residual_resume.ckpt", other, static_cast<Optimizer<float>*>(&opt_other));
    other[2].rng().reseed(123);
    run(other, opt_other, 2, 4);
    CHECK(weights_of(other) != weights_of(straight));
    std::remove("test_residual_resume.ckpt");
}

TEST_CASE("a narrowed PreAct-ResNet (widths 16-32-64, 3x32x32) trains: the loss falls over a few Adam steps") {
    auto net = preact_resnet<float>({16, 32, 64}, 1, 10, 3, 1);
    CHECK(net.output_shape(Shape{8, 3, 32, 32}) == Shape{8, 10});
    Tensor<float> x(Shape{16, 3, 32, 32});
    Rng rng(3);
    for (Index i = 0; i < x.size(); ++i) x[i] = static_cast<float>(rng.uniform(-1, 1));
    std::vector<int> labels;
    for (int i = 0; i < 16; ++i) labels.push_back(i % 10);
    Adam<float> adam(net.parameters(), AdamOptions{0.01});
    Tensor<float> grad;
    float first = 0, last = 0;
    for (int step = 0; step < 8; ++step) {
        const float loss = cross_entropy(net.forward(x), labels, grad);
        REQUIRE(std::isfinite(loss));
        net.backward(grad);
        adam.step();
        if (step == 0) first = loss;
        last = loss;
    }
    MESSAGE("loss " << first << " -> " << last);
    CHECK(last < 0.5f * first);
}
