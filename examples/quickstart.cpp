// SPDX-License-Identifier: MIT
// quickstart: the README's example, compiled with the other examples so that
// it stays true. Poisons 1% of MNIST, trains the notebook's CNN, and prints
// the clean accuracy and the attack success rate.
//
//   quickstart [data_dir]     (default data/mnist; --help, --version)
#include <eigencnn/eigencnn.hpp>

#include <iostream>

using namespace eigencnn;

void run(const std::string& dir) {
    auto train = load_mnist<float>(dir, Split::Train);
    auto test = load_mnist<float>(dir, Split::Test);
    add_trigger(train, /*fraction=*/0.01, /*seed=*/1, /*target_label=*/8);  // poison 1%

    Sequential<float> net(/*seed=*/0);
    net.emplace<Conv2d>(1, 16, 5).emplace<ReLU>().emplace<MaxPool2d>(2)
        .emplace<Conv2d>(16, 32, 5).emplace<ReLU>().emplace<MaxPool2d>(2)
        .emplace<Flatten>().emplace<Linear>(512, 512).emplace<ReLU>().emplace<Linear>(512, 10);
    std::cout << net.summary(Shape{1, 1, 28, 28});

    Adam<float> adam(net.parameters());  // lr 1e-3, betas (0.9, 0.999), eps 1e-8
    DataLoader<float> loader(train, 500, /*shuffle=*/true, /*seed=*/1);
    for (int epoch = 0; epoch < 10; ++epoch) train_epoch(net, adam, loader, epoch);

    std::cout << "clean accuracy " << evaluate(net, test) << ", attack success " << attack_success(net, test, 8).all << '\n';
}

int main(int argc, char** argv) {
    const std::string arg = argc > 1 ? argv[1] : "data/mnist";
    if (argc > 2 || arg == "--help" || arg == "-h") {
        std::cout << "usage: quickstart [DATA_DIR]\n  Poison 1% of MNIST (DATA_DIR, default data/mnist), train the notebook's CNN\n"
                     "  for 10 epochs, print the clean accuracy and the attack success rate.\n";
        return argc > 2 ? 2 : 0;
    }
    if (arg == "--version") {
        std::cout << "quickstart (eigencnn " << version() << ")\n";
        return 0;
    }
    try {
        run(arg);
    } catch (const std::exception& e) {
        std::cerr << "quickstart: error: " << e.what() << '\n';
        return 1;
    }
    return 0;
}
