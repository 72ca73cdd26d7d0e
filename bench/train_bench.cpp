// SPDX-License-Identifier: MIT
// End-to-end benchmark of the seed model: the notebook's training loop
// (batch 500, Adam lr 1e-3, shuffled) and batched inference on the test set.
// Prints seconds per epoch (each and median), training images/s, inference
// images/s and peak resident memory, then one JSON line for bench/compare.sh.
//
//   build/bench/train_bench [--data data/mnist] [--epochs 3] [--threads 2] [--batch-size 500] [--inference-passes 5]
//
// Without MNIST it uses random images of the same shape (the speed does not
// depend on the pixel values) and says so.
#include <eigencnn/eigencnn.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <sys/resource.h>

using namespace eigencnn;

namespace {

Dataset<float> random_mnist(Index n, std::uint64_t seed) {
    Dataset<float> d;
    d.images.resize(Shape{n, 1, 28, 28});
    Rng rng(seed);
    uniform_fill(d.images, 1.0, rng);
    d.images.vector() = d.images.vector().cwiseAbs();
    for (Index i = 0; i < n; ++i) d.labels.push_back(static_cast<int>(rng.below(10)));
    return d;
}

double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    const std::size_t m = v.size() / 2;
    return v.size() % 2 ? v[m] : 0.5 * (v[m - 1] + v[m]);
}

double peak_rss_mb() {
    rusage u{};
    getrusage(RUSAGE_SELF, &u);
    return static_cast<double>(u.ru_maxrss) / 1024.0;  // ru_maxrss is in KiB on Linux
}

}  // namespace

int main(int argc, char** argv) {
    std::string data = "data/mnist";
    int epochs = 3, threads = num_threads(), batch = 500, inference_passes = 5;
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        auto value = [&](const char* flag) {
            if (i + 1 >= argc) {
                std::fprintf(stderr, "train_bench: %s needs a value\n", flag);
                std::exit(2);
            }
            return std::string(argv[++i]);
        };
        auto number = [&](const char* flag) {
            const std::string v = value(flag);
            char* end = nullptr;
            const long n = std::strtol(v.c_str(), &end, 10);
            if (v.empty() || *end != '\0' || n < 1 || n > 1000000) {
                std::fprintf(stderr, "train_bench: %s must be a whole number from 1 to 1000000, got '%s'\n", flag, v.c_str());
                std::exit(2);
            }
            return static_cast<int>(n);
        };
        if (a == "--help" || a == "-h") {
            std::printf("usage: train_bench [--data DIR] [--epochs N] [--threads N] [--batch-size N] [--inference-passes N]\n"
                        "  seconds per epoch of the seed model, inference images/s and peak memory; a JSON line last\n");
            return 0;
        }
        if (a == "--version") {
            std::printf("train_bench (eigencnn %s)\n", version());
            return 0;
        }
        if (a == "--data") data = value("--data");
        else if (a == "--epochs") epochs = number("--epochs");
        else if (a == "--threads") threads = number("--threads");
        else if (a == "--batch-size") batch = number("--batch-size");
        else if (a == "--inference-passes") inference_passes = number("--inference-passes");
        else {
            std::fprintf(stderr, "train_bench: unknown argument '%s' (flags: --data DIR --epochs N --threads N --batch-size N --inference-passes N)\n",
                         a.c_str());
            return 2;
        }
    }
    if (epochs < 1 || threads < 1 || batch < 1) {
        std::fprintf(stderr, "train_bench: --epochs, --threads and --batch-size must be >= 1\n");
        return 2;
    }
    set_num_threads(threads);
    Dataset<float> train, test;
    std::string source = data;
    const auto load_start = std::chrono::steady_clock::now();
    try {
        train = load_mnist<float>(data, Split::Train);
        test = load_mnist<float>(data, Split::Test);
        std::printf("loaded %s: %.3f s\n", data.c_str(), std::chrono::duration<double>(std::chrono::steady_clock::now() - load_start).count());
    } catch (const IdxError& e) {
        std::printf("no MNIST (%s): using random images of the same shape\n", e.what());
        train = random_mnist(60000, 1);
        test = random_mnist(10000, 2);
        source = "random";
    }
    auto net = mnist_cnn<float>(0);
    Adam<float> adam(net.parameters());
    DataLoader<float> loader(train, batch, true, 1);
    std::vector<double> secs;
    for (int e = 0; e < epochs; ++e) {
        const EpochStats s = train_epoch(net, adam, loader, static_cast<std::uint64_t>(e));
        secs.push_back(s.seconds);
        std::printf("epoch %d: %.3f s, %.0f images/s, loss %.4f\n", e + 1, s.seconds, static_cast<double>(train.size()) / s.seconds,
                    s.mean_loss);
    }
    // Inference: the whole test set in batches of 1000, the median of the passes (5 by default).
    std::vector<double> inf;
    double acc = 0;
    for (int r = 0; r < inference_passes; ++r) {
        const auto t0 = std::chrono::steady_clock::now();
        acc = evaluate(net, test, 1000);
        inf.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    }
    const double epoch_med = median(secs);
    const double inf_ips = static_cast<double>(test.size()) / median(inf);
    std::printf("eigencnn: %d thread(s), median epoch %.3f s, %.0f train images/s, inference %.0f images/s, peak RSS %.0f MB, test acc %.4f\n",
                threads, epoch_med, static_cast<double>(train.size()) / epoch_med, inf_ips, peak_rss_mb(), acc);
    std::printf("{\"impl\": \"eigencnn\", \"threads\": %d, \"data\": \"%s\", \"epoch_seconds_median\": %.4f, \"train_images_per_second\": %.1f, "
                "\"inference_images_per_second\": %.1f, \"inference_passes\": %d, \"peak_rss_mb\": %.1f}\n",
                threads, source.c_str(), epoch_med, static_cast<double>(train.size()) / epoch_med, inf_ips, inference_passes, peak_rss_mb());
    return 0;
}
