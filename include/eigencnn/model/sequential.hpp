// SPDX-License-Identifier: MIT
// eigencnn/model/sequential.hpp
//
// Sequential<T>: layers applied in order, as torch.nn.Sequential.
//
//   Sequential<float> net(/*seed=*/42);
//   net.add(Conv2d<float>(1, 16, 5)).add(ReLU<float>()).add(MaxPool2d<float>(2));
//   const Tensor<float>& logits = net.forward(x);   // x [N, 1, 28, 28]
//   net.backward(dlogits);                          // fills every parameter gradient
//   net.backward_input(dlogits);                    // or: dL/dx alone, parameter gradients untouched
//   Adam<float> opt(net.parameters());
//
// Each added layer with parameters is re-initialised from the model's
// generator, so one seed fixes every initial weight; each layer's own random
// stream is seeded from the model's seed and the layer's index. A shape
// mismatch anywhere is a std::invalid_argument that names the layer (index
// and description), the input shape it got and the shape it expected.
//
// The layers run as an execution plan (fusion/plan.hpp): a ReLU directly
// followed by a MaxPool2d runs after it, and Conv2d -> MaxPool2d [-> ReLU]
// runs as one fused step, with bitwise the same outputs. In eval mode the
// plan also folds each BatchNorm into the Conv2d or Linear before it
// (fusion/fold_batchnorm.hpp; outputs equal to rounding); train mode never
// folds, and the layers themselves are never changed. plan_summary()
// prints the plan of the current mode; set_fusion(false) turns the fused steps and folds off.
// Everything a user sees is in terms of the layers as they were added:
// indices, names, specs, parameters, checkpoints, and taps: forward(x,
// layers, tap) hands tap the output of each listed layer; when a listed
// layer's output does not exist in the plan (inside a fused step, or a ReLU
// moved behind its pool) that forward runs the layers one by one, in the
// order they were added.
//
// Mode and stored state are apart, as in PyTorch: train()/eval() choose the
// layers' behaviour; set_grad_enabled(false) lets forward keep nothing for
// backward (inference; predict() and friends use InferenceScope for both).
#pragma once

#include "../core/init.hpp"
#include "../core/layer.hpp"
#include "../fusion/plan.hpp"

#include <functional>
#include <iomanip>
#include <ostream>
#include <sstream>
#include <type_traits>
#include <utility>

namespace eigencnn {

/// Called by a tapped forward with (layer index as added, that layer's output for the batch).
template <typename T>
using LayerTap = std::function<void(std::size_t, const Tensor<T>&)>;

template <typename T>
class Sequential {
public:
    explicit Sequential(std::uint64_t seed = kDefaultInitSeed) : seed_(seed), rng_(seed) {}

    Sequential(Sequential&& o) noexcept { *this = std::move(o); }
    Sequential& operator=(Sequential&& o) noexcept {
        seed_ = o.seed_;
        rng_ = o.rng_;
        mode_ = o.mode_;
        grad_enabled_ = o.grad_enabled_;
        input_grad_ = o.input_grad_;
        fusion_ = o.fusion_;
        layers_ = std::move(o.layers_);
        plan_ = std::move(o.plan_);  // fused steps point at the layers, which moved with their unique_ptrs
        eval_plan_ = std::move(o.eval_plan_);
        plain_plan_ = std::move(o.plain_plan_);
        last_plan_ = nullptr;
        return *this;
    }

    /// Append a layer (moved in). Returns *this for chaining.
    template <typename L, typename = std::enable_if_t<std::is_base_of_v<Layer<T>, std::decay_t<L>>>>
    Sequential& add(L&& layer) {
        return add(LayerPtr<T>(new std::decay_t<L>(std::forward<L>(layer))));
    }

