// SPDX-License-Identifier: MIT
// eigencnn/analysis/kmeans.hpp
//
// k-means (Lloyd's algorithm) with k-means++ seeding (Arthur and
// Vassilvitskii 2007), seeded and deterministic: the same data and seed give
// the same clusters on any machine (Rng, core/random.hpp).
//
//   X [n, d] rows are points.  Minimises inertia = sum_i ||x_i - c_{l(i)}||^2.
//   k-means++: the first centre is a uniform choice, each next one is drawn
//   with probability proportional to D(x)^2, the squared distance to the
//   nearest centre chosen so far. Then alternate: assign each point to its
//   nearest centre (the lowest index on ties), move each centre to the mean of
//   its points (an emptied cluster takes the point farthest from its centre),
//   until no assignment changes or the centres move less than tol (sklearn's
//   rule: squared movement summed <= tol * mean variance of the columns) or max_iter.
//   n_init runs with seeds mix(seed, run); the one of least inertia is kept
//   (sklearn's defaults: max_iter 300, tol 1e-4; n_init 10 as its classic default).
//
//   KMeansResult r = kmeans(X, KMeansOptions{2});   r.labels[i] in [0, k)
#pragma once

#include "../core/random.hpp"
#include "pca.hpp"

#include <limits>
#include <vector>

namespace eigencnn {

struct KMeansOptions {
    int k = 2;
    int n_init = 10;
    int max_iter = 300;
    double tol = 1e-4;
    std::uint64_t seed = 0;

    void validate(Eigen::Index n) const {
        if (k < 1) throw std::invalid_argument("kmeans: k must be >= 1, got " + std::to_string(k));
        if (static_cast<Eigen::Index>(k) > n)
            throw std::invalid_argument("kmeans: k = " + std::to_string(k) + " clusters for " + std::to_string(n) + " points");
        if (n_init < 1) throw std::invalid_argument("kmeans: n_init must be >= 1, got " + std::to_string(n_init));
        if (max_iter < 1) throw std::invalid_argument("kmeans: max_iter must be >= 1, got " + std::to_string(max_iter));
        if (!(tol >= 0)) throw std::invalid_argument("kmeans: tol must be >= 0");
    }
};

struct KMeansResult {
    std::vector<int> labels;   ///< [n], cluster of each point
    Eigen::MatrixXd centers;   ///< [k, d]
    std::vector<std::size_t> sizes;  ///< points per cluster
    double inertia = 0;
    int iterations = 0;        ///< of the kept run
};

namespace kmeans_detail {

inline Eigen::MatrixXd plus_plus_init(const Eigen::MatrixXd& X, int k, Rng& rng) {
    const Eigen::Index n = X.rows();
    Eigen::MatrixXd C(k, X.cols());
    C.row(0) = X.row(static_cast<Eigen::Index>(rng.below(static_cast<std::uint64_t>(n))));
    Eigen::VectorXd d2 = (X.rowwise() - C.row(0)).rowwise().squaredNorm();
    for (int c = 1; c < k; ++c) {
        const double total = d2.sum();
        Eigen::Index pick = 0;
        if (total > 0) {
            double u = rng.uniform() * total, acc = 0;
            pick = n - 1;
            for (Eigen::Index i = 0; i < n; ++i) {
                acc += d2[i];
                if (u < acc && d2[i] > 0) { pick = i; break; }
            }
        } else {
            pick = static_cast<Eigen::Index>(rng.below(static_cast<std::uint64_t>(n)));
        }
        C.row(c) = X.row(pick);
        d2 = d2.cwiseMin((X.rowwise() - C.row(c)).rowwise().squaredNorm());
    }
    return C;
}

inline KMeansResult lloyd(const Eigen::MatrixXd& X, Eigen::MatrixXd C, const KMeansOptions& o, double tol_abs) {
    const Eigen::Index n = X.rows();
    KMeansResult r;
    r.labels.assign(static_cast<std::size_t>(n), -1);
    Eigen::VectorXd best(n);
    for (int it = 1; it <= o.max_iter; ++it) {
        bool changed = false;
        for (Eigen::Index i = 0; i < n; ++i) {
            int arg = 0;
            double dmin = std::numeric_limits<double>::infinity();
            for (int c = 0; c < o.k; ++c) {
                const double d = (X.row(i) - C.row(c)).squaredNorm();
                if (d < dmin) dmin = d, arg = c;
            }
            best[i] = dmin;
            changed = changed || r.labels[static_cast<std::size_t>(i)] != arg;
            r.labels[static_cast<std::size_t>(i)] = arg;
        }
        r.iterations = it;
        Eigen::MatrixXd next = Eigen::MatrixXd::Zero(o.k, X.cols());
        std::vector<std::size_t> count(static_cast<std::size_t>(o.k), 0);
        for (Eigen::Index i = 0; i < n; ++i) {
            next.row(r.labels[static_cast<std::size_t>(i)]) += X.row(i);
            ++count[static_cast<std::size_t>(r.labels[static_cast<std::size_t>(i)])];
        }
        for (int c = 0; c < o.k; ++c) {
            if (count[static_cast<std::size_t>(c)] > 0) {
                next.row(c) /= static_cast<double>(count[static_cast<std::size_t>(c)]);
            } else {  // empty: the point farthest from its centre
                Eigen::Index far = 0;
                best.maxCoeff(&far);
                next.row(c) = X.row(far);
                best[far] = 0;
            }
        }
        const double shift = (next - C).rowwise().squaredNorm().sum();
        C = next;
        if (!changed || shift <= tol_abs) break;
    }
    // final assignment to the final centres
    r.inertia = 0;
    r.sizes.assign(static_cast<std::size_t>(o.k), 0);
    for (Eigen::Index i = 0; i < n; ++i) {
        int arg = 0;
        double dmin = std::numeric_limits<double>::infinity();
        for (int c = 0; c < o.k; ++c) {
            const double d = (X.row(i) - C.row(c)).squaredNorm();
            if (d < dmin) dmin = d, arg = c;
        }
        r.labels[static_cast<std::size_t>(i)] = arg;
        r.inertia += dmin;
        ++r.sizes[static_cast<std::size_t>(arg)];
    }
    r.centers = C;
    return r;
}

}  // namespace kmeans_detail

/// k-means of the rows of X [n, d] (see the top of the file).
inline KMeansResult kmeans(const Eigen::MatrixXd& X, const KMeansOptions& o = {}) {
    o.validate(X.rows());
    analysis_detail::check_finite(X, "kmeans");
    const Eigen::RowVectorXd mu = X.colwise().mean();
    const double mean_var = X.cols() ? (X.rowwise() - mu).array().square().colwise().mean().mean() : 0.0;
    const double tol_abs = o.tol * mean_var;
    KMeansResult best;
    for (int run = 0; run < o.n_init; ++run) {
        Rng rng(Rng::mix(o.seed, static_cast<std::uint64_t>(run)));
        KMeansResult r = kmeans_detail::lloyd(X, kmeans_detail::plus_plus_init(X, o.k, rng), o, tol_abs);
        if (run == 0 || r.inertia < best.inertia) best = std::move(r);
    }
    return best;
}

}  // namespace eigencnn
