// SPDX-License-Identifier: MIT
// eigencnn/optim/optimizer.hpp
//
// Optimizer<T>: updates a fixed list of parameters from their gradients.
// Construct it from model.parameters(); call step() after backward().
#pragma once

#include "../core/layer.hpp"
#include "../core/parallel.hpp"

#include <algorithm>
#include <stdexcept>
#include <string>
#include <vector>

namespace eigencnn {

template <typename T>
class Optimizer {
public:
    explicit Optimizer(std::vector<Parameter<T>> params) : params_(std::move(params)) {
        for (const auto& p : params_)
            if (!p.value || !p.grad || p.value->shape() != p.grad->shape())
                throw std::invalid_argument("Optimizer: parameter '" + p.name + "' has no gradient of its own shape");
    }
    virtual ~Optimizer() = default;

    /// One update of every parameter.
    virtual void step() = 0;

    /// Set every gradient to zero (layers overwrite their gradients in
    /// backward, so a training loop does not need this).
    void zero_grad() {
        for (auto& p : params_) p.grad->set_zero();
    }

    /// Updates done so far.
    long long steps() const { return t_; }

    /// "Adam", "SGD", ...: checkpoints check it on resume.
    virtual std::string kind() const = 0;
    /// The tensors that, with steps(), make up the optimizer's state (moment
    /// estimates, momentum buffers), in a fixed order. Checkpoints save and
    /// restore them so that a resumed run continues bitwise as an uninterrupted one.
    virtual std::vector<Tensor<T>*> state() = 0;
    /// The learning rate the next step() uses; learning-rate schedules (optim/schedule.hpp) set it.
    /// Optimizers without one throw std::logic_error.
    virtual double lr() const { throw std::logic_error(kind() + ": no learning rate to read"); }
    virtual void set_lr(double /*lr*/) { throw std::logic_error(kind() + ": no learning rate to set"); }
    /// Set the number of updates done (for restoring a checkpoint).
    void set_steps(long long t) {
        if (t < 0) throw std::invalid_argument("Optimizer::set_steps: negative step count " + std::to_string(t));
        t_ = t;
    }
    const std::vector<Parameter<T>>& parameters() const { return params_; }

protected:
    std::vector<Parameter<T>> params_;
    long long t_ = 0;
};

}  // namespace eigencnn
