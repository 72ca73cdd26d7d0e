// SPDX-License-Identifier: MIT
// Throughput of the newer layers and of two models with BatchNorm, the
// counterpart of bench/pytorch_models.py (bench/compare_models.sh runs both
// back to back and prints the ratios). One JSON line per measurement:
//
//   model_bench layers [--threads 2]          each layer's forward and backward (train mode, input gradient
//                                             on, as for a layer inside a model) on a realistic shape,
//                                             median of 20 timed calls after 3 warm-up calls
//   model_bench bn_cnn [--data DIR] [--epochs 2] [--threads 2]
//                                             the seed model with a BatchNorm2d after each conv (mnist_cnn_bn),
//                                             the notebook's loop: batch 500, Adam lr 1e-3, shuffled MNIST; median
//                                             seconds per epoch; inference images/s (eval mode: folded BatchNorm)
//   model_bench resnet [--batches 30] [--threads 2]
//                                             the narrowed PreAct-ResNet (widths 16-32-64) on random 3x32x32
//                                             images, batch 128, Adam lr 1e-3; training images/s over the batches
//                                             after 3 warm-up batches
//   model_bench profile_bn_cnn | profile_resnet [--threads 2]
//                                             where a training step of either model goes: each layer's forward
//                                             and backward on its own (train mode, the input it gets in the
//                                             model), median of 7 calls; a Residual block is one row
//
// Random inputs: the speed does not depend on the values. Without MNIST, bn_cnn uses random images.
#include <eigencnn/eigencnn.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <functional>
#include <string>

using namespace eigencnn;

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    const std::size_t m = v.size() / 2;
    return v.size() % 2 ? v[m] : 0.5 * (v[m - 1] + v[m]);
}

Tensor<float> random_tensor(const Shape& s, std::uint64_t seed, double lo = -1, double hi = 1) {
    Rng rng(seed);
    Tensor<float> t(s);
    for (Index i = 0; i < t.size(); ++i) t[i] = static_cast<float>(rng.uniform(lo, hi));
    return t;
}

double timed_median(const std::function<void()>& f, int warmup = 3, int reps = 20) {
    for (int i = 0; i < warmup; ++i) f();
    std::vector<double> t;
    for (int i = 0; i < reps; ++i) {
        const auto t0 = Clock::now();
        f();
        t.push_back(seconds_since(t0));
    }
    return median(t);
}

void layer_case(const std::string& name, Sequential<float>& net, const Shape& in, int threads) {
    net.train();
    net.set_input_grad(true);
    const Tensor<float> x = random_tensor(in, 1);
    const Tensor<float> dy = random_tensor(net.output_shape(in), 2);
    const double fwd = timed_median([&] { net.forward(x); });
    net.forward(x);
    const double bwd = timed_median([&] { net.backward(dy); });
    std::printf("{\"impl\": \"eigencnn\", \"bench\": \"layer\", \"name\": \"%s\", \"shape\": \"%s\", \"threads\": %d, \"forward_ms\": %.4f, "
                "\"backward_ms\": %.4f, \"forward_images_per_second\": %.1f, \"backward_images_per_second\": %.1f}\n",
                name.c_str(), in.str().c_str(), threads, 1e3 * fwd, 1e3 * bwd, static_cast<double>(in[0]) / fwd,
                static_cast<double>(in[0]) / bwd);
    std::fflush(stdout);
}

