// SPDX-License-Identifier: MIT
// eigencnn/train/fit.hpp
//
// fit: the whole training run, the top of three levels
//   fit(model, optimizer, loader, FitOptions, callbacks)   epochs, checkpoints, resume, callbacks
//     -> train_epoch(model, optimizer, loader, epoch)       one pass over the loader (train/trainer.hpp)
//       -> step: forward, cross_entropy, backward, optimizer.step()
//
// Epochs are numbered from 0; epoch e uses the loader's order for epoch e, so a
// run resumed after epoch k continues bitwise as the uninterrupted run would have.
// With FitOptions::checkpoint set, the model, the optimizer's state and the
// metadata FitOptions::settings + {"epochs_done": "<e + 1>"} are saved
// atomically (save_checkpoint) after every epoch e. With FitOptions::resume set,
// fit first loads that checkpoint (load_checkpoint) and refuses it, leaving the
// model and the optimizer as they were, when
//   - a setting in FitOptions::settings differs from or is missing in the checkpoint:
//       "<file>: cannot resume: the checkpoint has batch_size = '100', this run has '50'"
//   - its epochs_done is missing or not a whole number (CheckpointError naming the file and the key)
//   - its epochs_done exceeds FitOptions::epochs (the run would report epochs it did not train)
// Settings are strings compared exactly: write numbers with std::to_string
// (integers) or exact_decimal (floating point, all the digits needed to read back the same double).
#pragma once

#include "../io/checkpoint.hpp"
#include "../model/model_state.hpp"
#include "callbacks.hpp"
#include "trainer.hpp"

#include <climits>
#include <cstdlib>
#include <stdexcept>

