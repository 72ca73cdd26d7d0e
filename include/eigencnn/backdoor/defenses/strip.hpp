// SPDX-License-Identifier: MIT
// eigencnn/backdoor/defenses/strip.hpp
//
// STRIP (Gao et al. 2019, "STRIP: A Defence Against Trojan Attacks on Deep
// Neural Networks"): an input carrying a trigger keeps its (target) prediction
// when other images are superimposed on it, so its predictions stay confident;
// a clean input's predictions scatter. Per input x [C, H, W]:
//
//   x_j   = clip(x + o_j, 0, 1)             j = 1..N overlays o_j from held-out clean images
//                                            (the saturating sum of the paper's code,
//                                            cv2.addWeighted(x, 1, o, 1, 0) on 8-bit images)
//   H_j   = -sum_k p_jk log2 p_jk            p_j = softmax(model(x_j)) [K], 0 log 0 = 0
//   H(x)  = (1/N) sum_j H_j                  the input's STRIP entropy, in bits
//
// Detection: fit a normal (mean, population std: scipy.stats.norm.fit) to clean
// inputs' entropies; at a chosen false-rejection rate FRR the threshold is
// mean + std * Phi^-1(FRR) and an input with H(x) <= threshold is rejected as
// trojaned. FAR = share of triggered inputs accepted (H > threshold); the FRR
// measured = share of the clean inputs rejected (the fit is made on the same
// clean inputs, as in the paper's code). ROC AUC: P(H(trojaned) < H(clean)),
// ties counted half.
//
// Overlays: N indices drawn uniformly with replacement (the paper's code uses
// np.random.randint) from the overlay set, from Rng(mix(seed, i)) for input i,
// so an input's entropy does not depend on the batching or thread count.
// Inference batches the N superimpositions of several inputs at once
// (options.batch_size images per forward), in eval mode without gradients.
// Deviations of a popular toolkit: ART's STRIP takes scipy's entropy over axis 0
// of its [N, K] predictions (across overlays instead of across classes), blends
// 0.5 x + 0.5 o instead of the saturating sum, and names the FRR quantile FAR.
#pragma once

#include "../../core/omp.hpp"

#include "../../model/sequential.hpp"
#include "detection_statistics.hpp"

#include <chrono>
#include <optional>

namespace eigencnn {

struct StripOptions {
    int overlays = 100;                 ///< N superimpositions per input (the paper's)
    Index batch_size = 1000;            ///< images per forward (rounded down to whole inputs, at least one)
    std::uint64_t seed = 0;             ///< overlay choice
    std::vector<double> false_rejection_rates{0.01, 0.02, 0.03};  ///< operating points

