// SPDX-License-Identifier: MIT
// The defenses' building blocks on cases whose answer is known: PCA, k-means
// and the silhouette score (analysis/), the detection metrics and DER
// (backdoor/defense_metrics.hpp), spectral signatures and activation
// clustering on synthetic representations with planted poison, fine-pruning's
// order and stopping rule, ANP's masks.
#include "gradcheck.hpp"

#include <doctest/doctest.h>

#include <eigencnn/analysis/kmeans.hpp>
#include <eigencnn/analysis/pca.hpp>
#include <eigencnn/analysis/silhouette.hpp>
#include <eigencnn/backdoor/defense_metrics.hpp>
#include <eigencnn/backdoor/defenses/activation_clustering.hpp>
#include <eigencnn/backdoor/defenses/anp.hpp>
#include <eigencnn/backdoor/defenses/fine_pruning.hpp>
#include <eigencnn/io/checkpoint.hpp>
#include <eigencnn/optim/adam.hpp>
#include <eigencnn/backdoor/defenses/spectral_signatures.hpp>

#include <cmath>

using namespace eigencnn;

namespace {

// Standard normal by Box-Muller from the portable Rng.
double normal(Rng& rng) {
    const double u = 1 - rng.uniform(), v = rng.uniform();
    return std::sqrt(-2 * std::log(u)) * std::cos(6.283185307179586 * v);
}
Eigen::MatrixXd gaussian(Eigen::Index n, Eigen::Index d, Rng& rng, double sd = 1) {
    Eigen::MatrixXd X(n, d);
    for (Eigen::Index i = 0; i < n; ++i)
        for (Eigen::Index j = 0; j < d; ++j) X(i, j) = sd * normal(rng);
    return X;
}
Eigen::VectorXd unit(Eigen::Index d, Rng& rng) {
    Eigen::VectorXd u(d);
    for (Eigen::Index j = 0; j < d; ++j) u[j] = normal(rng);
    return u.normalized();
}

}  // namespace

TEST_CASE("pca recovers a planted direction; top_singular_vector too") {
    Rng rng(1);
    const Eigen::Index n = 500, d = 20;
    const Eigen::VectorXd u = unit(d, rng);
    Eigen::MatrixXd X = gaussian(n, d, rng, 0.1);
    for (Eigen::Index i = 0; i < n; ++i) X.row(i) += (5 * normal(rng)) * u.transpose() + Eigen::RowVectorXd::Constant(d, 3.0);
    const PcaResult p = pca(X, 3);
    CHECK(std::abs(p.components.row(0).dot(u)) > 0.999);
    CHECK(p.explained_variance[0] > 20);
    CHECK(p.explained_variance[1] < 0.02);
    CHECK(p.mean.mean() == doctest::Approx(3).epsilon(0.1));
    const Eigen::MatrixXd Z = p.project(X);
    CHECK(Z.rows() == n);
    CHECK(Z.cols() == 3);
    CHECK(std::abs(Z.col(0).mean()) < 1e-9);  // centred
    const Eigen::VectorXd v = top_singular_vector(X.rowwise() - X.colwise().mean());
    CHECK(std::abs(v.dot(u)) > 0.999);
    CHECK(v.cwiseAbs().maxCoeff() == doctest::Approx(v.maxCoeff()));  // sign fixed
    CHECK_THROWS_WITH_AS(pca(X, 21), doctest::Contains("components must be in [1, 20]"), std::invalid_argument);
    X(3, 4) = std::nan("");
    CHECK_THROWS_WITH_AS(pca(X, 2), doctest::Contains("NaN"), std::invalid_argument);
}

