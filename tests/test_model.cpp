// SPDX-License-Identifier: MIT
// Sequential: chaining, shape errors, whole-model gradients, summary,
// reproducibility and convergence on synthetic data.
#include "gradcheck.hpp"

#include <cstring>
#include <limits>

using namespace test;

namespace {

// Two classes of 1x8x8 images: a bright bar in the top half (class 0) or in
// the bottom half (class 1), at a random row and with noise.
Dataset<float> bars(Index n, std::uint64_t seed) {
    Rng rng(seed);
    Dataset<float> ds;
    ds.images.resize(Shape{n, 1, 8, 8});
    for (Index i = 0; i < n; ++i) {
        const int label = static_cast<int>(rng.below(2));
        const Index row = (label ? 4 : 0) + static_cast<Index>(rng.below(4));
        for (Index h = 0; h < 8; ++h)
            for (Index w = 0; w < 8; ++w) ds.images(i, 0, h, w) = static_cast<float>(0.3 * rng.uniform() + (h == row ? 0.7 : 0.0));
        ds.labels.push_back(label);
    }
    return ds;
}

Sequential<float> small_cnn(std::uint64_t seed) {
    Sequential<float> net(seed);
    net.emplace<Conv2d>(1, 4, 3, 1, 1).emplace<ReLU>().emplace<MaxPool2d>(2).emplace<Flatten>().emplace<Linear>(64, 2);
    return net;
}

std::vector<float> train_small(std::uint64_t seed, int threads) {
    set_num_threads(threads);
    const auto data = bars(300, 3);
    auto net = small_cnn(seed);
    Adam<float> opt(net.parameters());
    DataLoader<float> loader(data, 32, true, seed);
    for (int e = 0; e < 2; ++e) train_epoch(net, opt, loader, static_cast<std::uint64_t>(e));
    return weights_of(net);
}

// Whole-model dloss/dx and dloss/dparameters (cross-entropy on labels y) against finite differences.
void check_model_gradients(Sequential<double>& net, Tensor<double> x, const std::vector<int>& y) {
    net.set_input_grad(true);
    auto loss = [&] { return cross_entropy(net.forward(x), y).loss; };
    const Tensor<double> dx = net.backward(cross_entropy(net.forward(x), y).grad);
    std::vector<Tensor<double>> grads;
    for (auto& p : net.parameters()) grads.push_back(*p.grad);
    CHECK(max_rel_error(x, dx, loss) < 1e-7);
    auto params = net.parameters();
    for (std::size_t i = 0; i < params.size(); ++i) {
        CAPTURE(params[i].name);
        CHECK(max_rel_error(*params[i].value, grads[i], loss) < 1e-7);
    }
}

// A tensor's elements, to compare runs with ==.
std::vector<float> values(const Tensor<float>& t) { return std::vector<float>(t.data(), t.data() + t.size()); }

// What a pass of step (a layer, or a fused step around conv) computes from x and dy, in this order: y, dx from
// backward, conv's weight and bias gradients, dx from backward_input. The thread-count tests compare these.
template <typename Step>
std::vector<std::vector<float>> pass_values(Step& step, Conv2d<float>& conv, const Tensor<float>& x, const Tensor<float>& dy) {
    std::vector<std::vector<float>> out;
    out.push_back(values(step.forward(x)));
    out.push_back(values(step.backward(dy)));
    out.push_back(values(conv.grad_weight()));
    out.push_back(values(conv.grad_bias()));
    out.push_back(values(step.backward_input(dy)));
    return out;
}

// Same shape and the same bits in every element (an empty tensor's data() may be null).
bool bitwise_same(const Tensor<float>& a, const Tensor<float>& b) {
    return a.shape() == b.shape() &&
           (a.empty() || std::memcmp(a.data(), b.data(), sizeof(float) * static_cast<std::size_t>(a.size())) == 0);
}

}  // namespace