    void validate() const {
        if (overlays < 1) throw std::invalid_argument("strip: overlays must be >= 1, got " + std::to_string(overlays));
        if (batch_size < 1) throw std::invalid_argument("strip: batch_size must be >= 1, got " + std::to_string(batch_size));
        for (double r : false_rejection_rates)
            if (!(r > 0 && r < 1)) throw std::invalid_argument("strip: a false-rejection rate must be in (0, 1), got " + std::to_string(r));
    }
};

/// Shannon entropy in bits of softmax(z) for one row of logits z [K] (computed in double).
template <typename T>
double softmax_entropy_bits(const T* z, Index K) {
    double m = static_cast<double>(z[0]);
    for (Index k = 1; k < K; ++k) m = std::max(m, static_cast<double>(z[k]));
    double sum = 0;
    for (Index k = 0; k < K; ++k) sum += std::exp(static_cast<double>(z[k]) - m);
    // p_k = e_k / sum, log2 p_k = ((z_k - m) - log sum) / ln 2; p_k = 0 terms contribute 0.
    const double log_sum = std::log(sum);
    double h = 0;
    for (Index k = 0; k < K; ++k) {
        const double e = std::exp(static_cast<double>(z[k]) - m);
        if (e > 0) h -= (e / sum) * ((static_cast<double>(z[k]) - m) - log_sum);
    }
    return h / std::log(2.0);
}

/// Shannon entropy in bits of a probability vector p [K] (0 log 0 = 0).
inline double entropy_bits(const std::vector<double>& p) {
    double h = 0;
    for (double q : p)
        if (q > 0) h -= q * std::log2(q);
    return h;
}

/// STRIP entropy H(x) of every input of `inputs` [N, C, H, W], superimposing images of `overlays` [M, C, H, W].
template <typename T>
std::vector<double> strip_entropies(Sequential<T>& model, const Tensor<T>& inputs, const Tensor<T>& overlays, const StripOptions& options) {
    options.validate();
    const Shape& in = inputs.shape();
    if (in.rank() != 4) throw std::invalid_argument("strip: inputs must be [N, C, H, W], got " + in.str());
    if (overlays.shape().rank() != 4 || overlays.shape().with_batch(1) != in.with_batch(1) || overlays.dim(0) < 1)
        throw std::invalid_argument("strip: overlays must be [M >= 1, " + std::to_string(in[1]) + ", " + std::to_string(in[2]) + ", " +
                                    std::to_string(in[3]) + "] like the inputs, got " + overlays.shape().str());
    if (!inputs.vector().allFinite()) throw std::invalid_argument("strip: the inputs hold a non-finite value (NaN or infinity)");
    if (!overlays.vector().allFinite()) throw std::invalid_argument("strip: the overlays hold a non-finite value (NaN or infinity)");
    const Index N = in[0], S = in.sample_size(), M = overlays.dim(0), R = options.overlays;
    const Index per_forward = std::max<Index>(1, options.batch_size / R);  // inputs per forward
    std::vector<double> entropy(static_cast<std::size_t>(N), 0.0);
    InferenceScope<T> scope(model);
    Tensor<T> batch;
    std::vector<std::size_t> chosen(static_cast<std::size_t>(per_forward * R));
    for (Index first = 0; first < N; first += per_forward) {
        const Index count = std::min(per_forward, N - first);
        for (Index i = 0; i < count; ++i) {
            Rng rng(Rng::mix(options.seed, static_cast<std::uint64_t>(first + i)));
            for (Index j = 0; j < R; ++j) chosen[static_cast<std::size_t>(i * R + j)] = static_cast<std::size_t>(rng.below(static_cast<std::uint64_t>(M)));
        }
        batch.resize(in.with_batch(count * R));
        EIGENCNN_OMP(parallel for schedule(static))
        for (Index r = 0; r < count * R; ++r) {
            const T* x = inputs.data() + (first + r / R) * S;
            const T* o = overlays.data() + static_cast<Index>(chosen[static_cast<std::size_t>(r)]) * S;
            T* out = batch.data() + r * S;
            for (Index k = 0; k < S; ++k) out[k] = std::min(T(1), std::max(T(0), x[k] + o[k]));
        }
        const Tensor<T>& z = model.forward(batch);
        if (z.shape().rank() != 2 || z.dim(0) != count * R)
            throw std::invalid_argument("strip: the model's output is " + z.shape().str() + ", not [batch, classes] logits");
        const Index K = z.dim(1);
        for (Index i = 0; i < count; ++i) {
            double sum = 0;
            for (Index j = 0; j < R; ++j) sum += softmax_entropy_bits(z.data() + (i * R + j) * K, K);
            entropy[static_cast<std::size_t>(first + i)] = sum / static_cast<double>(R);
        }
    }
    return entropy;
}

/// One operating point: the threshold at a preset false-rejection rate and what it gives.
struct StripOperatingPoint {
    double preset_false_rejection_rate = 0;  ///< the FRR the threshold is set for (normal fit)
    double threshold = 0;                    ///< entropy at or below which an input is rejected
    double false_rejection_rate = 0;         ///< measured: clean inputs rejected
    std::optional<double> false_acceptance_rate;  ///< measured: triggered inputs accepted (when there are some)
};

/// STRIP's detection figures.
struct StripResult {
    int overlays = 0;
    std::uint64_t seed = 0;
    NormalFit clean_fit;                 ///< normal fit to the clean entropies
    Summary clean_entropy;               ///< the clean inputs' entropies
    std::optional<Summary> triggered_entropy;
    std::vector<StripOperatingPoint> operating_points;  ///< one per preset FRR
    std::optional<double> roc_auc;       ///< P(H(triggered) < H(clean)) + ties / 2
    double seconds = 0;                  ///< computing the entropies
};

/// Thresholds, FRR, FAR and AUC from entropies already computed (triggered may be empty: no FAR, no AUC).
inline StripResult strip_detection(const std::vector<double>& clean, const std::vector<double>& triggered, const StripOptions& options) {
    options.validate();
    StripResult r;
    r.overlays = options.overlays;
    r.seed = options.seed;
    r.clean_fit = fit_normal(clean);
    r.clean_entropy = summarize(clean);
    if (!triggered.empty()) r.triggered_entropy = summarize(triggered);
    for (double frr : options.false_rejection_rates) {
        StripOperatingPoint p;
        p.preset_false_rejection_rate = frr;
        p.threshold = r.clean_fit.mean + r.clean_fit.std * normal_quantile(frr);
        const auto rejected = std::count_if(clean.begin(), clean.end(), [&](double h) { return h <= p.threshold; });
        p.false_rejection_rate = static_cast<double>(rejected) / static_cast<double>(clean.size());
        if (!triggered.empty()) {
            const auto accepted = std::count_if(triggered.begin(), triggered.end(), [&](double h) { return h > p.threshold; });
            p.false_acceptance_rate = static_cast<double>(accepted) / static_cast<double>(triggered.size());
        }
        r.operating_points.push_back(p);
    }
    if (!triggered.empty()) {
        std::vector<double> neg_triggered(triggered.size()), neg_clean(clean.size());  // lower entropy = more suspicious
        std::transform(triggered.begin(), triggered.end(), neg_triggered.begin(), [](double h) { return -h; });
        std::transform(clean.begin(), clean.end(), neg_clean.begin(), [](double h) { return -h; });
        r.roc_auc = roc_auc(neg_triggered, neg_clean);
    }
    return r;
}

/// The whole defense: entropies of clean and triggered inputs (triggered may be empty [0, C, H, W] or
/// default-constructed), then strip_detection.
template <typename T>
StripResult run_strip(Sequential<T>& model, const Tensor<T>& clean_inputs, const Tensor<T>& triggered_inputs, const Tensor<T>& overlays,
                      const StripOptions& options) {
    const auto t0 = std::chrono::steady_clock::now();
    const std::vector<double> clean = strip_entropies(model, clean_inputs, overlays, options);
    std::vector<double> triggered;
    if (triggered_inputs.size() > 0) triggered = strip_entropies(model, triggered_inputs, overlays, options);
    StripResult r = strip_detection(clean, triggered, options);
    r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    return r;
}

template <typename BasicJson>
void to_json(BasicJson& j, const StripOperatingPoint& p) {
    j = BasicJson{{"preset_false_rejection_rate", p.preset_false_rejection_rate},
                  {"threshold", p.threshold},
                  {"false_rejection_rate", p.false_rejection_rate},
                  {"false_acceptance_rate", p.false_acceptance_rate ? BasicJson(*p.false_acceptance_rate) : BasicJson(nullptr)}};
}
template <typename BasicJson>
void to_json(BasicJson& j, const StripResult& r) {
    j = BasicJson::object();
    j["defense"] = "strip";
    j["overlays"] = r.overlays;
    j["seed"] = r.seed;
    j["clean_fit"] = r.clean_fit;
    j["clean_entropy"] = r.clean_entropy;
    j["triggered_entropy"] = r.triggered_entropy ? BasicJson(*r.triggered_entropy) : BasicJson(nullptr);
    j["operating_points"] = r.operating_points;
    j["roc_auc"] = r.roc_auc ? BasicJson(*r.roc_auc) : BasicJson(nullptr);
    j["seconds"] = r.seconds;
}

}  // namespace eigencnn
