// eigencnn/model/sequential.hpp
//
// Sequential<T>: layers applied in order, as torch.nn.Sequential.
//
//   Sequential<float> net(/*seed=*/42);
//   net.add(Conv2d<float>(1, 16, 5)).add(ReLU<float>()).add(MaxPool2d<float>(2));
//   const Tensor<float>& logits = net.forward(x);   // x [N, 1, 28, 28]
//   net.backward(dlogits);                          // fills every parameter gradient
//   Adam<float> opt(net.parameters());
//
// Each added layer with parameters is re-initialised from the model's
// generator, so one seed fixes every initial weight. A shape mismatch
// anywhere is a std::invalid_argument that names the layer (index and
// description), the input shape it got and the shape it expected.
//
// One rewrite, invisible in the results: a ReLU directly followed by a
// MaxPool2d runs after the pool instead of before it. max(0, max(window)) is
// max(window of max(0, x)), NaN included, and the gradients agree too (both
// reach the window's first maximum when it is positive, and nothing
// otherwise), so the ReLU touches a tensor a quarter the size (2x2 pools).
// Layer indices, names, specs and parameters keep the order they were added in.
//
// And one fusion: where the execution order has Conv2d -> MaxPool2d,
// optionally followed by a ReLU, the three run as one step, image by image,
// so that the convolution's output never leaves the cache, and the conv's
// backward only visits the pool's winners (see model/conv_pool.hpp).
// Outputs are bitwise unchanged; gradients agree to rounding.
// set_fusion(false) runs every layer on its own; the layers' own
// forward/backward state is only kept up to date then.
#pragma once

#include "../core/init.hpp"
#include "../core/layer.hpp"
#include "conv_pool.hpp"

#include <iomanip>
#include <utility>
#include <ostream>
#include <sstream>
#include <type_traits>

namespace eigencnn {

template <typename T>
class Sequential {
public:
    explicit Sequential(std::uint64_t seed = kDefaultInitSeed) : rng_(seed) {}

    /// Append a layer (moved in). Returns *this for chaining.
    template <typename L, typename = std::enable_if_t<std::is_base_of_v<Layer<T>, std::decay_t<L>>>>
    Sequential& add(L&& layer) {
        return add(LayerPtr<T>(new std::decay_t<L>(std::forward<L>(layer))));
    }

