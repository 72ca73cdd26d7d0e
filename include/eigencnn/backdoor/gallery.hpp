// SPDX-License-Identifier: MIT
// eigencnn/backdoor/gallery.hpp
//
// A PNG that shows a trigger: three rows of the same n images [n, C, H, W]
//   row 1  clean images, captioned with their label
//   row 2  poisoned images, captioned "y>y'" when the label changed, else y
//   row 3  the difference, amplified: clamp(0.5 + amplification (x' - x), 0, 1)
//          (grey = unchanged, lighter = brighter, darker = darker)
// written with io/png.hpp's write_image_grid.
#pragma once

#include "../data/dataset.hpp"
#include "../io/png.hpp"
#include "attacks.hpp"

#include <algorithm>
#include <string>

namespace eigencnn {

/// clean and poisoned: the same samples (same shapes, [n, C, H, W], C = 1 or 3) before and after poisoning.
template <typename T>
void write_trigger_gallery(const std::string& path, const Dataset<T>& clean, const Dataset<T>& poisoned, double amplification = 5.0,
                           int scale = 3) {
    if (clean.images.shape() != poisoned.images.shape() || clean.labels.size() != poisoned.labels.size() || clean.size() == 0)
        throw std::invalid_argument("write_trigger_gallery: " + path + ": clean images " + clean.images.shape().str() +
                                    " and poisoned images " + poisoned.images.shape().str() + " must have the same, non-empty shape");
    const Shape& s = clean.images.shape();
    const Index n = s[0], S = s.sample_size();
    Tensor<T> grid(s.with_batch(3 * n));
    std::vector<std::string> captions(static_cast<std::size_t>(3 * n));
    std::vector<Rgb> colors(static_cast<std::size_t>(3 * n), Rgb{{230, 230, 230}});
    for (Index i = 0; i < n; ++i) {
        const auto u = static_cast<std::size_t>(i);
        std::copy(clean.images.data() + i * S, clean.images.data() + (i + 1) * S, grid.data() + i * S);
        std::copy(poisoned.images.data() + i * S, poisoned.images.data() + (i + 1) * S, grid.data() + (n + i) * S);
        for (Index k = 0; k < S; ++k) {
            const double d = static_cast<double>(poisoned.images[i * S + k]) - static_cast<double>(clean.images[i * S + k]);
            grid[(2 * n + i) * S + k] = static_cast<T>(std::min(1.0, std::max(0.0, 0.5 + amplification * d)));
        }
        captions[u] = std::to_string(clean.labels[u]);
        const bool relabeled = poisoned.labels[u] != clean.labels[u];
        captions[static_cast<std::size_t>(n) + u] = relabeled ? captions[u] + ">" + std::to_string(poisoned.labels[u]) : captions[u];
        if (relabeled) colors[static_cast<std::size_t>(n) + u] = Rgb{{255, 120, 120}};
    }
    write_image_grid(path, grid, captions, colors, static_cast<int>(n), scale);
}

/// The first `count` samples of `sample_source` before and after `attack.stamp`
/// (the test-time trigger), captioned with the labels its label mode wants.
template <typename T>
void write_attack_gallery(const std::string& path, const AttackSpec& attack, const Dataset<T>& sample_source, Index count = 8,
                          double amplification = 5.0) {
    const Dataset<T> clean = sample_source.head(count);
    Dataset<T> poisoned = clean;
    attack.stamp(poisoned);
    for (auto& y : poisoned.labels) y = attack.label_mode().poisoned_label(y);
    write_trigger_gallery(path, clean, poisoned, amplification);
}

}  // namespace eigencnn