namespace eigencnn {

struct FitOptions {
    int epochs = 1;                              ///< total epochs, counting those a resumed checkpoint has done
    std::string checkpoint;                      ///< save here after every epoch ("" for none)
    std::string resume;                          ///< continue from this checkpoint ("" for a fresh run)
    Metadata settings;                           ///< run settings a resumed checkpoint must hold unchanged; saved in every checkpoint
    NonFinite on_non_finite = NonFinite::Throw;  ///< passed to train_epoch
};

/// The metadata key holding the number of epochs a checkpoint has done.
inline constexpr const char* kEpochsDone = "epochs_done";

/// The shortest of %.15g, %.16g, %.17g that reads back as exactly `v`
/// (0.01 -> "0.01", 0.1 + 1e-12 -> "0.100000000001"), for settings that must compare exactly.
inline std::string exact_decimal(double v) {
    for (int digits = 15; digits < 17; ++digits) {
        std::string s = detail::format("%.*g", digits, v);
        if (std::strtod(s.c_str(), nullptr) == v) return s;
    }
    return detail::format("%.17g", v);  // always exact for a finite double
}

/// The checked epochs_done of a checkpoint's metadata; CheckpointError naming `where` and the key otherwise.
inline int epochs_done(const Metadata& meta, const std::string& where) {
    const auto it = meta.find(kEpochsDone);
    if (it == meta.end())
        throw CheckpointError(where + ": metadata key '" + kEpochsDone + "' is missing (not a checkpoint written by fit())");
    const std::string& v = it->second;
    const bool digits = !v.empty() && v.size() <= 10 && v.find_first_not_of("0123456789") == std::string::npos;
    const long long n = digits ? std::strtoll(v.c_str(), nullptr, 10) : -1;
    if (n < 0 || n > INT_MAX)
        throw CheckpointError(where + ": metadata key '" + kEpochsDone + "' is '" + v + "', not a whole number of epochs (0 to " +
                              std::to_string(INT_MAX) + ")");
    return static_cast<int>(n);
}

/// Throws std::runtime_error("<where>: cannot resume: ...") for the first setting of `run` that `checkpoint` lacks or holds otherwise.
inline void check_settings(const Metadata& checkpoint, const Metadata& run, const std::string& where) {
    for (const auto& kv : run) {
        const auto it = checkpoint.find(kv.first);
        if (it == checkpoint.end())
            throw std::runtime_error(where + ": cannot resume: the checkpoint has no setting " + kv.first + ", this run has '" + kv.second + "'");
        if (it->second != kv.second)
            throw std::runtime_error(where + ": cannot resume: the checkpoint has " + kv.first + " = '" + it->second + "', this run has '" +
                                     kv.second + "'");
    }
}

/// Mean throughput over epochs: images trained on / seconds spent (0 for no time).
inline double images_per_second(const std::vector<EpochStats>& epochs) {
    double images = 0, seconds = 0;
    for (const auto& e : epochs) images += e.images_per_second * e.seconds, seconds += e.seconds;
    return seconds > 0 ? images / seconds : 0;
}

namespace detail {

/// A copy of a model's weights and buffers and an optimizer's state, to undo a refused resume.
template <typename T>
class TrainingState {
public:
    TrainingState(Sequential<T>& model, Optimizer<T>& optimizer) : model_state_(model), steps_(optimizer.steps()) {
        for (auto* t : optimizer.state()) state_.push_back(*t);
    }
    void restore(Sequential<T>& model, Optimizer<T>& optimizer) const {
        model_state_.restore(model);
        auto state = optimizer.state();
        for (std::size_t i = 0; i < state.size(); ++i) *state[i] = state_[i];
        optimizer.set_steps(steps_);
    }

private:
    ModelState<T> model_state_;
    std::vector<Tensor<T>> state_;
    long long steps_;
};

}  // namespace detail

/// Train `model` with `optimizer` over `loader` until options.epochs epochs are done
/// (see the header comment); callbacks are called in the order given.
template <typename T>
FitResult fit(Sequential<T>& model, Optimizer<T>& optimizer, DataLoader<T>& loader, const FitOptions& options,
              const std::vector<Callback*>& callbacks = {}) {
    if (options.epochs < 0) throw std::invalid_argument("fit: epochs must be >= 0, got " + std::to_string(options.epochs));
    if (options.settings.count(kEpochsDone))
        throw std::invalid_argument(std::string("fit: '") + kEpochsDone + "' is fit's own checkpoint key, not a setting");
    for (std::size_t i = 0; i < callbacks.size(); ++i)
        if (!callbacks[i]) throw std::invalid_argument("fit: callback " + std::to_string(i) + " is null");

    FitResult result;
    if (!options.resume.empty()) {
        const detail::TrainingState<T> before(model, optimizer);
        const Metadata meta = load_checkpoint(options.resume, model, &optimizer);
        try {
            check_settings(meta, options.settings, options.resume);
            result.start_epoch = epochs_done(meta, options.resume);
            if (result.start_epoch > options.epochs)
                throw std::runtime_error(options.resume + ": cannot resume: the checkpoint has " + std::to_string(result.start_epoch) +
                                         " epochs done, more than this run's epochs = " + std::to_string(options.epochs) +
                                         " (the total, resumed epochs included; use at least " + std::to_string(result.start_epoch) + ")");
        } catch (const std::runtime_error&) {
            before.restore(model, optimizer);
            throw;
        }
        result.resumed_from = options.resume;
    }

    const FitInfo info{result.start_epoch, options.epochs,         loader.num_batches(), loader.batch_size(),
                       loader.dataset().size(), result.resumed_from};
    for (auto* c : callbacks) c->on_fit_begin(info);
    BatchCallback on_batch;
    if (!callbacks.empty())
        on_batch = [&callbacks](std::size_t done, std::size_t total, double loss) {
            for (auto* c : callbacks) c->on_batch_end(done, total, loss);
        };
    for (int e = result.start_epoch; e < options.epochs; ++e) {
        for (auto* c : callbacks) c->on_epoch_begin(e);
        const EpochStats s = train_epoch(model, optimizer, loader, static_cast<std::uint64_t>(e), on_batch, options.on_non_finite);
        result.epochs.push_back(s);
        result.epochs_done = e + 1;
        if (!options.checkpoint.empty()) {
            Metadata meta = options.settings;
            meta[kEpochsDone] = std::to_string(e + 1);
            save_checkpoint(options.checkpoint, model, &optimizer, meta);
        }
        for (auto* c : callbacks) c->on_epoch_end(e, s);
    }
    result.epochs_done = std::max(result.epochs_done, result.start_epoch);
    for (auto* c : callbacks) c->on_fit_end(result);
    return result;
}

}  // namespace eigencnn
