// SPDX-License-Identifier: MIT
// eigencnn/layers/residual.hpp
//
// Residual: a residual block, y = body(x) + shortcut(x), where body is a
// list of layers run in order and shortcut is the identity (no layers) or a
// list of its own, e.g. a 1x1 Conv2d with stride [+ BatchNorm2d].
//
//   x [N, C, H, W] -> body(x) and shortcut(x), which must have the same shape -> y = body(x) + shortcut(x)
// Backward: dx = body'(x)^T dy + shortcut'(x)^T dy   (dy itself for the identity shortcut);
//           the layers inside write their own parameter gradients.
//
// Names as PyTorch's state_dict of a module with `body` and `shortcut`
// nn.Sequential members: "body.0.weight", "shortcut.0.weight", and, inside a
// Sequential, "3.body.0.weight". Buffers likewise.
// Spec: {"Residual", {number of body layers}, children = body specs, then shortcut specs}.
// The inner layers follow the block: mode, grad_enabled and streams are set at
// each forward. Each train-mode forward draws one word from the block's own
// stream rng() and seeds inner layer k's stream with mix(word, k), so a
// Dropout inside is as reproducible (and resumable from a checkpoint, which
// saves the block's stream) as one outside.
#pragma once

#include "../core/layer.hpp"
#include "../core/registry.hpp"

namespace eigencnn {

template <typename T>
class Residual final : public Layer<T> {
public:
    static constexpr const char* kType = "Residual";

    Residual() = default;
    explicit Residual(std::vector<LayerPtr<T>> body, std::vector<LayerPtr<T>> shortcut = {}) {
        for (auto& l : body) add_body(std::move(l));
        for (auto& l : shortcut) add_shortcut(std::move(l));
    }

    Residual& add_body(LayerPtr<T> layer) { return append(body_, std::move(layer)); }
    Residual& add_shortcut(LayerPtr<T> layer) { return append(shortcut_, std::move(layer)); }
    /// Construct a layer at the end of the body: r.emplace_body<Conv2d>(16, 16, 3, 1, 1, no_bias).
    template <template <typename> class L, typename... Args>
    Residual& emplace_body(Args&&... args) {
        return add_body(LayerPtr<T>(new L<T>(std::forward<Args>(args)...)));
    }
    template <template <typename> class L, typename... Args>
    Residual& emplace_shortcut(Args&&... args) {
        return add_shortcut(LayerPtr<T>(new L<T>(std::forward<Args>(args)...)));
    }

    static Residual from_spec(const LayerSpec& s) {
        check_spec(s);
        const auto nb = static_cast<std::size_t>(s.int_arg(0, "body_layers", 1, static_cast<std::int64_t>(s.children.size())));
        Residual r;
        for (std::size_t i = 0; i < s.children.size(); ++i) (i < nb ? r.body_ : r.shortcut_).push_back(make_layer<T>(s.children[i]));
        return r;
    }
    static std::uint64_t parameter_count(const LayerSpec& s) {
        check_spec(s);
        std::int64_t n = 0;
        for (const auto& c : s.children) n = checked_add(n, static_cast<std::int64_t>(spec_parameter_count<T>(c)), s.type);
        return static_cast<std::uint64_t>(n);
    }

    std::string name() const override {
        std::string s = "Residual(";
        for (std::size_t i = 0; i < body_.size(); ++i) s += (i ? " -> " : "") + body_[i]->name();
        s += "; shortcut: ";
        for (std::size_t i = 0; i < shortcut_.size(); ++i) s += (i ? " -> " : "") + shortcut_[i]->name();
        return s + (shortcut_.empty() ? "identity)" : ")");
    }

    LayerSpec spec() const override {
        LayerSpec s{kType, {static_cast<std::int64_t>(body_.size())}};
        for (const auto& l : body_) s.children.push_back(l->spec());
        for (const auto& l : shortcut_) s.children.push_back(l->spec());
        return s;
    }

    Shape output_shape(const Shape& in) const override {
        if (body_.empty()) throw std::invalid_argument("Residual: the body has no layers");
        const Shape b = through(body_, in, "body"), s = through(shortcut_, in, "shortcut");
        if (b != s)
            throw std::invalid_argument(name() + ": the body gives " + b.str() + " and the shortcut " + s.str() + " for input " + in.str());
        return b;
    }