TEST_CASE("pca with fewer samples than dimensions (through the n x n Gram matrix) agrees with an SVD") {
    Rng rng(11);
    const Eigen::MatrixXd X = gaussian(8, 30, rng);
    const PcaResult p = pca(X, 3);
    const Eigen::MatrixXd Xc = X.rowwise() - X.colwise().mean();
    Eigen::JacobiSVD<Eigen::MatrixXd> svd(Xc, Eigen::ComputeThinV);
    for (Eigen::Index i = 0; i < 3; ++i) {
        CHECK(std::abs(p.components.row(i).dot(svd.matrixV().col(i))) == doctest::Approx(1).epsilon(1e-9));
        CHECK(p.explained_variance[i] == doctest::Approx(svd.singularValues()[i] * svd.singularValues()[i] / 7).epsilon(1e-9));
    }
    CHECK(std::abs(top_singular_vector(Xc).dot(svd.matrixV().col(0))) == doctest::Approx(1).epsilon(1e-9));
}

TEST_CASE("k-means separates two blobs, deterministically") {
    Rng rng(2);
    Eigen::MatrixXd X = gaussian(300, 3, rng);
    X.bottomRows(100).array() += 10;  // 200 around 0, 100 around (10, 10, 10)
    KMeansOptions o;
    o.seed = 7;
    const KMeansResult r = kmeans(X, o);
    const int big = r.labels[0];
    for (int i = 0; i < 200; ++i) CHECK(r.labels[static_cast<std::size_t>(i)] == big);
    for (int i = 200; i < 300; ++i) CHECK(r.labels[static_cast<std::size_t>(i)] != big);
    CHECK(r.sizes[static_cast<std::size_t>(big)] == 200);
    CHECK(r.centers.row(1 - big).mean() == doctest::Approx(10).epsilon(0.05));
    const KMeansResult again = kmeans(X, o);
    CHECK(again.labels == r.labels);
    CHECK(again.inertia == r.inertia);
    o.k = 301;
    CHECK_THROWS_WITH_AS(kmeans(X, o), doctest::Contains("301 clusters for 300 points"), std::invalid_argument);
}

TEST_CASE("silhouette score of hand-made clusters") {
    Eigen::MatrixXd X(4, 1);
    X << 0, 1, 10, 11;
    // s(0) = s(11) = (10.5 - 1) / 10.5, s(1) = s(10) = (9.5 - 1) / 9.5
    const double expected = ((10.5 - 1) / 10.5 + (9.5 - 1) / 9.5) / 2;
    CHECK(silhouette_score(X, {0, 0, 1, 1}) == doctest::Approx(expected).epsilon(1e-12));
    // clusters {0} and {1, 10, 11}: point 0 is alone (s = 0);
    // point 1: a = (9 + 10) / 2 = 9.5, b = 1; point 10: a = (9 + 1) / 2 = 5, b = 10; point 11: a = (10 + 1) / 2 = 5.5, b = 11
    const double want = (0 + (1 - 9.5) / 9.5 + (10 - 5.0) / 10 + (11 - 5.5) / 11) / 4;
    CHECK(silhouette_score(X, {0, 1, 1, 1}) == doctest::Approx(want).epsilon(1e-12));
    CHECK_THROWS_WITH_AS(silhouette_score(X, {0, 0, 0, 0}), doctest::Contains("at least 2 clusters"), std::invalid_argument);
}

