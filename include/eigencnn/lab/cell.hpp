// SPDX-License-Identifier: MIT
// eigencnn/lab/cell.hpp
//
// One cell of the backdoor laboratory: poison a training set with one attack,
// train the notebook's model on it, and measure the attack.
//
//   LabSettings s;                                   // Adam lr 1e-3, batch 500, 10 epochs
//   AttackSpec a = make_attack("badnets-patch");
//   AttackCellResult r = run_attack_cell(train, test, s, a, /*seed=*/0);
//   r.metrics.attack_success_rate_non_target;        // BackdoorBench's ASR (backdoor/metrics.hpp)
//
// run_attack_cell loads nothing: it takes the training and test sets, copies
// the training set and poisons the copy. What it does, in order:
//   1. validates the settings, the data (images [N, 1, 28, 28], labels in [0, K))
//      and the attack on that data: std::invalid_argument before any training;
//   2. with LabSettings::clean_baseline, or for label-consistent (which needs it as
//      the PGD proxy), trains a clean model (same initial weights and batches as the
//      backdoored one) and measures it on the same clean and triggered test sets;
//   3. poisons: attack.poison(copy, mix(seed, 2)); label-consistent's PGD gets its
//      input gradient from the clean model (input_gradient_fn: cross_entropy, then
//      Sequential::backward_input in eval mode); per-batch WaNet installs its
//      transform with DataLoader::set_transform instead;
//   4. trains mnist_cnn(seed) with Adam through fit(), batches from
//      DataLoader(seed mix(seed, 1)), and measures it (predict, attack_metrics).
// The seed fixes every weight, batch and poisoned image: the same seed gives the
// same result apart from its timings (fields ending in "seconds").
// CellObserver hooks show progress (fit callbacks, PGD) and hand out the
// poisoned training set and the trained model (to draw or save them).
// JSON for the result: lab/json.hpp. Not in eigencnn.hpp (needs backdoor/attacks.hpp).
#pragma once

#include "../backdoor/attacks.hpp"
#include "../backdoor/metrics.hpp"
#include "../loss/cross_entropy.hpp"
#include "../model/mnist_cnn.hpp"
#include "../optim/adam.hpp"
#include "../train/fit.hpp"
#include "../train/inference.hpp"

#include <chrono>
#include <cstring>
#include <optional>

namespace eigencnn {

/// How a cell trains and evaluates (the notebook's settings by default).
struct LabSettings {
    int epochs = 10;
    Index batch_size = 500;
    double lr = 1e-3;              ///< Adam's learning rate
    Index eval_batch_size = 1000;  ///< images per forward when predicting
    int num_classes = 10;
    bool clean_baseline = false;   ///< also train and measure a clean model (always done for label-consistent)

