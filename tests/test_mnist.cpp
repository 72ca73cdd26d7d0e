// SPDX-License-Identifier: MIT
// Integration test on the real MNIST data (ctest label "mnist"): one epoch
// of the seed model must reach >= 97% test accuracy.
//
// The data folder comes from $EIGENCNN_MNIST_DIR (default: data/mnist in the
// source tree). Without the data the test is skipped (exit code 77), unless
// $EIGENCNN_REQUIRE_MNIST is set, as CI does, in which case it fails.
#include <doctest/doctest.h>
#include <eigencnn/eigencnn.hpp>

#include <cstdlib>
#include <fstream>

using namespace eigencnn;

TEST_CASE("one epoch on MNIST reaches at least 97% test accuracy") {
    const char* env = std::getenv("EIGENCNN_MNIST_DIR");
    const std::string dir = env ? env : EIGENCNN_SOURCE_DIR "/data/mnist";
    Dataset<float> train, test;
    try {
        train = load_mnist<float>(dir, Split::Train);
        test = load_mnist<float>(dir, Split::Test);
    } catch (const IdxError& e) {
        if (std::getenv("EIGENCNN_REQUIRE_MNIST")) FAIL("MNIST is required but cannot be loaded: " << e.what());
        MESSAGE("skipping: " << e.what() << " (run scripts/fetch_mnist.sh)");
        std::exit(77);
    }
    REQUIRE(train.size() == 60000);
    REQUIRE(test.size() == 10000);
    set_num_threads(num_threads());
    auto net = mnist_cnn<float>(0);
    Adam<float> opt(net.parameters());
    // Batch 100: one epoch is 600 Adam steps (at the notebook's batch of 500 it is only 120).
    DataLoader<float> loader(train, 100, true, 1);
    const EpochStats s = train_epoch(net, opt, loader, 0);
    const double acc = evaluate(net, test);
    MESSAGE("one epoch: loss " << s.mean_loss << ", " << s.seconds << " s, test accuracy " << acc);
    CHECK(acc >= 0.97);
}
