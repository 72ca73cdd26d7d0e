// eigencnn/analysis/pca.hpp
//
// Principal components of the rows of a data matrix, through Eigen.
//
//   X [n, d] (one sample per row)   mean mu [d] = column means,   Xc = X - 1 mu^T
//   C = Xc^T Xc / (n - 1)  [d, d]   (sklearn's PCA divides by n - 1 as well)
//   components V [k, d]: the eigenvectors of C with the k largest eigenvalues
//     (= the top k right singular vectors of Xc; SelfAdjointEigenSolver on C,
//     which is cheaper than an SVD of Xc when n >> d, as for per-label representations)
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
    const Eigen::MatrixXd C = (Xc.transpose() * Xc) / static_cast<double>(X.rows() - 1);
    Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd> eig(C);
    if (eig.info() != Eigen::Success) throw std::runtime_error("pca: the eigen-decomposition did not converge");
    const Eigen::Index d = X.cols();
    r.components.resize(k, d);
    r.explained_variance.resize(k);
    for (Eigen::Index i = 0; i < k; ++i) {  // eigenvalues come in increasing order
        r.explained_variance[i] = std::max(0.0, eig.eigenvalues()[d - 1 - i]);
        Eigen::VectorXd v = eig.eigenvectors().col(d - 1 - i);
        analysis_detail::fix_sign(v);
        r.components.row(i) = v.transpose();
    }
    return r;
}

/// The top right singular vector of M [n, d] (unit length, sign fixed as above): the direction
/// maximising ||M v||. M is used as given (centre it first for spectral signatures).
inline Eigen::VectorXd top_singular_vector(const Eigen::MatrixXd& M) {
    if (M.rows() < 1 || M.cols() < 1) throw std::invalid_argument("top_singular_vector: empty matrix");
    analysis_detail::check_finite(M, "top_singular_vector");
    Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd> eig(M.transpose() * M);
    if (eig.info() != Eigen::Success) throw std::runtime_error("top_singular_vector: the eigen-decomposition did not converge");
    Eigen::VectorXd v = eig.eigenvectors().col(M.cols() - 1);
    analysis_detail::fix_sign(v);
    return v;
}

}  // namespace eigencnn