    /// Throws std::invalid_argument naming the setting.
    void validate() const {
        if (epochs < 1) throw std::invalid_argument("lab: epochs must be >= 1, got " + std::to_string(epochs));
        if (batch_size < 1) throw std::invalid_argument("lab: batch_size must be >= 1, got " + std::to_string(batch_size));
        if (!(lr > 0) || !std::isfinite(lr)) throw std::invalid_argument("lab: lr must be a positive number, got " + std::to_string(lr));
        if (eval_batch_size < 1) throw std::invalid_argument("lab: eval_batch_size must be >= 1, got " + std::to_string(eval_batch_size));
        if (num_classes < 2) throw std::invalid_argument("lab: num_classes must be >= 2, got " + std::to_string(num_classes));
    }
};

/// A model's numbers on the clean and the triggered test set.
struct ModelMeasurement {
    AttackMetrics metrics;
    std::vector<double> epoch_seconds, epoch_loss;
};

/// What run_attack_cell measured.
struct AttackCellResult {
    AttackSpec attack = BadNetsPixel{};  ///< the attack with every parameter (its poison_rate is the cell's)
    LabSettings settings;
    std::uint64_t seed = 0;
    std::string data_fingerprint;        ///< data_fingerprint(train, test): which data the cell saw
    std::size_t train_images = 0, test_images = 0;
    std::size_t poisoned_images = 0;     ///< poisoned training images (per-batch WaNet: relabeled warps per epoch)
    bool per_batch_poisoning = false;    ///< poisoned by a DataLoader transform during training (WaNet)
    ModelMeasurement backdoored;         ///< the model trained on the poisoned set
    std::optional<ModelMeasurement> clean_model;  ///< the clean baseline / label-consistent's proxy
    std::optional<PgdResult> pgd;        ///< label-consistent: the proxy's mean loss before and after PGD
    double poison_seconds = 0;           ///< poisoning (label-consistent: PGD)
    double total_seconds = 0;            ///< the whole cell
};

/// Hooks into run_attack_cell; every one is a no-op unless overridden.
struct CellObserver {
    virtual ~CellObserver() = default;
    /// Callbacks for fit() while training `model_name` ("clean model", "backdoored model").
    virtual std::vector<Callback*> training_callbacks(const std::string& /*model_name*/) { return {}; }
    /// PGD of label-consistent: `done` of `total` gradient evaluations, last batch loss.
    virtual void on_pgd_progress(std::size_t /*done*/, std::size_t /*total*/, double /*loss*/) {}
    /// The training set before and after poisoning (unchanged for per-batch WaNet).
    virtual void on_poisoned(const Dataset<float>& /*clean*/, const Dataset<float>& /*poisoned*/, const PoisonResult&) {}
    /// The backdoored model once trained, before it is measured.
    virtual void on_trained(Sequential<float>& /*model*/) {}
};

/// The input gradient of `model`'s cross-entropy, for label-consistent's PGD:
/// forward in eval mode with gradients kept, cross_entropy, then
/// Sequential::backward_input (parameter gradients untouched). Returns the mean loss.
template <typename T>
InputGradientFn<T> input_gradient_fn(Sequential<T>& model) {
    return [&model](const Tensor<T>& x, const std::vector<int>& y, Tensor<T>& dloss_dx) -> double {
        InferenceScope<T> scope(model, /*grad_enabled=*/true);
        const Tensor<T>& z = model.forward(x);
        Tensor<T> dz;
        const T loss = cross_entropy(z, y, dz);
        dloss_dx = model.backward_input(dz);
        return static_cast<double>(loss);
    };
}

/// A 64-bit hash (16 hex digits) of both sets' shapes, labels and pixels.
inline std::string data_fingerprint(const Dataset<float>& train, const Dataset<float>& test) {
    std::uint64_t h = 0x6c61622d64617461ULL;
    auto add = [&h](const void* p, std::size_t bytes) {
        const auto* c = static_cast<const unsigned char*>(p);
        std::size_t i = 0;
        for (; i + 8 <= bytes; i += 8) {
            std::uint64_t w;
            std::memcpy(&w, c + i, 8);
            h = Rng::mix(h, w);
        }
        std::uint64_t tail = bytes;
        for (; i < bytes; ++i) tail = tail * 131 + c[i];
        h = Rng::mix(h, tail);
    };
    for (const Dataset<float>* d : {&train, &test}) {
        for (std::size_t k = 0; k < static_cast<std::size_t>(d->images.shape().rank()); ++k) {
            const std::uint64_t e = static_cast<std::uint64_t>(d->images.shape()[static_cast<Index>(k)]);
            add(&e, sizeof e);
        }
        add(d->labels.data(), d->labels.size() * sizeof(int));
        add(d->images.data(), static_cast<std::size_t>(d->images.size()) * sizeof(float));
    }
    return detail::format("%016llx", static_cast<unsigned long long>(h));
}

namespace lab_detail {

inline double seconds_since(std::chrono::steady_clock::time_point t0) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

/// Throws std::invalid_argument unless the data fit the notebook's model.
inline void check_data(const Dataset<float>& data, const std::string& which, int num_classes) {
    data.validate(num_classes);
    if (data.size() == 0) throw std::invalid_argument("lab: the " + which + " set is empty");
    if (data.sample_shape() != Shape{1, 1, 28, 28})
        throw std::invalid_argument("lab: the notebook's model takes images [N, 1, 28, 28]; the " + which + " set has " +
                                    data.images.shape().str());
}

/// Train `model` with Adam over `train` (batches seeded by mix(seed, 1), `transform` per batch if set).
inline FitResult train_model(Sequential<float>& model, const Dataset<float>& train, const LabSettings& s, std::uint64_t seed,
                             const DataLoader<float>::BatchTransform& transform, const std::vector<Callback*>& callbacks) {
    Adam<float> adam(model.parameters(), AdamOptions{s.lr});
    DataLoader<float> loader(train, s.batch_size, /*shuffle=*/true, Rng::mix(seed, 1));
    if (transform) loader.set_transform(transform);
    FitOptions fo;
    fo.epochs = s.epochs;
    return fit(model, adam, loader, fo, callbacks);
}

inline ModelMeasurement measure(Sequential<float>& model, const FitResult& fit_result, const Dataset<float>& test,
                                const Dataset<float>& triggered_test, const LabelMode& mode, Index batch_size) {
    ModelMeasurement m;
    m.metrics = attack_metrics(predict(model, test, batch_size), test.labels, predict(model, triggered_test, batch_size),
                               triggered_test.labels, mode);
    for (const auto& e : fit_result.epochs) m.epoch_seconds.push_back(e.seconds), m.epoch_loss.push_back(e.mean_loss);
    return m;
}

/// Samples a per-batch transform relabels in one epoch: sum over batches of int(B rate).
inline std::size_t per_batch_poisoned(std::size_t n, Index batch_size, double rate) {
    std::size_t total = 0;
    for (std::size_t begin = 0; begin < n; begin += static_cast<std::size_t>(batch_size))
        total += attack_detail::count_for_rate(rate, std::min(static_cast<std::size_t>(batch_size), n - begin));
    return total;
}

}  // namespace lab_detail

/// Poison, train and measure one cell (see the header comment).
inline AttackCellResult run_attack_cell(const Dataset<float>& train, const Dataset<float>& test, const LabSettings& settings,
                                        const AttackSpec& attack, std::uint64_t seed, CellObserver* observer = nullptr) {
    const auto t0 = std::chrono::steady_clock::now();
    CellObserver no_observer;
    CellObserver& obs = observer ? *observer : no_observer;
    settings.validate();
    lab_detail::check_data(train, "training", settings.num_classes);
    lab_detail::check_data(test, "test", settings.num_classes);
    attack.validate(train.sample_shape(), settings.num_classes);

    AttackCellResult r;
    r.attack = attack;
    r.settings = settings;
    r.seed = seed;
    r.data_fingerprint = data_fingerprint(train, test);
    r.train_images = train.labels.size();
    r.test_images = test.labels.size();
    const LabelMode mode = attack.label_mode();
    const Dataset<float> triggered_test = triggered_copy(attack, test);
    const bool label_consistent = attack.get<LabelConsistent>() != nullptr;

    Dataset<float> poisoned = train;
    PoisonResult poison;
    std::optional<Sequential<float>> clean;
    if (settings.clean_baseline || label_consistent) {
        clean.emplace(mnist_cnn<float>(seed));
        const FitResult f = lab_detail::train_model(*clean, train, settings, seed, {}, obs.training_callbacks("clean model"));
        r.clean_model = lab_detail::measure(*clean, f, test, triggered_test, mode, settings.eval_batch_size);
    }
    const auto tp = std::chrono::steady_clock::now();
    if (label_consistent) {
        const LabelConsistent& lc = *attack.get<LabelConsistent>();
        const auto class_size = static_cast<std::size_t>(std::count(train.labels.begin(), train.labels.end(), mode.target));
        const std::size_t images = lc.poison_count(train.labels.size(), class_size);
        const std::size_t batches = (images + static_cast<std::size_t>(lc.pgd.batch_size) - 1) / static_cast<std::size_t>(lc.pgd.batch_size);
        const std::size_t total = batches * static_cast<std::size_t>(lc.pgd.steps + 1);
        std::size_t done = 0;
        const InputGradientFn<float> gradient = input_gradient_fn(*clean);
        const InputGradientFn<float> counted = [&](const Tensor<float>& x, const std::vector<int>& y, Tensor<float>& g) {
            const double loss = gradient(x, y, g);
            obs.on_pgd_progress(++done, total, loss);
            return loss;
        };
        PgdResult pgd;
        poison = attack.poison(poisoned, Rng::mix(seed, 2), counted, &pgd);
        r.pgd = pgd;
    } else {
        poison = attack.poison(poisoned, Rng::mix(seed, 2));
    }
    clean.reset();  // free the proxy before training the backdoored model
    r.poison_seconds = lab_detail::seconds_since(tp);
    r.per_batch_poisoning = poison.per_batch;
    r.poisoned_images = poison.per_batch ? lab_detail::per_batch_poisoned(train.labels.size(), settings.batch_size, attack.get<WaNet>()->poison_rate)
                                         : poison.poisoned_indices.size();
    obs.on_poisoned(train, poisoned, poison);

    Sequential<float> model = mnist_cnn<float>(seed);
    const FitResult f = lab_detail::train_model(model, poisoned, settings, seed, attack.batch_transform<float>(train.sample_shape()),
                                                obs.training_callbacks("backdoored model"));
    obs.on_trained(model);
    r.backdoored = lab_detail::measure(model, f, test, triggered_test, mode, settings.eval_batch_size);
    r.total_seconds = lab_detail::seconds_since(t0);
    return r;
}

}  // namespace eigencnn
