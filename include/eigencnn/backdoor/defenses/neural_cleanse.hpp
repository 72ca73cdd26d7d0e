// SPDX-License-Identifier: MIT
// eigencnn/backdoor/defenses/neural_cleanse.hpp
//
// Neural Cleanse (Wang et al. 2019, "Neural Cleanse: Identifying and
// Mitigating Backdoor Attacks in Neural Networks"). For every label t, find
// the smallest trigger that sends clean images to t; a backdoor target needs
// a far smaller one than the other labels.
//
//   mask    m = (tanh(a) + 1) / 2      a [1, 1, H, W]  -> m in (0, 1), shared by the channels
//   pattern p = (tanh(b) + 1) / 2      b [1, C, H, W]  -> p in (0, 1)
//   x'      = (1 - m) x + m p          x [N, C, H, W] clean images
//   loss    = CE(f(x'), t) + cost * |m|_1            (CE: mean over the batch; |m|_1 = sum of m)
//   dloss/dm[h, w]    = sum_{n, c} g[n, c, h, w] (p[c, h, w] - x[n, c, h, w]) + cost,   g = dCE/dx'
//   dloss/dp[c, h, w] = sum_n g[n, c, h, w] m[h, w]
//   dm/da = 2 m (1 - m),  dp/db = 2 p (1 - p)
// g comes from Sequential::backward_input in eval mode (weights frozen, their
// gradients untouched). Adam (lr 0.1, betas (0.5, 0.9)) on a and b, from a
// seeded uniform random mask and pattern, as the official code.
//
// The cost schedule is the official code's (github.com/bolunwang/backdoor,
// visualizer.py, with gtsrb_visualize_example.py's settings), per "epoch" of
// batches_per_epoch mini-batches, with the epoch's mean attack success s:
//   - cost starts at 0; after `patience` epochs in a row with s >= 0.99 it is set to init_cost
//     (1e-3) and the up/down counters and flags are reset;
//   - s >= 0.99 for `patience` epochs in a row: cost *= multiplier (2); s < 0.99 for `patience`
//     epochs in a row: cost /= multiplier^1.5;
//   - the best trigger is the one of smallest mean |m|_1 among epochs with s >= 0.99 (the last
//     one if no epoch reached it);
//   - early stop once the cost went both up and down and the best |m|_1 has not dropped below
//     early_stop_threshold (1.0) x its previous best for early_stop_patience (5 x patience) epochs.
// Batches cycle through a seeded shuffle of the clean images (reshuffled at each pass).
//
// Outlier detection (the official mad_outlier_detection.py): L1 = |m|_1 of each
// label's best mask, anomaly index = |L1 - median| / (1.4826 MAD); a label is
// flagged when L1 <= median and its index > 2. Flagged labels are listed by
// increasing L1 (as the official code), empty when none.
//
// Mitigation by unlearning (Sec. 6.3): fine-tune on a share (5%) of clean
// training data of which a share (20%) carries the reversed trigger of a
// flagged label, with its TRUE label (unlearn_reversed_triggers, below).
// Deviation of a popular toolkit (as issue 12 reports it): BackdoorBench implements
// Neural Cleanse as the unlearning alone; here the detection (anomaly index, flags) is the defense's
// main output and unlearning is its optional second step.
#pragma once

#include "../../core/omp.hpp"

#include "../../data/data_loader.hpp"
#include "../../loss/cross_entropy.hpp"
#include "../../model/sequential.hpp"
#include "../../optim/adam.hpp"
#include "../../train/fit.hpp"
#include "detection_statistics.hpp"

#include <chrono>
#include <functional>
#include <limits>

