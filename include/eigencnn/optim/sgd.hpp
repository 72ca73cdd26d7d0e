// SPDX-License-Identifier: MIT
// eigencnn/optim/sgd.hpp
//
// SGD with optional momentum, as torch.optim.SGD (dampening 0):
//
//   g = grad + weight_decay * p
//   b = g                      on the first step
//   b = momentum * b + g       afterwards
//   d = nesterov ? g + momentum * b : b        (d = g when momentum == 0)
//   p -= lr * d
#pragma once

#include "optimizer.hpp"

#include <cmath>

namespace eigencnn {

struct SGDOptions {
    double lr = 1e-2;
    double momentum = 0.0;
    double weight_decay = 0.0;
    bool nesterov = false;
};

template <typename T>
class SGD final : public Optimizer<T> {
public:
    explicit SGD(std::vector<Parameter<T>> params, SGDOptions opt = {}) : Optimizer<T>(std::move(params)), opt_(opt) {
        if (!(opt_.lr >= 0) || !(opt_.momentum >= 0) || !(opt_.weight_decay >= 0))
            throw std::invalid_argument("SGD: need lr, momentum and weight_decay >= 0, got lr=" + std::to_string(opt_.lr) +
                                        " momentum=" + std::to_string(opt_.momentum) + " weight_decay=" + std::to_string(opt_.weight_decay));
        if (opt_.nesterov && opt_.momentum <= 0) throw std::invalid_argument("SGD: nesterov needs momentum > 0");
        if (opt_.momentum > 0)
            for (const auto& p : this->params_) buf_.emplace_back(p.value->shape());
    }

    void step() override {
        const bool first = (this->t_++ == 0);
        const T lr = static_cast<T>(opt_.lr), mu = static_cast<T>(opt_.momentum), wd = static_cast<T>(opt_.weight_decay);
        for (std::size_t i = 0; i < this->params_.size(); ++i) {
            auto p = this->params_[i].value->vector().array();
            auto grad = this->params_[i].grad->vector().array();
            if (mu == T(0)) {
                p -= lr * (grad + wd * p);
                continue;
            }
            auto b = buf_[i].vector().array();
            if (first) b = grad + wd * p;
            else b = mu * b + grad + wd * p;
            if (opt_.nesterov) p -= lr * (grad + wd * p + mu * b);
            else p -= lr * b;
        }
    }

    const SGDOptions& options() const { return opt_; }
    std::string kind() const override { return "SGD"; }
    double lr() const override { return opt_.lr; }
    void set_lr(double lr) override {
        if (!(lr >= 0) || !std::isfinite(lr)) throw std::invalid_argument("SGD::set_lr: need a finite lr >= 0, got " + std::to_string(lr));
        opt_.lr = lr;
    }
    std::vector<Tensor<T>*> state() override {
        std::vector<Tensor<T>*> s;
        for (auto& t : buf_) s.push_back(&t);
        return s;
    }

private:
    SGDOptions opt_;
    std::vector<Tensor<T>> buf_;
};

}  // namespace eigencnn
