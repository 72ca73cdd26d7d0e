// SPDX-License-Identifier: MIT
// Checkpoints: round trip, bitwise resume, atomic saves under a crash, and a
// clear error for every kind of bad file. Non-finite losses and gradients.
#include "gradcheck.hpp"

#include <atomic>
#include <csignal>
#include <filesystem>
#include <thread>
#include <fstream>
#include <sys/wait.h>
#include <unistd.h>

using namespace test;

namespace {

Dataset<float> noise_data(Index n, std::uint64_t seed) {
    Dataset<float> d;
    d.images.resize(Shape{n, 1, 12, 12});
    Rng rng(seed);
    uniform_fill(d.images, 1.0, rng);
    for (Index i = 0; i < n; ++i) d.labels.push_back(static_cast<int>(rng.below(3)));
    return d;
}

Sequential<float> net_a(std::uint64_t seed) {
    Sequential<float> net(seed);
    net.emplace<Conv2d>(1, 4, 3, 1, 1).emplace<ReLU>().emplace<MaxPool2d>(2).emplace<Flatten>().emplace<Linear>(144, 3);
    return net;
}

std::vector<std::uint8_t> read_all(const std::string& path) {
    std::ifstream f(path, std::ios::binary);
    return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
}

void write_all(const std::string& path, const std::vector<std::uint8_t>& b) {
    std::ofstream(path, std::ios::binary).write(reinterpret_cast<const char*>(b.data()), static_cast<std::streamsize>(b.size()));
}

std::string load_error(const std::string& path) {
    auto net = net_a(0);
    Adam<float> adam(net.parameters());
    try {
        load_checkpoint(path, net, &adam);
    } catch (const CheckpointError& e) {
        return e.what();
    }
    return "(no error)";
}

}  // namespace

TEST_CASE("checkpoint: save and load restore weights, optimizer state and metadata exactly") {
    auto net = net_a(1);
    Adam<float> adam(net.parameters());
    const auto data = noise_data(64, 2);
    DataLoader<float> loader(data, 16, true, 3);
    train_epoch(net, adam, loader, 0);
    const std::string path = "eigencnn_test.ckpt";
    save_checkpoint(path, net, &adam, {{"epoch", "1"}, {"note", "a b\nc"}});

    auto other = net_a(99);
    Adam<float> adam2(other.parameters());
    const Metadata meta = load_checkpoint(path, other, &adam2);
    CHECK(weights_of(other) == weights_of(net));
    CHECK(adam2.steps() == adam.steps());
    for (std::size_t i = 0; i < adam.state().size(); ++i) CHECK(adam2.state()[i]->vector() == adam.state()[i]->vector());
    CHECK(meta.at("epoch") == "1");
    CHECK(meta.at("note") == "a b\nc");

    Metadata m2;
    auto rebuilt = load_model<float>(path, &m2);
    CHECK(rebuilt.specs() == net.specs());
    CHECK(weights_of(rebuilt) == weights_of(net));
    CHECK(m2.at("epoch") == "1");
    std::remove(path.c_str());
}

TEST_CASE("checkpoint: stop after one epoch, resume, and get bitwise the weights of an uninterrupted run") {
    const auto data = noise_data(96, 4);
    auto straight = net_a(5);
    Adam<float> a1(straight.parameters());
    DataLoader<float> l1(data, 32, true, 6);
    for (int e = 0; e < 3; ++e) train_epoch(straight, a1, l1, static_cast<std::uint64_t>(e));

    const std::string path = "eigencnn_test_resume.ckpt";
    {
        auto first = net_a(5);
        Adam<float> a2(first.parameters());
        DataLoader<float> l2(data, 32, true, 6);
        train_epoch(first, a2, l2, 0);
        save_checkpoint(path, first, &a2, {{"next_epoch", "1"}});
    }
    auto resumed = net_a(77);  // other initial weights: all of them must come from the checkpoint
    Adam<float> a3(resumed.parameters());
    const auto meta = load_checkpoint(path, resumed, &a3);
    DataLoader<float> l3(data, 32, true, 6);
    for (int e = std::stoi(meta.at("next_epoch")); e < 3; ++e) train_epoch(resumed, a3, l3, static_cast<std::uint64_t>(e));
    CHECK(weights_of(resumed) == weights_of(straight));
    CHECK(a3.steps() == a1.steps());
    std::remove(path.c_str());
}

