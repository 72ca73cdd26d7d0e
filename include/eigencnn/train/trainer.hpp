// eigencnn/train/trainer.hpp
//
// train_epoch: one pass over a DataLoader with cross-entropy loss:
//   for each batch: logits = model.forward(x); loss, dlogits = cross_entropy(logits, y);
//                   model.backward(dlogits); optimizer.step()
// Returns the mean loss, the wall-clock seconds and the throughput.
#pragma once

#include "../data/data_loader.hpp"
#include "../loss/cross_entropy.hpp"
#include "../model/sequential.hpp"
#include "../optim/optimizer.hpp"

#include <chrono>
#include <cmath>
#include <functional>

namespace eigencnn {

struct EpochStats {
    double mean_loss = 0;          ///< average of the batch losses, weighted by batch size
    double seconds = 0;            ///< wall-clock time of the epoch
    double images_per_second = 0;  ///< samples trained on per second
};

/// Called after every batch with (batches done, batches in the epoch, loss of that batch).
using BatchCallback = std::function<void(std::size_t, std::size_t, double)>;

/// Train `model` for one epoch over loader's epoch `epoch`. A loss that is
/// NaN or infinite stops training with std::runtime_error naming the epoch
/// and batch.
template <typename T>
EpochStats train_epoch(Sequential<T>& model, Optimizer<T>& optimizer, DataLoader<T>& loader, std::uint64_t epoch,
                       const BatchCallback& on_batch = {}) {
    const auto t0 = std::chrono::steady_clock::now();
    loader.set_epoch(epoch);
    Batch<T> batch;
    Tensor<T> grad;
    double loss_sum = 0;
    std::size_t seen = 0;
    const std::size_t nb = loader.num_batches();
    for (std::size_t i = 0; i < nb; ++i) {
        loader.load(i, batch);
        const T loss = cross_entropy(model.forward(batch.images), batch.labels, grad);
        if (!std::isfinite(static_cast<double>(loss)))
            throw std::runtime_error("train_epoch: loss is " + std::to_string(static_cast<double>(loss)) + " at epoch " +
                                     std::to_string(epoch) + ", batch " + std::to_string(i));
        model.backward(grad);
        optimizer.step();
        loss_sum += static_cast<double>(loss) * static_cast<double>(batch.labels.size());
        seen += batch.labels.size();
        if (on_batch) on_batch(i + 1, nb, static_cast<double>(loss));
    }
    EpochStats s;
    s.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    s.mean_loss = loss_sum / static_cast<double>(seen);
    s.images_per_second = static_cast<double>(seen) / s.seconds;
    return s;
}

}  // namespace eigencnn