int layers(int threads) {
    const Shape act{128, 16, 32, 32};  // the ResNet's first stage at batch 128
    {
        Sequential<float> n(0);
        n.emplace<BatchNorm2d>(16);
        layer_case("BatchNorm2d(16)", n, act, threads);
    }
    {
        Sequential<float> n(0);
        n.emplace<AvgPool2d>(2);
        layer_case("AvgPool2d(2)", n, act, threads);
    }
    {
        Sequential<float> n(0);
        n.emplace<AdaptiveAvgPool2d>(1);
        layer_case("AdaptiveAvgPool2d(1)", n, Shape{128, 64, 8, 8}, threads);
    }
    {
        Sequential<float> n(0);
        n.emplace<Dropout>(0.5);
        layer_case("Dropout(0.5)", n, Shape{500, 512}, threads);  // the seed model's hidden layer at batch 500
    }
    {
        Sequential<float> n(0);
        n.emplace<LeakyReLU>(0.01);
        layer_case("LeakyReLU(0.01)", n, act, threads);
    }
    {
        Sequential<float> n(0);
        n.emplace<Sigmoid>();
        layer_case("Sigmoid", n, act, threads);
    }
    {
        Sequential<float> n(0);
        n.emplace<Tanh>();
        layer_case("Tanh", n, act, threads);
    }
    {
        Sequential<float> n(0);
        n.emplace<BatchNorm1d>(512);
        layer_case("BatchNorm1d(512)", n, Shape{500, 512}, threads);
    }
    {
        Sequential<float> n(0);
        n.emplace<Softmax>();
        layer_case("Softmax(dim=1)", n, Shape{500, 10}, threads);  // the seed model's logits at batch 500
    }
    {
        Sequential<float> n(0);
        n.emplace<LogSoftmax>();
        layer_case("LogSoftmax(dim=1)", n, Shape{500, 10}, threads);
    }
    {
        Sequential<float> n(0);  // PreAct block, identity shortcut: BN, ReLU, conv3x3, BN, ReLU, conv3x3 (+ x)
        Residual<float> block;
        block.emplace_body<BatchNorm2d>(32).emplace_body<ReLU>().emplace_body<Conv2d>(32, 32, 3, 1, 1, no_bias);
        block.emplace_body<BatchNorm2d>(32).emplace_body<ReLU>().emplace_body<Conv2d>(32, 32, 3, 1, 1, no_bias);
        n.add(std::move(block));
        layer_case("Residual(PreAct block, 32 ch)", n, Shape{128, 32, 16, 16}, threads);
    }
    return 0;
}

Dataset<float> random_images(Index n, const Shape& image, std::uint64_t seed) {
    Dataset<float> d;
    d.images = random_tensor(Shape{n, image[0], image[1], image[2]}, seed, 0, 1);
    Rng rng(seed + 1);
    for (Index i = 0; i < n; ++i) d.labels.push_back(static_cast<int>(rng.below(10)));
    return d;
}

int bn_cnn(const std::string& data, int epochs, int threads) {
    Dataset<float> train, test;
    std::string source = data;
    try {
        train = load_mnist<float>(data, Split::Train);
        test = load_mnist<float>(data, Split::Test);
    } catch (const IdxError& e) {
        std::fprintf(stderr, "no MNIST (%s): random images of the same shape\n", e.what());
        train = random_images(60000, Shape{1, 28, 28}, 1);
        test = random_images(10000, Shape{1, 28, 28}, 3);
        source = "random";
    }
    auto net = mnist_cnn_bn<float>(0);
    Adam<float> adam(net.parameters());
    DataLoader<float> loader(train, 500, true, 1);
    std::vector<double> secs;
    for (int e = 0; e < epochs; ++e) {
        const EpochStats s = train_epoch(net, adam, loader, static_cast<std::uint64_t>(e));
        secs.push_back(s.seconds);
        std::fprintf(stderr, "eigencnn bn_cnn epoch %d: %.3f s, loss %.4f\n", e + 1, s.seconds, s.mean_loss);
    }
    std::vector<double> inf;
    double acc = 0;
    for (int r = 0; r < 5; ++r) {
        const auto t0 = Clock::now();
        acc = evaluate(net, test, 1000);
        inf.push_back(seconds_since(t0));
    }
    std::printf("{\"impl\": \"eigencnn\", \"bench\": \"bn_cnn\", \"threads\": %d, \"data\": \"%s\", \"epoch_seconds_median\": %.4f, "
                "\"train_images_per_second\": %.1f, \"inference_images_per_second\": %.1f, \"test_accuracy\": %.4f}\n",
                threads, source.c_str(), median(secs), static_cast<double>(train.size()) / median(secs),
                static_cast<double>(test.size()) / median(inf), acc);
    return 0;
}

int resnet(int batches, int threads) {
    const Index batch = 128;
    auto net = preact_resnet<float>({16, 32, 64}, 1, 10, 3, 0);
    Adam<float> adam(net.parameters());
    const Dataset<float> d = random_images(batch * 8, Shape{3, 32, 32}, 5);  // 8 distinct batches, cycled
    Tensor<float> x(Shape{batch, 3, 32, 32}), dlogits;
    std::vector<int> y(static_cast<std::size_t>(batch));
    auto step = [&](int b) {
        const Index first = (b % 8) * batch;
        std::copy(d.images.data() + first * 3 * 32 * 32, d.images.data() + (first + batch) * 3 * 32 * 32, x.data());
        std::copy(d.labels.begin() + first, d.labels.begin() + first + batch, y.begin());
        const Tensor<float>& logits = net.forward(x);
        const float loss = cross_entropy(logits, y, dlogits);
        net.backward(dlogits);
        adam.step();
        return loss;
    };
    for (int b = 0; b < 3; ++b) step(b);
    const auto t0 = Clock::now();
    float loss = 0;
    for (int b = 0; b < batches; ++b) loss = step(b);
    const double s = seconds_since(t0);
    std::fprintf(stderr, "eigencnn resnet: %d batches of %lld in %.3f s, last loss %.4f\n", batches, static_cast<long long>(batch), s, loss);
    std::printf("{\"impl\": \"eigencnn\", \"bench\": \"resnet\", \"threads\": %d, \"parameters\": %lld, \"batch\": %lld, \"batches\": %d, "
                "\"seconds\": %.4f, \"train_images_per_second\": %.1f}\n",
                threads, static_cast<long long>(net.num_parameters()), static_cast<long long>(batch), batches, s,
                static_cast<double>(batches * batch) / s);
    return 0;
}

