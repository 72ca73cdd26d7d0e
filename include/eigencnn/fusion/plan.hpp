// SPDX-License-Identifier: MIT
// eigencnn/fusion/plan.hpp
//
// The execution plan of a Sequential model: in which order its layers run
// and which neighbours run as one fused step. Two passes over the layers as
// the user added them, each matching built-in layer types (a user's layer
// never matches, so its semantics are never assumed):
//
//   pattern          layers (as added)                   rewrite
//   relu-after-pool  ReLU -> MaxPool2d                   run the pool first, then the ReLU: max(0, max(window)) =
//                                                        max(window of max(0, x)), NaN included, and the gradients
//                                                        agree, so the ReLU touches a quarter of the elements (2x2)
//   conv-pool        Conv2d -> MaxPool2d [-> ReLU]       one ConvPool step (fusion/conv_pool.hpp), image by image:
//                    (in execution order)                the conv output never leaves the cache; the backward visits
//                                                        only the pool's winners from 8 input channels up
//   conv-batchnorm   Conv2d -> BatchNorm2d               eval mode only (PlanOptions::fold_batchnorm, which Sequential
//                    [-> MaxPool2d [-> ReLU]]            sets in eval mode): one conv with W' = W * gamma / sqrt(var + eps),
//                                                        b' = (b - mean) * gamma / sqrt(var + eps) + beta
//                                                        (fusion/fold_batchnorm.hpp); with a pool after it, the folded
//                                                        conv runs through ConvPool ("conv-batchnorm-pool")
//   linear-batchnorm Linear -> BatchNorm1d               eval mode only: the same fold into the Linear's W and b
//
// Outputs are bitwise those of the layers run one by one, except for the
// BatchNorm folds, whose outputs and gradients agree with the layers' to
// rounding (folding reassociates: W * s summed, not W summed then scaled);
// gradients agree to rounding (bitwise on the dense path). Folds are a plan,
// not a change to the model: its layers and weights stay as they were added. A pattern that almost matches (a
// Conv2d whose MaxPool2d is one or two layers away) is reported in notes(),
// so that a model that loses its speed says why (Sequential::plan_summary()).
//
// A step's output is the output of layer b, as the user added them, when
// the steps run so far have executed exactly layers {0, ..., b}: only then
// can a tap (Sequential::forward with taps) read it. The plan without
// rewrites (PlanOptions{false, false}) exposes every layer's output.
#pragma once

#include "../layers/batchnorm.hpp"
#include "../layers/conv2d.hpp"
#include "../layers/linear.hpp"
#include "../layers/maxpool2d.hpp"
#include "../layers/relu.hpp"
#include "conv_pool.hpp"
#include "fold_batchnorm.hpp"
#include "step.hpp"

#include <algorithm>
#include <memory>
#include <optional>
#include <sstream>
#include <vector>

namespace eigencnn {

struct PlanOptions {
    bool reorder = true;  ///< relu-after-pool
    bool fuse = true;     ///< conv-pool
    bool fold_batchnorm = false;  ///< conv-batchnorm, linear-batchnorm: for eval mode only (Sequential sets it there)
};

template <typename T>
struct PlanStep {
    std::vector<std::size_t> layers;        ///< indices (as added) in the order the step runs them
    std::unique_ptr<FusedStep<T>> fused;    ///< null: a single layer, run by itself
    std::string pattern;                    ///< "conv-pool", "relu-after-pool", "conv-batchnorm[-pool]", "linear-batchnorm" or 
    std::optional<std::size_t> output_of;   ///< the layer whose output this step's output is, if any
};

template <typename T>
class ExecutionPlan {
public:
    ExecutionPlan() = default;

