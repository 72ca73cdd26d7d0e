// SPDX-License-Identifier: MIT
// eigencnn/backdoor/defenses/anp.hpp
//
// Adversarial neuron pruning (Wu and Wang 2021, "Adversarial Neuron
// Perturbations Expose Backdoors in Pretrained Models"): backdoored models
// collapse under small perturbations of their neurons; learn a mask per
// neuron that keeps the clean loss low under the worst such perturbation,
// and prune the neurons whose mask goes to 0.
//
// Neurons: the output channels of every Conv2d and the output units of every
// Linear but the last (the logits), through their output masks
// (core/output_mask.hpp). For a neuron k with weights w_k and bias b_k:
//   f(x; (m_k + delta_k) w_k, (1 + xi_k) b_k),   m in [0, 1], delta, xi in [-eps, eps]
// The paper and its official code put the masks and perturbations on the
// BatchNorm layers' scales and shifts; the notebook's model has no BatchNorm,
// so here they act on the conv channels and Linear units directly (and say so).
// Per iteration, on a batch of `batch_size` drawn with replacement from the
// `clean_images` clean images (official code: optimize_mask_cifar.py):
//   delta, xi ~ U(-eps, eps); `noise_steps` times:
//       delta += (eps / noise_steps) sign(dCE/ddelta), xi likewise, then clipped to
//       [-eps, eps] (the paper's perturbation set; the official code does not clip)
//   L = alpha CE(x; m w, b) + (1 - alpha) CE(x; (m + delta) w, (1 + xi) b)
//   m -= SGD step of dL/dm (lr 0.2, momentum 0.9), then m clipped to [0, 1]
// Pruning: every neuron with m_k < threshold (0.2) gets w_k = 0 and keeps
// its bias, as the official prune_neuron_cifar.py zeroes the BatchNorm scale
// alone; the other neurons keep their weights (the mask values only rank).
#pragma once

#include "../../loss/cross_entropy.hpp"
#include "../../model/masks.hpp"
#include "../../train/inference.hpp"

#include <nlohmann/json.hpp>

#include <functional>

namespace eigencnn {

struct Anp {
    static constexpr const char* name = "anp";
    double eps = 0.4;         ///< perturbation budget
    double alpha = 0.2;       ///< weight of the clean loss
    int iterations = 2000;    ///< mask updates
    int noise_steps = 1;      ///< ascent steps on the perturbation per update
    Index batch_size = 128;
    std::size_t clean_images = 500;  ///< clean images used (the first of the defender's clean data)
    double mask_lr = 0.2, momentum = 0.9;
    double threshold = 0.2;   ///< prune neurons whose mask is below this
    std::uint64_t seed = 0;   ///< batches and initial perturbations

