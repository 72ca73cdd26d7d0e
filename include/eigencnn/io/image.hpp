// SPDX-License-Identifier: MIT
// eigencnn/io/image.hpp
//
// Image files in, through stb_image (libstb-dev; see io/stb_image.hpp for how
// its implementation is contained): PNG, JPEG, BMP, PPM/PGM and the other
// formats stb_image reads, 8 bits per channel (16-bit PNGs are reduced to 8).
//
//   decode_image(bytes, n, channels)   -> Image8, height x width x channels, interleaved (HWC)
//   image_to_chw(image, out)           -> out[c, y, x] = pixel / 255           (torchvision's ToTensor)
//   resize_to_chw(image, H, W, out)    -> bilinear resize, then / 255
//
// Channels follow torchvision's default loader (PIL): 3 = RGB (alpha
// dropped, grey replicated), 1 = grey by PIL's convert("L"), the ITU-R 601-2
// luma L = (19595 R + 38470 G + 7471 B + 2^15) >> 16 (a grey image stays
// exactly as it is). The resize is torch's F.interpolate(mode="bilinear",
// align_corners=False, antialias=False): value(c, y, x) samples the source at
// ((y + 0.5) * h / H - 0.5, (x + 0.5) * w / W - 0.5), edges clamped. It is not
// PIL's antialiased resize, so a large downscale aliases.
//
// Errors are ImageError("<where>: <problem>"): undecodable data (with
// stb_image's reason), more pixels than max_pixels (checked from the header,
// before anything that size is allocated), a file that cannot be read.
//
// Only PNG, JPEG, BMP and binary PGM/PPM are handed to stb_image (recognised
// by their first bytes, whatever the file name); other formats stb_image
// knows (GIF, PSD, HDR, PIC, TGA) are refused, which keeps untrusted files
// away from its least tested decoders. Debian's stb_image 2.27 has known
// memory errors on malformed files that are fixed upstream only later
// (nothings/stb#1289 and #1291: a JPEG Huffman table of more than 256 codes
// overruns its arrays; a DC Huffman symbol above 15 indexes a 17-entry table
// out of range; PR #1297: a PNM size that overflows an int; a 16-bit
// PNM converted to another channel count is read past its buffer; a PNG
// chunk longer than the file is allocated before it is read); those
// inputs are recognised here and refused before stb_image sees them
// (detail::check_image_bytes). So PGM/PPM files must have 8 bits (maximum
// value <= 255); 16-bit PNGs are read (reduced to 8 bits).
#pragma once

#include "../core/tensor.hpp"
#include "file.hpp"
#include "stb_image.hpp"

#include <algorithm>
#include <climits>
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

