// SPDX-License-Identifier: MIT
// eigencnn/backdoor/attacks/label_consistent.hpp
//
// label-consistent: a clean-label attack (Turner, Tsipras and Madry 2019,
// "Label-Consistent Backdoor Attacks", arXiv:1912.02771).
//
// Target-class training images are first made hard to classify with an
// adversarial perturbation against a clean proxy model, so that the model has
// to rely on the trigger; then the trigger is stamped; labels stay true.
//
//   PGD, L-infinity (Madry et al. 2018), maximising the proxy's loss L(x, y):
//     x_0 = x
//     x_{t+1} = clip_[0,1]( clip_[x - eps, x + eps]( x_t + step * sign(dL/dx (x_t, y)) ) )
//     eps = 64/255, step = 1.5/255, 100 steps (BackdoorBox's MNIST setting)
//   trigger: a k x k checkerboard (k = 3; P[i, j] = 1 if (i + j) even, else 0,
//   symmetric, so the same in every mirror) in all four corners, `margin`
//   pixels from the edges (the paper's four-corner trigger, full amplitude).
//   The paper's PGD starts at x without a random start; so do we.
//
// The gradient comes from a callable, so this header does not depend on the
// model API:  double grad_fn(const Tensor<T>& x [B, C, H, W],
//                            const std::vector<int>& y, Tensor<T>& dloss_dx)
// returns the mean loss over the batch and writes dloss/dx (shape of x).
// Default rate: half the target class (target_class_share 0.5); poison_rate,
// when set, is a share of the whole set capped at the class. All-to-one only.
#pragma once

#include "../attack.hpp"

#include <functional>
#include <optional>

namespace eigencnn {

struct PgdSettings {
    double eps = 64.0 / 255.0;   ///< L-infinity radius
    double step = 1.5 / 255.0;   ///< step size
    int steps = 100;
    Index batch_size = 100;      ///< images per grad_fn call
};

struct PgdResult {
    double initial_loss = 0;  ///< mean loss of the clean images
    double final_loss = 0;    ///< mean loss after the last step (one more grad_fn call)
};

/// L-infinity PGD on images [N, C, H, W] in place, maximising the loss of
/// labels y; in batches of settings.batch_size. Losses are averaged over all images.
template <typename T, typename GradFn>
PgdResult pgd_linf(Tensor<T>& images, const std::vector<int>& labels, const PgdSettings& settings, GradFn&& grad_fn) {
    if (images.shape().rank() != 4 || images.dim(0) != static_cast<Index>(labels.size()))
        throw std::invalid_argument("pgd_linf: images " + images.shape().str() + " do not match " + std::to_string(labels.size()) + " labels");
    if (!(settings.eps >= 0.0) || !(settings.step >= 0.0) || settings.steps < 0 || settings.batch_size < 1)
        throw std::invalid_argument("pgd_linf: eps and step must be >= 0, steps >= 0, batch_size >= 1");
    const Index n = images.dim(0), S = images.shape().sample_size();
    PgdResult result;
    Tensor<T> x, x0, grad;
    std::vector<int> y;
    for (Index begin = 0; begin < n; begin += settings.batch_size) {
        const Index count = std::min(settings.batch_size, n - begin);
        x.resize(images.shape().with_batch(count));
        std::copy(images.data() + begin * S, images.data() + (begin + count) * S, x.data());
        x0 = x;
        y.assign(labels.begin() + begin, labels.begin() + begin + count);
        const double weight = static_cast<double>(count) / static_cast<double>(n);
        for (int t = 0; t <= settings.steps; ++t) {
            grad.resize(x.shape());
            const double loss = static_cast<double>(grad_fn(static_cast<const Tensor<T>&>(x), static_cast<const std::vector<int>&>(y), grad));
            if (t == 0) result.initial_loss += weight * loss;
            if (t == settings.steps) {
                result.final_loss += weight * loss;
                break;
            }
            for (Index k = 0; k < x.size(); ++k) {
                const double g = static_cast<double>(grad[k]);
                const double moved = static_cast<double>(x[k]) + settings.step * static_cast<double>((g > 0) - (g < 0));
                const double lo = static_cast<double>(x0[k]) - settings.eps, hi = static_cast<double>(x0[k]) + settings.eps;
                x[k] = static_cast<T>(std::min(1.0, std::max(0.0, std::min(hi, std::max(lo, moved)))));
            }
        }
        std::copy(x.data(), x.data() + count * S, images.data() + begin * S);
    }
    return result;
}

/// The proxy model's input gradient for label-consistent poisoning (see above).
template <typename T>
using InputGradientFn = std::function<double(const Tensor<T>& x, const std::vector<int>& y, Tensor<T>& dloss_dx)>;

struct LabelConsistent {
    static constexpr const char* name = "label-consistent";
    std::optional<double> poison_rate;  ///< share of the whole set, capped at the class; unset: target_class_share
    double target_class_share = 0.5;    ///< share of the target class poisoned when poison_rate is unset
    LabelMode label_mode = LabelMode::all_to_one(0);
    PgdSettings pgd;
    Index trigger_size = 3;  ///< k of each corner's checkerboard
    Index margin = 0;        ///< pixels between each checkerboard and the image edges

