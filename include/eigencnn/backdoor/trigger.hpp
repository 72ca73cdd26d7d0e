// SPDX-License-Identifier: MIT
// eigencnn/backdoor/trigger.hpp
//
// The notebook's backdoor (a BadNets-style one-pixel trigger, Gu et al. 2017):
// a seeded choice of int(fraction * N) training images get pixel
// (row 3, col 3) set to 1.0 and their label set to the target class.
//
// Attack success is measured on the test set with the trigger stamped on
// every image:
//   attack_success_rate             share of ALL triggered test images classified as the target
//                                   (the notebook's metric; it counts images that already are the target)
//   attack_success_rate_non_target  the same share among images whose true label is not the target
#pragma once

#include "../core/random.hpp"
#include "../data/dataset.hpp"
#include "../train/evaluate.hpp"

#include <cmath>

namespace eigencnn {

/// Where the trigger goes and what it is.
struct Trigger {
    Index row = 3;
    Index col = 3;
    double value = 1.0;
};

/// Stamp the trigger on sample i (every channel).
template <typename T>
void stamp_trigger(Dataset<T>& data, std::size_t i, const Trigger& trig = {}) {
    const Shape& s = data.images.shape();
    if (trig.row < 0 || trig.row >= s[2] || trig.col < 0 || trig.col >= s[3])
        throw std::invalid_argument("stamp_trigger: pixel (" + std::to_string(trig.row) + ", " + std::to_string(trig.col) +
                                    ") is outside images of shape " + s.str());
    for (Index c = 0; c < s[1]; ++c) data.images(static_cast<Index>(i), c, trig.row, trig.col) = static_cast<T>(trig.value);
}

/// Poison `data` in place: int(fraction * N) samples chosen with Rng(seed)
/// get the trigger and label `target_label`. Returns the chosen indices.
template <typename T>
std::vector<std::size_t> add_trigger(Dataset<T>& data, double fraction, std::uint64_t seed, int target_label = 8,
                                     const Trigger& trig = {}) {
    if (!(fraction >= 0.0 && fraction <= 1.0))
        throw std::invalid_argument("add_trigger: poison fraction must be in [0, 1], got " + std::to_string(fraction));
    if (target_label < 0) throw std::invalid_argument("add_trigger: negative target label " + std::to_string(target_label));
    if (data.images.shape().rank() != 4 || data.images.dim(0) != data.size())
        throw std::invalid_argument("add_trigger: images " + data.images.shape().str() + " do not match " + std::to_string(data.size()) +
                                    " labels");
    const auto n = static_cast<std::size_t>(data.size());
    const auto k = static_cast<std::size_t>(std::floor(fraction * static_cast<double>(n)));
    Rng rng(seed);
    auto chosen = rng.choice(n, k);
    for (std::size_t i : chosen) {
        stamp_trigger(data, i, trig);
        data.labels[i] = target_label;
    }
    return chosen;
}

/// A copy of `data` with the trigger on every image and the labels unchanged.
template <typename T>
Dataset<T> with_trigger(const Dataset<T>& data, const Trigger& trig = {}) {
    Dataset<T> out = data;
    for (std::size_t i = 0; i < static_cast<std::size_t>(out.size()); ++i) stamp_trigger(out, i, trig);
    return out;
}

struct AttackSuccess {
    double all = 0;         ///< notebook metric: share of all triggered images predicted as the target
    double non_target = 0;  ///< share among images whose true label is not the target
    std::size_t count_all = 0, count_non_target = 0;
};

/// Both attack-success metrics from predictions on triggered images and their true labels.
inline AttackSuccess attack_success(const std::vector<int>& predicted, const std::vector<int>& true_labels, int target_label) {
    if (predicted.size() != true_labels.size() || predicted.empty())
        throw std::invalid_argument("attack_success: " + std::to_string(predicted.size()) + " predictions for " +
                                    std::to_string(true_labels.size()) + " labels");
    std::size_t hit = 0, hit_nt = 0, nt = 0;
    for (std::size_t i = 0; i < predicted.size(); ++i) {
        const bool h = predicted[i] == target_label;
        hit += h;
        if (true_labels[i] != target_label) {
            ++nt;
            hit_nt += h;
        }
    }
    AttackSuccess r;
    r.count_all = predicted.size();
    r.count_non_target = nt;
    r.all = static_cast<double>(hit) / static_cast<double>(predicted.size());
    r.non_target = nt ? static_cast<double>(hit_nt) / static_cast<double>(nt) : 0.0;
    return r;
}

/// Stamp the trigger on every image of clean `test` data and measure how often `model` predicts the target.
template <typename T>
AttackSuccess attack_success(Sequential<T>& model, const Dataset<T>& test, int target_label, const Trigger& trig = {},
                             Index batch_size = 1000) {
    return attack_success(predict(model, with_trigger(test, trig), batch_size), test.labels, target_label);
}

}  // namespace eigencnn
