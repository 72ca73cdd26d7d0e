// SPDX-License-Identifier: MIT
// eigencnn/io/file.hpp
//
// write_file_atomic: write bytes to `path` so that readers see either the
// old file or the complete new one, never a partial write: the data go to a
// temporary file of a unique name (mkstemp) in the same directory, are
// flushed to disk, and the temporary is renamed over `path`. On any error the temporary is removed,
// `path` is untouched, and std::runtime_error names the file and the cause.
#pragma once

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <stdexcept>
#include <string>
#include <sys/stat.h>
#include <unistd.h>
#include <vector>

namespace eigencnn {

inline void write_file_atomic(const std::string& path, const void* data, std::size_t size) {
    // A name no other save uses, even another thread's or another process's with the same pid (mkstemp opens
    // it with O_EXCL). An interrupted save can leave such a file behind; nothing ever reads it.
    std::string tmp = path + ".tmp.XXXXXX";
    const int fd = ::mkstemp(&tmp[0]);
    if (fd < 0) throw std::runtime_error(path + ": cannot create a temporary file beside it (" + std::strerror(errno) + ")");
    auto fail = [&](const std::string& what) {
        const std::string msg = path + ": " + what + " (" + std::strerror(errno) + ")";
        ::close(fd);
        ::unlink(tmp.c_str());
        throw std::runtime_error(msg);
    };
    const mode_t mask = ::umask(0);  // mkstemp makes the file 0600; give it the permissions fopen would have
    ::umask(mask);
    if (::fchmod(fd, 0666 & ~mask) != 0) fail("cannot set the permissions of " + tmp);
    const auto* bytes = static_cast<const char*>(data);
    for (std::size_t done = 0; done < size;) {
        const ssize_t n = ::write(fd, bytes + done, size - done);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) fail("write failed");
        done += static_cast<std::size_t>(n);
    }
    if (::fsync(fd) != 0) fail("write failed");
    if (::close(fd) != 0) {
        ::unlink(tmp.c_str());
        throw std::runtime_error(path + ": write failed (" + std::strerror(errno) + ")");
    }
    if (std::rename(tmp.c_str(), path.c_str()) != 0) {
        const std::string msg = path + ": cannot rename " + tmp + " into place (" + std::strerror(errno) + ")";
        ::unlink(tmp.c_str());
        throw std::runtime_error(msg);
    }
}

inline void write_file_atomic(const std::string& path, const std::string& text) { write_file_atomic(path, text.data(), text.size()); }

/// Throws std::invalid_argument("<what>: ...") unless a file can be written at
/// `path`: its folder exists and is writable, and `path` is not a folder. For
/// checking output locations before long work, so that no result is lost late.
inline void check_output_path(const std::string& path, const std::string& what) {
    if (path.empty()) throw std::invalid_argument(what + ": empty path");
    const std::size_t slash = path.find_last_of('/');
    const std::string dir = slash == std::string::npos ? "." : slash == 0 ? "/" : path.substr(0, slash);
    struct stat st {};
    if (::stat(dir.c_str(), &st) != 0) throw std::invalid_argument(what + ": folder '" + dir + "' of " + path + " does not exist");
    if (!S_ISDIR(st.st_mode)) throw std::invalid_argument(what + ": '" + dir + "' in " + path + " is not a folder");
    if (::access(dir.c_str(), W_OK) != 0) throw std::invalid_argument(what + ": folder '" + dir + "' of " + path + " is not writable");
    if (::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) throw std::invalid_argument(what + ": " + path + " is a folder, not a file");
}

/// Create folder `dir` if missing; throws std::invalid_argument("<what>: ...") if it cannot be, or is a file.
inline void ensure_output_dir(const std::string& dir, const std::string& what) {
    struct stat st {};
    if (::stat(dir.c_str(), &st) == 0) {
        if (!S_ISDIR(st.st_mode)) throw std::invalid_argument(what + ": " + dir + " exists and is not a folder");
        if (::access(dir.c_str(), W_OK) != 0) throw std::invalid_argument(what + ": folder " + dir + " is not writable");
        return;
    }
    if (::mkdir(dir.c_str(), 0777) != 0) throw std::invalid_argument(what + ": cannot create folder " + dir + " (" + std::strerror(errno) + ")");
}

/// The whole content of the regular file `path`. Throws Error("<path>: cannot open <what> (<reason>)"),
/// Error("<path>: cannot read <what>: not a regular file (...)") for a directory or device, or
/// Error("<path>: read error"), so that each reader reports in its own exception type.
template <typename Error>
std::vector<std::uint8_t> read_file_bytes(const std::string& path, const std::string& what) {
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) throw Error(path + ": cannot open " + what + " (" + std::strerror(errno) + ")");
    if (!S_ISREG(st.st_mode))
        throw Error(path + ": cannot read " + what + ": not a regular file (" + (S_ISDIR(st.st_mode) ? "a directory" : "a device, pipe or socket") +
                    ")");
    std::ifstream f(path, std::ios::binary);
    if (!f) throw Error(path + ": cannot open " + what + " (" + std::strerror(errno) + ")");
    // One read of the size stat gave, plus a byte to see the end; should the file have grown since, in
    // doubling steps. (Character by character through istreambuf_iterator, the vector regrowing, this was
    // a fifth of load_mnist's time.)
    std::vector<std::uint8_t> bytes(static_cast<std::size_t>(st.st_size) + 1);
    std::size_t size = 0;
    for (;;) {
        f.read(reinterpret_cast<char*>(bytes.data() + size), static_cast<std::streamsize>(bytes.size() - size));
        size += static_cast<std::size_t>(f.gcount());
        if (size < bytes.size() || f.bad()) break;
        bytes.resize(2 * bytes.size());
    }
    if (f.bad()) throw Error(path + ": read error");
    bytes.resize(size);
    return bytes;
}

}  // namespace eigencnn
