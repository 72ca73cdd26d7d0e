// SPDX-License-Identifier: MIT
// eigencnn/optim/adamw.hpp
//
// AdamW (Loshchilov & Hutter, 2019): Adam with decoupled weight decay, as
// torch.optim.AdamW with its defaults (lr 1e-3, betas (0.9, 0.999), eps 1e-8,
// weight_decay 1e-2, amsgrad off) and update order:
//
//   p *= 1 - lr * weight_decay                      (decay the weights, not the gradient)
//   m  = beta1 * m + (1 - beta1) * g
//   v  = beta2 * v + (1 - beta2) * g^2
//   p -= (lr / (1 - beta1^t)) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)
// Elementwise; each tensor is split into contiguous slices, one per thread,
// so the result does not depend on the thread count.
#pragma once

#include "../core/threads.hpp"
#include "optimizer.hpp"

#include <cmath>

namespace eigencnn {

struct AdamWOptions {
    double lr = 1e-3;
    double beta1 = 0.9;
    double beta2 = 0.999;
    double eps = 1e-8;
    double weight_decay = 1e-2;
};

template <typename T>
class AdamW final : public Optimizer<T> {
public:
    explicit AdamW(std::vector<Parameter<T>> params, AdamWOptions opt = {}) : Optimizer<T>(std::move(params)), opt_(opt) {
        if (!(opt_.lr >= 0) || !(opt_.eps >= 0) || !(opt_.weight_decay >= 0) || !(opt_.beta1 >= 0 && opt_.beta1 < 1) ||
            !(opt_.beta2 >= 0 && opt_.beta2 < 1) || !std::isfinite(opt_.lr) || !std::isfinite(opt_.weight_decay))
            throw std::invalid_argument("AdamW: need lr, eps, weight_decay >= 0 and betas in [0, 1), got lr=" + std::to_string(opt_.lr) +
                                        " betas=(" + std::to_string(opt_.beta1) + ", " + std::to_string(opt_.beta2) +
                                        ") eps=" + std::to_string(opt_.eps) + " weight_decay=" + std::to_string(opt_.weight_decay));
        for (const auto& p : this->params_) {
            m_.emplace_back(p.value->shape());
            v_.emplace_back(p.value->shape());
        }
    }

    void step() override {
        const long long t = ++this->t_;
        const T b1 = static_cast<T>(opt_.beta1), b2 = static_cast<T>(opt_.beta2);
        const T decay = static_cast<T>(1 - opt_.lr * opt_.weight_decay);
        const T step_size = static_cast<T>(opt_.lr / (1 - std::pow(opt_.beta1, static_cast<double>(t))));
        const T bc2_sqrt = static_cast<T>(std::sqrt(1 - std::pow(opt_.beta2, static_cast<double>(t))));
        const T eps = static_cast<T>(opt_.eps);
        for (std::size_t i = 0; i < this->params_.size(); ++i) {
            const Index size = this->params_[i].value->size();
            T* pd = this->params_[i].value->data();
            const T* gd = this->params_[i].grad->data();
            T* md = m_[i].data();
            T* vd = v_[i].data();
            for_each_fixed_chunk(size, [&](Index lo, Index n) {  // bitwise the same on any thread count
                using Array = Eigen::Array<T, Eigen::Dynamic, 1>;
                Eigen::Map<Array> p(pd + lo, n), m(md + lo, n), v(vd + lo, n);
                const Eigen::Map<const Array> g(gd + lo, n);
                p *= decay;
                m = b1 * m + (T(1) - b1) * g;
                v = b2 * v + (T(1) - b2) * g.square();
                p -= step_size * m / (v.sqrt() / bc2_sqrt + eps);
            });
        }
    }

    const AdamWOptions& options() const { return opt_; }
    std::string kind() const override { return "AdamW"; }
    double lr() const override { return opt_.lr; }
    void set_lr(double lr) override {
        if (!(lr >= 0) || !std::isfinite(lr)) throw std::invalid_argument("AdamW::set_lr: need a finite lr >= 0, got " + std::to_string(lr));
        opt_.lr = lr;
    }
    std::vector<Tensor<T>*> state() override {
        std::vector<Tensor<T>*> s;
        for (auto& t : m_) s.push_back(&t);
        for (auto& t : v_) s.push_back(&t);
        return s;
    }
    /// First and second moment estimates of parameter i.
    const Tensor<T>& exp_avg(std::size_t i) const { return m_.at(i); }
    const Tensor<T>& exp_avg_sq(std::size_t i) const { return v_.at(i); }

private:
    AdamWOptions opt_;
    std::vector<Tensor<T>> m_, v_;
};

}  // namespace eigencnn
