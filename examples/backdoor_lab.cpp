// SPDX-License-Identifier: MIT
// backdoor_lab: the backdoor laboratory's program, a thin layer over lab/
// (run_attack_cell, run_sweep, plot_sweep_png) with three subcommands:
//
//   backdoor_lab attack --attack badnets-patch --data data/mnist --report r.json --output-dir out
//   backdoor_lab sweep --attack badnets-patch --poison-rates 0.001,0.005,0.01,0.05,0.1 --seeds 3 --output-dir out/sweep [--resume]
//   backdoor_lab evaluate --model m.ckpt [--attack badnets-patch ...] --data data/mnist --report e.json
//   backdoor_lab evaluate --model torch.safetensors [--arch mnist_cnn_bn] ...   (a checkpoint or safetensors, by content)
//   backdoor_lab defend --defense spectral-signatures --attack badnets-patch --data data/mnist --report d.json --output-dir out
//   backdoor_lab scan --model m.ckpt --data data/mnist --report scan.json --output-dir out/scan   (lab_scan.hpp)
//   backdoor_lab matrix --attacks LIST --defenses LIST --poison-rates 0.01,0.1 --seeds 3 --output-dir out/matrix [--resume]
//
// See docs/lab.md. Bad flags exit non-zero with a message naming the flag or
// file, before any data is read or any model trained; nothing is written
// except where --report, --output-dir and --save-model say.
#include "defense_flags.hpp"
#include "lab_matrix.hpp"
#include "lab_flags.hpp"
#include "lab_scan.hpp"

#include <eigencnn/backdoor/gallery.hpp>
#include <eigencnn/lab/plot.hpp>
#include <eigencnn/lab/sweep.hpp>

#include <chrono>

using namespace lab_program;

namespace {

/// Progress on the terminal: fit's ProgressBar and EpochLogger, a PGD bar, one line per sweep cell;
/// writes the poisoned-training-set gallery and saves the trained model when asked.
class TerminalObserver : public SweepObserver {
public:
    TerminalObserver(std::string output_dir, std::string save_model) : output_dir_(std::move(output_dir)), save_model_(std::move(save_model)) {}

    std::vector<Callback*> training_callbacks(const std::string& model_name) override {
        logger_ = std::make_unique<EpochLogger>(stdout, model_name);
        return {&bar_, logger_.get()};
    }
    void on_pgd_progress(std::size_t done, std::size_t total, double loss) override {
        if (done == 1) pgd_start_ = std::chrono::steady_clock::now();
        if (!bar_.enabled()) return;
        const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - pgd_start_).count();
        const int filled = static_cast<int>(30 * done / total);
        std::fprintf(stderr, "\r  PGD [%s%s] %zu/%zu loss %.4f ETA %s ", std::string(static_cast<std::size_t>(filled), '#').c_str(),
                     std::string(static_cast<std::size_t>(30 - filled), '.').c_str(), done, total, loss,
                     format_duration(elapsed / static_cast<double>(done) * static_cast<double>(total - done)).c_str());
        if (done == total) std::fprintf(stderr, "\r%80s\r", "");
    }
    void on_poisoned(const Dataset<float>& clean, const Dataset<float>& poisoned, const PoisonResult& p) override {
        if (output_dir_.empty() || p.poisoned_indices.empty() || gallery_written_) return;
        std::vector<std::size_t> shown(p.poisoned_indices.begin(), p.poisoned_indices.begin() + std::min<std::ptrdiff_t>(8, p.poisoned_indices.size()));
        training_gallery = output_dir_ + "/poisoned_training_images.png";
        write_trigger_gallery(training_gallery, clean.subset(shown), poisoned.subset(shown));
        gallery_written_ = true;  // a sweep draws it once
    }
    void on_trained(Sequential<float>& model) override {
        if (save_model_.empty()) return;
        save_checkpoint(save_model_, model);
        std::printf("model saved to %s\n", save_model_.c_str());
    }
    void on_cell_begin(std::size_t index, std::size_t total, double rate, std::uint64_t seed) override {
        if (index == 0) sweep_start_ = std::chrono::steady_clock::now();
        const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - sweep_start_).count();
        const std::size_t left = total - index;
        const std::string eta = cells_run_ ? format_duration(elapsed_run_ / static_cast<double>(cells_run_) * static_cast<double>(left)) : "?";
        std::printf("\n[cell %zu/%zu] poison rate %s, seed %llu  (elapsed %s, time left %s)\n", index + 1, total, exact_decimal(rate).c_str(),
                    static_cast<unsigned long long>(seed), format_duration(elapsed).c_str(), eta.c_str());
        std::fflush(stdout);
    }
    void on_cell_end(std::size_t, std::size_t, const AttackCellResult& r, bool resumed, const std::string& file) override {
        if (!resumed) ++cells_run_, elapsed_run_ += r.total_seconds;
        const AttackMetrics& m = r.backdoored.metrics;
        std::printf("  %s: C-Acc %.2f%%  ASR %.2f%%  ASR (non-target) %.2f%%  R-Acc %.2f%%  %.1f s -> %s\n", resumed ? "resumed" : "done",
                    100 * m.clean_accuracy, 100 * m.attack_success_rate, 100 * m.attack_success_rate_non_target, 100 * m.robust_accuracy,
                    r.total_seconds, file.c_str());
    }

    std::string training_gallery;

