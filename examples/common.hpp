// SPDX-License-Identifier: MIT
// examples/common.hpp: what mnist_clean and mnist_backdoor share: their
// flags, the call of the library's fit() with its callbacks (ProgressBar,
// EpochLogger), the JSON report (io/json.hpp), and weights in and out as
// safetensors (--load-weights, --save-weights; io/safetensors.hpp).
#pragma once

#include <eigencnn/eigencnn.hpp>
#include <eigencnn/io/json.hpp>
#include <eigencnn/io/safetensors.hpp>

#include <CLI/CLI.hpp>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <sys/stat.h>
#include <thread>

namespace example {

using namespace eigencnn;

struct Options {
    std::string data_dir = "data/mnist";
    int epochs = 10;
    int batch_size = 500;
    double lr = 1e-3;
    std::uint64_t seed = 0;
    int threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
    long long limit = 0;  // train on the first N images only (0: all)
    double poison_fraction = 0.01;
    int target = 8;
    std::string output_dir = ".";
    std::string report;
    std::string save;    // checkpoint after every epoch
    std::string resume;  // continue from a checkpoint
    std::string load_weights;  // start from these weights (safetensors), e.g. a PyTorch-trained model
    std::string save_weights;  // write the trained weights here (safetensors)
    bool skip_non_finite = false;
};

/// Validators whose messages say what the flag needs ("--epochs: must be an integer >= 1, got 'abc'").
inline CLI::Validator integer_at_least(long long lo) {
    return CLI::Validator(
        [lo](std::string& v) -> std::string {
            std::size_t used = 0;
            long long x = 0;
            try {
                x = std::stoll(v, &used);
            } catch (const std::exception&) {
                used = 0;
            }
            if (used != v.size() || v.empty() || x < lo) return "must be an integer >= " + std::to_string(lo) + ", got '" + v + "'";
            return {};
        },
        "INT>=" + std::to_string(lo));
}
inline CLI::Validator positive_number() {
    return CLI::Validator(
        [](std::string& v) -> std::string {
            std::size_t used = 0;
            double x = 0;
            try {
                x = std::stod(v, &used);
            } catch (const std::exception&) {
                used = 0;
            }
            if (used != v.size() || v.empty() || !(x > 0) || !std::isfinite(x)) return "must be a positive number, got '" + v + "'";
            return {};
        },
        "NUMBER>0");
}

/// "--seed: must be an integer from 0 to 18446744073709551615, got '-1'" (CLI11 alone clamps out-of-range values).
inline CLI::Validator unsigned_64() {
    return CLI::Validator(
        [](std::string& v) -> std::string {
            errno = 0;
            const bool digits = !v.empty() && v.find_first_not_of("0123456789") == std::string::npos;
            if (digits) std::strtoull(v.c_str(), nullptr, 10);
            if (!digits || errno == ERANGE) return "must be an integer from 0 to 18446744073709551615, got '" + v + "'";
            return {};
        },
        "");
}

/// Flags common to both examples; mnist_backdoor adds its own.
inline void add_common_flags(CLI::App& app, Options& o) {
    app.set_version_flag("--version", std::string("eigencnn ") + version());
    app.add_option("--data", o.data_dir, "folder with the four MNIST IDX files (raw or .gz)")->capture_default_str();
    app.add_option("--epochs", o.epochs, "training epochs (0 only with --load-weights: evaluate those weights)")
        ->check(integer_at_least(0))
        ->capture_default_str();
    app.add_option("--batch-size", o.batch_size, "mini-batch size")->check(integer_at_least(1))->capture_default_str();
    app.add_option("--lr", o.lr, "Adam learning rate")->check(positive_number())->capture_default_str();
    app.add_option_function<std::string>(
           "--seed", [&o](const std::string& v) { o.seed = std::strtoull(v.c_str(), nullptr, 10); },
           "seed of initial weights, shuffling and poisoning")
        ->check(unsigned_64())
        ->type_name("UINT64")
        ->default_str(std::to_string(o.seed));
    app.add_option("--threads", o.threads, "threads for training and inference")
        ->check(integer_at_least(1))
        ->check(CLI::Range(1, kMaxThreads))
        ->capture_default_str();
    app.add_option("--limit", o.limit, "train on the first N training images only (0: all)")->check(integer_at_least(0));
    app.add_option("--output-dir", o.output_dir, "folder for the PNG output (created if missing)")->capture_default_str();
    app.add_option("--report", o.report, "write the results to this file as JSON");
    app.add_option("--save", o.save, "write a checkpoint (model, Adam state, epoch) after every epoch");
    app.add_option("--resume", o.resume, "continue training from a checkpoint written by --save");
    app.add_option("--load-weights", o.load_weights,
                   "start from these weights (safetensors, PyTorch's state_dict names; e.g. a model trained in PyTorch)");
    app.add_option("--save-weights", o.save_weights, "write the trained weights to this file (safetensors, atomically)");
    app.add_flag("--skip-non-finite", o.skip_non_finite, "skip batches whose loss or gradients are NaN/inf instead of stopping");
}

/// Every output location and value checked before any data is read or any epoch run, so that
/// nothing fails after training (the results would be lost). `checkpoints`: the files --save writes.
inline void check_before_training(const Options& o, const std::vector<std::string>& checkpoints) {
    ensure_output_dir(o.output_dir, "--output-dir");
    if (!o.report.empty()) check_output_path(o.report, "--report");
    for (const auto& c : checkpoints) check_output_path(c, "--save");
    if (!o.save_weights.empty()) check_output_path(o.save_weights, "--save-weights");
    if (o.epochs == 0 && o.load_weights.empty())
        throw std::invalid_argument("--epochs: must be an integer >= 1, got '0' (0 only with --load-weights, to evaluate those weights)");
    if (!o.load_weights.empty() && !o.resume.empty())
        throw std::invalid_argument("--load-weights and --resume both give the starting weights; use one");
    if (!(o.poison_fraction >= 0 && o.poison_fraction <= 1))
        throw std::invalid_argument("--poison-fraction: must be in [0, 1], got " + std::to_string(o.poison_fraction));
}

/// The notebook's model with seed o.seed, or with --load-weights' weights (checked in full: every name,
/// shape and dtype; SafetensorsError naming the file and the tensor otherwise).
inline Sequential<float> initial_model(const Options& o) {
    Sequential<float> model = mnist_cnn<float>(o.seed);
    if (!o.load_weights.empty()) {
        load_safetensors(model, o.load_weights);
        std::cout << "weights loaded from " << o.load_weights << '\n';
    }
    return model;
}

/// --save-weights: the model's parameters and buffers as safetensors, atomically.
inline void save_weights(Sequential<float>& model, const Options& o) {
    if (o.save_weights.empty()) return;
    save_safetensors(model, o.save_weights, {{"format", "pt"}, {"saved_by", std::string("eigencnn ") + version()}});
    std::cout << "weights saved to " << o.save_weights << '\n';
}

/// What identifies the data: each MNIST file's name, size and CRC-32, so that a
/// resume on other data is refused (the data's folder may move; its content may not change).
inline std::string data_identity(const std::string& dir) {
    std::string id;
    for (const char* name : {"train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"}) {
        const std::string path = find_idx_file(dir, name);
        const auto bytes = read_file_bytes<IdxError>(path, "file");
        char crc[16];
        std::snprintf(crc, sizeof crc, "%08x", static_cast<unsigned>(detail::crc32_of(bytes.data(), bytes.size())));
        id += (id.empty() ? "" : " ") + path.substr(path.find_last_of('/') + 1) + ":" + std::to_string(bytes.size()) + ":" + crc;
    }
    return id;
}

/// The settings a checkpoint must share with the run that resumes it, so
/// that the resumed run is bitwise the uninterrupted one (fit refuses a mismatch).
inline Metadata run_settings(const Options& o, const std::string& phase) {
    return {{"phase", phase},
            {"data", data_identity(o.data_dir)},
            {"seed", std::to_string(o.seed)},
            {"batch_size", std::to_string(o.batch_size)},
            {"lr", exact_decimal(o.lr)},
            {"limit", std::to_string(o.limit)},
            {"poison_fraction", exact_decimal(o.poison_fraction)},
            {"target", std::to_string(o.target)}};
}

/// Train `model` with Adam up to o.epochs epochs (fit), printing one line per
/// epoch and a progress bar on a terminal; with a `resume` checkpoint, start
/// where it stopped; with a `save` path, checkpoint after every epoch.
inline FitResult train(Sequential<float>& model, const Dataset<float>& train_set, const Options& o, const std::string& title,
                       const std::string& phase = "clean", const std::string& save = "", const std::string& resume = "") {
    Adam<float> opt(model.parameters(), AdamOptions{o.lr});
    DataLoader<float> loader(train_set, o.batch_size, /*shuffle=*/true, Rng::mix(o.seed, 1));
    FitOptions fo;
    fo.epochs = o.epochs;
    fo.checkpoint = save;
    fo.resume = resume;
    fo.settings = run_settings(o, phase);
    fo.on_non_finite = o.skip_non_finite ? NonFinite::SkipBatch : NonFinite::Throw;
    ProgressBar bar(stderr);
    EpochLogger log(stdout, title);
    return fit(model, opt, loader, fo, {&bar, &log});
}

/// Load MNIST, applying --limit to the training set; the test images must have the training images' size.
inline std::pair<Dataset<float>, Dataset<float>> load(const Options& o) {
    Dataset<float> train_set = load_mnist<float>(o.data_dir, Split::Train);
    Dataset<float> test_set = load_mnist<float>(o.data_dir, Split::Test);
    if (train_set.sample_shape() != test_set.sample_shape())
        throw std::invalid_argument(find_idx_file(o.data_dir, "t10k-images-idx3-ubyte") + ": test images of shape " +
                                    test_set.sample_shape().str() + " do not match the training images' " + train_set.sample_shape().str() +
                                    " (" + find_idx_file(o.data_dir, "train-images-idx3-ubyte") + ")");
    if (o.limit > 0) train_set = train_set.head(o.limit);
    return {std::move(train_set), std::move(test_set)};
}


using Report = nlohmann::ordered_json;  // keeps the keys in the order written

inline void add_config(Report& j, const Options& o) {
    j["data"] = o.data_dir;
    j["epochs"] = o.epochs;
    j["batch_size"] = o.batch_size;
    j["lr"] = o.lr;
    j["seed"] = o.seed;
    j["threads"] = o.threads;
    if (!o.load_weights.empty()) j["load_weights"] = o.load_weights;
    if (!o.save_weights.empty()) j["save_weights"] = o.save_weights;
}

/// "<prefix>epoch_seconds", "<prefix>epoch_loss": the epochs run now; "<prefix>resumed_after_epoch": the epochs before them.
inline void add_epochs(Report& j, const std::string& prefix, const FitResult& r) {
    std::vector<double> sec, loss;
    for (const auto& e : r.epochs) sec.push_back(e.seconds), loss.push_back(e.mean_loss);
    j[prefix + "epoch_seconds"] = sec;
    j[prefix + "epoch_loss"] = loss;  // NaN (every batch skipped) is written as null
    j[prefix + "resumed_after_epoch"] = r.start_epoch;
}

/// Parse flags; returns -1 to continue, else the exit code (after --help or a bad flag).
inline int parse(CLI::App& app, int argc, char** argv) {
    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        return app.exit(e);
    }
    return -1;
}

}  // namespace example