TEST_CASE("detection metrics and DER by hand") {
    // 10 samples, poisoned {1, 2, 3, 4}, flagged {2, 3, 7}: TP 2, FP 1, FN 2, TN 5
    const DetectionMetrics m = detection_metrics({2, 3, 7}, {1, 2, 3, 4}, 10);
    CHECK(m.true_positives == 2);
    CHECK(m.false_positives == 1);
    CHECK(m.false_negatives == 2);
    CHECK(m.true_negatives == 5);
    CHECK(m.true_positive_rate == doctest::Approx(0.5));
    CHECK(m.false_positive_rate == doctest::Approx(1.0 / 6));
    CHECK(m.precision == doctest::Approx(2.0 / 3));
    CHECK(m.f1 == doctest::Approx(2 * (2.0 / 3) * 0.5 / (2.0 / 3 + 0.5)));
    const DetectionMetrics none = detection_metrics({}, {}, 5);
    CHECK(none.precision == 0);
    CHECK(none.f1 == 0);
    CHECK_THROWS_WITH_AS(detection_metrics({10}, {}, 10), doctest::Contains("flagged index 10 is not below the 10 samples"), std::invalid_argument);
    CHECK_THROWS_WITH_AS(detection_metrics({}, {1, 1}, 10), doctest::Contains("poisoned index 1 appears twice"), std::invalid_argument);

    AttackMetrics before, after;
    before.clean_accuracy = 0.99, before.attack_success_rate_non_target = 0.98;
    after.clean_accuracy = 0.95, after.attack_success_rate_non_target = 0.08;
    CHECK(defense_effectiveness_rating(before, after) == doctest::Approx((0.90 - 0.04 + 1) / 2));
    after.clean_accuracy = 0.995, after.attack_success_rate_non_target = 0.99;  // no drop of ASR, accuracy up: 0.5
    CHECK(defense_effectiveness_rating(before, after) == doctest::Approx(0.5));
    nlohmann::ordered_json j = defense_effect(before, after);
    CHECK(j["der"].get<double>() == doctest::Approx(0.5));
    CHECK(j["after"]["attack_success_rate_non_target"].get<double>() == doctest::Approx(0.99));
    nlohmann::ordered_json jm = m;
    CHECK(jm["f1"].get<double>() == doctest::Approx(m.f1));
}

TEST_CASE("spectral signatures remove the planted outliers of the poisoned label") {
    Rng rng(3);
    const Eigen::Index d = 30;
    const Eigen::VectorXd u = unit(d, rng);
    // label 0: 950 clean and 50 shifted by 6u (the poison); label 1: 1000 clean
    Eigen::MatrixXd R = gaussian(2000, d, rng);
    R.rowwise() += Eigen::RowVectorXd::Constant(d, 2.0);  // a mean far from 0
    std::vector<int> labels(2000, 1);
    std::vector<std::size_t> poisoned;
    for (std::size_t i = 0; i < 1000; ++i) labels[i] = 0;
    for (std::size_t i = 0; i < 50; ++i) {
        const std::size_t at = 20 * i + 3;
        R.row(static_cast<Eigen::Index>(at)) += 6 * u.transpose();
        poisoned.push_back(at);
    }
    SpectralSignatures p;  // eps 0.05: 75 removed per label
    const SpectralSignaturesResult r = spectral_signatures(R, labels, 2, p);
    CHECK(r.labels[0].removed == 75);
    CHECK(r.labels[1].removed == 75);
    CHECK(r.removed.size() == 150);
    const DetectionMetrics m = detection_metrics(r.removed, poisoned, 2000);
    CHECK(m.true_positives == 50);
    CHECK(m.true_positive_rate == 1.0);
    for (std::size_t i : poisoned) CHECK(r.scores[i] > 2.0);
    p.centred = false;  // the toolkits' uncentred projection: scores differ
    const SpectralSignaturesResult u_r = spectral_signatures(R, labels, 2, p);
    CHECK(u_r.scores != r.scores);
    p.epsilon = 0;
    CHECK_THROWS_WITH_AS(spectral_signatures(R, labels, 2, p), doctest::Contains("epsilon must be in (0, 1]"), std::invalid_argument);
    nlohmann::ordered_json j = r;
    CHECK(j["removed_count"] == 150);
}