TEST_CASE("checkpoint: SGD momentum state round-trips") {
    auto net = net_a(1);
    SGD<float> sgd(net.parameters(), SGDOptions{0.1, 0.9});
    const auto data = noise_data(32, 2);
    DataLoader<float> loader(data, 16, false);
    train_epoch(net, sgd, loader, 0);
    const std::string bytes = encode_checkpoint(net, static_cast<Optimizer<float>*>(&sgd));
    auto other = net_a(3);
    SGD<float> sgd2(other.parameters(), SGDOptions{0.1, 0.9});
    const auto d = decode_checkpoint<float>(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size());
    apply_checkpoint(d, other, static_cast<Optimizer<float>*>(&sgd2), "x");
    CHECK(sgd2.state()[0]->vector() == sgd.state()[0]->vector());
    CHECK(sgd2.steps() == 2);
}

TEST_CASE("checkpoint: each kind of bad file gets its own error naming the file; the model is left untouched") {
    auto net = net_a(1);
    Adam<float> adam(net.parameters());
    const std::string good = "eigencnn_test_good.ckpt", bad = "eigencnn_test_bad.ckpt";
    save_checkpoint(good, net, &adam);
    const auto bytes = read_all(good);

    write_all(bad, {});
    CHECK(load_error(bad) == bad + ": empty file");
    write_all(bad, std::vector<std::uint8_t>(bytes.begin(), bytes.begin() + 10));
    CHECK(load_error(bad).find("truncated header") != std::string::npos);
    write_all(bad, std::vector<std::uint8_t>(bytes.begin(), bytes.end() - 100));
    CHECK(load_error(bad).find(bad + ": truncated: header declares") == 0);
    auto longer = bytes;
    longer.push_back(0);
    write_all(bad, longer);
    CHECK(load_error(bad).find("trailing data") != std::string::npos);
    auto magic = bytes;
    magic[0] = 'X';
    write_all(bad, magic);
    CHECK(load_error(bad).find("not an eigencnn checkpoint") != std::string::npos);
    auto version = bytes;
    version[8] = 4;
    write_all(bad, version);
    CHECK(load_error(bad).find("unsupported checkpoint version 4 (this build reads versions 1 to 3)") != std::string::npos);
    auto flipped = bytes;
    flipped[bytes.size() / 2] ^= 0x10;
    write_all(bad, flipped);
    CHECK(load_error(bad).find("checksum mismatch") != std::string::npos);
    CHECK(load_error("/nonexistent/x.ckpt").find("/nonexistent/x.ckpt: cannot open checkpoint") == 0);

    // Wrong architecture, wrong optimizer, wrong scalar type.
    Sequential<float> wider(1);
    wider.emplace<Conv2d>(1, 8, 3, 1, 1).emplace<ReLU>().emplace<MaxPool2d>(2).emplace<Flatten>().emplace<Linear>(288, 3);
    const auto before = weights_of(wider);
    CHECK_THROWS_WITH_AS(load_checkpoint(good, wider), doctest::Contains("architecture mismatch at layer 0: Conv2d(1, 4, 3, 1, 1) in the checkpoint, Conv2d(1, 8, 3, 1, 1) in the model"),
                         CheckpointError);
    CHECK(weights_of(wider) == before);
    Sequential<float> shorter(1);
    shorter.emplace<Flatten>().emplace<Linear>(144, 3);
    CHECK_THROWS_WITH_AS(load_checkpoint(good, shorter), doctest::Contains("the checkpoint has 5 layers, the model 2"), CheckpointError);
    auto same = net_a(2);
    SGD<float> sgd(same.parameters());
    const auto before_same = weights_of(same);
    CHECK_THROWS_WITH_AS(load_checkpoint(good, same, static_cast<Optimizer<float>*>(&sgd)), doctest::Contains("optimizer mismatch: Adam in the checkpoint, SGD given"),
                         CheckpointError);
    CHECK(weights_of(same) == before_same);
    Sequential<double> dbl(1);
    dbl.emplace<Flatten>();
    CHECK_THROWS_WITH_AS(load_checkpoint(good, dbl), doctest::Contains("4-byte scalars, the model uses 8-byte"), CheckpointError);
    save_checkpoint(bad, net);
    CHECK_THROWS_WITH_AS(load_checkpoint(bad, same, static_cast<Optimizer<float>*>(&adam)), doctest::Contains("holds no optimizer state"),
                         CheckpointError);
    std::remove(good.c_str());
    std::remove(bad.c_str());
}

