// SPDX-License-Identifier: MIT
// The detection defenses on real MNIST (ctest label lab; each case is its own CTest entry of at most about a
// minute): a model trained 2 epochs on 20,000 images of which 10% carry badnets-patch (target 0), as
// run_detection_cell trains it; STRIP's FAR at FRR 1%, Neural Cleanse's flag on the target and its unlearning,
// and Neural Cleanse on the clean model (same weights and batches, poison rate 0).
// The data folder: $EIGENCNN_MNIST_DIR, else data/mnist in the source tree; without it the cases are skipped
// (exit 77) unless $EIGENCNN_REQUIRE_MNIST is set.
#include <doctest/doctest.h>
#include <eigencnn/eigencnn.hpp>
#include <eigencnn/lab/detect.hpp>

#include <cstdlib>

using namespace eigencnn;

namespace {

std::pair<Dataset<float>, Dataset<float>> mnist_or_skip() {
    const char* env = std::getenv("EIGENCNN_MNIST_DIR");
    const std::string dir = env ? env : EIGENCNN_SOURCE_DIR "/data/mnist";
    try {
        return {load_mnist<float>(dir, Split::Train).head(20000), load_mnist<float>(dir, Split::Test)};
    } catch (const IdxError& e) {
        if (std::getenv("EIGENCNN_REQUIRE_MNIST")) FAIL("MNIST is required but cannot be loaded: " << e.what());
        MESSAGE("skipping: " << e.what() << " (run scripts/fetch_mnist.sh)");
        std::exit(77);
    }
}

LabSettings two_epochs() {
    LabSettings s;
    s.epochs = 2;
    s.batch_size = 100;
    return s;
}

AttackSpec patch(double rate) {
    AttackOptions o;
    o.poison_rate = rate;
    return make_attack("badnets-patch", o);
}

}  // namespace

TEST_CASE("STRIP detects badnets-patch on MNIST: FAR <= 2% at FRR 1%") {
    const auto [train, test] = mnist_or_skip();
    DetectionSettings d;
    d.neural_cleanse = false;
    const DetectionCellResult r = run_detection_cell(train, test, two_epochs(), patch(0.1), 0, d);
    REQUIRE(r.strip);
    const StripResult& s = r.strip->strip;
    MESSAGE("model: C-Acc " << r.cell.backdoored.metrics.clean_accuracy << ", ASR (non-target) " << r.cell.backdoored.metrics.attack_success_rate_non_target);
    MESSAGE("STRIP: " << r.strip->clean_inputs << " clean and " << r.strip->triggered_inputs << " triggered inputs x " << s.overlays
                      << " overlays in " << s.seconds << " s; clean entropy " << s.clean_entropy.mean << " +- " << s.clean_entropy.std
                      << ", triggered " << s.triggered_entropy->mean << " +- " << s.triggered_entropy->std << "; AUC " << *s.roc_auc);
    for (const auto& p : s.operating_points)
        MESSAGE("  preset FRR " << p.preset_false_rejection_rate << ": threshold " << p.threshold << ", FRR " << p.false_rejection_rate << ", FAR "
                                << *p.false_acceptance_rate);
    CHECK(r.cell.backdoored.metrics.attack_success_rate_non_target > 0.9);
    CHECK(r.strip->clean_inputs == 2000);
    CHECK(r.strip->triggered_inputs > 1700);  // the non-target ones of the 2,000
    CHECK(*s.operating_points[0].false_acceptance_rate <= 0.02);
    CHECK(s.operating_points[0].false_rejection_rate <= 0.03);
    CHECK(*s.roc_auc > 0.98);
}

TEST_CASE("Neural Cleanse flags badnets-patch's target on MNIST and unlearning removes the backdoor") {
    const auto [train, test] = mnist_or_skip();
    DetectionSettings d;
    d.strip = false;
    const DetectionCellResult r = run_detection_cell(train, test, two_epochs(), patch(0.1), 0, d);
    REQUIRE(r.neural_cleanse);
    const NeuralCleanseDefenseResult& n = *r.neural_cleanse;
    std::string line;
    for (std::size_t i = 0; i < n.detection.l1_norms.size(); ++i)
        line += " " + std::to_string(i) + ": " + std::to_string(n.detection.l1_norms[i]) + " (" + std::to_string(n.detection.anomaly_index[i]) + ")";
    MESSAGE("L1 (anomaly index):" << line << "; " << n.detection.seconds << " s for all labels");
    MESSAGE("before: C-Acc " << n.before->clean_accuracy << ", ASR " << n.before->attack_success_rate_non_target << "; after unlearning: C-Acc "
                             << n.after->clean_accuracy << ", ASR " << n.after->attack_success_rate_non_target);
    CHECK(n.true_target == 0);
    CHECK(n.true_target_flagged);
    CHECK(n.detection.flagged_labels.front() == 0);
    REQUIRE(n.unlearning);
    CHECK(n.before->attack_success_rate_non_target > 0.9);
    CHECK(n.after->attack_success_rate_non_target < 0.2);
    CHECK(n.after->clean_accuracy > n.before->clean_accuracy - 0.02);
}

TEST_CASE("Neural Cleanse flags no label of a clean MNIST model") {
    const auto [train, test] = mnist_or_skip();
    DetectionSettings d;
    d.strip = false;
    const DetectionCellResult r = run_detection_cell(train, test, two_epochs(), patch(0.0), 0, d);
    const NeuralCleanseDefenseResult& n = *r.neural_cleanse;
    std::string line;
    for (std::size_t i = 0; i < n.detection.l1_norms.size(); ++i)
        line += " " + std::to_string(i) + ": " + std::to_string(n.detection.l1_norms[i]) + " (" + std::to_string(n.detection.anomaly_index[i]) + ")";
    MESSAGE("clean model: C-Acc " << n.before->clean_accuracy << "; L1 (anomaly index):" << line << "; " << n.detection.seconds << " s");
    CHECK(n.detection.flagged_labels.empty());
    CHECK_FALSE(n.unlearning);
    CHECK(n.after->clean_accuracy == n.before->clean_accuracy);
}
