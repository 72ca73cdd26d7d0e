// SPDX-License-Identifier: MIT
// eigencnn/io/safetensors_format.hpp
//
// The safetensors container, independent of any model (io/safetensors.hpp
// loads and saves models with it):
//
//   u64 N (little-endian) | N bytes of JSON header | data section
//   header: {"<name>": {"dtype": "F32", "shape": [d0, d1, ...], "data_offsets": [begin, end]}, ...,
//            "__metadata__": {"<key>": "<value>", ...}}                              (optional)
//
// parse_safetensors checks the container: N against the file and against the
// reference implementation's 100,000,000-byte cap (before allocating anything
// for the header), the JSON (valid UTF-8 JSON, one object, no duplicate key at
// any level, the fields above and no others, non-negative integers, a known
// dtype, metadata values strings), and the data offsets: begin <= end, end
// within the data section, end - begin = elements x dtype size (overflow
// checked), no two tensors overlapping, no gap between them, the data
// section covered to its last byte. Problems throw SafetensorsError
// "<where>: <problem>", naming the tensor where there is one.
// convert_tensor turns a tensor's little-endian F32/F64/F16/BF16/I64 bytes
// into float or double and refuses non-finite results.
#pragma once

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <map>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace eigencnn {

class SafetensorsError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

using SafetensorsMetadata = std::map<std::string, std::string>;

/// One tensor's header entry; begin and end are relative to the data section.
struct SafetensorsTensorInfo {
    std::string name;
    std::string dtype;
    std::vector<std::uint64_t> shape;
    std::uint64_t begin = 0, end = 0;
};

/// A checked container: header entries (sorted by data offset) and where the data section starts in the bytes.
struct SafetensorsFile {
    std::vector<SafetensorsTensorInfo> tensors;
    SafetensorsMetadata metadata;
    std::uint64_t data_start = 0, data_size = 0;
};

/// The reference implementation's limit on the header length.
inline constexpr std::uint64_t kSafetensorsMaxHeader = 100'000'000;

namespace detail {

/// Bytes per element of each dtype of the specification (0: unknown).
inline std::size_t safetensors_dtype_size(const std::string& dtype) {
    static const std::map<std::string, std::size_t> sizes{{"BOOL", 1}, {"U8", 1},  {"I8", 1},  {"F8_E5M2", 1}, {"F8_E4M3", 1},
                                                          {"I16", 2},  {"U16", 2}, {"F16", 2}, {"BF16", 2},    {"I32", 4},
                                                          {"U32", 4},  {"F32", 4}, {"F64", 8}, {"I64", 8},     {"U64", 8}};
    const auto it = sizes.find(dtype);
    return it == sizes.end() ? 0 : it->second;
}

inline bool is_float_dtype(const std::string& d) { return d == "F32" || d == "F64" || d == "F16" || d == "BF16"; }

/// PyTorch's BatchNorm step counter, stored as I64.
inline bool is_batch_counter(const std::string& name) {
    const std::string tail = "num_batches_tracked";
    return name == tail || (name.size() > tail.size() && name.compare(name.size() - tail.size() - 1, std::string::npos, "." + tail) == 0);
}

template <typename T>
void put_le(std::string& out, T v) {
    std::conditional_t<sizeof(T) == 4, std::uint32_t, std::uint64_t> bits;
    std::memcpy(&bits, &v, sizeof v);
    for (std::size_t i = 0; i < sizeof v; ++i) out.push_back(static_cast<char>((bits >> (8 * i)) & 0xff));
}

inline std::uint64_t get_le(const std::uint8_t* p, std::size_t n) {
    std::uint64_t v = 0;
    for (std::size_t i = 0; i < n; ++i) v |= static_cast<std::uint64_t>(p[i]) << (8 * i);
    return v;
}

/// IEEE half precision to double (exact).
inline double half_to_double(std::uint16_t h) {
    const int exp = (h >> 10) & 0x1f, mant = h & 0x3ff;
    const double sign = (h & 0x8000) ? -1.0 : 1.0;
    if (exp == 0x1f) return mant ? std::nan("") : sign * HUGE_VAL;
    if (exp == 0) return sign * std::ldexp(mant, -24);
    return sign * std::ldexp(1024 + mant, exp - 25);
}

inline std::string value_str(double v) {
    std::ostringstream os;
    os.precision(17);
    os << v;
    return os.str();
}

/// count elements of `dtype` at src into dst, refusing values that are not finite in T. `at` prefixes errors.
template <typename T>
void convert_tensor(const std::uint8_t* src, const std::string& dtype, T* dst, std::int64_t count, const std::string& at) {
    const std::size_t size = safetensors_dtype_size(dtype);
    for (std::int64_t i = 0; i < count; ++i) {
        const std::uint64_t bits = get_le(src + static_cast<std::size_t>(i) * size, size);
        double v;
        if (dtype == "F32") {
            float f;
            const auto b32 = static_cast<std::uint32_t>(bits);
            std::memcpy(&f, &b32, 4);
            v = f;
        } else if (dtype == "F64") {
            std::memcpy(&v, &bits, 8);
        } else if (dtype == "F16") {
            v = half_to_double(static_cast<std::uint16_t>(bits));
        } else if (dtype == "BF16") {
            float f;
            const auto b32 = static_cast<std::uint32_t>(bits << 16);
            std::memcpy(&f, &b32, 4);
            v = f;
        } else if (dtype == "I64") {
            v = static_cast<double>(static_cast<std::int64_t>(bits));
        } else {
            throw SafetensorsError(at + "dtype " + dtype + " cannot be converted");
        }
        if (!std::isfinite(v)) throw SafetensorsError(at + "non-finite value " + value_str(v) + " (" + dtype + ") at index " + std::to_string(i));
        dst[i] = static_cast<T>(v);
        if (!std::isfinite(dst[i]))
            throw SafetensorsError(at + "value " + value_str(v) + " (" + dtype + ") at index " + std::to_string(i) + " is outside " +
                                   (sizeof(T) == 4 ? "float" : "double") + "'s range");
    }
}

inline std::uint64_t json_uint(const nlohmann::json& j, const std::string& at, const char* what) {
    if (!j.is_number_unsigned()) throw SafetensorsError(at + what + " must be a non-negative integer, got " + j.dump());
    return j.get<std::uint64_t>();
}

inline SafetensorsTensorInfo tensor_info(const std::string& name, const nlohmann::json& j, const std::string& where) {
    const std::string at = where + ": tensor '" + name + "': ";
    if (!j.is_object()) throw SafetensorsError(at + "entry must be an object {dtype, shape, data_offsets}, got " + std::string(j.type_name()));
    for (const auto& [key, value] : j.items())
        if (key != "dtype" && key != "shape" && key != "data_offsets") throw SafetensorsError(at + "unknown field '" + key + "'");
    for (const char* key : {"dtype", "shape", "data_offsets"})
        if (!j.contains(key)) throw SafetensorsError(at + "no '" + key + "'");
    SafetensorsTensorInfo t;
    t.name = name;
    if (!j.at("dtype").is_string()) throw SafetensorsError(at + "dtype must be a string, got " + j.at("dtype").dump());
    t.dtype = j.at("dtype").get<std::string>();
    const std::size_t esize = safetensors_dtype_size(t.dtype);
    if (esize == 0) throw SafetensorsError(at + "unknown dtype '" + t.dtype + "'");
    const auto& shape = j.at("shape");
    if (!shape.is_array()) throw SafetensorsError(at + "shape must be an array, got " + shape.dump());
    std::uint64_t bytes = esize;  // of the non-zero extents, so that no product of extents overflows anywhere later
    bool empty = false;
    std::string dims;
    for (const auto& d : shape) {
        t.shape.push_back(json_uint(d, at, "each shape extent"));
        dims += (dims.empty() ? "" : ", ") + std::to_string(t.shape.back());
        if (t.shape.back() == 0) empty = true;
        else if (bytes > static_cast<std::uint64_t>(INT64_MAX) / t.shape.back())
            throw SafetensorsError(at + "shape [" + dims + ", ...] of " + t.dtype + " would need more than 2^63 bytes");
        else bytes *= t.shape.back();
    }
    const auto& off = j.at("data_offsets");
    if (!off.is_array() || off.size() != 2) throw SafetensorsError(at + "data_offsets must be [begin, end], got " + off.dump());
    t.begin = json_uint(off[0], at, "data_offsets' begin");
    t.end = json_uint(off[1], at, "data_offsets' end");
    if (t.begin > t.end) throw SafetensorsError(at + "data_offsets begin " + std::to_string(t.begin) + " > end " + std::to_string(t.end));
    const std::uint64_t needed = empty ? 0 : bytes;
    if (t.end - t.begin != needed)
        throw SafetensorsError(at + "data_offsets [" + std::to_string(t.begin) + ", " + std::to_string(t.end) + ") hold " +
                               std::to_string(t.end - t.begin) + " bytes, but " + t.dtype + " [" + dims + "] needs " + std::to_string(needed));
    return t;
}

}  // namespace detail

/// Parse and check the container in bytes [p, p + n) (see the header comment).
inline SafetensorsFile parse_safetensors(const std::uint8_t* p, std::size_t n, const std::string& where = "<memory>") {
    if (n == 0) throw SafetensorsError(where + ": empty file");
    if (n < 8) throw SafetensorsError(where + ": " + std::to_string(n) + " bytes: too short for the 8-byte header length (truncated?)");
    const std::uint64_t len = detail::get_le(p, 8);
    if (len > kSafetensorsMaxHeader)
        throw SafetensorsError(where + ": header length " + std::to_string(len) + " exceeds the limit of " + std::to_string(kSafetensorsMaxHeader) +
                               " bytes (not a safetensors file, or a corrupted one)");
    if (len > n - 8)
        throw SafetensorsError(where + ": header length " + std::to_string(len) + " but only " + std::to_string(n - 8) +
                               " bytes follow the length field (truncated?)");
    if (len < 2 || p[8] != '{') throw SafetensorsError(where + ": the header does not start with '{' (not a JSON object)");

    std::vector<std::set<std::string>> keys;  // the keys of each object being parsed, to refuse duplicates
    nlohmann::json::parser_callback_t no_duplicates = [&](int, nlohmann::json::parse_event_t event, nlohmann::json& parsed) {
        using E = nlohmann::json::parse_event_t;
        if (event == E::object_start) keys.emplace_back();
        if (event == E::object_end && !keys.empty()) keys.pop_back();
        if (event == E::key && !keys.empty() && !keys.back().insert(parsed.get<std::string>()).second)
            throw SafetensorsError(where + ": duplicate key '" + parsed.get<std::string>() + "' in the header");
        return true;
    };
    nlohmann::json header;
    try {
        header = nlohmann::json::parse(p + 8, p + 8 + len, no_duplicates);
    } catch (const nlohmann::json::exception& e) {
        throw SafetensorsError(where + ": the header is not valid JSON: " + e.what());
    }
    if (!header.is_object()) throw SafetensorsError(where + ": the header is JSON but not an object");

    SafetensorsFile file;
    file.data_start = 8 + len;
    file.data_size = n - 8 - len;
    for (const auto& [name, value] : header.items()) {
        if (name == "__metadata__") {
            if (!value.is_object()) throw SafetensorsError(where + ": __metadata__ must be an object of strings, got " + std::string(value.type_name()));
            for (const auto& [k, v] : value.items()) {
                if (!v.is_string()) throw SafetensorsError(where + ": __metadata__ value of '" + k + "' must be a string, got " + v.dump());
                file.metadata[k] = v.get<std::string>();
            }
            continue;
        }
        file.tensors.push_back(detail::tensor_info(name, value, where));
        const auto& t = file.tensors.back();
        if (t.end > file.data_size)
            throw SafetensorsError(where + ": tensor '" + name + "': data_offsets [" + std::to_string(t.begin) + ", " + std::to_string(t.end) +
                                   ") run past the data section's " + std::to_string(file.data_size) + " bytes (truncated?)");
    }
    std::sort(file.tensors.begin(), file.tensors.end(),
              [](const SafetensorsTensorInfo& a, const SafetensorsTensorInfo& b) { return a.begin != b.begin ? a.begin < b.begin : a.end < b.end; });
    std::uint64_t covered = 0;
    const SafetensorsTensorInfo* previous = nullptr;
    for (const auto& t : file.tensors) {
        const std::string range = "[" + std::to_string(t.begin) + ", " + std::to_string(t.end) + ")";
        if (t.begin < covered)
            throw SafetensorsError(where + ": tensor '" + t.name + "': data_offsets " + range + " overlap tensor '" + previous->name + "' [" +
                                   std::to_string(previous->begin) + ", " + std::to_string(previous->end) + ")");
        if (t.begin > covered)
            throw SafetensorsError(where + ": tensor '" + t.name + "': data_offsets " + range + " leave bytes [" + std::to_string(covered) + ", " +
                                   std::to_string(t.begin) + ") of the data section in no tensor (a gap)");
        covered = t.end;
        previous = &t;
    }
    if (covered != file.data_size)
        throw SafetensorsError(where + ": " + std::to_string(file.data_size - covered) + " bytes at the end of the data section (from offset " +
                               std::to_string(covered) + ") belong to no tensor");
    return file;
}

}  // namespace eigencnn
