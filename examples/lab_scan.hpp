// SPDX-License-Identifier: MIT
// examples/lab_scan.hpp: backdoor_lab's `scan` subcommand: is this saved model backdoored?
//
//   backdoor_lab scan --model m.ckpt --data data/mnist --report scan.json --output-dir out/scan
//   backdoor_lab scan --model torch.safetensors [--arch mnist_cnn_bn] ...   (io/model_file.hpp)
//
// Runs Neural Cleanse over every label (no unlearning: the model file is left as it is) on the first
// --nc-clean-images test images, and STRIP on the test set (inputs from its first half, overlays from its
// second half; no trigger is known, so the report has the clean entropies, their normal fit and the
// thresholds, not FAR). Report: anomaly_index (one per label), flagged_labels (a list, empty when none),
// the full Neural Cleanse and STRIP results; --output-dir gets reversed_triggers.png.
// The model must map the data's images to one logit per label: otherwise an error naming both, exit 1,
// and nothing written (the checks come before the output folder is made).
#pragma once

#include "lab_flags.hpp"

#include <eigencnn/lab/detect.hpp>

namespace lab_program {

struct ScanFlags {
    std::string model, arch, data_dir = "data/mnist", report, output_dir;
    int threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
    std::uint64_t seed = 0;
    bool strip = true;
    NeuralCleanseDefenseSettings nc;
    StripDefenseSettings strip_settings;
};

inline void add_scan_flags(CLI::App* app, ScanFlags& f) {
    f.nc.unlearn = false;
    app->add_option("--model", f.model, "the model to scan: a checkpoint, or a safetensors file (e.g. saved from PyTorch)")->required();
    add_arch_flag(app, f.arch);
    app->add_option("--data", f.data_dir, "folder with the four IDX files (the test set is used)")->capture_default_str();
    app->add_option("--report", f.report, "write the results as JSON to this file");
    app->add_option("--output-dir", f.output_dir, "folder for reversed_triggers.png (created if missing)");
    app->add_option("--threads", f.threads, "threads")->check(example::integer_at_least(1))->capture_default_str();
    app->add_option_function<std::string>(
           "--seed", [&f](const std::string& v) { f.seed = std::strtoull(v.c_str(), nullptr, 10); }, "seed of the initial masks, batches and overlays")
        ->check(example::unsigned_64())
        ->type_name("UINT64");
    app->add_option("--nc-clean-images", f.nc.clean_images, "Neural Cleanse: test images the triggers are reverse-engineered on")
        ->check(example::integer_at_least(1))->capture_default_str();
    app->add_option("--nc-batch-size", f.nc.neural_cleanse.batch_size, "Neural Cleanse: images per step")->check(example::integer_at_least(1))->capture_default_str();
    app->add_option("--nc-batches-per-epoch", f.nc.neural_cleanse.batches_per_epoch, "Neural Cleanse: steps per epoch (the cost schedule counts epochs)")
        ->check(example::integer_at_least(1))->capture_default_str();
    app->add_option("--nc-max-epochs", f.nc.neural_cleanse.max_epochs, "Neural Cleanse: epochs per label at most (early stop may end sooner)")
        ->check(example::integer_at_least(1))->capture_default_str();
    app->add_option("--strip-inputs", f.strip_settings.inputs, "STRIP: test inputs whose entropy is measured")->check(example::integer_at_least(1))->capture_default_str();
    app->add_option("--strip-overlays", f.strip_settings.strip.overlays, "STRIP: superimpositions per input")->check(example::integer_at_least(1))->capture_default_str();
    app->add_flag("--no-strip{false}", f.strip, "skip STRIP");
}

inline int run_scan(ScanFlags f) {
    check_file_folder("--report", f.report);
    {
        struct stat st {};
        if (!f.output_dir.empty() && ::stat(f.output_dir.c_str(), &st) == 0 && !S_ISDIR(st.st_mode))
            throw std::invalid_argument("--output-dir " + f.output_dir + ": is a file, not a folder");
    }
    set_num_threads(f.threads);
    f.nc.neural_cleanse.seed = f.seed, f.strip_settings.strip.seed = f.seed;
    Sequential<float> model = load_model_file<float>(f.model, f.arch);  // a checkpoint or safetensors, told apart by content
    const Dataset<float> test = load_mnist<float>(f.data_dir, Split::Test);
    Shape out;
    try {
        out = model.output_shape(test.sample_shape());
    } catch (const std::exception& e) {
        throw std::invalid_argument(f.model + ": the model does not take the images of " + f.data_dir + " " + test.sample_shape().str() + ": " + e.what());
    }
    const int max_label = *std::max_element(test.labels.begin(), test.labels.end());
    if (out.rank() != 2 || out[1] <= max_label)
        throw std::invalid_argument(f.model + ": the model maps " + test.sample_shape().str() + " to " + out.str() + ", not to logits [1, K] for the labels 0-" +
                                    std::to_string(max_label) + " of " + f.data_dir);
    prepare_output_dir(f.output_dir);
    std::printf("scan: %s on %s (%lld test images, %lld labels)\n", f.model.c_str(), f.data_dir.c_str(), static_cast<long long>(test.size()),
                static_cast<long long>(out[1]));
    const NeuralCleanseDefenseResult nc = run_neural_cleanse_defense(model, Dataset<float>{}, test, nullptr, f.nc, [](const ReversedTrigger<float>& t) {
        std::printf("  label %d: L1 %.2f, attack success %.3f%s, %d epochs, %.1f s\n", t.label, t.l1_norm, t.attack_success,
                    t.reached_threshold ? "" : " (below the threshold)", t.epochs, t.seconds);
        std::fflush(stdout);
    });
    std::printf("Neural Cleanse: median L1 %.2f, anomaly index:", nc.detection.median_l1);
    for (double a : nc.detection.anomaly_index) std::printf(" %.2f", a);
    std::printf("\nflagged labels:");
    for (int label : nc.detection.flagged_labels) std::printf(" %d", label);
    std::printf("%s (%.1f s)\n", nc.detection.flagged_labels.empty() ? " none" : "", nc.detection.seconds);
    std::optional<StripDefenseResult> strip;
    if (f.strip) {
        strip = run_strip_defense(model, test, nullptr, f.strip_settings);
        const StripResult& s = strip->strip;
        std::printf("STRIP: %zu clean inputs x %d overlays: entropy mean %.3f std %.3f min %.3f max %.3f bits; threshold at FRR 1%% %.3f (%.1f s)\n",
                    strip->clean_inputs, s.overlays, s.clean_entropy.mean, s.clean_entropy.std, s.clean_entropy.min, s.clean_entropy.max,
                    s.operating_points.at(0).threshold, s.seconds);
    }
    std::string png;
    if (!f.output_dir.empty()) {
        png = f.output_dir + "/reversed_triggers.png";
        write_reversed_triggers_png(png, nc.detection);
        std::printf("reversed triggers: %s (row 1 masks, row 2 mask x pattern; flagged labels in red)\n", png.c_str());
    }
    if (!f.report.empty()) {
        nlohmann::ordered_json j{{"model", f.model}, {"data", f.data_dir}, {"test_images", test.size()}, {"seed", f.seed}, {"threads", f.threads}};
        j["clean_accuracy"] = *nc.clean_accuracy_before;
        j["anomaly_index"] = nc.detection.anomaly_index;
        j["flagged_labels"] = nc.detection.flagged_labels;
        j["neural_cleanse"] = nc;
        j["strip"] = strip ? nlohmann::ordered_json(*strip) : nlohmann::ordered_json(nullptr);
        j["reversed_triggers_png"] = png;
        write_json_atomic(f.report, j);
        std::printf("report written to %s\n", f.report.c_str());
    }
    return 0;
}

}  // namespace lab_program
