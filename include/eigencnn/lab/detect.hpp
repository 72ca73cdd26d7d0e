// SPDX-License-Identifier: MIT
// eigencnn/lab/detect.hpp
//
// The detection defenses in the laboratory: STRIP and Neural Cleanse (with
// unlearning) against a model, attacked or of unknown origin, on MNIST-format
// data. Each function is self-contained, so that it can join a defense table:
//
//   StripDefenseResult s = run_strip_defense(model, test, &attack, StripDefenseSettings{});
//   NeuralCleanseDefenseResult n = run_neural_cleanse_defense(model, clean_train, test, &attack, NeuralCleanseDefenseSettings{});
//   DetectionCellResult d = run_detection_cell(train, test, LabSettings{}, attack, seed, DetectionSettings{});
//
// Data split of the 10,000-image test set (test [N, 1, 28, 28]):
//   STRIP: overlays = test images [N/2, N) (held out); clean inputs = the first `inputs` (2,000) images;
//          triggered inputs = the same images with the attack's trigger, minus those whose poisoned
//          label is their true label (BackdoorBench's non-target set). Without an attack (a scan):
//          the clean entropies, the fit and the thresholds only.
//   Neural Cleanse: reverse-engineers on `clean_images` (1,000) clean images: the clean training set's
//          first ones when given (the defender's clean data), else the test set's (the official code
//          uses the test set); unlearning draws its share from the clean training set.
// C-Acc, ASR and R-Acc before and after unlearning: backdoor/metrics.hpp on the whole test set.
// run_neural_cleanse_defense modifies the model in place (unlearning) when a label is flagged.
// run_detection_cell trains the attacked model with run_attack_cell and runs both on copies of it.
// JSON: to_json beside each result; NaN-free; seconds in members ending in "seconds".
#pragma once

#include "../backdoor/defenses/neural_cleanse.hpp"
#include "../backdoor/defenses/strip.hpp"
#include "../io/png.hpp"
#include "cell.hpp"
#include "json.hpp"  // to_json of AttackCellResult, for DetectionCellResult

