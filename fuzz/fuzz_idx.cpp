// SPDX-License-Identifier: MIT
// libFuzzer entry point for the IDX reader; see targets.hpp (compiled once in targets.cpp) and scripts/fuzz.sh.
#include "entry.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    fuzz_entry::idx(data, size);
    return 0;
}