TEST_CASE("Sequential: a shape mismatch names the layer and both shapes") {
    Sequential<float> net;
    net.emplace<Conv2d>(1, 16, 5).emplace<ReLU>().emplace<MaxPool2d>(2).emplace<Flatten>().emplace<Linear>(512, 10);
    // 28x28 input gives [N, 16*12*12 = 2304] at the Linear layer, which expects 512.
    CHECK_THROWS_WITH_AS(net.forward(Tensor<float>(Shape{2, 1, 28, 28})),
                         "Sequential: layer 4 (Linear(in_features=512, out_features=10)) cannot take input of shape [2, 2304]: "
                         "Linear(in_features=512, out_features=10): expected input [N, 512], got [2, 2304]",
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(net.output_shape(Shape{2, 3, 28, 28}), doctest::Contains("layer 0 (Conv2d(1, 16"), std::invalid_argument);
    CHECK_THROWS_WITH_AS(net.summary(Shape{1, 1, 28, 28}), doctest::Contains("layer 4"), std::invalid_argument);
    Sequential<float> empty;
    CHECK_THROWS_AS(empty.forward(Tensor<float>(Shape{1, 1})), std::logic_error);
}

TEST_CASE("Sequential: summary of the seed model lists shapes and parameter counts") {
    auto net = mnist_cnn<float>(0);
    const std::string s = net.summary(Shape{1, 1, 28, 28});
    CHECK(s.find("[1, 16, 24, 24]") != std::string::npos);
    CHECK(s.find("[1, 32, 4, 4]") != std::string::npos);
    CHECK(s.find("262656") != std::string::npos);  // 512*512 + 512
    CHECK(s.find("total parameters: 281034") != std::string::npos);
    CHECK(net.num_parameters() == 416 + 12832 + 262656 + 5130);
    CHECK(net.output_shape(Shape{7, 1, 28, 28}) == Shape{7, 10});
    CHECK(net.parameters()[2].name == "3.weight");
}

TEST_CASE("Sequential: whole-model gradients match finite differences (double)") {
    Sequential<double> net(5);
    net.emplace<Conv2d>(2, 3, 3, 1, 1).emplace<ReLU>().emplace<MaxPool2d>(2).emplace<Conv2d>(3, 4, 3, 2, 1).emplace<Flatten>()
        .emplace<Linear>(4 * 2 * 2, 6).emplace<ReLU>().emplace<Linear>(6, 3);
    Rng rng(11);
    check_model_gradients(net, random_tensor(Shape{3, 2, 8, 8}, rng), {0, 2, 1});
}

TEST_CASE("Sequential: the first layer skips its input gradient unless asked") {
    auto net = small_cnn(1);
    Tensor<float> x(Shape{2, 1, 8, 8}, 0.5f);
    const auto r = cross_entropy(net.forward(x), {0, 1});
    CHECK(net.backward(r.grad).size() == 0);
    net.set_input_grad(true);
    net.forward(x);
    CHECK(net.backward(r.grad).shape() == x.shape());
}

TEST_CASE("Sequential: running a ReLU after the MaxPool2d that follows it changes no output and no gradient") {
    // Sequential swaps ReLU -> MaxPool2d into MaxPool2d -> ReLU. Compare, bitwise, with the layers run one
    // by one in the order they were added, on inputs with negatives, ties, zeros and a NaN.
    Sequential<float> net(3);
    net.emplace<ReLU>().emplace<MaxPool2d>(2).emplace<Conv2d>(2, 3, 3, 1, 1).emplace<ReLU>().emplace<MaxPool2d>(2)
        .emplace<Flatten>().emplace<Linear>(12, 4);
    net.set_input_grad(true);
    Rng rng(8);
    Tensor<float> x(Shape{3, 2, 8, 8});
    uniform_fill(x, 1.0, rng);
    for (Index i = 0; i < x.size(); i += 7) x.data()[i] = x.data()[i + 1];  // ties
    for (Index i = 3; i < x.size(); i += 11) x.data()[i] = 0.0f;
    x(2, 1, 5, 5) = std::numeric_limits<float>::quiet_NaN();
    const std::vector<int> y{0, 3, 1};
    const auto r = cross_entropy(net.forward(x), y);
    const Tensor<float> out = net.forward(x);
    const Tensor<float> dx = net.backward(r.grad);
    std::vector<Tensor<float>> grads;
    for (auto& p : net.parameters()) grads.push_back(*p.grad);
    CHECK(net[0].backward(Tensor<float>(Shape{3, 2, 4, 4})).shape() == Shape{3, 2, 4, 4});  // the first ReLU saw the pooled tensor

    const Tensor<float>* h = &x;
    for (std::size_t i = 0; i < net.size(); ++i) h = &net[i].forward(*h);
    const Tensor<float> out_in_order = *h;
    const Tensor<float>* g = &r.grad;
    for (std::size_t i = net.size(); i-- > 0;) g = &net[i].backward(*g);
    CHECK(bitwise_same(out, out_in_order));
    CHECK(bitwise_same(dx, *g));
    auto params = net.parameters();
    for (std::size_t i = 0; i < params.size(); ++i) {
        CAPTURE(params[i].name);
        CHECK(bitwise_same(grads[i], *params[i].grad));
    }
    CHECK(std::isnan(out(2, 0)));  // the NaN still reaches the output
}

TEST_CASE("Sequential: fused Conv2d -> MaxPool2d [-> ReLU] steps give bitwise the outputs and gradients of the layers run one by one") {
    // Four fusable patterns (with the ReLU before the pool, after it, none; a 3x3 stride-2 pool whose windows
    // overlap; a strided, padded conv), on inputs with zero patches (the conv output is then the bias there,
    // so pool windows tie) and a NaN.
    Sequential<float> net(5);
    net.emplace<Conv2d>(2, 3, 3, 1, 1).emplace<ReLU>().emplace<MaxPool2d>(2)            // fused with its ReLU
        .emplace<Conv2d>(3, 4, 3, 1, 1).emplace<MaxPool2d>(3, 2).emplace<ReLU>()         // overlapping windows
        .emplace<Conv2d>(4, 5, 2, 2, 1).emplace<MaxPool2d>(2)                            // no ReLU
        .emplace<Flatten>().emplace<Linear>(5, 3);
    Rng rng(9);
    Tensor<float> x(Shape{5, 2, 10, 10});
    uniform_fill(x, 1.0, rng);
    for (Index n = 0; n < 5; ++n)
        for (Index h = 0; h < 6; ++h)
            for (Index w = 0; w < 6; ++w) x(n, 1, h, w) = x(n, 0, h, w) = 0.0f;
    Tensor<float> x_nan = x;
    x_nan(3, 0, 8, 8) = std::numeric_limits<float>::quiet_NaN();
    const std::vector<int> y{0, 2, 1, 1, 0};
    for (const Tensor<float>* input : {&x, &x_nan}) {
        for (bool input_grad : {false, true}) {
            CAPTURE(input_grad);
            net.set_input_grad(input_grad);
            std::vector<Tensor<float>> outs, dxs, grads[2];
            for (bool fused : {true, false}) {
                net.set_fusion(fused);
                CHECK(net.fusion() == fused);
                net.train();
                const Tensor<float> out = net.forward(*input);
                const auto r = cross_entropy(out, y);
                dxs.push_back(net.backward(r.grad));
                for (auto& p : net.parameters()) grads[fused].push_back(*p.grad);
                outs.push_back(out);
                net.eval();
                outs.push_back(net.forward(*input));
            }
            for (const auto& o : outs) CHECK(bitwise_same(o, outs[0]));
            CHECK(bitwise_same(dxs[0], dxs[1]));
            CHECK(dxs[0].size() == (input_grad ? x.size() : 0));
            REQUIRE(grads[0].size() == 8);
            for (std::size_t i = 0; i < grads[0].size(); ++i) {
                CAPTURE(i);
                CHECK(bitwise_same(grads[0][i], grads[1][i]));
            }
            if (input == &x) {
                CHECK(outs[0].vector().allFinite());
                CHECK(grads[1][0].vector().allFinite());
            } else {
                CHECK(std::isnan(outs[0](3, 0)));  // the NaN reaches the output either way
            }
        }
    }
}

// The first conv of a small CNN runs its 2x2 pool in the conv kernel's registers (kernels/conv2d_planar_pool.hpp:
// up to 27 window values, output channels in 16s, output rows of 8 or 24; AVX-512). Fused against the layers
// run one by one: bitwise outputs (training and eval), argmax (through the gradients) and gradients, with ties
// (zero patches: the conv gives its bias there), -0 inputs and a NaN, on 1 to 3 threads. Its weight gradient
// (no input gradient: the first layer) reads the pool's gradient and winners where images are not shared
// (Conv2d::backward_unpooled: 4 images on one thread, 11 on any), else dy_n^T scattered from them.
TEST_CASE("Sequential: a conv with its 2x2 pool in one kernel gives bitwise the layers' outputs and gradients") {
    struct Case {
        Index C, OC, K, pad, H, W;
        bool relu;
    };
    const std::vector<Case> cases{{1, 16, 5, 0, 28, 28, true},    // the seed's conv1: rows of 24
                                  {1, 32, 3, 0, 10, 10, false},   // rows of 8, two blocks of 16 channels, no ReLU
                                  {2, 16, 3, 1, 24, 24, true},    // padding 1, two input channels
                                  {3, 16, 3, 0, 27, 10, true},    // 27 window values; 25 x 8: the last conv row dropped
                                  {1, 16, 5, 2, 25, 24, false}};  // padding 2, 25 x 24: odd rows again
    const bool runs = detail::direct_conv_runs(1, 5, 1, 16, true);  // AVX-512: the fused kernel runs
    CHECK((detail::direct_forward_planar_pool_kernel(1, 5, 1, 16, 24) != nullptr) == runs);
    CHECK((detail::direct_forward_planar_pool_kernel(3, 3, 1, 32, 8) != nullptr) == runs);
    CHECK((detail::direct_forward_planar_pool_kernel(1, 5, 1, 16, 16) == nullptr));  // rows in 16s: the planes kernel
    CHECK((detail::direct_forward_planar_pool_kernel(1, 5, 1, 16, 12) == nullptr));
    CHECK((detail::direct_forward_planar_pool_kernel(1, 5, 1, 24, 24) == nullptr));  // channels not in 16s
    CHECK((detail::direct_forward_planar_pool_kernel(1, 5, 2, 16, 24) == nullptr));  // stride 2
    CHECK((detail::direct_forward_planar_pool_kernel(4, 3, 1, 16, 24) == nullptr));  // 36 window values
    CHECK((detail::direct_weight_grad_unpooled_kernel(1, 5, 1, 16) != nullptr) == runs);  // backward_unpooled
    CHECK((detail::direct_weight_grad_unpooled_kernel(3, 3, 1, 16) != nullptr) == runs);
    CHECK((detail::direct_weight_grad_unpooled_kernel(4, 3, 1, 16) == nullptr));
    Rng rng(31);
    for (const Case& c : cases) {
        CAPTURE(c.C);
        CAPTURE(c.K);
        CAPTURE(c.W);
        Sequential<float> net(7);
        net.emplace<Conv2d>(c.C, c.OC, c.K, 1, c.pad);
        if (c.relu) net.emplace<ReLU>();
        net.emplace<MaxPool2d>(2).emplace<Flatten>();
        const Index PH = (c.H + 2 * c.pad - c.K + 1) / 2, PW = (c.W + 2 * c.pad - c.K + 1) / 2;
        net.emplace<Linear>(c.OC * PH * PW, 3);
        for (const Index N : {4, 11}) {
            CAPTURE(N);
            Tensor<float> x(Shape{N, c.C, c.H, c.W});
            uniform_fill(x, 1.0, rng);
            for (Index n = 0; n < N; ++n)
                for (Index h = 0; h < c.H / 2; ++h)
                    for (Index w = 0; w < c.W / 2; ++w) x(n, 0, h, w) = (h + w) % 3 == 0 ? -0.0f : 0.0f;  // ties
            Tensor<float> x_nan = x;
            x_nan(2, 0, c.H / 2 + 1, c.W - 2) = std::numeric_limits<float>::quiet_NaN();
            std::vector<int> y(static_cast<std::size_t>(N));
            for (Index n = 0; n < N; ++n) y[static_cast<std::size_t>(n)] = static_cast<int>(n * 7 % 3);
            for (const Tensor<float>* input : {&x, &x_nan})
                for (int threads : {1, 2, 3}) {
                    CAPTURE(threads);
                    set_num_threads(threads);
                    std::vector<Tensor<float>> outs, grads[2];
                    for (bool fused : {true, false}) {
                        net.set_fusion(fused);
                        net.train();
                        const Tensor<float> out = net.forward(*input);
                        net.backward(cross_entropy(out, y).grad);
                        for (auto& p : net.parameters()) grads[fused].push_back(*p.grad);
                        outs.push_back(out);
                        net.eval();
                        outs.push_back(net.forward(*input));
                    }
                    for (const auto& o : outs) CHECK(bitwise_same(o, outs[0]));
                    REQUIRE(grads[0].size() == 4);
                    for (std::size_t i = 0; i < grads[0].size(); ++i) {
                        CAPTURE(i);
                        CHECK(bitwise_same(grads[0][i], grads[1][i]));
                    }
                    CHECK(outs[0].vector().allFinite() == (input == &x));
                }
        }
    }
    set_num_threads(2);
}

TEST_CASE("Sequential: a fused step's winners-only backward (>= 8 input channels) matches the dense one") {
    // Conv2d layers with 8 or more input channels take the winners-only backward inside a fused step. Patterns:
    // 16 channels (blocked loops, K*C a multiple of 16) with the seed's Conv -> ReLU -> Pool; 8 channels with
    // K*C = 72 (per-row loops), padding (patches cut by the border), a stride and overlapping pool windows; and
    // a 3x3 padded conv on 16 channels, whose border patches take the per-row loop beside the blocked ones.
    Sequential<float> net(6);
    net.emplace<Conv2d>(2, 16, 3, 1, 1)                                               // dense (2 channels), unfused
        .emplace<Conv2d>(16, 8, 5).emplace<ReLU>().emplace<MaxPool2d>(2)                // blocked
        .emplace<Conv2d>(8, 16, 3, 1, 2).emplace<MaxPool2d>(3, 2).emplace<ReLU>()       // per-row, padding, overlap
        .emplace<Conv2d>(16, 5, 3, 2, 1).emplace<ReLU>().emplace<MaxPool2d>(2)          // stride 2, padding, blocked + border
        .emplace<Flatten>().emplace<Linear>(5, 3);
    Rng rng(12);
    Tensor<float> x(Shape{11, 2, 16, 16});  // 11 images: two chunks (Conv2d::chunk_images), 6 + 5
    uniform_fill(x, 1.0, rng);
    const std::vector<int> y{0, 2, 1, 1, 0, 2, 2, 1, 0, 0, 1};
    net.set_input_grad(true);
    std::vector<Tensor<float>> outs, dxs, dx_alone, grads[2];
    for (bool fused : {true, false}) {
        net.set_fusion(fused);
        outs.push_back(net.forward(x));
        const Tensor<float> dz = cross_entropy(outs.back(), y).grad;
        dxs.push_back(net.backward(dz));
        for (auto& p : net.parameters()) grads[fused].push_back(*p.grad);
        net.forward(x);
        dx_alone.push_back(net.backward_input(dz));  // fused: Conv2d::backward_input_winners
    }
    CHECK(std::memcmp(outs[0].data(), outs[1].data(), sizeof(float) * static_cast<std::size_t>(outs[0].size())) == 0);
    const auto close = [](const Tensor<float>& a, const Tensor<float>& b) {
        REQUIRE(a.shape() == b.shape());
        const double scale = std::max(1e-30, static_cast<double>(b.vector().cwiseAbs().maxCoeff()));
        return (a.vector() - b.vector()).cwiseAbs().maxCoeff() / scale;
    };
    CHECK(close(dxs[0], dxs[1]) < 1e-5);
    CHECK(dxs[1].vector().cwiseAbs().maxCoeff() > 0);
    CHECK(close(dx_alone[0], dx_alone[1]) < 1e-5);
    CHECK(close(dx_alone[0], dxs[0]) < 1e-5);
    for (std::size_t i = 0; i < grads[0].size(); ++i) {
        CAPTURE(net.parameters()[i].name);
        CHECK(grads[1][i].vector().cwiseAbs().maxCoeff() > 0);
        CHECK(close(grads[1][i], grads[0][i]) < 1e-5);
    }
}

TEST_CASE("a fused step's dense backward on images shared among threads (input gradient by rows; Winograd) is bitwise the same on any thread count") {
    // PooledBackward::Dense on the seed's conv2 (16 -> 32, 5x5 on 12 x 12): the conv's backward gets dy_n from the
    // step's callback, on one thread then handed to the others at a barrier (backward_images_shared), and its
    // input gradient runs by rows (kernels/conv2d_input_rows.hpp); 1 and 3 images on 1-4 threads, against the
    // winners-only backward within rounding. Then a 3x3 conv with padding 1 (16 -> 32 on 12 x 12), whose forward,
    // input gradient and weight gradient run by Winograd F(2x2, 3x3) (kernels/conv2d_winograd.hpp), the weight
    // gradient shared by output channels. Then a 1x1 conv, whose weight gradient reads the image in place and is
    // shared by output channels (Conv2d::pointwise_weight_gradient).
    for (Index K : {5, 3, 1})
    for (Index N : {1, 3}) {
        CAPTURE(K);
        CAPTURE(N);
        const Index pad = K == 3 ? 1 : 0, pooled = (12 + 2 * pad - K + 1) / 2;
        Tensor<float> x(Shape{N, 16, 12, 12}), dout(Shape{N, 32, pooled, pooled});
        Rng rng(41);
        uniform_fill(x, 1.0, rng);
        uniform_fill(dout, 1.0, rng);
        auto run = [&](int threads, PooledBackward how) {
            set_num_threads(threads);
            Conv2d<float> conv(16, 32, K, 1, pad, 9);
            MaxPool2d<float> pool(2);
            ConvPool<float> step(conv, pool, true, how);
            conv.set_input_grad(true);
            return pass_values(step, conv, x, dout);
        };
        const auto one = run(1, PooledBackward::Dense);
        REQUIRE(one[1].size() == static_cast<std::size_t>(N * 16 * 144));
        for (int threads : {2, 3, 4}) {
            CAPTURE(threads);
            CHECK(run(threads, PooledBackward::Dense) == one);
        }
        const auto winners = run(2, PooledBackward::Winners);
        for (std::size_t k = 1; k < one.size(); ++k) {
            CAPTURE(k);
            double worst = 0, scale = 1e-30;
            for (std::size_t i = 0; i < one[k].size(); ++i) {
                worst = std::max(worst, std::abs(static_cast<double>(one[k][i]) - winners[k][i]));
                scale = std::max(scale, std::abs(static_cast<double>(winners[k][i])));
            }
            CHECK(worst / scale < 1e-5);
        }
    }
    set_num_threads(2);
}

TEST_CASE("Sequential: the winners-only backward matches finite differences (double)") {
    Sequential<double> net(7);
    net.emplace<Conv2d>(8, 6, 3, 1, 1).emplace<ReLU>().emplace<MaxPool2d>(2)             // per-row loops, padding
        .emplace<Conv2d>(6, 16, 1).emplace<MaxPool2d>(1)                               // dense (6 channels)
        .emplace<Conv2d>(16, 4, 2, 1, 1).emplace<ReLU>().emplace<MaxPool2d>(3, 2)      // blocked (K*C = 32) + border
        .emplace<Flatten>().emplace<Linear>(4, 3);
    Rng rng(13);
    Tensor<double> x = random_tensor(Shape{2, 8, 6, 6}, rng);
    check_model_gradients(net, x, {0, 2});
    // dx alone (backward_input: the winners-only input gradient in the fused steps), in eval mode
    net.eval();
    const Tensor<double> dx = net.backward_input(cross_entropy(net.forward(x), {0, 2}).grad);
    CHECK(max_rel_error(x, dx, [&] { return cross_entropy(net.forward(x), {0, 2}).loss; }) < 1e-7);
}

TEST_CASE("Sequential: backward after add or set_fusion without a new forward throws") {
    auto net = small_cnn(1);
    Tensor<float> x(Shape{2, 1, 8, 8}, 0.5f);
    CHECK_THROWS_WITH_AS(net.backward(Tensor<float>(Shape{2, 2})), doctest::Contains("run forward first"), std::logic_error);
    const auto r = cross_entropy(net.forward(x), {0, 1});
    net.set_fusion(false);
    CHECK_THROWS_WITH_AS(net.backward(r.grad), doctest::Contains("set_fusion"), std::logic_error);
    net.forward(x);
    CHECK_NOTHROW(net.backward(r.grad));
    net.add(ReLU<float>());
    CHECK_THROWS_AS(net.backward(r.grad), std::logic_error);
}

TEST_CASE("same seed and data give bitwise identical weights; another seed does not") {
    const auto a = train_small(1, 2), b = train_small(1, 2), c = train_small(2, 2);
    CHECK(a == b);
    CHECK(a != c);
}

TEST_CASE("training on 1 and on 2 threads gives bitwise identical weights") {
    const auto one = train_small(4, 1), two = train_small(4, 2);
    CHECK(one == two);
}

TEST_CASE("the seed model (large enough for threaded GEMMs) trains bitwise identically on 1 and 2 threads") {
    Dataset<float> data;
    data.images.resize(Shape{200, 1, 28, 28});
    Rng rng(8);
    uniform_fill(data.images, 1.0, rng);
    for (int i = 0; i < 200; ++i) data.labels.push_back(i % 10);
    auto run = [&](int threads) {
        set_num_threads(threads);
        auto net = mnist_cnn<float>(2);
        Adam<float> opt(net.parameters());
        DataLoader<float> loader(data, 100, true, 3);
        train_epoch(net, opt, loader, 0);
        return weights_of(net);
    };
    const auto one = run(1);
    for (int threads : {2, 3, 5, 7}) {
        CAPTURE(threads);
        CHECK(run(threads) == one);
    }
    set_num_threads(2);
}

TEST_CASE("odd layer sizes train bitwise identically on any thread count (Adam's chunks do not follow the thread count)") {
    Dataset<float> data;
    data.images.resize(Shape{90, 3, 11, 11});
    Rng rng(18);
    uniform_fill(data.images, 1.0, rng);
    for (int i = 0; i < 90; ++i) data.labels.push_back(i % 7);
    auto run = [&](int threads, bool adamw) {
        set_num_threads(threads);
        Sequential<float> net(5);
        net.emplace<Conv2d>(3, 7, 3).emplace<ReLU>().emplace<MaxPool2d>(3).emplace<Flatten>()
            .emplace<Linear>(7 * 3 * 3, 2001).emplace<ReLU>().emplace<Linear>(2001, 101).emplace<ReLU>().emplace<Linear>(101, 7);
        Adam<float> adam(net.parameters(), AdamOptions{1e-3, 0.9, 0.999, 1e-8, 1e-4});
        AdamW<float> adamw_opt(net.parameters());
        DataLoader<float> loader(data, 31, true, 6);
        if (adamw) train_epoch(net, adamw_opt, loader, 0);
        else train_epoch(net, adam, loader, 0);
        return weights_of(net);
    };
    for (bool adamw : {false, true}) {
        CAPTURE(adamw);
        const auto one = run(1, adamw);
        for (int threads : {2, 3, 4, 5, 6}) {
            CAPTURE(threads);
            CHECK(run(threads, adamw) == one);
        }
    }
    set_num_threads(2);
}

TEST_CASE("batches smaller than the thread count share each image among the threads, bitwise as on one thread") {
    // Conv2d's shared backward (min(C, threads) > N, at least 2^15 multiply-adds per image): each thread unfolds the
    // rows of a share of the input channels and computes those rows of [dW^T; db^T] and of dcol. On one thread
    // the same batch takes the image-parallel path, so equality with it checks the shared path against the
    // usual one. The shapes: 5x5 without padding; the packed unfold (output rows of 8, two per vector); 3x3
    // pad 1 on an odd width with 3 channels (shares of 1 and 2); stride 2 on an odd width (forward and weight
    // gradient from the image in phases, the input gradient by im2col's fold); 1x1; one input channel (its 5
    // window rows shared: the direct weight kernel takes any window rows) and two (shares that split a
    // channel's rows); and one below the threshold. The 1x1 convs share their weight gradient by output channels
    // in 16s (64: four; 40: 16 + 16 + 8, the last through gemm's tail).
    struct Case {
        Index in, out, k, stride, pad, h;
    };
    const Case cases[] = {{16, 32, 5, 1, 0, 28}, {16, 128, 5, 1, 0, 12}, {3, 64, 3, 1, 1, 33}, {5, 96, 3, 2, 1, 31},
                          {64, 64, 1, 1, 0, 16}, {1, 32, 5, 1, 0, 28},   {2, 16, 3, 1, 1, 20},  {3, 8, 3, 1, 1, 9},
                          {24, 40, 1, 1, 0, 10}};
    for (const Case& c : cases)
        for (Index N : {1, 3})
            for (bool input_grad : {true, false}) {
                CAPTURE(c.in);
                CAPTURE(c.k);
                CAPTURE(N);
                CAPTURE(input_grad);
                Tensor<float> x(Shape{N, c.in, c.h, c.h});
                Rng rng(static_cast<std::uint64_t>(c.in * 100 + N));
                uniform_fill(x, 1.0, rng);
                auto run = [&](int threads) {
                    set_num_threads(threads);
                    Conv2d<float> conv(c.in, c.out, c.k, c.stride, c.pad, 7);
                    conv.set_input_grad(input_grad);
                    Tensor<float> dy(conv.output_shape(x.shape()));
                    Rng g(3);
                    uniform_fill(dy, 1.0, g);
                    return pass_values(conv, conv, x, dy);
                };
                const auto one = run(1);
                CHECK(one[0].size() > 0);
                for (int threads : {2, 3, 4, 7}) {
                    CAPTURE(threads);
                    CHECK(run(threads) == one);
                }
            }
    // double goes through Eigen's GEMM, whose sums depend on how rows are split: it keeps the image-parallel
    // path, and stays bitwise across thread counts at batch 1 too.
    {
        Tensor<double> xd(Shape{1, 16, 28, 28});
        Rng rng(31);
        uniform_fill(xd, 1.0, rng);
        auto run_double = [&](int threads) {
            set_num_threads(threads);
            Conv2d<double> conv(16, 32, 5, 1, 0, 7);
            const Tensor<double>& y = conv.forward(xd);
            Tensor<double> dy(y.shape());
            Rng g(3);
            uniform_fill(dy, 1.0, g);
            const Tensor<double> dx = conv.backward(dy);
            std::vector<double> out(dx.data(), dx.data() + dx.size());
            out.insert(out.end(), conv.grad_weight().data(), conv.grad_weight().data() + conv.grad_weight().size());
            return out;
        };
        const auto one = run_double(1);
        CHECK(run_double(2) == one);
        CHECK(run_double(3) == one);
    }
    // Fused conv -> ReLU -> pool steps at batch 1 (the first with 3 input channels: dense backward; the
    // second with 64: winners), training and eval; then 3 images on 4 threads (the shared forward hands
    // image after image to the fused pool from one scratch), with an output mask on the first conv.
    for (Index N : {1, 3}) {
        CAPTURE(N);
        Tensor<float> x(Shape{N, 3, 32, 32});
        Rng rng(21);
        uniform_fill(x, 1.0, rng);
        const std::vector<int> labels(static_cast<std::size_t>(N), 3);
        auto run_model = [&](int threads) {
            set_num_threads(threads);
            Sequential<float> net(4);
            net.emplace<Conv2d>(3, 64, 3, 1, 1).emplace<ReLU>().emplace<MaxPool2d>(2).emplace<Conv2d>(64, 32, 3, 1, 1)
                .emplace<ReLU>().emplace<MaxPool2d>(2).emplace<Flatten>().emplace<Linear>(32 * 8 * 8, 10);
            net.set_input_grad(true);
            if (N > 1) {
                Tensor<float> mask(Shape{64});
                Rng mask_rng(5);
                uniform_fill(mask, 1.0, mask_rng);
                net[0].output_mask()->set(mask);
            }
            std::vector<std::vector<float>> out;
            const Tensor<float> logits = net.forward(x);
            out.push_back(values(logits));
            const Tensor<float>& dx = net.backward(cross_entropy(logits, labels).grad);
            out.push_back(values(dx));
            for (auto& p : net.parameters()) out.push_back(values(*p.grad));
            net.eval();
            const Tensor<float> logits_eval = net.forward(x);
            const Tensor<float>& dxi = net.backward_input(cross_entropy(logits_eval, labels).grad);
            out.push_back(values(dxi));
            return out;
        };
        const auto one = run_model(1);
        for (int threads : {2, 3, 4}) {
            CAPTURE(threads);
            CHECK(run_model(threads) == one);
        }
    }
    set_num_threads(2);
}

TEST_CASE("set_num_threads refuses counts the OpenMP runtime cannot take, naming the limit") {
    CHECK_THROWS_WITH_AS(set_num_threads(0), doctest::Contains("need 1 to 1024 threads, got 0"), std::invalid_argument);
    CHECK_THROWS_WITH_AS(set_num_threads(100000), doctest::Contains("need 1 to 1024 threads, got 100000"), std::invalid_argument);
    set_num_threads(2);
}

TEST_CASE("a small CNN learns the synthetic bars task") {
    set_num_threads(2);
    const auto train = bars(600, 1), test = bars(200, 2);
    auto net = small_cnn(3);
    const double before = evaluate(net, test);
    Adam<float> opt(net.parameters(), AdamOptions{1e-2});
    DataLoader<float> loader(train, 50, true, 9);
    double first_loss = 0, last_loss = 0;
    for (int e = 0; e < 5; ++e) {
        const auto s = train_epoch(net, opt, loader, static_cast<std::uint64_t>(e));
        if (e == 0) first_loss = s.mean_loss;
        last_loss = s.mean_loss;
    }
    CHECK(last_loss < 0.5 * first_loss);
    CHECK(evaluate(net, test) >= 0.97);
    CHECK(before < 0.8);
}

TEST_CASE("train_epoch stops on a non-finite loss, naming epoch and batch") {
    auto train = bars(40, 1);
    train.images[5] = std::numeric_limits<float>::quiet_NaN();
    auto net = small_cnn(3);
    Adam<float> opt(net.parameters());
    DataLoader<float> loader(train, 40, false);
    CHECK_THROWS_WITH_AS(train_epoch(net, opt, loader, 2), doctest::Contains("at epoch 2, batch 0"), std::runtime_error);
}

TEST_CASE("eval mode and disabled gradients give the same outputs; without gradients backward is refused") {
    set_num_threads(2);
    auto net = mnist_cnn<float>(3);
    Tensor<float> x(Shape{5, 1, 28, 28});
    Rng rng(2);
    uniform_fill(x, 1.0, rng);
    const Tensor<float> train_out = net.forward(x);
    net.eval();
    CHECK_FALSE(net.is_training());
    const Tensor<float> eval_out = net.forward(x);
    CHECK(train_out.vector() == eval_out.vector());
    const auto r = cross_entropy(eval_out, {0, 1, 2, 3, 4});
    CHECK_NOTHROW(net.backward(r.grad));  // eval mode keeps what backward needs unless gradients are off
    net.set_grad_enabled(false);
    CHECK_FALSE(net.grad_enabled());
    CHECK(net.forward(x).vector() == train_out.vector());
    CHECK_THROWS_WITH_AS(net.backward(r.grad), doctest::Contains("backward after a forward with gradients disabled"), std::logic_error);
    net.set_grad_enabled(true);
    net.train();
    net.forward(x);
    CHECK_NOTHROW(net.backward(r.grad));
    // predict switches to inference mode and back
    Dataset<float> d;
    d.images = x;
    d.labels = {0, 1, 2, 3, 4};
    const auto pred = predict(net, d, 2);
    CHECK(pred == argmax_rows(train_out));
    CHECK(net.is_training());  // predict switched to eval without gradients, and back
    CHECK(net.grad_enabled());
}
