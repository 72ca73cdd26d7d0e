// SPDX-License-Identifier: MIT
// libFuzzer entry point for the model-file loader (checkpoint or safetensors by content); see targets.hpp (compiled once in targets.cpp) and scripts/fuzz.sh.
#include "entry.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    fuzz_entry::model_file(data, size);
    return 0;
}
