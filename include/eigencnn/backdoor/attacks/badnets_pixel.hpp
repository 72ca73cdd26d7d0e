// SPDX-License-Identifier: MIT
// eigencnn/backdoor/attacks/badnets_pixel.hpp
//
// badnets-pixel: the notebook's one-pixel trigger (BadNets, Gu, Dolan-Gavitt
// and Garg 2017, "BadNets: Identifying Vulnerabilities in the Machine
// Learning Model Supply Chain", single-pixel backdoor).
//
//   x'[c, row, col] = value   for every channel c; all other pixels unchanged
//   y' = label_mode(y)        (default all-to-one, target 8)
//
// Images [N, C, H, W]. With the defaults (row 3, col 3, value 1.0, rate 1%,
// target 8) poison() picks exactly the samples add_trigger(data, 0.01, seed, 8)
// picks and changes them in the same way.
#pragma once

#include "../attack.hpp"

namespace eigencnn {

struct BadNetsPixel {
    static constexpr const char* name = "badnets-pixel";
    double poison_rate = 0.01;  ///< share of the training set poisoned
    LabelMode label_mode = LabelMode::all_to_one(8);
    Index row = 3;
    Index col = 3;
    double value = 1.0;

    void validate(const Shape& sample_shape, int num_classes) const {
        attack_detail::check_sample_shape(name, sample_shape);
        attack_detail::check_unit_interval(name, "poison_rate", poison_rate);
        attack_detail::check_unit_interval(name, "value", value);
        label_mode.validate(num_classes, name);
        if (row < 0 || row >= sample_shape[2] || col < 0 || col >= sample_shape[3])
            throw std::invalid_argument(std::string(name) + ": row, col (" + std::to_string(row) + ", " + std::to_string(col) +
                                        ") is outside images of shape " + sample_shape.str());
    }

    template <typename T>
    void stamp(ImageRef<T> image) const {
        for (Index c = 0; c < image.channels; ++c) image(c, row, col) = static_cast<T>(value);
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
        return attack_detail::poison_dirty_label(train, poison_rate, seed, label_mode, [&](ImageRef<T> im) { stamp(im); });
    }
};

}  // namespace eigencnn
