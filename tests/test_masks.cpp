// SPDX-License-Identifier: MIT
// Output masks (core/output_mask.hpp, model/masks.hpp): forward equals the
// zeroed-weight forward, gradients against finite differences (weights,
// bias, input and the masks themselves), the fused conv->pool path honours
// masks, and a pruned model saves, loads and trains.
#include "gradcheck.hpp"

#include <eigencnn/io/checkpoint.hpp>
#include <eigencnn/io/safetensors.hpp>
#include <eigencnn/train/trainer.hpp>

#include <cstdio>

using namespace eigencnn;
using test::dot;
using test::max_rel_error;
using test::random_tensor;

namespace {

Tensor<double> mask_values(Index n, Rng& rng) {
    Tensor<double> m(Shape{n});
    for (Index i = 0; i < n; ++i) m[i] = rng.uniform(-0.5, 1.5);
    return m;
}

// A small conv net whose Conv2d -> ReLU -> MaxPool2d run fused; 8 input channels in the second conv take the winners-only backward.
template <typename T>
Sequential<T> small_net(std::uint64_t seed) {
    Sequential<T> net(seed);
    net.template emplace<Conv2d>(2, 8, 3).template emplace<ReLU>().template emplace<MaxPool2d>(2);
    net.template emplace<Conv2d>(8, 6, 3).template emplace<ReLU>().template emplace<MaxPool2d>(2);
    net.template emplace<Flatten>().template emplace<Linear>(24, 7).template emplace<ReLU>().template emplace<Linear>(7, 3);
    return net;
}

}  // namespace

TEST_CASE("a mask of zeros gives the zeroed-weight forward; a real mask gives the scaled-weight forward") {
    Rng rng(1);
    const Tensor<double> x = random_tensor(Shape{3, 2, 7, 7}, rng);
    Conv2d<double> conv(2, 4, 3), zeroed(2, 4, 3);
    zeroed.weight() = conv.weight();
    zeroed.bias() = conv.bias();
    Tensor<double> m(Shape{4}, 1.0);
    m[1] = 0, m[3] = 0;
    conv.output_mask()->set(m);
    for (Index o : {1, 3}) {
        for (Index r = 0; r < 18; ++r) zeroed.weight()[o * 18 + r] = 0;
        zeroed.bias()[o] = 0;
    }
    CHECK(conv.forward(x).vector() == zeroed.forward(x).vector());

    Linear<double> lin(5, 3), scaled(5, 3);
    scaled.weight() = lin.weight();
    scaled.bias() = lin.bias();
    const Tensor<double> a = mask_values(3, rng), c = mask_values(3, rng);
    lin.output_mask()->set_weight_mask(a);
    lin.output_mask()->set_bias_mask(c);
    for (Index o = 0; o < 3; ++o) {
        for (Index r = 0; r < 5; ++r) scaled.weight()[o * 5 + r] *= a[o];
        scaled.bias()[o] *= c[o];
    }
    const Tensor<double> xl = random_tensor(Shape{4, 5}, rng);
    CHECK((lin.forward(xl).vector() - scaled.forward(xl).vector()).cwiseAbs().maxCoeff() < 1e-14);

    lin.output_mask()->clear();
    CHECK_FALSE(lin.output_mask()->active());
    Linear<double> plain(5, 3);
    plain.weight() = lin.weight(), plain.bias() = lin.bias();
    CHECK(lin.forward(xl).vector() == plain.forward(xl).vector());
}

TEST_CASE("masked Conv2d and Linear: gradients of input, weights, bias and the masks match finite differences") {
    Rng rng(2);
    Conv2d<double> conv(3, 4, 3, 2, 1);
    Linear<double> lin(6, 5);
    for (Layer<double>* layer : std::initializer_list<Layer<double>*>{&conv, &lin}) {
        OutputMask<double>& mask = *layer->output_mask();
        Tensor<double> a = mask_values(mask.units(), rng), c = mask_values(mask.units(), rng);
        a[0] = 0;  // a pruned unit: its weights get no gradient
        mask.set_weight_mask(a);
        mask.set_bias_mask(c);
        mask.set_requires_grad(true);
        const Tensor<double> x = layer == &conv ? random_tensor(Shape{2, 3, 6, 6}, rng) : random_tensor(Shape{3, 6}, rng);
        test::check_layer_gradients(*layer, x, 5);

        const Tensor<double> G = random_tensor(layer->forward(x).shape(), rng);
        layer->backward(G);
        const Tensor<double> da = mask.grad_weight_mask(), dc = mask.grad_bias_mask();
        CHECK(layer->parameters()[0].grad->matrix().row(0).cwiseAbs().maxCoeff() == 0);
        auto loss_a = [&] {
            mask.set_weight_mask(a);
            return dot(layer->forward(x), G);
        };
        CHECK(max_rel_error(a, da, loss_a) < 1e-7);
        mask.set_weight_mask(a);
        auto loss_c = [&] {
            mask.set_bias_mask(c);
            return dot(layer->forward(x), G);
        };
        CHECK(max_rel_error(c, dc, loss_c) < 1e-7);
    }
}