int profile(Sequential<float> net, const Shape& in, int threads) {
    net.train();
    const Tensor<float> x = random_tensor(in, 1, 0, 1);
    std::vector<Tensor<float>> inputs{x};
    std::vector<std::size_t> all(net.size());
    for (std::size_t i = 0; i < all.size(); ++i) all[i] = i;
    net.forward(x, all, [&](std::size_t, const Tensor<float>& out) { inputs.push_back(out); });
    double total_f = 0, total_b = 0;
    std::printf("%-4s %-60s %-20s %12s %12s   (%d threads, batch %lld, train mode)\n", "#", "layer", "input", "forward ms", "backward ms",
                threads, static_cast<long long>(in[0]));
    for (std::size_t i = 0; i < net.size(); ++i) {
        Layer<float>& layer = net[i];
        layer.set_input_grad(i != 0);
        const Tensor<float>& xi = inputs[i];
        const Tensor<float> dy = random_tensor(inputs[i + 1].shape(), 2);
        const double f = timed_median([&] { layer.forward(xi); }, 1, 7);
        layer.forward(xi);
        const double b = timed_median([&] { layer.backward(dy); }, 1, 7);
        total_f += f, total_b += b;
        std::printf("%-4zu %-60s %-20s %12.3f %12.3f\n", i, layer.name().substr(0, 60).c_str(), xi.shape().str().c_str(), 1e3 * f, 1e3 * b);
    }
    std::printf("%-4s %-60s %-20s %12.3f %12.3f\n", "", "sum of the layers", "", 1e3 * total_f, 1e3 * total_b);
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc < 2 || std::string(argv[1]) == "--help" || std::string(argv[1]) == "-h") {
        std::printf("usage: model_bench layers|bn_cnn|resnet|profile_bn_cnn|profile_resnet [--threads N] [--data DIR] [--epochs N] [--batches N]\n");
        return argc < 2 ? 2 : 0;
    }
    if (std::string(argv[1]) == "--version") {
        std::printf("model_bench (eigencnn %s)\n", version());
        return 0;
    }
    const std::string what = argv[1];
    std::string data = "data/mnist";
    int threads = num_threads(), epochs = 2, batches = 30;
    for (int i = 2; i < argc; ++i) {
        const std::string a = argv[i];
        if (i + 1 >= argc) {
            std::fprintf(stderr, "model_bench: %s needs a value\n", a.c_str());
            return 2;
        }
        const std::string v = argv[++i];
        char* end = nullptr;
        const long n = std::strtol(v.c_str(), &end, 10);
        const bool number = !v.empty() && *end == '\0' && n >= 1 && n <= 100000;
        if (a == "--data") data = v;
        else if (!number) {
            std::fprintf(stderr, "model_bench: %s must be a whole number from 1 to 100000, got '%s'\n", a.c_str(), v.c_str());
            return 2;
        } else if (a == "--threads") threads = static_cast<int>(n);
        else if (a == "--epochs") epochs = static_cast<int>(n);
        else if (a == "--batches") batches = static_cast<int>(n);
        else {
            std::fprintf(stderr, "model_bench: unknown flag '%s'\n", a.c_str());
            return 2;
        }
    }
    set_num_threads(threads);
    if (what == "layers") return layers(threads);
    if (what == "bn_cnn") return bn_cnn(data, epochs, threads);
    if (what == "resnet") return resnet(batches, threads);
    if (what == "profile_bn_cnn") return profile(mnist_cnn_bn<float>(0), Shape{500, 1, 28, 28}, threads);
    if (what == "profile_resnet") return profile(preact_resnet<float>({16, 32, 64}, 1, 10, 3, 0), Shape{128, 3, 32, 32}, threads);
    std::fprintf(stderr, "model_bench: unknown benchmark '%s' (layers, bn_cnn, resnet, profile_bn_cnn, profile_resnet)\n", what.c_str());
    return 2;
}
