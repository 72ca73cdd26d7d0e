// SPDX-License-Identifier: MIT
// eigencnn/core/registry.hpp
//
// The layer registry: type name -> how to build the layer from its
// LayerSpec, and how many parameters that spec means (computed without
// building it, so that a checkpoint can be checked before any allocation).
// This is how load_model rebuilds an architecture stored in a checkpoint.
//
// A layer registers itself, in its own header, by name:
//
//   template <typename T> class MyLayer : public Layer<T> {
//   public:
//       static constexpr const char* kType = "MyLayer";        // the spec's type name
//       static MyLayer from_spec(const LayerSpec& s);          // check and read the arguments
//       static std::uint64_t parameter_count(const LayerSpec& s);  // optional
//       LayerSpec spec() const override { return {kType, {...}}; }
//       ...
//   };
//   EIGENCNN_REGISTER_LAYER(MyLayer)      // float and double, at static initialisation
//
// Registering double instantiates every registered layer for double: about a
// quarter of a program's compile time (examples/mnist_clean: 61 s -> 47 s with g++ -O3).
// A program that never builds double layers from specs (load_model<double>,
// make_layer<double>) may define EIGENCNN_REGISTER_FLOAT_ONLY (before any
// eigencnn include, or with target_compile_definitions, as the examples do):
// the macro then registers float only, and make_layer<double> says so.
//
// or at run time with register_layer<MyLayer<float>>(). Without
// parameter_count, the registry builds the layer to count its parameters.
// Built-in layers register the same way; an unknown type name is an
// std::invalid_argument that lists the registered ones.
#pragma once

#include "layer.hpp"

#include <functional>
#include <map>
#include <mutex>
#include <type_traits>

namespace eigencnn {

template <typename T>
class LayerRegistry {
public:
    struct Entry {
        std::function<LayerPtr<T>(const LayerSpec&)> make;
        std::function<std::uint64_t(const LayerSpec&)> parameter_count;
    };

    /// The registry of layers over scalar type T (one per T, created on first use).
    static LayerRegistry& instance() {
        static LayerRegistry registry;
        return registry;
    }

    /// Register `type`; registering a name again replaces its entry.
    void add(const std::string& type, Entry entry) {
        if (type.empty()) throw std::invalid_argument("LayerRegistry::add: empty type name");
        std::lock_guard<std::mutex> lock(mutex_);
        entries_[type] = std::move(entry);
    }

    bool contains(const std::string& type) const {
        std::lock_guard<std::mutex> lock(mutex_);
        return entries_.count(type) != 0;
    }

    /// Registered type names, sorted.
    std::vector<std::string> types() const {
        std::lock_guard<std::mutex> lock(mutex_);
        std::vector<std::string> names;
        for (const auto& kv : entries_) names.push_back(kv.first);
        return names;
    }

    /// Build the layer `s` describes; its constructor checks the arguments.
    LayerPtr<T> make(const LayerSpec& s) const {
        LayerPtr<T> layer = entry(s).make(s);
        if (!layer) throw std::invalid_argument("make_layer: the registered builder of " + s.type + " returned no layer");
        return layer;
    }

    /// Number of trainable scalars of the layer `s` describes.
    std::uint64_t parameter_count(const LayerSpec& s) const { return entry(s).parameter_count(s); }

private:
    const Entry& entry(const LayerSpec& s) const {
        std::lock_guard<std::mutex> lock(mutex_);
        const auto it = entries_.find(s.type);
        if (it != entries_.end()) return it->second;
        std::string known;
        for (const auto& kv : entries_) known += (known.empty() ? "" : ", ") + kv.first;
        if (known.empty() && std::is_same_v<T, float>)
            throw std::invalid_argument("make_layer: no layer is registered (" + s.str() + "); include the layers' headers");
        if (known.empty())
            throw std::invalid_argument("make_layer: no layer is registered for this scalar type (" + s.str() +
                                        "); a program built with EIGENCNN_REGISTER_FLOAT_ONLY registers float layers only");
        throw std::invalid_argument("make_layer: unknown layer type '" + s.type + "' in " + s.str() + " (registered: " + known +
                                    "; a layer of one's own needs register_layer<L>())");
    }

    mutable std::mutex mutex_;
    std::map<std::string, Entry> entries_;
};

namespace detail {
template <typename L, typename = void>
struct has_parameter_count : std::false_type {};
template <typename L>
struct has_parameter_count<L, std::void_t<decltype(L::parameter_count(std::declval<const LayerSpec&>()))>> : std::true_type {};
}  // namespace detail

/// Register layer class L (derived from Layer<T>) under L::kType, built by
/// L::from_spec(spec). Returns true, so that it can initialise a variable.
template <typename L>
bool register_layer() {
    using T = typename L::scalar_type;
    static_assert(std::is_base_of_v<Layer<T>, L>, "register_layer<L>: L must derive from Layer<T>");
    typename LayerRegistry<T>::Entry e;
    e.make = [](const LayerSpec& s) -> LayerPtr<T> { return LayerPtr<T>(new L(L::from_spec(s))); };
    if constexpr (detail::has_parameter_count<L>::value)
        e.parameter_count = [](const LayerSpec& s) -> std::uint64_t { return L::parameter_count(s); };
    else
        e.parameter_count = [](const LayerSpec& s) -> std::uint64_t { return static_cast<std::uint64_t>(L::from_spec(s).num_parameters()); };
    LayerRegistry<T>::instance().add(L::kType, std::move(e));
    return true;
}

/// Build a layer from its spec through the registry.
template <typename T>
LayerPtr<T> make_layer(const LayerSpec& s) {
    return LayerRegistry<T>::instance().make(s);
}

/// Number of trainable scalars the layer `s` would have, computed without building it.
template <typename T = float>
std::uint64_t spec_parameter_count(const LayerSpec& s) {
    return LayerRegistry<T>::instance().parameter_count(s);
}

}  // namespace eigencnn

/// Register the layer template L for float and double (float only with
/// EIGENCNN_REGISTER_FLOAT_ONLY) when the program starts. Use it once, at namespace
/// scope in the namespace of L, after L's definition (in its header); L is the
/// template's unqualified name.
#ifdef EIGENCNN_REGISTER_FLOAT_ONLY
#define EIGENCNN_REGISTER_LAYER(L)                                                                     \
    inline const bool eigencnn_registered_##L##_float = ::eigencnn::register_layer<L<float>>();
#else
#define EIGENCNN_REGISTER_LAYER(L)                                                                     \
    inline const bool eigencnn_registered_##L##_float = ::eigencnn::register_layer<L<float>>();        \
    inline const bool eigencnn_registered_##L##_double = ::eigencnn::register_layer<L<double>>();
#endif