TEST_CASE("activation clustering flags the label with a small separate cluster and removes exactly that cluster") {
    Rng rng(4);
    const Eigen::Index d = 40;
    const Eigen::VectorXd u = unit(d, rng), w = unit(d, rng);
    // label 0: 800 clean + 200 poisoned at 8u; label 1: two equal blobs; label 2: one Gaussian
    Eigen::MatrixXd A = gaussian(3000, d, rng);
    std::vector<int> labels(3000);
    std::vector<std::size_t> poisoned;
    for (std::size_t i = 0; i < 3000; ++i) labels[i] = static_cast<int>(i / 1000);
    for (std::size_t i = 0; i < 200; ++i) {
        A.row(static_cast<Eigen::Index>(5 * i)) += 8 * u.transpose();
        poisoned.push_back(5 * i);
    }
    for (Eigen::Index i = 1000; i < 1500; ++i) A.row(i) += 8 * w.transpose();
    ActivationClustering p;
    const ActivationClusteringResult r = activation_clustering(A, labels, 3, p);
    REQUIRE(r.labels.size() == 3);
    CHECK(r.labels[0].flagged);
    CHECK(r.labels[0].smallest_relative_size == doctest::Approx(0.2));
    CHECK(r.labels[0].silhouette > 0.4);
    CHECK_FALSE(r.labels[1].flagged);
    CHECK(r.labels[1].smallest_relative_size == doctest::Approx(0.5));
    CHECK_FALSE(r.labels[2].flagged);
    CHECK(r.labels[2].silhouette < r.labels[1].silhouette);
    CHECK(r.flagged_labels == std::vector<int>{0});
    CHECK(r.removed == poisoned);
    const ActivationClusteringResult again = activation_clustering(A, labels, 3, p);
    CHECK(again.removed == r.removed);
    p.size_threshold = 0.6;
    CHECK_THROWS_WITH_AS(activation_clustering(A, labels, 3, p), doctest::Contains("size_threshold must be in (0, 0.5]"), std::invalid_argument);
}

TEST_CASE("fine-pruning: channels in increasing order of mean activation; stops before the step that costs max_accuracy_drop") {
    CHECK(pruning_order({0.5, 0.1, 0.3, 0.1}) == std::vector<Index>{1, 3, 2, 0});
    // accuracies with k channels pruned: 0.9, 0.9, 0.88, 0.85, 0.80, 0.5; a 10% relative drop is 0.81
    const std::vector<double> acc{0.9, 0.9, 0.88, 0.85, 0.80, 0.5};
    std::vector<double> curve;
    CHECK(prune_count(5, 0.1, [&](std::size_t k) { return acc[k]; }, curve) == 3);
    CHECK(curve == std::vector<double>{0.9, 0.9, 0.88, 0.85, 0.80});
    CHECK(prune_count(5, 0.5, [&](std::size_t k) { return acc[k]; }, curve) == 5);  // never 50% lower: prune all
    const std::vector<double> up{0.5, 0.6, 0.7};
    CHECK(prune_count(2, 0.1, [&](std::size_t k) { return up[k]; }, curve) == 2);   // a rise never stops it

    // on a model: the conv channel that clean data never activate goes first
    Sequential<float> net(3);
    net.emplace<Conv2d>(1, 3, 3).emplace<ReLU>().emplace<Flatten>().emplace<Linear>(3 * 4 * 4, 2);
    auto& conv = static_cast<Conv2d<float>&>(net[0]);
    conv.weight().set_zero();
    conv.bias()[0] = 0.5f, conv.bias()[1] = -1.f, conv.bias()[2] = 2.f;  // mean activations 0.5, 0, 2
    Dataset<float> clean;
    clean.images = Tensor<float>(Shape{4, 1, 6, 6}, 0.5f);
    clean.labels = {0, 1, 0, 1};
    FinePruning p;
    p.epochs = 0;
    const FinePruningResult r = fine_prune(net, clean, p);
    CHECK(r.layer == 0);
    CHECK(r.order == std::vector<Index>{1, 0, 2});
    CHECK(r.mean_activation[2] == doctest::Approx(2));
    CHECK(r.accuracy.size() >= 2);
    CHECK(r.pruned >= 1);  // channel 1 outputs 0 anyway: pruning it changes nothing
    CHECK(conv.output_mask()->weight_factor(1) == 0);
    p.max_accuracy_drop = 0;
    CHECK_THROWS_WITH_AS(fine_prune(net, clean, p), doctest::Contains("max_accuracy_drop must be in (0, 1]"), std::invalid_argument);
}

