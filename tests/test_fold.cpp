// SPDX-License-Identifier: MIT
// BatchNorm folding (fusion/fold_batchnorm.hpp): in eval mode the plan runs
// Conv2d -> BatchNorm2d [-> MaxPool2d [-> ReLU]] and Linear -> BatchNorm1d as
// one folded layer. Outputs equal the layers one by one within 1e-5 relative
// (float) and 1e-12 (double); gradients (parameters and input) agree with the
// unfolded layers and with finite differences; train mode never folds; the
// model's layers and weights are never changed by it.
#include "gradcheck.hpp"

#include <eigencnn/io/safetensors.hpp>

using namespace eigencnn;
using test::max_rel_error;

namespace {

/// Random BatchNorm affine parameters and running statistics (var > 0), as a trained model has.
template <typename T>
void randomise_batchnorms(Sequential<T>& net, std::uint64_t seed) {
    Rng rng(seed);
    for (std::size_t i = 0; i < net.size(); ++i)
        if (auto* bn = dynamic_cast<BatchNormBase<T>*>(&net[i])) {
            for (Index c = 0; c < bn->num_features(); ++c) {
                bn->weight()[c] = static_cast<T>(rng.uniform(0.5, 2.0));
                bn->bias()[c] = static_cast<T>(rng.uniform(-0.5, 0.5));
                bn->running_mean()[c] = static_cast<T>(rng.uniform(-0.3, 0.3));
                bn->running_var()[c] = static_cast<T>(rng.uniform(0.2, 3.0));
            }
        }
}

template <typename T>
Tensor<T> random_input(const Shape& s, std::uint64_t seed) {
    Rng rng(seed);
    Tensor<T> x(s);
    for (Index i = 0; i < x.size(); ++i) x[i] = static_cast<T>(rng.uniform(0, 1));
    return x;
}

/// max |a - b| / max |b|
template <typename T>
double rel_diff(const Tensor<T>& a, const Tensor<T>& b) {
    REQUIRE(a.shape() == b.shape());
    double num = 0, den = 0;
    for (Index i = 0; i < a.size(); ++i) {
        num = std::max(num, std::abs(static_cast<double>(a[i]) - static_cast<double>(b[i])));
        den = std::max(den, std::abs(static_cast<double>(b[i])));
    }
    return den > 0 ? num / den : num;
}

template <typename T>
std::vector<Tensor<T>> grads_of(Sequential<T>& net) {
    std::vector<Tensor<T>> g;
    for (auto& p : net.parameters()) g.push_back(*p.grad);
    return g;
}

template <typename T>
std::vector<Tensor<T>> state_of(Sequential<T>& net) {
    std::vector<Tensor<T>> s;
    for (auto& p : net.parameters()) s.push_back(*p.value);
    for (auto& b : net.buffers()) s.push_back(*b.value);
    return s;
}

template <typename T>
bool bitwise(const std::vector<Tensor<T>>& a, const std::vector<Tensor<T>>& b) {
    if (a.size() != b.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i)
        if (a[i].shape() != b[i].shape() || std::memcmp(a[i].data(), b[i].data(), sizeof(T) * a[i].size()) != 0) return false;
    return true;
}

/// Eval-mode forward, backward and backward_input with the folds, then without (set_fusion(false)); returns
/// the worst relative difference of outputs, and of gradients (parameters and input).
template <typename T>
std::pair<double, double> folded_vs_layers(Sequential<T>& net, const Tensor<T>& x) {
    net.eval();
    net.set_input_grad(true);
    const Tensor<T> y_folded = net.forward(x);
    Tensor<T> g(y_folded.shape());
    Rng rng(99);
    for (Index i = 0; i < g.size(); ++i) g[i] = static_cast<T>(rng.uniform(-1, 1));
    const Tensor<T> dx_folded = net.backward(g);
    const auto grads_folded = grads_of(net);
    const Tensor<T> dxi_folded = net.backward_input(g);
    net.set_fusion(false);
    const Tensor<T> y = net.forward(x);
    const Tensor<T> dx = net.backward(g);
    const auto grads = grads_of(net);
    net.set_fusion(true);
    double out = rel_diff(y_folded, y), grad = std::max(rel_diff(dx_folded, dx), rel_diff(dxi_folded, dx));
    for (std::size_t i = 0; i < grads.size(); ++i) {
        CAPTURE(i);
        grad = std::max(grad, rel_diff(grads_folded[i], grads[i]));
    }
    return {out, grad};
}

}  // namespace

