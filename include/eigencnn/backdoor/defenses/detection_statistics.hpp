// SPDX-License-Identifier: MIT
// eigencnn/backdoor/defenses/detection_statistics.hpp
//
// The statistics the detection defenses (STRIP, Neural Cleanse) rest on, as
// free functions on plain numbers:
//
//   normal_quantile(p)        Phi^-1(p), the inverse of the standard normal CDF
//                             Phi(x) = erfc(-x / sqrt(2)) / 2; solved by Newton steps on
//                             std::erfc from a bracketing start, to double precision
//   fit_normal(v)             maximum-likelihood normal fit: mean and the population standard
//                             deviation (divisor n), as scipy.stats.norm.fit (STRIP's code uses it)
//   roc_auc(pos, neg)         area under the ROC curve when a higher score means "positive":
//                             P(pos > neg) + P(pos == neg) / 2, exact, from the midranks of both
//                             samples together (Mann-Whitney U / (n_pos n_neg))
//   median(v)                 the middle value (mean of the two middle ones for even n), as numpy
//   mad_anomaly_index(v)      |v_i - median| / (1.4826 median_j |v_j - median|), Neural Cleanse's
//                             anomaly index (Wang et al. 2019, Sec. 4; 1.4826 makes the MAD a
//                             consistent estimator of a normal's standard deviation)
//   summarize(v)              count, mean, std, min, median, max
//
// Non-finite inputs and empty samples are refused with std::invalid_argument naming the function.
#pragma once

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <stdexcept>
#include <string>
#include <vector>

namespace eigencnn {

namespace stats_detail {
inline void check_sample(const char* who, const std::vector<double>& v, const char* which = "the sample") {
    if (v.empty()) throw std::invalid_argument(std::string(who) + ": no values in " + which);
    for (std::size_t i = 0; i < v.size(); ++i)
        if (!std::isfinite(v[i]))
            throw std::invalid_argument(std::string(who) + ": value " + std::to_string(i) + " of " + which + " is not finite");
}
}  // namespace stats_detail

/// Phi^-1(p) for p in (0, 1): the x with P(Z <= x) = p for a standard normal Z.
inline double normal_quantile(double p) {
    if (!(p > 0 && p < 1)) throw std::invalid_argument("normal_quantile: p must be in (0, 1), got " + std::to_string(p));
    if (p > 0.5) return -normal_quantile(1 - p);  // symmetric; the lower tail keeps erfc's relative precision
    const auto cdf = [](double x) { return 0.5 * std::erfc(-x / std::sqrt(2.0)); };
    // Bracket [lo, hi] with cdf(lo) <= p <= cdf(hi) = 0.5 (p <= 0.5), then Newton steps that fall back to
    // bisection when they leave the bracket. In the lower tail cdf(x) > 0 down to x ~ -38, p >= 2^-1074 ~ x = -38.5.
    double lo = -40, hi = 0, x = -1;
    for (int it = 0; it < 200; ++it) {
        const double f = cdf(x) - p;
        if (f == 0) return x;
        (f < 0 ? lo : hi) = x;
        const double density = std::exp(-0.5 * x * x) / std::sqrt(2 * 3.14159265358979323846);
        double next = density > 0 ? x - f / density : 0.5 * (lo + hi);
        if (!(next > lo && next < hi)) next = 0.5 * (lo + hi);
        if (std::abs(next - x) <= 1e-15 * std::max(1.0, std::abs(x))) return next;
        x = next;
    }
    return x;
}

struct NormalFit {
    double mean = 0;
    double std = 0;  ///< population standard deviation (divisor n): the maximum-likelihood fit
};

inline NormalFit fit_normal(const std::vector<double>& v) {
    stats_detail::check_sample("fit_normal", v);
    NormalFit f;
    f.mean = std::accumulate(v.begin(), v.end(), 0.0) / static_cast<double>(v.size());
    double ss = 0;
    for (double x : v) ss += (x - f.mean) * (x - f.mean);
    f.std = std::sqrt(ss / static_cast<double>(v.size()));
    return f;
}

/// The area under the ROC curve of scores where higher means positive: P(pos > neg) + P(pos == neg) / 2.
inline double roc_auc(const std::vector<double>& positive, const std::vector<double>& negative) {
    stats_detail::check_sample("roc_auc", positive, "the positive scores");
    stats_detail::check_sample("roc_auc", negative, "the negative scores");
    struct Item {
        double score;
        bool positive;
    };
    std::vector<Item> all;
    all.reserve(positive.size() + negative.size());
    for (double s : positive) all.push_back({s, true});
    for (double s : negative) all.push_back({s, false});
    std::sort(all.begin(), all.end(), [](const Item& a, const Item& b) { return a.score < b.score; });
    double rank_sum = 0;  // sum of the positives' midranks (1-based)
    for (std::size_t i = 0; i < all.size();) {
        std::size_t j = i;
        while (j < all.size() && all[j].score == all[i].score) ++j;
        const double midrank = 0.5 * static_cast<double>(i + 1 + j);  // mean of ranks i+1 .. j
        for (std::size_t k = i; k < j; ++k)
            if (all[k].positive) rank_sum += midrank;
        i = j;
    }
    const double np = static_cast<double>(positive.size()), nn = static_cast<double>(negative.size());
    return (rank_sum - np * (np + 1) / 2) / (np * nn);
}

inline double median(std::vector<double> v) {
    stats_detail::check_sample("median", v);
    const std::size_t n = v.size(), mid = n / 2;
    std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(mid), v.end());
    const double upper = v[mid];
    if (n % 2) return upper;
    return 0.5 * (*std::max_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(mid)) + upper);
}

/// |v_i - median| / (1.4826 MAD) for each i. With MAD = 0 (more than half the values equal) a value at
/// the median gets 0 and any other +infinity.
inline std::vector<double> mad_anomaly_index(const std::vector<double>& v) {
    stats_detail::check_sample("mad_anomaly_index", v);
    const double m = median(v);
    std::vector<double> dev(v.size());
    for (std::size_t i = 0; i < v.size(); ++i) dev[i] = std::abs(v[i] - m);
    const double mad = 1.4826 * median(dev);
    std::vector<double> index(v.size());
    for (std::size_t i = 0; i < v.size(); ++i)
        index[i] = mad > 0 ? dev[i] / mad : (dev[i] == 0 ? 0.0 : std::numeric_limits<double>::infinity());
    return index;
}

struct Summary {
    std::size_t count = 0;
    double mean = 0, std = 0, min = 0, median = 0, max = 0;  ///< std: population (divisor n)
};

inline Summary summarize(const std::vector<double>& v) {
    stats_detail::check_sample("summarize", v);
    const NormalFit f = fit_normal(v);
    return Summary{v.size(), f.mean, f.std, *std::min_element(v.begin(), v.end()), median(v), *std::max_element(v.begin(), v.end())};
}

template <typename BasicJson>
void to_json(BasicJson& j, const NormalFit& f) {
    j = BasicJson{{"mean", f.mean}, {"std", f.std}};
}
template <typename BasicJson>
void to_json(BasicJson& j, const Summary& s) {
    j = BasicJson{{"count", s.count}, {"mean", s.mean}, {"std", s.std}, {"min", s.min}, {"median", s.median}, {"max", s.max}};
}

}  // namespace eigencnn
