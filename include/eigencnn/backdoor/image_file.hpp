// SPDX-License-Identifier: MIT
// eigencnn/backdoor/image_file.hpp
//
// read_trigger_image(path, C, H, W): a PNG, JPEG, BMP, ... file decoded with
// stb_image (libstb-dev), converted to C channels (1 = grey, 3 = RGB) and
// resized to H x W, as a tensor [1, C, H, W] of values in [0, 1].
//
//   value(c, y, x) = bilinear sample of the 8-bit image at source position
//                    ((y + 0.5) * h / H - 0.5, (x + 0.5) * w / W - 0.5), / 255
//   (align_corners=False, edges clamped: PIL's and torch's "bilinear" resize
//   without antialiasing)
//
// stb_image's implementation is compiled once per translation unit with
// static linkage and does not leak into later includes: see io/stb_image.hpp
// (include <stb_image.h> with STB_IMAGE_IMPLEMENTATION before this header, or
// not at all).
// This header is not part of eigencnn.hpp; backdoor/attacks.hpp includes it.
#pragma once

#include "../core/tensor.hpp"
#include "../io/image.hpp"  // stb_image, contained (io/stb_image.hpp); resize_bilinear_to_chw

#include <algorithm>
#include <cmath>
#include <memory>
#include <stdexcept>
#include <string>

namespace eigencnn {

/// Decode the image file at `path` (any format stb_image reads) and return it
/// as [1, channels, height, width] in [0, 1]: grey <-> RGB converted (grey =
/// stb_image's (77 R + 150 G + 29 B) / 256), then resized bilinearly.
/// Throws std::invalid_argument naming `parameter` and the file when it cannot be read.
template <typename T = float>
Tensor<T> read_trigger_image(const std::string& path, Index channels, Index height, Index width,
                             const std::string& parameter = "trigger_image") {
    if (channels != 1 && channels != 3)
        throw std::invalid_argument(parameter + ": images of " + std::to_string(channels) + " channels are not supported (1 or 3)");
    if (height < 1 || width < 1)
        throw std::invalid_argument(parameter + ": bad target size " + std::to_string(height) + "x" + std::to_string(width));
    int w = 0, h = 0, file_channels = 0;
    using Pixels = std::unique_ptr<unsigned char, void (*)(void*)>;
    Pixels px(stbi_load(path.c_str(), &w, &h, &file_channels, static_cast<int>(channels)), stbi_image_free);
    if (!px)
        throw std::invalid_argument(parameter + ": cannot read image file '" + path + "': " + stbi_failure_reason());
    Tensor<T> out(Shape{1, channels, height, width});
    resize_bilinear_to_chw(px.get(), h, w, channels, height, width, out.data());
    return out;
}

}  // namespace eigencnn