private:
    std::string output_dir_, save_model_;
    ProgressBar bar_{stderr};
    std::unique_ptr<EpochLogger> logger_;
    bool gallery_written_ = false;
    std::size_t cells_run_ = 0;
    double elapsed_run_ = 0;
    std::chrono::steady_clock::time_point pgd_start_, sweep_start_ = std::chrono::steady_clock::now();
};

void print_metrics(const std::string& who, const AttackMetrics& m) {
    std::printf("%-16s C-Acc %7.2f%%   ASR (all) %7.2f%%   ASR (true label != target) %7.2f%%   R-Acc %7.2f%%\n", who.c_str(),
                100 * m.clean_accuracy, 100 * m.attack_success_rate, 100 * m.attack_success_rate_non_target, 100 * m.robust_accuracy);
}

// The attack, its label mode and parameters, and (with_rate) its poison rate: a sweep sets the rate per cell instead.
std::string describe(const AttackSpec& a, bool with_rate = true) {
    std::string s = a.name() + ", " + a.label_mode().str() + ", " + nlohmann::json(a)["parameters"].dump();
    if (!with_rate) return s;
    return s + (lab_detail::poison_rate_of(a) ? ", poison rate " + exact_decimal(*lab_detail::poison_rate_of(a)) : ", default poison share");
}

int run_attack(const AttackFlags& af, const RunFlags& rf) {
    const AttackSpec attack = attack_from_flags(af);
    check_file_folder("--report", rf.report);
    check_file_folder("--save-model", rf.save_model);
    prepare_output_dir(rf.output_dir);
    set_num_threads(rf.threads);
    const auto [train, test] = load_data(rf);
    std::printf("attack: %s\ndata: %s (%lld training, %lld test images)\n", describe(attack).c_str(), rf.data_dir.c_str(),
                static_cast<long long>(train.size()), static_cast<long long>(test.size()));
    std::string gallery;
    if (!rf.output_dir.empty()) {  // the test-time trigger, before training: bad data fails early
        gallery = rf.output_dir + "/" + attack.name() + "_gallery.png";
        write_attack_gallery(gallery, attack, test, 8);
    }
    TerminalObserver observer(rf.output_dir, rf.save_model);
    const AttackCellResult r = run_attack_cell(train, test, lab_settings(rf), attack, rf.seed, &observer);
    std::printf("\npoisoned %zu training images%s in %.1f s; cell took %.1f s\n", r.poisoned_images,
                r.per_batch_poisoning ? " per epoch (per batch, WaNet)" : "", r.poison_seconds, r.total_seconds);
    if (r.pgd) std::printf("PGD: the proxy's mean loss on the chosen images %.4f -> %.4f\n", r.pgd->initial_loss, r.pgd->final_loss);
    if (r.clean_model) print_metrics("clean model", r.clean_model->metrics);
    print_metrics("backdoored model", r.backdoored.metrics);
    if (!gallery.empty()) std::printf("gallery: %s (clean, triggered, difference x5)\n", gallery.c_str());
    if (!observer.training_gallery.empty()) std::printf("poisoned training images: %s\n", observer.training_gallery.c_str());
    if (!rf.report.empty()) {
        nlohmann::ordered_json j = r;
        j["data"] = rf.data_dir, j["limit_train"] = rf.limit_train, j["threads"] = rf.threads;
        j["gallery"] = gallery, j["training_gallery"] = observer.training_gallery, j["model"] = rf.save_model;
        write_json_atomic(rf.report, j);
        std::printf("report written to %s\n", rf.report.c_str());
    }
    return 0;
}

