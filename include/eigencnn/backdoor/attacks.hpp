// SPDX-License-Identifier: MIT
// eigencnn/backdoor/attacks.hpp
//
// All six attacks, and AttackSpec: one of them chosen at run time (a
// std::variant of the attack structs, so it keeps their value semantics),
// e.g. by a command-line name:
//
//   AttackSpec spec = make_attack("badnets-patch", AttackOptions{0.01, LabelMode::all_to_one(0)});
//   spec.get<BadNetsPatch>()->pattern = PatchPattern::Checkerboard;   // an attack's own parameter
//   spec.validate(train.sample_shape(), 10);
//   PoisonResult p = spec.poison(train, seed);          // label-consistent: pass the proxy's grad_fn
//   if (p.per_batch) loader.set_transform(spec.batch_transform<float>(train.sample_shape()));
//   Dataset<float> triggered = triggered_copy(spec, test);
//
// Names: badnets-pixel, badnets-patch, blended, sig, wanet, label-consistent.
// Not part of eigencnn.hpp because blended compiles stb_image (see image_file.hpp).
#pragma once

#include "attack.hpp"
#include "attacks/badnets_patch.hpp"
#include "attacks/badnets_pixel.hpp"
#include "attacks/blended.hpp"
#include "attacks/label_consistent.hpp"
#include "attacks/sig.hpp"
#include "attacks/wanet.hpp"

#include <optional>
#include <type_traits>
#include <variant>

namespace eigencnn {

/// Settings every attack has, for make_attack; unset fields keep the attack's defaults.
struct AttackOptions {
    std::optional<double> poison_rate;
    std::optional<LabelMode> label_mode;
};

/// The names make_attack accepts, in the order of the issue.
inline const std::vector<std::string>& attack_names() {
    static const std::vector<std::string> names{BadNetsPixel::name, BadNetsPatch::name, Blended::name,
                                                Sig::name,          WaNet::name,        LabelConsistent::name};
    return names;
}

class AttackSpec {
public:
    using Variant = std::variant<BadNetsPixel, BadNetsPatch, Blended, Sig, WaNet, LabelConsistent>;

    template <typename Attack, typename = std::enable_if_t<!std::is_same_v<std::decay_t<Attack>, AttackSpec>>>
    AttackSpec(Attack attack) : attack_(std::move(attack)) {}  // NOLINT: implicit from any attack

    std::string name() const {
        return std::visit([](const auto& a) { return std::string(a.name); }, attack_);
    }
    /// The attack as its own type, or nullptr if it is another one.
    template <typename Attack>
    Attack* get() { return std::get_if<Attack>(&attack_); }
    template <typename Attack>
    const Attack* get() const { return std::get_if<Attack>(&attack_); }
    const Variant& variant() const { return attack_; }

    LabelMode label_mode() const {
        return std::visit([](const auto& a) { return a.label_mode; }, attack_);
    }
    void set_label_mode(const LabelMode& mode) {
        std::visit([&](auto& a) { a.label_mode = mode; }, attack_);
    }
    void set_poison_rate(double rate) {
        std::visit([&](auto& a) { a.poison_rate = rate; }, attack_);
    }

    void validate(const Shape& sample_shape, int num_classes) const {
        std::visit([&](const auto& a) { a.validate(sample_shape, num_classes); }, attack_);
    }
    template <typename T>
    void stamp(ImageRef<T> image) const {
        std::visit([&](const auto& a) { a.stamp(image); }, attack_);
    }
    template <typename T>
    void stamp(Dataset<T>& data) const {
        std::visit([&](const auto& a) { a.stamp(data); }, attack_);
    }
    /// Poison `train`; label-consistent throws (it needs grad_fn: use the overload).
    template <typename T>
    PoisonResult poison(Dataset<T>& train, std::uint64_t seed) const {
        return std::visit([&](const auto& a) { return a.poison(train, seed); }, attack_);
    }
    /// Poison `train`; grad_fn (see label_consistent.hpp) is used by label-consistent only.
    template <typename T>
    PoisonResult poison(Dataset<T>& train, std::uint64_t seed, const InputGradientFn<T>& grad_fn, PgdResult* pgd_result = nullptr) const {
        if (const auto* lc = get<LabelConsistent>()) {
            if (!grad_fn) return lc->poison(train, seed);  // throws, naming grad_fn
            return lc->poison(train, seed, grad_fn, pgd_result);
        }
        return poison(train, seed);
    }
    /// The per-batch training transform (WaNet), or an empty function for the other attacks.
    template <typename T>
    typename DataLoader<T>::BatchTransform batch_transform(const Shape& sample_shape) const {
        if (const auto* w = get<WaNet>(); w && w->per_batch) return w->template batch_transform<T>(sample_shape);
        return {};
    }

private:
    Variant attack_;
};

/// The attack called `name` with its reference defaults, `options` applied.
/// Throws std::invalid_argument listing the valid names for an unknown one.
inline AttackSpec make_attack(const std::string& name, const AttackOptions& options = {}) {
    std::optional<AttackSpec> spec;
    if (name == BadNetsPixel::name) spec.emplace(BadNetsPixel{});
    else if (name == BadNetsPatch::name) spec.emplace(BadNetsPatch{});
    else if (name == Blended::name) spec.emplace(Blended{});
    else if (name == Sig::name) spec.emplace(Sig{});
    else if (name == WaNet::name) spec.emplace(WaNet{});
    else if (name == LabelConsistent::name) spec.emplace(LabelConsistent{});
    else {
        std::string valid;
        for (const auto& n : attack_names()) valid += (valid.empty() ? "" : ", ") + n;
        throw std::invalid_argument("unknown attack '" + name + "'; valid names: " + valid);
    }
    if (options.poison_rate) spec->set_poison_rate(*options.poison_rate);
    if (options.label_mode) spec->set_label_mode(*options.label_mode);
    return *spec;
}

}  // namespace eigencnn