namespace eigencnn {

struct StripDefenseSettings {
    StripOptions strip;
    Index inputs = 2000;  ///< clean inputs (and as many triggered) tested, from the first half of the test set
};

struct StripDefenseResult {
    StripResult strip;
    std::size_t clean_inputs = 0, triggered_inputs = 0, overlay_images = 0;
};

/// STRIP on `model` with the test set's second half as overlays; `attack` may be null (no trigger known).
inline StripDefenseResult run_strip_defense(Sequential<float>& model, const Dataset<float>& test, const AttackSpec* attack,
                                            const StripDefenseSettings& s) {
    if (s.inputs < 1) throw std::invalid_argument("strip: inputs must be >= 1, got " + std::to_string(s.inputs));
    if (test.size() < 2) throw std::invalid_argument("strip: the test set needs at least 2 images, has " + std::to_string(test.size()));
    const Index half = test.size() / 2, n = std::min(s.inputs, half);
    std::vector<std::size_t> overlay_idx;
    for (Index i = half; i < test.size(); ++i) overlay_idx.push_back(static_cast<std::size_t>(i));
    const Dataset<float> overlays = test.subset(overlay_idx);
    const Dataset<float> clean = test.head(n);
    Tensor<float> triggered_images;
    if (attack) {
        Dataset<float> stamped = clean;
        attack->stamp(stamped);
        std::vector<std::size_t> keep;
        for (std::size_t i = 0; i < stamped.labels.size(); ++i)
            if (attack->label_mode().poisoned_label(stamped.labels[i]) != stamped.labels[i]) keep.push_back(i);
        triggered_images = stamped.subset(keep).images;
    }
    StripDefenseResult r;
    r.strip = run_strip(model, clean.images, triggered_images, overlays.images, s.strip);
    r.clean_inputs = static_cast<std::size_t>(n);
    r.triggered_inputs = triggered_images.shape().rank() == 4 ? static_cast<std::size_t>(triggered_images.dim(0)) : 0;
    r.overlay_images = overlay_idx.size();
    return r;
}

struct NeuralCleanseDefenseSettings {
    NeuralCleanseOptions neural_cleanse;
    Index clean_images = 1000;  ///< images the triggers are reverse-engineered on
    bool unlearn = true;        ///< fine-tune with the flagged labels' reversed triggers
    UnlearningOptions unlearning;
    Index eval_batch_size = 1000;
};

struct NeuralCleanseDefenseResult {
    NeuralCleanseResult<float> detection;
    std::optional<int> true_target;          ///< the attack's all-to-one target (none: all-to-all or no attack)
    bool true_target_flagged = false;
    std::optional<UnlearningResult> unlearning;  ///< none when no label was flagged or unlearning is off
    std::optional<AttackMetrics> before, after;  ///< with an attack: the model's metrics before and after unlearning
    std::optional<double> clean_accuracy_before, clean_accuracy_after;  ///< without an attack
};

namespace detect_detail {
inline Dataset<float> first_images(const Dataset<float>& d, Index n) { return d.head(std::min(n, d.size())); }

inline void measure(Sequential<float>& model, const Dataset<float>& test, const Dataset<float>* triggered, const AttackSpec* attack,
                    Index batch, std::optional<AttackMetrics>& metrics, std::optional<double>& accuracy) {
    const std::vector<int> clean_pred = predict(model, test, batch);
    if (attack) metrics = attack_metrics(clean_pred, test.labels, predict(model, *triggered, batch), test.labels, attack->label_mode());
    else accuracy = clean_accuracy(clean_pred, test.labels);
}
}  // namespace detect_detail

/// Neural Cleanse on `model` (images from `clean_train` when it is non-empty, else from `test`), then unlearning
/// of the flagged labels' triggers on `clean_train` (modifying `model`). `attack` may be null.
inline NeuralCleanseDefenseResult run_neural_cleanse_defense(Sequential<float>& model, const Dataset<float>& clean_train, const Dataset<float>& test,
                                                             const AttackSpec* attack, const NeuralCleanseDefenseSettings& s,
                                                             const std::function<void(const ReversedTrigger<float>&)>& on_label = {}) {
    if (s.clean_images < 1) throw std::invalid_argument("neural-cleanse: clean_images must be >= 1, got " + std::to_string(s.clean_images));
    if (s.eval_batch_size < 1) throw std::invalid_argument("neural-cleanse: eval_batch_size must be >= 1");
    s.neural_cleanse.validate();
    if (s.unlearn) s.unlearning.validate();
    const Dataset<float>& source = clean_train.size() > 0 ? clean_train : test;
    NeuralCleanseDefenseResult r;
    std::optional<Dataset<float>> triggered;
    if (attack) {
        triggered = triggered_copy(*attack, test);
        if (!attack->label_mode().all_to_all_mode()) r.true_target = attack->label_mode().target;
    }
    detect_detail::measure(model, test, triggered ? &*triggered : nullptr, attack, s.eval_batch_size, r.before, r.clean_accuracy_before);
    r.detection = run_neural_cleanse(model, detect_detail::first_images(source, s.clean_images).images, s.neural_cleanse, on_label);
    if (r.true_target)
        r.true_target_flagged = std::find(r.detection.flagged_labels.begin(), r.detection.flagged_labels.end(), *r.true_target) !=
                                r.detection.flagged_labels.end();
    if (s.unlearn && !r.detection.flagged_labels.empty()) {
        if (clean_train.size() == 0) throw std::invalid_argument("neural-cleanse: unlearning needs clean training data");
        std::vector<const ReversedTrigger<float>*> flagged;
        for (int label : r.detection.flagged_labels) flagged.push_back(&r.detection.triggers[static_cast<std::size_t>(label)]);
        r.unlearning = unlearn_reversed_triggers(model, clean_train, flagged, s.unlearning);
        detect_detail::measure(model, test, triggered ? &*triggered : nullptr, attack, s.eval_batch_size, r.after, r.clean_accuracy_after);
    } else {
        r.after = r.before, r.clean_accuracy_after = r.clean_accuracy_before;
    }
    return r;
}

/// The real trigger of `attack` on images of `sample_shape` [1, C, H, W], as a mask [1, 1, H, W] (pixels the
/// stamp changes on a black or a white image) and the stamp on black [1, C, H, W] (mask * pattern).
inline std::pair<Tensor<float>, Tensor<float>> real_trigger(const AttackSpec& attack, const Shape& sample_shape) {
    Dataset<float> black{Tensor<float>(sample_shape, 0.0f), {0}}, white{Tensor<float>(sample_shape, 1.0f), {0}};
    attack.stamp(black), attack.stamp(white);
    const Index C = sample_shape[1], HW = sample_shape[2] * sample_shape[3];
    Tensor<float> mask(Shape{1, 1, sample_shape[2], sample_shape[3]});
    for (Index c = 0; c < C; ++c)
        for (Index k = 0; k < HW; ++k)
            if (black.images[c * HW + k] != 0.0f || white.images[c * HW + k] != 1.0f) mask[k] = 1.0f;
    return {mask, black.images};
}

/// A PNG of every label's reversed trigger: row 1 the masks, row 2 mask * pattern, one column per label
/// (captioned with the label; flagged labels in red); with `real` (real_trigger), a last column, captioned
/// "-", shows the real trigger the same way.
inline void write_reversed_triggers_png(const std::string& path, const NeuralCleanseResult<float>& r,
                                        const std::optional<std::pair<Tensor<float>, Tensor<float>>>& real = std::nullopt, int scale = 3) {
    if (r.triggers.empty()) throw std::invalid_argument("write_reversed_triggers_png: " + path + ": no reversed triggers");
    const Shape& ps = r.triggers[0].pattern.shape();
    const Index C = ps[1], HW = ps[2] * ps[3], K = static_cast<Index>(r.triggers.size()), cols = K + (real ? 1 : 0);
    Tensor<float> grid(Shape{2 * cols, C, ps[2], ps[3]});
    std::vector<std::string> captions(static_cast<std::size_t>(2 * cols));
    std::vector<Rgb> colors(static_cast<std::size_t>(2 * cols), Rgb{{230, 230, 230}});
    auto put = [&](Index col, const Tensor<float>& mask, const Tensor<float>& fused, const std::string& caption, Rgb color) {
        for (Index c = 0; c < C; ++c)
            for (Index k = 0; k < HW; ++k) {
                grid[(col * C + c) * HW + k] = mask[k];
                grid[((cols + col) * C + c) * HW + k] = fused[c * HW + k];
            }
        for (Index row : {Index{0}, cols}) captions[static_cast<std::size_t>(row + col)] = caption, colors[static_cast<std::size_t>(row + col)] = color;
    };
    for (Index t = 0; t < K; ++t) {
        const ReversedTrigger<float>& rt = r.triggers[static_cast<std::size_t>(t)];
        Tensor<float> fused(rt.pattern.shape());
        for (Index c = 0; c < C; ++c)
            for (Index k = 0; k < HW; ++k) fused[c * HW + k] = rt.mask[k] * rt.pattern[c * HW + k];
        const bool flagged = std::find(r.flagged_labels.begin(), r.flagged_labels.end(), rt.label) != r.flagged_labels.end();
        put(t, rt.mask, fused, std::to_string(rt.label), flagged ? Rgb{{255, 110, 110}} : Rgb{{230, 230, 230}});
    }
    if (real) put(K, real->first, real->second, "-", Rgb{{120, 220, 120}});
    write_image_grid(path, grid, captions, colors, static_cast<int>(cols), scale);
}

/// STRIP and Neural Cleanse against one attack cell.
struct DetectionSettings {
    bool strip = true, neural_cleanse = true;
    StripDefenseSettings strip_settings;
    NeuralCleanseDefenseSettings neural_cleanse_settings;
};

struct DetectionCellResult {
    AttackCellResult cell;
    std::optional<StripDefenseResult> strip;
    std::optional<NeuralCleanseDefenseResult> neural_cleanse;
};

namespace detect_detail {
/// Copies the trained model's parameters and buffers into `copy` (the same architecture, mnist_cnn).
struct CopyTrained : CellObserver {
    explicit CopyTrained(Sequential<float>& copy, CellObserver* inner) : copy_(copy), inner_(inner) {}
    std::vector<Callback*> training_callbacks(const std::string& name) override { return inner_ ? inner_->training_callbacks(name) : std::vector<Callback*>{}; }
    void on_pgd_progress(std::size_t d, std::size_t t, double l) override { if (inner_) inner_->on_pgd_progress(d, t, l); }
    void on_poisoned(const Dataset<float>& c, const Dataset<float>& p, const PoisonResult& r) override { if (inner_) inner_->on_poisoned(c, p, r); }
    void on_trained(Sequential<float>& model) override {
        auto from = model.parameters(), to = copy_.parameters();
        auto bfrom = model.buffers(), bto = copy_.buffers();
        if (from.size() != to.size() || bfrom.size() != bto.size()) throw std::logic_error("run_detection_cell: the copy's architecture differs");
        for (std::size_t i = 0; i < from.size(); ++i) *to[i].value = *from[i].value;
        for (std::size_t i = 0; i < bfrom.size(); ++i) *bto[i].value = *bfrom[i].value;
        if (inner_) inner_->on_trained(model);
    }
    Sequential<float>& copy_;
    CellObserver* inner_;
};
}  // namespace detect_detail

/// Train the attacked model (run_attack_cell), then run STRIP and Neural Cleanse (on its own copy: unlearning
/// changes it) against it.
inline DetectionCellResult run_detection_cell(const Dataset<float>& train, const Dataset<float>& test, const LabSettings& settings,
                                              const AttackSpec& attack, std::uint64_t seed, const DetectionSettings& d,
                                              CellObserver* observer = nullptr) {
    Sequential<float> trained = mnist_cnn<float>(seed);
    detect_detail::CopyTrained copier(trained, observer);
    DetectionCellResult r;
    r.cell = run_attack_cell(train, test, settings, attack, seed, &copier);
    if (d.strip) r.strip = run_strip_defense(trained, test, &attack, d.strip_settings);
    if (d.neural_cleanse) r.neural_cleanse = run_neural_cleanse_defense(trained, train, test, &attack, d.neural_cleanse_settings);
    return r;
}

template <typename BasicJson>
void to_json(BasicJson& j, const StripDefenseResult& r) {
    j = r.strip;
    j["clean_inputs"] = r.clean_inputs;
    j["triggered_inputs"] = r.triggered_inputs;
    j["overlay_images"] = r.overlay_images;
}

template <typename BasicJson>
void to_json(BasicJson& j, const NeuralCleanseDefenseResult& r) {
    j = r.detection;  // defense, l1_norms, median_l1, anomaly_index, flagged_labels, labels, seconds
    j["true_target"] = r.true_target ? BasicJson(*r.true_target) : BasicJson(nullptr);
    j["true_target_flagged"] = r.true_target ? BasicJson(r.true_target_flagged) : BasicJson(nullptr);
    j["unlearning"] = r.unlearning ? BasicJson(*r.unlearning) : BasicJson(nullptr);
    j["before"] = r.before ? BasicJson(*r.before) : BasicJson(nullptr);
    j["after"] = r.after ? BasicJson(*r.after) : BasicJson(nullptr);
    j["clean_accuracy_before"] = r.clean_accuracy_before ? BasicJson(*r.clean_accuracy_before) : BasicJson(nullptr);
    j["clean_accuracy_after"] = r.clean_accuracy_after ? BasicJson(*r.clean_accuracy_after) : BasicJson(nullptr);
}

template <typename BasicJson>
void to_json(BasicJson& j, const DetectionCellResult& r) {
    j = BasicJson::object();
    j["cell"] = r.cell;
    j["strip"] = r.strip ? BasicJson(*r.strip) : BasicJson(nullptr);
    j["neural_cleanse"] = r.neural_cleanse ? BasicJson(*r.neural_cleanse) : BasicJson(nullptr);
}

}  // namespace eigencnn