    void validate(const Shape& sample_shape, int num_classes) const {
        attack_detail::check_sample_shape(name, sample_shape);
        if (poison_rate) attack_detail::check_unit_interval(name, "poison_rate", *poison_rate);
        attack_detail::check_unit_interval(name, "target_class_share", target_class_share);
        attack_detail::require_all_to_one(name, label_mode);
        label_mode.validate(num_classes, name);
        if (!(pgd.eps >= 0.0 && pgd.eps <= 1.0)) throw std::invalid_argument(std::string(name) + ": pgd.eps must be in [0, 1], got " + std::to_string(pgd.eps));
        if (!(pgd.step > 0.0)) throw std::invalid_argument(std::string(name) + ": pgd.step must be > 0, got " + std::to_string(pgd.step));
        if (pgd.steps < 0) throw std::invalid_argument(std::string(name) + ": pgd.steps must be >= 0, got " + std::to_string(pgd.steps));
        if (trigger_size < 1 || margin < 0 || 2 * (trigger_size + margin) > std::min(sample_shape[2], sample_shape[3]))
            throw std::invalid_argument(std::string(name) + ": four trigger_size " + std::to_string(trigger_size) + " checkerboards with margin " +
                                        std::to_string(margin) + " do not fit images " + sample_shape.str());
    }

    /// Number of target-class images poisoned, of `class_size`, in a set of n.
    std::size_t poison_count(std::size_t n, std::size_t class_size) const {
        const std::size_t k = poison_rate ? attack_detail::count_for_rate(*poison_rate, n) : attack_detail::count_for_rate(target_class_share, class_size);
        return std::min(k, class_size);
    }

    template <typename T>
    void stamp(ImageRef<T> image) const {
        const Index k = trigger_size;
        const Index rows[2] = {margin, image.height - margin - k}, cols[2] = {margin, image.width - margin - k};
        for (Index c = 0; c < image.channels; ++c)
            for (Index r0 : rows)
                for (Index c0 : cols)
                    for (Index i = 0; i < k; ++i)
                        for (Index j = 0; j < k; ++j) image(c, r0 + i, c0 + j) = static_cast<T>((i + j) % 2 == 0 ? 1 : 0);
    }
    template <typename T>
    void stamp(Dataset<T>& data) const {
        attack_detail::check_dataset(name, data);
        validate(data.sample_shape(), label_mode.num_classes);
        for (Index i = 0; i < data.size(); ++i) stamp(image_ref(data.images, i));
    }

    /// PGD against the proxy (grad_fn), then the trigger, on the chosen target-class images.
    template <typename T, typename GradFn>
    PoisonResult poison(Dataset<T>& train, std::uint64_t seed, GradFn&& grad_fn, PgdResult* pgd_result = nullptr) const {
        attack_detail::check_dataset(name, train);
        validate(train.sample_shape(), label_mode.num_classes);
        const auto class_size = static_cast<std::size_t>(std::count(train.labels.begin(), train.labels.end(), label_mode.target));
        PoisonResult result;
        result.poisoned_indices = attack_detail::choose_in_class(train, label_mode.target, poison_count(train.labels.size(), class_size), seed);
        Dataset<T> chosen = train.subset(result.poisoned_indices);
        const PgdResult r = pgd_linf(chosen.images, chosen.labels, pgd, std::forward<GradFn>(grad_fn));
        if (pgd_result) *pgd_result = r;
        const Index S = train.images.shape().sample_size();
        for (std::size_t k = 0; k < result.poisoned_indices.size(); ++k) {
            auto im = image_ref(chosen.images, static_cast<Index>(k));
            stamp(im);
            std::copy(im.data, im.data + S, train.images.data() + static_cast<Index>(result.poisoned_indices[k]) * S);
        }
        return result;
    }
    /// Without a proxy model there is no PGD step: throws, naming what is missing.
    template <typename T>
    PoisonResult poison(Dataset<T>&, std::uint64_t) const {
        throw std::invalid_argument(std::string(name) +
                                    ": poisoning needs a proxy model's input gradient (grad_fn) for its PGD step; call poison(train, seed, grad_fn)");
    }
};

}  // namespace eigencnn
