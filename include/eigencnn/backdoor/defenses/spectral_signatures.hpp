// SPDX-License-Identifier: MIT
// eigencnn/backdoor/defenses/spectral_signatures.hpp
//
// Spectral signatures (Tran, Li and Madry 2018, "Spectral Signatures in
// Backdoor Attacks"): poisoned samples leave a trace along the top singular
// direction of their label's representations. For each label y, with R_i
// [d] the penultimate-layer representation of the n_y training samples labelled y:
//
//   mean = (1/n_y) sum_i R_i,   M [n_y, d] rows R_i - mean
//   v = top right singular vector of M
//   score_i = |<R_i - mean, v>|                      (the paper squares it: same order)
//   remove the floor(1.5 * eps * n_y + 1/2) samples of highest score (eps: the
//   assumed poison rate, an upper bound the defender sets), then retrain on the rest.
//
// The paper centres the representations before projecting. ART, BackdoorBench and
// the official code project the uncentred R_i onto the singular vector of
// the centred matrix (score |<R_i, v>|), which orders samples differently when the
// mean has a component along v; `centred = false` reproduces that.
//
//   SpectralSignatures ss;  ss.epsilon = 0.1;
//   SpectralSignaturesResult r = spectral_signatures(R, labels, 10, ss);   // R [n, d]
//   r.removed: indices to drop; r.scores: every sample's score
#pragma once

#include "representations.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <optional>

namespace eigencnn {

struct SpectralSignatures {
    static constexpr const char* name = "spectral-signatures";
    double epsilon = 0.05;        ///< the assumed poison rate eps (the paper's experiments: 5% and 10%)
    double removal_factor = 1.5;  ///< remove removal_factor * eps * n_y per label (the paper's 1.5)
    bool centred = true;          ///< project R_i - mean (the paper); false: R_i (ART, BackdoorBench, official code)
    std::optional<std::size_t> layer;  ///< representation layer; default: penultimate_layer(model)

    void validate() const {
        if (!(epsilon > 0 && epsilon <= 1)) throw std::invalid_argument("spectral-signatures: epsilon must be in (0, 1], got " + std::to_string(epsilon));
        if (!(removal_factor > 0 && std::isfinite(removal_factor)))
            throw std::invalid_argument("spectral-signatures: removal_factor must be > 0, got " + std::to_string(removal_factor));
    }
};

struct SpectralLabelResult {
    int label = 0;
    std::size_t samples = 0, removed = 0;
};

struct SpectralSignaturesResult {
    std::vector<std::size_t> removed;   ///< training-set indices to drop, increasing
    std::vector<double> scores;         ///< every sample's score (0 for labels with fewer than 2 samples)
    std::vector<SpectralLabelResult> labels;
};

/// Spectral signatures on given representations R [n, d] with their labels (see the top of the file).
inline SpectralSignaturesResult spectral_signatures(const Eigen::MatrixXd& R, const std::vector<int>& labels, int num_classes,
                                                    const SpectralSignatures& p) {
    p.validate();
    if (static_cast<std::size_t>(R.rows()) != labels.size())
        throw std::invalid_argument("spectral_signatures: " + std::to_string(R.rows()) + " representations for " + std::to_string(labels.size()) + " labels");
    SpectralSignaturesResult r;
    r.scores.assign(labels.size(), 0.0);
    const auto by = indices_by_label(labels, num_classes);
    for (int y = 0; y < num_classes; ++y) {
        const auto& idx = by[static_cast<std::size_t>(y)];
        SpectralLabelResult lr;
        lr.label = y;
        lr.samples = idx.size();
        if (idx.size() >= 2) {
            const Eigen::MatrixXd Ry = gather_rows(R, idx);
            const Eigen::RowVectorXd mean = Ry.colwise().mean();
            const Eigen::MatrixXd M = Ry.rowwise() - mean;
            const Eigen::VectorXd v = top_singular_vector(M);
            const Eigen::VectorXd s = ((p.centred ? M : Ry) * v).cwiseAbs();
            for (std::size_t k = 0; k < idx.size(); ++k) r.scores[idx[k]] = s[static_cast<Eigen::Index>(k)];
            const auto remove = std::min(idx.size(), static_cast<std::size_t>(std::floor(p.removal_factor * p.epsilon * static_cast<double>(idx.size()) + 0.5)));
            std::vector<std::size_t> order(idx.size());
            std::iota(order.begin(), order.end(), std::size_t{0});
            std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return s[static_cast<Eigen::Index>(a)] > s[static_cast<Eigen::Index>(b)]; });
            for (std::size_t k = 0; k < remove; ++k) r.removed.push_back(idx[order[k]]);
            lr.removed = remove;
        }
        r.labels.push_back(lr);
    }
    std::sort(r.removed.begin(), r.removed.end());
    return r;
}

/// Spectral signatures of `train` as `model` represents it (layer p.layer, else the penultimate).
template <typename T>
SpectralSignaturesResult spectral_signatures(Sequential<T>& model, const Dataset<T>& train, int num_classes, const SpectralSignatures& p,
                                             Index batch_size = 1000) {
    p.validate();
    const std::size_t layer = p.layer ? *p.layer : penultimate_layer(model);
    return spectral_signatures(representations(model, train, layer, batch_size), train.labels, num_classes, p);
}

template <typename BasicJson>
void to_json(BasicJson& j, const SpectralSignatures& p) {
    j = BasicJson{{"epsilon", p.epsilon}, {"removal_factor", p.removal_factor}, {"centred", p.centred}};
    if (p.layer) j["layer"] = *p.layer;
    else j["layer"] = nullptr;
}

/// {"removed_count", "labels": [{"label", "samples", "removed"}...]} (indices and scores are left out: tens of thousands)
template <typename BasicJson>
void to_json(BasicJson& j, const SpectralSignaturesResult& r) {
    BasicJson per = BasicJson::array();
    for (const auto& l : r.labels) per.push_back(BasicJson{{"label", l.label}, {"samples", l.samples}, {"removed", l.removed}});
    j = BasicJson{{"removed_count", r.removed.size()}, {"labels", per}};
}

}  // namespace eigencnn
