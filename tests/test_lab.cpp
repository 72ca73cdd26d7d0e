// SPDX-License-Identifier: MIT
// The laboratory's library side (lab/): run_attack_cell's determinism and
// validation, the proxy's input gradient, the result JSON round trip, and a
// sweep that resumes from the cells it wrote, on small synthetic data.
#include <doctest/doctest.h>
#include <eigencnn/eigencnn.hpp>
#include <eigencnn/lab/cell.hpp>
#include <eigencnn/lab/json.hpp>
#include <eigencnn/lab/matrix_plot.hpp>
#include <eigencnn/lab/plot.hpp>
#include <eigencnn/lab/sweep.hpp>

#include <cstdio>
#include <fstream>
#include <unistd.h>

#include "synthetic_blocks.hpp"

using namespace eigencnn;

namespace {

using eigencnn_test::blocks;

LabSettings quick() {
    LabSettings s;
    s.epochs = 1;
    s.batch_size = 50;
    s.eval_batch_size = 64;
    return s;
}

AttackSpec quick_attack(const std::string& name) {
    AttackSpec a = make_attack(name);
    if (auto* lc = a.get<LabelConsistent>()) lc->pgd.steps = 3;
    return a;
}

/// A folder under /tmp, removed with its files at the end of the test.
struct TempDir {
    std::string path;
    TempDir() {
        char tmpl[] = "/tmp/eigencnn_lab_XXXXXX";
        path = ::mkdtemp(tmpl);
    }
    ~TempDir() { std::system(("rm -rf '" + path + "'").c_str()); }
};

/// Counts the cells a sweep actually runs (each poisons once).
struct CountingObserver : SweepObserver {
    int cells_run = 0, cells_seen = 0;
    void on_poisoned(const Dataset<float>&, const Dataset<float>&, const PoisonResult&) override { ++cells_run; }
    void on_cell_end(std::size_t, std::size_t, const AttackCellResult&, bool, const std::string&) override { ++cells_seen; }
};

}  // namespace

TEST_CASE("run_attack_cell: the same seed gives the same result apart from timings, for every attack; another seed differs") {
    const Dataset<float> train = blocks(300, 1), test = blocks(100, 2);
    for (const auto& name : attack_names()) {
        CAPTURE(name);
        const AttackSpec a = quick_attack(name);
        const auto r1 = nlohmann::ordered_json(run_attack_cell(train, test, quick(), a, 5));
        const auto r2 = nlohmann::ordered_json(run_attack_cell(train, test, quick(), a, 5));
        const auto r3 = nlohmann::ordered_json(run_attack_cell(train, test, quick(), a, 6));
        CHECK(r1.contains("epoch_seconds"));
        CHECK(without_timings(r1) == without_timings(r2));
        CHECK_FALSE(without_timings(r1).contains("epoch_seconds"));
        CHECK(without_timings(r1)["epoch_loss"] != without_timings(r3)["epoch_loss"]);
        CHECK(r1.at("clean_accuracy").get<double>() >= 0);
    }
}