namespace eigencnn {

struct NeuralCleanseOptions {
    double lr = 0.1, beta1 = 0.5, beta2 = 0.9;  ///< Adam on the tanh parameters
    double init_cost = 1e-3;                    ///< lambda once the attack first succeeds
    double attack_success_threshold = 0.99;
    int patience = 5;                           ///< epochs before the cost changes (official example: 5)
    double cost_multiplier = 2.0;               ///< up: x multiplier, down: / multiplier^1.5
    bool early_stop = true;
    double early_stop_threshold = 1.0;
    int early_stop_patience = 25;               ///< 5 x patience, as the official example
    Index batch_size = 32;                      ///< images per step (official: 32)
    int batches_per_epoch = 8;                  ///< official: 1000 / 32 = 31; fewer to meet 60 s for 10 labels on 2 cores
    int max_epochs = 100;                       ///< official: 1000 (with early stop)
    double anomaly_threshold = 2.0;
    std::uint64_t seed = 0;                     ///< initial mask and pattern, batch order

    void validate() const {
        auto positive = [](const char* what, double v) {
            if (!(v > 0) || !std::isfinite(v)) throw std::invalid_argument(std::string("neural-cleanse: ") + what + " must be a positive number, got " + std::to_string(v));
        };
        positive("lr", lr), positive("init_cost", init_cost), positive("anomaly_threshold", anomaly_threshold);
        positive("early_stop_threshold", early_stop_threshold);
        if (!(cost_multiplier > 1) || !std::isfinite(cost_multiplier))
            throw std::invalid_argument("neural-cleanse: cost_multiplier must be > 1, got " + std::to_string(cost_multiplier));
        if (!(beta1 >= 0 && beta1 < 1) || !(beta2 >= 0 && beta2 < 1))
            throw std::invalid_argument("neural-cleanse: betas must be in [0, 1), got (" + std::to_string(beta1) + ", " + std::to_string(beta2) + ")");
        if (!(attack_success_threshold > 0 && attack_success_threshold <= 1))
            throw std::invalid_argument("neural-cleanse: attack_success_threshold must be in (0, 1], got " + std::to_string(attack_success_threshold));
        if (patience < 1 || early_stop_patience < 1 || batch_size < 1 || batches_per_epoch < 1 || max_epochs < 1)
            throw std::invalid_argument("neural-cleanse: patience, early_stop_patience, batch_size, batches_per_epoch and max_epochs must be >= 1");
    }
};

/// One label's reversed trigger.
template <typename T>
struct ReversedTrigger {
    int label = 0;
    Tensor<T> mask;     ///< [1, 1, H, W] in (0, 1)
    Tensor<T> pattern;  ///< [1, C, H, W] in (0, 1)
    double l1_norm = 0;           ///< sum of the mask
    double attack_success = 0;    ///< mean success over the best epoch
    bool reached_threshold = false;
    int epochs = 0;               ///< epochs run
    double final_cost = 0;
    double seconds = 0;
};

template <typename T>
struct NeuralCleanseResult {
    std::vector<ReversedTrigger<T>> triggers;  ///< one per label
    std::vector<double> l1_norms, anomaly_index;
    double median_l1 = 0;
    std::vector<int> flagged_labels;           ///< L1 <= median and index > threshold, by increasing L1
    double seconds = 0;
};

/// x' = (1 - m) x + m p for images x [N, C, H, W], mask [1, 1, H, W], pattern [1, C, H, W].
template <typename T>
void apply_reversed_trigger(const Tensor<T>& x, const Tensor<T>& mask, const Tensor<T>& pattern, Tensor<T>& out) {
    const Shape& s = x.shape();
    if (s.rank() != 4 || mask.shape() != Shape{1, 1, s[2], s[3]} || pattern.shape() != s.with_batch(1))
        throw std::invalid_argument("neural-cleanse: images " + s.str() + ", mask " + mask.shape().str() + " and pattern " +
                                    pattern.shape().str() + " do not fit ([N, C, H, W], [1, 1, H, W], [1, C, H, W])");
    out.resize(s);
    const Index C = s[1], HW = s[2] * s[3], n_planes = s[0] * C;
    EIGENCNN_OMP(parallel for schedule(static))
    for (Index q = 0; q < n_planes; ++q) {
        const T* xp = x.data() + q * HW;
        const T* pp = pattern.data() + (q % C) * HW;
        T* o = out.data() + q * HW;
        for (Index k = 0; k < HW; ++k) o[k] = (T(1) - mask[k]) * xp[k] + mask[k] * pp[k];
    }
}

namespace nc_detail {
template <typename T>
void from_tanh(const Tensor<T>& a, Tensor<T>& out) {
    out.resize(a.shape());
    for (Index k = 0; k < a.size(); ++k) out[k] = (std::tanh(a[k]) + T(1)) / T(2);
}
}  // namespace nc_detail

/// What one step's loss evaluation gives.
struct TriggerLoss {
    double loss = 0;            ///< CE + cost * |m|_1
    double cross_entropy = 0;
    double l1 = 0;
    double attack_success = 0;  ///< share of x' predicted as the label
};

/// loss(a, b) on the batch x for label `label`, and its gradients w.r.t. a [1, 1, H, W] and b [1, C, H, W].
template <typename T>
TriggerLoss trigger_loss_and_gradient(Sequential<T>& model, const Tensor<T>& x, int label, const Tensor<T>& mask_tanh,
                                      const Tensor<T>& pattern_tanh, double cost, Tensor<T>& grad_mask_tanh, Tensor<T>& grad_pattern_tanh) {
    Tensor<T> m, p, stamped, dz;
    nc_detail::from_tanh(mask_tanh, m);
    nc_detail::from_tanh(pattern_tanh, p);
    apply_reversed_trigger(x, m, p, stamped);
    const Index N = x.dim(0), C = x.dim(1), HW = x.dim(2) * x.dim(3);
    InferenceScope<T> scope(model, /*grad_enabled=*/true);
    const Tensor<T>& z = model.forward(stamped);
    if (z.shape().rank() != 2 || z.dim(0) != N || label < 0 || label >= z.dim(1))
        throw std::invalid_argument("neural-cleanse: label " + std::to_string(label) + " for a model whose output is " + z.shape().str());
    TriggerLoss r;
    const std::vector<int> pred = [&] {
        std::vector<int> out(static_cast<std::size_t>(N));
        for (Index n = 0; n < N; ++n) out[static_cast<std::size_t>(n)] = static_cast<int>(std::max_element(z.data() + n * z.dim(1), z.data() + (n + 1) * z.dim(1)) - (z.data() + n * z.dim(1)));
        return out;
    }();
    r.attack_success = static_cast<double>(std::count(pred.begin(), pred.end(), label)) / static_cast<double>(N);
    r.cross_entropy = static_cast<double>(cross_entropy(z, std::vector<int>(static_cast<std::size_t>(N), label), dz));
    for (Index k = 0; k < HW; ++k) r.l1 += static_cast<double>(m[k]);
    r.loss = r.cross_entropy + cost * r.l1;
    const Tensor<T>& g = model.backward_input(dz);
    grad_mask_tanh.resize(mask_tanh.shape());
    grad_pattern_tanh.resize(pattern_tanh.shape());
    for (Index k = 0; k < HW; ++k) {
        double dm = cost;
        for (Index n = 0; n < N; ++n)
            for (Index c = 0; c < C; ++c) {
                const Index i = (n * C + c) * HW + k;
                dm += static_cast<double>(g[i]) * (static_cast<double>(p[c * HW + k]) - static_cast<double>(x[i]));
            }
        grad_mask_tanh[k] = static_cast<T>(dm * 2 * static_cast<double>(m[k]) * (1 - static_cast<double>(m[k])));
    }
    for (Index c = 0; c < C; ++c)
        for (Index k = 0; k < HW; ++k) {
            double dp = 0;
            for (Index n = 0; n < N; ++n) dp += static_cast<double>(g[(n * C + c) * HW + k]);
            const double pk = static_cast<double>(p[c * HW + k]);
            grad_pattern_tanh[c * HW + k] = static_cast<T>(dp * static_cast<double>(m[k]) * 2 * pk * (1 - pk));
        }
    return r;
}

/// Reverse-engineer the smallest trigger sending `images` [N, C, H, W] (clean) to `label` (see the header comment).
template <typename T>
ReversedTrigger<T> reverse_engineer_trigger(Sequential<T>& model, const Tensor<T>& images, int label, const NeuralCleanseOptions& o) {
    o.validate();
    const auto t0 = std::chrono::steady_clock::now();
    const Shape& s = images.shape();
    if (s.rank() != 4 || s[0] < 1) throw std::invalid_argument("neural-cleanse: clean images must be [N >= 1, C, H, W], got " + s.str());
    if (!images.vector().allFinite()) throw std::invalid_argument("neural-cleanse: the clean images hold a non-finite value (NaN or infinity)");
    Rng rng(Rng::mix(o.seed, static_cast<std::uint64_t>(label)));
    Tensor<T> a(Shape{1, 1, s[2], s[3]}), b(s.with_batch(1)), ga, gb;
    const auto to_tanh = [](double u) { return std::atanh(std::max(-1 + 1e-6, std::min(1 - 1e-6, 2 * u - 1))); };
    for (Index k = 0; k < a.size(); ++k) a[k] = static_cast<T>(to_tanh(rng.uniform()));
    for (Index k = 0; k < b.size(); ++k) b[k] = static_cast<T>(to_tanh(rng.uniform()));
    ga.resize(a.shape()), gb.resize(b.shape());
    AdamOptions ao;
    ao.lr = o.lr, ao.beta1 = o.beta1, ao.beta2 = o.beta2;
    Adam<T> adam({{"mask_tanh", &a, &ga}, {"pattern_tanh", &b, &gb}}, ao);

    const Index B = std::min(o.batch_size, s[0]), S = s.sample_size();
    std::vector<std::size_t> order = rng.permutation(static_cast<std::size_t>(s[0]));
    std::size_t next = 0;
    Tensor<T> batch(s.with_batch(B));

    ReversedTrigger<T> best;
    best.label = label;
    double reg_best = std::numeric_limits<double>::infinity(), early_stop_reg_best = reg_best;
    double cost = 0;  // the official code's reset_cost_to_zero
    int cost_set_counter = 0, cost_up_counter = 0, cost_down_counter = 0, early_stop_counter = 0;
    bool cost_up_flag = false, cost_down_flag = false;
    double last_success = 0;
    int epoch = 0;
    for (; epoch < o.max_epochs; ++epoch) {
        double success_sum = 0, reg_sum = 0;
        Index seen = 0;
        for (int mb = 0; mb < o.batches_per_epoch; ++mb) {
            for (Index i = 0; i < B; ++i) {
                if (next == order.size()) order = rng.permutation(order.size()), next = 0;
                std::copy(images.data() + static_cast<Index>(order[next]) * S, images.data() + static_cast<Index>(order[next] + 1) * S, batch.data() + i * S);
                ++next;
            }
            const TriggerLoss l = trigger_loss_and_gradient(model, batch, label, a, b, cost, ga, gb);
            adam.step();
            success_sum += l.attack_success * static_cast<double>(B), seen += B;
            reg_sum += l.l1;
        }
        const double success = success_sum / static_cast<double>(seen), reg = reg_sum / o.batches_per_epoch;
        last_success = success;
        const bool succeeded = success >= o.attack_success_threshold;
        if (succeeded && reg < reg_best) {
            nc_detail::from_tanh(a, best.mask);
            nc_detail::from_tanh(b, best.pattern);
            reg_best = reg;
            best.attack_success = success;
            best.reached_threshold = true;
        }
        if (o.early_stop) {
            if (reg_best < std::numeric_limits<double>::infinity())
                early_stop_counter = reg_best >= o.early_stop_threshold * early_stop_reg_best ? early_stop_counter + 1 : 0;
            early_stop_reg_best = std::min(reg_best, early_stop_reg_best);
            if (cost_down_flag && cost_up_flag && early_stop_counter >= o.early_stop_patience) {
                ++epoch;
                break;
            }
        }
        if (cost == 0 && succeeded) {
            if (++cost_set_counter >= o.patience) {
                cost = o.init_cost;
                cost_up_counter = cost_down_counter = 0;
                cost_up_flag = cost_down_flag = false;
            }
        } else {
            cost_set_counter = 0;
        }
        if (succeeded) ++cost_up_counter, cost_down_counter = 0;
        else cost_up_counter = 0, ++cost_down_counter;
        if (cost_up_counter >= o.patience) {
            cost_up_counter = 0;
            cost *= o.cost_multiplier;
            cost_up_flag = true;
        } else if (cost_down_counter >= o.patience) {
            cost_down_counter = 0;
            cost /= std::pow(o.cost_multiplier, 1.5);
            cost_down_flag = true;
        }
    }
    if (!best.reached_threshold) {  // no epoch reached the threshold: the last trigger
        nc_detail::from_tanh(a, best.mask);
        nc_detail::from_tanh(b, best.pattern);
        best.attack_success = last_success;
    }
    best.l1_norm = 0;
    for (Index k = 0; k < best.mask.size(); ++k) best.l1_norm += static_cast<double>(best.mask[k]);
    best.epochs = epoch;
    best.final_cost = cost;
    best.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    return best;
}

/// Labels with L1 <= median and anomaly index > threshold, by increasing L1.
inline std::vector<int> flag_labels(const std::vector<double>& l1_norms, const std::vector<double>& anomaly_index, double threshold) {
    const double m = median(l1_norms);
    std::vector<int> flagged;
    for (std::size_t i = 0; i < l1_norms.size(); ++i)
        if (l1_norms[i] <= m && anomaly_index[i] > threshold) flagged.push_back(static_cast<int>(i));
    std::stable_sort(flagged.begin(), flagged.end(), [&](int x, int y) { return l1_norms[static_cast<std::size_t>(x)] < l1_norms[static_cast<std::size_t>(y)]; });
    return flagged;
}

/// Every label's reversed trigger, the anomaly indices and the flagged labels. `num_classes` labels
/// (0: the model's output width). on_label(trigger) is called after each label (progress).
template <typename T>
NeuralCleanseResult<T> run_neural_cleanse(Sequential<T>& model, const Tensor<T>& images, const NeuralCleanseOptions& o,
                                          const std::function<void(const ReversedTrigger<T>&)>& on_label = {}) {
    const auto t0 = std::chrono::steady_clock::now();
    o.validate();
    if (images.shape().rank() != 4 || images.dim(0) < 1)
        throw std::invalid_argument("neural-cleanse: clean images must be [N >= 1, C, H, W], got " + images.shape().str());
    const Shape out = model.output_shape(images.shape().with_batch(1));
    if (out.rank() != 2 || out[1] < 2)
        throw std::invalid_argument("neural-cleanse: the model maps " + images.shape().with_batch(1).str() + " to " + out.str() + ", not to logits [1, K >= 2]");
    NeuralCleanseResult<T> r;
    for (int label = 0; label < static_cast<int>(out[1]); ++label) {
        r.triggers.push_back(reverse_engineer_trigger(model, images, label, o));
        r.l1_norms.push_back(r.triggers.back().l1_norm);
        if (on_label) on_label(r.triggers.back());
    }
    r.anomaly_index = mad_anomaly_index(r.l1_norms);
    r.median_l1 = median(r.l1_norms);
    r.flagged_labels = flag_labels(r.l1_norms, r.anomaly_index, o.anomaly_threshold);
    r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    return r;
}

struct UnlearningOptions {
    double clean_share = 0.05;    ///< share of the training set used
    double stamped_share = 0.2;   ///< share of those images given a reversed trigger (true label kept)
    int epochs = 1;
    Index batch_size = 32;
    double lr = 1e-3;             ///< Adam
    std::uint64_t seed = 0;