    const Tensor<T>& forward(const Tensor<T>& x) override {
        output_shape(x.shape());
        sync();
        const Tensor<T>* h = &x;
        for (auto& l : body_) h = &l->forward(*h);
        output_ = *h;
        const Tensor<T>* s = &x;
        for (auto& l : shortcut_) s = &l->forward(*s);
        output_.vector() += s->vector();
        return output_;
    }

    const Tensor<T>& backward(const Tensor<T>& dy) override { return run_backward(dy, false); }
    /// dx alone, through every inner layer's backward_input; no parameter gradient touched.
    const Tensor<T>& backward_input(const Tensor<T>& dy) override { return run_backward(dy, true); }

    std::vector<Parameter<T>> parameters() override { return collect<Parameter<T>>([](Layer<T>& l) { return l.parameters(); }); }
    std::vector<Buffer<T>> buffers() override { return collect<Buffer<T>>([](Layer<T>& l) { return l.buffers(); }); }

    void reset_parameters(Rng& rng) override {
        for (auto& l : body_) l->reset_parameters(rng);
        for (auto& l : shortcut_) l->reset_parameters(rng);
    }

    std::size_t body_size() const { return body_.size(); }
    std::size_t shortcut_size() const { return shortcut_.size(); }
    Layer<T>& body(std::size_t i) { return *body_.at(i); }
    Layer<T>& shortcut(std::size_t i) { return *shortcut_.at(i); }

private:
    static void check_spec(const LayerSpec& s) {
        s.expect_args(1);
        if (s.children.empty()) throw std::invalid_argument(s.str() + ": Residual needs at least one body layer");
    }

    Residual& append(std::vector<LayerPtr<T>>& list, LayerPtr<T> layer) {
        if (!layer) throw std::invalid_argument("Residual: null layer");
        list.push_back(std::move(layer));
        return *this;
    }

    Shape through(const std::vector<LayerPtr<T>>& list, Shape s, const char* part) const {
        for (std::size_t i = 0; i < list.size(); ++i) {
            try {
                s = list[i]->output_shape(s);
            } catch (const std::invalid_argument& e) {
                throw std::invalid_argument("Residual: " + std::string(part) + " layer " + std::to_string(i) + " (" + list[i]->name() +
                                            ") cannot take input of shape " + s.str() + ": " + e.what());
            }
        }
        return s;
    }

    // The inner layers take the block's mode and gradient switches, and fresh streams in train mode.
    void sync() {
        const std::uint64_t word = this->training() ? this->rng().next() : 0;
        std::uint64_t k = 0;
        for (auto* list : {&body_, &shortcut_})
            for (std::size_t i = 0; i < list->size(); ++i, ++k) {
                Layer<T>& l = *(*list)[i];
                l.set_mode(this->mode());
                l.set_grad_enabled(this->grad_enabled());
                l.set_input_grad(i > 0 || this->input_grad_);
                if (this->training()) l.rng().reseed(Rng::mix(word, k));
            }
    }

    const Tensor<T>& run_backward(const Tensor<T>& dy, bool input_only) {
        if (dy.shape() != output_.shape())
            detail::shape_error(name() + (input_only ? " backward_input" : " backward"), "gradient of shape " + output_.shape().str(), dy.shape());
        const auto back = [&](std::vector<LayerPtr<T>>& list) {
            const Tensor<T>* g = &dy;
            for (std::size_t i = list.size(); i-- > 0;) g = input_only ? &list[i]->backward_input(*g) : &list[i]->backward(*g);
            return g;
        };
        const bool want_dx = input_only || this->input_grad_;
        const Tensor<T>* gb = back(body_);
        if (want_dx) grad_input_ = *gb;
        else grad_input_.resize(Shape{0});
        const Tensor<T>* gs = shortcut_.empty() ? &dy : back(shortcut_);
        if (want_dx) grad_input_.vector() += gs->vector();
        return grad_input_;
    }

    template <typename Item, typename Get>
    std::vector<Item> collect(Get get) {
        std::vector<Item> all;
        for (auto [list, prefix] : {std::pair{&body_, "body."}, std::pair{&shortcut_, "shortcut."}})
            for (std::size_t i = 0; i < list->size(); ++i)
                for (auto item : get(*(*list)[i])) {
                    item.name = prefix + std::to_string(i) + "." + item.name;
                    all.push_back(item);
                }
        return all;
    }

    std::vector<LayerPtr<T>> body_, shortcut_;
    Tensor<T> output_, grad_input_;
};

EIGENCNN_REGISTER_LAYER(Residual)

}  // namespace eigencnn
