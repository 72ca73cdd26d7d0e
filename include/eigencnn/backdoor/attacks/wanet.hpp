// SPDX-License-Identifier: MIT
// eigencnn/backdoor/attacks/wanet.hpp
//
// wanet: an imperceptible warp (Nguyen and Tran 2021, "WaNet - Imperceptible
// Warping-based Backdoor Attack", ICLR).
//
// Warp field, fixed by grid_seed (as the official code's noise_grid):
//   U [2, k, k] ~ U[-1, 1) from Rng(grid_seed), k = grid_size = 4 (channel 0:
//   x offsets, 1: y offsets); U /= mean(|U|); offsets [2, H, W] =
//   bicubic upsample of U (align_corners=True, A = -0.75, edges clamped: torch's
//   F.interpolate(mode="bicubic"))
//   grid[y, x] = clamp(identity[y, x] + s * offsets[:, y, x] / H, -1, 1),
//   identity[y, x] = (-1 + 2 x / (W - 1), -1 + 2 y / (H - 1)), s = strength = 0.5
// Warped image (torch's grid_sample, bilinear, align_corners=True, zero padding):
//   x'[c, y, x] = bilinear sample of x[c] at column (gx + 1) / 2 (W - 1),
//                 row (gy + 1) / 2 (H - 1), (gx, gy) = grid[y, x]
// Noise mode (the paper's, cross_ratio = 2): noise samples are warped with
//   clamp(grid + (2 V - 1) / H, -1, 1), V ~ U[0, 1) per sample, pixel and
//   coordinate, and keep their labels; they teach the model that other warps
//   are no trigger.
//
// Poisoning happens per batch during training, as in the paper's code: for
// each batch of B samples, int(B rate) get the warp and label_mode's label and
// int(int(B rate) cross_ratio) others get a noise warp, chosen with the
// batch's Rng. batch_transform() returns that function for
// DataLoader::set_transform; poison() then leaves the training set unchanged
// (PoisonResult::per_batch). With per_batch = false, poison() applies the
// same proportions once to the whole training set instead.
// Defaults: rate 10%, target 0, k 4, s 0.5, cross_ratio 2. Images [N, C, H, W].
#pragma once

#include "../../data/data_loader.hpp"
#include "../attack.hpp"

#include <algorithm>
#include <memory>

namespace eigencnn {

namespace wanet_detail {
/// torch's cubic convolution weights (A = -0.75) for fraction t of the four taps -1, 0, 1, 2.
inline void cubic_weights(double t, double w[4]) {
    const double A = -0.75;
    auto near = [&](double x) { return ((A + 2) * x - (A + 3)) * x * x + 1; };       // |x| <= 1
    auto far = [&](double x) { return ((A * x - 5 * A) * x + 8 * A) * x - 4 * A; };  // 1 < |x| < 2
    w[0] = far(t + 1), w[1] = near(t), w[2] = near(1 - t), w[3] = far(2 - t);
}
}  // namespace wanet_detail

/// Bicubic upsampling of one plane [in_h, in_w] to [out_h, out_w] with
/// align_corners=True (torch's F.interpolate(mode="bicubic", align_corners=True)).
inline std::vector<double> upsample_bicubic_align_corners(const std::vector<double>& plane, Index in_h, Index in_w, Index out_h, Index out_w) {
    auto taps = [](Index out_i, Index in_n, Index out_n, Index idx[4], double w[4]) {
        const double scale = out_n > 1 ? static_cast<double>(in_n - 1) / static_cast<double>(out_n - 1) : 0.0;
        const double real = scale * static_cast<double>(out_i);
        const Index i0 = static_cast<Index>(std::floor(real));
        wanet_detail::cubic_weights(real - static_cast<double>(i0), w);
        for (Index k = 0; k < 4; ++k) idx[k] = std::min(std::max<Index>(i0 - 1 + k, 0), in_n - 1);
    };
    std::vector<double> out(static_cast<std::size_t>(out_h * out_w));
    for (Index y = 0; y < out_h; ++y) {
        Index iy[4], ix[4];
        double wy[4], wx[4];
        taps(y, in_h, out_h, iy, wy);
        for (Index x = 0; x < out_w; ++x) {
            taps(x, in_w, out_w, ix, wx);
            double v = 0;
            for (int a = 0; a < 4; ++a)
                for (int b = 0; b < 4; ++b) v += wy[a] * wx[b] * plane[static_cast<std::size_t>(iy[a] * in_w + ix[b])];
            out[static_cast<std::size_t>(y * out_w + x)] = v;
        }
    }
    return out;
}

/// A sampling grid [H, W] of normalised (x, y) positions in [-1, 1].
struct WarpGrid {
    Index height = 0, width = 0;
    std::vector<double> gx, gy;  ///< H * W each, row-major
};

/// torch's grid_sample(image, grid, mode="bilinear", padding_mode="zeros",
/// align_corners=True) of one image [C, H, W] into `out` (same shape, not aliased).
template <typename T>
void grid_sample_bilinear(ImageRef<const T> image, const WarpGrid& grid, ImageRef<T> out) {
    const Index H = image.height, W = image.width;
    for (Index y = 0; y < H; ++y)
        for (Index x = 0; x < W; ++x) {
            const std::size_t g = static_cast<std::size_t>(y * W + x);
            const double ix = (grid.gx[g] + 1) / 2 * static_cast<double>(W - 1), iy = (grid.gy[g] + 1) / 2 * static_cast<double>(H - 1);
            const Index x0 = static_cast<Index>(std::floor(ix)), y0 = static_cast<Index>(std::floor(iy));
            const double tx = ix - static_cast<double>(x0), ty = iy - static_cast<double>(y0);
            for (Index c = 0; c < image.channels; ++c) {
                auto px = [&](Index yy, Index xx) {
                    return yy < 0 || yy >= H || xx < 0 || xx >= W ? 0.0 : static_cast<double>(image(c, yy, xx));
                };
                const double v = (1 - ty) * ((1 - tx) * px(y0, x0) + tx * px(y0, x0 + 1)) + ty * ((1 - tx) * px(y0 + 1, x0) + tx * px(y0 + 1, x0 + 1));
                out(c, y, x) = static_cast<T>(v);
            }
        }
}

struct WaNet {
    static constexpr const char* name = "wanet";
    double poison_rate = 0.1;  ///< share of each batch (per_batch) or of the training set
    LabelMode label_mode = LabelMode::all_to_one(0);
    Index grid_size = 4;       ///< k
    double strength = 0.5;     ///< s
    double cross_ratio = 2.0;  ///< noise samples per poisoned sample
    std::uint64_t grid_seed = 0;
    bool per_batch = true;

