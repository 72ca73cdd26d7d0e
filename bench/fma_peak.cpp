// SPDX-License-Identifier: MIT
// fma_peak: the machine's true floating-point peak, the ceiling the conv kernels are measured against.
//
//   build/bench/fma_peak [--threads T] [--seconds S]
//
// A loop of independent fused multiply-adds with enough accumulators to hide the FMA latency on every
// pipe: with latency L cycles and P FMA pipes a core needs at least L * P independent chains (Zen 4/5:
// 4 cycles x 2 pipes = 8; Intel server parts 4 x 2 = 8); 16 are used, as the issue asks. Each FMA on a
// W-lane register is 2 * W FLOP (a multiply-add counts 2). The widest instruction set the processor
// supports is chosen at run time (AVX-512F, else AVX2+FMA, else none), whatever -march the build used.
// Prints GFLOP/s for float and double, on one thread and on T threads (default: all cores), as the median
// of 5 runs of about S seconds (default 0.3).
//
// With AVX-512 it also times the loop the kernels are made of (kernels/gemm.hpp, conv2d_direct_planes.hpp):
// a block of NO x NV accumulators, each step NV vector loads and NO broadcasts from L1, then NO * NV FMAs.
// Its rate, not the bare FMA loop's, is the ceiling those kernels can reach: the loads take issue slots
// and load ports of their own (on the Intel Xeon of December 2026, 6 x 4: 219-225 GFLOP/s on one thread
// where the bare loop gives 239-240, 91-94%).
#include <eigencnn/version.hpp>
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define FMA_PEAK_X86 1
#endif

