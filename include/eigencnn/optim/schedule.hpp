// SPDX-License-Identifier: MIT
// eigencnn/optim/schedule.hpp
//
// Learning-rate schedules, as torch.optim.lr_scheduler, in PyTorch's closed
// forms, with e = last_epoch (0 at construction, +1 per step()) and
// base_lr the optimizer's learning rate when the schedule was made:
//
//   StepLR(step_size, gamma=0.1):            lr = base_lr * gamma^floor(e / step_size)
//   CosineAnnealingLR(T_max, eta_min=0):     lr = eta_min + (base_lr - eta_min) * (1 + cos(pi * e / T_max)) / 2
//
// Call step() once per epoch after the epoch's optimizer steps, as in
// PyTorch. Each schedule sets the optimizer's lr (Optimizer::set_lr) at
// construction (to lr(0) = base_lr) and at every step(). The closed form
// depends on e alone, so resuming is set_last_epoch(e) on a schedule made
// over an optimizer built with the same base lr (checkpoints do not store lr).
#pragma once

#include "optimizer.hpp"

#include <cmath>

namespace eigencnn {

template <typename T>
class LRScheduler {
public:
    virtual ~LRScheduler() = default;

    /// The learning rate of epoch e.
    virtual double lr_at(long long e) const = 0;

    /// Next epoch: last_epoch += 1 and the optimizer's lr set to lr_at(last_epoch).
    void step() { set_last_epoch(last_epoch_ + 1); }
    /// Jump to epoch e (for resuming) and set the optimizer's lr to lr_at(e).
    void set_last_epoch(long long e) {
        if (e < 0) throw std::invalid_argument("LRScheduler::set_last_epoch: negative epoch " + std::to_string(e));
        last_epoch_ = e;
        optimizer_.set_lr(lr_at(e));
    }
    long long last_epoch() const { return last_epoch_; }
    double base_lr() const { return base_lr_; }
    /// The lr the optimizer has now, as PyTorch's get_last_lr().
    double get_last_lr() const { return optimizer_.lr(); }

protected:
    explicit LRScheduler(Optimizer<T>& optimizer) : optimizer_(optimizer), base_lr_(optimizer.lr()) {}

    Optimizer<T>& optimizer_;
    double base_lr_;
    long long last_epoch_ = 0;
};

template <typename T>
class StepLR final : public LRScheduler<T> {
public:
    StepLR(Optimizer<T>& optimizer, long long step_size, double gamma = 0.1) : LRScheduler<T>(optimizer), step_size_(step_size), gamma_(gamma) {
        if (step_size_ < 1 || !(gamma_ >= 0) || !std::isfinite(gamma_))
            throw std::invalid_argument("StepLR: need step_size >= 1 and a finite gamma >= 0, got step_size=" + std::to_string(step_size) +
                                        ", gamma=" + std::to_string(gamma));
        this->set_last_epoch(0);
    }
    double lr_at(long long e) const override { return this->base_lr_ * std::pow(gamma_, static_cast<double>(e / step_size_)); }

private:
    long long step_size_;
    double gamma_;
};

template <typename T>
class CosineAnnealingLR final : public LRScheduler<T> {
public:
    CosineAnnealingLR(Optimizer<T>& optimizer, long long T_max, double eta_min = 0)  // NOLINT: PyTorch's name
        : LRScheduler<T>(optimizer), t_max_(T_max), eta_min_(eta_min) {
        if (t_max_ < 1 || !(eta_min_ >= 0) || !std::isfinite(eta_min_))
            throw std::invalid_argument("CosineAnnealingLR: need T_max >= 1 and a finite eta_min >= 0, got T_max=" + std::to_string(T_max) +
                                        ", eta_min=" + std::to_string(eta_min));
        this->set_last_epoch(0);
    }
    double lr_at(long long e) const override {
        const double pi = std::acos(-1.0);
        return eta_min_ + (this->base_lr_ - eta_min_) * (1 + std::cos(pi * static_cast<double>(e) / static_cast<double>(t_max_))) / 2;
    }

private:
    long long t_max_;
    double eta_min_;
};

}  // namespace eigencnn
