// SPDX-License-Identifier: MIT
// eigencnn/core/output_mask.hpp
//
// OutputMask<T>: per-output multipliers of a layer with weights, for pruning
// and for the defenses that learn or search masks (fine-pruning, ANP).
// Conv2d (one per output channel) and Linear (one per output unit) own one;
// Layer::output_mask() reaches it.
//
//   Conv2d:  x [N, C, H, W] -> y [N, OC, OH, OW]
//            y[n, o] = a[o] * (W[o] (*) x[n]) + c[o] * b[o]
//   Linear:  x [N, in] -> y [N, out]
//            y[n, o] = a[o] * (W[o] . x[n]) + c[o] * b[o]
//   a = weight_mask [out], c = bias_mask [out]; both 1 by default.
//
// set(m) sets a = c = m: y[o] = m[o] * (W[o] x + b[o]), so m[o] = 0 removes the
// unit (its output is 0, as if its weights and bias were zero) and a real m
// scales it. ANP (Wu and Wang 2021) masks the weights only and perturbs the
// bias on its own, which is why the two factors are apart.
//
// The layer computes with the effective weights a[o] W[o] and c[o] b[o]. With
// G_W, G_b the gradients with respect to those (what backward computes anyway):
//   dL/dW[o] = a[o] G_W[o]        (a unit masked to 0 does not learn)
//   dL/db[o] = c[o] G_b[o]
//   dL/da[o] = <G_W[o], W[o]>     (only when requires_grad(): ANP's mask gradient)
//   dL/dc[o] = G_b[o] b[o]
// Inactive (the default, and after clear()), the layer runs exactly as without
// a mask: no copy, no extra pass.
//
// Saving. Masks are not part of a checkpoint or a safetensors file: both save
// the layers' raw parameters, which is what keeps a pruned model a normal
// model (it loads in any program of ours and in PyTorch as a plain
// nn.Conv2d/nn.Linear). So a mask must be folded into the weights before a
// save: prune_units() and fold_into() do it (W[o] <- a[o] W[o], b[o] <- c[o] b[o]),
// and the savers refuse a model whose raw parameters would compute something
// else than its masks (check_folded). A folded 0/1 mask stays set, so pruned
// units stay at zero while the model trains on; after a load the mask is gone
// and only the zero weights remain.
#pragma once

#include "tensor.hpp"

#include <cmath>
#include <stdexcept>
#include <string>

namespace eigencnn {

template <typename T>
class OutputMask {
public:
    OutputMask() = default;
    explicit OutputMask(Index units) : units_(units) {}

    Index units() const { return units_; }
    /// Whether any factor is set (an inactive mask costs nothing).
    bool active() const { return active_; }

    /// a = c = m: y[o] = m[o] * (W[o] x + b[o]). m holds `units()` finite values.
    void set(const Tensor<T>& m) {
        check(m, "set");
        weight_ = m;
        bias_ = m;
        activate();
    }
    /// a alone (the weights' factor); c keeps its value (1 if it was never set).
    void set_weight_mask(const Tensor<T>& a) {
        check(a, "set_weight_mask");
        if (!active_) bias_ = Tensor<T>(Shape{units_}, T(1));
        weight_ = a;
        activate();
    }
    /// c alone (the bias's factor).
    void set_bias_mask(const Tensor<T>& c) {
        check(c, "set_bias_mask");
        if (!active_) weight_ = Tensor<T>(Shape{units_}, T(1));
        bias_ = c;
        activate();
    }
    /// Back to no mask (a = c = 1, inactive).
    void clear() {
        active_ = false;
        weight_ = Tensor<T>();
        bias_ = Tensor<T>();
        grad_weight_ = Tensor<T>();
        grad_bias_ = Tensor<T>();
    }

    /// a and c ([units] each; all ones when inactive).
    Tensor<T> weight_mask() const { return active_ ? weight_ : Tensor<T>(Shape{units_}, T(1)); }
    Tensor<T> bias_mask() const { return active_ ? bias_ : Tensor<T>(Shape{units_}, T(1)); }
    T weight_factor(Index o) const { return active_ ? weight_[o] : T(1); }
    T bias_factor(Index o) const { return active_ ? bias_[o] : T(1); }