    /// Plan `layers` (which must outlive the plan: fused steps borrow them).
    ExecutionPlan(const std::vector<LayerPtr<T>>& layers, PlanOptions options) : options_(options) {
        const std::size_t n = layers.size();
        const auto is = [&](std::size_t i, auto* type) { return i < n && dynamic_cast<decltype(type)>(layers[i].get()) != nullptr; };
        using ConvT = Conv2d<T>*;
        using PoolT = MaxPool2d<T>*;
        using ReluT = ReLU<T>*;
        using BN2T = BatchNorm2d<T>*;
        using BN1T = BatchNorm1d<T>*;
        using LinearT = Linear<T>*;
        order_.resize(n);
        std::vector<bool> moved(n, false);  // relu-after-pool applied at this position
        for (std::size_t i = 0; i < n; ++i) order_[i] = i;
        if (options.reorder)
            for (std::size_t i = 0; i + 1 < n; ++i)
                if (is(i, ReluT{}) && is(i + 1, PoolT{})) {
                    std::swap(order_[i], order_[i + 1]);
                    moved[i] = moved[i + 1] = true;
                    ++i;
                }
        std::size_t done_max = 0, done_count = 0;  // executed layers so far: count and largest index
        for (std::size_t k = 0; k < n;) {
            PlanStep<T> step;
            const std::size_t at = order_[k];
            std::size_t len = 1;
            if (options.fold_batchnorm && is(at, ConvT{}) && k + 1 < n && is(order_[k + 1], BN2T{})) {
                const bool pool = options.fuse && k + 2 < n && is(order_[k + 2], PoolT{});
                const bool relu = pool && k + 3 < n && is(order_[k + 3], ReluT{});
                len = relu ? 4 : pool ? 3 : 2;
                step.fused = std::make_unique<FoldedBatchNorm<T, Conv2d>>(
                    *dynamic_cast<ConvT>(layers[at].get()), *dynamic_cast<BN2T>(layers[order_[k + 1]].get()),
                    pool ? dynamic_cast<PoolT>(layers[order_[k + 2]].get()) : nullptr, relu);
                step.pattern = pool ? "conv-batchnorm-pool" : "conv-batchnorm";
            } else if (options.fold_batchnorm && is(at, LinearT{}) && k + 1 < n && is(order_[k + 1], BN1T{})) {
                len = 2;
                step.fused = std::make_unique<FoldedBatchNorm<T, Linear>>(*dynamic_cast<LinearT>(layers[at].get()),
                                                                          *dynamic_cast<BN1T>(layers[order_[k + 1]].get()));
                step.pattern = "linear-batchnorm";
            } else if (options.fuse && is(at, ConvT{}) && k + 1 < n && is(order_[k + 1], PoolT{})) {
                const bool relu = k + 2 < n && is(order_[k + 2], ReluT{});
                len = relu ? 3 : 2;
                step.fused = std::make_unique<ConvPool<T>>(*dynamic_cast<ConvT>(layers[at].get()),
                                                           *dynamic_cast<PoolT>(layers[order_[k + 1]].get()), relu);
                step.pattern = "conv-pool";
            } else if (moved[k]) {
                step.pattern = "relu-after-pool";
            }
            for (std::size_t j = k; j < k + len; ++j) {
                step.layers.push_back(order_[j]);
                done_max = std::max(done_max, order_[j]);
                ++done_count;
            }
            if (done_max + 1 == done_count) step.output_of = done_max;
            steps_.push_back(std::move(step));
            k += len;
        }
        // Near misses: a Conv2d that does not run fused although a MaxPool2d follows closely.
        for (const auto& step : steps_) {
            if (step.fused || !is(step.layers[0], ConvT{})) continue;
            const std::size_t c = step.layers[0];
            for (std::size_t j = c + 1; j <= c + 3 && j < n; ++j)
                if (is(j, PoolT{})) {
                    std::string why = !options.fuse ? "fusion is off" : "";
                    for (std::size_t b = c + 1; b < j && why.empty(); ++b)
                        if (!is(b, ReluT{})) why = "layer " + std::to_string(b) + " (" + layers[b]->name() + ") stands between them";
                    if (why.empty()) why = "the ReLU between them was not moved behind the pool";
                    notes_.push_back("layer " + std::to_string(c) + " (" + layers[c]->name() + ") runs unfused: " + why +
                                     "; conv-pool needs Conv2d -> [ReLU ->] MaxPool2d");
                    break;
                }
        }
    }

    const std::vector<PlanStep<T>>& steps() const { return steps_; }
    std::vector<PlanStep<T>>& steps() { return steps_; }
    /// Layer indices in the order forward runs them (backward: the reverse).
    const std::vector<std::size_t>& order() const { return order_; }
    const std::vector<std::string>& notes() const { return notes_; }
    PlanOptions options() const { return options_; }

    /// Whether some step's output is layer i's output (so that a tap can read it).
    bool exposes(std::size_t i) const {
        for (const auto& s : steps_)
            if (s.output_of && *s.output_of == i) return true;
        return false;
    }

    /// Index of the step that runs layer i.
    std::size_t step_of(std::size_t i) const {
        for (std::size_t k = 0; k < steps_.size(); ++k)
            if (std::find(steps_[k].layers.begin(), steps_[k].layers.end(), i) != steps_[k].layers.end()) return k;
        throw std::out_of_range("ExecutionPlan::step_of: no layer " + std::to_string(i));
    }

    /// One line per step, then the notes.
    std::string describe(const std::vector<LayerPtr<T>>& layers) const {
        std::ostringstream os;
        os << "execution plan (" << steps_.size() << " steps; fusion " << (options_.fuse ? "on" : "off") << ", reorder "
           << (options_.reorder ? "on" : "off") << (options_.fold_batchnorm ? ", batchnorm folded (eval mode)" : "") << "):\n";
        for (std::size_t k = 0; k < steps_.size(); ++k) {
            const auto& s = steps_[k];
            os << "  step " << k << ": ";
            if (!s.pattern.empty()) os << s.pattern << " [layers ";
            for (std::size_t j = 0; j < s.layers.size(); ++j) os << (j ? " -> " : "") << s.layers[j];
            if (!s.pattern.empty()) os << "]";
            os << "  ";
            for (std::size_t j = 0; j < s.layers.size(); ++j) os << (j ? " + " : "") << layers[s.layers[j]]->name();
            if (s.pattern.find("batchnorm") != std::string::npos)
                os << "  (BatchNorm folded: W' = W * gamma / sqrt(var + eps), b' = (b - mean) * gamma / sqrt(var + eps) + beta)";
            os << '\n';
        }
        for (const auto& note : notes_) os << "  note: " << note << '\n';
        return os.str();
    }

private:
    PlanOptions options_;
    std::vector<std::size_t> order_;
    std::vector<PlanStep<T>> steps_;
    std::vector<std::string> notes_;
};

}  // namespace eigencnn
