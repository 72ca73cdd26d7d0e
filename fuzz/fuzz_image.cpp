// SPDX-License-Identifier: MIT
// libFuzzer entry point for the image decoder of the image-folder reader (one file: bytes -> image); see targets.hpp (compiled once in targets.cpp) and scripts/fuzz.sh.
#include "entry.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    fuzz_entry::image(data, size);
    return 0;
}
