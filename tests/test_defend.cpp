// SPDX-License-Identifier: MIT
// lab/defend.hpp on small synthetic data: one poisoned cell serves every
// defense of the table without being changed (what a matrix needs), runs are
// deterministic, the report JSON has its members, and bad input is refused.
#include <doctest/doctest.h>
#include <eigencnn/eigencnn.hpp>
#include <eigencnn/lab/defend.hpp>
#include <eigencnn/lab/json.hpp>

#include "synthetic_blocks.hpp"

#include <algorithm>
#include <string>
#include <vector>

using namespace eigencnn;

namespace {

using eigencnn_test::blocks;

DefenseSpec quick_defense(const std::string& name) {
    DefenseSpec d = make_defense(name);
    if (auto* f = d.get<FinePruning>()) f->epochs = 1;
    if (auto* a = d.get<Anp>()) a->iterations = 20, a->batch_size = 32;
    if (auto* s = d.get<StripDefense>()) s->settings.strip.overlays = 10;
    if (auto* n = d.get<NeuralCleanseDefense>()) n->settings.neural_cleanse.max_epochs = 3, n->settings.clean_images = 64;
    return d;
}

/// `j` without its timings: every member, at any depth, whose name ends in "seconds".
void erase_timings(nlohmann::ordered_json& j) {
    if (j.is_array())
        for (auto& e : j) erase_timings(e);
    if (!j.is_object()) return;
    std::vector<std::string> timed;
    for (auto& [k, v] : j.items()) {
        if (k.size() >= 7 && k.compare(k.size() - 7, 7, "seconds") == 0) timed.push_back(k);
        else erase_timings(v);
    }
    for (const auto& k : timed) j.erase(k);
}

/// The badnets-patch cell both tests below defend: 600 synthetic images, 5% poisoned, 2 epochs, a 20% clean share.
PoisonedCell patch_cell(const Dataset<float>& train, const Dataset<float>& test) {
    LabSettings s;
    s.epochs = 2;
    s.batch_size = 50;
    s.eval_batch_size = 64;
    DefenseSettings ds;
    ds.clean_share = 0.2;
    return train_poisoned_cell(train, test, s, make_attack("badnets-patch", AttackOptions{0.05, {}}), 3, ds);
}

}  // namespace

TEST_CASE("one poisoned cell serves every defense of the table, unchanged, and each run is deterministic") {
    const Dataset<float> train = blocks(600, 1), test = blocks(200, 2);
    const PoisonedCell cell = patch_cell(train, test);
    CHECK(cell.clean_data.size() == 120);
    CHECK(cell.poison.poisoned_indices.size() == 30);
    const std::string bytes = cell.model_bytes;
    CHECK(defense_names() ==
          std::vector<std::string>{"spectral-signatures", "activation-clustering", "fine-pruning", "anp", "strip", "neural-cleanse"});
    for (const auto& name : defense_names()) {
        CAPTURE(name);
        const DefenseSpec d = quick_defense(name);
        const DefenseRun r = run_defense(cell, test, d);
        CHECK(cell.model_bytes == bytes);  // the cell's model is untouched
        CHECK(r.defense == name);
        if (name != "strip")  // STRIP measures before/after on its own inputs (here all 200 test images, so equal too)
            CHECK(r.effect.before.clean_accuracy == cell.result.backdoored.metrics.clean_accuracy);
        CHECK(r.effect.der >= 0);
        CHECK(r.effect.der <= 1);
        const bool filtering = name == "spectral-signatures" || name == "activation-clustering";
        CHECK(r.detection.has_value() == filtering);
        if (filtering) CHECK(r.retrained_on + r.detection->flagged == 600);
        nlohmann::ordered_json j = r;
        for (const char* key : {"defense", "parameters", "details", "detection", "before", "after", "der", "seconds"}) CHECK(j.contains(key));
        if (name == "strip") CHECK(j["details"]["seconds"].get<double>() > 0);  // the entropies' time, as run_strip reports it
        const DefenseRun again = run_defense(cell, test, d);
        nlohmann::ordered_json k = again;
        erase_timings(j), erase_timings(k);
        CHECK(j == k);
    }
}

TEST_CASE("defense input is checked") {
    CHECK_THROWS_WITH_AS(make_defense("nope"), doctest::Contains("unknown defense 'nope'; valid names: spectral-signatures"), std::invalid_argument);
    DefenseSpec d = make_defense("spectral-signatures");
    d.get<SpectralSignatures>()->epsilon = 2;
    CHECK_THROWS_WITH_AS(d.validate(), doctest::Contains("epsilon must be in (0, 1]"), std::invalid_argument);
    DefenseSettings ds;
    ds.clean_share = 0;
    CHECK_THROWS_WITH_AS(ds.validate(), doctest::Contains("clean_share must be in (0, 1]"), std::invalid_argument);
    PoisonedCell empty;
    CHECK_THROWS_WITH_AS(run_defense(empty, Dataset<float>{}, make_defense("anp")), doctest::Contains("holds no trained model"), std::invalid_argument);
}

TEST_CASE("the observer hears fine-pruning's notes: a collapsed fine-tuning undone and retried, then given up") {
    const Dataset<float> train = blocks(600, 1), test = blocks(200, 2);
    const PoisonedCell cell = patch_cell(train, test);
    struct Notes : DefenseObserver {
        std::vector<std::string> notes;
        void on_defense_note(const std::string& note) override { notes.push_back(note); }
    } observer;
    DefenseSpec d = make_defense("fine-pruning");
    FinePruning& fp = *d.get<FinePruning>();
    fp.epochs = 1;
    fp.lr = 1e6;  // SGD diverges at any such rate, and at a tenth of it
    fp.max_restarts = 1;
    const DefenseRun r = run_defense(cell, test, d, &observer);
    REQUIRE(r.details.contains("fine_tuning_attempts"));
    CHECK(r.details["fine_tuning_attempts"].size() == 2);
    CHECK(r.details["fine_tuning_undone"] == true);
    const auto heard = [&](const std::string& a, const std::string& b) {
        return std::any_of(observer.notes.begin(), observer.notes.end(),
                           [&](const std::string& n) { return n.find(a) != std::string::npos && n.find(b) != std::string::npos; });
    };
    CAPTURE(observer.notes.size());
    CHECK(heard("fine-tuning at lr 1e+06 collapsed", "undone, trying lr 100000"));
    CHECK(heard("fine-tuning at lr 100000 collapsed", "every try collapsed, so the pruned model is kept without fine-tuning"));
}
