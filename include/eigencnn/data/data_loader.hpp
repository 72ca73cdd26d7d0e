// SPDX-License-Identifier: MIT
// eigencnn/data/data_loader.hpp
//
// DataLoader<T>: mini-batches of a dataset, as torch.utils.data.DataLoader
// with shuffle=True/False and drop_last=False. The order of epoch e is a
// permutation drawn from Rng(mix(seed, e)), so it depends only on the seed
// and the epoch number (a resumed run sees the same batches).
//
//   DataLoader<float> loader(train, 500, /*shuffle=*/true, /*seed=*/1);
//   Batch<float> b;
//   loader.set_epoch(e);
//   for (std::size_t i = 0; i < loader.num_batches(); ++i) { loader.load(i, b); ... }
//
// A per-batch transform (set_transform) runs on every batch load() returns,
// after the samples are gathered: training-time poisoning (WaNet) or data
// augmentation. It gets an Rng seeded from (loader seed, epoch, batch index)
// alone, so batch i of epoch e is the same on every run, whatever the number
// of threads and whichever batches were loaded before. Without a transform
// load() is unchanged.
#pragma once

#include "../core/random.hpp"
#include "dataset.hpp"

#include <functional>

namespace eigencnn {

template <typename T>
struct Batch {
    Tensor<T> images;                  ///< [B, C, H, W]
    std::vector<int> labels;           ///< B labels
    std::vector<std::size_t> indices;  ///< positions of the samples in the dataset
};

template <typename T>
class DataLoader {
public:
    /// Changes a gathered batch in place (images, labels; indices stay the dataset positions).
    using BatchTransform = std::function<void(Batch<T>&, Rng&)>;

    DataLoader(const Dataset<T>& data, Index batch_size, bool shuffle, std::uint64_t seed = 0)
        : data_(&data), batch_(batch_size), shuffle_(shuffle), seed_(seed) {
        if (batch_size < 1) throw std::invalid_argument("DataLoader: batch size must be >= 1, got " + std::to_string(batch_size));
        if (data.size() == 0) throw std::invalid_argument("DataLoader: the dataset is empty");
        if (data.images.shape().rank() < 1 || data.images.dim(0) != data.size())
            throw std::invalid_argument("DataLoader: " + std::to_string(data.images.shape().rank() ? data.images.dim(0) : 0) +
                                        " images but " + std::to_string(data.size()) + " labels");
        set_epoch(0);
    }

    /// Fix the sample order for epoch `epoch`.
    void set_epoch(std::uint64_t epoch) {
        epoch_ = epoch;
        if (shuffle_) {
            Rng rng(Rng::mix(seed_, epoch));
            order_ = rng.permutation(static_cast<std::size_t>(data_->size()));
        } else {
            order_.resize(static_cast<std::size_t>(data_->size()));
            for (std::size_t i = 0; i < order_.size(); ++i) order_[i] = i;
        }
    }

    std::size_t num_batches() const { return (order_.size() + static_cast<std::size_t>(batch_) - 1) / static_cast<std::size_t>(batch_); }
    Index batch_size() const { return batch_; }
    const Dataset<T>& dataset() const { return *data_; }
    std::uint64_t epoch() const { return epoch_; }

    /// Run `transform` on every batch from now on (an empty function removes it).
    void set_transform(BatchTransform transform) { transform_ = std::move(transform); }
    bool has_transform() const { return static_cast<bool>(transform_); }

    /// Seed of the transform's Rng for batch i of `epoch`: a stream of its own,
    /// apart from the shuffling stream Rng(mix(seed, epoch)).
    std::uint64_t transform_seed(std::uint64_t epoch, std::size_t i) const {
        return Rng::mix(Rng::mix(Rng::mix(seed_, 0x7472616e73666f72ULL /* "transfor" */), epoch), static_cast<std::uint64_t>(i));
    }

    /// Fill `out` with batch i of the current epoch (the last one may be smaller).
    void load(std::size_t i, Batch<T>& out) const {
        if (i >= num_batches())
            throw std::out_of_range("DataLoader::load: batch " + std::to_string(i) + " of " + std::to_string(num_batches()));
        const std::size_t begin = i * static_cast<std::size_t>(batch_);
        const std::size_t count = std::min(order_.size() - begin, static_cast<std::size_t>(batch_));
        out.indices.assign(order_.begin() + static_cast<std::ptrdiff_t>(begin),
                           order_.begin() + static_cast<std::ptrdiff_t>(begin + count));
        out.images.resize(data_->images.shape().with_batch(static_cast<Index>(count)));
        out.labels.resize(count);
        data_->gather(out.indices.data(), count, out.images, out.labels);
        if (transform_) {
            Rng rng(transform_seed(epoch_, i));
            transform_(out, rng);
        }
    }

private:
    const Dataset<T>* data_;
    Index batch_;
    bool shuffle_;
    std::uint64_t seed_;
    std::uint64_t epoch_ = 0;
    std::vector<std::size_t> order_;
    BatchTransform transform_;
};

}  // namespace eigencnn