    Sequential& add(LayerPtr<T> layer) {
        if (!layer) throw std::invalid_argument("Sequential::add: null layer");
        layer->reset_parameters(rng_);
        layer->rng().reseed(stream_seed(layers_.size()));
        layer->set_mode(mode_);
        layer->set_grad_enabled(grad_enabled_);
        layers_.push_back(std::move(layer));
        replan();
        return *this;
    }

    /// Construct a layer in place: net.emplace<Conv2d>(1, 16, 5).
    template <template <typename> class L, typename... Args>
    Sequential& emplace(Args&&... args) {
        return add(LayerPtr<T>(new L<T>(std::forward<Args>(args)...)));
    }

    std::size_t size() const { return layers_.size(); }
    Layer<T>& operator[](std::size_t i) { return *layers_.at(i); }
    const Layer<T>& operator[](std::size_t i) const { return *layers_.at(i); }

    /// The order forward runs the layers in (indices; backward runs it in reverse).
    const std::vector<std::size_t>& execution_order() const { return plan_.order(); }
    /// The plan forward runs in the current mode (eval mode's folds BatchNorm layers).
    const ExecutionPlan<T>& plan() const { return active_plan(); }

    /// Output shape for an input of shape `in`; throws on the first layer that cannot take its input.
    Shape output_shape(const Shape& in) const {
        Shape s = in;
        for (std::size_t i = 0; i < layers_.size(); ++i) s = checked_shape(i, s);
        return s;
    }

    const Tensor<T>& forward(const Tensor<T>& x) { return run(active_plan(), x, {}, {}); }

    /// forward that also hands tap(i, output of layer i) for every i in `layers`
    /// (indices as added, called in increasing order). The output references
    /// are valid during the call only.
    const Tensor<T>& forward(const Tensor<T>& x, const std::vector<std::size_t>& layers, const LayerTap<T>& tap) {
        for (std::size_t i : layers)
            if (i >= layers_.size())
                throw std::out_of_range("Sequential::forward: tap on layer " + std::to_string(i) + " of a model with " +
                                        std::to_string(layers_.size()) + " layers");
        bool visible = true;
        for (std::size_t i : layers) visible = visible && active_plan().exposes(i);
        if (visible) return run(active_plan(), x, layers, tap);
        if (plain_plan_.steps().size() != layers_.size()) plain_plan_ = ExecutionPlan<T>(layers_, PlanOptions{false, false});
        return run(plain_plan_, x, layers, tap);
    }

    /// Back-propagate dloss/doutput through the last forward; afterwards every
    /// parameter gradient holds dloss/dparameter. Returns dloss/dinput only if
    /// set_input_grad(true) was called (empty otherwise: nobody needs the
    /// gradient of the images).
    const Tensor<T>& backward(const Tensor<T>& grad_output) {
        const ExecutionPlan<T>& plan = planned("backward");
        const Tensor<T>* g = &grad_output;
        for (std::size_t k = plan.steps().size(); k-- > 0;) {
            const PlanStep<T>& step = plan.steps()[k];
            g = step.fused ? &step.fused->backward(*g) : &layers_[step.layers[0]]->backward(*g);
        }
        return *g;
    }

    /// dloss/dinput of the last forward, for the whole batch, without touching
    /// any parameter gradient: the input-gradient-only path of every layer.
    /// Works in either mode (gradients must have been enabled in that forward).
    const Tensor<T>& backward_input(const Tensor<T>& grad_output) {
        const ExecutionPlan<T>& plan = planned("backward_input");
        const Tensor<T>* g = &grad_output;
        for (std::size_t k = plan.steps().size(); k-- > 0;) {
            const PlanStep<T>& step = plan.steps()[k];
            g = step.fused ? &step.fused->backward_input(*g) : &layers_[step.layers[0]]->backward_input(*g);
        }
        return *g;
    }

    /// Whether Conv2d -> MaxPool2d [-> ReLU] runs fused (the default; same outputs, gradients equal to rounding).
    /// Changing it between a forward and its backward makes that backward throw.
    void set_fusion(bool on) {
        fusion_ = on;
        replan();
    }
    bool fusion() const { return fusion_; }