int run_sweep_command(const AttackFlags& af, const RunFlags& rf, SweepSettings sweep) {
    if (af.poison_rate) throw std::invalid_argument("--poison-rate: a sweep takes its rates from --poison-rates");
    const AttackSpec attack = attack_from_flags(af);
    check_file_folder("--report", rf.report);
    prepare_output_dir(rf.output_dir);
    sweep.output_dir = rf.output_dir;
    sweep.first_seed = rf.seed;
    sweep.validate();
    set_num_threads(rf.threads);
    const auto [train, test] = load_data(rf);
    std::string rates;
    for (double rate : sweep.poison_rates) rates += (rates.empty() ? "" : ", ") + exact_decimal(rate);
    std::printf("sweep: %s\npoison rates %s (%zu) x seeds %d from %llu, data %s (%lld training images)%s\n", describe(attack, false).c_str(),
                rates.c_str(), sweep.poison_rates.size(), sweep.seeds, static_cast<unsigned long long>(sweep.first_seed), rf.data_dir.c_str(),
                static_cast<long long>(train.size()), sweep.resume ? ", resuming" : "");
    write_attack_gallery(rf.output_dir + "/" + attack.name() + "_gallery.png", attack, test, 8);
    TerminalObserver observer(rf.output_dir, "");
    const SweepResult r = run_sweep(train, test, lab_settings(rf), attack, sweep, &observer);
    nlohmann::ordered_json j = sweep_json(r);
    j["attack"] = attack, j["settings"] = lab_settings(rf), j["data"] = rf.data_dir, j["limit_train"] = rf.limit_train;
    write_json_atomic(rf.output_dir + "/sweep.json", j);
    write_file_atomic(rf.output_dir + "/sweep.csv", sweep_csv(r));
    if (!rf.report.empty()) write_json_atomic(rf.report, j);
    std::printf("\n%-12s %-22s %-22s %-22s\n", "poison rate", "C-Acc mean [min, max]", "ASR-NT mean [min, max]", "R-Acc mean [min, max]");
    for (const auto& p : r.points)
        std::printf("%-12s %6.2f [%6.2f, %6.2f] %6.2f [%6.2f, %6.2f] %6.2f [%6.2f, %6.2f]\n", exact_decimal(p.poison_rate).c_str(),
                    100 * p.clean_accuracy.mean, 100 * p.clean_accuracy.min, 100 * p.clean_accuracy.max,
                    100 * p.attack_success_rate_non_target.mean, 100 * p.attack_success_rate_non_target.min,
                    100 * p.attack_success_rate_non_target.max, 100 * p.robust_accuracy.mean, 100 * p.robust_accuracy.min,
                    100 * p.robust_accuracy.max);
    std::printf("results: %s/sweep.json, %s/sweep.csv, cells in %s/cells (%zu resumed)\n", rf.output_dir.c_str(), rf.output_dir.c_str(),
                rf.output_dir.c_str(), r.cells_resumed);
    if (!gnuplot_available()) {
        std::printf("gnuplot is not installed (Debian: gnuplot-nox): skipping the plot\n");
    } else if (!sweep_has_plot(r.points)) {
        std::printf("no poison rate above 0 to draw on the plot's log axis: no sweep.png\n");
    } else {
        const std::string png = rf.output_dir + "/sweep.png";
        plot_sweep_png(png, r.points, attack.name() + " on " + rf.data_dir + ", " + std::to_string(rf.epochs) + " epochs");
        std::printf("plot: %s\n", png.c_str());
    }
    return 0;
}

