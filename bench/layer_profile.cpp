// SPDX-License-Identifier: MIT
// Forward and backward time of every layer of the seed model, batch 500,
// averaged over 10 iterations after 2 warm-up ones; shows where an epoch goes.
// The layers run one at a time here; the last lines time the whole model's
// forward + backward with Sequential's Conv2d -> MaxPool2d -> ReLU fusion on
// and off (alternating, median of 15 each), then each step of the fused
// model on its own (mean of 10), then the input gradient with
// frozen weights in eval mode at batch 100 (what label-consistent's PGD and
// Neural Cleanse run: forward, then backward_input),
// fusion on and off likewise.
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

    // Two copies of the model, one fused and one not, so that the alternation does not
    // rebuild the execution plan (and reallocate every fused step's buffers) on each call.
    Sequential<float> nets[2] = {mnist_cnn<float>(1), mnist_cnn<float>(1)};
    nets[0].set_fusion(false);
    nets[1].set_fusion(true);
    std::vector<double> times[2];
    for (int it = 0; it < 2 * (warmup + 15); ++it) {
        const bool fused = it % 2 == 0;
        const auto t0 = Clock::now();
        cross_entropy(nets[fused].forward(x), labels, grad);
        nets[fused].backward(grad);
        if (it >= 2 * warmup) times[fused].push_back(std::chrono::duration<double>(Clock::now() - t0).count());
    }
    for (int fused = 1; fused >= 0; --fused) {
        auto& t = times[fused];
        std::nth_element(t.begin(), t.begin() + t.size() / 2, t.end());
        std::printf("Sequential forward + backward, fusion %-3s: median %.2f ms per batch\n", fused ? "on" : "off",
                    1e3 * t[t.size() / 2]);
    }

    // The fused model step by step (what training runs): forward and backward of each plan step, mean of 10.
    {
        Sequential<float>& net_fused = nets[1];
        cross_entropy(net_fused.forward(x), labels, grad);  // sets every layer's input-gradient flag as training does
        net_fused.backward(grad);
        const auto& steps = net_fused.plan().steps();
        std::vector<double> sf(steps.size()), sb(steps.size());
        for (int it = 0; it < warmup + iters; ++it) {
            const Tensor<float>* h = &x;
            for (std::size_t k = 0; k < steps.size(); ++k) {
                const auto t0 = Clock::now();
                h = steps[k].fused ? &steps[k].fused->forward(*h) : &net_fused[steps[k].layers[0]].forward(*h);
                if (it >= warmup) sf[k] += std::chrono::duration<double>(Clock::now() - t0).count();
            }
            cross_entropy(*h, labels, grad);
            const Tensor<float>* g = &grad;
            for (std::size_t k = steps.size(); k-- > 0;) {
                const auto t0 = Clock::now();
                g = steps[k].fused ? &steps[k].fused->backward(*g) : &net_fused[steps[k].layers[0]].backward(*g);
                if (it >= warmup) sb[k] += std::chrono::duration<double>(Clock::now() - t0).count();
            }
        }
        std::printf("%-45s %10s %10s\n", "fused step (batch 500)", "fwd ms", "bwd ms");
        double fused_total = 0;
        for (std::size_t k = 0; k < steps.size(); ++k) {
            const std::string name = steps[k].fused ? steps[k].fused->name() : net_fused[steps[k].layers[0]].name();
            std::printf("%-45s %10.2f %10.2f\n", name.substr(0, 45).c_str(), 1e3 * sf[k] / iters, 1e3 * sb[k] / iters);
            fused_total += sf[k] + sb[k];
        }
        std::printf("total %.2f ms per batch, fused steps one at a time\n", 1e3 * fused_total / iters);
    }

    // Input gradients, frozen weights: eval mode, batch 100 (PGD's batch).
    for (auto& n : nets) n.eval();
    const Index NB = 100;
    Tensor<float> xb(Shape{NB, 1, 28, 28});
    std::copy(x.data(), x.data() + xb.size(), xb.data());
    std::vector<int> labels_b(labels.begin(), labels.begin() + NB);
    std::vector<double> fwd_times[2], bin_times[2];
    for (int it = 0; it < 2 * (warmup + 15); ++it) {
        const bool fused = it % 2 == 0;
        const auto t0 = Clock::now();
        cross_entropy(nets[fused].forward(xb), labels_b, grad);
        const auto t1 = Clock::now();
        nets[fused].backward_input(grad);
        const auto t2 = Clock::now();
        if (it >= 2 * warmup) {
            fwd_times[fused].push_back(std::chrono::duration<double>(t1 - t0).count());
            bin_times[fused].push_back(std::chrono::duration<double>(t2 - t1).count());
        }
    }
    auto median = [](std::vector<double> t) {
        std::nth_element(t.begin(), t.begin() + t.size() / 2, t.end());
        return t[t.size() / 2];
    };
    for (int fused = 1; fused >= 0; --fused) {
        const double f = median(fwd_times[fused]), b = median(bin_times[fused]);
        std::printf("eval, batch %d, fusion %-3s: forward %.2f us/img, backward_input %.2f us/img (medians of 15); "
                    "forward + backward_input %.0f images/s\n",
                    static_cast<int>(NB), fused ? "on" : "off", 1e6 * f / NB, 1e6 * b / NB, NB / (f + b));
    }
}
