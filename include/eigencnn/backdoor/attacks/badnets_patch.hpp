// SPDX-License-Identifier: MIT
// eigencnn/backdoor/attacks/badnets_patch.hpp
//
// badnets-patch: a k x k patch (BadNets, Gu, Dolan-Gavitt and Garg 2017; the
// square trigger of their MNIST experiments and of BackdoorBench).
//
//   x'[c, r0 + i, c0 + j] = P[i, j]   for 0 <= i, j < k and every channel c
//   y' = label_mode(y)                 (default all-to-one, target 0)
//
//   P[i, j] = value                         pattern Solid (default)
//           = value if (i + j) even, else 0  pattern Checkerboard
//   (r0, c0): the patch's top-left pixel, placed in `corner` with `margin`
//   pixels between the patch and the image edges. Default: a 3x3 white square
//   touching the bottom-right corner (rows 25-27, cols 25-27 on 28x28).
//
// Images [N, C, H, W]. Defaults: rate 10%, target 0 (BackdoorBench's).
#pragma once

#include "../attack.hpp"

namespace eigencnn {

enum class PatchPattern { Solid, Checkerboard };
enum class ImageCorner { TopLeft, TopRight, BottomLeft, BottomRight };

struct BadNetsPatch {
    static constexpr const char* name = "badnets-patch";
    double poison_rate = 0.1;
    LabelMode label_mode = LabelMode::all_to_one(0);
    Index patch_size = 3;  ///< k
    PatchPattern pattern = PatchPattern::Solid;
    ImageCorner corner = ImageCorner::BottomRight;
    Index margin = 0;  ///< pixels between the patch and the two image edges of its corner
    double value = 1.0;

    /// Top-left pixel (row, col) of the patch on images H x W.
    Index top(Index height) const {
        return corner == ImageCorner::TopLeft || corner == ImageCorner::TopRight ? margin : height - margin - patch_size;
    }
    Index left(Index width) const {
        return corner == ImageCorner::TopLeft || corner == ImageCorner::BottomLeft ? margin : width - margin - patch_size;
    }
    /// Pattern value at patch position (i, j).
    double pattern_value(Index i, Index j) const {
        return pattern == PatchPattern::Solid || (i + j) % 2 == 0 ? value : 0.0;
    }

    void validate(const Shape& sample_shape, int num_classes) const {
        attack_detail::check_sample_shape(name, sample_shape);
        attack_detail::check_unit_interval(name, "poison_rate", poison_rate);
        attack_detail::check_unit_interval(name, "value", value);
        label_mode.validate(num_classes, name);
        if (patch_size < 1) throw std::invalid_argument(std::string(name) + ": patch_size must be >= 1, got " + std::to_string(patch_size));
        if (margin < 0) throw std::invalid_argument(std::string(name) + ": margin must be >= 0, got " + std::to_string(margin));
        if (patch_size + margin > sample_shape[2] || patch_size + margin > sample_shape[3])
            throw std::invalid_argument(std::string(name) + ": patch_size " + std::to_string(patch_size) + " with margin " +
                                        std::to_string(margin) + " is larger than the images " + sample_shape.str());
    }

    template <typename T>
    void stamp(ImageRef<T> image) const {
        const Index r0 = top(image.height), c0 = left(image.width);
        for (Index c = 0; c < image.channels; ++c)
            for (Index i = 0; i < patch_size; ++i)
                for (Index j = 0; j < patch_size; ++j) image(c, r0 + i, c0 + j) = static_cast<T>(pattern_value(i, j));
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
