// SPDX-License-Identifier: MIT
// Forward and backward time of every layer of the seed model, batch 500,
// averaged over 10 iterations after 2 warm-up ones; shows where an epoch goes.
// The layers run one at a time here; the last lines time the whole model's
// forward + backward with Sequential's Conv2d -> MaxPool2d -> ReLU fusion on
// and off (alternating, median of 15 each).
//
//   build/bench/layer_profile [threads]        (default: all cores)
#include <eigencnn/eigencnn.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

using namespace eigencnn;
using Clock = std::chrono::steady_clock;

int main(int argc, char** argv) {
    if (argc == 2 && (std::string(argv[1]) == "--help" || std::string(argv[1]) == "-h")) {
        std::printf("usage: %s [threads]   per-layer forward and backward times of the seed model (default: all cores)\n", argv[0]);
        return 0;
    }
    if (argc == 2 && std::string(argv[1]) == "--version") {
        std::printf("layer_profile (eigencnn %s)\n", version());
        return 0;
    }
    if (argc > 2 || (argc == 2 && (std::atoi(argv[1]) < 1 || std::to_string(std::atoi(argv[1])) != argv[1]))) {
        std::fprintf(stderr, "usage: %s [threads]   (threads: a whole number >= 1; default: all cores)\n", argv[0]);
        return 2;
    }
    set_num_threads(argc > 1 ? std::atoi(argv[1]) : num_threads());
    auto net = mnist_cnn<float>(1);
    Tensor<float> x(Shape{500, 1, 28, 28});
    Rng rng(1);
    uniform_fill(x, 1.0, rng);
    x.vector() = x.vector().cwiseAbs();
    std::vector<int> labels(500);
    for (std::size_t i = 0; i < labels.size(); ++i) labels[i] = static_cast<int>(i % 10);
    const int warmup = 2, iters = 10;
    std::vector<double> fw(net.size()), bw(net.size());
    Tensor<float> grad;
    for (int it = 0; it < warmup + iters; ++it) {
        const Tensor<float>* h = &x;
        const auto& order = net.execution_order();  // a ReLU before a MaxPool2d runs after it
        for (std::size_t i : order) {
            const auto t0 = Clock::now();
            h = &net[i].forward(*h);
            if (it >= warmup) fw[i] += std::chrono::duration<double>(Clock::now() - t0).count();
        }
        cross_entropy(*h, labels, grad);
        const Tensor<float>* g = &grad;
        for (std::size_t k = order.size(); k-- > 0;) {
            const std::size_t i = order[k];
            const auto t0 = Clock::now();
            g = &net[i].backward(*g);
            if (it >= warmup) bw[i] += std::chrono::duration<double>(Clock::now() - t0).count();
        }
    }
    double total = 0;
    std::printf("%-45s %10s %10s\n", "layer (batch 500)", "fwd ms", "bwd ms");
    for (std::size_t i = 0; i < net.size(); ++i) {
        std::printf("%-45s %10.2f %10.2f\n", net[i].name().c_str(), 1e3 * fw[i] / iters, 1e3 * bw[i] / iters);
        total += fw[i] + bw[i];
    }
    std::printf("total %.2f ms per batch, %.2f s for 120 batches (one epoch without data loading and Adam)\n", 1e3 * total / iters,
                120 * total / iters);

    std::vector<double> times[2];
    for (int it = 0; it < 2 * (warmup + 15); ++it) {
        const bool fused = it % 2 == 0;
        net.set_fusion(fused);
        const auto t0 = Clock::now();
        cross_entropy(net.forward(x), labels, grad);
        net.backward(grad);
        if (it >= 2 * warmup) times[fused].push_back(std::chrono::duration<double>(Clock::now() - t0).count());
    }
    for (int fused = 1; fused >= 0; --fused) {
        auto& t = times[fused];
        std::nth_element(t.begin(), t.begin() + t.size() / 2, t.end());
        std::printf("Sequential forward + backward, fusion %-3s: median %.2f ms per batch\n", fused ? "on" : "off",
                    1e3 * t[t.size() / 2]);
    }
}
