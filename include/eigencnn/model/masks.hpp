// SPDX-License-Identifier: MIT
// eigencnn/model/masks.hpp
//
// Output masks across a model (core/output_mask.hpp is one layer's):
//
//   masked_layers(model)              indices of the layers that have output masks (Conv2d, Linear)
//   prune_units(layer, {3, 7})        units 3 and 7 removed: mask 0 and their weights and bias zeroed,
//                                     so the model saves as it computes and the units stay at 0 in training
//   fold_output_masks(model)          every mask multiplied into its layer's weights (see fold_into)
//   check_output_masks_folded(model)  throws std::logic_error naming the layer when a save would lose a mask;
//                                     save_checkpoint and save_safetensors call it
//
// A layer's weight is its parameter "weight" ([out, ...], a row per output
// unit) and its bias the parameter "bias" when it has one.
#pragma once

#include "sequential.hpp"

#include <vector>

namespace eigencnn {

namespace mask_detail {
template <typename T>
struct Rows {
    T* weight = nullptr;
    T* bias = nullptr;
    Index row_size = 0;
};
template <typename T>
Rows<T> rows_of(Layer<T>& layer, const OutputMask<T>& mask) {
    Rows<T> r;
    for (auto& p : layer.parameters()) {
        if (p.name == "weight") r.weight = p.value->data(), r.row_size = p.value->size() / std::max<Index>(1, mask.units());
        if (p.name == "bias") r.bias = p.value->data();
    }
    if (!r.weight) throw std::logic_error(layer.name() + ": has an output mask but no parameter named weight");
    return r;
}
}  // namespace mask_detail

/// Indices (as added) of the layers that have output masks.
template <typename T>
std::vector<std::size_t> masked_layers(Sequential<T>& model) {
    std::vector<std::size_t> out;
    for (std::size_t i = 0; i < model.size(); ++i)
        if (model[i].output_mask()) out.push_back(i);
    return out;
}

/// Remove `units` of `layer`: mask factors 0 and their weights and bias set to zero.
/// Throws std::invalid_argument for a layer without masks or a unit out of range.
template <typename T>
void prune_units(Layer<T>& layer, const std::vector<Index>& units) {
    OutputMask<T>* mask = layer.output_mask();
    if (!mask) throw std::invalid_argument("prune_units: " + layer.name() + " has no output mask");
    Tensor<T> a = mask->weight_mask(), c = mask->bias_mask();
    for (Index u : units) {
        if (u < 0 || u >= mask->units())
            throw std::invalid_argument("prune_units: unit " + std::to_string(u) + " of " + layer.name() + ", which has " +
                                        std::to_string(mask->units()) + " outputs");
        a[u] = T(0);
        c[u] = T(0);
    }
    mask->set_weight_mask(a);
    mask->set_bias_mask(c);
    const auto r = mask_detail::rows_of(layer, *mask);
    mask->fold_into(r.weight, r.bias, r.row_size);
}

/// Multiply every layer's mask into its weights (W[o] <- a[o] W[o], b[o] <- c[o] b[o]);
/// 0/1 masks stay set (pruned units keep their zero gradient), others are cleared.
template <typename T>
void fold_output_masks(Sequential<T>& model) {
    for (std::size_t i : masked_layers(model)) {
        OutputMask<T>& mask = *model[i].output_mask();
        const auto r = mask_detail::rows_of(model[i], mask);
        mask.fold_into(r.weight, r.bias, r.row_size);
    }
}

/// Throws std::logic_error ("<what>: layer i (name): output o has a mask that is not folded ...")
/// when the model's raw parameters compute something else than its masked layers.
template <typename T>
void check_output_masks_folded(Sequential<T>& model, const std::string& what) {
    for (std::size_t i : masked_layers(model)) {
        const OutputMask<T>& mask = *model[i].output_mask();
        if (!mask.active()) continue;
        const auto r = mask_detail::rows_of(model[i], mask);
        mask.check_folded(r.weight, r.bias, r.row_size, what + ": layer " + std::to_string(i) + " (" + model[i].name() + ")");
    }
}

/// Clear every mask (back to the plain layers; the weights stay as they are).
template <typename T>
void clear_output_masks(Sequential<T>& model) {
    for (std::size_t i : masked_layers(model)) model[i].output_mask()->clear();
}

}  // namespace eigencnn