    void validate(const Shape& sample_shape, int num_classes) const {
        attack_detail::check_sample_shape(name, sample_shape);
        attack_detail::check_unit_interval(name, "poison_rate", poison_rate);
        label_mode.validate(num_classes, name);
        if (grid_size < 2) throw std::invalid_argument(std::string(name) + ": grid_size must be >= 2, got " + std::to_string(grid_size));
        if (!(strength >= 0.0 && std::isfinite(strength)))
            throw std::invalid_argument(std::string(name) + ": strength must be a number >= 0, got " + std::to_string(strength));
        if (!(cross_ratio >= 0.0 && poison_rate * (1.0 + cross_ratio) <= 1.0))
            throw std::invalid_argument(std::string(name) + ": cross_ratio must be >= 0 with poison_rate * (1 + cross_ratio) <= 1, got " +
                                        std::to_string(cross_ratio));
        if (sample_shape[2] < 2 || sample_shape[3] < 2)
            throw std::invalid_argument(std::string(name) + ": images must be at least 2x2, got " + sample_shape.str());
    }

    /// The upsampled offsets before scaling: [2][H * W] (x, y).
    std::vector<double> offsets(Index height, Index width, int coordinate) const {
        Rng rng(grid_seed);
        const std::size_t kk = static_cast<std::size_t>(grid_size * grid_size);
        std::vector<double> u(2 * kk);
        double mean_abs = 0;
        for (auto& v : u) mean_abs += std::abs(v = rng.uniform(-1.0, 1.0));
        mean_abs /= static_cast<double>(u.size());
        for (auto& v : u) v /= mean_abs;
        const std::vector<double> plane(u.begin() + static_cast<std::ptrdiff_t>(static_cast<std::size_t>(coordinate) * kk),
                                        u.begin() + static_cast<std::ptrdiff_t>(static_cast<std::size_t>(coordinate + 1) * kk));
        return upsample_bicubic_align_corners(plane, grid_size, grid_size, height, width);
    }