    void validate() const {
        if (!(eps >= 0 && eps <= 1)) throw std::invalid_argument("anp: eps must be in [0, 1], got " + std::to_string(eps));
        if (!(alpha >= 0 && alpha <= 1)) throw std::invalid_argument("anp: alpha must be in [0, 1], got " + std::to_string(alpha));
        if (iterations < 1) throw std::invalid_argument("anp: iterations must be >= 1, got " + std::to_string(iterations));
        if (noise_steps < 1) throw std::invalid_argument("anp: noise_steps must be >= 1, got " + std::to_string(noise_steps));
        if (batch_size < 1) throw std::invalid_argument("anp: batch_size must be >= 1");
        if (clean_images < 1) throw std::invalid_argument("anp: clean_images must be >= 1");
        if (!(mask_lr > 0) || !std::isfinite(mask_lr)) throw std::invalid_argument("anp: mask_lr must be > 0");
        if (!(momentum >= 0 && momentum < 1)) throw std::invalid_argument("anp: momentum must be in [0, 1)");
        if (!(threshold >= 0 && threshold <= 1)) throw std::invalid_argument("anp: threshold must be in [0, 1], got " + std::to_string(threshold));
    }
};

struct AnpLayerMasks {
    std::size_t layer = 0;
    std::vector<double> mask;         ///< the learned m, one per neuron
    std::vector<Index> pruned;        ///< neurons with m < threshold
};

struct AnpResult {
    std::vector<AnpLayerMasks> layers;
    std::size_t neurons = 0, pruned = 0;
    std::vector<double> loss;         ///< L every tenth of the iterations
};

namespace anp_detail {
struct Neurons {
    std::size_t layer;
    OutputMask<float>* out;
    Tensor<float> m, delta, xi, velocity, grad;
};
inline float sign(float g) { return g > 0 ? 1.f : (g < 0 ? -1.f : 0.f); }
}  // namespace anp_detail

/// Learn the masks on `clean` (its first p.clean_images images) and prune `model` in place.
inline AnpResult anp_prune(Sequential<float>& model, const Dataset<float>& clean, const Anp& p,
                           const std::function<void(std::size_t, std::size_t, double)>& progress = {}) {
    p.validate();
    if (clean.size() == 0) throw std::invalid_argument("anp: no clean data");
    const Dataset<float> data = clean.head(static_cast<Index>(p.clean_images));
    std::vector<anp_detail::Neurons> neurons;
    const auto layers = masked_layers(model);
    for (std::size_t i : layers) {
        if (i + 1 == model.size()) continue;  // the logits layer keeps all its outputs
        OutputMask<float>* out = model[i].output_mask();
        if (out->active()) throw std::invalid_argument("anp: layer " + std::to_string(i) + " already has an output mask");
        const Shape s{out->units()};
        neurons.push_back({i, out, Tensor<float>(s, 1.f), Tensor<float>(s), Tensor<float>(s), Tensor<float>(s), Tensor<float>(s)});
    }
    if (neurons.empty()) throw std::invalid_argument("anp: the model has no Conv2d or Linear before its last layer");
    const auto set = [&](bool perturbed) {
        for (auto& n : neurons) {
            Tensor<float> a = n.m, c(n.m.shape(), 1.f);
            if (perturbed) {
                a.vector() += n.delta.vector();
                c.vector() += n.xi.vector();
            }
            n.out->set_weight_mask(a);
            n.out->set_bias_mask(c);
            n.out->set_requires_grad(true);
        }
    };
    const auto loss_and_backward = [&](const Batch<float>& b, float scale) {
        const Tensor<float>& z = model.forward(b.images);
        Tensor<float> dz;
        const float loss = cross_entropy(z, b.labels, dz);
        dz.vector() *= scale;
        model.backward(dz);
        return static_cast<double>(loss);
    };
    const bool was_training = model.is_training();
    model.train();  // as the official code (no layer of the seed model behaves differently)
    Rng rng(p.seed);
    AnpResult r;
    Batch<float> b;
    b.images.resize(data.images.shape().with_batch(p.batch_size));
    b.labels.resize(static_cast<std::size_t>(p.batch_size));
    std::vector<std::size_t> idx(static_cast<std::size_t>(p.batch_size));
    const float eps = static_cast<float>(p.eps), step = static_cast<float>(p.eps / p.noise_steps);
    for (int it = 1; it <= p.iterations; ++it) {
        for (auto& i : idx) i = static_cast<std::size_t>(rng.below(static_cast<std::uint64_t>(data.size())));
        data.gather(idx.data(), idx.size(), b.images, b.labels);
        if (p.eps > 0) {
            for (auto& n : neurons)
                for (Index k = 0; k < n.m.size(); ++k) n.delta[k] = static_cast<float>(rng.uniform(-p.eps, p.eps)), n.xi[k] = static_cast<float>(rng.uniform(-p.eps, p.eps));
            for (int s = 0; s < p.noise_steps; ++s) {
                set(true);
                loss_and_backward(b, 1.f);
                for (auto& n : neurons)
                    for (Index k = 0; k < n.m.size(); ++k) {
                        n.delta[k] = std::clamp(n.delta[k] + step * anp_detail::sign(n.out->grad_weight_mask()[k]), -eps, eps);
                        n.xi[k] = std::clamp(n.xi[k] + step * anp_detail::sign(n.out->grad_bias_mask()[k]), -eps, eps);
                    }
            }
        }
        double loss = 0;
        for (auto& n : neurons) n.grad.set_zero();
        if (p.eps > 0 && p.alpha < 1) {
            set(true);
            loss += (1 - p.alpha) * loss_and_backward(b, static_cast<float>(1 - p.alpha));
            for (auto& n : neurons) n.grad.vector() += n.out->grad_weight_mask().vector();  // da/dm = 1
        }
        set(false);
        const float nat_scale = static_cast<float>(p.alpha);  // with eps = 0 the official code's loss is alpha * CE alone
        loss += nat_scale * loss_and_backward(b, nat_scale);
        for (auto& n : neurons) {
            n.grad.vector() += n.out->grad_weight_mask().vector();
            // torch.optim.SGD with momentum: v = mu v + g (v = g on the first step), m -= lr v
            n.velocity.vector() = it == 1 ? n.grad.vector() : (static_cast<float>(p.momentum) * n.velocity.vector() + n.grad.vector()).eval();
            n.m.vector() -= static_cast<float>(p.mask_lr) * n.velocity.vector();
            for (Index k = 0; k < n.m.size(); ++k) n.m[k] = std::clamp(n.m[k], 0.f, 1.f);
        }
        const auto every = static_cast<std::size_t>(std::max(1, p.iterations / 10));
        if (static_cast<std::size_t>(it) % every == 0 || it == p.iterations) {
            r.loss.push_back(loss);
            if (progress) progress(static_cast<std::size_t>(it), static_cast<std::size_t>(p.iterations), loss);
        }
    }
    model.train(was_training);
    for (auto& n : neurons) {
        n.out->clear();
        AnpLayerMasks l;
        l.layer = n.layer;
        Tensor<float> a(n.m.shape(), 1.f);
        for (Index k = 0; k < n.m.size(); ++k) {
            l.mask.push_back(static_cast<double>(n.m[k]));
            if (n.m[k] < static_cast<float>(p.threshold)) l.pruned.push_back(k), a[k] = 0.f;
        }
        r.neurons += static_cast<std::size_t>(n.m.size());
        r.pruned += l.pruned.size();
        if (!l.pruned.empty()) {  // the weights alone: w_k = 0, b_k kept
            n.out->set_weight_mask(a);
            auto params = model[n.layer].parameters();
            n.out->fold_into(params[0].value->data(), params.size() > 1 ? params[1].value->data() : nullptr, params[0].value->size() / n.m.size());
            n.out->clear();
        }
        r.layers.push_back(std::move(l));
    }
    return r;
}

template <typename BasicJson>
void to_json(BasicJson& j, const Anp& p) {
    j = BasicJson{{"eps", p.eps},           {"alpha", p.alpha},         {"iterations", p.iterations}, {"noise_steps", p.noise_steps},
                  {"batch_size", p.batch_size}, {"clean_images", p.clean_images}, {"mask_lr", p.mask_lr}, {"momentum", p.momentum},
                  {"threshold", p.threshold}, {"seed", p.seed}};
}

/// {"neurons", "pruned", "loss", "layers": [{"layer", "pruned", "mask"}...]}
template <typename BasicJson>
void to_json(BasicJson& j, const AnpResult& r) {
    BasicJson per = BasicJson::array();
    for (const auto& l : r.layers) per.push_back(BasicJson{{"layer", l.layer}, {"pruned", l.pruned}, {"mask", l.mask}});
    j = BasicJson{{"neurons", r.neurons}, {"pruned", r.pruned}, {"loss", r.loss}, {"layers", per}};
}

}  // namespace eigencnn
