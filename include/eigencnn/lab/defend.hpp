// SPDX-License-Identifier: MIT
// eigencnn/lab/defend.hpp
//
// Defenses against a backdoored model, in the laboratory: train the poisoned
// model once, then run any defense on it, as often as wanted.
//
//   PoisonedCell cell = train_poisoned_cell(train, test, settings, attack, seed);   // run_attack_cell, kept
//   DefenseSpec d = make_defense("spectral-signatures");                            // the table below
//   d.get<SpectralSignatures>()->epsilon = 0.1;
//   DefenseRun r = run_defense(cell, test, d);            // the cell is not changed: a matrix reuses it
//   r.detection->f1;  r.effect.after.attack_success_rate_non_target;  r.effect.der;
//
// PoisonedCell keeps what the defenses need from run_attack_cell (through its
// CellObserver): the result (the "before" metrics), the poisoned training set
// and which samples were poisoned, the backdoored model as checkpoint bytes
// (each defense decodes its own copy, so defenses never see each other's
// changes), and the defender's clean data: a seeded share (clean_share, 5% as
// BackdoorBench's ratio) of the clean training set, before poisoning.
//
// What run_defense does per kind of defense:
//   data filtering (spectral-signatures, activation-clustering): find suspect
//     samples of the poisoned training set with the backdoored model, score them
//     against the truly poisoned ones (DetectionMetrics), retrain a fresh
//     mnist_cnn(seed) on the rest with the cell's settings and seed, measure it.
//   model repair (fine-pruning, anp): change the backdoored model with the clean
//     data (prune, fine-tune), measure it.
// Then DefenseEffect: the metrics before (the cell's) and after, and DER.
//
// Adding a defense: its value type (backdoor/defenses/<name>.hpp, with name,
// validate() and to_json), a member of DefenseSpec::Variant, a row of
// defense_table() and an apply_defense overload below.
// Not in eigencnn.hpp (needs backdoor/attacks.hpp and nlohmann-json).
#pragma once

#include "../backdoor/defense_metrics.hpp"
#include "../backdoor/defenses/activation_clustering.hpp"
#include "../backdoor/defenses/anp.hpp"
#include "../backdoor/defenses/fine_pruning.hpp"
#include "../backdoor/defenses/spectral_signatures.hpp"
#include "../io/checkpoint.hpp"
#include "cell.hpp"
#include "defend_detection.hpp"

#include <nlohmann/json.hpp>

#include <functional>
#include <variant>

namespace eigencnn {

/// Thrown by a defense that cannot work against the attack at hand (the data filters against an
/// attack that poisons per batch); the matrix records it as "not applicable" and goes on.
struct DefenseNotApplicable : std::invalid_argument {
    using std::invalid_argument::invalid_argument;
};

/// What the defenses share: the defender's clean data.
struct DefenseSettings {
    double clean_share = 0.05;  ///< share of the clean training set the defender holds (BackdoorBench's ratio 0.05)

    void validate() const {
        if (!(clean_share > 0 && clean_share <= 1)) throw std::invalid_argument("defense: clean_share must be in (0, 1], got " + std::to_string(clean_share));
    }
};

/// A trained poisoned model and what the defenses need from its cell (see the top of the file).
struct PoisonedCell {
    AttackCellResult result;
    Dataset<float> poisoned_train;  ///< the training set as poisoned (unchanged for per-batch WaNet)
    PoisonResult poison;            ///< which samples were poisoned
    Dataset<float> clean_data;      ///< the defender's clean data
    std::string model_bytes;        ///< the backdoored model as a checkpoint

