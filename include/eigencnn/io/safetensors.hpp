// SPDX-License-Identifier: MIT
// eigencnn/io/safetensors.hpp
//
// A Sequential model's weights in the safetensors format, the format of
// Hugging Face's `safetensors` library, which PyTorch users exchange weights in:
//
//   offset 0   u64 (little-endian)  N, the length of the header
//          8   N bytes              header: UTF-8 JSON, one object
//                                     {"0.weight": {"dtype": "F32", "shape": [16, 1, 5, 5], "data_offsets": [0, 1600]},
//                                      ...,
//                                      "__metadata__": {"key": "value", ...}}        (optional, strings only)
//                                   padded with spaces (0x20) to a multiple of 8 when we write it
//          8+N                      data section: each tensor's elements, row-major, little-endian;
//                                   data_offsets [begin, end) are relative to the section's start,
//                                   and the tensors cover it exactly: no gap, no overlap, nothing after
//
// Names are PyTorch's state_dict names for an nn.Sequential, as
// Sequential::parameters() and buffers() give them: "0.weight", "3.bias",
// "1.running_mean" (nested names such as "3.body.0.weight" pass through).
//
//   save_safetensors(model, "net.safetensors");        parameters and buffers as F32 (F64 for a double
//                                                      model), atomically (write_file_atomic)
//   load_safetensors(model, "net.safetensors");        F32 native; F16, BF16, F64 converted (for a double
//                                                      model F64 native, F32, F16, BF16 converted); an I64
//                                                      "*.num_batches_tracked" (PyTorch's BatchNorm) converted
//                                                      when the model has that buffer
//   encode_safetensors / decode_safetensors            the same in memory (tests, fuzzing)
//
// Loading checks everything before it changes the model: the header length
// against the file (and against the reference implementation's 100 MB cap,
// before allocating), the JSON (valid, no duplicate keys, the types and fields
// above, known dtypes), the data offsets (begin <= end, within the section,
// size = elements x dtype size, no overlap, no gap, the section covered), every
// name (missing and unexpected tensors both listed; SafetensorsLoadOptions
// {.strict = false} ignores unexpected ones), every shape and dtype, and that
// every value is finite after conversion. A problem throws SafetensorsError
// "<file>: tensor '<name>': <problem>" and leaves the model as it was.
//
// Uses nlohmann-json; not included by eigencnn.hpp (like io/json.hpp).
#pragma once

#include "../model/masks.hpp"
#include "../model/sequential.hpp"
#include "file.hpp"
#include "safetensors_format.hpp"

#include <algorithm>
#include <map>
#include <string>
#include <utility>
#include <vector>

namespace eigencnn {

struct SafetensorsLoadOptions {
    bool strict = true;  ///< refuse tensors the model does not have (false: ignore them); missing ones are always refused
};

namespace detail {

/// Every parameter and buffer of `model`, grouped by layer index as PyTorch's state_dict orders them.
template <typename T>
std::vector<std::pair<std::string, Tensor<T>*>> state_entries(Sequential<T>& model) {
    std::vector<std::pair<std::string, Tensor<T>*>> params, buffers, all;
    for (auto& p : model.parameters()) params.emplace_back(p.name, p.value);
    for (auto& b : model.buffers()) buffers.emplace_back(b.name, b.value);
    auto layer_of = [](const std::string& name) { return name.substr(0, name.find('.')); };
    std::size_t pi = 0, bi = 0;
    for (std::size_t i = 0; i < model.size(); ++i) {
        const std::string key = std::to_string(i);
        while (pi < params.size() && layer_of(params[pi].first) == key) all.push_back(params[pi++]);
        while (bi < buffers.size() && layer_of(buffers[bi].first) == key) all.push_back(buffers[bi++]);
    }
    while (pi < params.size()) all.push_back(params[pi++]);  // names not "<index>.": keep them all, in order
    while (bi < buffers.size()) all.push_back(buffers[bi++]);
    return all;
}

inline std::string name_list(const std::vector<std::string>& names) {
    std::string s;
    for (std::size_t i = 0; i < names.size() && i < 10; ++i) s += (i ? ", " : "") + names[i];
    if (names.size() > 10) s += " and " + std::to_string(names.size() - 10) + " more";
    return s;
}

}  // namespace detail

/// Named tensors as safetensors bytes, in the order given, stored as F32 (float) or F64 (double).
template <typename T>
std::string encode_safetensors(const std::vector<std::pair<std::string, const Tensor<T>*>>& tensors,
                               const SafetensorsMetadata& metadata = {}) {
    static_assert(std::is_same_v<T, float> || std::is_same_v<T, double>, "safetensors: float or double tensors");
    nlohmann::ordered_json header = nlohmann::ordered_json::object();
    if (!metadata.empty()) header["__metadata__"] = metadata;
    std::uint64_t offset = 0;
    for (const auto& [name, t] : tensors) {
        if (name == "__metadata__" || header.contains(name)) throw SafetensorsError("encode_safetensors: duplicate or reserved name '" + name + "'");
        const std::uint64_t bytes = static_cast<std::uint64_t>(t->size()) * sizeof(T);
        header[name] = {{"dtype", sizeof(T) == 4 ? "F32" : "F64"}, {"shape", t->shape().dims()}, {"data_offsets", {offset, offset + bytes}}};
        offset += bytes;
    }
    std::string json = header.dump();
    json.append((8 - json.size() % 8) % 8, ' ');  // the data section starts 8-aligned, as the reference writer does
    std::string out;
    out.reserve(8 + json.size() + offset);
    for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>((static_cast<std::uint64_t>(json.size()) >> (8 * i)) & 0xff));
    out += json;
    for (const auto& entry : tensors) {
        const Tensor<T>& t = *entry.second;
        for (Index i = 0; i < t.size(); ++i) detail::put_le(out, t[i]);
    }
    return out;
}

