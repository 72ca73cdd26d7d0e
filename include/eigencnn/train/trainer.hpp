// SPDX-License-Identifier: MIT
// eigencnn/train/trainer.hpp
//
// train_epoch: one pass over a DataLoader with cross-entropy loss:
//   for each batch: logits = model.forward(x); loss, dlogits = cross_entropy(logits, y);
//                   model.backward(dlogits); optimizer.step()
// Returns the mean loss, the wall-clock seconds and the throughput.
// A NaN or infinity in the loss or in any gradient stops training with an
// error naming the layer and the step, or skips the batch on request.
#pragma once

#include "../core/parallel.hpp"
#include "../data/data_loader.hpp"
#include "../loss/cross_entropy.hpp"
#include "../model/sequential.hpp"
#include "../optim/optimizer.hpp"

#include <chrono>
#include <cmath>
#include <functional>
#include <limits>

namespace eigencnn {

struct EpochStats {
    double mean_loss = 0;             ///< average of the batch losses, weighted by batch size (skipped batches left out)
    double seconds = 0;               ///< wall-clock time of the epoch
    double images_per_second = 0;     ///< samples processed per second
    std::size_t skipped_batches = 0;  ///< batches dropped for a non-finite loss or gradient (NonFinite::SkipBatch)
};

/// What train_epoch does when a loss or a gradient is NaN or infinite.
enum class NonFinite {
    Throw,     ///< stop with std::runtime_error naming the layer, epoch, batch and step (default)
    SkipBatch  ///< leave the weights and the optimizer untouched for that batch and go on
};

/// Called after every batch with (batches done, batches in the epoch, loss of that batch).
using BatchCallback = std::function<void(std::size_t, std::size_t, double)>;

namespace detail {

/// Why the loss is not finite: re-run forward layer by layer to find the first non-finite output.
template <typename T>
std::string non_finite_origin(Sequential<T>& model, const Tensor<T>& x) {
    if (!all_finite(x)) return "the input batch holds a non-finite value";
    const Tensor<T>* h = &x;
    for (std::size_t i = 0; i < model.size(); ++i) {
        h = &model[i].forward(*h);
        if (!all_finite(*h)) return "first non-finite output: layer " + std::to_string(i) + " (" + model[i].name() + ")";
    }
    return "every layer output is finite: the loss itself overflowed";
}

/// "" if every parameter gradient is finite, else which one is not.
template <typename T>
std::string non_finite_gradient(Sequential<T>& model) {
    for (std::size_t i = model.size(); i-- > 0;)
        for (const auto& p : model[i].parameters())
            if (!all_finite(*p.grad))
                return "non-finite gradient of '" + p.name + "' in layer " + std::to_string(i) + " (" + model[i].name() + ")";
    return "";
}

}  // namespace detail

/// Train `model` for one epoch over loader's epoch `epoch`: for each batch,
/// forward, cross-entropy, backward, optimizer step. A NaN or infinite loss
/// or gradient throws std::runtime_error that names the layer where it
/// arose, the epoch, the batch and the optimizer step, unless `on_non_finite`
/// is NonFinite::SkipBatch.
template <typename T>
EpochStats train_epoch(Sequential<T>& model, Optimizer<T>& optimizer, DataLoader<T>& loader, std::uint64_t epoch,
                       const BatchCallback& on_batch = {}, NonFinite on_non_finite = NonFinite::Throw) {
    const auto t0 = std::chrono::steady_clock::now();
    model.train();
    loader.set_epoch(epoch);
    Batch<T> batch;
    Tensor<T> grad;
    double loss_sum = 0;
    std::size_t seen = 0, processed = 0;
    EpochStats s;
    const std::size_t nb = loader.num_batches();
    for (std::size_t i = 0; i < nb; ++i) {
        loader.load(i, batch);
        processed += batch.labels.size();
        auto where = [&] {  // only built on the error path; the optimizer has not stepped for this batch yet
            return " at epoch " + std::to_string(epoch) + ", batch " + std::to_string(i) + " (step " + std::to_string(optimizer.steps() + 1) + ")";
        };
        const T loss = cross_entropy(model.forward(batch.images), batch.labels, grad);
        std::string problem;
        if (!std::isfinite(static_cast<double>(loss))) {
            problem = std::string("train_epoch: loss is ") + (std::isnan(loss) ? "NaN" : loss > 0 ? "+inf" : "-inf") + where();
            if (on_non_finite == NonFinite::Throw) problem += "; " + detail::non_finite_origin(model, batch.images);
        } else {
            model.backward(grad);
            const std::string g = detail::non_finite_gradient(model);
            if (!g.empty()) problem = "train_epoch: " + g + where();
        }
        if (!problem.empty()) {
            if (on_non_finite == NonFinite::Throw) throw std::runtime_error(problem);
            ++s.skipped_batches;
            if (on_batch) on_batch(i + 1, nb, static_cast<double>(loss));
            continue;
        }
        optimizer.step();
        loss_sum += static_cast<double>(loss) * static_cast<double>(batch.labels.size());
        seen += batch.labels.size();
        if (on_batch) on_batch(i + 1, nb, static_cast<double>(loss));
    }
    s.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    s.mean_loss = seen ? loss_sum / static_cast<double>(seen) : std::numeric_limits<double>::quiet_NaN();
    s.images_per_second = static_cast<double>(processed) / s.seconds;
    return s;
}

}  // namespace eigencnn