    /// A fresh copy of the backdoored model.
    Sequential<float> model() const {
        const auto d = decode_checkpoint<float>(reinterpret_cast<const std::uint8_t*>(model_bytes.data()), model_bytes.size(), "backdoored model");
        return model_from_checkpoint(d, "backdoored model");
    }
};

/// CellObserver's hooks, plus a defense's own progress.
struct DefenseObserver : CellObserver {
    /// `done` of `total` steps of `stage` (e.g. "ANP masks", "pruning"); `value` a stage's figure (loss, accuracy).
    virtual void on_defense_progress(const std::string& /*stage*/, std::size_t /*done*/, std::size_t /*total*/, double /*value*/) {}
    /// Something the user should know that the figures alone do not say (e.g. a fine-tuning that collapsed and was redone).
    virtual void on_defense_note(const std::string& /*note*/) {}
};

namespace defend_detail {
/// Forwards to the caller's observer and keeps the poisoned set and the trained model.
struct Keeper : CellObserver {
    CellObserver& inner;
    PoisonedCell& cell;
    Keeper(CellObserver& o, PoisonedCell& c) : inner(o), cell(c) {}
    std::vector<Callback*> training_callbacks(const std::string& name) override { return inner.training_callbacks(name); }
    void on_pgd_progress(std::size_t d, std::size_t t, double l) override { inner.on_pgd_progress(d, t, l); }
    void on_poisoned(const Dataset<float>& clean, const Dataset<float>& poisoned, const PoisonResult& p) override {
        cell.poisoned_train = poisoned;
        cell.poison = p;
        inner.on_poisoned(clean, poisoned, p);
    }
    void on_trained(Sequential<float>& model) override {
        cell.model_bytes = encode_checkpoint(model);
        inner.on_trained(model);
    }
};
}  // namespace defend_detail

/// run_attack_cell, keeping its poisoned set and model; the clean data drawn with Rng(mix(seed, 3)).
inline PoisonedCell train_poisoned_cell(const Dataset<float>& train, const Dataset<float>& test, const LabSettings& settings,
                                        const AttackSpec& attack, std::uint64_t seed, const DefenseSettings& defense = {},
                                        CellObserver* observer = nullptr) {
    defense.validate();
    PoisonedCell cell;
    CellObserver none;
    defend_detail::Keeper keeper(observer ? *observer : none, cell);
    cell.result = run_attack_cell(train, test, settings, attack, seed, &keeper);
    const auto n = static_cast<std::size_t>(train.size());
    const auto k = std::max<std::size_t>(1, static_cast<std::size_t>(std::floor(defense.clean_share * static_cast<double>(n) + 0.5)));
    Rng rng(Rng::mix(seed, 3));
    std::vector<std::size_t> idx = rng.choice(n, std::min(k, n));
    std::sort(idx.begin(), idx.end());
    cell.clean_data = train.subset(idx);
    return cell;
}

/// One of the defenses, chosen at run time (as AttackSpec is for attacks).
class DefenseSpec {
public:
    using Variant = std::variant<SpectralSignatures, ActivationClustering, FinePruning, Anp, StripDefense, NeuralCleanseDefense>;

    template <typename D, typename = std::enable_if_t<!std::is_same_v<std::decay_t<D>, DefenseSpec>>>
    DefenseSpec(D d) : defense_(std::move(d)) {}  // NOLINT: implicit from any defense

    std::string name() const {
        return std::visit([](const auto& d) { return std::string(d.name); }, defense_);
    }
    template <typename D>
    D* get() { return std::get_if<D>(&defense_); }
    template <typename D>
    const D* get() const { return std::get_if<D>(&defense_); }
    const Variant& variant() const { return defense_; }
    void validate() const {
        std::visit([](const auto& d) { d.validate(); }, defense_);
    }

private:
    Variant defense_;
};

/// The table of defenses: name, what it does, its paper's defaults.
struct DefenseEntry {
    std::string name, summary;
    std::function<DefenseSpec()> make;
};

inline const std::vector<DefenseEntry>& defense_table() {
    static const std::vector<DefenseEntry> table{
        {SpectralSignatures::name, "remove the top 1.5 eps of each label along its representations' top singular vector, retrain (Tran et al. 2018)",
         [] { return DefenseSpec(SpectralSignatures{}); }},
        {ActivationClustering::name, "2-means of each label's last hidden layer (PCA 10), remove a cluster under 35%, retrain (Chen et al. 2018)",
         [] { return DefenseSpec(ActivationClustering{}); }},
        {FinePruning::name, "prune the last conv layer's least active channels until clean accuracy drops 10%, fine-tune (Liu et al. 2018)",
         [] { return DefenseSpec(FinePruning{}); }},
        {Anp::name, "learn neuron masks under adversarial neuron perturbation (eps 0.4), prune masks below 0.2 (Wu and Wang 2021)",
         [] { return DefenseSpec(Anp{}); }},
        {StripDefense::name, "reject inputs whose predictions stay certain under 100 superimposed clean images (entropy below the 1% FRR threshold) (Gao et al. 2019)",
         [] { return DefenseSpec(StripDefense{}); }},
        {NeuralCleanseDefense::name, "reverse-engineer a trigger per label, flag labels by the MAD anomaly index, unlearn their triggers (Wang et al. 2019)",
         [] { return DefenseSpec(NeuralCleanseDefense{}); }},
    };
    return table;
}

inline std::vector<std::string> defense_names() {
    std::vector<std::string> names;
    for (const auto& e : defense_table()) names.push_back(e.name);
    return names;
}

/// The defense called `name` with its defaults; std::invalid_argument listing the valid names otherwise.
inline DefenseSpec make_defense(const std::string& name) {
    for (const auto& e : defense_table())
        if (e.name == name) return e.make();
    std::string valid;
    for (const auto& n : defense_names()) valid += (valid.empty() ? "" : ", ") + n;
    throw std::invalid_argument("unknown defense '" + name + "'; valid names: " + valid);
}

/// The defense's parameters as JSON (its to_json).
inline nlohmann::ordered_json defense_parameters(const DefenseSpec& spec) {
    nlohmann::ordered_json j;
    std::visit([&](const auto& d) { j = d; }, spec.variant());
    return j;
}

/// What run_defense measured.
struct DefenseRun {
    std::string defense;
    nlohmann::ordered_json parameters;          ///< the defense's parameters
    nlohmann::ordered_json details;             ///< its own result (removed counts, flagged labels, pruned units, ...)
    std::optional<DetectionMetrics> detection;  ///< data-filtering defenses: finding the poisoned samples
    std::size_t retrained_on = 0;               ///< data-filtering defenses: training samples kept
    DefenseEffect effect;                       ///< before (the cell's model) and after, DER
    std::optional<DefenseEffect> input_filter;  ///< input filters (STRIP): before/after on the filter's inputs, used as effect
    std::vector<double> epoch_seconds, epoch_loss;  ///< retraining or fine-tuning
    double seconds = 0;                         ///< the whole defense
};

/// What a defense works with.
struct DefenseContext {
    const PoisonedCell& cell;
    const Dataset<float>& test;
    const Dataset<float>& triggered_test;
    DefenseObserver& observer;
    Sequential<float> model;  ///< a fresh copy of the backdoored model

