// SPDX-License-Identifier: MIT
// eigencnn/core/random.hpp
//
// Rng: a small, portable, seeded generator (xoshiro256**, seeded through
// splitmix64). Unlike std::uniform_*_distribution its outputs are the same
// with every compiler and standard library, so a seed names one result.
#pragma once

#include <array>
#include <cstdint>
#include <numeric>
#include <stdexcept>
#include <vector>

namespace eigencnn {

class Rng {
public:
    explicit Rng(std::uint64_t seed = 0) { reseed(seed); }

    void reseed(std::uint64_t seed) {
        std::uint64_t x = seed;
        for (auto& s : s_) s = splitmix64(x);
    }

    /// The generator's whole state, to save and restore it (checkpoints keep
    /// each layer's stream this way). An all-zero state is not a valid one.
    std::array<std::uint64_t, 4> state() const { return {s_[0], s_[1], s_[2], s_[3]}; }
    void set_state(const std::array<std::uint64_t, 4>& s) {
        if ((s[0] | s[1] | s[2] | s[3]) == 0) throw std::invalid_argument("Rng::set_state: the all-zero state is not valid for xoshiro256**");
        for (std::size_t i = 0; i < 4; ++i) s_[i] = s[i];
    }

    /// Next raw 64-bit value.
    std::uint64_t next() {
        const std::uint64_t result = rotl(s_[1] * 5, 7) * 9;
        const std::uint64_t t = s_[1] << 17;
        s_[2] ^= s_[0];
        s_[3] ^= s_[1];
        s_[1] ^= s_[2];
        s_[0] ^= s_[3];
        s_[2] ^= t;
        s_[3] = rotl(s_[3], 45);
        return result;
    }

    /// Uniform double in [0, 1) with 53 random bits.
    double uniform() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }
    /// Uniform double in [lo, hi).
    double uniform(double lo, double hi) { return lo + (hi - lo) * uniform(); }

    /// Uniform integer in [0, n), without modulo bias (Lemire's method). n > 0.
    std::uint64_t below(std::uint64_t n) {
        std::uint64_t high = 0, low = 0;
        mul_64x64(next(), n, high, low);
        if (low < n) {
            const std::uint64_t threshold = (0 - n) % n;
            while (low < threshold) mul_64x64(next(), n, high, low);
        }
        return high;
    }

    /// A uniformly random permutation of 0..n-1 (Fisher-Yates).
    std::vector<std::size_t> permutation(std::size_t n) {
        std::vector<std::size_t> p(n);
        std::iota(p.begin(), p.end(), std::size_t{0});
        for (std::size_t i = n; i > 1; --i) std::swap(p[i - 1], p[below(i)]);
        return p;
    }

    /// k distinct indices drawn uniformly from 0..n-1, in draw order
    /// (a partial Fisher-Yates shuffle). k <= n.
    std::vector<std::size_t> choice(std::size_t n, std::size_t k) {
        std::vector<std::size_t> p(n);
        std::iota(p.begin(), p.end(), std::size_t{0});
        for (std::size_t i = 0; i < k; ++i) std::swap(p[i], p[i + below(n - i)]);
        p.resize(k);
        return p;
    }

    /// Derive an independent stream, e.g. one per epoch: Rng(mix(seed, epoch)).
    static std::uint64_t mix(std::uint64_t a, std::uint64_t b) {
        std::uint64_t x = a ^ (b + 0x9e3779b97f4a7c15ULL + (a << 6) + (a >> 2));
        return splitmix64(x);
    }

private:
    // The 128-bit product a * b as (high, low) 64-bit halves, in standard C++ (no __int128).
    static void mul_64x64(std::uint64_t a, std::uint64_t b, std::uint64_t& high, std::uint64_t& low) {
        const std::uint64_t a0 = a & 0xffffffffu, a1 = a >> 32, b0 = b & 0xffffffffu, b1 = b >> 32;
        const std::uint64_t p00 = a0 * b0, p01 = a0 * b1, p10 = a1 * b0, p11 = a1 * b1;
        const std::uint64_t mid = (p00 >> 32) + (p01 & 0xffffffffu) + (p10 & 0xffffffffu);
        low = (mid << 32) | (p00 & 0xffffffffu);
        high = p11 + (p01 >> 32) + (p10 >> 32) + (mid >> 32);
    }
    static std::uint64_t rotl(std::uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
    static std::uint64_t splitmix64(std::uint64_t& x) {
        std::uint64_t z = (x += 0x9e3779b97f4a7c15ULL);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
        return z ^ (z >> 31);
    }
    std::uint64_t s_[4];
};

}  // namespace eigencnn