namespace {

constexpr int kAccumulators = 16;
constexpr long kInnerIterations = 1 << 16;  // FMAs per accumulator between clock reads

#ifdef FMA_PEAK_X86
// Returns a value that depends on every accumulator so that the compiler keeps the loop.
__attribute__((target("avx512f"))) double run_avx512_float(long outer) {
    __m512 acc[kAccumulators];
    for (int a = 0; a < kAccumulators; ++a) acc[a] = _mm512_set1_ps(0.001f * static_cast<float>(a));
    const __m512 mul = _mm512_set1_ps(0.999999f), add = _mm512_set1_ps(1e-7f);
    for (long o = 0; o < outer; ++o)
        for (long i = 0; i < kInnerIterations; ++i)
#pragma GCC unroll 16
            for (int a = 0; a < kAccumulators; ++a) acc[a] = _mm512_fmadd_ps(acc[a], mul, add);
    float lanes[16], total = 0;  // stored, not _mm512_reduce_add_ps: GCC 12 warns inside that intrinsic
    for (int a = 0; a < kAccumulators; ++a) {
        _mm512_storeu_ps(lanes, acc[a]);
        for (float v : lanes) total += v;
    }
    return total;
}
__attribute__((target("avx512f"))) double run_avx512_double(long outer) {
    __m512d acc[kAccumulators];
    for (int a = 0; a < kAccumulators; ++a) acc[a] = _mm512_set1_pd(0.001 * a);
    const __m512d mul = _mm512_set1_pd(0.999999), add = _mm512_set1_pd(1e-7);
    for (long o = 0; o < outer; ++o)
        for (long i = 0; i < kInnerIterations; ++i)
#pragma GCC unroll 16
            for (int a = 0; a < kAccumulators; ++a) acc[a] = _mm512_fmadd_pd(acc[a], mul, add);
    double lanes[8], total = 0;
    for (int a = 0; a < kAccumulators; ++a) {
        _mm512_storeu_pd(lanes, acc[a]);
        for (double v : lanes) total += v;
    }
    return total;
}
__attribute__((target("avx2,fma"))) double run_avx2_float(long outer) {
    __m256 acc[kAccumulators];
    for (int a = 0; a < kAccumulators; ++a) acc[a] = _mm256_set1_ps(0.001f * static_cast<float>(a));
    const __m256 mul = _mm256_set1_ps(0.999999f), add = _mm256_set1_ps(1e-7f);
    for (long o = 0; o < outer; ++o)
        for (long i = 0; i < kInnerIterations; ++i)
#pragma GCC unroll 16
            for (int a = 0; a < kAccumulators; ++a) acc[a] = _mm256_fmadd_ps(acc[a], mul, add);
    float lanes[8], total = 0;
    for (int a = 0; a < kAccumulators; ++a) {
        _mm256_storeu_ps(lanes, acc[a]);
        for (float v : lanes) total += v;
    }
    return total;
}
__attribute__((target("avx2,fma"))) double run_avx2_double(long outer) {
    __m256d acc[kAccumulators];
    for (int a = 0; a < kAccumulators; ++a) acc[a] = _mm256_set1_pd(0.001 * a);
    const __m256d mul = _mm256_set1_pd(0.999999), add = _mm256_set1_pd(1e-7);
    for (long o = 0; o < outer; ++o)
        for (long i = 0; i < kInnerIterations; ++i)
#pragma GCC unroll 16
            for (int a = 0; a < kAccumulators; ++a) acc[a] = _mm256_fmadd_pd(acc[a], mul, add);
    double lanes[4], total = 0;
    for (int a = 0; a < kAccumulators; ++a) {
        _mm256_storeu_pd(lanes, acc[a]);
        for (double v : lanes) total += v;
    }
    return total;
}

// The kernels' loop: NO x NV accumulators; each step loads NV vectors of "inputs" and broadcasts NO
// "weights" from a 16 KB block that stays in L1 (64 steps, then the same block again).
constexpr long kTileSteps = 64;
template <int NO, int NV>
__attribute__((target("avx512f"))) double run_avx512_tile(long outer) {
    alignas(64) static thread_local float inputs[kTileSteps * NV * 16], weights[kTileSteps * NO];
    for (long i = 0; i < kTileSteps * NV * 16; ++i) inputs[i] = 1e-3f * static_cast<float>(i % 7);
    for (long i = 0; i < kTileSteps * NO; ++i) weights[i] = 0.999f + 1e-4f * static_cast<float>(i % 5);
    __m512 acc[NO][NV];
    for (int o = 0; o < NO; ++o)
        for (int v = 0; v < NV; ++v) acc[o][v] = _mm512_setzero_ps();
    for (long o = 0; o < outer; ++o)
        for (long i = 0; i < kInnerIterations; ++i) {
            const long step = i % kTileSteps;
            __m512 x[NV];
#pragma GCC unroll 8
            for (int v = 0; v < NV; ++v) {
                x[v] = _mm512_load_ps(inputs + (step * NV + v) * 16);
                __asm__("" : "+v"(x[v]));  // one load a vector, not one folded into each FMA
            }
#pragma GCC unroll 16
            for (int w = 0; w < NO; ++w) {
                const __m512 b = _mm512_set1_ps(weights[step * NO + w]);
#pragma GCC unroll 8
                for (int v = 0; v < NV; ++v) acc[w][v] = _mm512_fmadd_ps(b, x[v], acc[w][v]);
            }
        }
    float lanes[16], total = 0;
    for (int o = 0; o < NO; ++o)
        for (int v = 0; v < NV; ++v) {
            _mm512_storeu_ps(lanes, acc[o][v]);
            for (float e : lanes) total += e;
        }
    return total;
}
#endif

struct Kernel {
    const char* isa;
    int lanes;  // elements per register
    double (*run)(long outer);
    int fmas = kAccumulators;  // FMAs per inner iteration
};

// The widest kernel this processor runs, for float (is_double false) or double.
Kernel pick_kernel(bool is_double) {
#ifdef FMA_PEAK_X86
    if (__builtin_cpu_supports("avx512f"))
        return is_double ? Kernel{"AVX-512F", 8, run_avx512_double} : Kernel{"AVX-512F", 16, run_avx512_float};
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
        return is_double ? Kernel{"AVX2+FMA", 4, run_avx2_double} : Kernel{"AVX2+FMA", 8, run_avx2_float};
#endif
    (void)is_double;
    return Kernel{"none", 0, nullptr};
}

// GFLOP/s of `threads` threads each running the kernel for about `seconds`; median of 5 runs.
double measure(const Kernel& k, int threads, double seconds) {
    // Calibrate on one thread: how many outer iterations fill `seconds`.
    long outer = 1;
    for (;;) {
        const auto t0 = std::chrono::steady_clock::now();
        volatile double sink = k.run(outer);
        (void)sink;
        const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        if (s > seconds / 4) { outer = std::max(1L, static_cast<long>(static_cast<double>(outer) * seconds / s)); break; }
        outer *= 2;
    }
    const double flop_per_thread = 2.0 * k.lanes * k.fmas * static_cast<double>(kInnerIterations) * static_cast<double>(outer);
    std::vector<double> rates;
    for (int rep = 0; rep < 5; ++rep) {
        double sink_total = 0;
        const auto t0 = std::chrono::steady_clock::now();
#pragma omp parallel num_threads(threads) reduction(+ : sink_total)
        sink_total += k.run(outer);
        const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        volatile double sink = sink_total;
        (void)sink;
        rates.push_back(flop_per_thread * threads / s / 1e9);
    }
    std::sort(rates.begin(), rates.end());
    return rates[2];
}

[[noreturn]] void usage(int rc) {
    std::fprintf(rc ? stderr : stdout, "usage: fma_peak [--threads T] [--seconds S] [--version]\n"
                                       "  --threads T   threads for the all-threads figure (default: all cores)\n"
                                       "  --seconds S   length of one timed run, 0.01 to 60 (default 0.3)\n");
    std::exit(rc);
}

}  // namespace