    AttackMetrics measure(Sequential<float>& m) const {
        const Index b = cell.result.settings.eval_batch_size;
        return attack_metrics(predict(m, test, b), test.labels, predict(m, triggered_test, b), triggered_test.labels, cell.result.attack.label_mode());
    }
};

namespace defend_detail {

inline void keep_fit(DefenseRun& run, const FitResult& f) {
    for (const auto& e : f.epochs) run.epoch_seconds.push_back(e.seconds), run.epoch_loss.push_back(e.mean_loss);
}

/// Data filtering: drop `removed` from the poisoned set, score the detection, retrain, measure.
inline void filter_and_retrain(DefenseContext& ctx, DefenseRun& run, const std::vector<std::size_t>& removed) {
    const PoisonedCell& cell = ctx.cell;
    run.detection = detection_metrics(removed, cell.poison.poisoned_indices, cell.poisoned_train.labels.size());
    std::vector<char> drop(cell.poisoned_train.labels.size(), 0);
    for (std::size_t i : removed) drop[i] = 1;
    std::vector<std::size_t> keep;
    for (std::size_t i = 0; i < drop.size(); ++i)
        if (!drop[i]) keep.push_back(i);
    if (keep.empty()) throw std::invalid_argument(run.defense + ": every training sample was removed; nothing to retrain on");
    run.retrained_on = keep.size();
    const Dataset<float> kept = cell.poisoned_train.subset(keep);
    Sequential<float> model = mnist_cnn<float>(cell.result.seed);
    const FitResult f = lab_detail::train_model(model, kept, cell.result.settings, cell.result.seed, {}, ctx.observer.training_callbacks("retrained model"));
    keep_fit(run, f);
    ctx.model = std::move(model);
}

inline void refuse_per_batch(const PoisonedCell& cell, const std::string& defense) {
    if (cell.poison.per_batch)
        throw DefenseNotApplicable(defense + ": " + cell.result.attack.name() +
                                    " poisons per batch during training, so there is no fixed poisoned training set to filter");
}

}  // namespace defend_detail

inline void apply_defense(DefenseContext& ctx, DefenseRun& run, const SpectralSignatures& p) {
    defend_detail::refuse_per_batch(ctx.cell, run.defense);
    const auto r = spectral_signatures(ctx.model, ctx.cell.poisoned_train, ctx.cell.result.settings.num_classes, p, ctx.cell.result.settings.eval_batch_size);
    run.details = r;
    defend_detail::filter_and_retrain(ctx, run, r.removed);
}

inline void apply_defense(DefenseContext& ctx, DefenseRun& run, const ActivationClustering& p) {
    defend_detail::refuse_per_batch(ctx.cell, run.defense);
    const auto r = activation_clustering(ctx.model, ctx.cell.poisoned_train, ctx.cell.result.settings.num_classes, p, ctx.cell.result.settings.eval_batch_size);
    run.details = r;
    defend_detail::filter_and_retrain(ctx, run, r.removed);
}

inline void apply_defense(DefenseContext& ctx, DefenseRun& run, const FinePruning& p) {
    FinePruningObserver observer;
    observer.on_pruning_step = [&](std::size_t k, std::size_t channels, double acc) { ctx.observer.on_defense_progress("pruning (clean accuracy)", k, channels, acc); };
    int attempts = 0;
    observer.on_fine_tuning_attempt = [&](const FineTuningAttempt& a) {
        if (a.skipped_batches > 0)
            ctx.observer.on_defense_note(detail::format("fine-tuning at lr %g skipped %zu batches with a non-finite loss or gradient", a.lr,
                                                        a.skipped_batches));
        if (!a.collapsed) return;
        const std::string what = detail::format("fine-tuning at lr %g collapsed: clean accuracy %.2f%% < %.2f%% (the pruned model's less the allowed drop); ",
                                                a.lr, 100 * a.clean_accuracy, 100 * a.accuracy_floor);
        if (p.max_restarts == 0) ctx.observer.on_defense_note(what + "kept, as max_restarts is 0");
        else if (++attempts <= p.max_restarts) ctx.observer.on_defense_note(what + detail::format("undone, trying lr %g", a.lr / 10));
        else ctx.observer.on_defense_note(what + "undone; every try collapsed, so the pruned model is kept without fine-tuning");
    };
    observer.training_callbacks = ctx.observer.training_callbacks("fine-tuned model");
    const auto r = fine_prune(ctx.model, ctx.cell.clean_data, p, ctx.cell.result.settings.eval_batch_size, observer);
    run.details = r;
    defend_detail::keep_fit(run, r.fine_tuning);
}

inline void apply_defense(DefenseContext& ctx, DefenseRun& run, const Anp& p) {
    const auto progress = [&](std::size_t it, std::size_t total, double loss) { ctx.observer.on_defense_progress("ANP masks (loss)", it, total, loss); };
    run.details = anp_prune(ctx.model, ctx.cell.clean_data, p, progress);
}

inline void apply_defense(DefenseContext& ctx, DefenseRun& run, const StripDefense& p) {
    AttackMetrics before, after;
    run.details = defend_detail::strip_filter(ctx.model, ctx.test, ctx.cell.clean_data, ctx.cell.result.attack, p,
                                              ctx.cell.result.settings.eval_batch_size, before, after);
    run.input_filter = defense_effect(before, after);  // on STRIP's inputs, not the whole test set (defend_detection.hpp)
}

inline void apply_defense(DefenseContext& ctx, DefenseRun& run, const NeuralCleanseDefense& p) {
    NeuralCleanseDefenseSettings s = p.settings;
    s.unlearning.clean_share = 1.0;  // the defender's clean data is already the clean share
    const AttackSpec& attack = ctx.cell.result.attack;
    run.details = run_neural_cleanse_defense(ctx.model, ctx.cell.clean_data, ctx.test, &attack, s, [&](const ReversedTrigger<float>& t) {
        ctx.observer.on_defense_progress("Neural Cleanse labels (L1)", static_cast<std::size_t>(t.label) + 1,
                                         static_cast<std::size_t>(ctx.cell.result.settings.num_classes), t.l1_norm);
    });
}

/// Run `defense` on the cell's backdoored model (a copy) and measure the outcome on `test`.
inline DefenseRun run_defense(const PoisonedCell& cell, const Dataset<float>& test, const DefenseSpec& defense, DefenseObserver* observer = nullptr) {
    const auto t0 = std::chrono::steady_clock::now();
    defense.validate();
    if (cell.model_bytes.empty()) throw std::invalid_argument("run_defense: the cell holds no trained model");
    DefenseObserver none;
    const Dataset<float> triggered_test = triggered_copy(cell.result.attack, test);
    DefenseContext ctx{cell, test, triggered_test, observer ? *observer : none, cell.model()};
    DefenseRun run;
    run.defense = defense.name();
    run.parameters = defense_parameters(defense);
    std::visit([&](const auto& d) { apply_defense(ctx, run, d); }, defense.variant());
    run.effect = run.input_filter ? *run.input_filter : defense_effect(cell.result.backdoored.metrics, ctx.measure(ctx.model));
    run.seconds = lab_detail::seconds_since(t0);
    return run;
}

/// {"defense", "parameters", "details", "detection" (or null), "retrained_on", "before", "after", "der", "epoch_seconds", "epoch_loss", "seconds"}
template <typename BasicJson>
void to_json(BasicJson& j, const DefenseRun& r) {
    j = BasicJson::object();
    j["defense"] = r.defense;
    j["parameters"] = r.parameters;
    j["details"] = r.details;
    if (r.detection) j["detection"] = *r.detection;
    else j["detection"] = nullptr;
    j["retrained_on"] = r.retrained_on;
    j["input_filter"] = static_cast<bool>(r.input_filter);  // before/after measured on the filter's inputs
    const BasicJson effect = r.effect;
    for (const auto& [k, v] : effect.items()) j[k] = v;
    j["epoch_seconds"] = r.epoch_seconds;
    j["epoch_loss"] = r.epoch_loss;
    j["seconds"] = r.seconds;
}

}  // namespace eigencnn
