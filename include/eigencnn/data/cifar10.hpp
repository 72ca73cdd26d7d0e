// SPDX-License-Identifier: MIT
// eigencnn/data/cifar10.hpp
//
// Reader for the binary version of CIFAR-10 (Krizhevsky, "Learning Multiple
// Layers of Features from Tiny Images", 2009; cifar-10-binary.tar.gz, which
// unpacks to cifar-10-batches-bin/):
//
//   data_batch_1.bin ... data_batch_5.bin   training set, 10,000 records each
//   test_batch.bin                          test set, 10,000 records
//   batches.meta.txt                        the 10 class names, one a line
//
// Each file is a sequence of 3073-byte records and nothing else:
//
//   byte 0          label, 0-9
//   bytes 1-1024    red plane,   32x32, row-major
//   bytes 1025-2048 green plane, 32x32, row-major
//   bytes 2049-3072 blue plane,  32x32, row-major
//
// so a record's 3072 image bytes are already one [3, 32, 32] image in NCHW
// order. Images come out as [N, 3, 32, 32] scaled by 1/255 to [0, 1] (as
// torchvision's ToTensor does), labels as 0-9.
//
// Every violation throws Cifar10Error whose message starts with the file name
// and says what is wrong: empty file, a size that is not a whole number of
// records, a label byte above 9 (naming the record), a missing file (naming
// what was expected there), a read error.
#pragma once

#include "../io/file.hpp"
#include "dataset.hpp"

#include <cstdint>
#include <fstream>
#include <stdexcept>
#include <string>
#include <sys/stat.h>
#include <vector>

