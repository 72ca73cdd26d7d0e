// fuzz/targets.hpp: what the fuzz targets do with one input, shared by the
// libFuzzer entry points (fuzz_*.cpp) and the regression test that replays
// fuzz/corpus and fuzz/regressions under CTest (tests/test_fuzz_inputs.cpp).
// Each function returns normally on success or on the parser's own error
// (IdxError, CheckpointError); any other exception, crash or sanitizer
// report is a bug.
#pragma once

#include <eigencnn/eigencnn.hpp>

namespace fuzz {

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

}  // namespace fuzz