TEST_CASE("fine-pruning: a fine-tuning that collapses is undone and retried at a tenth of the rate; when every try does, the pruned model stays") {
    // four classes, one bright quadrant each, on an 8x8 image with noise; a small conv net trained to ~100% first
    Rng rng(11);
    Dataset<float> clean;
    clean.images = Tensor<float>(Shape{160, 1, 8, 8});
    for (Index n = 0; n < 160; ++n) {
        const int c = static_cast<int>(n % 4);
        clean.labels.push_back(c);
        for (Index i = 0; i < 8; ++i)
            for (Index j = 0; j < 8; ++j)
                clean.images(n, 0, i, j) = static_cast<float>(0.3 * rng.uniform() + ((i / 4) * 2 + (j / 4) == c ? 0.7 : 0.0));
    }
    const auto trained = [&] {
        Sequential<float> net(4);
        net.emplace<Conv2d>(1, 4, 3).emplace<ReLU>().emplace<Flatten>().emplace<Linear>(4 * 6 * 6, 4);
        Adam<float> adam(net.parameters(), AdamOptions{1e-2});
        DataLoader<float> loader(clean, 20, true, 1);
        FitOptions fo;
        fo.epochs = 15;
        fit(net, adam, loader, fo);
        return net;
    };
    FinePruning p;
    p.epochs = 3;
    p.batch_size = 20;

    Sequential<float> pruned_only = trained();
    REQUIRE(accuracy(predict(pruned_only, clean), clean.labels) > 0.95);
    p.epochs = 0;
    const FinePruningResult prune = fine_prune(pruned_only, clean, p);
    CHECK(prune.fine_tuning_attempts.empty());
    CHECK(prune.pruned_accuracy == prune.accuracy[prune.pruned]);
    CHECK(accuracy(predict(pruned_only, clean), clean.labels) == prune.pruned_accuracy);
    p.epochs = 3;

    SUBCASE("a sane rate: one attempt, kept") {
        Sequential<float> net = trained();
        p.lr = 0.01;
        const FinePruningResult r = fine_prune(net, clean, p);
        REQUIRE(r.fine_tuning_attempts.size() == 1);
        CHECK_FALSE(r.fine_tuning_attempts[0].collapsed);
        CHECK(r.fine_tuning_attempts[0].accuracy_floor == doctest::Approx(0.9 * r.pruned_accuracy));
        CHECK(r.fine_tuning.epochs.size() == 3);
        CHECK_FALSE(r.fine_tuning_undone);
        CHECK(accuracy(predict(net, clean), clean.labels) == r.fine_tuning_attempts[0].clean_accuracy);
    }
    SUBCASE("a rate that diverges: undone, then the rates below it until one holds") {
        Sequential<float> net = trained();
        p.lr = 1e4;
        p.max_restarts = 6;
        const FinePruningResult r = fine_prune(net, clean, p);
        REQUIRE(r.fine_tuning_attempts.size() >= 2);
        CHECK(r.fine_tuning_attempts.front().collapsed);
        CHECK(r.fine_tuning_attempts.front().clean_accuracy < r.fine_tuning_attempts.front().accuracy_floor);
        for (std::size_t i = 0; i + 1 < r.fine_tuning_attempts.size(); ++i) {
            CHECK(r.fine_tuning_attempts[i].collapsed);
            CHECK(r.fine_tuning_attempts[i + 1].lr == doctest::Approx(r.fine_tuning_attempts[i].lr / 10));
        }
        CHECK_FALSE(r.fine_tuning_attempts.back().collapsed);
        CHECK_FALSE(r.fine_tuning_undone);
        CHECK(accuracy(predict(net, clean), clean.labels) == r.fine_tuning_attempts.back().clean_accuracy);
        CHECK(accuracy(predict(net, clean), clean.labels) >= 0.9 * r.pruned_accuracy);
    }
    SUBCASE("every try collapses: the pruned model comes back bitwise") {
        Sequential<float> net = trained();
        p.lr = 1e6;
        p.max_restarts = 1;
        const FinePruningResult r = fine_prune(net, clean, p);
        REQUIRE(r.fine_tuning_attempts.size() == 2);
        CHECK(r.fine_tuning_attempts[0].collapsed);
        CHECK(r.fine_tuning_attempts[1].collapsed);
        CHECK(r.fine_tuning_undone);
        CHECK(r.fine_tuning.epochs.empty());
        CHECK(test::weights_of(net) == test::weights_of(pruned_only));
    }
    SUBCASE("max_restarts 0: the collapse is kept and reported") {
        Sequential<float> net = trained();
        p.lr = 1e6;
        p.max_restarts = 0;
        const FinePruningResult r = fine_prune(net, clean, p);
        REQUIRE(r.fine_tuning_attempts.size() == 1);
        CHECK(r.fine_tuning_attempts[0].collapsed);
        CHECK_FALSE(r.fine_tuning_undone);
        CHECK(r.fine_tuning.epochs.size() == 3);
        CHECK(accuracy(predict(net, clean), clean.labels) < 0.9 * r.pruned_accuracy);
        p.max_restarts = -1;
        CHECK_THROWS_WITH_AS(fine_prune(net, clean, p), doctest::Contains("max_restarts must be >= 0, got -1"), std::invalid_argument);
    }
}

