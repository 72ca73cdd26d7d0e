// SPDX-License-Identifier: MIT
// libFuzzer entry point for the CIFAR-10 reader (batch files and class names); see targets.hpp (compiled once in targets.cpp) and scripts/fuzz.sh.
#include "entry.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    fuzz_entry::cifar10(data, size);
    return 0;
}