TEST_CASE("fold: mnist_cnn_bn's eval plan folds each BatchNorm2d into its conv (and pool, ReLU); the train plan does not") {
    Sequential<float> net = mnist_cnn_bn<float>(1);
    CHECK(net.plan_summary().find("batchnorm") == std::string::npos);  // train mode
    net.eval();
    const std::string plan = net.plan_summary();
    CAPTURE(plan);
    CHECK(plan.find("batchnorm folded (eval mode)") != std::string::npos);
    CHECK(plan.find("step 0: conv-batchnorm-pool [layers 0 -> 1 -> 3 -> 2]  Conv2d(1, 16, kernel_size=5, stride=1) + BatchNorm2d(16) + "
                    "MaxPool2d(kernel_size=2, stride=2) + ReLU()  (BatchNorm folded: W' = W * gamma / sqrt(var + eps)") != std::string::npos);
    CHECK(plan.find("step 1: conv-batchnorm-pool [layers 4 -> 5 -> 7 -> 6]") != std::string::npos);
    CHECK(net.plan().steps().size() == 6);
    net.train();
    CHECK(net.plan().steps().size() == 12);  // one layer per step: conv-pool cannot reach past the BatchNorm
    net.set_fusion(false);
    net.eval();
    CHECK(net.plan_summary().find("batchnorm") == std::string::npos);  // fusion off: no folds either
}

TEST_CASE("fold: folded eval forward and gradients equal the layers one by one (float 1e-5, double 1e-12)") {
    SUBCASE("mnist_cnn_bn, float") {
        Sequential<float> net = mnist_cnn_bn<float>(2);
        randomise_batchnorms(net, 5);
        const auto [out, grad] = folded_vs_layers(net, random_input<float>(Shape{6, 1, 28, 28}, 3));
        CHECK(out < 1e-5);
        CHECK(grad < 1e-5);
    }
    SUBCASE("mnist_cnn_bn, double") {
        Sequential<double> net = mnist_cnn_bn<double>(2);
        randomise_batchnorms(net, 5);
        const auto [out, grad] = folded_vs_layers(net, random_input<double>(Shape{6, 1, 28, 28}, 3));
        CHECK(out < 1e-12);
        CHECK(grad < 1e-12);
    }
    SUBCASE("Conv2d without bias, BatchNorm2d, no pool (conv-batchnorm); Linear, BatchNorm1d (linear-batchnorm); double") {
        Sequential<double> net(4);
        net.emplace<Conv2d>(3, 5, 3, 2, 1, no_bias).emplace<BatchNorm2d>(5).emplace<ReLU>().emplace<Flatten>()
            .emplace<Linear>(5 * 4 * 4, 6).emplace<BatchNorm1d>(6).emplace<ReLU>().emplace<Linear>(6, 3);
        randomise_batchnorms(net, 6);
        net.eval();
        const std::string plan = net.plan_summary();
        CAPTURE(plan);
        CHECK(plan.find("step 0: conv-batchnorm [layers 0 -> 1]") != std::string::npos);
        CHECK(plan.find("linear-batchnorm [layers 4 -> 5]") != std::string::npos);
        const auto [out, grad] = folded_vs_layers(net, random_input<double>(Shape{4, 3, 8, 8}, 8));
        CHECK(out < 1e-12);
        CHECK(grad < 1e-12);
    }
    SUBCASE("the same, float") {
        Sequential<float> net(4);
        net.emplace<Conv2d>(3, 5, 3, 2, 1, no_bias).emplace<BatchNorm2d>(5).emplace<ReLU>().emplace<Flatten>()
            .emplace<Linear>(5 * 4 * 4, 6).emplace<BatchNorm1d>(6).emplace<ReLU>().emplace<Linear>(6, 3);
        randomise_batchnorms(net, 6);
        const auto [out, grad] = folded_vs_layers(net, random_input<float>(Shape{4, 3, 8, 8}, 8));
        CHECK(out < 1e-5);
        CHECK(grad < 1e-5);
    }
}