    /// The backdoor warp grid for images H x W.
    WarpGrid grid(Index height, Index width) const {
        WarpGrid g{height, width, offsets(height, width, 0), offsets(height, width, 1)};
        const double h = static_cast<double>(height);
        for (Index y = 0; y < height; ++y)
            for (Index x = 0; x < width; ++x) {
                const std::size_t i = static_cast<std::size_t>(y * width + x);
                const double idx = -1 + 2 * static_cast<double>(x) / static_cast<double>(width - 1);
                const double idy = -1 + 2 * static_cast<double>(y) / static_cast<double>(height - 1);
                g.gx[i] = std::clamp(idx + strength * g.gx[i] / h, -1.0, 1.0);
                g.gy[i] = std::clamp(idy + strength * g.gy[i] / h, -1.0, 1.0);
            }
        return g;
    }
    /// The backdoor grid plus the noise mode's jitter, drawn from rng.
    static WarpGrid noise_grid(const WarpGrid& base, Rng& rng) {
        WarpGrid g = base;
        const double h = static_cast<double>(base.height);
        for (std::size_t i = 0; i < g.gx.size(); ++i) {
            g.gx[i] = std::clamp(g.gx[i] + (2 * rng.uniform() - 1) / h, -1.0, 1.0);
            g.gy[i] = std::clamp(g.gy[i] + (2 * rng.uniform() - 1) / h, -1.0, 1.0);
        }
        return g;
    }
    /// Warp one image in place with `grid`.
    template <typename T>
    static void warp(ImageRef<T> image, const WarpGrid& grid) {
        std::vector<T> copy(image.data, image.data + image.size());
        grid_sample_bilinear(ImageRef<const T>{copy.data(), image.channels, image.height, image.width}, grid, image);
    }

    template <typename T>
    void stamp(ImageRef<T> image) const { warp(image, grid(image.height, image.width)); }
    template <typename T>
    void stamp(Dataset<T>& data) const {
        attack_detail::check_dataset(name, data);
        validate(data.sample_shape(), label_mode.num_classes);
        const WarpGrid g = grid(data.images.dim(2), data.images.dim(3));
        for (Index i = 0; i < data.size(); ++i) warp(image_ref(data.images, i), g);
    }

    /// Warp `count_bd` of the chosen samples with the grid and relabel them, the next `count_noise` with a noise grid.
    template <typename T>
    void poison_samples(Tensor<T>& images, std::vector<int>& labels, const std::vector<std::size_t>& chosen, std::size_t count_bd,
                        const WarpGrid& g, Rng& rng) const {
        for (std::size_t k = 0; k < chosen.size(); ++k) {
            auto im = image_ref(images, static_cast<Index>(chosen[k]));
            if (k < count_bd) {
                warp(im, g);
                labels[chosen[k]] = label_mode.poisoned_label(labels[chosen[k]]);
            } else {
                warp(im, noise_grid(g, rng));
            }
        }
    }
    std::size_t noise_count(std::size_t count_bd) const { return attack_detail::count_for_rate(cross_ratio, count_bd); }

    /// The paper's training-time poisoning, for DataLoader::set_transform.
    template <typename T>
    typename DataLoader<T>::BatchTransform batch_transform(const Shape& sample_shape) const {
        validate(sample_shape, label_mode.num_classes);
        auto g = std::make_shared<const WarpGrid>(grid(sample_shape[2], sample_shape[3]));
        const WaNet self = *this;
        return [self, g](Batch<T>& batch, Rng& rng) {
            const std::size_t b = batch.labels.size();
            const std::size_t bd = attack_detail::count_for_rate(self.poison_rate, b), noise = self.noise_count(bd);
            const auto chosen = rng.choice(b, std::min(b, bd + noise));
            self.poison_samples(batch.images, batch.labels, chosen, bd, *g, rng);
        };
    }

    /// per_batch: nothing to do now (install batch_transform). Otherwise the
    /// same proportions once: the first int(rate N) samples drawn get the warp
    /// and the label (poisoned_indices), the next int(that * cross_ratio) a noise warp.
    template <typename T>
    PoisonResult poison(Dataset<T>& train, std::uint64_t seed) const {
        attack_detail::check_dataset(name, train);
        validate(train.sample_shape(), label_mode.num_classes);
        PoisonResult result;
        result.per_batch = per_batch;
        if (per_batch) return result;
        const std::size_t n = train.labels.size(), bd = attack_detail::count_for_rate(poison_rate, n);
        Rng rng(seed);
        const auto chosen = rng.choice(n, std::min(n, bd + noise_count(bd)));
        poison_samples(train.images, train.labels, chosen, bd, grid(train.images.dim(2), train.images.dim(3)), rng);
        result.poisoned_indices.assign(chosen.begin(), chosen.begin() + static_cast<std::ptrdiff_t>(bd));
        return result;
    }
};

}  // namespace eigencnn
