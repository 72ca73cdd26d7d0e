// SPDX-License-Identifier: MIT
// libFuzzer entry point for the model-file loader (checkpoint or safetensors by content); see targets.hpp and scripts/fuzz.sh.
#include "targets.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    fuzz::model_file(data, size);
    return 0;
}