TEST_CASE("fold: the folded step's gradients of gamma, beta, W and b against finite differences (double, eval mode)") {
    Sequential<double> net(3);
    net.emplace<Conv2d>(2, 3, 3).emplace<BatchNorm2d>(3).emplace<MaxPool2d>(2).emplace<Flatten>().emplace<Linear>(3 * 2 * 2, 2);
    randomise_batchnorms(net, 2);
    net.eval();
    REQUIRE(net.plan_summary().find("conv-batchnorm-pool") != std::string::npos);
    const Tensor<double> x = random_input<double>(Shape{2, 2, 6, 6}, 4);
    Rng rng(1);
    const Tensor<double> g = test::random_tensor(Shape{2, 2}, rng);
    net.forward(x);
    net.backward(g);
    auto loss = [&] { return test::dot(net.forward(x), g); };
    for (auto& p : net.parameters()) {
        CAPTURE(p.name);
        const Tensor<double> analytic = *p.grad;
        CHECK(max_rel_error(*p.value, analytic, loss) < 1e-7);
    }
}

TEST_CASE("fold: train mode is unaffected, and the model is never changed (saving after inference saves the layers)") {
    Sequential<float> net = mnist_cnn_bn<float>(7);
    randomise_batchnorms(net, 1);
    const Tensor<float> x = random_input<float>(Shape{8, 1, 28, 28}, 2);
    const auto before = state_of(net);
    const std::string saved_before = encode_safetensors(net);
    net.eval();
    net.forward(x);
    CHECK(bitwise(state_of(net), before));
    CHECK(encode_safetensors(net) == saved_before);
    for (std::size_t i = 0; i < net.size(); ++i) CHECK(net[i].name() == mnist_cnn_bn<float>(7)[i].name());

    // train mode: batch statistics, running statistics updated, no fold: the same as the layers one by one, bitwise
    net.train();
    const Tensor<float> y_plan = net.forward(x);
    const auto after_plan = state_of(net);
    Sequential<float> same = mnist_cnn_bn<float>(7);
    randomise_batchnorms(same, 1);
    same.set_fusion(false);
    const Tensor<float> y_layers = same.forward(x);
    CHECK(std::memcmp(y_plan.data(), y_layers.data(), sizeof(float) * y_plan.size()) == 0);
    CHECK(bitwise(after_plan, state_of(same)));  // running statistics moved the same way
    CHECK_FALSE(bitwise(after_plan, before));     // and they did move
}

TEST_CASE("fold: the folded weights follow the layers' current values (training steps and loads between forwards)") {
    Sequential<double> net = mnist_cnn_bn<double>(3);
    randomise_batchnorms(net, 3);
    const Tensor<double> x = random_input<double>(Shape{3, 1, 28, 28}, 5);
    net.eval();
    net.forward(x);
    randomise_batchnorms(net, 4);  // as a load or an optimizer step would
    static_cast<Conv2d<double>&>(net[0]).weight()[0] += 0.25;
    const Tensor<double> y = net.forward(x);
    net.set_fusion(false);
    CHECK(rel_diff(y, net.forward(x)) < 1e-12);
}