TEST_CASE("checkpoint: a non-finite weight is refused, so a diverged model is never loaded as if it were fine") {
    auto net = net_a(1);
    net.parameters()[0].value->data()[3] = std::numeric_limits<float>::infinity();
    const std::string bytes = encode_checkpoint(net);
    CHECK_THROWS_WITH_AS(decode_checkpoint<float>(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size(), "f"),
                         doctest::Contains("tensor '0.weight' holds a non-finite value at index 3"), CheckpointError);
}

TEST_CASE("checkpoint: a save killed at a random moment leaves the old or the new file, whole") {
    auto big = mnist_cnn<float>(1);  // ~1.1 MB of weights, so a save takes a while
    const std::string path = "eigencnn_test_crash.ckpt";
    save_checkpoint(path, big, static_cast<Optimizer<float>*>(nullptr), {{"version", "old"}});
    for (int trial = 0; trial < 20; ++trial) {
        const pid_t pid = fork();
        REQUIRE(pid >= 0);
        if (pid == 0) {
            for (;;) save_checkpoint(path, big, static_cast<Optimizer<float>*>(nullptr), {{"version", "new"}});
        }
        ::usleep(static_cast<useconds_t>(2000 + 1500 * trial));
        ::kill(pid, SIGKILL);
        int status = 0;
        ::waitpid(pid, &status, 0);
        auto probe = mnist_cnn<float>(2);
        Metadata meta;
        CHECK_NOTHROW(meta = load_checkpoint(path, probe));
        CHECK(weights_of(probe) == weights_of(big));
    }
    std::remove(path.c_str());
    // The killed children may leave their temporary files; they never carry the real name.
    CHECK(std::system("rm -f eigencnn_test_crash.ckpt.tmp.*") == 0);
}

TEST_CASE("train_epoch: a non-finite loss names the layer where it arose, the epoch, batch and step") {
    auto net = net_a(1);
    Adam<float> adam(net.parameters());
    auto data = noise_data(32, 1);
    DataLoader<float> loader(data, 16, false);
    train_epoch(net, adam, loader, 0);  // 2 steps
    // An infinite conv bias: the first layer's output becomes infinite, the loss NaN.
    net[0].parameters()[1].value->data()[2] = std::numeric_limits<float>::infinity();
    CHECK_THROWS_WITH_AS(train_epoch(net, adam, loader, 1),
                         "train_epoch: loss is NaN at epoch 1, batch 0 (step 3); first non-finite output: layer 0 (Conv2d(1, 4, kernel_size=3, stride=1, padding=1))",
                         std::runtime_error);
    data.images[5] = std::numeric_limits<float>::quiet_NaN();
    auto fresh = net_a(1);
    Adam<float> adam2(fresh.parameters());
    CHECK_THROWS_WITH_AS(train_epoch(fresh, adam2, loader, 4), doctest::Contains("the input batch holds a non-finite value"), std::runtime_error);
}

