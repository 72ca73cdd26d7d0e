// SPDX-License-Identifier: MIT
// eigencnn/data/dataset.hpp
//
// Dataset<T>: images [N, C, H, W] scaled to [0, 1] and their integer labels.
// load_mnist(dir, split) reads the four standard IDX file names (raw or with
// .gz appended) of MNIST or Fashion-MNIST.
#pragma once

#include "../core/omp.hpp"

#include "../core/tensor.hpp"
#include "idx.hpp"

#include <cstring>
#include <fstream>
#include <string>
#include <vector>

namespace eigencnn {

template <typename T>
struct Dataset {
    Tensor<T> images;         ///< [N, C, H, W]
    std::vector<int> labels;  ///< N labels

    Index size() const { return static_cast<Index>(labels.size()); }
    /// Shape of one sample, with a batch extent of 1: [1, C, H, W].
    Shape sample_shape() const { return images.shape().with_batch(1); }

    /// Throws std::invalid_argument unless images are [N, C, H, W] with N labels in [0, num_classes).
    void validate(int num_classes) const {
        if (images.shape().rank() != 4)
            throw std::invalid_argument("Dataset: images must be [N, C, H, W], got " + images.shape().str());
        if (images.dim(0) != size())
            throw std::invalid_argument("Dataset: " + std::to_string(images.dim(0)) + " images but " + std::to_string(size()) + " labels");
        for (std::size_t i = 0; i < labels.size(); ++i)
            if (labels[i] < 0 || labels[i] >= num_classes)
                throw std::invalid_argument("Dataset: label " + std::to_string(labels[i]) + " of sample " + std::to_string(i) +
                                            " is outside [0, " + std::to_string(num_classes) + ")");
    }

    /// The samples at `indices`, in that order.
    Dataset subset(const std::vector<std::size_t>& indices) const {
        Dataset out;
        out.images.resize(images.shape().with_batch(static_cast<Index>(indices.size())));
        out.labels.resize(indices.size());
        gather(indices.data(), indices.size(), out.images, out.labels);
        return out;
    }

    /// The first n samples (all of them if n >= size()).
    Dataset head(Index n) const {
        std::vector<std::size_t> idx(static_cast<std::size_t>(std::min(n, size())));
        for (std::size_t i = 0; i < idx.size(); ++i) idx[i] = i;
        return subset(idx);
    }

    /// Copy samples idx[0..count) into images_out (already shaped [count, ...]) and labels_out.
    void gather(const std::size_t* idx, std::size_t count, Tensor<T>& images_out, std::vector<int>& labels_out) const {
        const Index S = images.shape().sample_size();
        for (std::size_t i = 0; i < count; ++i) {
            if (idx[i] >= labels.size())
                throw std::out_of_range("Dataset: sample index " + std::to_string(idx[i]) + " >= size " + std::to_string(labels.size()));
            labels_out[i] = labels[idx[i]];
        }
        const Index n = static_cast<Index>(count);
        EIGENCNN_OMP(parallel for schedule(static))
        for (Index i = 0; i < n; ++i)
            std::memcpy(images_out.data() + i * S, images.data() + static_cast<Index>(idx[i]) * S, sizeof(T) * static_cast<std::size_t>(S));
    }
};

/// Build a dataset from IDX arrays: images [N, H, W] (or [N, C, H, W]) of
/// bytes scaled by 1/255, labels [N]. Names are used in error messages.
template <typename T>
Dataset<T> make_dataset(const IdxArray& images, const IdxArray& labels, const std::string& images_name = "images",
                        const std::string& labels_name = "labels") {
    if (images.dims.size() != 3 && images.dims.size() != 4)
        throw IdxError(images_name + ": expected images of 3 dimensions [N, H, W], found " + std::to_string(images.dims.size()));
    if (labels.dims.size() != 1)
        throw IdxError(labels_name + ": expected labels of 1 dimension [N], found " + std::to_string(labels.dims.size()));
    if (images.dims[0] != labels.dims[0])
        throw IdxError(images_name + " holds " + std::to_string(images.dims[0]) + " images but " + labels_name + " holds " +
                       std::to_string(labels.dims[0]) + " labels");
    Dataset<T> ds;
    const Index n = images.dims[0];
    const Index c = images.dims.size() == 4 ? images.dims[1] : 1;
    const Index h = images.dims[images.dims.size() - 2], w = images.dims.back();
    ds.images.resize(Shape{n, c, h, w});
    for (Index i = 0; i < ds.images.size(); ++i) ds.images[i] = static_cast<T>(images.data[static_cast<std::size_t>(i)]) / T(255);
    ds.labels.assign(labels.data.begin(), labels.data.end());
    return ds;
}

/// Path of an IDX file in dir: "dir/name" if it exists, else "dir/name.gz".
/// Throws IdxError listing both when neither exists.
inline std::string find_idx_file(const std::string& dir, const std::string& name) {
    const std::string raw = dir + "/" + name, gz = raw + ".gz";
    if (std::ifstream(raw).good()) return raw;
    if (std::ifstream(gz).good()) return gz;
    throw IdxError("MNIST file not found: neither " + raw + " nor " + gz + " exists");
}

enum class Split { Train, Test };

/// MNIST or Fashion-MNIST split from dir (train-*-ubyte or t10k-*-ubyte, raw or .gz).
template <typename T>
Dataset<T> load_mnist(const std::string& dir, Split split) {
    const std::string prefix = split == Split::Train ? "train" : "t10k";
    const std::string ip = find_idx_file(dir, prefix + "-images-idx3-ubyte");
    const std::string lp = find_idx_file(dir, prefix + "-labels-idx1-ubyte");
    Dataset<T> ds = make_dataset<T>(read_idx(ip), read_idx(lp), ip, lp);
    for (std::size_t i = 0; i < ds.labels.size(); ++i)
        if (ds.labels[i] > 9)
            throw IdxError(lp + ": label " + std::to_string(ds.labels[i]) + " of sample " + std::to_string(i) + " is not a digit 0-9");
    return ds;
}

}  // namespace eigencnn
