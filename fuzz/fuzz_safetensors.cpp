// SPDX-License-Identifier: MIT
// libFuzzer entry point for the safetensors loader; see targets.hpp and scripts/fuzz.sh.
#include "targets.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    fuzz::safetensors(data, size);
    return 0;
}
