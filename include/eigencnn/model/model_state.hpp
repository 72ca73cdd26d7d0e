// SPDX-License-Identifier: MIT
// eigencnn/model/model_state.hpp
//
// ModelState: a copy of a model's parameters and buffers (running statistics),
// taken to undo a change later: a refused resume (train/fit.hpp), a
// fine-tuning that collapsed (backdoor/defenses/fine_pruning.hpp).
//
//   ModelState<float> before(model);   // copies every parameter and buffer
//   ... train ...
//   before.restore(model);             // the same values again, bitwise
//
// Output masks (core/output_mask.hpp) are not state that training changes and
// are not copied; nor are the layers' random streams (Dropout's), so a run after
// restore() draws other masks than the first run did. restore() refuses a model
// whose tensors are not the ones copied (another count, name or shape), naming
// the tensor, before it changes anything.
#pragma once

#include "sequential.hpp"

#include <stdexcept>
#include <string>
#include <vector>

namespace eigencnn {

template <typename T>
class ModelState {
public:
    explicit ModelState(Sequential<T>& model) {
        for (auto& p : model.parameters()) names_.push_back(p.name), values_.push_back(*p.value);
        for (auto& b : model.buffers()) names_.push_back(b.name), values_.push_back(*b.value);
    }

    /// Puts the copied values back into `model` (the model copied, or one of the same architecture).
    void restore(Sequential<T>& model) const {
        std::vector<std::string> names;
        std::vector<Tensor<T>*> targets;
        for (auto& p : model.parameters()) names.push_back(p.name), targets.push_back(p.value);
        for (auto& b : model.buffers()) names.push_back(b.name), targets.push_back(b.value);
        if (targets.size() != values_.size())
            throw std::invalid_argument("ModelState::restore: the model has " + std::to_string(targets.size()) + " parameters and buffers, the copy " +
                                        std::to_string(values_.size()));
        for (std::size_t i = 0; i < targets.size(); ++i) {
            if (names[i] != names_[i])
                throw std::invalid_argument("ModelState::restore: tensor " + std::to_string(i) + " is " + names[i] + " in the model, " + names_[i] +
                                            " in the copy");
            if (targets[i]->shape() != values_[i].shape())
                throw std::invalid_argument("ModelState::restore: " + names_[i] + " is " + targets[i]->shape().str() + " in the model, " +
                                            values_[i].shape().str() + " in the copy");
        }
        for (std::size_t i = 0; i < targets.size(); ++i) *targets[i] = values_[i];
    }

private:
    std::vector<std::string> names_;
    std::vector<Tensor<T>> values_;
};

}  // namespace eigencnn
