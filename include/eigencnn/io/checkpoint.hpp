// SPDX-License-Identifier: MIT
// eigencnn/io/checkpoint.hpp
//
// Checkpoints: a Sequential model (architecture, weights, buffers and the
// layers' random streams), optionally an optimizer's state, and string
// metadata, in one binary file. A run resumed from a checkpoint continues
// bitwise as the uninterrupted run would have.
//
// Format, version 3 (integers little-endian, fixed width):
//   offset 0   8 bytes  magic "EIGENCNN"
//          8   u32      format version (3 when a layer holds layers, else 2; versions 1 and 2 are read)
//          12  u32      scalar size in bytes (4: float, 8: double)
//          16  u64      payload length L
//          24  L bytes  payload
//          24+L u32     CRC-32 (zlib) of bytes [0, 24 + L)
// Payload:
//   u32 layers;  per layer:  spec = str type, u32 n, n x (u8 kind, u64 value)   (the LayerSpec: kind 0 an
//                                                                        int64, kind 1 a double's bits)
//                            and, in version 3, u32 children, children x spec   (nested at most 16 deep)
//   u32 params;  per param:  str name, tensor
//   u32 buffers; per buffer: str name, tensor                           (Layer::buffers(), "<i>.<name>")
//   u32 streams; per layer:  u64 state[4]                               (Layer::rng(), one per layer)
//   str optimizer kind ("" for none); i64 steps; u32 n; tensor[n]       (Optimizer::state())
//   u32 entries; per entry:  str key, str value                        (metadata)
// where str = u32 length + bytes, tensor = u32 rank + u64 extents[rank] + data.
// Version 1 had integer arguments only (i64 args[n], no kind byte) and no
// buffers or streams: loading one leaves the model's buffers and streams as
// they are (built-in layers of that time had none). Version 2 is version 3
// without the children counts; a model without nested layers is still
// written as version 2, so older builds read it.
//
// Saving goes through write_file_atomic: a crash mid-save leaves the previous
// file (or none), never a partial one. Loading reads and checks the whole
// file (size, magic, version, checksum, every length against the bytes left,
// architecture, shapes, finite values) before it changes the model or the
// optimizer; any problem throws CheckpointError("<file>: <problem>").
#pragma once

#include "../model/factory.hpp"
#include "../model/masks.hpp"
#include "../model/sequential.hpp"
#include "../optim/optimizer.hpp"
#include "file.hpp"

#include <zlib.h>

#include <array>
#include <cmath>
#include <cstring>
#include <fstream>
#include <iterator>
#include <map>

