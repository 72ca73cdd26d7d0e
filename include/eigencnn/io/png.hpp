// SPDX-License-Identifier: MIT
// eigencnn/io/png.hpp
//
// PNG output, encoded here with zlib (no third-party image library, so
// nothing leaks into the including program; the PNG specification, ISO/IEC
// 15948: signature, IHDR, one IDAT of zlib-compressed scanlines each with
// filter byte 0, IEND; each chunk: length, type, data, CRC-32 of type+data):
//   encode_png        the bytes of an 8-bit grey, grey+alpha, RGB or RGBA image
//   write_png         the same, written atomically
//   write_image_grid  a grid of images [N, C, H, W] in [0, 1], each with a
//                     caption (digits and ":>-/?" drawn with a 3x5 font) in
//                     a colour of its own, e.g. green for a right prediction.
// Files are written atomically (see io/file.hpp).
#pragma once

#include "../core/tensor.hpp"
#include "file.hpp"

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include <zlib.h>

#include <stdexcept>

namespace eigencnn {

using Rgb = std::array<std::uint8_t, 3>;

/// The PNG file of an 8-bit image. pixels: height rows of width*channels bytes
/// (channels 1 grey, 2 grey+alpha, 3 RGB, 4 RGBA).
/// `where` names the image in errors.
inline std::string encode_png(int width, int height, int channels, const std::uint8_t* pixels, const std::string& where = "encode_png") {
    if (width < 1 || height < 1 || channels < 1 || channels > 4 || width > (1 << 24) || height > (1 << 24))
        throw std::invalid_argument(where + ": bad image size " + std::to_string(width) + "x" + std::to_string(height) + "x" +
                                    std::to_string(channels));
    const std::size_t row = static_cast<std::size_t>(width) * static_cast<std::size_t>(channels);
    std::string raw;
    raw.reserve((row + 1) * static_cast<std::size_t>(height));
    for (int y = 0; y < height; ++y) {
        raw.push_back('\0');  // filter: none
        raw.append(reinterpret_cast<const char*>(pixels) + static_cast<std::size_t>(y) * row, row);
    }
    uLongf packed_size = compressBound(static_cast<uLong>(raw.size()));
    std::string packed(packed_size, '\0');
    if (compress2(reinterpret_cast<Bytef*>(&packed[0]), &packed_size, reinterpret_cast<const Bytef*>(raw.data()), static_cast<uLong>(raw.size()),
                  6) != Z_OK)
        throw std::runtime_error(where + ": zlib could not compress the image");
    packed.resize(packed_size);
    const auto be32 = [](std::string& out, std::uint32_t v) {
        for (int s = 24; s >= 0; s -= 8) out.push_back(static_cast<char>((v >> s) & 0xff));
    };
    std::string png("\x89PNG\r\n\x1a\n", 8);
    const auto chunk = [&](const char* type, const std::string& data) {
        be32(png, static_cast<std::uint32_t>(data.size()));
        const std::string body = std::string(type, 4) + data;
        png += body;
        be32(png, static_cast<std::uint32_t>(crc32(0L, reinterpret_cast<const Bytef*>(body.data()), static_cast<uInt>(body.size()))));
    };
    static const char color_type[5] = {0, 0, 4, 2, 6};
    std::string ihdr;
    be32(ihdr, static_cast<std::uint32_t>(width));
    be32(ihdr, static_cast<std::uint32_t>(height));
    ihdr += std::string{8, color_type[channels], 0, 0, 0};  // bit depth 8, colour type, deflate, no filter method, no interlace
    chunk("IHDR", ihdr);
    chunk("IDAT", packed);
    chunk("IEND", "");
    return png;
}

/// Encode and write a PNG atomically (see encode_png).
inline void write_png(const std::string& path, int width, int height, int channels, const std::uint8_t* pixels) {
    write_file_atomic(path, encode_png(width, height, channels, pixels, "write_png: " + path));
}

namespace detail {
// 3x5 glyphs, one row per 3-bit group (bit 2 = left column).
inline const std::array<std::uint8_t, 5>* glyph(char ch) {
    static const std::array<std::uint8_t, 5> digits[10] = {
        {{7, 5, 5, 5, 7}}, {{2, 6, 2, 2, 7}}, {{7, 1, 7, 4, 7}}, {{7, 1, 7, 1, 7}}, {{5, 5, 7, 1, 1}},
        {{7, 4, 7, 1, 7}}, {{7, 4, 7, 5, 7}}, {{7, 1, 1, 1, 1}}, {{7, 5, 7, 5, 7}}, {{7, 5, 7, 1, 7}}};
    static const std::array<std::uint8_t, 5> colon{{0, 2, 0, 2, 0}}, gt{{4, 2, 1, 2, 4}}, dash{{0, 0, 7, 0, 0}},
        slash{{1, 1, 2, 4, 4}}, question{{7, 1, 3, 0, 2}};
    if (ch >= '0' && ch <= '9') return &digits[ch - '0'];
    switch (ch) {
        case ':': return &colon;
        case '>': return &gt;
        case '-': return &dash;
        case '/': return &slash;
        case '?': return &question;
        default: return nullptr;  // drawn as a space
    }
}
}  // namespace detail

/// Write images [N, C, H, W] (C = 1 or 3, values in [0, 1], clamped) as a
/// grid of `columns` cells, each scaled by `scale` and captioned below.
/// captions and colors may be empty, or hold one entry per image.
template <typename T>
void write_image_grid(const std::string& path, const Tensor<T>& images, const std::vector<std::string>& captions = {},
                      const std::vector<Rgb>& colors = {}, int columns = 10, int scale = 3) {
    const Shape& s = images.shape();
    if (s.rank() != 4 || (s[1] != 1 && s[1] != 3) || s[0] < 1)
        throw std::invalid_argument("write_image_grid: " + path + ": expected images [N, 1 or 3, H, W], got " + s.str());
    if (!captions.empty() && static_cast<Index>(captions.size()) != s[0])
        throw std::invalid_argument("write_image_grid: " + path + ": " + std::to_string(captions.size()) + " captions for " +
                                    std::to_string(s[0]) + " images");
    if (!colors.empty() && static_cast<Index>(colors.size()) != s[0])
        throw std::invalid_argument("write_image_grid: " + path + ": " + std::to_string(colors.size()) + " colours for " +
                                    std::to_string(s[0]) + " images");
    if (columns < 1 || scale < 1) throw std::invalid_argument("write_image_grid: columns and scale must be >= 1");
    const int N = static_cast<int>(s[0]), C = static_cast<int>(s[1]), H = static_cast<int>(s[2]), W = static_cast<int>(s[3]);
    const int font = scale;  // pixel size of one glyph dot
    const int caption_h = captions.empty() ? 0 : 7 * font;
    const int pad = 2 * scale, cell_w = W * scale + pad, cell_h = H * scale + caption_h + pad;
    const int cols = std::min(columns, N), rows = (N + cols - 1) / cols;
    const int width = cols * cell_w + pad, height = rows * cell_h + pad;
    std::vector<std::uint8_t> px(static_cast<std::size_t>(width) * static_cast<std::size_t>(height) * 3, 40);  // dark grey background
    auto put = [&](int x, int y, Rgb c) {
        if (x < 0 || y < 0 || x >= width || y >= height) return;
        std::uint8_t* p = &px[(static_cast<std::size_t>(y) * static_cast<std::size_t>(width) + static_cast<std::size_t>(x)) * 3];
        p[0] = c[0], p[1] = c[1], p[2] = c[2];
    };
    for (int n = 0; n < N; ++n) {
        const int x0 = pad + (n % cols) * cell_w, y0 = pad + (n / cols) * cell_h;
        for (int y = 0; y < H * scale; ++y)
            for (int x = 0; x < W * scale; ++x) {
                Rgb c;
                for (int ch = 0; ch < 3; ++ch) {
                    const double v = static_cast<double>(images(n, C == 3 ? ch : 0, y / scale, x / scale));
                    c[static_cast<std::size_t>(ch)] = static_cast<std::uint8_t>(std::lround(255.0 * std::min(1.0, std::max(0.0, v))));
                }
                put(x0 + x, y0 + y, c);
            }
        if (captions.empty()) continue;
        const Rgb color = colors.empty() ? Rgb{{230, 230, 230}} : colors[static_cast<std::size_t>(n)];
        const std::string& text = captions[static_cast<std::size_t>(n)];
        for (std::size_t k = 0; k < text.size(); ++k) {
            const auto* g = detail::glyph(text[k]);
            if (!g) continue;
            for (int r = 0; r < 5; ++r)
                for (int b = 0; b < 3; ++b)
                    if ((*g)[static_cast<std::size_t>(r)] >> (2 - b) & 1)
                        for (int dy = 0; dy < font; ++dy)
                            for (int dx = 0; dx < font; ++dx)
                                put(x0 + (static_cast<int>(k) * 4 + b) * font + dx, y0 + H * scale + font + r * font + dy, color);
        }
    }
    write_png(path, width, height, 3, px.data());
}

}  // namespace eigencnn
