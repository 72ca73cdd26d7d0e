// SPDX-License-Identifier: MIT
// eigencnn/core/spec.hpp
//
// LayerSpec: what a layer is, as data: its type name and its constructor
// arguments, integers or real numbers, e.g.
//   {"Conv2d", {1, 16, 5, 1, 0}}        {"NoisyScale", {16, 0.1, 0.1}}
// Checkpoints store it to record the architecture and to rebuild it through
// the layer registry (core/registry.hpp). A layer that holds layers (Residual)
// lists their specs in `children`, e.g.
//   {"Residual", {2}, {{"Conv2d", {16, 16, 3, 1, 1, 0}}, {"ReLU", {}}, {"Conv2d", {8, 16, 1, 1, 0, 0}}}} A layer reads its own arguments
// back with int_arg / real_arg, which name the spec and the argument in any
// error.
//
// checked_mul / checked_add: size arithmetic that throws instead of
// overflowing, for sizes that come from users or files.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

namespace eigencnn {

/// a * b, or std::invalid_argument naming `what` when it does not fit in int64 (or an operand is negative).
inline std::int64_t checked_mul(std::int64_t a, std::int64_t b, const std::string& what) {
    if (a < 0 || b < 0 || (b != 0 && a > std::numeric_limits<std::int64_t>::max() / b))
        throw std::invalid_argument(what + ": size " + std::to_string(a) + " x " + std::to_string(b) + " is out of range");
    return a * b;
}

/// a + b, or std::invalid_argument naming `what` when it does not fit in int64 (or an operand is negative).
inline std::int64_t checked_add(std::int64_t a, std::int64_t b, const std::string& what) {
    if (a < 0 || b < 0 || a > std::numeric_limits<std::int64_t>::max() - b)
        throw std::invalid_argument(what + ": size " + std::to_string(a) + " + " + std::to_string(b) + " is out of range");
    return a + b;
}

/// The same two, with `what` a callable returning the name, called on the error path only: for the shape checks
/// every forward runs, where building a layer's name cost more than a small batch's own work.
template <typename What, std::enable_if_t<std::is_invocable_r_v<std::string, What&>, int> = 0>
std::int64_t checked_mul(std::int64_t a, std::int64_t b, What&& what) {
    if (a < 0 || b < 0 || (b != 0 && a > std::numeric_limits<std::int64_t>::max() / b)) return checked_mul(a, b, std::string(what()));
    return a * b;
}
template <typename What, std::enable_if_t<std::is_invocable_r_v<std::string, What&>, int> = 0>
std::int64_t checked_add(std::int64_t a, std::int64_t b, What&& what) {
    if (a < 0 || b < 0 || a > std::numeric_limits<std::int64_t>::max() - b) return checked_add(a, b, std::string(what()));
    return a + b;
}

/// One constructor argument of a layer: an integer or a real number.
class SpecArg {
public:
    enum class Kind : std::uint8_t { Int = 0, Real = 1 };

    template <typename I, std::enable_if_t<std::is_integral_v<I>, int> = 0>
    SpecArg(I v) : kind_(Kind::Int), int_(static_cast<std::int64_t>(v)) {}  // NOLINT: implicit by design ({1, 16, 5})
    SpecArg(double v) : kind_(Kind::Real), real_(v) {}                      // NOLINT
    SpecArg(float v) : SpecArg(static_cast<double>(v)) {}                   // NOLINT

    Kind kind() const { return kind_; }
    bool is_int() const { return kind_ == Kind::Int; }
    std::int64_t int_value() const { return int_; }
    double real_value() const { return is_int() ? static_cast<double>(int_) : real_; }

    /// Integers as written; reals in the shortest form that reads back to the same double.
    std::string str() const {
        if (is_int()) return std::to_string(int_);
        char buf[40];
        for (int precision = 6; precision <= 17; ++precision) {
            std::snprintf(buf, sizeof buf, "%.*g", precision, real_);
            if (std::strtod(buf, nullptr) == real_ || real_ != real_) break;
        }
        std::string s = buf;
        if (std::isfinite(real_) && s.find_first_of(".e") == std::string::npos) s += ".0";  // 1.0 stays visibly real
        return s;
    }