TEST_CASE("run_attack_cell: what it reports (poisoned counts, clean baseline, PGD) and what it refuses before training") {
    const Dataset<float> train = blocks(300, 1), test = blocks(100, 2);
    LabSettings s = quick();
    s.clean_baseline = true;
    const AttackCellResult patch = run_attack_cell(train, test, s, make_attack("badnets-patch"), 0);
    CHECK(patch.poisoned_images == 30);
    CHECK(patch.clean_model.has_value());
    CHECK_FALSE(patch.pgd.has_value());
    CHECK(patch.backdoored.epoch_seconds.size() == 1);
    CHECK(patch.backdoored.metrics.triggered_count == 100);
    CHECK(patch.backdoored.metrics.non_target_count == 90);

    const AttackCellResult wanet = run_attack_cell(train, test, quick(), make_attack("wanet"), 0);
    CHECK(wanet.per_batch_poisoning);
    CHECK(wanet.poisoned_images == 6 * 5);  // int(50 * 0.1) per batch, 6 batches

    const AttackCellResult lc = run_attack_cell(train, test, quick(), quick_attack("label-consistent"), 0);
    REQUIRE(lc.pgd.has_value());
    CHECK(lc.pgd->final_loss > lc.pgd->initial_loss);  // the proxy's input gradient drives PGD uphill
    CHECK(lc.clean_model.has_value());                 // the proxy is the clean baseline
    CHECK(lc.poisoned_images == 15);                   // half of the 30 target-class images

    Dataset<float> big;
    big.images = Tensor<float>(Shape{10, 1, 32, 32});
    big.labels.assign(10, 0);
    CHECK_THROWS_WITH_AS(run_attack_cell(big, test, quick(), make_attack("sig"), 0),
                         doctest::Contains("takes images [N, 1, 28, 28]; the training set has [10, 1, 32, 32]"), std::invalid_argument);
    AttackSpec huge = make_attack("badnets-patch");
    huge.get<BadNetsPatch>()->patch_size = 29;
    CHECK_THROWS_WITH_AS(run_attack_cell(train, test, quick(), huge, 0), doctest::Contains("larger than the images"), std::invalid_argument);
    LabSettings bad = quick();
    bad.lr = -1;
    CHECK_THROWS_WITH_AS(run_attack_cell(train, test, bad, make_attack("sig"), 0), doctest::Contains("lr must be a positive number"),
                         std::invalid_argument);
}

TEST_CASE("input_gradient_fn: dloss/dx by backward_input in eval mode matches finite differences; the model's mode comes back") {
    auto model = mnist_cnn<double>(3);
    Tensor<double> x(Shape{2, 1, 28, 28});
    Rng rng(4);
    for (Index i = 0; i < x.size(); ++i) x[i] = rng.uniform();
    const std::vector<int> y{3, 7};
    const InputGradientFn<double> grad_fn = input_gradient_fn(model);
    Tensor<double> g;
    const double loss = grad_fn(x, y, g);
    CHECK(model.is_training());
    REQUIRE(g.shape() == x.shape());
    for (Index k : {Index{100}, Index{407}, Index{784 + 350}}) {
        Tensor<double> xp = x, xm = x, unused;
        xp[k] += 1e-5, xm[k] -= 1e-5;
        const double numeric = (grad_fn(xp, y, unused) - grad_fn(xm, y, unused)) / 2e-5;
        CHECK(g[k] == doctest::Approx(numeric).epsilon(1e-4).scale(1e-6));
    }
    CHECK(loss > 0);
}

TEST_CASE("AttackCellResult JSON: every member round-trips, attack parameters included") {
    const Dataset<float> train = blocks(200, 1), test = blocks(60, 2);
    AttackSpec a = make_attack("badnets-patch", AttackOptions{0.2, LabelMode::all_to_all(10)});
    auto* p = a.get<BadNetsPatch>();
    p->pattern = PatchPattern::Checkerboard, p->corner = ImageCorner::TopLeft, p->margin = 2, p->patch_size = 4;
    LabSettings s = quick();
    s.clean_baseline = true;
    const AttackCellResult r = run_attack_cell(train, test, s, a, 9);
    const nlohmann::ordered_json j = r;
    for (const char* key : {"clean_accuracy", "attack_success_rate", "attack_success_rate_non_target", "robust_accuracy", "poisoned_images",
                            "epoch_seconds"})
        CHECK(j.contains(key));
    const AttackCellResult back = nlohmann::ordered_json::parse(j.dump()).get<AttackCellResult>();
    CHECK(nlohmann::ordered_json(back) == j);
    REQUIRE(back.attack.get<BadNetsPatch>());
    CHECK(back.attack.get<BadNetsPatch>()->corner == ImageCorner::TopLeft);
    CHECK(back.attack.label_mode().all_to_all_mode());

    for (const auto& name : attack_names()) {  // every attack's parameters
        CAPTURE(name);
        const nlohmann::json spec = make_attack(name);
        CHECK(nlohmann::json(spec.get<AttackSpec>()) == spec);
    }
    nlohmann::json unknown = make_attack("sig");
    unknown["name"] = "nope";
    CHECK_THROWS_WITH(unknown.get<AttackSpec>(), doctest::Contains("unknown attack 'nope'"));
}

