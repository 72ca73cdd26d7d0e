// SPDX-License-Identifier: MIT
// eigencnn/data/idx.hpp
//
// Reader for IDX files, the format of MNIST and Fashion-MNIST, raw or
// gzip-compressed (detected from the content, not the name).
//
//   bytes 0-1   0x00 0x00
//   byte  2     element type; only 0x08 (unsigned byte) is accepted
//   byte  3     number of dimensions d (1..4)
//   4*d bytes   big-endian uint32 extents
//   then        prod(extents) bytes of data, and nothing after them
//
// Every violation throws IdxError whose message starts with the file name
// and says what is wrong. Memory use is bounded by the data actually present:
// extents are checked against the bytes available before anything of that
// size is allocated, a gzip stream is never inflated past the size its
// header declares, and a header declaring more than the compressed data can
// hold (deflate expands at most about 1032:1) is refused before inflating.
// Gzip data follow gzip(1): concatenated members are one stream; other bytes
// after the last member are an error, as trailing bytes of a raw file are.
#pragma once

#include "../io/file.hpp"

#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <limits>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace eigencnn {

class IdxError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

/// The contents of an IDX file of unsigned bytes.
struct IdxArray {
    std::vector<std::uint32_t> dims;
    std::vector<std::uint8_t> data;  ///< row-major, prod(dims) bytes
};

