// SPDX-License-Identifier: MIT
// eigencnn/backdoor/attacks/blended.hpp
//
// blended: blend a fixed pattern into the image (Chen, Liu, Li, Lu and Song
// 2017, "Targeted Backdoor Attacks on Deep Learning Systems Using Data
// Poisoning", blended injection strategy).
//
//   x' = (1 - alpha) x + alpha P,   alpha = 0.2 (the paper's and BackdoorBench's)
//   y' = label_mode(y)              (default all-to-one, target 0)
//
// P [C, H, W] in [0, 1] is either
//   - random noise: P[c, y, x] ~ U[0, 1) drawn in that (c, y, x) order from
//     Rng(noise_seed) (the paper's "random pattern", each pixel uniform), or
//   - an image file (trigger_image: PNG, JPEG, ... read with stb_image),
//     converted to C channels and resized to H x W (see image_file.hpp).
// P depends only on the attack's parameters and the sample shape, so the
// training and test triggers agree. BackdoorBench blends a Hello Kitty image
// by default; pass its file as trigger_image to match.
// Images [N, C, H, W]; C must be 1 or 3 when a file is used. Default rate 10%.
#pragma once

#include "../attack.hpp"
#include "../image_file.hpp"

namespace eigencnn {

struct Blended {
    static constexpr const char* name = "blended";
    double poison_rate = 0.1;
    LabelMode label_mode = LabelMode::all_to_one(0);
    double alpha = 0.2;               ///< blend ratio
    std::string trigger_image;        ///< image file; empty: seeded noise
    std::uint64_t noise_seed = 0;     ///< seed of the noise pattern

    /// The pattern P as [1, C, H, W] for samples of `sample_shape`.
    template <typename T = float>
    Tensor<T> pattern(const Shape& sample_shape) const {
        attack_detail::check_sample_shape(name, sample_shape);
        if (!trigger_image.empty())
            return read_trigger_image<T>(trigger_image, sample_shape[1], sample_shape[2], sample_shape[3], std::string(name) + ": trigger_image");
        Tensor<T> p(sample_shape.with_batch(1));
        Rng rng(noise_seed);
        for (Index i = 0; i < p.size(); ++i) p[i] = static_cast<T>(rng.uniform());
        return p;
    }

    void validate(const Shape& sample_shape, int num_classes) const {
        attack_detail::check_sample_shape(name, sample_shape);
        attack_detail::check_unit_interval(name, "poison_rate", poison_rate);
        attack_detail::check_unit_interval(name, "alpha (the blend ratio)", alpha);
        label_mode.validate(num_classes, name);
        if (!trigger_image.empty()) pattern<float>(sample_shape);  // throws naming the file when unreadable
    }

    /// x' = (1 - alpha) x + alpha P for one image, P from pattern().
    template <typename T>
    void blend(ImageRef<T> image, const Tensor<T>& p) const {
        const T a = static_cast<T>(alpha);
        for (Index k = 0; k < image.size(); ++k) image.data[k] = (T(1) - a) * image.data[k] + a * p[k];
    }
    /// One image (computes or reads P for it: stamp a Dataset to do that once).
    template <typename T>
    void stamp(ImageRef<T> image) const {
        blend(image, pattern<T>(Shape{1, image.channels, image.height, image.width}));
    }
    template <typename T>
    void stamp(Dataset<T>& data) const {
        attack_detail::check_dataset(name, data);
        validate(data.sample_shape(), label_mode.num_classes);
        const Tensor<T> p = pattern<T>(data.sample_shape());
        for (Index i = 0; i < data.size(); ++i) blend(image_ref(data.images, i), p);
    }
    template <typename T>
    PoisonResult poison(Dataset<T>& train, std::uint64_t seed) const {
        attack_detail::check_dataset(name, train);
        validate(train.sample_shape(), label_mode.num_classes);
        const Tensor<T> p = pattern<T>(train.sample_shape());
        return attack_detail::poison_dirty_label(train, poison_rate, seed, label_mode, [&](ImageRef<T> im) { blend(im, p); });
    }
};

}  // namespace eigencnn
