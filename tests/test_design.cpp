// SPDX-License-Identifier: MIT
// The design's open doors: taps and features, input gradients with frozen
// weights, mode apart from stored state, the layer registry with a user's
// layer (examples/noisy_scale.hpp, the guide's example), checkpoints v2
// (and v1 still read), the printed execution plan, checked size arithmetic.
#include "../examples/noisy_scale.hpp"
#include "gradcheck.hpp"

#include <cstring>
#include <fstream>
#include <limits>

using namespace eigencnn;
using namespace test;

namespace {

bool same(const Tensor<float>& a, const Tensor<float>& b) {
    return a.shape() == b.shape() && (a.empty() || std::memcmp(a.data(), b.data(), sizeof(float) * static_cast<std::size_t>(a.size())) == 0);
}

double rel_diff(const Tensor<float>& a, const Tensor<float>& b) {
    REQUIRE(a.shape() == b.shape());
    const double scale = std::max(1e-30, static_cast<double>(b.vector().cwiseAbs().maxCoeff()));
    return static_cast<double>((a.vector() - b.vector()).cwiseAbs().maxCoeff()) / scale;
}

// Both fused patterns (a 1-channel conv: dense backward; a 16-channel conv: winners-only), a ReLU moved behind its pool.
Sequential<float> fused_cnn(std::uint64_t seed) {
    Sequential<float> net(seed);
    net.emplace<Conv2d>(1, 16, 3, 1, 1).emplace<ReLU>().emplace<MaxPool2d>(2)   // 0 1 2
        .emplace<Conv2d>(16, 8, 3).emplace<ReLU>().emplace<MaxPool2d>(2)        // 3 4 5
        .emplace<Flatten>().emplace<Linear>(8 * 3 * 3, 12).emplace<ReLU>().emplace<Linear>(12, 4);
    return net;
}

Tensor<float> random_images(Index n, Index c, Index hw, std::uint64_t seed) {
    Tensor<float> x(Shape{n, c, hw, hw});
    Rng rng(seed);
    uniform_fill(x, 1.0, rng);
    return x;
}

std::vector<Tensor<float>> grads_of(Sequential<float>& net) {
    std::vector<Tensor<float>> g;
    for (auto& p : net.parameters()) g.push_back(*p.grad);
    return g;
}

}  // namespace

TEST_CASE("taps return each layer's output as the layers run one by one, in the order they were added") {
    auto net = fused_cnn(1);
    const Tensor<float> x = random_images(5, 1, 16, 2);
    std::vector<Tensor<float>> by_hand;
    const Tensor<float>* h = &x;
    for (std::size_t i = 0; i < net.size(); ++i) by_hand.push_back(*(h = &net[i].forward(*h)));
    std::vector<std::size_t> all(net.size());
    for (std::size_t i = 0; i < all.size(); ++i) all[i] = i;
    std::vector<std::size_t> seen;
    const Tensor<float> out = net.forward(x, all, [&](std::size_t i, const Tensor<float>& y) {
        seen.push_back(i);
        CAPTURE(i);
        CHECK(same(y, by_hand[i]));
    });
    CHECK(seen == all);
    CHECK(same(out, by_hand.back()));
    CHECK(same(out, net.forward(x)));  // the fused plan gives bitwise the same logits
    // The plan exposes the outputs of whole steps only: layer 1 (a ReLU moved behind its pool) is hidden, 2 is not.
    CHECK_FALSE(net.plan().exposes(0));
    CHECK_FALSE(net.plan().exposes(1));
    CHECK(net.plan().exposes(2));
    CHECK(net.plan().exposes(7));
    CHECK_THROWS_AS(net.forward(x, {10}, [](std::size_t, const Tensor<float>&) {}), std::out_of_range);
}

TEST_CASE("a backward follows the plan its forward ran: tapped (unfused) and fused forwards give the same gradients") {
    auto net = fused_cnn(3);
    const Tensor<float> x = random_images(9, 1, 16, 4);
    const std::vector<int> y{0, 1, 2, 3, 0, 1, 2, 3, 0};
    const auto r = cross_entropy(net.forward(x), y);
    net.backward(r.grad);
    const auto fused = grads_of(net);
    net.forward(x, {1}, [](std::size_t, const Tensor<float>&) {});  // layer 1 is hidden in the fused plan: runs unfused
    net.backward(r.grad);
    const auto plain = grads_of(net);
    for (std::size_t i = 0; i < fused.size(); ++i) {
        CAPTURE(i);
        CHECK(rel_diff(fused[i], plain[i]) < 1e-5);
    }
}

