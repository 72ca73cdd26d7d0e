// SPDX-License-Identifier: MIT
// libFuzzer entry point for the checkpoint loader; see targets.hpp and scripts/fuzz.sh.
#include "targets.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    fuzz::checkpoint(data, size);
    return 0;
}