namespace eigencnn {

class Cifar10Error : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

constexpr Index kCifar10ImageBytes = 3 * 32 * 32;            ///< R, G and B planes of 32x32
constexpr Index kCifar10RecordBytes = 1 + kCifar10ImageBytes;  ///< label byte + image: 3073

namespace detail {

/// Number of records in `n` bytes of a CIFAR-10 batch file; throws unless n is a positive multiple of 3073.
inline Index cifar10_record_count(std::size_t n, const std::string& where) {
    if (n == 0) throw Cifar10Error(where + ": empty file (a CIFAR-10 batch holds records of " + std::to_string(kCifar10RecordBytes) + " bytes)");
    const auto record = static_cast<std::size_t>(kCifar10RecordBytes);
    if (n % record != 0)
        throw Cifar10Error(where + ": size " + std::to_string(n) + " bytes is not a multiple of the record size " + std::to_string(record) +
                           " (1 label byte + 3072 image bytes): " + std::to_string(n / record) + " whole records and " +
                           std::to_string(n % record) + " bytes left over");
    return static_cast<Index>(n / record);
}

/// Check and convert the records in `bytes` into images [count, 3, 32, 32] at `images` and labels at `labels`.
template <typename T>
void cifar10_decode(const std::uint8_t* bytes, Index count, const std::string& where, T* images, int* labels) {
    for (Index r = 0; r < count; ++r) {
        const std::uint8_t label = bytes[r * kCifar10RecordBytes];
        if (label > 9)
            throw Cifar10Error(where + ": record " + std::to_string(r) + " (byte offset " + std::to_string(r * kCifar10RecordBytes) +
                               ") has label " + std::to_string(label) + " (CIFAR-10 labels are 0-9)");
        labels[r] = label;
    }
    for (Index r = 0; r < count; ++r) {
        const std::uint8_t* src = bytes + r * kCifar10RecordBytes + 1;
        T* dst = images + r * kCifar10ImageBytes;
        for (Index i = 0; i < kCifar10ImageBytes; ++i) dst[i] = static_cast<T>(src[i]) / T(255);
    }
}

inline bool is_regular_file(const std::string& path) {
    struct stat st {};
    return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

}  // namespace detail

/// Parse one CIFAR-10 batch file held in memory. `where` names it in errors.
template <typename T>
Dataset<T> parse_cifar10(const std::uint8_t* bytes, std::size_t n, const std::string& where = "<memory>") {
    const Index count = detail::cifar10_record_count(n, where);
    Dataset<T> ds;
    ds.images.resize(Shape{count, 3, 32, 32});
    ds.labels.resize(static_cast<std::size_t>(count));
    detail::cifar10_decode(bytes, count, where, ds.images.data(), ds.labels.data());
    return ds;
}

/// Read one CIFAR-10 batch file (data_batch_<k>.bin or test_batch.bin).
template <typename T>
Dataset<T> read_cifar10(const std::string& path) {
    const auto bytes = read_file_bytes<Cifar10Error>(path, "CIFAR-10 batch file");
    return parse_cifar10<T>(bytes.data(), bytes.size(), path);
}

/// Read several batch files into one dataset, in the order given (each file read and checked in turn; the
/// result is allocated once, from the files' sizes).
template <typename T>
Dataset<T> read_cifar10(const std::vector<std::string>& paths) {
    std::vector<Index> counts;
    Index total = 0;
    for (const auto& p : paths) {
        struct stat st {};
        if (::stat(p.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) (void)read_file_bytes<Cifar10Error>(p, "CIFAR-10 batch file");  // its error
        counts.push_back(detail::cifar10_record_count(static_cast<std::size_t>(st.st_size), p));
        total += counts.back();
    }
    Dataset<T> ds;
    ds.images.resize(Shape{total, 3, 32, 32});
    ds.labels.resize(static_cast<std::size_t>(total));
    Index at = 0;
    for (std::size_t f = 0; f < paths.size(); ++f) {
        const auto bytes = read_file_bytes<Cifar10Error>(paths[f], "CIFAR-10 batch file");
        if (detail::cifar10_record_count(bytes.size(), paths[f]) != counts[f])
            throw Cifar10Error(paths[f] + ": the file changed while being read (" + std::to_string(counts[f]) + " records, then " +
                               std::to_string(bytes.size()) + " bytes)");
        detail::cifar10_decode(bytes.data(), counts[f], paths[f], ds.images.data() + at * kCifar10ImageBytes,
                               ds.labels.data() + at);
        at += counts[f];
    }
    return ds;
}

/// The folder that holds the batch files: `dir` itself, or `dir`/cifar-10-batches-bin (the archive's folder).
/// Throws Cifar10Error naming both places when neither holds test_batch.bin.
inline std::string find_cifar10_dir(const std::string& dir) {
    if (detail::is_regular_file(dir + "/test_batch.bin")) return dir;
    const std::string sub = dir + "/cifar-10-batches-bin";
    if (detail::is_regular_file(sub + "/test_batch.bin")) return sub;
    throw Cifar10Error("CIFAR-10 binary files not found: neither " + dir + "/test_batch.bin nor " + sub +
                       "/test_batch.bin exists (expected the binary version: data_batch_1.bin ... data_batch_5.bin, test_batch.bin)");
}

/// CIFAR-10 split from `dir` (or `dir`/cifar-10-batches-bin): Train = data_batch_1.bin ... data_batch_5.bin in
/// that order (50,000 images), Test = test_batch.bin (10,000). Images [N, 3, 32, 32] in [0, 1], labels 0-9.
template <typename T>
Dataset<T> load_cifar10(const std::string& dir, Split split) {
    const std::string root = find_cifar10_dir(dir);
    std::vector<std::string> paths;
    if (split == Split::Train)
        for (int k = 1; k <= 5; ++k) paths.push_back(root + "/data_batch_" + std::to_string(k) + ".bin");
    else
        paths.push_back(root + "/test_batch.bin");
    for (const auto& p : paths)
        if (!detail::is_regular_file(p))
            throw Cifar10Error("CIFAR-10 file not found: " + p + " (the " + (split == Split::Train ? "training" : "test") +
                               " split is data_batch_1.bin ... data_batch_5.bin; the test split is test_batch.bin)");
    return read_cifar10<T>(paths);
}

/// Parse batches.meta.txt: the 10 class names, one a line ("airplane" ... "truck"); '\r' and trailing spaces are
/// dropped, as are empty lines at the end. Throws Cifar10Error unless exactly 10 non-empty names remain.
inline std::vector<std::string> parse_cifar10_class_names(const std::string& text, const std::string& where = "<memory>") {
    std::vector<std::string> names;
    std::size_t start = 0;
    while (start <= text.size()) {
        std::size_t end = text.find('\n', start);
        if (end == std::string::npos) end = text.size();
        std::string line = text.substr(start, end - start);
        while (!line.empty() && (line.back() == '\r' || line.back() == ' ' || line.back() == '\t')) line.pop_back();
        names.push_back(line);
        start = end + 1;
    }
    while (!names.empty() && names.back().empty()) names.pop_back();
    if (names.empty()) throw Cifar10Error(where + ": no class names (expected 10 lines, airplane ... truck)");
    for (std::size_t i = 0; i < names.size(); ++i)
        if (names[i].empty()) throw Cifar10Error(where + ": line " + std::to_string(i + 1) + " is empty (expected one class name a line)");
    if (names.size() != 10)
        throw Cifar10Error(where + ": " + std::to_string(names.size()) + " class names (CIFAR-10 has 10, one a line)");
    return names;
}

/// Read batches.meta.txt (a path to the file, or to the folder that holds it).
inline std::vector<std::string> read_cifar10_class_names(const std::string& path) {
    struct stat st {};
    const std::string file = ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode) ? path + "/batches.meta.txt" : path;
    const auto bytes = read_file_bytes<Cifar10Error>(file, "CIFAR-10 class names (batches.meta.txt)");
    return parse_cifar10_class_names(std::string(bytes.begin(), bytes.end()), file);
}

}  // namespace eigencnn