namespace detail {

inline std::uint32_t read_be32(const std::uint8_t* p) {
    return (std::uint32_t(p[0]) << 24) | (std::uint32_t(p[1]) << 16) | (std::uint32_t(p[2]) << 8) | std::uint32_t(p[3]);
}

/// Validate an IDX header in the first `n` bytes; fill dims and header_size
/// and return the number of data bytes the header declares.
inline std::size_t parse_idx_header(const std::uint8_t* p, std::size_t n, const std::string& where, std::vector<std::uint32_t>& dims,
                                    std::size_t& header_size) {
    if (n == 0) throw IdxError(where + ": empty file");
    if (n < 4) throw IdxError(where + ": truncated header (" + std::to_string(n) + " bytes, an IDX header has at least 8)");
    if (p[0] != 0 || p[1] != 0)
        throw IdxError(where + ": wrong magic number (first two bytes must be 0x00 0x00; not an IDX file)");
    if (p[2] != 0x08)
        throw IdxError(where + ": unsupported element type 0x" + [&] {
            char b[3];
            std::snprintf(b, sizeof b, "%02x", p[2]);
            return std::string(b);
        }() + " (only 0x08, unsigned byte, is supported)");
    const unsigned nd = p[3];
    if (nd < 1 || nd > 4) throw IdxError(where + ": " + std::to_string(nd) + " dimensions in header (expected 1 to 4)");
    header_size = 4 + 4 * std::size_t(nd);
    if (n < header_size)
        throw IdxError(where + ": truncated header (" + std::to_string(n) + " bytes, " + std::to_string(nd) +
                       " dimensions need " + std::to_string(header_size) + ")");
    dims.assign(nd, 0);
    std::size_t total = 1;
    for (unsigned i = 0; i < nd; ++i) {
        dims[i] = read_be32(p + 4 + 4 * i);
        if (dims[i] == 0) throw IdxError(where + ": dimension " + std::to_string(i) + " is 0");
        if (total > std::numeric_limits<std::size_t>::max() / dims[i])
            throw IdxError(where + ": absurd dimensions (their product overflows)");
        total *= dims[i];
    }
    return total;
}

inline std::string dims_str(const std::vector<std::uint32_t>& d) {
    std::string s;
    for (std::size_t i = 0; i < d.size(); ++i) s += (i ? " x " : "") + std::to_string(d[i]);
    return s;
}

/// Deflate cannot expand data more than about 1032:1 (zlib's documentation: 258-byte matches coded in 2 bits at
/// best); a header that declares more than this much of the compressed size is a lie, refused before inflating.
constexpr std::size_t kMaxDeflateRatio = 1032;

// The two bytes that open a gzip member.
inline bool is_gzip(const std::uint8_t* bytes, std::size_t n) { return n >= 2 && bytes[0] == 0x1f && bytes[1] == 0x8b; }

/// Inflate gzip data as gzip(1) does: one member or several concatenated, each
/// checked (CRC and length); bytes after the last member that do not start
/// another one are an error. Stops with an error as soon as the output would
/// exceed what the IDX header (read from the first inflated bytes) declares,
/// and refuses a header that declares more than the compressed data can hold.
inline std::vector<std::uint8_t> gunzip_idx(const std::uint8_t* in, std::size_t n, const std::string& where) {
    z_stream zs{};
    if (inflateInit2(&zs, 15 + 16) != Z_OK) throw IdxError(where + ": cannot initialise zlib");
    struct Guard {
        z_stream* z;
        ~Guard() { inflateEnd(z); }
    } guard{&zs};
    std::vector<std::uint8_t> out;
    std::size_t limit = 0;  // header + data size, once known
    std::vector<std::uint32_t> dims;
    std::uint8_t chunk[1 << 16];
    zs.next_in = const_cast<Bytef*>(in);
    std::size_t remaining = n;  // input not yet handed to zlib
    int members = 0;
    for (;;) {  // one gzip member per pass
        int ret = Z_OK;
        while (ret != Z_STREAM_END) {
            if (zs.avail_in == 0) {
                if (remaining == 0) break;
                const std::size_t take = std::min<std::size_t>(remaining, 1u << 30);
                zs.avail_in = static_cast<uInt>(take);
                remaining -= take;
            }
            zs.next_out = chunk;
            zs.avail_out = sizeof chunk;
            ret = inflate(&zs, Z_NO_FLUSH);
            if (ret != Z_OK && ret != Z_STREAM_END && ret != Z_BUF_ERROR)
                throw IdxError(where + ": corrupt gzip data (" + (zs.msg ? zs.msg : "zlib error " + std::to_string(ret)) + ")");
            out.insert(out.end(), chunk, chunk + (sizeof chunk - zs.avail_out));
            if (limit == 0 && out.size() >= 4 && out.size() >= 4 + 4 * std::size_t(out[3])) {
                std::size_t hs = 0;
                const std::size_t data = parse_idx_header(out.data(), out.size(), where, dims, hs);
                limit = hs + data < hs ? std::numeric_limits<std::size_t>::max() : hs + data;
                if (limit / kMaxDeflateRatio > n)
                    throw IdxError(where + ": header declares " + dims_str(dims) + " = " + std::to_string(data) + " bytes, more than " +
                                   std::to_string(n) + " bytes of gzip data can hold (deflate expands at most " +
                                   std::to_string(kMaxDeflateRatio) + ":1)");
            }
            if (limit && out.size() > limit)
                throw IdxError(where + ": trailing data after the " + dims_str(dims) + " bytes declared in the header");
            if (ret == Z_BUF_ERROR && zs.avail_in == 0 && remaining == 0) break;
        }
        if (ret != Z_STREAM_END) throw IdxError(where + ": truncated gzip stream (compressed data ends early)");
        ++members;
        const std::size_t left = zs.avail_in + remaining;
        if (left == 0) break;
        const std::uint8_t* next = zs.next_in;
        if (!is_gzip(next, left))
            throw IdxError(where + ": " + std::to_string(left) + " bytes of trailing data after gzip member " + std::to_string(members) +
                           " (not another gzip member)");
        if (inflateReset(&zs) != Z_OK) throw IdxError(where + ": cannot reset zlib for gzip member " + std::to_string(members + 1));
    }
    return out;
}

// The dims of the IDX file in bytes [0, n) into `dims`; returns the header's size, after checking that exactly
// the declared data follow it.
inline std::size_t idx_layout(const std::uint8_t* bytes, std::size_t n, const std::string& where, std::vector<std::uint32_t>& dims) {
    std::size_t hs = 0;
    const std::size_t expected = parse_idx_header(bytes, n, where, dims, hs);
    const std::size_t have = n - hs;
    if (have < expected)
        throw IdxError(where + ": truncated data (header declares " + dims_str(dims) + " = " + std::to_string(expected) +
                       " bytes, file has " + std::to_string(have) + ")");
    if (have > expected)
        throw IdxError(where + ": " + std::to_string(have - expected) + " bytes of trailing data after the " + dims_str(dims) +
                       " declared in the header");
    return hs;
}

// An IdxArray from the uncompressed bytes of an IDX file, taken over: the data moved down over the header.
inline IdxArray take_idx(std::vector<std::uint8_t>&& raw, const std::string& where) {
    IdxArray a;
    const std::size_t hs = idx_layout(raw.data(), raw.size(), where, a.dims);
    raw.erase(raw.begin(), raw.begin() + static_cast<std::ptrdiff_t>(hs));
    a.data = std::move(raw);
    return a;
}

}  // namespace detail

/// Parse an IDX file held in memory (raw or gzip), taking its bytes over: the data are moved down over the
/// header within the same buffer, so there is no second buffer for MNIST's 47 MB of training images (nor its
/// page faults). `where` names it in errors.
inline IdxArray parse_idx(std::vector<std::uint8_t>&& bytes, const std::string& where = "<memory>") {
    if (detail::is_gzip(bytes.data(), bytes.size())) return detail::take_idx(detail::gunzip_idx(bytes.data(), bytes.size(), where), where);
    return detail::take_idx(std::move(bytes), where);
}

/// The same from bytes the caller keeps: the data are copied once (gzip: inflated once).
inline IdxArray parse_idx(const std::uint8_t* bytes, std::size_t n, const std::string& where = "<memory>") {
    if (detail::is_gzip(bytes, n)) return detail::take_idx(detail::gunzip_idx(bytes, n, where), where);
    IdxArray a;
    const std::size_t hs = detail::idx_layout(bytes, n, where, a.dims);
    a.data.assign(bytes + hs, bytes + n);
    return a;
}

/// Read and parse an IDX file (raw or gzip).
inline IdxArray read_idx(const std::string& path) { return parse_idx(read_file_bytes<IdxError>(path, "file"), path); }

}  // namespace eigencnn
