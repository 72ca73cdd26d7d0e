// SPDX-License-Identifier: MIT
// tests/synthetic_blocks.hpp: a small learnable MNIST-shaped data set for the lab's tests (test_lab, test_defend).
#pragma once

#include <eigencnn/eigencnn.hpp>

namespace eigencnn_test {

/// n images [n, 1, 28, 28]: noise in [0, 0.3) plus a bright 6x4 block whose place depends on the label (i % 10).
inline eigencnn::Dataset<float> blocks(eigencnn::Index n, std::uint64_t seed) {
    using eigencnn::Index;
    eigencnn::Dataset<float> ds;
    ds.images = eigencnn::Tensor<float>(eigencnn::Shape{n, 1, 28, 28});
    eigencnn::Rng rng(seed);
    for (Index i = 0; i < ds.images.size(); ++i) ds.images[i] = static_cast<float>(rng.uniform(0.0, 0.3));
    for (Index i = 0; i < n; ++i) {
        const int y = static_cast<int>(i % 10);
        ds.labels.push_back(y);
        const Index r0 = 2 + (y / 5) * 12, c0 = 2 + (y % 5) * 5;
        for (Index r = 0; r < 6; ++r)
            for (Index c = 0; c < 4; ++c) ds.images(i, 0, r0 + r, c0 + c) = 1.0f;
    }
    return ds;
}

}  // namespace eigencnn_test
