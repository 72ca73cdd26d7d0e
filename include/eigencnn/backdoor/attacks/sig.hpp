// SPDX-License-Identifier: MIT
// eigencnn/backdoor/attacks/sig.hpp
//
// sig: a clean-label sinusoidal signal (Barni, Kallas and Tondi 2019, "A New
// Backdoor Attack in CNNs by Training Set Corruption Without Label
// Poisoning").
//
//   x'[c, i, j] = clip(x[c, i, j] + delta * sin(2 pi j f / W), 0, 1)
//   labels unchanged
//
// with delta = 40/255 and f = 6 (BackdoorBench's setting; the paper's MNIST
// experiments use delta = 20 on 0-255 images for training). Only training
// images of the target class are poisoned: the model learns to associate the
// signal with that class, and at test time the signal on any image pulls it
// there. poison_rate is a share of the WHOLE training set, capped at the size
// of the target class: int(rate * N) target-class images, drawn with Rng(seed).
// Default rate 10%, target 0, all-to-one only. Images [N, C, H, W].
#pragma once

#include "../attack.hpp"

namespace eigencnn {

struct Sig {
    static constexpr const char* name = "sig";
    double poison_rate = 0.1;
    LabelMode label_mode = LabelMode::all_to_one(0);
    double delta = 40.0 / 255.0;  ///< amplitude
    double frequency = 6.0;       ///< f: periods across the image width

    void validate(const Shape& sample_shape, int num_classes) const {
        attack_detail::check_sample_shape(name, sample_shape);
        attack_detail::check_unit_interval(name, "poison_rate", poison_rate);
        attack_detail::check_unit_interval(name, "delta", delta);
        attack_detail::require_all_to_one(name, label_mode);
        label_mode.validate(num_classes, name);
        if (!(frequency > 0.0 && std::isfinite(frequency)))
            throw std::invalid_argument(std::string(name) + ": frequency must be a positive number, got " + std::to_string(frequency));
    }

    /// delta * sin(2 pi j f / W) for column j of images W wide.
    double signal(Index j, Index width) const {
        const double pi = 3.14159265358979323846;
        return delta * std::sin(2.0 * pi * static_cast<double>(j) * frequency / static_cast<double>(width));
    }

    template <typename T>
    void stamp(ImageRef<T> image) const {
        std::vector<double> v(static_cast<std::size_t>(image.width));
        for (Index j = 0; j < image.width; ++j) v[static_cast<std::size_t>(j)] = signal(j, image.width);
        for (Index c = 0; c < image.channels; ++c)
            for (Index i = 0; i < image.height; ++i)
                for (Index j = 0; j < image.width; ++j) {
                    const double x = static_cast<double>(image(c, i, j)) + v[static_cast<std::size_t>(j)];
                    image(c, i, j) = static_cast<T>(std::min(1.0, std::max(0.0, x)));
                }
    }
    template <typename T>
    void stamp(Dataset<T>& data) const {
        attack_detail::check_dataset(name, data);
        validate(data.sample_shape(), label_mode.num_classes);
        for (Index i = 0; i < data.size(); ++i) stamp(image_ref(data.images, i));
    }
    template <typename T>
    PoisonResult poison(Dataset<T>& train, std::uint64_t seed) const {
        attack_detail::check_dataset(name, train);
        validate(train.sample_shape(), label_mode.num_classes);
        const std::size_t count = attack_detail::count_for_rate(poison_rate, train.labels.size());
        PoisonResult result;
        result.poisoned_indices = attack_detail::choose_in_class(train, label_mode.target, count, seed);
        for (std::size_t i : result.poisoned_indices) stamp(image_ref(train.images, static_cast<Index>(i)));
        return result;
    }
};

}  // namespace eigencnn