namespace eigencnn {

class ImageError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

/// An 8-bit image, rows of width * channels bytes (RGB interleaved when channels is 3).
struct Image8 {
    Index height = 0, width = 0, channels = 0;
    std::vector<std::uint8_t> pixels;
};

/// Default limit on the pixels of one decoded image (2^26: 8192 x 8192), against files whose header claims a size
/// far beyond their data.
constexpr Index kMaxImagePixels = Index(1) << 26;

namespace detail {

/// JPEG: every Huffman table stb_image would build must hold at most 256 codes (nothings/stb#1289, #1291), and a DC
/// table no symbol above 15 (stb_image 2.27 passes the symbol unchecked to stbi__extend_receive as a bit count,
/// which indexes its 17-entry bit-mask table with it and drives the bit count negative; 2.28 refuses it). The
/// segments before the first scan are walked as stb_image reads them (lengths; bytes between segments skipped until
/// an 0xFF); after it, every 0xFF 0xC4 pair is checked as a DHT segment (more than stb_image can reach, never less).
inline void check_jpeg_huffman_tables(const std::uint8_t* b, std::size_t n, const std::string& where) {
    auto get8 = [&](std::size_t i) -> unsigned { return i < n ? b[i] : 0u; };  // stb_image reads 0 past the end
    auto check_dht = [&](std::size_t at) {  // `at`: the segment's length field
        long left = static_cast<long>((get8(at) << 8) | get8(at + 1)) - 2;
        std::size_t p = at + 2;
        while (left > 0 && p < n) {
            const unsigned q = get8(p++);
            if ((q >> 4) > 1 || (q & 15) > 3) return;  // stb_image refuses the table itself
            unsigned codes = 0;
            for (int i = 0; i < 16; ++i) codes += get8(p++);
            if (codes > 256)
                throw ImageError(where + ": corrupt JPEG (a Huffman table declares " + std::to_string(codes) + " codes, at most 256)");
            if ((q >> 4) == 0)  // a DC table: each symbol is the bit count of a difference, at most 15
                for (unsigned i = 0; i < codes; ++i)
                    if (get8(p + i) > 15)
                        throw ImageError(where + ": corrupt JPEG (a DC Huffman table holds the symbol " + std::to_string(get8(p + i)) +
                                         ", at most 15)");
            p += codes;
            left -= 17 + static_cast<long>(codes);
        }
    };
    std::size_t p = 2;  // after SOI
    while (p < n) {
        if (b[p] != 0xFF) {  // padding between segments: stb_image scans on for a marker
            ++p;
            continue;
        }
        while (p < n && b[p] == 0xFF) ++p;
        if (p >= n) return;
        const unsigned marker = b[p++];
        if (marker == 0xD9) return;  // EOI
        if (marker == 0xC4) check_dht(p);
        if (marker == 0xDA) break;  // the first scan: entropy-coded data follow
        p += (get8(p) << 8) | get8(p + 1);
    }
    for (; p + 1 < n; ++p)
        if (b[p] == 0xFF && b[p + 1] == 0xC4) check_dht(p + 2);
}

/// Binary PGM/PPM: width and height must be at most 2^24 (stb_image 2.27 parses them into an int without an overflow
/// check; it refuses larger images anyway), and the maximum value at most 255: 16-bit files are refused, since
/// stb_image 2.27 converts their channels with its 8-bit routine and then reads past the buffer (found by fuzzing).
inline void check_pnm_header(const std::uint8_t* b, std::size_t n, const std::string& where) {
    std::size_t p = 2;
    const char* names[3] = {"width", "height", "maximum value"};
    const unsigned long limits[3] = {1ul << 24, 1ul << 24, 255};
    for (int k = 0; k < 3; ++k) {
        for (;;) {  // whitespace and # comments, as stb_image skips them
            while (p < n && (b[p] == ' ' || (b[p] >= '\t' && b[p] <= '\r'))) ++p;
            if (p >= n || b[p] != '#') break;
            while (p < n && b[p] != '\n' && b[p] != '\r') ++p;
        }
        unsigned long value = 0;
        for (; p < n && b[p] >= '0' && b[p] <= '9'; ++p) {
            value = value * 10 + static_cast<unsigned long>(b[p] - '0');
            if (value > limits[k])
                throw ImageError(where + ": PGM/PPM " + names[k] + " is larger than " + std::to_string(limits[k]) +
                                 (k == 2 ? " (16-bit PGM/PPM files are not read)" : ""));
        }
    }
}

/// PNG: every chunk before IEND must fit in the file. stb_image 2.27 grows its buffer to an IDAT chunk's declared
/// length before reading it, so a 77-byte file declaring a 1.8 GB chunk cost a 1.8 GB allocation (found by fuzzing).
/// IEND's own CRC may be missing, as stb_image does not read it.
inline void check_png_chunks(const std::uint8_t* b, std::size_t n, const std::string& where) {
    for (std::size_t p = 8; p + 8 <= n;) {
        const std::size_t length = (std::size_t(b[p]) << 24) | (std::size_t(b[p + 1]) << 16) | (std::size_t(b[p + 2]) << 8) | b[p + 3];
        const std::string type(reinterpret_cast<const char*>(b + p + 4), 4);
        if (type == "IEND") return;
        if (length > n - p - 8)
            throw ImageError(where + ": corrupt PNG (chunk '" + type + "' at byte " + std::to_string(p) + " declares " + std::to_string(length) +
                             " bytes, the file has " + std::to_string(n - p - 8) + " after its header)");
        p += 12 + length;  // length, type, data, CRC
    }
}

/// Refuse what stb_image should not see: formats other than PNG, JPEG, BMP, PGM/PPM, and the known bad inputs above.
inline void check_image_bytes(const std::uint8_t* b, std::size_t n, const std::string& where) {
    static const std::uint8_t png[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'};
    if (n >= 8 && std::equal(png, png + 8, b)) return check_png_chunks(b, n, where);
    if (n >= 2 && b[0] == 0xFF && b[1] == 0xD8) return check_jpeg_huffman_tables(b, n, where);
    if (n >= 2 && b[0] == 'B' && b[1] == 'M') return;
    if (n >= 2 && b[0] == 'P' && (b[1] == '5' || b[1] == '6')) return check_pnm_header(b, n, where);
    throw ImageError(where + ": not a PNG, JPEG, BMP, PGM or PPM file (unrecognised first bytes)");
}

}  // namespace detail

/// Decode an image file held in memory to `channels` channels (1 grey, 3 RGB). `where` names it in errors.
inline Image8 decode_image(const std::uint8_t* bytes, std::size_t n, Index channels, const std::string& where = "<memory>",
                           Index max_pixels = kMaxImagePixels) {
    if (channels != 1 && channels != 3)
        throw std::invalid_argument(where + ": channels must be 1 (grey) or 3 (RGB), got " + std::to_string(channels));
    if (n == 0) throw ImageError(where + ": empty file, not an image");
    if (n > static_cast<std::size_t>(INT_MAX)) throw ImageError(where + ": " + std::to_string(n) + " bytes is too large for stb_image (2 GB at most)");
    detail::check_image_bytes(bytes, n, where);
    const auto* data = static_cast<const stbi_uc*>(bytes);
    const int len = static_cast<int>(n);
    int w = 0, h = 0, file_channels = 0;
    if (!stbi_info_from_memory(data, len, &w, &h, &file_channels))
        throw ImageError(where + ": cannot decode image (" + stbi_failure_reason() + ")");
    if (w < 1 || h < 1 || static_cast<Index>(w) * static_cast<Index>(h) > max_pixels)
        throw ImageError(where + ": image of " + std::to_string(h) + "x" + std::to_string(w) + " (height x width) pixels is larger than " +
                         std::to_string(max_pixels) + " pixels");
    int got_w = 0, got_h = 0;
    std::unique_ptr<stbi_uc, void (*)(void*)> px(stbi_load_from_memory(data, len, &got_w, &got_h, &file_channels, 3), stbi_image_free);
    if (!px) throw ImageError(where + ": cannot decode image (" + stbi_failure_reason() + ")");
    if (got_w != w || got_h != h)
        throw ImageError(where + ": the header says " + std::to_string(h) + "x" + std::to_string(w) + ", the decoded image is " +
                         std::to_string(got_h) + "x" + std::to_string(got_w));
    Image8 im;
    im.height = h;
    im.width = w;
    im.channels = channels;
    const std::size_t count = static_cast<std::size_t>(w) * static_cast<std::size_t>(h);
    const stbi_uc* rgb = px.get();
    if (channels == 3) {
        im.pixels.assign(rgb, rgb + 3 * count);
    } else {
        im.pixels.resize(count);
        for (std::size_t i = 0; i < count; ++i)
            im.pixels[i] = static_cast<std::uint8_t>((19595u * rgb[3 * i] + 38470u * rgb[3 * i + 1] + 7471u * rgb[3 * i + 2] + 0x8000u) >> 16);
    }
    return im;
}

/// Read and decode the image file at `path`.
inline Image8 read_image(const std::string& path, Index channels, Index max_pixels = kMaxImagePixels) {
    const auto bytes = read_file_bytes<ImageError>(path, "image file");
    return decode_image(bytes.data(), bytes.size(), channels, path, max_pixels);
}

/// Bilinear resize of 8-bit HWC pixels (h x w x C) to H x W, written as out[c, y, x] (CHW) scaled by 1/255.
template <typename T>
void resize_bilinear_to_chw(const std::uint8_t* src, Index h, Index w, Index C, Index H, Index W, T* out) {
    auto at = [&](Index c, Index y, Index x) { return static_cast<double>(src[(y * w + x) * C + c]); };
    const double sy = static_cast<double>(h) / static_cast<double>(H), sx = static_cast<double>(w) / static_cast<double>(W);
    for (Index y = 0; y < H; ++y) {
        const double fy = std::max(0.0, (static_cast<double>(y) + 0.5) * sy - 0.5);
        const Index y0 = std::min<Index>(static_cast<Index>(fy), h - 1), y1 = std::min<Index>(y0 + 1, h - 1);
        const double ty = fy - static_cast<double>(y0);
        for (Index x = 0; x < W; ++x) {
            const double fx = std::max(0.0, (static_cast<double>(x) + 0.5) * sx - 0.5);
            const Index x0 = std::min<Index>(static_cast<Index>(fx), w - 1), x1 = std::min<Index>(x0 + 1, w - 1);
            const double tx = fx - static_cast<double>(x0);
            for (Index c = 0; c < C; ++c) {
                const double v = (1 - ty) * ((1 - tx) * at(c, y0, x0) + tx * at(c, y0, x1)) + ty * ((1 - tx) * at(c, y1, x0) + tx * at(c, y1, x1));
                out[(c * H + y) * W + x] = static_cast<T>(v / 255.0);
            }
        }
    }
}

/// out[c, y, x] = pixel(y, x, c) / 255: `out` holds channels * height * width values.
template <typename T>
void image_to_chw(const Image8& im, T* out) {
    const Index plane = im.height * im.width;
    for (Index c = 0; c < im.channels; ++c)
        for (Index i = 0; i < plane; ++i) out[c * plane + i] = static_cast<T>(im.pixels[static_cast<std::size_t>(i * im.channels + c)]) / T(255);
}

/// The image resized to H x W (bilinear, as above) in CHW order, scaled by 1/255; an image already H x W is copied
/// exactly (image_to_chw).
template <typename T>
void resize_to_chw(const Image8& im, Index H, Index W, T* out) {
    if (H < 1 || W < 1) throw std::invalid_argument("resize_to_chw: bad target size " + std::to_string(H) + "x" + std::to_string(W));
    if (H == im.height && W == im.width) return image_to_chw(im, out);
    resize_bilinear_to_chw(im.pixels.data(), im.height, im.width, im.channels, H, W, out);
}

}  // namespace eigencnn