namespace {
// A layer that passes its input through and has one parameter whose gradient turns NaN at a chosen call.
class PoisonedGrad final : public Layer<float> {
public:
    explicit PoisonedGrad(int nan_at) : nan_at_(nan_at), w_(Shape{2}, 1.0f), g_(Shape{2}) {}
    std::string name() const override { return "PoisonedGrad()"; }
    Shape output_shape(const Shape& in) const override { return in; }
    const Tensor<float>& forward(const Tensor<float>& x) override {
        y_ = x;
        return y_;
    }
    const Tensor<float>& backward(const Tensor<float>& dy) override {
        g_.fill(++calls_ == nan_at_ ? std::nanf("") : 0.0f);
        dx_ = dy;
        return dx_;
    }
    std::vector<Parameter<float>> parameters() override { return {{"w", &w_, &g_}}; }

private:
    int nan_at_, calls_ = 0;
    Tensor<float> w_, g_, y_, dx_;
};
}  // namespace

TEST_CASE("train_epoch: a non-finite gradient names its layer; SkipBatch leaves weights and optimizer untouched") {
    auto data = noise_data(48, 1);
    DataLoader<float> loader(data, 16, false);
    auto make = [] {
        Sequential<float> net(1);
        net.emplace<Flatten>().add(PoisonedGrad(2)).emplace<Linear>(144, 3);
        return net;
    };
    auto net = make();
    Adam<float> adam(net.parameters());
    CHECK_THROWS_WITH_AS(train_epoch(net, adam, loader, 0),
                         "train_epoch: non-finite gradient of 'w' in layer 1 (PoisonedGrad()) at epoch 0, batch 1 (step 2)", std::runtime_error);

    auto skipper = make();
    Adam<float> adam2(skipper.parameters());
    const auto stats = train_epoch(skipper, adam2, loader, 0, {}, NonFinite::SkipBatch);
    CHECK(stats.skipped_batches == 1);
    CHECK(adam2.steps() == 2);
    CHECK(std::isfinite(stats.mean_loss));
    for (auto& p : skipper.parameters()) CHECK(p.value->vector().allFinite());
}

TEST_CASE("threads saving to the same path at once never collide: readers see whole files and no temporary is left") {
    const std::string path = "eigencnn_test_concurrent.ckpt";
    Sequential<float> a(1), b(2);
    a.emplace<Flatten>().emplace<Linear>(64, 32);
    b.emplace<Flatten>().emplace<Linear>(64, 32);
    save_checkpoint(path, a);
    std::atomic<bool> stop{false};
    std::atomic<int> failures{0}, loads{0};
    std::vector<std::thread> writers;
    for (Sequential<float>* m : {&a, &b})
        writers.emplace_back([&, m] {
            for (int i = 0; i < 40; ++i) {
                try {
                    save_checkpoint(path, *m);
                } catch (const std::runtime_error&) {
                    ++failures;
                }
            }
        });
    std::thread reader([&] {
        Sequential<float> into(3);
        into.emplace<Flatten>().emplace<Linear>(64, 32);
        while (!stop) {
            try {
                load_checkpoint(path, into);
                ++loads;
            } catch (const CheckpointError&) {
                ++failures;
            }
        }
    });
    for (auto& w : writers) w.join();
    stop = true;
    reader.join();
    CHECK(failures == 0);
    CHECK(loads > 0);
    for (const auto& entry : std::filesystem::directory_iterator("."))
        CHECK(entry.path().filename().string().rfind(path + ".tmp.", 0) == std::string::npos);
    std::remove(path.c_str());
}

TEST_CASE("a directory or a device where a file is expected is refused with its name") {
    Sequential<float> m(1);
    m.emplace<Flatten>().emplace<Linear>(4, 2);
    std::filesystem::create_directories("eigencnn_test_dir.ckpt");
    CHECK(load_error("eigencnn_test_dir.ckpt") == "eigencnn_test_dir.ckpt: cannot read checkpoint: not a regular file (a directory)");
    CHECK(load_error("/dev/zero") == "/dev/zero: cannot read checkpoint: not a regular file (a device, pipe or socket)");
    CHECK_THROWS_WITH_AS(read_idx("eigencnn_test_dir.ckpt"), "eigencnn_test_dir.ckpt: cannot read file: not a regular file (a directory)", IdxError);
    std::filesystem::remove("eigencnn_test_dir.ckpt");
}
