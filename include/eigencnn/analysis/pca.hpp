// SPDX-License-Identifier: MIT
// eigencnn/analysis/pca.hpp
//
// Principal components of the rows of a data matrix, through Eigen.
//
//   X [n, d] (one sample per row)   mean mu [d] = column means,   Xc = X - 1 mu^T
//   C = Xc^T Xc / (n - 1)  [d, d]   (sklearn's PCA divides by n - 1 as well)
//   components V [k, d]: the eigenvectors of C with the k largest eigenvalues
//     (= the top k right singular vectors of Xc), by SelfAdjointEigenSolver on the
//     smaller of Xc^T Xc [d, d] and Xc Xc^T [n, n] (then v = Xc^T u / sigma): cheaper than
//     an SVD of Xc for per-label representations, whether n >> d or n < d
//   explained_variance [k]: those eigenvalues, largest first
//   project(X) = (X - 1 mu^T) V^T  [n, k]
// Each component's sign is fixed so that its entry of largest magnitude is
// positive (SVD signs are arbitrary): the same data give the same components.
//
//   PcaResult p = pca(X, 10);      Eigen::MatrixXd Z = p.project(X);
//   Eigen::VectorXd v = top_singular_vector(Xc);   // spectral signatures' v
#pragma once

#include <Eigen/Dense>

#include <stdexcept>
#include <string>

namespace eigencnn {

struct PcaResult {
    Eigen::VectorXd mean;                ///< [d]
    Eigen::MatrixXd components;          ///< [k, d], unit rows, by decreasing variance
    Eigen::VectorXd explained_variance;  ///< [k]

    /// (X - mean) * components^T: [n, k].
    Eigen::MatrixXd project(const Eigen::MatrixXd& X) const {
        if (X.cols() != mean.size())
            throw std::invalid_argument("PcaResult::project: data of " + std::to_string(X.cols()) + " columns, components of " +
                                        std::to_string(mean.size()));
        return (X.rowwise() - mean.transpose()) * components.transpose();
    }
};

namespace analysis_detail {
inline void check_finite(const Eigen::MatrixXd& X, const char* what) {
    if (!X.allFinite()) throw std::invalid_argument(std::string(what) + ": the data hold NaN or infinity");
}
inline void fix_sign(Eigen::Ref<Eigen::VectorXd> v) {
    Eigen::Index at = 0;
    v.cwiseAbs().maxCoeff(&at);
    if (v[at] < 0) v = -v;
}

/// The top k right singular vectors of M [n, d] (rows of V [k, d], signs fixed) and the
/// eigenvalues of M^T M they belong to (largest first). From the smaller of M^T M [d, d] and
/// M M^T [n, n]: with n < d, v_i = M^T u_i / sqrt(lambda_i) (a zero vector where lambda_i = 0).
inline void top_right_singular(const Eigen::MatrixXd& M, Eigen::Index k, Eigen::MatrixXd& V, Eigen::VectorXd& lambda, const char* what) {
    const bool gram = M.rows() < M.cols();
    Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd> eig(gram ? Eigen::MatrixXd(M * M.transpose()) : Eigen::MatrixXd(M.transpose() * M));
    if (eig.info() != Eigen::Success) throw std::runtime_error(std::string(what) + ": the eigen-decomposition did not converge");
    const Eigen::Index m = eig.eigenvalues().size();
    V = Eigen::MatrixXd::Zero(k, M.cols());
    lambda = Eigen::VectorXd::Zero(k);
    for (Eigen::Index i = 0; i < k && i < m; ++i) {  // eigenvalues come in increasing order
        lambda[i] = std::max(0.0, eig.eigenvalues()[m - 1 - i]);
        Eigen::VectorXd v = gram ? Eigen::VectorXd(M.transpose() * eig.eigenvectors().col(m - 1 - i)) : Eigen::VectorXd(eig.eigenvectors().col(m - 1 - i));
        if (gram) v = lambda[i] > 0 ? Eigen::VectorXd(v / std::sqrt(lambda[i])) : Eigen::VectorXd::Zero(M.cols());
        fix_sign(v);
        V.row(i) = v.transpose();
    }
}
}  // namespace analysis_detail

/// The top `k` principal components of the rows of X [n, d] (n >= 2, 1 <= k <= d).
inline PcaResult pca(const Eigen::MatrixXd& X, Eigen::Index k) {
    if (X.rows() < 2) throw std::invalid_argument("pca: need at least 2 samples, got " + std::to_string(X.rows()));
    if (k < 1 || k > X.cols())
        throw std::invalid_argument("pca: components must be in [1, " + std::to_string(X.cols()) + "], got " + std::to_string(k));
    analysis_detail::check_finite(X, "pca");
    PcaResult r;
    r.mean = X.colwise().mean().transpose();
    const Eigen::MatrixXd Xc = X.rowwise() - r.mean.transpose();
    analysis_detail::top_right_singular(Xc, k, r.components, r.explained_variance, "pca");
    r.explained_variance /= static_cast<double>(X.rows() - 1);
    return r;
}

/// The top right singular vector of M [n, d] (unit length, sign fixed as above): the direction
/// maximising ||M v||. M is used as given (centre it first for spectral signatures).
inline Eigen::VectorXd top_singular_vector(const Eigen::MatrixXd& M) {
    if (M.rows() < 1 || M.cols() < 1) throw std::invalid_argument("top_singular_vector: empty matrix");
    analysis_detail::check_finite(M, "top_singular_vector");
    Eigen::MatrixXd V;
    Eigen::VectorXd lambda;
    analysis_detail::top_right_singular(M, 1, V, lambda, "top_singular_vector");
    Eigen::VectorXd v = V.row(0).transpose();
    return v;
}

}  // namespace eigencnn
