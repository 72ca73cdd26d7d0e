// SPDX-License-Identifier: MIT
// eigencnn/backdoor/attack.hpp
//
// The interface every backdoor attack in backdoor/attacks/ follows, and the
// pieces they share. Images are Dataset<T>::images [N, C, H, W] in [0, 1].
//
// An attack is a value type: a struct of its parameters (named as in
// BackdoorBench / the papers, the reference settings as defaults) with
//
//   void validate(const Shape& sample_shape, int num_classes) const;
//       throws std::invalid_argument "<attack>: <parameter> ..." for a
//       parameter that cannot work on samples [1, C, H, W] with K classes
//   PoisonResult poison(Dataset<T>& train, std::uint64_t seed) const;
//       poisons the training set in place, the sample choice drawn from
//       Rng(seed); returns the poisoned indices in draw order
//   void stamp(ImageRef<T> image) const;   // the trigger on one image
//   void stamp(Dataset<T>& data) const;    // on every image; labels kept
//   LabelMode label_mode;                  // which label a triggered image should get
//
// Label modes (any dirty-label attack; the clean-label ones, sig and
// label-consistent, only poison the target class and accept all-to-one only):
//   all-to-one  y -> target
//   all-to-all  y -> (y + 1) mod K        (BackdoorBench, WaNet)
//
// Dirty-label poisoning draws int(rate * N) distinct samples with
// Rng(seed).choice(N, .) from the whole training set, as the notebook's
// add_trigger does (BackdoorBench's all-to-one draws from the non-target
// samples only; we follow the notebook and BadNets, which draw from all).
// backdoor/attacks.hpp collects the attacks and selects them by name.
#pragma once

#include "../core/random.hpp"
#include "../data/dataset.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

namespace eigencnn {

/// Which label a triggered image should be classified as.
struct LabelMode {
    enum class Kind { AllToOne, AllToAll };
    Kind kind = Kind::AllToOne;
    int target = 0;        ///< all-to-one: the target label
    int num_classes = 10;  ///< K, the number of labels of the data

    static LabelMode all_to_one(int target, int num_classes = 10) { return {Kind::AllToOne, target, num_classes}; }
    static LabelMode all_to_all(int num_classes = 10) { return {Kind::AllToAll, 0, num_classes}; }

    bool all_to_all_mode() const { return kind == Kind::AllToAll; }
    /// The label the attacker wants for an image of true label y.
    int poisoned_label(int y) const { return kind == Kind::AllToOne ? target : (y + 1) % num_classes; }
    std::string str() const {
        return kind == Kind::AllToOne ? "all-to-one (target " + std::to_string(target) + ")"
                                      : "all-to-all (y -> (y + 1) mod " + std::to_string(num_classes) + ")";
    }

    /// Throws std::invalid_argument, naming `attack`, unless the mode fits data of `classes` labels.
    void validate(int classes, const std::string& attack) const {
        if (classes < 2) throw std::invalid_argument(attack + ": num_classes must be >= 2, got " + std::to_string(classes));
        if (num_classes != classes)
            throw std::invalid_argument(attack + ": label_mode.num_classes is " + std::to_string(num_classes) + " but the data has " +
                                        std::to_string(classes) + " classes");
        if (kind == Kind::AllToOne && (target < 0 || target >= classes))
            throw std::invalid_argument(attack + ": target " + std::to_string(target) + " is outside the labels [0, " +
                                        std::to_string(classes) + ")");
    }
};

/// What poison() did.
struct PoisonResult {
    std::vector<std::size_t> poisoned_indices;  ///< samples that now carry the trigger, in draw order
    /// True when the attack poisons during training (WaNet): the training set
    /// is untouched and the caller must install the attack's batch_transform.
    bool per_batch = false;
};

/// One image [C, H, W] inside a tensor: a view, as a span would be.
template <typename T>
struct ImageRef {
    T* data;
    Index channels, height, width;
    T& operator()(Index c, Index y, Index x) const { return data[(c * height + y) * width + x]; }
    Index size() const { return channels * height * width; }
};

/// Image i of images [N, C, H, W].
template <typename T>
ImageRef<T> image_ref(Tensor<T>& images, Index i) {
    const Shape& s = images.shape();
    return ImageRef<T>{images.data() + i * s.sample_size(), s[1], s[2], s[3]};
}

namespace attack_detail {

inline void check_unit_interval(const std::string& attack, const std::string& parameter, double value) {
    if (!(value >= 0.0 && value <= 1.0))
        throw std::invalid_argument(attack + ": " + parameter + " must be in [0, 1], got " + std::to_string(value));
}

/// Samples must be [1, C, H, W] with C, H, W >= 1.
inline void check_sample_shape(const std::string& attack, const Shape& sample_shape) {
    if (sample_shape.rank() != 4 || sample_shape[1] < 1 || sample_shape[2] < 1 || sample_shape[3] < 1)
        throw std::invalid_argument(attack + ": samples must be images [1, C, H, W], got " + sample_shape.str());
}

template <typename T>
void check_dataset(const std::string& attack, const Dataset<T>& data) {
    if (data.images.shape().rank() != 4 || data.images.dim(0) != data.size())
        throw std::invalid_argument(attack + ": images " + data.images.shape().str() + " do not match " + std::to_string(data.size()) +
                                    " labels");
}

/// int(rate * n), as the notebook (and Python's int()) truncates.
inline std::size_t count_for_rate(double rate, std::size_t n) {
    return static_cast<std::size_t>(std::floor(rate * static_cast<double>(n)));
}

/// Dirty-label poisoning: int(rate * N) samples drawn with Rng(seed) get the
/// trigger (stamp_one(ImageRef)) and the label mode's label.
template <typename T, typename StampOne>
PoisonResult poison_dirty_label(Dataset<T>& train, double rate, std::uint64_t seed, const LabelMode& mode, StampOne&& stamp_one) {
    const auto n = static_cast<std::size_t>(train.size());
    Rng rng(seed);
    PoisonResult result;
    result.poisoned_indices = rng.choice(n, count_for_rate(rate, n));
    for (std::size_t i : result.poisoned_indices) {
        stamp_one(image_ref(train.images, static_cast<Index>(i)));
        train.labels[i] = mode.poisoned_label(train.labels[i]);
    }
    return result;
}

/// Clean-label choice: `count` (at most the class size) samples of label
/// `target`, drawn with Rng(seed), in draw order.
template <typename T>
std::vector<std::size_t> choose_in_class(const Dataset<T>& train, int target, std::size_t count, std::uint64_t seed) {
    std::vector<std::size_t> in_class;
    for (std::size_t i = 0; i < train.labels.size(); ++i)
        if (train.labels[i] == target) in_class.push_back(i);
    Rng rng(seed);
    auto picks = rng.choice(in_class.size(), std::min(count, in_class.size()));
    for (auto& p : picks) p = in_class[p];
    return picks;
}

inline void require_all_to_one(const std::string& attack, const LabelMode& mode) {
    if (mode.kind != LabelMode::Kind::AllToOne)
        throw std::invalid_argument(attack + ": label_mode must be all-to-one: a clean-label attack poisons the target class only");
}

}  // namespace attack_detail

/// A copy of `data` with `attack`'s trigger on every image; labels stay the true ones.
template <typename Attack, typename T>
Dataset<T> triggered_copy(const Attack& attack, const Dataset<T>& data) {
    Dataset<T> out = data;
    attack.stamp(out);
    return out;
}

}  // namespace eigencnn