namespace eigencnn {

class CheckpointError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

using Metadata = std::map<std::string, std::string>;

namespace detail {

constexpr char kCkptMagic[8] = {'E', 'I', 'G', 'E', 'N', 'C', 'N', 'N'};
constexpr std::uint32_t kCkptVersion = 3;
constexpr std::size_t kCkptMaxDepth = 16;  // nesting of layers in layers
constexpr std::size_t kCkptHeader = 24;

class ByteWriter {
public:
    void u8(std::uint8_t v) { le(v, 1); }
    void u32(std::uint32_t v) { le(v, 4); }
    void u64(std::uint64_t v) { le(v, 8); }
    void str(const std::string& s) {
        u32(static_cast<std::uint32_t>(s.size()));
        out += s;
    }
    template <typename T>
    void tensor(const Tensor<T>& t) {
        u32(static_cast<std::uint32_t>(t.shape().rank()));
        for (Index d : t.shape().dims()) u64(static_cast<std::uint64_t>(d));
        out.append(reinterpret_cast<const char*>(t.data()), sizeof(T) * static_cast<std::size_t>(t.size()));
    }
    std::string out;

private:
    void le(std::uint64_t v, int n) {
        for (int i = 0; i < n; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
    }
};

class ByteReader {
public:
    ByteReader(const std::uint8_t* p, std::size_t n, std::string where) : p_(p), n_(n), where_(std::move(where)) {}
    std::uint8_t u8(const char* what) { return static_cast<std::uint8_t>(le(1, what)); }
    std::uint32_t u32(const char* what) { return static_cast<std::uint32_t>(le(4, what)); }
    std::uint64_t u64(const char* what) { return le(8, what); }
    std::string str(const char* what) {
        const std::uint32_t len = u32(what);
        const auto* b = take(len, what);
        return std::string(reinterpret_cast<const char*>(b), len);
    }
    /// A tensor of T, with extents checked against the bytes left before anything is allocated.
    template <typename T>
    Tensor<T> tensor(const std::string& what) {
        const std::uint32_t rank = u32(what.c_str());
        if (rank > 8) fail("implausible rank " + std::to_string(rank) + " of " + what);
        std::vector<Index> dims(rank);
        std::uint64_t count = 1;
        for (auto& d : dims) {
            const std::uint64_t e = u64(what.c_str());
            if (e > left() / sizeof(T) || (e && count > (left() / sizeof(T)) / e))
                fail("tensor " + what + " declares more data than the file holds");
            d = static_cast<Index>(e);
            count *= e;
        }
        Tensor<T> t{Shape(dims)};
        const auto* b = take(count * sizeof(T), what.c_str());
        std::memcpy(t.data(), b, count * sizeof(T));
        for (Index i = 0; i < t.size(); ++i)
            if (!std::isfinite(static_cast<double>(t[i]))) fail("tensor " + what + " holds a non-finite value at index " + std::to_string(i));
        return t;
    }
    std::size_t left() const { return n_ - pos_; }
    [[noreturn]] void fail(const std::string& msg) const {
        throw CheckpointError(where_ + ": " + msg + " (at byte " + std::to_string(kCkptHeader + pos_) + ")");
    }

private:
    const std::uint8_t* take(std::uint64_t len, const char* what) {
        if (len > left()) fail(std::string("truncated while reading ") + what);
        const auto* b = p_ + pos_;
        pos_ += static_cast<std::size_t>(len);
        return b;
    }
    std::uint64_t le(int n, const char* what) {
        const auto* b = take(static_cast<std::uint64_t>(n), what);
        std::uint64_t v = 0;
        for (int i = 0; i < n; ++i) v |= static_cast<std::uint64_t>(b[i]) << (8 * i);
        return v;
    }
    const std::uint8_t* p_;
    std::size_t n_, pos_ = 0;
    std::string where_;
};

inline void write_spec(ByteWriter& w, const LayerSpec& s, bool children) {
    w.str(s.type);
    w.u32(static_cast<std::uint32_t>(s.args.size()));
    for (const auto& a : s.args) {
        w.u8(static_cast<std::uint8_t>(a.kind()));
        if (a.is_int()) {
            w.u64(static_cast<std::uint64_t>(a.int_value()));
        } else {
            const double v = a.real_value();
            std::uint64_t bits = 0;
            std::memcpy(&bits, &v, sizeof bits);
            w.u64(bits);
        }
    }
    if (!children) return;
    w.u32(static_cast<std::uint32_t>(s.children.size()));
    for (const auto& c : s.children) write_spec(w, c, true);
}

// `where` names the layer in errors: "layer 3" or "layer 3 child 1".
inline LayerSpec read_spec(ByteReader& r, std::uint32_t version, const std::string& where, std::size_t depth) {
    LayerSpec s;
    s.type = r.str("layer type");
    const std::uint32_t nargs = r.u32("layer argument count");
    if (nargs > r.left() / 8) r.fail("implausible argument count of " + where);
    for (std::uint32_t a = 0; a < nargs; ++a) {
        const std::uint8_t kind = version == 1 ? 0 : r.u8("layer argument kind");
        const std::uint64_t bits = r.u64("layer argument");
        if (kind == 0) {
            s.args.emplace_back(static_cast<std::int64_t>(bits));
        } else if (kind == 1) {
            double v = 0;
            std::memcpy(&v, &bits, sizeof v);
            if (!std::isfinite(v)) r.fail("non-finite real argument " + std::to_string(a) + " of " + where + " (" + s.type + ")");
            s.args.emplace_back(v);
        } else {
            r.fail("unknown argument kind " + std::to_string(kind) + " in " + where + " (" + s.type + ")");
        }
    }
    if (version < 3) return s;
    const std::uint32_t children = r.u32("child layer count");
    if (children > r.left() / 8) r.fail("implausible child layer count of " + where);
    if (children > 0 && depth >= kCkptMaxDepth) r.fail(where + " (" + s.type + ") nests layers more than " + std::to_string(kCkptMaxDepth) + " deep");
    for (std::uint32_t c = 0; c < children; ++c) s.children.push_back(read_spec(r, version, where + " child " + std::to_string(c), depth + 1));
    return s;
}

inline std::uint32_t crc32_of(const std::uint8_t* p, std::size_t n) {
    uLong c = crc32(0L, Z_NULL, 0);
    while (n > 0) {
        const uInt chunk = static_cast<uInt>(std::min<std::size_t>(n, 1u << 30));
        c = crc32(c, p, chunk);
        p += chunk;
        n -= chunk;
    }
    return static_cast<std::uint32_t>(c);
}

}  // namespace detail

/// Everything a checkpoint holds, parsed and validated but not yet applied.
template <typename T>
struct CheckpointData {
    std::uint32_t version = detail::kCkptVersion;
    std::vector<LayerSpec> architecture;
    std::vector<std::pair<std::string, Tensor<T>>> parameters;
    std::vector<std::pair<std::string, Tensor<T>>> buffers;   ///< version 2
    std::vector<std::array<std::uint64_t, 4>> streams;         ///< version 2: one per layer
    std::string optimizer;  ///< kind, "" when no optimizer was saved
    long long optimizer_steps = 0;
    std::vector<Tensor<T>> optimizer_state;
    Metadata metadata;
};

/// Encode model, optimizer (may be null) and metadata as checkpoint bytes.
template <typename T>
std::string encode_checkpoint(Sequential<T>& model, Optimizer<T>* optimizer = nullptr, const Metadata& metadata = {}) {
    check_output_masks_folded(model, "checkpoint");  // the raw parameters must be what the model computes
    detail::ByteWriter w;
    const auto specs = model.specs();
    bool nested = false;
    for (const auto& s : specs) nested = nested || !s.children.empty();
    const std::uint32_t version = nested ? 3 : 2;
    w.u32(static_cast<std::uint32_t>(specs.size()));
    for (const auto& s : specs) detail::write_spec(w, s, nested);
    auto params = model.parameters();
    w.u32(static_cast<std::uint32_t>(params.size()));
    for (const auto& p : params) {
        w.str(p.name);
        w.tensor(*p.value);
    }
    auto buffers = model.buffers();
    w.u32(static_cast<std::uint32_t>(buffers.size()));
    for (const auto& b : buffers) {
        w.str(b.name);
        w.tensor(*b.value);
    }
    w.u32(static_cast<std::uint32_t>(model.size()));
    for (std::size_t i = 0; i < model.size(); ++i)
        for (std::uint64_t word : model[i].rng().state()) w.u64(word);
    w.str(optimizer ? optimizer->kind() : "");
    w.u64(static_cast<std::uint64_t>(optimizer ? optimizer->steps() : 0));
    const auto state = optimizer ? optimizer->state() : std::vector<Tensor<T>*>{};
    w.u32(static_cast<std::uint32_t>(state.size()));
    for (const auto* t : state) w.tensor(*t);
    w.u32(static_cast<std::uint32_t>(metadata.size()));
    for (const auto& kv : metadata) w.str(kv.first), w.str(kv.second);

    std::string file(detail::kCkptMagic, 8);
    detail::ByteWriter h;
    h.u32(version);
    h.u32(sizeof(T));
    h.u64(w.out.size());
    file += h.out + w.out;
    detail::ByteWriter c;
    c.u32(detail::crc32_of(reinterpret_cast<const std::uint8_t*>(file.data()), file.size()));
    return file + c.out;
}

/// Parse and validate checkpoint bytes (everything that does not need the model).
template <typename T>
CheckpointData<T> decode_checkpoint(const std::uint8_t* p, std::size_t n, const std::string& where = "<memory>") {
    if (n == 0) throw CheckpointError(where + ": empty file");
    if (n < detail::kCkptHeader + 4 || std::memcmp(p, detail::kCkptMagic, 8) != 0)
        throw CheckpointError(where + (std::memcmp(p, detail::kCkptMagic, std::min<std::size_t>(n, 8)) == 0
                                           ? ": truncated header (" + std::to_string(n) + " bytes)"
                                           : ": not an eigencnn checkpoint (bad magic number)"));
    detail::ByteReader h(p + 8, 16, where);
    const std::uint32_t version = h.u32("version"), scalar = h.u32("scalar size");
    const std::uint64_t len = h.u64("payload length");
    if (version < 1 || version > detail::kCkptVersion)
        throw CheckpointError(where + ": unsupported checkpoint version " + std::to_string(version) + " (this build reads versions 1 to " +
                              std::to_string(detail::kCkptVersion) + ")");
    if (len != n - detail::kCkptHeader - 4)
        throw CheckpointError(where + ": " + (len > n - detail::kCkptHeader - 4 ? "truncated" : "trailing data") + ": header declares " +
                              std::to_string(len) + " payload bytes, file has " + std::to_string(n - detail::kCkptHeader - 4));
    const std::uint32_t stored = detail::ByteReader(p + n - 4, 4, where).u32("checksum");
    if (stored != detail::crc32_of(p, n - 4)) throw CheckpointError(where + ": checksum mismatch (the file is corrupted)");
    if (scalar != sizeof(T))
        throw CheckpointError(where + ": holds " + std::to_string(scalar) + "-byte scalars, the model uses " + std::to_string(sizeof(T)) +
                              "-byte ones (float vs double)");

    detail::ByteReader r(p + detail::kCkptHeader, static_cast<std::size_t>(len), where);
    CheckpointData<T> d;
    d.version = version;
    const std::uint32_t layers = r.u32("layer count");
    if (layers > r.left() / 8) r.fail("implausible layer count " + std::to_string(layers));
    for (std::uint32_t i = 0; i < layers; ++i) d.architecture.push_back(detail::read_spec(r, version, "layer " + std::to_string(i), 0));
    const std::uint32_t params = r.u32("parameter count");
    if (params > r.left() / 8) r.fail("implausible parameter count " + std::to_string(params));
    for (std::uint32_t i = 0; i < params; ++i) {
        std::string name = r.str("parameter name");
        d.parameters.emplace_back(name, r.template tensor<T>("'" + name + "'"));
    }
    if (version >= 2) {
        const std::uint32_t buffers = r.u32("buffer count");
        if (buffers > r.left() / 8) r.fail("implausible buffer count " + std::to_string(buffers));
        for (std::uint32_t i = 0; i < buffers; ++i) {
            std::string name = r.str("buffer name");
            d.buffers.emplace_back(name, r.template tensor<T>("buffer '" + name + "'"));
        }
        const std::uint32_t streams = r.u32("random stream count");
        if (streams != layers) r.fail(std::to_string(streams) + " random streams for " + std::to_string(layers) + " layers");
        for (std::uint32_t i = 0; i < streams; ++i) {
            std::array<std::uint64_t, 4> state{};
            for (auto& word : state) word = r.u64("random stream state");
            if ((state[0] | state[1] | state[2] | state[3]) == 0) r.fail("random stream of layer " + std::to_string(i) + " is all zero");
            d.streams.push_back(state);
        }
    }
    d.optimizer = r.str("optimizer kind");
    d.optimizer_steps = static_cast<long long>(r.u64("optimizer steps"));
    if (d.optimizer_steps < 0) r.fail("negative optimizer step count");
    const std::uint32_t states = r.u32("optimizer state count");
    if (states > r.left() / 4) r.fail("implausible optimizer state count " + std::to_string(states));
    for (std::uint32_t i = 0; i < states; ++i) d.optimizer_state.push_back(r.template tensor<T>("optimizer state " + std::to_string(i)));
    const std::uint32_t entries = r.u32("metadata count");
    if (entries > r.left() / 8) r.fail("implausible metadata count " + std::to_string(entries));
    for (std::uint32_t i = 0; i < entries; ++i) {
        std::string k = r.str("metadata key");
        d.metadata[k] = r.str("metadata value");
    }
    if (r.left() != 0) r.fail(std::to_string(r.left()) + " unread payload bytes");
    return d;
}

/// Check that `d` fits `model` (and `optimizer`, when given), then copy it in.
/// Nothing is changed unless everything fits.
template <typename T>
void apply_checkpoint(const CheckpointData<T>& d, Sequential<T>& model, Optimizer<T>* optimizer, const std::string& where) {
    const auto specs = model.specs();
    if (specs.size() != d.architecture.size())
        throw CheckpointError(where + ": architecture mismatch: the checkpoint has " + std::to_string(d.architecture.size()) +
                              " layers, the model " + std::to_string(specs.size()));
    for (std::size_t i = 0; i < specs.size(); ++i)
        if (specs[i] != d.architecture[i])
            throw CheckpointError(where + ": architecture mismatch at layer " + std::to_string(i) + ": " + d.architecture[i].str() +
                                  " in the checkpoint, " + specs[i].str() + " in the model");
    auto params = model.parameters();
    if (params.size() != d.parameters.size())
        throw CheckpointError(where + ": " + std::to_string(d.parameters.size()) + " parameters in the checkpoint, " +
                              std::to_string(params.size()) + " in the model");
    for (std::size_t i = 0; i < params.size(); ++i)
        if (params[i].name != d.parameters[i].first || params[i].value->shape() != d.parameters[i].second.shape())
            throw CheckpointError(where + ": parameter " + std::to_string(i) + " is '" + d.parameters[i].first + "' " +
                                  d.parameters[i].second.shape().str() + " in the checkpoint, '" + params[i].name + "' " +
                                  params[i].value->shape().str() + " in the model");
    auto buffers = model.buffers();
    if (d.version >= 2 || !buffers.empty()) {
        if (buffers.size() != d.buffers.size())
            throw CheckpointError(where + ": " + std::to_string(d.buffers.size()) + " buffers in the checkpoint, " +
                                  std::to_string(buffers.size()) + " in the model");
        for (std::size_t i = 0; i < buffers.size(); ++i)
            if (buffers[i].name != d.buffers[i].first || buffers[i].value->shape() != d.buffers[i].second.shape())
                throw CheckpointError(where + ": buffer " + std::to_string(i) + " is '" + d.buffers[i].first + "' " +
                                      d.buffers[i].second.shape().str() + " in the checkpoint, '" + buffers[i].name + "' " +
                                      buffers[i].value->shape().str() + " in the model");
    }
    std::vector<Tensor<T>*> state;
    if (optimizer) {
        if (d.optimizer.empty()) throw CheckpointError(where + ": holds no optimizer state to resume " + optimizer->kind() + " from");
        if (d.optimizer != optimizer->kind())
            throw CheckpointError(where + ": optimizer mismatch: " + d.optimizer + " in the checkpoint, " + optimizer->kind() + " given");
        state = optimizer->state();
        if (state.size() != d.optimizer_state.size())
            throw CheckpointError(where + ": " + std::to_string(d.optimizer_state.size()) + " optimizer state tensors in the checkpoint, " +
                                  std::to_string(state.size()) + " in the optimizer");
        for (std::size_t i = 0; i < state.size(); ++i)
            if (state[i]->shape() != d.optimizer_state[i].shape())
                throw CheckpointError(where + ": optimizer state " + std::to_string(i) + " is " + d.optimizer_state[i].shape().str() +
                                      " in the checkpoint, " + state[i]->shape().str() + " in the optimizer");
    }
    for (std::size_t i = 0; i < params.size(); ++i) *params[i].value = d.parameters[i].second;
    for (std::size_t i = 0; i < buffers.size(); ++i) *buffers[i].value = d.buffers[i].second;
    for (std::size_t i = 0; i < d.streams.size(); ++i) model[i].rng().set_state(d.streams[i]);
    for (std::size_t i = 0; i < state.size(); ++i) *state[i] = d.optimizer_state[i];
    if (optimizer) optimizer->set_steps(d.optimizer_steps);
}

/// Save atomically: the file at `path` is the old one or the complete new one, whatever happens.
template <typename T>
void save_checkpoint(const std::string& path, Sequential<T>& model, Optimizer<T>* optimizer = nullptr, const Metadata& metadata = {}) {
    write_file_atomic(path, encode_checkpoint(model, optimizer, metadata));
}


/// Load weights (and optimizer state, when `optimizer` is given) into an
/// existing model of the same architecture; returns the metadata.
template <typename T>
Metadata load_checkpoint(const std::string& path, Sequential<T>& model, Optimizer<T>* optimizer = nullptr) {
    const auto bytes = read_file_bytes<CheckpointError>(path, "checkpoint");
    const auto d = decode_checkpoint<T>(bytes.data(), bytes.size(), path);
    apply_checkpoint(d, model, optimizer, path);
    return d.metadata;
}

/// Build the model a decoded checkpoint describes (built-in layers) and load
/// its weights. Nothing larger than the weights the file holds is allocated.
template <typename T>
Sequential<T> model_from_checkpoint(const CheckpointData<T>& d, const std::string& where) {
    Sequential<T> model;
    try {
        std::uint64_t want = 0, have = 0;
        for (const auto& s : d.architecture) {
            want += spec_parameter_count<T>(s);
            if (want > (std::uint64_t(1) << 40)) throw std::invalid_argument("the architecture is implausibly large");
        }
        for (const auto& p : d.parameters) have += static_cast<std::uint64_t>(p.second.size());
        if (want != have)
            throw std::invalid_argument("it needs " + std::to_string(want) + " weights, the file holds " + std::to_string(have));
        model = make_model<T>(d.architecture);
    } catch (const std::invalid_argument& e) {
        throw CheckpointError(where + ": cannot rebuild the architecture: " + e.what());
    }
    apply_checkpoint(d, model, static_cast<Optimizer<T>*>(nullptr), where);
    return model;
}

/// Build the model stored in a checkpoint file, with its weights.
template <typename T>
Sequential<T> load_model(const std::string& path, Metadata* metadata = nullptr) {
    const auto bytes = read_file_bytes<CheckpointError>(path, "checkpoint");
    const auto d = decode_checkpoint<T>(bytes.data(), bytes.size(), path);
    if (metadata) *metadata = d.metadata;
    return model_from_checkpoint(d, path);
}

}  // namespace eigencnn