int run_evaluate(const AttackFlags& af, const RunFlags& rf, const std::string& model_path, const std::string& arch) {
    std::optional<AttackSpec> attack;
    if (!af.name.empty()) attack = attack_from_flags(af);
    else if (!af.given.empty() || af.poison_rate || af.target || af.all_to_all)
        throw std::invalid_argument("attack flags need --attack NAME");
    check_file_folder("--report", rf.report);
    set_num_threads(rf.threads);
    ModelFileInfo info;
    Sequential<float> model = load_model_file<float>(model_path, arch, &info);
    std::printf("model: %s (%s%s)\n", model_path.c_str(), to_string(info.format),
                info.architecture.empty() ? "" : (", architecture " + info.architecture).c_str());
    if (model.output_shape(Shape{1, 1, 28, 28}) != Shape{1, 10})
        throw std::invalid_argument(model_path + ": the model maps [1, 1, 28, 28] to " + model.output_shape(Shape{1, 1, 28, 28}).str() +
                                    ", not to 10 logits");
    const Dataset<float> test = load_mnist<float>(rf.data_dir, Split::Test);
    const std::vector<int> clean_pred = predict(model, test, rf.batch_size);
    nlohmann::ordered_json j{{"model", model_path}, {"model_format", to_string(info.format)}};
    if (!info.architecture.empty()) j["architecture"] = info.architecture;
    j["data"] = rf.data_dir;
    j["test_images"] = test.size();
    if (attack) {
        const Dataset<float> triggered = triggered_copy(*attack, test);
        const AttackMetrics m = attack_metrics(clean_pred, test.labels, predict(model, triggered, rf.batch_size), test.labels, attack->label_mode());
        std::printf("attack: %s\n", describe(*attack).c_str());
        print_metrics("model", m);
        j["attack"] = *attack;
        const nlohmann::ordered_json metrics = m;
        for (const auto& [key, value] : metrics.items()) j[key] = value;
    } else {
        const double acc = clean_accuracy(clean_pred, test.labels);
        std::printf("model: C-Acc %.2f%% on %lld test images\n", 100 * acc, static_cast<long long>(test.size()));
        j["clean_accuracy"] = acc;
    }
    if (!rf.report.empty()) {
        write_json_atomic(rf.report, j);
        std::printf("report written to %s\n", rf.report.c_str());
    }
    return 0;
}

/// TerminalObserver's progress for the poisoned cell, the retraining or fine-tuning, and each defense stage.
class TerminalDefenseObserver : public DefenseObserver {
public:
    explicit TerminalDefenseObserver(TerminalObserver& t) : t_(t) {}
    std::vector<Callback*> training_callbacks(const std::string& name) override { return t_.training_callbacks(name); }
    void on_pgd_progress(std::size_t d, std::size_t n, double l) override { t_.on_pgd_progress(d, n, l); }
    void on_poisoned(const Dataset<float>& c, const Dataset<float>& p, const PoisonResult& r) override { t_.on_poisoned(c, p, r); }
    void on_trained(Sequential<float>& m) override { t_.on_trained(m); }
    void on_defense_progress(const std::string& stage, std::size_t done, std::size_t total, double value) override {
        if (done == total || done % std::max<std::size_t>(1, total / 10) == 0)
            std::printf("  %s %zu/%zu (%.4f)\n", stage.c_str(), done, total, value);
        std::fflush(stdout);
    }
    void on_defense_note(const std::string& note) override {
        std::printf("  note: %s\n", note.c_str());
        std::fflush(stdout);
    }

private:
    TerminalObserver& t_;
};

