// SPDX-License-Identifier: MIT
// eigencnn/data/transforms.hpp
//
// Data augmentation on a batch [B, C, H, W], for DataLoader::set_transform,
// with torchvision.transforms' names, defaults and semantics, per sample:
//
//   RandomCrop(size, padding = 0, fill = 0)
//       pad every side with `padding` values `fill` (padding_mode "constant"),
//       then crop size x size at a uniformly drawn top-left corner:
//         i ~ U{0 .. H + 2p - h}, j ~ U{0 .. W + 2p - w}   (drawn in that order)
//         out[n, c, y, x] = padded[n, c, y + i, x + j]      -> [B, C, h, w]
//       (no draw when the crop is the whole padded image, as torchvision)
//   RandomHorizontalFlip(p = 0.5)
//       with probability p (u ~ U[0, 1), flipped when u < p):
//         out[n, c, y, x] = in[n, c, y, W - 1 - x]
//   Normalize(mean, std)
//       out[n, c, y, x] = (in[n, c, y, x] - mean[c]) / std[c]
//       (one value, or one per channel; no randomness; apply() for a test set)
//   Compose({t1, t2, ...})
//       t1, then t2, ... on the same batch and the same Rng.
//
// torchvision draws per sample, in the Dataset; here a transform gets a whole
// batch and draws each sample's parameters from the batch's Rng, in sample
// order, before any pixel is touched; the pixels are then computed in
// parallel. So batch i of epoch e is the same for a given loader seed
// whatever the number of threads (the DataLoader seeds the Rng from the
// loader's seed, the epoch and the batch index).
//
//   DataLoader<float> loader(train, 128, true, /*seed=*/1);
//   loader.set_transform(Compose<float>({RandomCrop<float>(32, 4), RandomHorizontalFlip<float>(),
//                                        Normalize<float>({0.4914, 0.4822, 0.4465}, {0.2470, 0.2435, 0.2616})}));
//
// Bad parameters throw std::invalid_argument naming the transform and the
// parameter (size, padding, fill, p, mean, std), at construction or, for what
// depends on the images (channel count, crop larger than the padded image),
// at the call.
#pragma once

#include "../core/omp.hpp"

#include "../core/random.hpp"
#include "data_loader.hpp"

#include <cmath>
#include <initializer_list>
#include <stdexcept>
#include <string>
#include <vector>

namespace eigencnn {

namespace detail {
inline void check_batch_images(const Shape& s, const std::string& who) {
    if (s.rank() != 4) throw std::invalid_argument(who + ": images must be [B, C, H, W], got " + s.str());
}
}  // namespace detail

template <typename T>
class RandomCrop {
public:
    /// A square size x size crop (torchvision's RandomCrop(size, padding, fill=fill)).
    explicit RandomCrop(Index size, Index padding = 0, T fill = T(0)) : RandomCrop(size, size, padding, fill) {}
    /// A height x width crop (torchvision's RandomCrop((height, width), padding, fill=fill)).
    RandomCrop(Index height, Index width, Index padding, T fill) : height_(height), width_(width), padding_(padding), fill_(fill) {
        if (height < 1 || width < 1)
            throw std::invalid_argument("RandomCrop: size must be positive, got " + std::to_string(height) + "x" + std::to_string(width));
        if (padding < 0) throw std::invalid_argument("RandomCrop: padding must be >= 0, got " + std::to_string(padding));
        if (!std::isfinite(static_cast<double>(fill))) throw std::invalid_argument("RandomCrop: fill must be finite");
    }

    Index height() const { return height_; }
    Index width() const { return width_; }
    Index padding() const { return padding_; }

    /// Crop every sample of `images` [B, C, H, W] -> [B, C, height, width].
    Tensor<T> apply(const Tensor<T>& images, Rng& rng) const {
        const Shape& s = images.shape();
        detail::check_batch_images(s, "RandomCrop");
        const Index B = s[0], C = s[1], H = s[2], W = s[3], p = padding_;
        const Index PH = H + 2 * p, PW = W + 2 * p;
        if (height_ > PH || width_ > PW)
            throw std::invalid_argument("RandomCrop: size " + std::to_string(height_) + "x" + std::to_string(width_) +
                                        " is larger than the padded image " + std::to_string(PH) + "x" + std::to_string(PW) + " (images " +
                                        std::to_string(H) + "x" + std::to_string(W) + ", padding " + std::to_string(p) + ")");
        std::vector<Index> top(static_cast<std::size_t>(B), 0), left(static_cast<std::size_t>(B), 0);
        if (PH != height_ || PW != width_)
            for (std::size_t n = 0; n < top.size(); ++n) {  // torchvision's get_params: i, then j
                top[n] = static_cast<Index>(rng.below(static_cast<std::uint64_t>(PH - height_ + 1)));
                left[n] = static_cast<Index>(rng.below(static_cast<std::uint64_t>(PW - width_ + 1)));
            }
        Tensor<T> out(Shape{B, C, height_, width_});
        const Index h = height_, w = width_;
        EIGENCNN_OMP(parallel for schedule(static))
        for (Index n = 0; n < B; ++n) {
            const Index i = top[static_cast<std::size_t>(n)] - p, j = left[static_cast<std::size_t>(n)] - p;  // source row/col of out (0, 0)
            for (Index c = 0; c < C; ++c) {
                const T* src = images.data() + (n * C + c) * H * W;
                T* dst = out.data() + (n * C + c) * h * w;
                for (Index y = 0; y < h; ++y) {
                    const Index sy = y + i;
                    for (Index x = 0; x < w; ++x) {
                        const Index sx = x + j;
                        dst[y * w + x] = sy >= 0 && sy < H && sx >= 0 && sx < W ? src[sy * W + sx] : fill_;
                    }
                }
            }
        }
        return out;
    }

