// SPDX-License-Identifier: MIT
// fuzz/targets.cpp: every fuzz target of targets.hpp compiled once, behind the declarations of entry.hpp.
#include "entry.hpp"
#include "targets.hpp"

namespace fuzz_entry {
void idx(const std::uint8_t* data, std::size_t size) { fuzz::idx(data, size); }
void cifar10(const std::uint8_t* data, std::size_t size) { fuzz::cifar10(data, size); }
void image(const std::uint8_t* data, std::size_t size) { fuzz::image(data, size); }
void checkpoint(const std::uint8_t* data, std::size_t size) { fuzz::checkpoint(data, size); }
void model(const std::uint8_t* data, std::size_t size) { fuzz::model(data, size); }
void safetensors(const std::uint8_t* data, std::size_t size) { fuzz::safetensors(data, size); }
void model_file(const std::uint8_t* data, std::size_t size) { fuzz::model_file(data, size); }
}  // namespace fuzz_entry
