// SPDX-License-Identifier: MIT
// examples/lab_matrix.hpp: backdoor_lab's `matrix` subcommand, a thin layer over lab/matrix.hpp.
//
//   backdoor_lab matrix --attacks badnets-patch,blended --defenses spectral-signatures,fine-pruning
//                       --poison-rates 0.01,0.1 --seeds 3 --data data/mnist --output-dir out/matrix [--resume]
//
// Writes output-dir/matrix.json, matrix.csv, matrix.md and the heatmaps (heatmap_asr_after.png,
// heatmap_der.png, heatmap_detection_f1.png; skipped with a message when gnuplot is missing), the
// per-entry files in output-dir/cells/, and --report (a copy of matrix.json) when given.
#pragma once

#include "lab_flags.hpp"

#include <eigencnn/lab/matrix_plot.hpp>

#include <chrono>
#include <memory>

namespace lab_program {

struct MatrixFlags {
    RunFlags run;
    MatrixSettings matrix;
};

inline CLI::App* add_matrix_command(CLI::App& app, MatrixFlags& f) {
    CLI::App* m = app.add_subcommand("matrix", "attacks x defenses x poison rates x seeds: one poisoned model per cell shared by the defenses; "
                                               "JSON, CSV, Markdown and heatmaps");
    add_run_flags(m, f.run, true);
    m->add_option("--output-dir", f.run.output_dir, "folder for cells/, matrix.json, matrix.csv, matrix.md and the heatmaps (created if missing)")
        ->required();
    m->add_option("--attacks", f.matrix.attacks, "comma-separated attacks (each with its defaults)")->delimiter(',')->capture_default_str();
    m->add_option("--defenses", f.matrix.defenses, "comma-separated defenses (each with its defaults)")->delimiter(',')->capture_default_str();
    m->add_option("--poison-rates", f.matrix.poison_rates, "comma-separated poison rates")->delimiter(',')->check(unit_interval())->capture_default_str();
    m->add_option("--seeds", f.matrix.seeds, "seeds per cell: --seed, --seed + 1, ...")->check(example::integer_at_least(1))->capture_default_str();
    m->add_option("--clean-share", f.matrix.defense.clean_share, "share of the clean training set the defender holds")
        ->check(unit_interval())
        ->capture_default_str();
    m->add_flag("--resume", f.matrix.resume, "read the entries already in output-dir/cells (same settings) instead of running them");
    return m;
}

/// One line per model and per defense, the training's progress bar, a defense's stages.
class MatrixTerminal : public MatrixObserver {
public:
    std::vector<Callback*> training_callbacks(const std::string& model_name) override {
        logger_ = std::make_unique<EpochLogger>(stdout, "  " + model_name);
        return {&bar_, logger_.get()};
    }
    void on_model_begin(std::size_t index, std::size_t total, const std::string& attack, double rate, std::uint64_t seed, bool resumed) override {
        const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
        const std::string left = index ? format_duration(elapsed / static_cast<double>(index) * static_cast<double>(total - index)) : "?";
        std::printf("\n[model %zu/%zu] %s, poison rate %s, seed %llu%s  (elapsed %s, time left about %s)\n", index + 1, total, attack.c_str(),
                    exact_decimal(rate).c_str(), static_cast<unsigned long long>(seed), resumed ? ": every defense resumed" : "",
                    format_duration(elapsed).c_str(), left.c_str());
        std::fflush(stdout);
    }
    void on_defense_progress(const std::string& stage, std::size_t done, std::size_t total, double value) override {
        if (done == total || done % std::max<std::size_t>(1, total / 5) == 0) std::printf("    %s %zu/%zu (%.4f)\n", stage.c_str(), done, total, value);
        std::fflush(stdout);
    }
    void on_defense_note(const std::string& note) override {
        std::printf("    note: %s\n", note.c_str());
        std::fflush(stdout);
    }
    void on_entry(const MatrixEntry& e, const std::string& file) override {
        if (!e.not_applicable.empty()) {
            std::printf("  %-22s n/a: %s\n", e.defense.c_str(), e.not_applicable.c_str());
        } else {
            std::printf("  %-22s ASR %6.2f%% -> %6.2f%%  C-Acc %6.2f%% -> %6.2f%%  DER %.3f", e.defense.c_str(),
                        100 * e.before.attack_success_rate_non_target, 100 * e.after.attack_success_rate_non_target, 100 * e.before.clean_accuracy,
                        100 * e.after.clean_accuracy, e.der);
            if (e.detection_f1) std::printf("  F1 %.3f", *e.detection_f1);
            std::printf("  %s %.1f s -> %s\n", e.resumed ? "resumed" : "took", e.seconds, file.c_str());
        }
        std::fflush(stdout);
    }

private:
    ProgressBar bar_{stderr};
    std::unique_ptr<EpochLogger> logger_;
    std::chrono::steady_clock::time_point start_ = std::chrono::steady_clock::now();
};

inline int run_matrix_command(MatrixFlags f) {
    const RunFlags& rf = f.run;
    f.matrix.output_dir = rf.output_dir;
    f.matrix.first_seed = rf.seed;
    f.matrix.validate();  // names, rates, seeds: before any data is read
    check_file_folder("--report", rf.report);
    prepare_output_dir(rf.output_dir);
    set_num_threads(rf.threads);
    const auto [train, test] = load_data(rf);
    std::printf("matrix: %zu attacks x %zu defenses x %zu rates x %d seeds on %s (%lld training images, %d epochs)%s\n", f.matrix.attacks.size(),
                f.matrix.defenses.size(), f.matrix.poison_rates.size(), f.matrix.seeds, rf.data_dir.c_str(), static_cast<long long>(train.size()),
                rf.epochs, f.matrix.resume ? ", resuming" : "");
    MatrixTerminal terminal;
    const MatrixResult r = run_matrix(train, test, lab_settings(rf), f.matrix, &terminal);
    nlohmann::ordered_json j = matrix_json(r);
    j["settings"] = lab_settings(rf), j["clean_share"] = f.matrix.defense.clean_share, j["first_seed"] = f.matrix.first_seed;
    j["data"] = rf.data_dir, j["limit_train"] = rf.limit_train, j["threads"] = rf.threads;
    write_json_atomic(rf.output_dir + "/matrix.json", j);
    write_file_atomic(rf.output_dir + "/matrix.csv", matrix_csv(r));
    const std::string markdown = matrix_markdown(r);
    write_file_atomic(rf.output_dir + "/matrix.md", markdown);
    if (!rf.report.empty()) write_json_atomic(rf.report, j);
    std::printf("\n%s", markdown.c_str());
    std::printf("%zu models trained, %zu entries resumed, %s in all\nresults: %s/matrix.json, matrix.csv, matrix.md; entries in %s/cells\n",
                r.models_trained, r.entries_resumed, format_duration(r.seconds).c_str(), rf.output_dir.c_str(), rf.output_dir.c_str());
    if (!gnuplot_available()) {
        std::printf("gnuplot is not installed (Debian: gnuplot-nox): skipping the heatmaps\n");
        return 0;
    }
    const std::string title = rf.data_dir + ", " + std::to_string(rf.epochs) + " epochs, " + std::to_string(f.matrix.seeds) + " seed(s)";
    for (MatrixMetric m : {MatrixMetric::AsrAfter, MatrixMetric::Der, MatrixMetric::DetectionF1}) {
        const std::string png = rf.output_dir + "/" + matrix_metric_info(m).file;
        plot_matrix_heatmap_png(png, r, m, title);
        std::printf("heatmap: %s\n", png.c_str());
    }
    return 0;
}

}  // namespace lab_program
