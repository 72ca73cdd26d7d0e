// SPDX-License-Identifier: MIT
// eigencnn/backdoor/metrics.hpp
//
// The attack metrics as BackdoorBench defines them (Wu et al. 2022,
// "BackdoorBench: A Comprehensive Benchmark of Backdoor Learning"), from
// predictions alone, so they do not depend on a model API:
//
//   clean_accuracy (C-Acc)           share of clean test images predicted as their label
//   attack_success_rate              share of ALL triggered test images predicted as
//                                    label_mode(y) (the notebook's ASR; with all-to-one it
//                                    counts target-class images that already were the target)
//   attack_success_rate_non_target   the same among triggered images with label_mode(y) != y
//                                    (BackdoorBench's ASR: it drops the target class)
//   robust_accuracy (R-Acc)          share of those non-target triggered images still
//                                    predicted as their true label y
//
// For all-to-all, label_mode(y) = (y + 1) mod K, so every image is non-target
// and both ASRs agree. Predictions and labels are std::vector<int>, one per image.
#pragma once

#include "attack.hpp"

#include <stdexcept>
#include <string>
#include <vector>

namespace eigencnn {

struct AttackMetrics {
    double clean_accuracy = 0;
    double attack_success_rate = 0;
    double attack_success_rate_non_target = 0;
    double robust_accuracy = 0;
    std::size_t clean_count = 0;       ///< clean test images
    std::size_t triggered_count = 0;   ///< triggered test images
    std::size_t non_target_count = 0;  ///< triggered images whose poisoned label differs from the true one
};

namespace metrics_detail {
inline void check_sizes(const std::string& what, const std::vector<int>& predictions, const std::vector<int>& labels) {
    if (predictions.size() != labels.size())
        throw std::invalid_argument(what + ": " + std::to_string(predictions.size()) + " predictions for " + std::to_string(labels.size()) + " labels");
    if (predictions.empty()) throw std::invalid_argument(what + ": no predictions");
}
}  // namespace metrics_detail

/// Share of predictions equal to their label.
inline double clean_accuracy(const std::vector<int>& predictions, const std::vector<int>& labels) {
    metrics_detail::check_sizes("clean_accuracy", predictions, labels);
    std::size_t right = 0;
    for (std::size_t i = 0; i < labels.size(); ++i) right += predictions[i] == labels[i];
    return static_cast<double>(right) / static_cast<double>(labels.size());
}

/// All four metrics. clean_*: predictions on the clean test set and its labels;
/// triggered_*: predictions on the triggered test images and their TRUE labels.
inline AttackMetrics attack_metrics(const std::vector<int>& clean_predictions, const std::vector<int>& clean_labels,
                                    const std::vector<int>& triggered_predictions, const std::vector<int>& triggered_labels,
                                    const LabelMode& label_mode) {
    metrics_detail::check_sizes("attack_metrics (triggered)", triggered_predictions, triggered_labels);
    AttackMetrics m;
    m.clean_accuracy = clean_accuracy(clean_predictions, clean_labels);
    m.clean_count = clean_labels.size();
    m.triggered_count = triggered_labels.size();
    std::size_t success = 0, success_nt = 0, robust = 0;
    for (std::size_t i = 0; i < triggered_labels.size(); ++i) {
        const int y = triggered_labels[i], wanted = label_mode.poisoned_label(y), p = triggered_predictions[i];
        success += p == wanted;
        if (wanted != y) {
            ++m.non_target_count;
            success_nt += p == wanted;
            robust += p == y;
        }
    }
    const auto share = [](std::size_t k, std::size_t n) { return n ? static_cast<double>(k) / static_cast<double>(n) : 0.0; };
    m.attack_success_rate = share(success, m.triggered_count);
    m.attack_success_rate_non_target = share(success_nt, m.non_target_count);
    m.robust_accuracy = share(robust, m.non_target_count);
    return m;
}

}  // namespace eigencnn