TEST_CASE("features, logits, per-sample losses and predict read a data set in batches") {
    auto net = fused_cnn(5);
    Dataset<float> d;
    d.images = random_images(23, 1, 16, 6);
    for (int i = 0; i < 23; ++i) d.labels.push_back(i % 4);
    const Tensor<float> z = logits(net, d, 10);  // three batches, the last one short
    net.eval();
    net.set_grad_enabled(false);
    CHECK(rel_diff(z, net.forward(d.images)) < 1e-5);  // Linear's GEMM may round differently for another batch size
    const Tensor<float> f = features(net, d, 6, 7);
    std::vector<std::size_t> which{6};
    Tensor<float> want;
    net.forward(d.images, which, [&](std::size_t, const Tensor<float>& y) { want = y; });
    CHECK(f.shape() == Shape{23, 72});
    CHECK(same(f, want));
    const Tensor<float> hidden = features(net, d, 1, 5);  // inside a fused step
    CHECK(hidden.shape() == Shape{23, 16, 16, 16});
    CHECK(hidden.vector().minCoeff() >= 0);  // a ReLU's output
    const auto losses = per_sample_loss(net, d, 4);
    REQUIRE(losses.size() == 23);
    double mean = 0;
    for (double l : losses) mean += l / 23;
    CHECK(mean == doctest::Approx(static_cast<double>(cross_entropy(z, d.labels).loss)).epsilon(1e-5));
    CHECK(predict(net, d, 6) == argmax_rows(z));
    net.train();
    net.set_grad_enabled(true);
    CHECK(net.is_training());
    // No confident answer from images that are not numbers.
    d.images[17 * 256 + 3] = std::numeric_limits<float>::quiet_NaN();
    CHECK_THROWS_WITH_AS(predict(net, d), doctest::Contains("predict: image 17 of the data holds a non-finite value"), std::invalid_argument);
    d.images[17 * 256 + 3] = std::numeric_limits<float>::infinity();
    CHECK_THROWS_WITH_AS(evaluate(net, d), doctest::Contains("image 17"), std::invalid_argument);
    CHECK(net.is_training());  // restored after the error too
}

TEST_CASE("backward_input equals the input gradient of a full backward and leaves parameter gradients untouched") {
    for (bool fusion : {true, false})
        for (bool eval : {false, true}) {
            CAPTURE(fusion);
            CAPTURE(eval);
            auto net = fused_cnn(7);
            net.set_fusion(fusion);
            if (eval) net.eval();
            net.set_input_grad(true);
            const Tensor<float> x = random_images(11, 1, 16, 8);
            const std::vector<int> y{0, 1, 2, 3, 0, 1, 2, 3, 0, 1, 2};
            const auto r = cross_entropy(net.forward(x), y);
            const Tensor<float> dx_full = net.backward(r.grad);
            for (auto& p : net.parameters()) p.grad->vector().setConstant(42.0f);  // sentinels
            net.forward(x);
            const Tensor<float> dx = net.backward_input(r.grad);
            CHECK(rel_diff(dx, dx_full) < 1e-5);
            CHECK(dx.vector().cwiseAbs().maxCoeff() > 0);
            for (auto& p : net.parameters()) {
                CAPTURE(p.name);
                CHECK((p.grad->vector().array() == 42.0f).all());
            }
        }
}

TEST_CASE("backward_input in eval mode matches finite differences (double), through a user layer too") {
    Sequential<double> net(9);
    net.emplace<Conv2d>(2, 8, 3, 1, 1).emplace<ReLU>().emplace<MaxPool2d>(2)
        .add(mylab::NoisyScale<double>(8, 0.5))  // noise only in train mode: eval is deterministic
        .emplace<Conv2d>(8, 4, 2).emplace<MaxPool2d>(2).emplace<Flatten>().emplace<Linear>(4, 3);
    net.eval();
    Rng rng(10);
    Tensor<double> x = random_tensor(Shape{2, 2, 6, 6}, rng);
    const std::vector<int> y{0, 2};
    const Tensor<double> dx = net.backward_input(cross_entropy(net.forward(x), y).grad);
    CHECK(max_rel_error(x, dx, [&] { return cross_entropy(net.forward(x), y).loss; }) < 1e-7);
}

