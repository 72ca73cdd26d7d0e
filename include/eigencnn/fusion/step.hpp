// SPDX-License-Identifier: MIT
// eigencnn/fusion/step.hpp
//
// FusedStep<T>: several neighbouring layers run as one step of an execution
// plan (fusion/plan.hpp). It borrows the layers (their parameters and
// parameter gradients are the layers' own) and keeps its own forward state.
//
//   forward(x)          the output of the step's last layer, bitwise as the layers one by one
//   backward(dy)        dL/dx; writes the layers' parameter gradients
//   backward_input(dy)  dL/dx alone; parameter gradients untouched
#pragma once

#include "../core/tensor.hpp"

#include <string>

namespace eigencnn {

template <typename T>
class FusedStep {
public:
    virtual ~FusedStep() = default;
    virtual const Tensor<T>& forward(const Tensor<T>& x) = 0;
    virtual const Tensor<T>& backward(const Tensor<T>& dy) = 0;
    virtual const Tensor<T>& backward_input(const Tensor<T>& dy) = 0;
    /// "Conv2d(...) + MaxPool2d(...) + ReLU()"
    virtual std::string name() const = 0;
};

}  // namespace eigencnn
