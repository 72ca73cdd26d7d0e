// SPDX-License-Identifier: MIT
// eigencnn/backdoor/defenses/activation_clustering.hpp
//
// Activation clustering (Chen et al. 2018, "Detecting Backdoor Attacks on
// Deep Neural Networks by Activation Clustering"). For each label y, the
// last hidden layer's activations of the training samples labelled y:
//
//   A [n_y, d]  ->  PCA to `components` = 10 dimensions (analysis/pca.hpp)
//               ->  2-means (analysis/kmeans.hpp, seeded k-means++)
//   relative size of the smaller cluster s_y = min(|C0|, |C1|) / n_y
//   the label is poisoned when s_y < size_threshold (0.35); its smaller cluster is removed,
//   and the model is retrained on the rest.
//   The silhouette score of the 2 clusters is reported for every label (high: two real groups).
//
// Deviations, said here and in docs/lab.md: the paper reduces with ICA
// (PCA gave similar results there); PCA here, as the issue and ART do. ART's
// default removes the smaller cluster of EVERY label; here only flagged
// labels lose a cluster, as in the paper.
#pragma once

#include "../../analysis/kmeans.hpp"
#include "../../analysis/silhouette.hpp"
#include "representations.hpp"

#include <nlohmann/json.hpp>

#include <optional>

namespace eigencnn {

struct ActivationClustering {
    static constexpr const char* name = "activation-clustering";
    int components = 10;          ///< PCA dimensions (the paper's 10)
    int clusters = 2;             ///< k of k-means (the paper's 2)
    double size_threshold = 0.35; ///< flag a label whose smaller cluster is below this share
    std::uint64_t seed = 0;       ///< k-means++ seeding
    std::size_t silhouette_points = 2000;  ///< points per label used for the silhouette score (a seeded sample)
    std::optional<std::size_t> layer;      ///< default: penultimate_layer(model), the last hidden layer

    void validate() const {
        if (components < 1) throw std::invalid_argument("activation-clustering: components must be >= 1, got " + std::to_string(components));
        if (clusters < 2) throw std::invalid_argument("activation-clustering: clusters must be >= 2, got " + std::to_string(clusters));
        if (!(size_threshold > 0 && size_threshold <= 0.5))
            throw std::invalid_argument("activation-clustering: size_threshold must be in (0, 0.5], got " + std::to_string(size_threshold));
        if (silhouette_points < 2) throw std::invalid_argument("activation-clustering: silhouette_points must be >= 2");
    }
};

struct ClusterLabelResult {
    int label = 0;
    std::size_t samples = 0;
    std::vector<std::size_t> cluster_sizes;
    double smallest_relative_size = 1;  ///< the smallest cluster's share of the label
    double silhouette = 0;              ///< of the clustering (0 when it could not be computed)
    bool flagged = false;
};

struct ActivationClusteringResult {
    std::vector<std::size_t> removed;  ///< training-set indices in the smallest cluster of each flagged label, increasing
    std::vector<ClusterLabelResult> labels;
    std::vector<int> flagged_labels;
};

/// Activation clustering on given activations A [n, d] with their labels.
inline ActivationClusteringResult activation_clustering(const Eigen::MatrixXd& A, const std::vector<int>& labels, int num_classes,
                                                        const ActivationClustering& p) {
    p.validate();
    if (static_cast<std::size_t>(A.rows()) != labels.size())
        throw std::invalid_argument("activation_clustering: " + std::to_string(A.rows()) + " activations for " + std::to_string(labels.size()) + " labels");
    ActivationClusteringResult r;
    const auto by = indices_by_label(labels, num_classes);
    for (int y = 0; y < num_classes; ++y) {
        const auto& idx = by[static_cast<std::size_t>(y)];
        ClusterLabelResult lr;
        lr.label = y;
        lr.samples = idx.size();
        if (idx.size() > static_cast<std::size_t>(p.clusters)) {
            const Eigen::MatrixXd Ay = gather_rows(A, idx);
            const Eigen::Index dims = std::min<Eigen::Index>({p.components, Ay.cols(), Ay.rows() - 1});
            const Eigen::MatrixXd Z = pca(Ay, dims).project(Ay);
            KMeansOptions ko;
            ko.k = p.clusters;
            ko.seed = Rng::mix(p.seed, static_cast<std::uint64_t>(y));
            const KMeansResult km = kmeans(Z, ko);
            lr.cluster_sizes = km.sizes;
            const auto smallest = static_cast<std::size_t>(std::min_element(km.sizes.begin(), km.sizes.end()) - km.sizes.begin());
            lr.smallest_relative_size = static_cast<double>(km.sizes[smallest]) / static_cast<double>(idx.size());
            const bool two = std::count_if(km.sizes.begin(), km.sizes.end(), [](std::size_t s) { return s > 0; }) >= 2;
            lr.silhouette = two ? silhouette_score(Z, km.labels, p.silhouette_points, ko.seed) : 0.0;
            lr.flagged = lr.smallest_relative_size < p.size_threshold;
            if (lr.flagged) {
                r.flagged_labels.push_back(y);
                for (std::size_t k = 0; k < idx.size(); ++k)
                    if (static_cast<std::size_t>(km.labels[k]) == smallest) r.removed.push_back(idx[k]);
            }
        }
        r.labels.push_back(lr);
    }
    std::sort(r.removed.begin(), r.removed.end());
    return r;
}

/// Activation clustering of `train` as `model` represents it (layer p.layer, else the penultimate).
template <typename T>
ActivationClusteringResult activation_clustering(Sequential<T>& model, const Dataset<T>& train, int num_classes, const ActivationClustering& p,
                                                 Index batch_size = 1000) {
    p.validate();
    const std::size_t layer = p.layer ? *p.layer : penultimate_layer(model);
    return activation_clustering(representations(model, train, layer, batch_size), train.labels, num_classes, p);
}

template <typename BasicJson>
void to_json(BasicJson& j, const ActivationClustering& p) {
    j = BasicJson{{"components", p.components}, {"clusters", p.clusters}, {"size_threshold", p.size_threshold}, {"seed", p.seed},
                  {"silhouette_points", p.silhouette_points}};
    if (p.layer) j["layer"] = *p.layer;
    else j["layer"] = nullptr;
}

/// {"removed_count", "flagged_labels", "labels": [{"label", "samples", "cluster_sizes", "smallest_relative_size", "silhouette", "flagged"}...]}
template <typename BasicJson>
void to_json(BasicJson& j, const ActivationClusteringResult& r) {
    BasicJson per = BasicJson::array();
    for (const auto& l : r.labels)
        per.push_back(BasicJson{{"label", l.label},
                                {"samples", l.samples},
                                {"cluster_sizes", l.cluster_sizes},
                                {"smallest_relative_size", l.smallest_relative_size},
                                {"silhouette", l.silhouette},
                                {"flagged", l.flagged}});
    j = BasicJson{{"removed_count", r.removed.size()}, {"flagged_labels", r.flagged_labels}, {"labels", per}};
}

}  // namespace eigencnn