TEST_CASE("the default backward_input of a layer without an override restores its parameter gradients") {
    struct Doubler final : Layer<float> {  // y = w * x with one parameter w; no backward_input of its own
        Tensor<float> w{Shape{1}, 2.0f}, gw{Shape{1}}, in, out, dx;
        std::string name() const override { return "Doubler"; }
        Shape output_shape(const Shape& s) const override { return s; }
        const Tensor<float>& forward(const Tensor<float>& x) override {
            in = x;
            out = x;
            out.vector() *= w[0];
            return out;
        }
        const Tensor<float>& backward(const Tensor<float>& g) override {
            gw[0] = g.vector().dot(in.vector());
            dx = g;
            dx.vector() *= w[0];
            return dx;
        }
        std::vector<Parameter<float>> parameters() override { return {{"w", &w, &gw}}; }
    } layer;
    Tensor<float> x(Shape{3}, 1.5f), g(Shape{3}, 1.0f);
    layer.forward(x);
    layer.gw[0] = -7;
    CHECK(layer.backward_input(g).vector() == Tensor<float>(Shape{3}, 2.0f).vector());
    CHECK(layer.gw[0] == -7);
}

TEST_CASE("mode and stored state are apart") {
    Sequential<float> net(11);
    net.emplace<Flatten>().add(mylab::NoisyScale<float>(12, 0.5)).emplace<Linear>(12, 3);
    const Tensor<float> x = random_images(4, 3, 2, 12);
    const Tensor<float> a = net.forward(x), b = net.forward(x);
    CHECK_FALSE(same(a, b));  // train mode: fresh noise from the layer's stream
    net.eval();
    CHECK(net[1].mode() == Mode::Eval);
    const Tensor<float> c = net.forward(x), d = net.forward(x);
    CHECK(same(c, d));
    CHECK_NOTHROW(net.backward_input(cross_entropy(d, {0, 1, 2, 0}).grad));  // eval with gradients on
    net.set_grad_enabled(false);
    CHECK_FALSE(net[2].grad_enabled());
    net.forward(x);
    CHECK_THROWS_AS(net.backward(cross_entropy(d, {0, 1, 2, 0}).grad), std::logic_error);
}

TEST_CASE("the registry builds every built-in layer from its spec and names the registered types on a miss") {
    for (const LayerSpec& s : std::vector<LayerSpec>{{"Conv2d", {3, 4, 5, 2, 1}}, {"MaxPool2d", {3, 2}}, {"ReLU", {}}, {"Flatten", {}},
                                                     {"Linear", {7, 5, 0}}, {"NoisyScale", {4, 0.25, 0.5}}}) {
        CAPTURE(s.str());
        CHECK(make_layer<float>(s)->spec() == s);
        CHECK(make_layer<double>(s)->spec() == s);
        CHECK(spec_parameter_count<float>(s) == static_cast<std::uint64_t>(make_layer<float>(s)->num_parameters()));
    }
    CHECK(LayerSpec{"NoisyScale", {4, 0.25, 0.5}}.str() == "NoisyScale(4, 0.25, 0.5)");
    CHECK(LayerSpec{"X", {1, 1.0}}.str() == "X(1, 1.0)");
    CHECK(LayerSpec{"X", {1}} != LayerSpec{"X", {1.0}});  // an integer is not a real
    CHECK_THROWS_WITH_AS(make_layer<float>({"Conv3d", {1}}), doctest::Contains("unknown layer type 'Conv3d'"), std::invalid_argument);
    CHECK_THROWS_WITH_AS(make_layer<float>({"Conv3d", {1}}), doctest::Contains("NoisyScale"), std::invalid_argument);
    CHECK_THROWS_WITH_AS(make_layer<float>({"Linear", {7, 5}}), doctest::Contains("Linear takes 3 arguments"), std::invalid_argument);
    CHECK_THROWS_WITH_AS(make_layer<float>({"Linear", {7, 5.5, 1}}), doctest::Contains("out_features must be an integer"), std::invalid_argument);
    CHECK_THROWS_WITH_AS(make_layer<float>({"NoisyScale", {4, -1.0, 0.5}}), doctest::Contains("noise = -1.0 is outside"), std::invalid_argument);
    CHECK_THROWS_WITH_AS(make_layer<float>({"Conv2d", {1, 2, 3, 0, 0}}), doctest::Contains("stride = 0 is outside [1, "), std::invalid_argument);
}