    /// Training behaviour (the default), as torch's model.train().
    void train(bool on = true) {
        mode_ = on ? Mode::Train : Mode::Eval;
        for (auto& l : layers_) l->set_mode(mode_);
    }
    /// Evaluation behaviour, as torch's model.eval(). Gradients stay available (see set_grad_enabled).
    void eval() { train(false); }
    bool is_training() const { return mode_ == Mode::Train; }

    /// Whether forward keeps what backward needs (the default). Off: less memory, and backward throws.
    void set_grad_enabled(bool on) {
        grad_enabled_ = on;
        for (auto& l : layers_) l->set_grad_enabled(on);
    }
    bool grad_enabled() const { return grad_enabled_; }

    /// Whether backward computes the gradient with respect to the model input (off by default).
    void set_input_grad(bool needed) { input_grad_ = needed; }

    /// The architecture: one LayerSpec per layer, in order.
    std::vector<LayerSpec> specs() const {
        std::vector<LayerSpec> s;
        for (const auto& l : layers_) s.push_back(l->spec());
        return s;
    }

    /// Every parameter of every layer, named "<index>.<name>" as PyTorch's state_dict does.
    std::vector<Parameter<T>> parameters() {
        std::vector<Parameter<T>> all;
        for (std::size_t i = 0; i < layers_.size(); ++i)
            for (auto p : layers_[i]->parameters()) {
                p.name = std::to_string(i) + "." + p.name;
                all.push_back(p);
            }
        return all;
    }

    /// Every buffer of every layer, named "<index>.<name>".
    std::vector<Buffer<T>> buffers() {
        std::vector<Buffer<T>> all;
        for (std::size_t i = 0; i < layers_.size(); ++i)
            for (auto b : layers_[i]->buffers()) {
                b.name = std::to_string(i) + "." + b.name;
                all.push_back(b);
            }
        return all;
    }

    Index num_parameters() {
        Index n = 0;
        for (auto& l : layers_) n += l->num_parameters();
        return n;
    }

    /// Re-draw every parameter from Rng(seed), and re-seed every layer's stream,
    /// as a model built with that seed would have.
    void reset_parameters(std::uint64_t seed) {
        seed_ = seed;
        rng_.reseed(seed);
        for (std::size_t i = 0; i < layers_.size(); ++i) {
            layers_[i]->reset_parameters(rng_);
            layers_[i]->rng().reseed(stream_seed(i));
        }
    }

    /// A table of layers, output shapes and parameter counts for an input of
    /// shape `in`; the last column says which plan step runs each layer.
    std::string summary(const Shape& in) {
        std::ostringstream os;
        os << std::left << std::setw(4) << "#" << std::setw(52) << "layer" << std::setw(22) << "output shape" << std::setw(10) << "params"
           << "runs as\n";
        os << std::string(112, '-') << '\n';
        os << std::setw(4) << "" << std::setw(52) << "input" << std::setw(22) << in.str() << "0\n";
        Shape s = in;
        for (std::size_t i = 0; i < layers_.size(); ++i) {
            s = checked_shape(i, s);
            const auto& step = active_plan().steps()[active_plan().step_of(i)];
            std::string runs = "step " + std::to_string(active_plan().step_of(i));
            if (!step.pattern.empty()) runs += " (" + step.pattern + ")";
            os << std::setw(4) << i << std::setw(52) << layers_[i]->name() << std::setw(22) << s.str() << std::setw(10)
               << layers_[i]->num_parameters() << runs << '\n';
        }
        os << std::string(112, '-') << '\n' << "total parameters: " << num_parameters() << '\n';
        for (const auto& note : active_plan().notes()) os << "note: " << note << '\n';
        return os.str();
    }

    /// The execution plan: one line per step (fused patterns named), then any near misses.
    std::string plan_summary() const { return active_plan().describe(layers_); }

private:
    std::uint64_t stream_seed(std::size_t index) const { return Rng::mix(Rng::mix(seed_, 0x57AEA11), index); }