TEST_CASE("the fused Conv2d -> MaxPool2d -> ReLU step honours masks: outputs and gradients as the layers one by one") {
    Rng rng(3);
    Sequential<double> fused = small_net<double>(4), plain = small_net<double>(4);
    plain.set_fusion(false);
    REQUIRE(fused.plan_summary() != plain.plan_summary());
    for (Sequential<double>* net : {&fused, &plain}) {
        Rng mr(9);
        for (std::size_t i : masked_layers(*net)) {
            OutputMask<double>& m = *(*net)[i].output_mask();
            m.set_weight_mask(mask_values(m.units(), mr));
            m.set_bias_mask(mask_values(m.units(), mr));
            m.set_requires_grad(true);
        }
    }
    const Tensor<double> x = random_tensor(Shape{3, 2, 14, 14}, rng);
    const Tensor<double> y = fused.forward(x);
    CHECK((y.vector() - plain.forward(x).vector()).cwiseAbs().maxCoeff() < 1e-13);
    const Tensor<double> G = random_tensor(y.shape(), rng);
    fused.forward(x);
    fused.backward(G);
    plain.backward(G);
    auto pf = fused.parameters(), pp = plain.parameters();
    for (std::size_t k = 0; k < pf.size(); ++k) CHECK((pf[k].grad->vector() - pp[k].grad->vector()).cwiseAbs().maxCoeff() < 1e-12);
    for (std::size_t i : masked_layers(fused)) {
        CHECK((fused[i].output_mask()->grad_weight_mask().vector() - plain[i].output_mask()->grad_weight_mask().vector()).cwiseAbs().maxCoeff() < 1e-12);
        CHECK((fused[i].output_mask()->grad_bias_mask().vector() - plain[i].output_mask()->grad_bias_mask().vector()).cwiseAbs().maxCoeff() < 1e-12);
    }
    // and the fused gradient of the second conv's weight mask against finite differences
    OutputMask<double>& m3 = *fused[3].output_mask();
    Tensor<double> a = m3.weight_mask();
    const Tensor<double> da = m3.grad_weight_mask();
    CHECK(max_rel_error(a, da, [&] {
              m3.set_weight_mask(a);
              return dot(fused.forward(x), G);
          }) < 1e-7);
}

TEST_CASE("a pruned model saves (checkpoint and safetensors), loads, and trains with the pruned units kept at zero") {
    Sequential<float> net = small_net<float>(5);
    prune_units(net[0], {1, 4});
    prune_units(net[7], {2});
    Rng rng(6);
    Tensor<float> x(Shape{8, 2, 14, 14});
    for (Index i = 0; i < x.size(); ++i) x[i] = static_cast<float>(rng.uniform(0, 1));
    const Tensor<float> y = net.forward(x);

    const std::string ckpt = "eigencnn_test_masks.ckpt", st = "eigencnn_test_masks.safetensors";
    save_checkpoint(ckpt, net);
    save_safetensors(net, st);
    Sequential<float> loaded = load_model<float>(ckpt);
    CHECK(loaded.forward(x).vector() == y.vector());
    Sequential<float> from_st = small_net<float>(99);
    load_safetensors(from_st, st);
    CHECK(from_st.forward(x).vector() == y.vector());
    std::remove(ckpt.c_str());
    std::remove(st.c_str());

    // training keeps the pruned units at zero in the masked model; the loaded one trains too
    Dataset<float> data;
    data.images = x;
    data.labels = {0, 1, 2, 0, 1, 2, 0, 1};
    for (Sequential<float>* m : {&net, &loaded}) {
        Adam<float> adam(m->parameters());
        DataLoader<float> loader(data, 4, true, 1);
        const std::vector<float> before = test::weights_of(*m);
        for (int e = 0; e < 3; ++e) train_epoch(*m, adam, loader, e);
        CHECK(test::weights_of(*m) != before);
    }
    auto& conv = static_cast<Conv2d<float>&>(net[0]);
    CHECK(conv.weight().matrix().row(1).cwiseAbs().maxCoeff() == 0);
    CHECK(conv.bias()[4] == 0);
    CHECK(static_cast<Linear<float>&>(net[7]).weight().matrix().row(2).cwiseAbs().maxCoeff() == 0);
    CHECK(net[7].output_mask()->weight_factor(2) == 0);

    // a soft mask is not in the raw weights: saving refuses until it is folded
    Tensor<float> half(Shape{6}, 0.5f);
    net[3].output_mask()->set(half);
    const Tensor<float> ys = net.forward(x);
    CHECK_THROWS_WITH_AS(save_checkpoint(ckpt, net), doctest::Contains("checkpoint: layer 3 (Conv2d(8, 6"), std::logic_error);
    CHECK_THROWS_AS(encode_safetensors(net), std::logic_error);
    fold_output_masks(net);
    CHECK_FALSE(net[3].output_mask()->active());
    CHECK(net[0].output_mask()->active());  // 0/1 masks stay
    CHECK((net.forward(x).vector() - ys.vector()).cwiseAbs().maxCoeff() < 1e-6f);
    const std::string bytes = encode_checkpoint(net);
    CHECK_FALSE(bytes.empty());
}

TEST_CASE("mask input is checked") {
    Linear<float> lin(4, 3);
    CHECK_THROWS_WITH_AS(lin.output_mask()->set(Tensor<float>(Shape{4}, 1.f)), doctest::Contains("expected a mask of shape [3]"), std::invalid_argument);
    Tensor<float> m(Shape{3}, 1.f);
    m[2] = std::numeric_limits<float>::quiet_NaN();
    CHECK_THROWS_WITH_AS(lin.output_mask()->set(m), doctest::Contains("entry 2 is not finite"), std::invalid_argument);
    CHECK_THROWS_WITH_AS(prune_units(lin, {3}), doctest::Contains("unit 3 of Linear"), std::invalid_argument);
    ReLU<float> relu;
    CHECK_THROWS_WITH_AS(prune_units(relu, {0}), doctest::Contains("has no output mask"), std::invalid_argument);
}