    /// Whether backward also writes dL/da and dL/dc (off by default).
    void set_requires_grad(bool on) { requires_grad_ = on; }
    bool requires_grad() const { return requires_grad_; }
    /// dL/da and dL/dc of the last backward with requires_grad() (empty before).
    const Tensor<T>& grad_weight_mask() const { return grad_weight_; }
    const Tensor<T>& grad_bias_mask() const { return grad_bias_; }

    // --- for the layers (see the top of the file)

    /// The effective weights: rows of `weight` [units, R] scaled by a into `out`, bias by c.
    void apply(const T* weight, const T* bias, Index row_size, T* weight_out, T* bias_out) const {
        for (Index o = 0; o < units_; ++o) {
            const T a = weight_[o];
            for (Index r = 0; r < row_size; ++r) weight_out[o * row_size + r] = a * weight[o * row_size + r];
            if (bias) bias_out[o] = bias_[o] * bias[o];
        }
    }
    /// From G_W, G_b (gradients with respect to the effective weights, in place)
    /// to dL/dW, dL/db; and dL/da, dL/dc when requires_grad(). `bias` may be null (no bias).
    void finish_gradients(const T* weight, const T* bias, Index row_size, T* grad_weight, T* grad_bias) {
        if (requires_grad_) {
            grad_weight_.resize(Shape{units_});
            grad_bias_.resize(Shape{units_});
        }
        for (Index o = 0; o < units_; ++o) {
            T* g = grad_weight + o * row_size;
            const T* w = weight + o * row_size;
            if (requires_grad_) {
                T s = 0;
                for (Index r = 0; r < row_size; ++r) s += g[r] * w[r];
                grad_weight_[o] = s;
                grad_bias_[o] = bias ? grad_bias[o] * bias[o] : T(0);
            }
            const T a = weight_[o];
            for (Index r = 0; r < row_size; ++r) g[r] *= a;
            if (bias) grad_bias[o] *= bias_[o];
        }
    }

    /// Multiply the layer's raw weights by the mask in place (W[o] <- a[o] W[o], b[o] <- c[o] b[o]).
    /// A mask of 0s and 1s with a = c stays set (its units stay pruned while training); any other is cleared.
    void fold_into(T* weight, T* bias, Index row_size) {
        if (!active_) return;
        apply(weight, bias, row_size, weight, bias);
        bool binary = true;
        for (Index o = 0; o < units_; ++o)
            binary = binary && weight_[o] == bias_[o] && (weight_[o] == T(0) || weight_[o] == T(1));
        if (!binary) clear();
    }

    /// Throws std::logic_error unless the raw weights compute what the masked layer does
    /// (a[o] W[o] == W[o] and c[o] b[o] == b[o] for every o: factor 1, or a zero row): what a save needs.
    void check_folded(const T* weight, const T* bias, Index row_size, const std::string& layer) const {
        if (!active_) return;
        for (Index o = 0; o < units_; ++o) {
            bool same = !bias || bias_[o] * bias[o] == bias[o];
            for (Index r = 0; same && r < row_size; ++r) same = weight_[o] * weight[o * row_size + r] == weight[o * row_size + r];
            if (!same)
                throw std::logic_error(layer + ": output " + std::to_string(o) +
                                       " has a mask that is not folded into the weights, so a save would lose it "
                                       "(fold_output_masks(model) first)");
        }
    }

private:
    void check(const Tensor<T>& m, const char* what) const {
        if (m.shape() != Shape{units_})
            throw std::invalid_argument(std::string("OutputMask::") + what + ": expected a mask of shape " + Shape{units_}.str() + ", got " +
                                        m.shape().str());
        for (Index o = 0; o < units_; ++o)
            if (!std::isfinite(static_cast<double>(m[o])))
                throw std::invalid_argument(std::string("OutputMask::") + what + ": entry " + std::to_string(o) + " is not finite");
    }
    void activate() { active_ = true; }

    Index units_ = 0;
    bool active_ = false, requires_grad_ = false;
    Tensor<T> weight_, bias_;            // a, c [units] (empty while inactive)
    Tensor<T> grad_weight_, grad_bias_;  // dL/da, dL/dc
};

}  // namespace eigencnn