    ExecutionPlan<T>& active_plan() { return mode_ == Mode::Train ? plan_ : eval_plan_; }
    const ExecutionPlan<T>& active_plan() const { return mode_ == Mode::Train ? plan_ : eval_plan_; }

    void replan() {
        plan_ = ExecutionPlan<T>(layers_, PlanOptions{true, fusion_});
        eval_plan_ = ExecutionPlan<T>(layers_, PlanOptions{true, fusion_, fusion_});
        plain_plan_ = ExecutionPlan<T>();
        last_plan_ = nullptr;
    }

    const Tensor<T>& run(ExecutionPlan<T>& plan, const Tensor<T>& x, const std::vector<std::size_t>& taps, const LayerTap<T>& tap) {
        if (layers_.empty()) throw std::logic_error("Sequential::forward: the model has no layers");
        // Only the first layer to run may skip its input gradient, unless the model's is wanted.
        for (std::size_t k = 0; k < plan.order().size(); ++k) layers_[plan.order()[k]]->set_input_grad(k != 0 || input_grad_);
        last_plan_ = nullptr;
        const Tensor<T>* h = &x;
        for (const PlanStep<T>& step : plan.steps()) {
            Shape s = h->shape();
            for (std::size_t i : step.layers) s = checked_shape(i, s);
            h = step.fused ? &step.fused->forward(*h) : &layers_[step.layers[0]]->forward(*h);
            if (tap && step.output_of && std::find(taps.begin(), taps.end(), *step.output_of) != taps.end()) tap(*step.output_of, *h);
        }
        last_plan_ = &plan;
        return *h;
    }

    const ExecutionPlan<T>& planned(const char* what) const {
        if (layers_.empty()) throw std::logic_error(std::string("Sequential::") + what + ": the model has no layers");
        if (!last_plan_)
            throw std::logic_error(std::string("Sequential::") + what +
                                   ": no forward since the model was built or changed (add, set_fusion); run forward first");
        return *last_plan_;
    }

    Shape checked_shape(std::size_t i, const Shape& in) const {
        try {
            return layers_[i]->output_shape(in);
        } catch (const std::invalid_argument& e) {
            throw std::invalid_argument("Sequential: layer " + std::to_string(i) + " (" + layers_[i]->name() +
                                        ") cannot take input of shape " + in.str() + ": " + e.what());
        }
    }

    std::uint64_t seed_ = kDefaultInitSeed;
    Rng rng_;
    Mode mode_ = Mode::Train;
    bool grad_enabled_ = true;
    bool input_grad_ = false;
    bool fusion_ = true;
    std::vector<LayerPtr<T>> layers_;
    ExecutionPlan<T> plan_;        // the plan forward runs in train mode
    ExecutionPlan<T> eval_plan_;   // in eval mode: plan_ with the BatchNorm folds
    ExecutionPlan<T> plain_plan_;  // layers one by one, as added: for taps the plan hides (built on first use)
    ExecutionPlan<T>* last_plan_ = nullptr;  // the plan of the last forward, which backward must follow
};

/// Inference for the scope's lifetime: eval mode and gradients off (or on,
/// for input gradients of a frozen model); the model's settings come back after.
template <typename T>
class InferenceScope {
public:
    explicit InferenceScope(Sequential<T>& model, bool grad_enabled = false)
        : model_(model), training_(model.is_training()), grad_(model.grad_enabled()) {
        model_.eval();
        model_.set_grad_enabled(grad_enabled);
    }
    ~InferenceScope() {
        model_.train(training_);
        model_.set_grad_enabled(grad_);
    }
    InferenceScope(const InferenceScope&) = delete;
    InferenceScope& operator=(const InferenceScope&) = delete;

private:
    Sequential<T>& model_;
    bool training_, grad_;
};

}  // namespace eigencnn
