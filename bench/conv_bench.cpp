// SPDX-License-Identifier: MIT
// Micro-benchmarks of Conv2d (forward for inference and for training, backward of weights only, of
// data only, of weights and data) on the shapes of small CNNs (layer_shapes) at batches 1, 8, 64
// (and 500 for the seed model), next to oneDNN on the same shapes and passes when the build found
// libdnnl-dev (EIGENCNN_BENCH_ONEDNN; the label of each oneDNN row names its implementation), and
// Eigen's large square GEMM. Every benchmark reports GFLOP/s (counter "GFLOPS"; a multiply-add is 2
// FLOP); bench/fma_peak gives the machine's peak to read them against, and bench/conv_table.py turns
// a JSON run into the table of ratios (docs/performance.md).
//
//   build/bench/conv_bench [--benchmark_filter=seed] [--threads N] [--no-winograd]   (default: all cores, Winograd on)
//
// Benchmark names: PASS/IMPLEMENTATION/SHAPE_bBATCH. "eigencnn" is the library's Conv2d (im2col +
// GEMM per image, images spread over threads); "batched" is the alternative kept here only
// for comparison: im2col of the whole batch and one GEMM (see docs/performance.md).
// "pooled_backward" compares the two backward strategies of a fused
// Conv2d -> ReLU -> MaxPool2d step (fusion/conv_pool.hpp): "dense" and "winners"; "pooled_forward/fused"
// times that step's forward (seed shapes, batch 500).
#include <benchmark/benchmark.h>
#include <eigencnn/eigencnn.hpp>
#ifdef EIGENCNN_BENCH_ONEDNN
#include "onednn_conv.hpp"
#endif

#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

using namespace eigencnn;

