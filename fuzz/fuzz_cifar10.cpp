// SPDX-License-Identifier: MIT
// libFuzzer entry point for the CIFAR-10 reader (batch files and class names); see targets.hpp and scripts/fuzz.sh.
#include "targets.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    fuzz::cifar10(data, size);
    return 0;
}