    void operator()(Batch<T>& batch, Rng& rng) const { batch.images = apply(batch.images, rng); }

private:
    Index height_, width_, padding_;
    T fill_;
};

template <typename T>
class RandomHorizontalFlip {
public:
    explicit RandomHorizontalFlip(double p = 0.5) : p_(p) {
        if (!(p >= 0.0 && p <= 1.0)) throw std::invalid_argument("RandomHorizontalFlip: p must be in [0, 1], got " + std::to_string(p));
    }
    double p() const { return p_; }

    /// Flip each sample of `images` [B, C, H, W] left-right with probability p, in place.
    void apply(Tensor<T>& images, Rng& rng) const {
        detail::check_batch_images(images.shape(), "RandomHorizontalFlip");
        const Index B = images.dim(0), C = images.dim(1), H = images.dim(2), W = images.dim(3);
        std::vector<char> flip(static_cast<std::size_t>(B));
        for (auto& f : flip) f = rng.uniform() < p_;
        EIGENCNN_OMP(parallel for schedule(static))
        for (Index n = 0; n < B; ++n) {
            if (!flip[static_cast<std::size_t>(n)]) continue;
            T* im = images.data() + n * C * H * W;
            for (Index r = 0; r < C * H; ++r)
                for (Index x = 0; x < W / 2; ++x) std::swap(im[r * W + x], im[r * W + W - 1 - x]);
        }
    }

    void operator()(Batch<T>& batch, Rng& rng) const { apply(batch.images, rng); }

private:
    double p_;
};

template <typename T>
class Normalize {
public:
    /// mean and std: one value each, or one per channel (a single value applies to every channel, as torch broadcasts).
    Normalize(std::vector<double> mean, std::vector<double> std) : mean_(std::move(mean)), std_(std::move(std)) {
        if (mean_.empty()) throw std::invalid_argument("Normalize: mean is empty (one value, or one per channel)");
        if (std_.empty()) throw std::invalid_argument("Normalize: std is empty (one value, or one per channel)");
        for (std::size_t c = 0; c < mean_.size(); ++c)
            if (!std::isfinite(mean_[c])) throw std::invalid_argument("Normalize: mean[" + std::to_string(c) + "] is not finite");
        for (std::size_t c = 0; c < std_.size(); ++c) {
            if (!std::isfinite(std_[c])) throw std::invalid_argument("Normalize: std[" + std::to_string(c) + "] is not finite");
            if (static_cast<T>(std_[c]) == T(0))
                throw std::invalid_argument("Normalize: std[" + std::to_string(c) + "] is 0 (a division by zero)");
        }
    }
    const std::vector<double>& mean() const { return mean_; }
    const std::vector<double>& std() const { return std_; }

    /// Normalize `images` [N, C, H, W] in place (a batch, or a whole data set such as the test set).
    void apply(Tensor<T>& images) const {
        detail::check_batch_images(images.shape(), "Normalize");
        const Index N = images.dim(0), C = images.dim(1), plane = images.dim(2) * images.dim(3);
        for (const auto* v : {&mean_, &std_})
            if (v->size() != 1 && static_cast<Index>(v->size()) != C)
                throw std::invalid_argument(std::string("Normalize: ") + (v == &mean_ ? "mean" : "std") + " has " + std::to_string(v->size()) +
                                            " values, the images " + images.shape().str() + " have " + std::to_string(C) + " channels");
        EIGENCNN_OMP(parallel for schedule(static))
        for (Index nc = 0; nc < N * C; ++nc) {
            const auto c = static_cast<std::size_t>(nc % C);
            const T m = static_cast<T>(mean_.size() == 1 ? mean_[0] : mean_[c]), s = static_cast<T>(std_.size() == 1 ? std_[0] : std_[c]);
            T* p = images.data() + nc * plane;
            for (Index i = 0; i < plane; ++i) p[i] = (p[i] - m) / s;
        }
    }

    void operator()(Batch<T>& batch, Rng&) const { apply(batch.images); }

private:
    std::vector<double> mean_, std_;
};

template <typename T>
class Compose {
public:
    using Transform = typename DataLoader<T>::BatchTransform;
    Compose(std::vector<Transform> transforms) : transforms_(std::move(transforms)) {  // NOLINT: implicit, as a list
        for (std::size_t i = 0; i < transforms_.size(); ++i)
            if (!transforms_[i]) throw std::invalid_argument("Compose: transform " + std::to_string(i) + " is empty");
    }
    Compose(std::initializer_list<Transform> transforms) : Compose(std::vector<Transform>(transforms)) {}
    std::size_t size() const { return transforms_.size(); }

    void operator()(Batch<T>& batch, Rng& rng) const {
        for (const auto& t : transforms_) t(batch, rng);
    }

private:
    std::vector<Transform> transforms_;
};

}  // namespace eigencnn