TEST_CASE("a user-defined layer saves, loads through the registry and resumes bitwise (buffers and random streams included)") {
    const std::string path = "test_design_user_layer.ckpt";
    Dataset<float> data;
    data.images = random_images(40, 2, 4, 13);
    for (int i = 0; i < 40; ++i) data.labels.push_back(i % 3);
    auto build = [] {
        Sequential<float> net(14);
        net.emplace<Conv2d>(2, 3, 3, 1, 1).add(mylab::NoisyScale<float>(3, 0.3, 0.2)).emplace<ReLU>().emplace<MaxPool2d>(2);
        net.emplace<Flatten>().emplace<Linear>(12, 3);
        return net;
    };
    auto run = [&](Sequential<float>& net, Adam<float>& opt, int from, int to) {
        DataLoader<float> loader(data, 8, true, 15);
        for (int e = from; e < to; ++e) train_epoch(net, opt, loader, static_cast<std::uint64_t>(e));
    };
    auto straight = build();
    Adam<float> opt_straight(straight.parameters());
    run(straight, opt_straight, 0, 4);

    auto first = build();
    Adam<float> opt_first(first.parameters());
    run(first, opt_first, 0, 2);
    save_checkpoint(path, first, static_cast<Optimizer<float>*>(&opt_first));
    Metadata meta;
    auto resumed = load_model<float>(path, &meta);  // rebuilt by the registry, NoisyScale included
    REQUIRE(resumed.size() == 6);
    CHECK(resumed[1].spec() == LayerSpec{"NoisyScale", {3, 0.3, 0.2}});
    Adam<float> opt_resumed(resumed.parameters());
    load_checkpoint(path, resumed, static_cast<Optimizer<float>*>(&opt_resumed));
    run(resumed, opt_resumed, 2, 4);
    CHECK(weights_of(resumed) == weights_of(straight));
    CHECK(same(*resumed.buffers()[0].value, *straight.buffers()[0].value));
    CHECK(resumed.buffers()[0].name == "1.running_mean");
    CHECK(resumed.buffers()[0].value->vector().cwiseAbs().maxCoeff() > 0);

    // Without the saved stream the noise differs and so do the weights: the stream is what makes the resume bitwise.
    auto unstreamed = build();
    Adam<float> opt_unstreamed(unstreamed.parameters());
    load_checkpoint(path, unstreamed, static_cast<Optimizer<float>*>(&opt_unstreamed));
    unstreamed[1].rng().reseed(99);
    run(unstreamed, opt_unstreamed, 2, 4);
    CHECK(weights_of(unstreamed) != weights_of(straight));
    std::remove(path.c_str());
}

TEST_CASE("a version 1 checkpoint still loads, with its weights and optimizer state") {
    const std::string dir = std::string(EIGENCNN_SOURCE_DIR) + "/tests/data/";
    Metadata meta;
    auto net = load_model<float>(dir + "v1_small.ckpt", &meta);
    CHECK(meta["note"] == "written by format v1");
    REQUIRE(net.size() == 5);
    Tensor<float> x(Shape{4, 1, 8, 8}), want(Shape{4, 5});
    std::ifstream(dir + "v1_small.input", std::ios::binary).read(reinterpret_cast<char*>(x.data()), 4 * 64 * sizeof(float));
    std::ifstream(dir + "v1_small.expected", std::ios::binary).read(reinterpret_cast<char*>(want.data()), 20 * sizeof(float));
    net.eval();
    const Tensor<float> out = net.forward(x);
    CHECK(rel_diff(out, want) < 1e-5);  // the file was written by another build (other vector instructions)
    Adam<float> adam(net.parameters());
    load_checkpoint(dir + "v1_small.ckpt", net, static_cast<Optimizer<float>*>(&adam));
    CHECK(adam.steps() == 3);
    // Saved again, it is a version 2 file that loads to the same model.
    save_checkpoint("test_design_v2.ckpt", net, static_cast<Optimizer<float>*>(&adam));
    std::ifstream f("test_design_v2.ckpt", std::ios::binary);
    char header[12];
    f.read(header, 12);
    CHECK(header[8] == 2);
    auto again = load_model<float>("test_design_v2.ckpt");
    again.eval();
    CHECK(same(again.forward(x), out));
    std::remove("test_design_v2.ckpt");
}

TEST_CASE("the printed plan names the seed model's fused steps, and a pattern that stops matching says why") {
    auto net = mnist_cnn<float>(0);
    const std::string plan = net.plan_summary();
    CHECK(plan.find("step 0: conv-pool [layers 0 -> 2 -> 1]  Conv2d(1, 16, kernel_size=5, stride=1) + MaxPool2d(kernel_size=2, stride=2) + ReLU()") !=
          std::string::npos);
    CHECK(plan.find("step 1: conv-pool [layers 3 -> 5 -> 4]") != std::string::npos);
    CHECK(plan.find("step 2: 6  Flatten()") != std::string::npos);
    CHECK(plan.find("note:") == std::string::npos);
    const std::string table = net.summary(Shape{1, 1, 28, 28});
    CHECK(table.find("step 0 (conv-pool)") != std::string::npos);
    CHECK(table.find("step 5") != std::string::npos);

    Sequential<float> masked(0);  // Conv -> (a user's layer) -> MaxPool: no longer fused, and the plan says so
    masked.emplace<Conv2d>(1, 3, 3).add(mylab::NoisyScale<float>(3)).emplace<MaxPool2d>(2);
    CHECK(masked.plan().steps().size() == 3);
    CHECK(masked.plan_summary().find("note: layer 0 (Conv2d(1, 3, kernel_size=3, stride=1)) runs unfused: layer 1 (NoisyScale(3, noise=0.1)) "
                                     "stands between them") != std::string::npos);
    CHECK(masked.summary(Shape{1, 1, 8, 8}).find("note: layer 0") != std::string::npos);
    net.set_fusion(false);
    CHECK(net.plan_summary().find("fusion is off") != std::string::npos);
}

