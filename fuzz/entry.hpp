// SPDX-License-Identifier: MIT
// fuzz/entry.hpp: the fuzz targets of targets.hpp as compiled once in targets.cpp, for the libFuzzer entry points
// (fuzz_*.cpp). scripts/fuzz.sh compiles targets.cpp once and links it into each entry point: compiled with each
// entry point, the same eigencnn code took 50-76 s per target.
#pragma once

#include <cstddef>
#include <cstdint>

namespace fuzz_entry {
void idx(const std::uint8_t* data, std::size_t size);
void cifar10(const std::uint8_t* data, std::size_t size);
void image(const std::uint8_t* data, std::size_t size);
void checkpoint(const std::uint8_t* data, std::size_t size);
void model(const std::uint8_t* data, std::size_t size);
void safetensors(const std::uint8_t* data, std::size_t size);
void model_file(const std::uint8_t* data, std::size_t size);
}  // namespace fuzz_entry
