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
#pragma once

#include "../core/random.hpp"
#include "dataset.hpp"

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
    }

private:
    const Dataset<T>* data_;
    Index batch_;
    bool shuffle_;
    std::uint64_t seed_;
    std::vector<std::size_t> order_;
};

}  // namespace eigencnn