namespace {

struct ConvShape {
    std::string name;  // "<kind>_b<batch>"
    Index n, c, h, w, oc, k, stride, pad;
};

// The layer shapes a small CNN meets, without the batch: the seed model's two convs, 3x3 pad 1 convs
// (the first with 3 input channels, as on CIFAR images), a stride-2 3x3 and a 1x1 projection.
struct LayerShape {
    const char* name;
    Index c, h, w, oc, k, stride, pad;
    bool seed;  // the seed model's convs also run at batch 500 and in the pooled (fused) backward
};
const LayerShape layer_shapes[] = {
    {"seed_conv1", 1, 28, 28, 16, 5, 1, 0, true},
    {"seed_conv2", 16, 12, 12, 32, 5, 1, 0, true},
    {"3x3_s1_c3_16_32x32", 3, 32, 32, 16, 3, 1, 1, false},
    {"3x3_s1_c32_32x32", 32, 32, 32, 32, 3, 1, 1, false},
    {"3x3_s1_c64_16x16", 64, 16, 16, 64, 3, 1, 1, false},
    {"3x3_s2_c64_128_32x32", 64, 32, 32, 128, 3, 2, 1, false},
    {"3x3_s1_c128_16x16", 128, 16, 16, 128, 3, 1, 1, false},
    {"1x1_s1_c64_128_16x16", 64, 16, 16, 128, 1, 1, 0, false},
};
const Index batches[] = {1, 8, 64, 500};

std::vector<ConvShape> all_shapes() {
    std::vector<ConvShape> out;
    for (const auto& l : layer_shapes)
        for (Index n : batches) {
            if (n == 500 && !l.seed) continue;  // batch 500 is the seed model's; 64 stands for large batches elsewhere
            out.push_back({std::string(l.name) + "_b" + std::to_string(n), n, l.c, l.h, l.w, l.oc, l.k, l.stride, l.pad});
        }
    return out;
}

double conv_flop(const ConvShape& s) {
    const Index oh = (s.h + 2 * s.pad - s.k) / s.stride + 1, ow = (s.w + 2 * s.pad - s.k) / s.stride + 1;
    return 2.0 * static_cast<double>(s.n * s.oc * oh * ow * s.c * s.k * s.k);
}

Tensor<float> random_input(const Shape& shape) {
    Tensor<float> t(shape);
    Rng rng(1);
    uniform_fill(t, 1.0, rng);
    return t;
}

// --no-winograd: every eigencnn Conv2d here on the direct kernels (Conv2d::set_winograd(false)), for the
// stride-1 3x3 shapes that otherwise run by Winograd F(2x2, 3x3). GFLOPS counts the direct convolution's
// multiply-adds either way, so a Winograd cell's figure is an effective rate (it may exceed bench/fma_peak).
bool g_winograd = true;
Conv2d<float> bench_conv(const ConvShape& s) {
    Conv2d<float> conv(s.c, s.oc, s.k, s.stride, s.pad);
    conv.set_winograd(g_winograd);
    return conv;
}

// The batched alternative: col [R, N*P] for the whole batch, one GEMM, then a
// scatter of Y [OC, N*P] into NCHW order.
struct BatchedConv {
    Conv2d<float> layer;
    Tensor<float> col, gemm, out;
    explicit BatchedConv(const ConvShape& s) : layer(s.c, s.oc, s.k, s.stride, s.pad) {}
    void forward(const Tensor<float>& x) {
        const Shape ys = layer.output_shape(x.shape());
        const Index N = ys[0], P = ys[2] * ys[3], C = x.dim(1), H = x.dim(2), W = x.dim(3), K = layer.kernel_size();
        const Index S = layer.stride(), pad = layer.padding(), R = C * K * K, OW = ys[3];
        col.resize(Shape{R, N * P});
#pragma omp parallel for collapse(2) schedule(static)
        for (Index n = 0; n < N; ++n)
            for (Index c = 0; c < C; ++c)
                for (Index a = 0; a < K; ++a)
                    for (Index b = 0; b < K; ++b) {
                        float* dst = col.data() + ((c * K + a) * K + b) * N * P + n * P;
                        for (Index p = 0; p < P; ++p) {
                            const Index hh = (p / OW) * S + a - pad, ww = (p % OW) * S + b - pad;
                            dst[p] = (hh >= 0 && hh < H && ww >= 0 && ww < W) ? x(n, c, hh, ww) : 0.0f;
                        }
                    }
        gemm.resize(Shape{layer.out_channels(), N * P});
        gemm.matrix(layer.out_channels(), N * P).noalias() = layer.weight().matrix(layer.out_channels(), R) * col.matrix(R, N * P);
        out.resize(ys);
#pragma omp parallel for collapse(2) schedule(static)
        for (Index n = 0; n < N; ++n)
            for (Index o = 0; o < layer.out_channels(); ++o) {
                const float* src = gemm.data() + o * N * P + n * P;
                float* dst = out.data() + (n * layer.out_channels() + o) * P;
                for (Index p = 0; p < P; ++p) dst[p] = src[p] + layer.bias()[o];
            }
    }
};

void set_counters(benchmark::State& state, double flop) {
    state.counters["GFLOPS"] = benchmark::Counter(flop, benchmark::Counter::kIsIterationInvariantRate, benchmark::Counter::kIs1000);
    state.counters["GFLOPS"].value /= 1e9;
}

void BM_forward_per_image(benchmark::State& state, ConvShape s) {
    Conv2d<float> conv = bench_conv(s);
    const auto x = random_input(Shape{s.n, s.c, s.h, s.w});
    for (auto _ : state) benchmark::DoNotOptimize(conv.forward(x).data());
    set_counters(state, conv_flop(s));
}

// Inference: gradients disabled, so the conv keeps nothing for a backward (what evaluate/predict run).
void BM_forward_inference_per_image(benchmark::State& state, ConvShape s) {
    Conv2d<float> conv = bench_conv(s);
    conv.set_mode(Mode::Eval);
    conv.set_grad_enabled(false);
    const auto x = random_input(Shape{s.n, s.c, s.h, s.w});
    for (auto _ : state) benchmark::DoNotOptimize(conv.forward(x).data());
    set_counters(state, conv_flop(s));
}

void BM_forward_batched(benchmark::State& state, ConvShape s) {
    BatchedConv conv(s);
    const auto x = random_input(Shape{s.n, s.c, s.h, s.w});
    for (auto _ : state) {
        conv.forward(x);
        benchmark::DoNotOptimize(conv.out.data());
    }
    set_counters(state, conv_flop(s));
}

// A conv after one forward of a random batch, with a random output gradient: what the backward benchmarks time.
struct AfterForward {
    Conv2d<float> conv;
    Tensor<float> g;
    explicit AfterForward(const ConvShape& s) : conv(bench_conv(s)) {
        const auto x = random_input(Shape{s.n, s.c, s.h, s.w});
        g = random_input(conv.output_shape(x.shape()));
        conv.forward(x);
    }
};

// backward with set_input_grad(false): weight and bias gradients only.
void BM_backward_weights(benchmark::State& state, ConvShape s) {
    AfterForward b(s);
    b.conv.set_input_grad(false);
    for (auto _ : state) benchmark::DoNotOptimize(b.conv.backward(b.g).data());
    set_counters(state, conv_flop(s));
}

// The data gradient alone (Conv2d::backward_input): W^T * dy and fold per image.
void BM_backward_data(benchmark::State& state, ConvShape s) {
    AfterForward b(s);
    for (auto _ : state) benchmark::DoNotOptimize(b.conv.backward_input(b.g).data());
    set_counters(state, conv_flop(s));
}

// Full backward: weight gradients and the data gradient (twice the FLOP of forward).
void BM_backward_weights_and_data(benchmark::State& state, ConvShape s) {
    AfterForward b(s);
    for (auto _ : state) benchmark::DoNotOptimize(b.conv.backward(b.g).data());
    set_counters(state, 2 * conv_flop(s));
}

// The conv's backward inside a fused Conv2d -> ReLU -> MaxPool2d(2) step (what Sequential runs for the
// seed model), with the input gradient, by either strategy: "dense" (winners' gradients scattered
// into dy, then im2col + GEMMs) or "winners" (Conv2d::backward_sparse, which only visits the pool's
// winners). GFLOPS counts the dense FLOP (twice the forward's) for both, so the figures compare
// directly; for "winners" it is an effective rate, not arithmetic done.
void BM_pooled_backward(benchmark::State& state, ConvShape s, PooledBackward how) {
    Conv2d<float> conv = bench_conv(s);
    MaxPool2d<float> pool(2);
    ConvPool<float> step(conv, pool, true, how);
    const auto x = random_input(Shape{s.n, s.c, s.h, s.w});
    const auto g = random_input(pool.output_shape(conv.output_shape(x.shape())));
    step.forward(x);
    for (auto _ : state) benchmark::DoNotOptimize(step.backward(g).data());
    set_counters(state, 2 * conv_flop(s));
}

// The fused Conv2d -> MaxPool2d(2) -> ReLU step's forward (fusion/conv_pool.hpp), keeping the pool's winners for
// the backward, as training runs it: on the seed conv1 the conv and the pool in one kernel
// (kernels/conv2d_planar_pool.hpp), on conv2 the conv image by image with the pool on its output in cache.
// GFLOPS counts the conv's FLOP.
void BM_pooled_forward(benchmark::State& state, ConvShape s) {
    Conv2d<float> conv = bench_conv(s);
    MaxPool2d<float> pool(2);
    ConvPool<float> step(conv, pool, true);
    const auto x = random_input(Shape{s.n, s.c, s.h, s.w});
    for (auto _ : state) benchmark::DoNotOptimize(step.forward(x).data());
    set_counters(state, conv_flop(s));
}

// Eigen's large float GEMM: the practical peak the conv kernels are measured against.
void BM_eigen_gemm(benchmark::State& state) {
    const Index n = state.range(0);
    Eigen::MatrixXf a = Eigen::MatrixXf::Random(n, n), b = Eigen::MatrixXf::Random(n, n), c(n, n);
    for (auto _ : state) {
        c.noalias() = a * b;
        benchmark::DoNotOptimize(c.data());
    }
    set_counters(state, 2.0 * static_cast<double>(n) * n * n);
}

#ifdef EIGENCNN_BENCH_ONEDNN
// oneDNN on the same shape and pass, its layout its own, reorders outside the timed region
// (onednn_conv.hpp). The first run of each forward is checked against eigencnn's output.
void BM_onednn(benchmark::State& state, ConvShape s, onednn_bench::Pass pass) {
    Conv2d<float> conv = bench_conv(s);
    const auto x = random_input(Shape{s.n, s.c, s.h, s.w});
    const auto dy = random_input(conv.output_shape(x.shape()));
    const onednn_bench::ConvDims d{s.n, s.c, s.h, s.w, s.oc, s.k, s.stride, s.pad};
    onednn_bench::OneDnnConv prim(d, pass, x.data(), conv.weight().data(), conv.bias().data(), dy.data());
    if (pass == onednn_bench::Pass::ForwardInference || pass == onednn_bench::Pass::ForwardTraining) {
        const Tensor<float>& y = conv.forward(x);
        const double diff = prim.check_forward(std::vector<float>(y.data(), y.data() + y.size()));
        if (diff > 1e-4) state.SkipWithError(("oneDNN's forward differs from eigencnn's by " + std::to_string(diff)).c_str());
    }
    for (auto _ : state) prim.run();
    state.SetLabel(prim.impl());
    set_counters(state, conv_flop(s));
}
#endif

int register_all() {
    benchmark::RegisterBenchmark("eigen_gemm", BM_eigen_gemm)->Arg(2048)->Unit(benchmark::kMillisecond)->UseRealTime();
    const auto reg = [](const std::string& name, auto fn, const ConvShape& s, auto... extra) {
        benchmark::RegisterBenchmark(name.c_str(), fn, s, extra...)->Unit(benchmark::kMillisecond)->UseRealTime();
    };
    for (const auto& s : all_shapes()) {
        const std::string& n = s.name;
        const bool seed_b500 = n.rfind("seed_", 0) == 0 && s.n == 500;
        reg("forward_inference/eigencnn/" + n, BM_forward_inference_per_image, s);
        reg("forward_training/eigencnn/" + n, BM_forward_per_image, s);
        reg("backward_weights/eigencnn/" + n, BM_backward_weights, s);
        reg("backward_data/eigencnn/" + n, BM_backward_data, s);
        reg("backward_weights_data/eigencnn/" + n, BM_backward_weights_and_data, s);
#ifdef EIGENCNN_BENCH_ONEDNN
        reg("forward_inference/onednn/" + n, BM_onednn, s, onednn_bench::Pass::ForwardInference);
        reg("forward_training/onednn/" + n, BM_onednn, s, onednn_bench::Pass::ForwardTraining);
        reg("backward_weights/onednn/" + n, BM_onednn, s, onednn_bench::Pass::BackwardWeights);
        reg("backward_data/onednn/" + n, BM_onednn, s, onednn_bench::Pass::BackwardData);
#endif
        if (seed_b500) {  // the strategies compared in docs/performance.md, on the seed model's shapes
            reg("forward_training/batched/" + n, BM_forward_batched, s);
            reg("pooled_forward/fused/" + n, BM_pooled_forward, s);
            reg("pooled_backward/dense/" + n, BM_pooled_backward, s, PooledBackward::Dense);
            reg("pooled_backward/winners/" + n, BM_pooled_backward, s, PooledBackward::Winners);
        }
    }
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    int threads = num_threads();
    for (int i = 1; i < argc; ++i)
        if (std::strcmp(argv[i], "--version") == 0) {
            std::printf("conv_bench (eigencnn %s)\n", version());
            return 0;
        }
    for (int i = 1; i < argc; ++i)
        if (std::strcmp(argv[i], "--threads") == 0 && i + 1 < argc) {
            threads = std::atoi(argv[i + 1]);
            if (threads < 1 || std::to_string(threads) != argv[i + 1]) {
                std::fprintf(stderr, "conv_bench: --threads needs a whole number >= 1, got '%s'\n", argv[i + 1]);
                return 2;
            }
            for (int j = i; j + 2 <= argc; ++j) argv[j] = argv[j + 2];
            argc -= 2;
            break;
        }
    for (int i = 1; i < argc; ++i)
        if (std::strcmp(argv[i], "--no-winograd") == 0) {
            g_winograd = false;
            for (int j = i; j + 1 <= argc; ++j) argv[j] = argv[j + 1];
            argc -= 1;
            break;
        }
    set_num_threads(threads);
    benchmark::AddCustomContext("threads", std::to_string(threads));
    benchmark::AddCustomContext("winograd", g_winograd ? "on" : "off");
    register_all();
    benchmark::Initialize(&argc, argv);
    if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
    benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();
    return 0;
}
