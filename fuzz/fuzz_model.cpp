// SPDX-License-Identifier: MIT
// libFuzzer entry point for the shape arithmetic of layers and models built from arbitrary specs; see targets.hpp.
#include "targets.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    fuzz::model(data, size);
    return 0;
}