int main(int argc, char** argv) {
    int threads = omp_get_num_procs();
    double seconds = 0.3;
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        if (a == "--help" || a == "-h") usage(0);
        if (a == "--version") {
            std::printf("fma_peak (eigencnn %s)\n", EIGENCNN_VERSION_STRING);
            return 0;
        }
        if ((a == "--threads" || a == "--seconds") && i + 1 < argc) {
            char* end = nullptr;
            const char* v = argv[++i];
            if (a == "--threads") {
                const long t = std::strtol(v, &end, 10);
                if (*v == '\0' || *end != '\0' || t < 1 || t > 1024) {
                    std::fprintf(stderr, "fma_peak: --threads: must be an integer from 1 to 1024, got '%s'\n", v);
                    return 2;
                }
                threads = static_cast<int>(t);
            } else {
                seconds = std::strtod(v, &end);
                if (*v == '\0' || *end != '\0' || !(seconds >= 0.01 && seconds <= 60)) {
                    std::fprintf(stderr, "fma_peak: --seconds: must be a number from 0.01 to 60, got '%s'\n", v);
                    return 2;
                }
            }
            continue;
        }
        std::fprintf(stderr, "fma_peak: unknown or incomplete argument '%s'\n", a.c_str());
        usage(2);
    }
    for (bool is_double : {false, true}) {
        const Kernel k = pick_kernel(is_double);
        if (!k.run) {
            std::printf("fma_peak: no AVX2+FMA or AVX-512F on this processor; nothing to measure\n");
            return 0;
        }
        const double one = measure(k, 1, seconds);
        const double all = measure(k, threads, seconds);
        std::printf("%-6s %-8s %d accumulators: 1 thread %7.1f GFLOP/s, %d threads %7.1f GFLOP/s\n",
                    is_double ? "double" : "float", k.isa, kAccumulators, one, threads, all);
    }
#ifdef FMA_PEAK_X86
    if (__builtin_cpu_supports("avx512f")) {
        struct Tile {
            int channels, vectors;
            double (*run)(long);
        };
        for (const Tile& t : {Tile{6, 4, run_avx512_tile<6, 4>}, Tile{8, 3, run_avx512_tile<8, 3>}}) {
            const Kernel k{"AVX-512F", 16, t.run, t.channels * t.vectors};
            const double one = measure(k, 1, seconds);
            const double all = measure(k, threads, seconds);
            std::printf("float  AVX-512F %d x %d tile, %d loads + %d broadcasts a step: 1 thread %7.1f GFLOP/s, %d threads %7.1f GFLOP/s\n",
                        t.channels, t.vectors, t.vectors, t.channels, one, threads, all);
        }
    }
#endif
    return 0;
}