    Sequential& add(LayerPtr<T> layer) {
        if (!layer) throw std::invalid_argument("Sequential::add: null layer");
        layer->reset_parameters(rng_);
        layer->set_training(training_);
        layers_.push_back(std::move(layer));
        plan();
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

    /// The order forward runs the layers in (indices; backward runs it in reverse):
    /// the order they were added in, except that a ReLU followed by a MaxPool2d runs after it.
    const std::vector<std::size_t>& execution_order() const { return order_; }

    /// Output shape for an input of shape `in`; throws on the first layer that cannot take its input.
    Shape output_shape(const Shape& in) const {
        Shape s = in;
        for (std::size_t i = 0; i < layers_.size(); ++i) s = checked_shape(i, s);
        return s;
    }

    const Tensor<T>& forward(const Tensor<T>& x) {
        if (layers_.empty()) throw std::logic_error("Sequential::forward: the model has no layers");
        const Tensor<T>* h = &x;
        for (const Step& step : steps_) {
            if (!step.fused) {
                checked_shape(order_[step.first], h->shape());
                h = &layers_[order_[step.first]]->forward(*h);
                continue;
            }
            Shape s = h->shape();
            for (std::size_t k = step.first; k < step.last; ++k) s = checked_shape(order_[k], s);
            h = &step.fused->forward(*h);
        }
        planned_since_forward_ = false;
        return *h;
    }

    /// Back-propagate dloss/doutput; afterwards every parameter gradient holds
    /// dloss/dparameter. Returns dloss/dinput only if set_input_grad(true) was
    /// called (empty otherwise: nobody needs the gradient of the images).
    const Tensor<T>& backward(const Tensor<T>& grad_output) {
        if (layers_.empty()) throw std::logic_error("Sequential::backward: the model has no layers");
        if (planned_since_forward_)
            throw std::logic_error("Sequential::backward: no forward since the model was built or changed (add, set_fusion); run forward first");
        const Tensor<T>* g = &grad_output;
        for (std::size_t k = steps_.size(); k-- > 0;) {
            const Step& step = steps_[k];
            g = step.fused ? &step.fused->backward(*g) : &layers_[order_[step.first]]->backward(*g);
        }
        return *g;
    }

    /// Whether Conv2d -> MaxPool2d [-> ReLU] runs fused (the default; same outputs, gradients equal to rounding).
    /// Changing it between a forward and its backward makes that backward throw.
    void set_fusion(bool on) {
        fusion_ = on;
        plan();
    }
    bool fusion() const { return fusion_; }

    /// Training mode (the default): forward keeps what backward needs.
    void train(bool on = true) {
        training_ = on;
        for (auto& l : layers_) l->set_training(on);
    }
    /// Inference mode, as torch's model.eval(): less memory, no backward.
    void eval() { train(false); }
    bool is_training() const { return training_; }

    /// Whether backward computes the gradient with respect to the model input (off by default).
    void set_input_grad(bool needed) {
        input_grad_ = needed;
        set_input_grads();
    }

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

    Index num_parameters() {
        Index n = 0;
        for (auto& l : layers_) n += l->num_parameters();
        return n;
    }

    /// Re-draw every parameter from Rng(seed), as a model built with that seed would have.
    void reset_parameters(std::uint64_t seed) {
        rng_.reseed(seed);
        for (auto& l : layers_) l->reset_parameters(rng_);
    }

    /// A table of layers, output shapes and parameter counts for an input of shape `in`.
    std::string summary(const Shape& in) {
        std::ostringstream os;
        os << std::left << std::setw(4) << "#" << std::setw(52) << "layer" << std::setw(22) << "output shape" << "params\n";
        os << std::string(88, '-') << '\n';
        os << std::setw(4) << "" << std::setw(52) << "input" << std::setw(22) << in.str() << "0\n";
        Shape s = in;
        for (std::size_t i = 0; i < layers_.size(); ++i) {
            s = checked_shape(i, s);
            os << std::setw(4) << i << std::setw(52) << layers_[i]->name() << std::setw(22) << s.str() << layers_[i]->num_parameters()
               << '\n';
        }
        os << std::string(88, '-') << '\n' << "total parameters: " << num_parameters() << '\n';
        return os.str();
    }

private:
    // Execution order and fused steps (see the top of the file), and which
    // layer's input gradient is the model's.
    void plan() {
        order_.resize(layers_.size());
        for (std::size_t i = 0; i < order_.size(); ++i) order_[i] = i;
        for (std::size_t i = 0; i + 1 < layers_.size(); ++i)
            if (layer_as<ReLU>(i) && layer_as<MaxPool2d>(i + 1)) {
                std::swap(order_[i], order_[i + 1]);
                ++i;
            }
        set_input_grads();
        planned_since_forward_ = true;
        steps_.clear();
        for (std::size_t k = 0; k < order_.size();) {
            Step step{k, k + 1, nullptr};
            auto* conv = layer_as<Conv2d>(order_[k]);
            auto* pool = k + 1 < order_.size() ? layer_as<MaxPool2d>(order_[k + 1]) : nullptr;
            if (fusion_ && conv && pool) {
                const bool relu = k + 2 < order_.size() && layer_as<ReLU>(order_[k + 2]);
                step.last = k + (relu ? 3 : 2);
                step.fused = std::make_unique<ConvPool<T>>(*conv, *pool, relu);
            }
            k = step.last;
            steps_.push_back(std::move(step));
        }
    }

    // Layer i if it is one of the built-in L (whose semantics the rewrites rely on), else null.
    template <template <typename> class L>
    L<T>* layer_as(std::size_t i) const {
        return dynamic_cast<L<T>*>(layers_[i].get());
    }

    // Only the first layer to run may skip its input gradient, unless the model's is wanted.
    void set_input_grads() {
        for (std::size_t k = 0; k < order_.size(); ++k) layers_[order_[k]]->set_input_grad(k != 0 || input_grad_);
    }

    Shape checked_shape(std::size_t i, const Shape& in) const {
        try {
            return layers_[i]->output_shape(in);
        } catch (const std::invalid_argument& e) {
            throw std::invalid_argument("Sequential: layer " + std::to_string(i) + " (" + layers_[i]->name() +
                                        ") cannot take input of shape " + in.str() + ": " + e.what());
        }
    }

    Rng rng_;
    bool training_ = true;
    bool input_grad_ = false;
    std::vector<LayerPtr<T>> layers_;
    std::vector<std::size_t> order_;  // forward runs layers_[order_[0]], layers_[order_[1]], ...
    // order_[first, last) run as one step: a single layer, or fused (Conv2d -> MaxPool2d [-> ReLU]).
    struct Step {
        std::size_t first, last;
        std::unique_ptr<ConvPool<T>> fused;
    };
    std::vector<Step> steps_;
    bool fusion_ = true;
    bool planned_since_forward_ = true;  // backward needs a forward run under the current plan
};

}  // namespace eigencnn
