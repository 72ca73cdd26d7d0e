// SPDX-License-Identifier: MIT
// eigencnn/backdoor/defense_metrics.hpp
//
// How well a defense did, from its outputs alone:
//
// Finding poisoned training samples (data-filtering defenses), from the
// flagged indices F and the truly poisoned ones P among n samples:
//   TP = |F & P|, FP = |F \ P|, FN = |P \ F|, TN = n - TP - FP - FN
//   TPR (recall) = TP / (TP + FN)    FPR = FP / (FP + TN)
//   precision = TP / (TP + FP)       F1 = 2 precision TPR / (precision + TPR)
//   a ratio with a zero denominator is 0 (sklearn's zero_division=0).
//
// The defense effectiveness rating of BackdoorBench (Wu et al. 2022), its
// "simplified" form, from the backdoored model's metrics before and after:
//   DER = [max(0, dASR) - max(0, dC-Acc) + 1] / 2,   in [0, 1]
//   dASR = ASR_before - ASR_after, dC-Acc = C-Acc_before - C-Acc_after,
//   ASR being BackdoorBench's (triggered images whose label changes:
//   AttackMetrics::attack_success_rate_non_target). 0.5 means no change; 1 a
//   backdoor removed at no accuracy cost. (BackdoorBench's code has a second
//   function that adds the accuracy term by mistake; this is the formula of its paper.)
//
// to_json beside each result (nlohmann-json; any BasicJson).
#pragma once

#include "metrics.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <stdexcept>
#include <string>
#include <vector>

namespace eigencnn {

struct DetectionMetrics {
    std::size_t samples = 0, flagged = 0, poisoned = 0;
    std::size_t true_positives = 0, false_positives = 0, false_negatives = 0, true_negatives = 0;
    double true_positive_rate = 0, false_positive_rate = 0, precision = 0, f1 = 0;
};

/// Detection metrics of `flagged` against the truly `poisoned` indices among `samples` samples.
/// Throws std::invalid_argument for an index >= samples or a repeated index.
inline DetectionMetrics detection_metrics(const std::vector<std::size_t>& flagged, const std::vector<std::size_t>& poisoned, std::size_t samples) {
    std::vector<char> is_flagged(samples, 0), is_poisoned(samples, 0);
    const auto mark = [&](const std::vector<std::size_t>& idx, std::vector<char>& to, const char* what) {
        for (std::size_t i : idx) {
            if (i >= samples)
                throw std::invalid_argument(std::string("detection_metrics: ") + what + " index " + std::to_string(i) + " is not below the " +
                                            std::to_string(samples) + " samples");
            if (to[i]) throw std::invalid_argument(std::string("detection_metrics: ") + what + " index " + std::to_string(i) + " appears twice");
            to[i] = 1;
        }
    };
    mark(flagged, is_flagged, "flagged");
    mark(poisoned, is_poisoned, "poisoned");
    DetectionMetrics m;
    m.samples = samples;
    m.flagged = flagged.size();
    m.poisoned = poisoned.size();
    for (std::size_t i = 0; i < samples; ++i) {
        m.true_positives += is_flagged[i] && is_poisoned[i];
        m.false_positives += is_flagged[i] && !is_poisoned[i];
        m.false_negatives += !is_flagged[i] && is_poisoned[i];
    }
    m.true_negatives = samples - m.true_positives - m.false_positives - m.false_negatives;
    const auto ratio = [](std::size_t a, std::size_t b) { return b ? static_cast<double>(a) / static_cast<double>(b) : 0.0; };
    m.true_positive_rate = ratio(m.true_positives, m.true_positives + m.false_negatives);
    m.false_positive_rate = ratio(m.false_positives, m.false_positives + m.true_negatives);
    m.precision = ratio(m.true_positives, m.true_positives + m.false_positives);
    const double s = m.precision + m.true_positive_rate;
    m.f1 = s > 0 ? 2 * m.precision * m.true_positive_rate / s : 0.0;
    return m;
}

/// BackdoorBench's DER from the metrics before and after a defense (see the top of the file).
inline double defense_effectiveness_rating(const AttackMetrics& before, const AttackMetrics& after) {
    const double d_asr = before.attack_success_rate_non_target - after.attack_success_rate_non_target;
    const double d_acc = before.clean_accuracy - after.clean_accuracy;
    return (std::max(0.0, d_asr) - std::max(0.0, d_acc) + 1) / 2;
}

/// The backdoored model before and after a defense, and the DER between them.
struct DefenseEffect {
    AttackMetrics before, after;
    double der = 0.5;
};

inline DefenseEffect defense_effect(const AttackMetrics& before, const AttackMetrics& after) {
    return {before, after, defense_effectiveness_rating(before, after)};
}

template <typename BasicJson>
void to_json(BasicJson& j, const DetectionMetrics& m) {
    j = BasicJson{{"samples", m.samples},
                  {"flagged", m.flagged},
                  {"poisoned", m.poisoned},
                  {"true_positives", m.true_positives},
                  {"false_positives", m.false_positives},
                  {"false_negatives", m.false_negatives},
                  {"true_negatives", m.true_negatives},
                  {"true_positive_rate", m.true_positive_rate},
                  {"false_positive_rate", m.false_positive_rate},
                  {"precision", m.precision},
                  {"f1", m.f1}};
}

namespace defense_detail {
template <typename BasicJson>
BasicJson rates(const AttackMetrics& m) {
    return BasicJson{{"clean_accuracy", m.clean_accuracy},
                     {"attack_success_rate", m.attack_success_rate},
                     {"attack_success_rate_non_target", m.attack_success_rate_non_target},
                     {"robust_accuracy", m.robust_accuracy}};
}
}  // namespace defense_detail

/// {"before": {clean_accuracy, attack_success_rate, attack_success_rate_non_target, robust_accuracy}, "after": {...}, "der"}
template <typename BasicJson>
void to_json(BasicJson& j, const DefenseEffect& e) {
    j = BasicJson{{"before", defense_detail::rates<BasicJson>(e.before)}, {"after", defense_detail::rates<BasicJson>(e.after)}, {"der", e.der}};
}

}  // namespace eigencnn
