// examples/common.hpp: what mnist_clean and mnist_backdoor share: their
// flags, the training loop with its per-epoch line and progress bar, and
// the JSON report.
#pragma once

#include <eigencnn/eigencnn.hpp>

#include <CLI/CLI.hpp>

#include <cstdio>
#include <iomanip>
#include <iostream>
#include <sstream>
#include <sys/stat.h>
#include <thread>
#include <unistd.h>

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

/// Flags common to both examples; mnist_backdoor adds its own.
inline void add_common_flags(CLI::App& app, Options& o) {
    app.add_option("--data", o.data_dir, "folder with the four MNIST IDX files (raw or .gz)")->capture_default_str();
    app.add_option("--epochs", o.epochs, "training epochs")->check(integer_at_least(1))->capture_default_str();
    app.add_option("--batch-size", o.batch_size, "mini-batch size")->check(integer_at_least(1))->capture_default_str();
    app.add_option("--lr", o.lr, "Adam learning rate")->check(positive_number())->capture_default_str();
    app.add_option("--seed", o.seed, "seed of initial weights, shuffling and poisoning")->capture_default_str();
    app.add_option("--threads", o.threads, "threads for training and inference")->check(integer_at_least(1))->capture_default_str();
    app.add_option("--limit", o.limit, "train on the first N training images only (0: all)")->check(integer_at_least(0));
    app.add_option("--output-dir", o.output_dir, "folder for the PNG output (created if missing)")->capture_default_str();
    app.add_option("--report", o.report, "write the results to this file as JSON");
    app.add_option("--save", o.save, "write a checkpoint (model, Adam state, epoch) after every epoch");
    app.add_option("--resume", o.resume, "continue training from a checkpoint written by --save");
    app.add_flag("--skip-non-finite", o.skip_non_finite, "skip batches whose loss or gradients are NaN/inf instead of stopping");
}

inline bool stderr_is_tty() { return ::isatty(2) != 0; }

/// The settings a checkpoint must share with the run that resumes it, so
/// that the resumed run is bitwise the uninterrupted one.
inline Metadata run_settings(const Options& o, const std::string& phase) {
    std::ostringstream lr;
    lr << std::setprecision(17) << o.lr;
    return {{"phase", phase},     {"seed", std::to_string(o.seed)}, {"batch_size", std::to_string(o.batch_size)},
            {"lr", lr.str()},     {"limit", std::to_string(o.limit)}, {"poison_fraction", std::to_string(o.poison_fraction)},
            {"target", std::to_string(o.target)}};
}

/// Train `model` with Adam up to o.epochs epochs, printing one line per epoch;
/// with a `resume` checkpoint, start where it stopped; with a `save` path,
/// checkpoint after every epoch. Returns the stats of the epochs run now.
inline std::vector<EpochStats> train(Sequential<float>& model, const Dataset<float>& train_set, const Options& o,
                                     const std::string& title, const std::string& phase = "clean", const std::string& save = "",
                                     const std::string& resume = "") {
    Adam<float> opt(model.parameters(), AdamOptions{o.lr});
    DataLoader<float> loader(train_set, o.batch_size, /*shuffle=*/true, Rng::mix(o.seed, 1));
    std::vector<EpochStats> stats;
    int start = 0;
    const Metadata settings = run_settings(o, phase);
    if (!resume.empty()) {
        Metadata meta = load_checkpoint(resume, model, static_cast<Optimizer<float>*>(&opt));
        for (const auto& kv : settings)
            if (meta[kv.first] != kv.second)
                throw std::runtime_error(resume + ": cannot resume: the checkpoint has " + kv.first + " = '" + meta[kv.first] +
                                         "', this run has '" + kv.second + "'");
        start = std::stoi(meta["epochs_done"]);
        std::cout << title << ": resumed from " << resume << " after epoch " << start << '\n';
    }
    const bool tty = stderr_is_tty();
    std::cout << title << ": " << train_set.size() << " images, batch " << o.batch_size << ", " << loader.num_batches()
              << " batches per epoch, " << o.threads << " thread(s)\n";
    for (int e = start; e < o.epochs; ++e) {
        auto progress = [&](std::size_t done, std::size_t total, double loss) {
            if (!tty) return;
            const int width = 30, filled = static_cast<int>(width * done / total);
            std::fprintf(stderr, "\r  epoch %2d/%d [%s%s] %zu/%zu loss %.4f", e + 1, o.epochs, std::string(filled, '#').c_str(),
                         std::string(width - filled, '.').c_str(), done, total, loss);
            if (done == total) std::fprintf(stderr, "\r%*s\r", 80, "");
        };
        const EpochStats s = train_epoch(model, opt, loader, static_cast<std::uint64_t>(e), progress,
                                         o.skip_non_finite ? NonFinite::SkipBatch : NonFinite::Throw);
        std::printf("  epoch %2d/%d  loss %.4f  %.2f s  %.0f images/s", e + 1, o.epochs, s.mean_loss, s.seconds, s.images_per_second);
        if (s.skipped_batches) std::printf("  (%zu non-finite batches skipped)", s.skipped_batches);
        std::printf("\n");
        std::fflush(stdout);
        stats.push_back(s);
        if (!save.empty()) {
            Metadata meta = settings;
            meta["epochs_done"] = std::to_string(e + 1);
            save_checkpoint(save, model, static_cast<Optimizer<float>*>(&opt), meta);
        }
    }
    return stats;
}

