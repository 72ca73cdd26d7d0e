// SPDX-License-Identifier: MIT
// eigencnn/model/preact_resnet.hpp
//
// A pre-activation ResNet (He et al., 2016, "Identity Mappings in Deep
// Residual Networks"), of the shape BackdoorBench's PreActResNet18 has
// (kuangliu's PreActBlock), narrowed: widths {16, 32, 64} instead of
// {64, 128, 256, 512}, one stage per width. For a [N, 3, 32, 32] input:
//
//   Conv2d(3, w0, 3, 1, 1, no bias)                                        [N, w0, 32, 32]
//   per stage s (stride 1 for the first, 2 after), per block b:
//     first block of a stage that changes width or stride (projection):
//       BatchNorm2d, ReLU, Residual(body: Conv2d(3, stride), BatchNorm2d, ReLU, Conv2d(3);
//                                   shortcut: Conv2d(1, stride))
//     other blocks (identity shortcut):
//       Residual(body: BatchNorm2d, ReLU, Conv2d(3), BatchNorm2d, ReLU, Conv2d(3))
//                                                                          [N, w_last, 32 / 2^(stages-1), ...]
//   AdaptiveAvgPool2d(1), Flatten, Linear(w_last, classes)                 [N, classes]
//
// PyTorch's block computes out = relu(bn1(x)); shortcut = conv_sc(out) (or
// x); y = conv2(relu(bn2(conv1(out)))) + shortcut: the projection block
// above is exactly that, with bn1 and its ReLU before the Residual because
// both branches read relu(bn1(x)). Every Conv2d is bias-free, as there.
#pragma once

#include "../layers/adaptive_avgpool2d.hpp"
#include "../layers/batchnorm.hpp"
#include "../layers/conv2d.hpp"
#include "../layers/flatten.hpp"
#include "../layers/linear.hpp"
#include "../layers/relu.hpp"
#include "../layers/residual.hpp"
#include "sequential.hpp"

namespace eigencnn {

template <typename T>
Sequential<T> preact_resnet(const std::vector<Index>& widths = {16, 32, 64}, Index blocks_per_stage = 1, Index classes = 10,
                            Index in_channels = 3, std::uint64_t seed = kDefaultInitSeed) {
    if (widths.empty() || blocks_per_stage < 1 || classes < 1 || in_channels < 1)
        throw std::invalid_argument("preact_resnet: need at least one width, blocks_per_stage >= 1, classes >= 1 and in_channels >= 1");
    Sequential<T> net(seed);
    net.template emplace<Conv2d>(in_channels, widths[0], 3, 1, 1, no_bias);
    Index c = widths[0];
    for (std::size_t s = 0; s < widths.size(); ++s)
        for (Index b = 0; b < blocks_per_stage; ++b) {
            const Index w = widths[s], stride = (s > 0 && b == 0) ? 2 : 1;
            Residual<T> block;
            if (stride != 1 || c != w) {
                net.template emplace<BatchNorm2d>(c).template emplace<ReLU>();
                block.template emplace_body<Conv2d>(c, w, 3, stride, 1, no_bias);
                block.template emplace_shortcut<Conv2d>(c, w, 1, stride, 0, no_bias);
            } else {
                block.template emplace_body<BatchNorm2d>(c).template emplace_body<ReLU>();
                block.template emplace_body<Conv2d>(c, w, 3, 1, 1, no_bias);
            }
            block.template emplace_body<BatchNorm2d>(w).template emplace_body<ReLU>();
            block.template emplace_body<Conv2d>(w, w, 3, 1, 1, no_bias);
            net.add(std::move(block));
            c = w;
        }
    net.template emplace<AdaptiveAvgPool2d>(1).template emplace<Flatten>().template emplace<Linear>(c, classes);
    return net;
}

}  // namespace eigencnn