TEST_CASE("size arithmetic from user input is checked where it is computed") {
    Conv2d<float> conv(1, 1, 1, 1, std::int64_t(1) << 31);
    CHECK_THROWS_WITH_AS(conv.output_shape(Shape{1, 1, 8, 8}), doctest::Contains("Conv2d(1, 1, kernel_size=1"),  // a 2^32 x 2^32 output plane
                         std::invalid_argument);
    // the name is built only when it is needed: the per-forward checks take it as a callable
    int built = 0;
    const auto what = [&built] { return ++built, std::string("the plane"); };
    CHECK(checked_mul(std::int64_t(1) << 31, 4, what) == std::int64_t(1) << 33);
    CHECK(checked_add(std::int64_t(1) << 62, std::int64_t(1) << 61, what) == std::int64_t(3) << 61);
    CHECK(built == 0);
    CHECK_THROWS_WITH_AS(checked_add(std::numeric_limits<std::int64_t>::max(), 1, what), doctest::Contains("the plane: size"), std::invalid_argument);
    CHECK_THROWS_WITH_AS(checked_mul(-1, 2, what), doctest::Contains("the plane: size -1 x 2"), std::invalid_argument);
    CHECK(built == 2);
    CHECK_THROWS_AS(Linear<float>(std::int64_t(1) << 33, std::int64_t(1) << 31), std::invalid_argument);
    CHECK_THROWS_WITH_AS(spec_parameter_count<float>({"Conv2d", {std::int64_t(1) << 31, std::int64_t(1) << 31, std::int64_t(1) << 31, 1, 0}}),
                         doctest::Contains("out of range"), std::invalid_argument);
    CHECK_THROWS_AS(checked_mul(std::numeric_limits<std::int64_t>::max(), 2, "x"), std::invalid_argument);
    CHECK(checked_mul(std::int64_t(1) << 31, std::int64_t(1) << 31, "x") == std::int64_t(1) << 62);
}

TEST_CASE("the 2x2 max-pool kernels pick the same winners as the reference loop, NaN included") {
    Rng rng(16);
    for (Index H : {2, 5, 8, 10, 12, 15, 33})  // W = 8: four pooled rows at once, then 0 to 3 rows one by one
        for (Index W : {2, 3, 8, 9, 17, 34}) {
            std::vector<float> in(static_cast<std::size_t>(H * W));
            for (auto& v : in) v = static_cast<float>(rng.below(5));  // many ties
            in[static_cast<std::size_t>(rng.below(static_cast<std::uint64_t>(H * W)))] = std::numeric_limits<float>::quiet_NaN();
            const Index OH = H / 2, OW = W / 2;
            std::vector<float> fast(static_cast<std::size_t>(OH * OW)), ref(fast.size());
            std::vector<std::int32_t> fast_arg(fast.size()), ref_arg(fast.size());
            maxpool_plane(in.data(), H, W, 2, 2, fast.data(), fast_arg.data());
            maxpool_plane_reference(in.data(), H, W, 2, 2, ref.data(), ref_arg.data());
            CAPTURE(H);
            CAPTURE(W);
            CHECK(fast_arg == ref_arg);
            CHECK(std::memcmp(fast.data(), ref.data(), fast.size() * sizeof(float)) == 0);
            std::vector<float> no_arg(fast.size());  // inference: no winners kept, the same values
            maxpool_plane(in.data(), H, W, 2, 2, no_arg.data(), static_cast<std::int32_t*>(nullptr));
            CHECK(std::memcmp(no_arg.data(), ref.data(), fast.size() * sizeof(float)) == 0);
        }
}

TEST_CASE("version() spells the version macros") {
    CHECK(std::string(version()) == std::to_string(EIGENCNN_VERSION_MAJOR) + "." + std::to_string(EIGENCNN_VERSION_MINOR) + "." +
                                        std::to_string(EIGENCNN_VERSION_PATCH));
}