/// Load MNIST, applying --limit to the training set.
inline std::pair<Dataset<float>, Dataset<float>> load(const Options& o) {
    Dataset<float> train_set = load_mnist<float>(o.data_dir, Split::Train);
    Dataset<float> test_set = load_mnist<float>(o.data_dir, Split::Test);
    if (o.limit > 0) train_set = train_set.head(o.limit);
    return {std::move(train_set), std::move(test_set)};
}

inline void make_dir(const std::string& dir) {
    if (::mkdir(dir.c_str(), 0777) != 0 && errno != EEXIST)
        throw std::runtime_error(dir + ": cannot create output folder (" + std::strerror(errno) + ")");
}

/// A minimal JSON object writer for the report (numbers, strings, number lists).
class Json {
public:
    Json& num(const std::string& k, double v) { return raw(k, fmt(v)); }
    Json& str(const std::string& k, const std::string& v) {
        std::string q = "\"";
        for (char c : v) {
            if (c == '"' || c == '\\') q += '\\';
            if (static_cast<unsigned char>(c) < 0x20) {
                char b[8];
                std::snprintf(b, sizeof b, "\\u%04x", c);
                q += b;
            } else {
                q += c;
            }
        }
        return raw(k, q + "\"");
    }
    Json& list(const std::string& k, const std::vector<double>& v) {
        std::string s = "[";
        for (std::size_t i = 0; i < v.size(); ++i) s += (i ? ", " : "") + fmt(v[i]);
        return raw(k, s + "]");
    }
    std::string dump() const { return "{\n" + body_ + "\n}\n"; }

private:
    static std::string fmt(double v) {
        if (!std::isfinite(v)) return "null";
        std::ostringstream os;
        os << std::setprecision(10) << v;
        return os.str();
    }
    Json& raw(const std::string& k, const std::string& v) {
        body_ += (body_.empty() ? "  \"" : ",\n  \"") + k + "\": " + v;
        return *this;
    }
    std::string body_;
};

inline void add_config(Json& j, const Options& o) {
    j.str("data", o.data_dir).num("epochs", o.epochs).num("batch_size", o.batch_size).num("lr", o.lr);
    j.num("seed", static_cast<double>(o.seed)).num("threads", o.threads);
}

inline void add_epochs(Json& j, const std::string& prefix, const std::vector<EpochStats>& s) {
    std::vector<double> sec, loss;
    for (const auto& e : s) sec.push_back(e.seconds), loss.push_back(e.mean_loss);
    j.list(prefix + "epoch_seconds", sec).list(prefix + "epoch_loss", loss);
}

/// Mean throughput over all epochs: images trained on / seconds spent.
inline double images_per_second(const std::vector<EpochStats>& s) {
    double img = 0, sec = 0;
    for (const auto& e : s) img += e.images_per_second * e.seconds, sec += e.seconds;
    return sec > 0 ? img / sec : 0;
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
