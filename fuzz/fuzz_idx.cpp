// SPDX-License-Identifier: MIT
// libFuzzer entry point for the IDX reader; see targets.hpp and scripts/fuzz.sh.
#include "targets.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    fuzz::idx(data, size);
    return 0;
}
