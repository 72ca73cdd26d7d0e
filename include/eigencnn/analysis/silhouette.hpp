// SPDX-License-Identifier: MIT
// eigencnn/analysis/silhouette.hpp
//
// The silhouette score of a clustering (Rousseeuw 1987), as sklearn's
// silhouette_score with the Euclidean metric:
//
//   a(i) = mean distance from x_i to the other points of its cluster
//   b(i) = min over other clusters C of the mean distance from x_i to the points of C
//   s(i) = (b(i) - a(i)) / max(a(i), b(i)),  and s(i) = 0 when i is alone in its cluster
//   score = mean_i s(i), in [-1, 1]: near 1 compact, well-separated clusters
//
// Exact, O(n^2 d); at most `max_points` points are used (a seeded sample,
// as sklearn's sample_size), so large label groups stay cheap.
#pragma once

#include "../core/random.hpp"
#include "pca.hpp"

#include <algorithm>
#include <limits>
#include <vector>

namespace eigencnn {

/// Silhouette score of `labels` (cluster ids >= 0, at least 2 distinct) on the rows of X [n, d].
inline double silhouette_score(const Eigen::MatrixXd& X, const std::vector<int>& labels, std::size_t max_points = 5000,
                               std::uint64_t seed = 0) {
    const auto n = static_cast<std::size_t>(X.rows());
    if (labels.size() != n)
        throw std::invalid_argument("silhouette_score: " + std::to_string(labels.size()) + " labels for " + std::to_string(n) + " points");
    analysis_detail::check_finite(X, "silhouette_score");
    std::vector<std::size_t> idx(n);
    for (std::size_t i = 0; i < n; ++i) idx[i] = i;
    if (n > max_points) {
        Rng rng(seed);
        idx = rng.choice(n, max_points);
        std::sort(idx.begin(), idx.end());
    }
    int k = 0;
    for (std::size_t i : idx) {
        if (labels[i] < 0) throw std::invalid_argument("silhouette_score: label " + std::to_string(labels[i]) + " of point " + std::to_string(i));
        k = std::max(k, labels[i] + 1);
    }
    std::vector<std::size_t> size(static_cast<std::size_t>(k), 0);
    for (std::size_t i : idx) ++size[static_cast<std::size_t>(labels[i])];
    if (std::count_if(size.begin(), size.end(), [](std::size_t s) { return s > 0; }) < 2)
        throw std::invalid_argument("silhouette_score: needs at least 2 clusters");
    const Eigen::MatrixXd P = X.transpose();  // a point per column: contiguous
    double total = 0;
    std::vector<double> sum(static_cast<std::size_t>(k));
    for (std::size_t i : idx) {
        std::fill(sum.begin(), sum.end(), 0.0);
        for (std::size_t j : idx)
            if (j != i) sum[static_cast<std::size_t>(labels[j])] += (P.col(static_cast<Eigen::Index>(i)) - P.col(static_cast<Eigen::Index>(j))).norm();
        const auto own = static_cast<std::size_t>(labels[i]);
        if (size[own] <= 1) continue;  // s(i) = 0
        const double a = sum[own] / static_cast<double>(size[own] - 1);
        double b = std::numeric_limits<double>::infinity();
        for (std::size_t c = 0; c < size.size(); ++c)
            if (c != own && size[c] > 0) b = std::min(b, sum[c] / static_cast<double>(size[c]));
        const double m = std::max(a, b);
        total += m > 0 ? (b - a) / m : 0.0;
    }
    return total / static_cast<double>(idx.size());
}

}  // namespace eigencnn
