// SPDX-License-Identifier: MIT
// libFuzzer entry point for the shape arithmetic of layers and models built from arbitrary specs; see targets.hpp (compiled once in targets.cpp).
#include "entry.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    fuzz_entry::model(data, size);
    return 0;
}
