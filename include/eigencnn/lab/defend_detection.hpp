// SPDX-License-Identifier: MIT
// eigencnn/lab/defend_detection.hpp
//
// STRIP and Neural Cleanse as rows of the defense table (lab/defend.hpp), so that
// `backdoor_lab defend` and the matrix run them like the other four:
//
//   strip           an input filter (Gao et al. 2019). Inputs: the first `inputs` (2,000) test
//                   images, and the same images stamped with the attack's trigger, minus those whose
//                   poisoned label is their true label; overlays: the defender's clean data (held out
//                   from the test set, as the paper's). The threshold is the normal fit's at the first
//                   preset FRR (1%). Before/after: attack_metrics on those inputs, where a rejected input
//                   gets no label (it is neither correct nor the attacker's), so
//                     C-Acc after = clean inputs accepted and correct / clean inputs,
//                     ASR after   = triggered inputs accepted and classified as the target / triggered inputs;
//                   before = the same inputs with nothing rejected. The model is not changed.
//   neural-cleanse  model detection and repair (Wang et al. 2019): reverse-engineers a trigger per
//                   label on the defender's clean data, flags labels by the MAD anomaly index, and
//                   unlearns the flagged labels' triggers on that data (lab/detect.hpp); before/after on
//                   the whole test set, as the other defenses.
#pragma once

#include "detect.hpp"

#include <chrono>

namespace eigencnn {

/// STRIP in the defense table (its parameters: StripDefenseSettings).
struct StripDefense {
    static constexpr const char* name = "strip";
    StripDefenseSettings settings;

    void validate() const {
        settings.strip.validate();
        if (settings.inputs < 1) throw std::invalid_argument("strip: inputs must be >= 1, got " + std::to_string(settings.inputs));
    }
};

/// Neural Cleanse with unlearning in the defense table (its parameters: NeuralCleanseDefenseSettings).
struct NeuralCleanseDefense {
    static constexpr const char* name = "neural-cleanse";
    NeuralCleanseDefenseSettings settings;

    void validate() const {
        settings.neural_cleanse.validate();
        if (settings.unlearn) settings.unlearning.validate();
        if (settings.clean_images < 1)
            throw std::invalid_argument("neural-cleanse: clean_images must be >= 1, got " + std::to_string(settings.clean_images));
    }
};

template <typename BasicJson>
void to_json(BasicJson& j, const StripDefense& d) {
    const StripOptions& o = d.settings.strip;
    j = BasicJson{{"overlays", o.overlays}, {"inputs", d.settings.inputs}, {"false_rejection_rates", o.false_rejection_rates},
                  {"seed", o.seed}, {"batch_size", o.batch_size}};
}

template <typename BasicJson>
void to_json(BasicJson& j, const NeuralCleanseDefense& d) {
    j = BasicJson::object();
    j["clean_images"] = d.settings.clean_images;
    j["unlearn"] = d.settings.unlearn;
    const NeuralCleanseOptions& o = d.settings.neural_cleanse;
    j["options"] = BasicJson{{"lr", o.lr}, {"beta1", o.beta1}, {"beta2", o.beta2}, {"init_cost", o.init_cost},
                             {"attack_success_threshold", o.attack_success_threshold}, {"patience", o.patience},
                             {"cost_multiplier", o.cost_multiplier}, {"early_stop", o.early_stop}, {"early_stop_threshold", o.early_stop_threshold},
                             {"early_stop_patience", o.early_stop_patience}, {"batch_size", o.batch_size}, {"batches_per_epoch", o.batches_per_epoch},
                             {"max_epochs", o.max_epochs}, {"anomaly_threshold", o.anomaly_threshold}, {"seed", o.seed}};
    const UnlearningOptions& u = d.settings.unlearning;
    if (d.settings.unlearn)
        j["unlearning"] = BasicJson{{"clean_share", u.clean_share}, {"stamped_share", u.stamped_share}, {"epochs", u.epochs},
                                    {"batch_size", u.batch_size}, {"lr", u.lr}, {"seed", u.seed}};
}

namespace defend_detail {

/// STRIP as an input filter on the first `inputs` test images and their triggered copies; see the top of the file.
/// Returns the detection result; `before` and `after` get the metrics without and with the filter.
inline StripDefenseResult strip_filter(Sequential<float>& model, const Dataset<float>& test, const Dataset<float>& overlays,
                                       const AttackSpec& attack, const StripDefense& d, Index eval_batch, AttackMetrics& before,
                                       AttackMetrics& after) {
    if (overlays.size() < 1) throw std::invalid_argument("strip: the defender holds no clean images to superimpose");
    const Dataset<float> clean = test.head(std::min(d.settings.inputs, test.size()));
    Dataset<float> triggered = clean;
    attack.stamp(triggered);
    std::vector<std::size_t> keep;  // BackdoorBench's non-target set: inputs whose poisoned label differs from theirs
    for (std::size_t i = 0; i < triggered.labels.size(); ++i)
        if (attack.label_mode().poisoned_label(triggered.labels[i]) != triggered.labels[i]) keep.push_back(i);
    triggered = triggered.subset(keep);
    const auto t0 = std::chrono::steady_clock::now();
    const std::vector<double> h_clean = strip_entropies(model, clean.images, overlays.images, d.settings.strip);
    const std::vector<double> h_triggered = strip_entropies(model, triggered.images, overlays.images, d.settings.strip);
    StripDefenseResult r;
    r.strip = strip_detection(h_clean, h_triggered, d.settings.strip);
    r.strip.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();  // as run_strip's
    r.clean_inputs = clean.labels.size(), r.triggered_inputs = triggered.labels.size(), r.overlay_images = overlays.labels.size();
    const double threshold = r.strip.operating_points.at(0).threshold;  // at the first preset FRR
    std::vector<int> clean_pred = predict(model, clean, eval_batch), triggered_pred = predict(model, triggered, eval_batch);
    before = attack_metrics(clean_pred, clean.labels, triggered_pred, triggered.labels, attack.label_mode());
    constexpr int rejected = -1;  // no label: neither correct nor the attacker's
    for (std::size_t i = 0; i < clean_pred.size(); ++i)
        if (h_clean[i] <= threshold) clean_pred[i] = rejected;
    for (std::size_t i = 0; i < triggered_pred.size(); ++i)
        if (h_triggered[i] <= threshold) triggered_pred[i] = rejected;
    after = attack_metrics(clean_pred, clean.labels, triggered_pred, triggered.labels, attack.label_mode());
    return r;
}

}  // namespace defend_detail

}  // namespace eigencnn