    void validate() const {
        if (!(clean_share > 0 && clean_share <= 1)) throw std::invalid_argument("unlearning: clean_share must be in (0, 1], got " + std::to_string(clean_share));
        if (!(stamped_share >= 0 && stamped_share <= 1)) throw std::invalid_argument("unlearning: stamped_share must be in [0, 1], got " + std::to_string(stamped_share));
        if (epochs < 1 || batch_size < 1) throw std::invalid_argument("unlearning: epochs and batch_size must be >= 1");
        if (!(lr > 0) || !std::isfinite(lr)) throw std::invalid_argument("unlearning: lr must be a positive number, got " + std::to_string(lr));
    }
};

struct UnlearningResult {
    std::size_t images = 0, stamped_images = 0;
    std::vector<int> trigger_labels;  ///< whose reversed triggers were stamped
    double seconds = 0;
};

/// Fine-tune `model` in place on a seeded clean_share of `train`, stamped_share of it carrying the reversed
/// triggers (in turn) at their true labels.
template <typename T>
UnlearningResult unlearn_reversed_triggers(Sequential<T>& model, const Dataset<T>& train, const std::vector<const ReversedTrigger<T>*>& triggers,
                                           const UnlearningOptions& o) {
    const auto t0 = std::chrono::steady_clock::now();
    o.validate();
    if (triggers.empty()) throw std::invalid_argument("unlearning: no reversed trigger to unlearn");
    Rng rng(o.seed);
    const std::size_t n = std::max<std::size_t>(1, static_cast<std::size_t>(o.clean_share * static_cast<double>(train.labels.size())));
    Dataset<T> part = train.subset(rng.choice(train.labels.size(), n));
    UnlearningResult r;
    r.images = n;
    r.stamped_images = static_cast<std::size_t>(o.stamped_share * static_cast<double>(n));
    const Index S = part.images.shape().sample_size();
    Tensor<T> one, stamped;
    for (std::size_t i = 0; i < r.stamped_images; ++i) {  // `part` is a random draw: its first images are a random share
        const ReversedTrigger<T>& t = *triggers[i % triggers.size()];
        one.resize(part.images.shape().with_batch(1));
        std::copy(part.images.data() + static_cast<Index>(i) * S, part.images.data() + static_cast<Index>(i + 1) * S, one.data());
        apply_reversed_trigger(one, t.mask, t.pattern, stamped);
        std::copy(stamped.data(), stamped.data() + S, part.images.data() + static_cast<Index>(i) * S);
    }
    for (const auto* t : triggers) r.trigger_labels.push_back(t->label);
    Adam<T> adam(model.parameters(), AdamOptions{o.lr});
    DataLoader<T> loader(part, o.batch_size, /*shuffle=*/true, Rng::mix(o.seed, 1));
    FitOptions fo;
    fo.epochs = o.epochs;
    fit(model, adam, loader, fo);
    r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    return r;
}

template <typename BasicJson, typename T>
void to_json(BasicJson& j, const ReversedTrigger<T>& t) {
    j = BasicJson{{"label", t.label},           {"l1_norm", t.l1_norm}, {"attack_success", t.attack_success},
                  {"reached_threshold", t.reached_threshold}, {"epochs", t.epochs}, {"final_cost", t.final_cost}, {"seconds", t.seconds}};
}
template <typename BasicJson, typename T>
void to_json(BasicJson& j, const NeuralCleanseResult<T>& r) {
    j = BasicJson::object();
    j["defense"] = "neural-cleanse";
    j["l1_norms"] = r.l1_norms;
    j["median_l1"] = r.median_l1;
    j["anomaly_index"] = r.anomaly_index;  // +infinity (MAD 0) is written as null
    j["flagged_labels"] = r.flagged_labels;
    j["labels"] = r.triggers;
    j["seconds"] = r.seconds;
}
template <typename BasicJson>
void to_json(BasicJson& j, const UnlearningResult& r) {
    j = BasicJson{{"images", r.images}, {"stamped_images", r.stamped_images}, {"trigger_labels", r.trigger_labels}, {"seconds", r.seconds}};
}

}  // namespace eigencnn
