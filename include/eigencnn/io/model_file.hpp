// SPDX-License-Identifier: MIT
// eigencnn/io/model_file.hpp
//
// One loader for a model file of either kind, told apart by content, not by
// the file's name:
//
//   checkpoint    starts with the magic "EIGENCNN" (io/checkpoint.hpp); it carries its architecture
//   safetensors   starts with a u64 (little-endian) header length N, 2 <= N <= the bytes after it,
//                 and the header begins with '{' (io/safetensors.hpp); it holds tensors only, so the
//                 architecture is a name make_architecture knows (model/factory.hpp): mnist_cnn,
//                 the notebook's, unless one is named
//
//   Sequential<float> m = load_model_file<float>("net.ckpt");                  // drop-in for load_model<float>
//   Sequential<float> m = load_model_file<float>("net.safetensors");           // mnist_cnn
//   Sequential<float> m = load_model_file<float>("net.safetensors", "mnist_cnn_bn");
//   ModelFileInfo info;  load_model_file<float>(path, arch, &info);           // what was read, and how
//
// For a checkpoint, a named architecture must be the one it carries (else an
// error names both). Errors name the file and the problem:
//   ModelFileError     "<file>: neither an eigencnn checkpoint ... nor a safetensors file ..."
//                      "<file>: the safetensors tensors do not fit architecture 'mnist_cnn' (...): tensor '0.weight': shape ..."
//                      "<file>: --arch mnist_cnn_bn, but the checkpoint holds another architecture: ..."
//   CheckpointError, SafetensorsError from the readers (they name the file too);
//   std::invalid_argument for an unknown architecture name (the valid names listed).
// Nothing is returned half-loaded: both readers check the whole file first.
//
// Uses nlohmann-json (through io/safetensors.hpp); not included by eigencnn.hpp.
#pragma once

#include "../model/factory.hpp"
#include "checkpoint.hpp"
#include "safetensors.hpp"

#include <cstring>

namespace eigencnn {

class ModelFileError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

enum class ModelFileFormat { Checkpoint, Safetensors };

inline const char* to_string(ModelFileFormat f) { return f == ModelFileFormat::Checkpoint ? "checkpoint" : "safetensors"; }

/// The architecture a safetensors file gets when none is named: the notebook's.
inline constexpr const char* kDefaultArchitecture = "mnist_cnn";

/// What load_model_file read.
struct ModelFileInfo {
    ModelFileFormat format = ModelFileFormat::Checkpoint;
    std::string architecture;  ///< the name used (safetensors), or "" for a checkpoint's own architecture
    Metadata metadata;         ///< the checkpoint's metadata, or the safetensors "__metadata__"
};

/// Which kind of model file `p[0, n)` is; ModelFileError naming `where` when it is neither.
inline ModelFileFormat detect_model_file_format(const std::uint8_t* p, std::size_t n, const std::string& where) {
    if (n >= 8 && std::memcmp(p, "EIGENCNN", 8) == 0) return ModelFileFormat::Checkpoint;
    if (n >= 10) {
        std::uint64_t header = 0;
        for (int i = 0; i < 8; ++i) header |= static_cast<std::uint64_t>(p[i]) << (8 * i);
        if (header >= 2 && header <= n - 8 && p[8] == '{') return ModelFileFormat::Safetensors;
    }
    throw ModelFileError(where + ": neither an eigencnn checkpoint (it would start with \"EIGENCNN\") nor a safetensors file (an 8-byte " +
                         "header length, then a JSON header starting with '{'); " + std::to_string(n) + " bytes" +
                         (n == 0 ? " (empty file)" : ""));
}

/// load_model_file on bytes in memory (tests, fuzzing); `where` names the source in errors.
template <typename T>
Sequential<T> decode_model_file(const std::uint8_t* p, std::size_t n, const std::string& where, const std::string& architecture = "",
                                ModelFileInfo* info = nullptr) {
    if (!architecture.empty()) (void)make_architecture<T>(architecture);  // an unknown name fails first, listing the valid ones
    ModelFileInfo got;
    got.format = detect_model_file_format(p, n, where);
    if (got.format == ModelFileFormat::Checkpoint) {
        const auto d = decode_checkpoint<T>(p, n, where);
        if (!architecture.empty()) {
            const Sequential<T> named = make_architecture<T>(architecture);
            std::vector<LayerSpec> want;
            for (std::size_t i = 0; i < named.size(); ++i) want.push_back(named[i].spec());
            if (want != d.architecture) {
                std::string held;
                for (const auto& s : d.architecture) held += (held.empty() ? "" : ", ") + s.str();
                throw ModelFileError(where + ": architecture '" + architecture + "' was named, but the checkpoint holds another: " + held +
                                     " (a checkpoint carries its own architecture; name none)");
            }
        }
        got.metadata = d.metadata;
        Sequential<T> model = model_from_checkpoint(d, where);
        if (info) *info = got;
        return model;
    }
    got.architecture = architecture.empty() ? kDefaultArchitecture : architecture;
    Sequential<T> model = make_architecture<T>(got.architecture);
    (void)parse_safetensors(p, n, where);  // a broken container is reported as it is
    try {
        got.metadata = decode_safetensors(model, p, n, where);
    } catch (const SafetensorsError& e) {
        // Names or shapes that do not fit the model: also say which architecture they were checked against.
        const std::string msg = e.what();
        if (msg.find("the model") == std::string::npos) throw;
        std::string valid;
        for (const auto& a : architecture_names()) valid += (valid.empty() ? "" : ", ") + a;
        throw ModelFileError(where + ": the safetensors tensors do not fit architecture '" + got.architecture + "' (" +
                             (architecture.empty() ? "the default; " : "") + "--arch names another of: " + valid + "): " +
                             msg.substr(msg.rfind(where, 0) == 0 ? where.size() + 2 : 0));
    }
    if (info) *info = got;
    return model;
}

/// Build the model stored in `path`, a checkpoint or a safetensors file (see the top of the file).
template <typename T>
Sequential<T> load_model_file(const std::string& path, const std::string& architecture = "", ModelFileInfo* info = nullptr) {
    if (!architecture.empty()) (void)make_architecture<T>(architecture);  // before reading: an unknown name lists the valid ones
    const std::vector<std::uint8_t> bytes = read_file_bytes<ModelFileError>(path, "model file");
    return decode_model_file<T>(bytes.data(), bytes.size(), path, architecture, info);
}

}  // namespace eigencnn