    /// Same kind and the same value (reals compared bit for bit, so a NaN equals itself).
    bool operator==(const SpecArg& o) const {
        if (kind_ != o.kind_) return false;
        if (is_int()) return int_ == o.int_;
        return std::memcmp(&real_, &o.real_, sizeof real_) == 0;
    }
    bool operator!=(const SpecArg& o) const { return !(*this == o); }

private:
    Kind kind_;
    std::int64_t int_ = 0;
    double real_ = 0;
};

struct LayerSpec {
    std::string type;
    std::vector<SpecArg> args;
    std::vector<LayerSpec> children;  ///< specs of the layers this one holds (empty for plain layers)

    LayerSpec() = default;
    LayerSpec(std::string type_name, std::vector<SpecArg> arguments, std::vector<LayerSpec> child_specs = {})
        : type(std::move(type_name)), args(std::move(arguments)), children(std::move(child_specs)) {}

    bool operator==(const LayerSpec& o) const { return type == o.type && args == o.args && children == o.children; }
    bool operator!=(const LayerSpec& o) const { return !(*this == o); }

    /// "Conv2d(1, 16, 5, 1, 0)"; with children "Residual(2)[Conv2d(...), ReLU()]"
    std::string str() const {
        std::string s = type + "(";
        for (std::size_t i = 0; i < args.size(); ++i) s += (i ? ", " : "") + args[i].str();
        s += ")";
        if (children.empty()) return s;
        s += "[";
        for (std::size_t i = 0; i < children.size(); ++i) s += (i ? ", " : "") + children[i].str();
        return s + "]";
    }

    /// Depth of nesting: 0 for a plain layer.
    std::size_t depth() const {
        std::size_t d = 0;
        for (const auto& c : children) d = std::max(d, c.depth() + 1);
        return d;
    }

    /// Throws std::invalid_argument unless the spec has exactly `n` arguments.
    void expect_args(std::size_t n) const {
        if (args.size() != n)
            throw std::invalid_argument(str() + ": " + type + " takes " + std::to_string(n) + " arguments, got " + std::to_string(args.size()));
    }

    /// Argument i as an integer in [lo, hi]; `name` says which argument it is in errors.
    std::int64_t int_arg(std::size_t i, const char* name, std::int64_t lo, std::int64_t hi) const {
        const SpecArg& a = at(i, name);
        if (!a.is_int()) throw std::invalid_argument(str() + ": " + name + " must be an integer, got " + a.str());
        if (a.int_value() < lo || a.int_value() > hi)
            throw std::invalid_argument(str() + ": " + name + " = " + a.str() + " is outside [" + std::to_string(lo) + ", " +
                                        std::to_string(hi) + "]");
        return a.int_value();
    }

    /// Argument i as a finite real number in [lo, hi] (an integer argument is accepted).
    double real_arg(std::size_t i, const char* name, double lo, double hi) const {
        const SpecArg& a = at(i, name);
        const double v = a.real_value();
        if (!(v >= lo && v <= hi))
            throw std::invalid_argument(str() + ": " + name + " = " + a.str() + " is outside [" + SpecArg(lo).str() + ", " +
                                        SpecArg(hi).str() + "]");
        return v;
    }

private:
    const SpecArg& at(std::size_t i, const char* name) const {
        if (i >= args.size()) throw std::invalid_argument(str() + ": missing argument " + std::to_string(i) + " (" + name + ")");
        return args[i];
    }
};

/// The largest size argument (channels, features, kernel, stride, padding) a built-in layer accepts: 2^31.
constexpr std::int64_t kMaxSizeArg = std::int64_t(1) << 31;

}  // namespace eigencnn
