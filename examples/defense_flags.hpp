// SPDX-License-Identifier: MIT
// examples/defense_flags.hpp: backdoor_lab's defense flags (--defense, --clean-share and each
// defense's own parameters), turned into a DefenseSpec as lab_flags.hpp turns the attack flags
// into an AttackSpec. A defense's flag given with another defense is refused, naming both.
#pragma once

#include "lab_flags.hpp"

#include <eigencnn/lab/defend.hpp>

namespace lab_program {

struct DefenseFlags {
    std::string name;
    double clean_share = DefenseSettings{}.clean_share;
    // spectral-signatures
    std::optional<double> ss_eps;
    bool ss_uncentred = false;
    // activation-clustering
    std::optional<int> ac_components;
    std::optional<double> ac_threshold;
    // fine-pruning
    std::optional<double> fp_max_drop, fp_lr;
    std::optional<int> fp_epochs, fp_max_restarts;
    // anp
    std::optional<double> anp_eps, anp_alpha, anp_threshold;
    std::optional<int> anp_iterations, anp_images;
    // strip
    std::optional<int> strip_overlays, strip_inputs;
    // neural-cleanse
    std::optional<int> nc_max_epochs, nc_clean_images;
    std::optional<double> nc_anomaly_threshold;
    bool nc_no_unlearning = false;
    /// Defense-specific flags given on the command line, with the defense they belong to.
    std::vector<std::pair<std::string, std::string>> given;
};

/// A defense's own option: stores the value and notes which defense it belongs to.
template <typename T>
CLI::Option* defense_flag(CLI::App* app, DefenseFlags& f, const std::string& flag, const std::string& defense, std::optional<T>& target,
                          const std::string& help) {
    return app->add_option_function<std::string>(
        flag,
        [&f, &target, flag, defense](const std::string& v) {
            if constexpr (std::is_floating_point_v<T>) target = parse_amount(flag, v);
            else target = static_cast<T>(std::stoll(v));
            f.given.emplace_back(flag, defense);
        },
        help + " (" + defense + ")");
}

inline void add_defense_flags(CLI::App* app, DefenseFlags& f) {
    std::string names;
    for (const auto& n : defense_names()) names += (names.empty() ? "" : ", ") + n;
    app->add_option("--defense", f.name, "the defense: " + names)->required();
    app->add_option("--clean-share", f.clean_share, "share of the clean training set the defender holds")->check(unit_interval())->capture_default_str();
    defense_flag(app, f, "--ss-eps", "spectral-signatures", f.ss_eps, "assumed poison rate eps: removes 1.5 eps of each label (default 0.05)")
        ->check(unit_interval());
    app->add_flag_callback("--ss-uncentred", [&f] { f.ss_uncentred = true, f.given.emplace_back("--ss-uncentred", "spectral-signatures"); },
                           "project the uncentred representations, as ART/BackdoorBench (spectral-signatures)");
    defense_flag(app, f, "--ac-components", "activation-clustering", f.ac_components, "PCA dimensions (default 10)")->check(example::integer_at_least(1));
    defense_flag(app, f, "--ac-threshold", "activation-clustering", f.ac_threshold, "flag a label whose smaller cluster is below this share (default 0.35)");
    defense_flag(app, f, "--fp-max-drop", "fine-pruning", f.fp_max_drop, "relative clean-accuracy drop that stops pruning (default 0.1)");
    defense_flag(app, f, "--fp-epochs", "fine-pruning", f.fp_epochs, "fine-tuning epochs on the clean data (default 10; 0: prune only)")
        ->check(example::integer_at_least(0));
    defense_flag(app, f, "--fp-lr", "fine-pruning", f.fp_lr, "fine-tuning SGD learning rate (default 0.01)");
    defense_flag(app, f, "--fp-max-restarts", "fine-pruning", f.fp_max_restarts,
                 "a fine-tuning that collapses (clean accuracy below the pruned model's less the allowed drop) is undone and "
                 "retried at a tenth of the rate, at most this many times (default 2; 0: keep it and only report)")
        ->check(example::integer_at_least(0));
    defense_flag(app, f, "--anp-eps", "anp", f.anp_eps, "neuron perturbation budget (default 0.4)");
    defense_flag(app, f, "--anp-alpha", "anp", f.anp_alpha, "weight of the clean loss (default 0.2)");
    defense_flag(app, f, "--anp-iterations", "anp", f.anp_iterations, "mask updates (default 2000)")->check(example::integer_at_least(1));
    defense_flag(app, f, "--anp-images", "anp", f.anp_images, "clean images used (default 500)")->check(example::integer_at_least(1));
    defense_flag(app, f, "--anp-threshold", "anp", f.anp_threshold, "prune neurons whose mask is below this (default 0.2)");
    defense_flag(app, f, "--strip-overlays", "strip", f.strip_overlays, "superimpositions per input (default 100)")->check(example::integer_at_least(1));
    defense_flag(app, f, "--strip-inputs", "strip", f.strip_inputs, "clean test inputs tested, and as many triggered (default 2000)")
        ->check(example::integer_at_least(1));
    defense_flag(app, f, "--nc-max-epochs", "neural-cleanse", f.nc_max_epochs, "epochs per label at most (default 100)")->check(example::integer_at_least(1));
    defense_flag(app, f, "--nc-clean-images", "neural-cleanse", f.nc_clean_images, "clean images the triggers are reversed on (default 1000)")
        ->check(example::integer_at_least(1));
    defense_flag(app, f, "--nc-anomaly-threshold", "neural-cleanse", f.nc_anomaly_threshold, "flag labels whose anomaly index exceeds this (default 2)");
    app->add_flag_callback("--nc-no-unlearning", [&f] { f.nc_no_unlearning = true, f.given.emplace_back("--nc-no-unlearning", "neural-cleanse"); },
                           "neural-cleanse: detect only, do not unlearn");
}

/// The DefenseSpec the flags describe, validated. Throws std::invalid_argument naming the flag.
inline DefenseSpec defense_from_flags(const DefenseFlags& f) {
    DefenseSpec spec = make_defense(f.name);  // unknown names list the valid ones
    for (const auto& [flag, owner] : f.given)
        if (owner != f.name) throw std::invalid_argument(flag + " is a parameter of " + owner + ", not of " + f.name);
    if (auto* d = spec.get<SpectralSignatures>()) {
        if (f.ss_eps) d->epsilon = *f.ss_eps;
        d->centred = !f.ss_uncentred;
    } else if (auto* d = spec.get<ActivationClustering>()) {
        if (f.ac_components) d->components = *f.ac_components;
        if (f.ac_threshold) d->size_threshold = *f.ac_threshold;
    } else if (auto* d = spec.get<FinePruning>()) {
        if (f.fp_max_drop) d->max_accuracy_drop = *f.fp_max_drop;
        if (f.fp_epochs) d->epochs = *f.fp_epochs;
        if (f.fp_lr) d->lr = *f.fp_lr;
        if (f.fp_max_restarts) d->max_restarts = *f.fp_max_restarts;
    } else if (auto* d = spec.get<Anp>()) {
        if (f.anp_eps) d->eps = *f.anp_eps;
        if (f.anp_alpha) d->alpha = *f.anp_alpha;
        if (f.anp_iterations) d->iterations = *f.anp_iterations;
        if (f.anp_images) d->clean_images = static_cast<std::size_t>(*f.anp_images);
        if (f.anp_threshold) d->threshold = *f.anp_threshold;
    } else if (auto* d = spec.get<StripDefense>()) {
        if (f.strip_overlays) d->settings.strip.overlays = *f.strip_overlays;
        if (f.strip_inputs) d->settings.inputs = *f.strip_inputs;
    } else if (auto* d = spec.get<NeuralCleanseDefense>()) {
        if (f.nc_max_epochs) d->settings.neural_cleanse.max_epochs = *f.nc_max_epochs;
        if (f.nc_clean_images) d->settings.clean_images = *f.nc_clean_images;
        if (f.nc_anomaly_threshold) d->settings.neural_cleanse.anomaly_threshold = *f.nc_anomaly_threshold;
        d->settings.unlearn = !f.nc_no_unlearning;
    }
    spec.validate();
    return spec;
}

inline DefenseSettings defense_settings(const DefenseFlags& f) {
    DefenseSettings s;
    s.clean_share = f.clean_share;
    s.validate();
    return s;
}

}  // namespace lab_program