/// The model's parameters and buffers as safetensors bytes.
template <typename T>
std::string encode_safetensors(Sequential<T>& model, const SafetensorsMetadata& metadata = {}) {
    check_output_masks_folded(model, "safetensors");  // the raw parameters must be what the model computes
    std::vector<std::pair<std::string, const Tensor<T>*>> tensors;
    for (const auto& [name, t] : detail::state_entries(model)) tensors.emplace_back(name, t);
    return encode_safetensors<T>(tensors, metadata);
}

/// Write the model's parameters and buffers to `path` atomically: the old file or the whole new one.
template <typename T>
void save_safetensors(Sequential<T>& model, const std::string& path, const SafetensorsMetadata& metadata = {}) {
    write_file_atomic(path, encode_safetensors(model, metadata));
}

/// Check safetensors bytes against `model` and, only if everything is right, copy them in.
/// Returns the file's "__metadata__". `where` names the source in errors.
template <typename T>
SafetensorsMetadata decode_safetensors(Sequential<T>& model, const std::uint8_t* p, std::size_t n, const std::string& where = "<memory>",
                                       const SafetensorsLoadOptions& options = {}) {
    const SafetensorsFile file = parse_safetensors(p, n, where);
    const auto entries = detail::state_entries(model);
    std::map<std::string, const SafetensorsTensorInfo*> by_name;
    for (const auto& t : file.tensors) by_name[t.name] = &t;

    std::vector<std::string> missing, unexpected;
    std::map<std::string, bool> wanted;
    for (const auto& e : entries) {
        wanted[e.first] = true;
        if (!by_name.count(e.first)) missing.push_back(e.first);
    }
    for (const auto& t : file.tensors)
        if (!wanted.count(t.name)) unexpected.push_back(t.name);
    if (!missing.empty() || (options.strict && !unexpected.empty())) {
        std::string msg = where + ": the tensors do not match the model:";
        if (!missing.empty()) msg += " missing (in the model, not in the file): " + detail::name_list(missing) + ";";
        if (options.strict && !unexpected.empty())
            msg += " unexpected (in the file, not in the model; SafetensorsLoadOptions{false} ignores them): " + detail::name_list(unexpected) + ";";
        msg.pop_back();
        throw SafetensorsError(msg);
    }

    std::vector<Tensor<T>> converted;
    converted.reserve(entries.size());
    for (const auto& [name, target] : entries) {
        const SafetensorsTensorInfo& info = *by_name.at(name);
        const std::string at = where + ": tensor '" + name + "': ";
        const bool counter = detail::is_batch_counter(name);
        if (info.dtype == "I64" ? !counter : !detail::is_float_dtype(info.dtype))
            throw SafetensorsError(at + "dtype " + info.dtype + " cannot be loaded (eigencnn converts F32, F64, F16 and BF16; I64 only for " +
                                   "a '*.num_batches_tracked' buffer)");
        std::vector<Index> dims(info.shape.begin(), info.shape.end());
        const Shape shape(dims);
        // PyTorch's num_batches_tracked is a 0-dimensional tensor; a model may hold it as [1]: same element count suffices.
        const bool same = counter ? shape.numel() == target->size() : shape == target->shape();
        if (!same) throw SafetensorsError(at + "shape " + shape.str() + " in the file, " + target->shape().str() + " in the model");
        Tensor<T> t(target->shape());
        detail::convert_tensor(p + file.data_start + info.begin, info.dtype, t.data(), t.size(), at);
        converted.push_back(std::move(t));
    }
    for (std::size_t i = 0; i < entries.size(); ++i)  // into the model's own storage: nothing holding it is invalidated
        std::copy(converted[i].data(), converted[i].data() + converted[i].size(), entries[i].second->data());
    return file.metadata;
}

/// Load `path` into `model` (see decode_safetensors). Returns the file's "__metadata__".
template <typename T>
SafetensorsMetadata load_safetensors(Sequential<T>& model, const std::string& path, const SafetensorsLoadOptions& options = {}) {
    const std::vector<std::uint8_t> bytes = read_file_bytes<SafetensorsError>(path, "safetensors file");
    return decode_safetensors(model, bytes.data(), bytes.size(), path, options);
}

}  // namespace eigencnn