TEST_CASE("run_sweep writes every cell, resumes by reading them, reruns a missing one, refuses cells of other settings") {
    const Dataset<float> train = blocks(200, 1), test = blocks(60, 2);
    TempDir dir;
    SweepSettings sw;
    sw.poison_rates = {0.05, 0.2};
    sw.seeds = 2;
    sw.output_dir = dir.path + "/sweep";
    const AttackSpec attack = make_attack("badnets-patch");

    CountingObserver first;
    const SweepResult r1 = run_sweep(train, test, quick(), attack, sw, &first);
    CHECK(first.cells_run == 4);
    REQUIRE(r1.cells.size() == 4);
    REQUIRE(r1.points.size() == 2);
    CHECK(r1.points[1].poison_rate == 0.2);
    CHECK(r1.points[1].attack_success_rate.min <= r1.points[1].attack_success_rate.mean);
    CHECK(std::ifstream(sweep_cell_file(sw.output_dir, 0.2, 1)).good());

    sw.resume = true;
    CountingObserver resumed;
    const SweepResult r2 = run_sweep(train, test, quick(), attack, sw, &resumed);
    CHECK(resumed.cells_run == 0);
    CHECK(resumed.cells_seen == 4);
    CHECK(r2.cells_resumed == 4);
    CHECK(sweep_json(r2)["cells"] == sweep_json(r1)["cells"]);

    std::remove(sweep_cell_file(sw.output_dir, 0.05, 1).c_str());
    CountingObserver one_missing;
    const SweepResult r3 = run_sweep(train, test, quick(), attack, sw, &one_missing);
    CHECK(one_missing.cells_run == 1);
    CHECK(without_timings(sweep_json(r3)["cells"][1]) == without_timings(sweep_json(r1)["cells"][1]));

    LabSettings two_epochs = quick();
    two_epochs.epochs = 2;
    CHECK_THROWS_WITH_AS(run_sweep(train, test, two_epochs, attack, sw), doctest::Contains("cannot resume: written with settings"),
                         std::runtime_error);
    CHECK_THROWS_WITH_AS(run_sweep(blocks(200, 3), test, quick(), attack, sw), doctest::Contains("data_fingerprint"), std::runtime_error);

    const std::string csv = sweep_csv(r1);
    CHECK(std::count(csv.begin(), csv.end(), '\n') == 5);
    CHECK(csv.rfind("attack,poison_rate,seed,clean_accuracy", 0) == 0);

    // Rate 0 alone (a clean model): nothing for the log axis, refused before gnuplot starts, and no file written.
    std::vector<SweepPoint> only_zero(1);
    CHECK_FALSE(sweep_has_plot(only_zero));
    CHECK(sweep_has_plot(r1.points));
    CHECK_THROWS_WITH_AS(plot_sweep_png(dir.path + "/zero.png", only_zero, "clean"), doctest::Contains("zero.png: no poison rate above 0"),
                         std::invalid_argument);
    CHECK_FALSE(std::ifstream(dir.path + "/zero.png").good());
    if (gnuplot_available()) {
        const std::string png = dir.path + "/plot.png";
        plot_sweep_png(png, r1.points, "test");
        std::ifstream f(png, std::ios::binary);
        char magic[4] = {};
        f.read(magic, 4);
        CHECK(std::string(magic + 1, 3) == "PNG");
    }
    std::ofstream(dir.path + "/file") << "x";
    sw.output_dir = dir.path + "/file";
    CHECK_THROWS_WITH_AS(run_sweep(train, test, quick(), attack, sw), doctest::Contains("exists and is not a folder"), std::runtime_error);
}

