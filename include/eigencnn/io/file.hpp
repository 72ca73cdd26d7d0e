// eigencnn/io/file.hpp
//
// write_file_atomic: write bytes to `path` so that readers see either the
// old file or the complete new one, never a partial write: the data go to a
// temporary file in the same directory, are flushed to disk, and the
// temporary is renamed over `path`. On any error the temporary is removed,
// `path` is untouched, and std::runtime_error names the file and the cause.
#pragma once

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>
#include <stdexcept>
#include <string>
#include <unistd.h>
#include <vector>

namespace eigencnn {

inline void write_file_atomic(const std::string& path, const void* data, std::size_t size) {
    const std::string tmp = path + ".tmp." + std::to_string(::getpid());
    auto fail = [&](const std::string& what) {
        const std::string msg = path + ": " + what + " (" + std::strerror(errno) + ")";
        std::remove(tmp.c_str());
        throw std::runtime_error(msg);
    };
    std::FILE* f = std::fopen(tmp.c_str(), "wb");
    if (!f) fail("cannot create temporary file " + tmp);
    const bool ok = std::fwrite(data, 1, size, f) == size && std::fflush(f) == 0 && ::fsync(::fileno(f)) == 0;
    if (std::fclose(f) != 0 || !ok) fail("write failed");
    if (std::rename(tmp.c_str(), path.c_str()) != 0) fail("cannot rename " + tmp + " into place");
}

inline void write_file_atomic(const std::string& path, const std::string& text) { write_file_atomic(path, text.data(), text.size()); }

/// The whole content of `path`. Throws Error("<path>: cannot open <what> (<reason>)")
/// or Error("<path>: read error"), so that each reader reports in its own exception type.
template <typename Error>
std::vector<std::uint8_t> read_file_bytes(const std::string& path, const std::string& what) {
    std::ifstream f(path, std::ios::binary);
    if (!f) throw Error(path + ": cannot open " + what + " (" + std::strerror(errno) + ")");
    std::vector<std::uint8_t> bytes((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    if (f.bad()) throw Error(path + ": read error");
    return bytes;
}

}  // namespace eigencnn
