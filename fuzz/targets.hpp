// SPDX-License-Identifier: MIT
// fuzz/targets.hpp: what the fuzz targets do with one input, shared by the
// libFuzzer entry points (fuzz_*.cpp) and the regression test that replays
// fuzz/corpus and fuzz/regressions under CTest (tests/test_fuzz_inputs.cpp).
// Each function returns normally on success or on the parser's own error
// (IdxError, CheckpointError, SafetensorsError, Cifar10Error, ImageError, ModelFileError); any other exception, crash or
// sanitizer report is a bug.
#pragma once

#include <eigencnn/eigencnn.hpp>
#include <eigencnn/io/image.hpp>
#include <eigencnn/io/model_file.hpp>
#include <eigencnn/io/safetensors.hpp>

namespace fuzz {

/// Whether this build's UBSan reports stb_image 2.27's harmless shift of a zero (io/stb_image.hpp): clang is told to
/// leave it out, GCC cannot be; CMake defines EIGENCNN_GCC_UBSAN_STB_SHIFT for sanitized GCC builds.
#if defined(EIGENCNN_GCC_UBSAN_STB_SHIFT)
inline constexpr bool kUbsanReportsStbZeroShift = true;
#else
inline constexpr bool kUbsanReportsStbZeroShift = false;
#endif
/// The regression input that makes that shift.
inline constexpr const char* kStbZeroShiftInput = "jpeg_grow_buffer_shift_by_33";

/// The IDX reader (raw and gzip) and the dataset built from its output.
inline void idx(const std::uint8_t* data, std::size_t size) {
    using namespace eigencnn;
    try {
        const IdxArray a = parse_idx(data, size, "fuzz");
        std::size_t n = 1;
        for (auto d : a.dims) n *= d;
        if (n != a.data.size()) throw std::logic_error("parse_idx returned " + std::to_string(a.data.size()) + " bytes for " + std::to_string(n));
        if (a.dims.size() == 3) {
            IdxArray labels{{a.dims[0]}, std::vector<std::uint8_t>(a.dims[0], 1)};
            (void)make_dataset<float>(a, labels);
        }
    } catch (const IdxError&) {
    }
}

/// The CIFAR-10 reader: a batch file (records of 3073 bytes) and, on the same bytes, batches.meta.txt's class names.
inline void cifar10(const std::uint8_t* data, std::size_t size) {
    using namespace eigencnn;
    try {
        const Dataset<float> ds = parse_cifar10<float>(data, size, "fuzz");
        if (ds.images.shape() != Shape{ds.size(), 3, 32, 32} || static_cast<std::size_t>(ds.size()) * 3073 != size)
            throw std::logic_error("parse_cifar10 returned " + ds.images.shape().str() + " for " + std::to_string(size) + " bytes");
        ds.validate(10);
        for (Index i = 0; i < ds.images.size(); ++i)
            if (!(ds.images[i] >= 0.0f && ds.images[i] <= 1.0f)) throw std::logic_error("parse_cifar10: a pixel outside [0, 1]");
    } catch (const Cifar10Error&) {
    }
    try {
        const auto names = parse_cifar10_class_names(std::string(reinterpret_cast<const char*>(data), size), "fuzz");
        if (names.size() != 10) throw std::logic_error("parse_cifar10_class_names returned " + std::to_string(names.size()) + " names");
    } catch (const Cifar10Error&) {
    }
}

/// One image file, as the image-folder reader decodes each (bytes -> image): decoded to grey and to RGB (at most
/// 2^20 pixels), then converted to [C, H, W] in [0, 1] at its own size and resized to 5 x 7.
inline void image(const std::uint8_t* data, std::size_t size) {
    using namespace eigencnn;
    for (Index channels : {Index(3), Index(1)}) {
        try {
            const Image8 im = decode_image(data, size, channels, "fuzz", Index(1) << 20);
            if (im.height < 1 || im.width < 1 || im.channels != channels ||
                im.pixels.size() != static_cast<std::size_t>(im.height * im.width * channels))
                throw std::logic_error("decode_image returned " + std::to_string(im.pixels.size()) + " bytes for " + std::to_string(im.height) +
                                       "x" + std::to_string(im.width) + "x" + std::to_string(channels));
            std::vector<float> same(im.pixels.size()), small(static_cast<std::size_t>(channels * 5 * 7));
            resize_to_chw(im, im.height, im.width, same.data());
            resize_to_chw(im, 5, 7, small.data());
            for (const auto* v : {&same, &small})
                for (float x : *v)
                    if (!(x >= 0.0f && x <= 1.0f)) throw std::logic_error("an image value outside [0, 1]");
        } catch (const ImageError&) {
        }
    }
}

/// The checkpoint loader: decode; load into a small model with Adam; rebuild
/// the stored architecture as load_model does.
inline void checkpoint(const std::uint8_t* data, std::size_t size) {
    using namespace eigencnn;
    try {
        const auto d = decode_checkpoint<float>(data, size, "fuzz");
        Sequential<float> small(1);
        small.emplace<Conv2d>(1, 2, 3).emplace<ReLU>().emplace<MaxPool2d>(2).emplace<Flatten>().emplace<Linear>(2 * 3 * 3, 3);
        Adam<float> adam(small.parameters());
        try {
            apply_checkpoint(d, small, static_cast<Optimizer<float>*>(&adam), "fuzz");
        } catch (const CheckpointError&) {
        }
        (void)model_from_checkpoint(d, "fuzz");
    } catch (const CheckpointError&) {
    }
}

/// Shape arithmetic: a model built from arbitrary layer specs, its output
/// shape for an arbitrary small input, and (when every size is small) a
/// forward and backward. Input bytes: N, C, H, W (one byte each, N and C from
/// 1), then per layer: a type byte (one of the registered built-in types), an
/// argument count byte (0-7), and per argument a kind byte (even: integer,
/// odd: real) and 8 bytes of value. Refusals are std::invalid_argument.
inline void model(const std::uint8_t* data, std::size_t size) {
    using namespace eigencnn;
    static const std::vector<std::string> types{"Conv2d", "MaxPool2d", "ReLU", "Flatten", "Linear"};
    if (size < 4) return;
    const Shape in{1 + data[0] % 4, 1 + data[1] % 8, data[2] % 40, data[3] % 40};
    std::vector<LayerSpec> specs;
    for (std::size_t at = 4; at + 2 <= size && specs.size() < 12;) {
        LayerSpec s{types[data[at] % types.size()], {}};
        const std::size_t nargs = data[at + 1] % 8;
        at += 2;
        for (std::size_t a = 0; a < nargs && at + 9 <= size; ++a, at += 9) {
            std::uint64_t bits = 0;
            for (int b = 0; b < 8; ++b) bits |= static_cast<std::uint64_t>(data[at + 1 + b]) << (8 * b);
            if (data[at] % 2 == 0) {
                s.args.emplace_back(static_cast<std::int64_t>(bits));
            } else {
                double v = 0;
                std::memcpy(&v, &bits, sizeof v);
                s.args.emplace_back(v);
            }
        }
        specs.push_back(std::move(s));
    }
    try {
        std::uint64_t params = 0;  // a valid but huge model is the user's to ask for: not built here
        for (const auto& s : specs) params += std::min<std::uint64_t>(spec_parameter_count<float>(s), 1u << 30);
        if (params > (1u << 20)) return;
        Sequential<float> net = make_model<float>(specs);
        Shape s = in;
        bool small = net.num_parameters() <= (1 << 16);
        for (std::size_t i = 0; i < net.size(); ++i) {
            const Shape out = net[i].output_shape(s);
            small = small && out.numel() <= (1 << 16);
            if (const auto* conv = dynamic_cast<const Conv2d<float>*>(&net[i]))  // per-image im2col [C*K*K + 1, OH*OW]
                small = small && (conv->in_channels() * conv->kernel_size() * conv->kernel_size() + 1) * out[2] * out[3] <= (1 << 20);
            s = out;
        }
        if (!small || in.numel() == 0 || net.size() == 0) return;
        Tensor<float> x(in, 0.5f);
        const Tensor<float>& y = net.forward(x);
        Tensor<float> dy(y.shape(), 1.0f);
        net.backward(dy);
        net.forward(x);
        net.backward_input(dy);
    } catch (const std::invalid_argument&) {
    }
}

/// Decode into `net`; a refusal must leave it bitwise as it was, an accepted file must survive a save and reload.
template <typename T>
void safetensors_into(eigencnn::Sequential<T>& net, const std::uint8_t* data, std::size_t size, bool strict) {
    using namespace eigencnn;
    std::vector<Tensor<T>> before;
    for (auto& p : net.parameters()) before.push_back(*p.value);
    try {
        decode_safetensors(net, data, size, "fuzz", SafetensorsLoadOptions{strict});
    } catch (const SafetensorsError&) {
        auto params = net.parameters();
        for (std::size_t i = 0; i < params.size(); ++i)
            if (std::memcmp(params[i].value->data(), before[i].data(), sizeof(T) * static_cast<std::size_t>(before[i].size())) != 0)
                throw std::logic_error("a refused safetensors file changed parameter " + params[i].name);
        return;
    }
    for (auto& p : net.parameters())
        for (Index i = 0; i < p.value->size(); ++i)
            if (!std::isfinite((*p.value)[i])) throw std::logic_error("a loaded safetensors file put a non-finite value in " + p.name);
    const std::string again = encode_safetensors(net);
    decode_safetensors(net, reinterpret_cast<const std::uint8_t*>(again.data()), again.size(), "fuzz re-encoded");
}

/// A model built once (building one per input cost more than the parse), reset to its initial weights per input.
template <typename T>
eigencnn::Sequential<T>& safetensors_model() {
    using namespace eigencnn;
    struct Held {
        Sequential<T> net{1};
        std::vector<Tensor<T>> initial;
        Held() {
            net.template emplace<Conv2d>(1, 2, 3).template emplace<ReLU>().template emplace<MaxPool2d>(2).template emplace<Flatten>().template emplace<Linear>(
                2 * 3 * 3, 3);
            for (auto& p : net.parameters()) initial.push_back(*p.value);
        }
    };
    static Held held;
    auto params = held.net.parameters();
    for (std::size_t i = 0; i < params.size(); ++i) *params[i].value = held.initial[i];
    return held.net;
}

/// The safetensors loader: the container alone, then decode into a small float model (strict and not) and a
/// double one (the same layers). Seeds (fuzz/corpus/safetensors) hold this model's tensors.
inline void safetensors(const std::uint8_t* data, std::size_t size) {
    using namespace eigencnn;
    try {
        (void)parse_safetensors(data, size, "fuzz");
    } catch (const SafetensorsError&) {
    }
    safetensors_into(safetensors_model<float>(), data, size, true);
    safetensors_into(safetensors_model<float>(), data, size, false);
    safetensors_into(safetensors_model<double>(), data, size, false);
}

/// The model-file loader (io/model_file.hpp): tell a checkpoint from a safetensors file by content and load
/// it (a checkpoint's own architecture, or mnist_cnn for safetensors). Refusals are the readers' errors.
inline void model_file(const std::uint8_t* data, std::size_t size) {
    using namespace eigencnn;
    try {
        (void)detect_model_file_format(data, size, "fuzz");
        (void)decode_model_file<float>(data, size, "fuzz");
    } catch (const ModelFileError&) {
    } catch (const CheckpointError&) {
    } catch (const SafetensorsError&) {
    }
}

}  // namespace fuzz