TEST_CASE("ANP: masks stay in [0, 1], the logits layer is left alone, and pruned neurons lose their weights only") {
    Sequential<float> net(5);
    net.emplace<Conv2d>(1, 4, 3).emplace<ReLU>().emplace<Flatten>().emplace<Linear>(4 * 6 * 6, 8).emplace<ReLU>().emplace<Linear>(8, 3);
    Rng rng(6);
    Dataset<float> clean;
    clean.images = Tensor<float>(Shape{40, 1, 8, 8});
    for (Index i = 0; i < clean.images.size(); ++i) clean.images[i] = static_cast<float>(rng.uniform());
    for (int i = 0; i < 40; ++i) clean.labels.push_back(i % 3);
    const Tensor<float> bias3 = static_cast<Linear<float>&>(net[3]).bias();
    Anp p;
    p.iterations = 60;
    p.batch_size = 16;
    p.threshold = 0.9;  // prunes some on this untrained model
    const AnpResult r = anp_prune(net, clean, p);
    REQUIRE(r.layers.size() == 2);  // conv 0 and linear 3; linear 5 gives the logits
    CHECK(r.layers[0].layer == 0);
    CHECK(r.layers[1].layer == 3);
    CHECK(r.neurons == 12);
    std::size_t below = 0;
    for (const auto& l : r.layers)
        for (double m : l.mask) {
            CHECK(m >= 0);
            CHECK(m <= 1);
            below += m < 0.9;
        }
    CHECK(r.pruned == below);
    for (std::size_t i : masked_layers(net)) CHECK_FALSE(net[i].output_mask()->active());  // a plain model again
    auto& lin = static_cast<Linear<float>&>(net[3]);
    for (Index k : r.layers[1].pruned) {
        CHECK(lin.weight().matrix().row(k).cwiseAbs().maxCoeff() == 0);
        CHECK(lin.bias()[k] == bias3[k]);
    }
    CHECK_FALSE(encode_checkpoint(net).empty());
    p.eps = 1.5;
    CHECK_THROWS_WITH_AS(anp_prune(net, clean, p), doctest::Contains("anp: eps must be in [0, 1]"), std::invalid_argument);
}