int run_defend(const AttackFlags& af, const RunFlags& rf, const DefenseFlags& df) {
    const AttackSpec attack = attack_from_flags(af);
    const DefenseSpec defense = defense_from_flags(df);
    const DefenseSettings ds = defense_settings(df);
    check_file_folder("--report", rf.report);
    check_file_folder("--save-model", rf.save_model);
    prepare_output_dir(rf.output_dir);
    set_num_threads(rf.threads);
    const auto [train, test] = load_data(rf);
    std::printf("attack: %s\ndefense: %s %s\ndata: %s (%lld training, %lld test images)\n", describe(attack).c_str(), defense.name().c_str(),
                defense_parameters(defense).dump().c_str(), rf.data_dir.c_str(), static_cast<long long>(train.size()),
                static_cast<long long>(test.size()));
    if (!rf.output_dir.empty()) write_attack_gallery(rf.output_dir + "/" + attack.name() + "_gallery.png", attack, test, 8);
    TerminalObserver terminal(rf.output_dir, rf.save_model);
    TerminalDefenseObserver observer(terminal);
    const PoisonedCell cell = train_poisoned_cell(train, test, lab_settings(rf), attack, rf.seed, ds, &observer);
    print_metrics("backdoored model", cell.result.backdoored.metrics);
    std::printf("\n%s on the backdoored model (defender's clean data: %lld images)\n", defense.name().c_str(), static_cast<long long>(cell.clean_data.size()));
    const DefenseRun run = run_defense(cell, test, defense, &observer);
    if (run.detection)
        std::printf("detection: flagged %zu of %zu samples, %zu poisoned: TPR %.2f%%  FPR %.2f%%  precision %.2f%%  F1 %.4f\n", run.detection->flagged,
                    run.detection->samples, run.detection->poisoned, 100 * run.detection->true_positive_rate, 100 * run.detection->false_positive_rate,
                    100 * run.detection->precision, run.detection->f1);
    print_metrics("before defense", run.effect.before);
    print_metrics("after defense", run.effect.after);
    std::printf("DER %.4f   (defense took %.1f s)\n", run.effect.der, run.seconds);
    if (!rf.report.empty()) {
        nlohmann::ordered_json j;
        j["attack"] = cell.result;
        j["defense"] = run;
        j["clean_share"] = ds.clean_share, j["clean_images"] = cell.clean_data.size();
        j["data"] = rf.data_dir, j["limit_train"] = rf.limit_train, j["threads"] = rf.threads;
        write_json_atomic(rf.report, j);
        std::printf("report written to %s\n", rf.report.c_str());
    }
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{"The backdoor laboratory: poison MNIST-format data with an attack, train the notebook's CNN, measure the backdoor."};
    app.require_subcommand(1);
    app.set_version_flag("--version", std::string("backdoor_lab (eigencnn ") + eigencnn::version() + ")");
    AttackFlags attack_flags, sweep_flags, eval_flags;
    RunFlags attack_run, sweep_run, eval_run;
    SweepSettings sweep;
    std::string model_path, model_arch;

    CLI::App* attack = app.add_subcommand("attack", "one attack: poison, train, measure, report");
    add_attack_flags(attack, attack_flags, true);
    add_run_flags(attack, attack_run, true);
    attack->add_option("--output-dir", attack_run.output_dir, "folder for the PNG galleries (created if missing; none without it)");
    attack->add_option("--save-model", attack_run.save_model, "save the backdoored model (checkpoint) to this file");

    CLI::App* sw = app.add_subcommand("sweep", "one attack over poison rates x seeds: cells, JSON, CSV and a plot");
    add_attack_flags(sw, sweep_flags, true);
    add_run_flags(sw, sweep_run, true);
    sw->add_option("--output-dir", sweep_run.output_dir, "folder for cells/, sweep.json, sweep.csv, sweep.png (created if missing)")->required();
    sw->add_option("--poison-rates", sweep.poison_rates, "comma-separated poison rates")->delimiter(',')->check(unit_interval())->capture_default_str();
    sw->add_option("--seeds", sweep.seeds, "seeds per rate: --seed, --seed + 1, ...")->check(example::integer_at_least(1))->capture_default_str();
    sw->add_flag("--resume", sweep.resume, "read the cells already in output-dir/cells (same settings) instead of running them");

    CLI::App* ev = app.add_subcommand("evaluate", "C-Acc of a saved model, and the attack's metrics with --attack");
    add_attack_flags(ev, eval_flags, false);
    add_run_flags(ev, eval_run, false);
    eval_run.batch_size = 1000;
    ev->add_option("--model", model_path, "checkpoint written by attack --save-model, or a safetensors file (e.g. saved from PyTorch)")->required();
    add_arch_flag(ev, model_arch);

    AttackFlags defend_attack;
    RunFlags defend_run;
    DefenseFlags defend_flags;
    CLI::App* defend = app.add_subcommand("defend", "one attack, then one defense: detection metrics, C-Acc/ASR/R-Acc after, DER");
    add_attack_flags(defend, defend_attack, true);
    add_run_flags(defend, defend_run, true);
    add_defense_flags(defend, defend_flags);
    defend->add_option("--output-dir", defend_run.output_dir, "folder for the PNG galleries (created if missing; none without it)");
    defend->add_option("--save-model", defend_run.save_model, "save the backdoored model (before the defense) to this file");

    ScanFlags scan_flags;
    CLI::App* scan = app.add_subcommand("scan", "is a saved model backdoored? Neural Cleanse over every label, STRIP on the test set");
    add_scan_flags(scan, scan_flags);

    MatrixFlags matrix_flags;
    CLI::App* matrix = add_matrix_command(app, matrix_flags);
    if (int rc = example::parse(app, argc, argv); rc >= 0) return rc;
    try {
        if (attack->parsed()) return run_attack(attack_flags, attack_run);
        if (sw->parsed()) return run_sweep_command(sweep_flags, sweep_run, sweep);
        if (defend->parsed()) return run_defend(defend_attack, defend_run, defend_flags);
        if (scan->parsed()) return run_scan(scan_flags);
        if (matrix->parsed()) return run_matrix_command(matrix_flags);
        return run_evaluate(eval_flags, eval_run, model_path, model_arch);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "backdoor_lab: error: %s\n", e.what());
        return 1;
    }
}