/// Counts the models a matrix trains and the entries it reports.
struct CountingMatrixObserver : MatrixObserver {
    int models_trained = 0, entries = 0;
    void on_trained(Sequential<float>&) override { ++models_trained; }
    void on_entry(const MatrixEntry&, const std::string&) override { ++entries; }
};

std::string read_text(const std::string& path) {
    std::ifstream f(path);
    return std::string(std::istreambuf_iterator<char>(f), {});
}

TEST_CASE("run_matrix: one model per (attack, rate, seed) shared by the defenses, n/a recorded, resumes, refuses other settings") {
    const Dataset<float> train = blocks(300, 1), test = blocks(100, 2);
    TempDir dir;
    MatrixSettings m;
    m.attacks = {"badnets-patch", "wanet"};
    m.defenses = {"spectral-signatures", "fine-pruning"};
    m.poison_rates = {0.1};
    m.output_dir = dir.path + "/matrix";
    m.defense.clean_share = 0.3;  // 90 clean images for fine-pruning on this small set

    CountingMatrixObserver first;
    const MatrixResult r1 = run_matrix(train, test, quick(), m, &first);
    CHECK(first.models_trained == 2);  // not 4: the two defenses share each model
    CHECK(first.entries == 4);
    REQUIRE(r1.entries.size() == 4);
    CHECK(r1.models_trained == 2);
    // WaNet poisons per batch: no training set to filter, so spectral signatures is n/a, fine-pruning runs.
    CHECK(r1.entries[0].not_applicable.empty());
    CHECK(r1.entries[0].detection_f1.has_value());
    CHECK(r1.entries[2].attack == "wanet");
    CHECK(r1.entries[2].not_applicable.find("per batch") != std::string::npos);
    CHECK(r1.entries[3].not_applicable.empty());
    CHECK_FALSE(r1.entries[3].detection_f1.has_value());
    for (const auto& e : r1.entries) CHECK(e.before.clean_accuracy == r1.entries[e.attack == "wanet" ? 2 : 0].before.clean_accuracy);
    REQUIRE(r1.summary.size() == 4);
    CHECK(r1.summary[2].applicable == 0);
    CHECK(r1.summary[1].der.mean == doctest::Approx(r1.entries[1].der));
    const std::string md = matrix_markdown(r1), csv = matrix_csv(r1);
    CHECK(md.find("| wanet |") != std::string::npos);
    CHECK(md.find("n/a") != std::string::npos);
    CHECK(std::count(csv.begin(), csv.end(), '\n') == 5);  // header + 4 entries
    CHECK(csv.find("wanet,0.1,0,spectral-signatures,0,") != std::string::npos);

    // The heatmap script places every square and marks the n/a one.
    const std::string script = matrix_heatmap_script("x.png", r1, MatrixMetric::AsrAfter, "t");
    CHECK(script.find("$missing << EOD\n0 1\nEOD") != std::string::npos);
    CHECK(script.find("\"wanet @ 0.1\" 1") != std::string::npos);

    m.resume = true;
    CountingMatrixObserver resumed;
    const MatrixResult r2 = run_matrix(train, test, quick(), m, &resumed);
    CHECK(resumed.models_trained == 0);
    CHECK(r2.entries_resumed == 4);
    CHECK(matrix_csv(r2) == csv);

    // One entry gone: its model is trained again (deterministic), the other entry is read.
    std::remove((m.output_dir + "/cells/badnets-patch_rate-0.1_seed-0/fine-pruning.json").c_str());
    CountingMatrixObserver one_missing;
    const MatrixResult r3 = run_matrix(train, test, quick(), m, &one_missing);
    CHECK(one_missing.models_trained == 1);
    CHECK(r3.entries_resumed == 3);
    CHECK(r3.entries[1].after.clean_accuracy == r1.entries[1].after.clean_accuracy);

    LabSettings other = quick();
    other.lr = 2e-3;
    CHECK_THROWS_WITH_AS(run_matrix(train, test, other, m), doctest::Contains("cannot resume: written with settings"), std::runtime_error);
    m.defense.clean_share = 0.4;
    CHECK_THROWS_WITH_AS(run_matrix(train, test, quick(), m), doctest::Contains("clean_share"), std::runtime_error);
}

