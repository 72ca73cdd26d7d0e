// SPDX-License-Identifier: MIT
// tune_invariance: a few training steps of the seed model and of its BatchNorm variant on fixed synthetic data,
// then one line per model: a hash of every weight, buffer and Adam moment, and the last loss's bits. tests/
// CMakeLists.txt compiles this file three times, for other -mtune values (the same -march) and with all of
// <eigencnn/eigencnn.hpp> or only the three headers it needs, and the test tune_invariance compares the lines:
// the library's sums must depend neither on the processor the compiler tunes for nor on what else the
// translation unit includes. With GCC's default -ffp-contract=fast they did: GCC contracts a * b + c into an FMA
// where its tuning and its inlining decisions say, and the Winograd F(2x2, 5x5) transforms of the seed model's
// conv2 rounded differently (of these three builds, the rocketlake one gave other bits). eigencnn::eigencnn carries -ffp-contract=off
// (CMakeLists.txt, docs/reliability.md).
#ifdef TUNE_INVARIANCE_ALL_HEADERS
#include <eigencnn/eigencnn.hpp>
#else
#include <eigencnn/loss/cross_entropy.hpp>
#include <eigencnn/model/mnist_cnn.hpp>
#include <eigencnn/optim/adam.hpp>
#endif

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <vector>

namespace {

using namespace eigencnn;

// FNV-1a over the bytes of n floats.
std::uint64_t hash_floats(std::uint64_t h, const float* v, Index n) {
    const auto* bytes = reinterpret_cast<const unsigned char*>(v);
    for (std::size_t i = 0; i < static_cast<std::size_t>(n) * sizeof(float); ++i) h = (h ^ bytes[i]) * 1099511628211ull;
    return h;
}

void run(const char* label, Sequential<float> net) {
    Adam<float> adam(net.parameters());
    const Index N = 64;
    Tensor<float> x(Shape{N, 1, 28, 28});
    std::vector<int> y(static_cast<std::size_t>(N));
    std::uint32_t state = 12345;  // a fixed LCG: the same images on every machine
    auto next = [&] { return (state = state * 1664525u + 1013904223u) >> 8; };
    float loss = 0;
    for (int step = 0; step < 4; ++step) {
        for (Index i = 0; i < x.size(); ++i) x.data()[i] = static_cast<float>(next() % 1000) / 1000.0f;
        for (auto& label_n : y) label_n = static_cast<int>(next() % 10);
        Tensor<float> grad;
        loss = cross_entropy(net.forward(x), y, grad);
        adam.zero_grad();
        net.backward(grad);
        adam.step();
    }
    std::uint64_t h = 1469598103934665603ull;
    for (const auto& p : net.parameters()) h = hash_floats(h, p.value->data(), p.value->size());
    for (const auto& b : net.buffers()) h = hash_floats(h, b.value->data(), b.value->size());
    for (const Tensor<float>* s : adam.state()) h = hash_floats(h, s->data(), s->size());
    std::uint32_t loss_bits;
    std::memcpy(&loss_bits, &loss, sizeof loss_bits);
    std::printf("%s: weights, buffers and Adam moments %016llx, last loss %.9g (%08x)\n", label, static_cast<unsigned long long>(h),
                static_cast<double>(loss), loss_bits);
}

}  // namespace

int main() {
    run("mnist_cnn", mnist_cnn<float>());
    run("mnist_cnn_bn", mnist_cnn_bn<float>());
}
