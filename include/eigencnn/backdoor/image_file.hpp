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
// stb_image's implementation is compiled here once per translation unit with
// static linkage (STB_IMAGE_STATIC), and STB_IMAGE_IMPLEMENTATION is undefined
// again right after, so it does not leak into later includes. If the
// translation unit already compiled stb_image's implementation before
// including this header, that one is used. A translation unit that includes
// this header must not compile stb_image's implementation again AFTER it (the
// functions would be defined twice); include <stb_image.h> with
// STB_IMAGE_IMPLEMENTATION first, or simply call stbi_load, which is here.
// This header is not part of eigencnn.hpp; backdoor/attacks.hpp includes it.
#pragma once

#include "../core/tensor.hpp"

#include <algorithm>
#include <cmath>
#include <memory>
#include <stdexcept>
#include <string>

#if !defined(STBI_INCLUDE_STB_IMAGE_H) || !defined(STBI_MALLOC)  // no implementation in this unit yet
#if defined(STBI_INCLUDE_STB_IMAGE_H)
#error "eigencnn/backdoor/image_file.hpp: <stb_image.h> was included without STB_IMAGE_IMPLEMENTATION before; include this header first"
#endif
#if defined(__GNUC__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#pragma GCC diagnostic ignored "-Wsign-compare"
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wunused-parameter"
#pragma GCC diagnostic ignored "-Wconversion"
#pragma GCC diagnostic ignored "-Wdouble-promotion"
#pragma GCC diagnostic ignored "-Wimplicit-fallthrough"
#pragma GCC diagnostic ignored "-Wunused-but-set-variable"
#endif
#define STB_IMAGE_STATIC
#define STB_IMAGE_IMPLEMENTATION
#define STBI_FAILURE_USERMSG
#include <stb_image.h>
#undef STB_IMAGE_IMPLEMENTATION
#undef STB_IMAGE_STATIC
#undef STBI_FAILURE_USERMSG
#if defined(__GNUC__)
#pragma GCC diagnostic pop
#endif
#endif

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
    const unsigned char* src = px.get();
    const auto C = channels;
    Tensor<T> out(Shape{1, C, height, width});
    auto at = [&](Index c, Index y, Index x) { return static_cast<double>(src[(y * w + x) * C + c]); };
    const double sy = static_cast<double>(h) / static_cast<double>(height), sx = static_cast<double>(w) / static_cast<double>(width);
    for (Index y = 0; y < height; ++y) {
        const double fy = std::max(0.0, (static_cast<double>(y) + 0.5) * sy - 0.5);
        const Index y0 = std::min<Index>(static_cast<Index>(fy), h - 1), y1 = std::min<Index>(y0 + 1, h - 1);
        const double ty = fy - static_cast<double>(y0);
        for (Index x = 0; x < width; ++x) {
            const double fx = std::max(0.0, (static_cast<double>(x) + 0.5) * sx - 0.5);
            const Index x0 = std::min<Index>(static_cast<Index>(fx), w - 1), x1 = std::min<Index>(x0 + 1, w - 1);
            const double tx = fx - static_cast<double>(x0);
            for (Index c = 0; c < C; ++c) {
                const double v = (1 - ty) * ((1 - tx) * at(c, y0, x0) + tx * at(c, y0, x1)) +
                                 ty * ((1 - tx) * at(c, y1, x0) + tx * at(c, y1, x1));
                out(0, c, y, x) = static_cast<T>(v / 255.0);
            }
        }
    }
    return out;
}

}  // namespace eigencnn