TEST_CASE("MatrixSettings::validate names the bad setting before anything runs") {
    MatrixSettings m;
    m.output_dir = "/tmp/unused";
    CHECK_NOTHROW(m.validate());
    m.attacks = {"badnets-patch", "nope"};
    CHECK_THROWS_WITH_AS(m.validate(), doctest::Contains("unknown attack 'nope'"), std::invalid_argument);
    m.attacks = {"sig", "sig"};
    CHECK_THROWS_WITH_AS(m.validate(), "matrix: attacks 'sig' is listed twice", std::invalid_argument);
    m.attacks = {"sig"};
    m.defenses = {"strip-it"};
    CHECK_THROWS_WITH_AS(m.validate(), doctest::Contains("unknown defense 'strip-it'; valid names: "), std::invalid_argument);
    m.defenses = {"fine-pruning"};
    m.poison_rates = {0.1, 1.5};
    CHECK_THROWS_WITH_AS(m.validate(), "matrix: poison rate 1.5 is outside [0, 1]", std::invalid_argument);
    m.poison_rates = {0.1};
    m.seeds = 0;
    CHECK_THROWS_WITH_AS(m.validate(), "matrix: seeds must be >= 1, got 0", std::invalid_argument);
    m.seeds = 1;
    m.output_dir.clear();
    CHECK_THROWS_WITH_AS(m.validate(), "matrix: output_dir is empty", std::invalid_argument);
}

TEST_CASE("the defense table runs STRIP (an input filter: before/after on its inputs) and Neural Cleanse (detect, unlearn)") {
    const Dataset<float> train = blocks(300, 1), test = blocks(100, 2);
    DefenseSettings ds;
    ds.clean_share = 0.3;
    const PoisonedCell cell = train_poisoned_cell(train, test, quick(), make_attack("badnets-patch"), 3, ds);

    DefenseSpec strip = make_defense("strip");
    strip.get<StripDefense>()->settings.strip.overlays = 10;
    const DefenseRun s = run_defense(cell, test, strip);
    REQUIRE(s.input_filter.has_value());
    const nlohmann::ordered_json sj = s;
    CHECK(sj["input_filter"] == true);
    CHECK(sj["details"]["clean_inputs"] == 100);
    CHECK(sj["details"]["overlay_images"] == 90);  // the defender's clean data, not the test set
    // Rejecting inputs can only lower both rates: a rejected input is neither correct nor the attacker's.
    CHECK(s.effect.after.clean_accuracy <= s.effect.before.clean_accuracy);
    CHECK(s.effect.after.attack_success_rate_non_target <= s.effect.before.attack_success_rate_non_target);
    CHECK(s.effect.before.clean_count == 100);
    // The measured FRR at the first operating point is the clean inputs STRIP rejected: C-Acc falls by at most that.
    const double frr = sj["details"]["operating_points"][0]["false_rejection_rate"].get<double>();
    CHECK(s.effect.before.clean_accuracy - s.effect.after.clean_accuracy <= frr + 1e-12);

    DefenseSpec nc = make_defense("neural-cleanse");
    nc.get<NeuralCleanseDefense>()->settings.neural_cleanse.max_epochs = 2;
    nc.get<NeuralCleanseDefense>()->settings.clean_images = 64;
    const DefenseRun n = run_defense(cell, test, nc);
    CHECK_FALSE(n.input_filter.has_value());
    const nlohmann::ordered_json nj = n;
    CHECK(nj["details"]["anomaly_index"].size() == 10);
    CHECK(nj["details"]["true_target"] == 0);
    CHECK(nj["parameters"]["options"]["max_epochs"] == 2);
    CHECK(n.effect.before.clean_accuracy == cell.result.backdoored.metrics.clean_accuracy);
}
