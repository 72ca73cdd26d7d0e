// SPDX-License-Identifier: MIT
// mnist_clean: the notebook's clean experiment. Trains the seed CNN on
// MNIST with Adam and reports test accuracy.
//
//   mnist_clean --data data/mnist --epochs 10 --report clean.json
//   mnist_clean --save run.ckpt ...; after an interruption: mnist_clean --resume run.ckpt --save run.ckpt ...
//   mnist_clean --save-weights net.safetensors ...          (for PyTorch: model.load_state_dict)
//   mnist_clean --load-weights torch.safetensors --epochs 0  (evaluate a PyTorch-trained model; epochs > 0 fine-tunes it)
#include "common.hpp"

using namespace example;

int main(int argc, char** argv) {
    CLI::App app{"Train the notebook's CNN on clean MNIST and report test accuracy."};
    Options o;
    add_common_flags(app, o);
    if (int rc = parse(app, argc, argv); rc >= 0) return rc;
    try {
        set_num_threads(o.threads);
        check_before_training(o, o.save.empty() ? std::vector<std::string>{} : std::vector<std::string>{o.save});
        auto model = initial_model(o);
        auto [train_set, test_set] = load(o);
        std::cout << model.summary(train_set.sample_shape());
        const FitResult fitted = train(model, train_set, o, "training", "clean", o.save, o.resume);
        const double acc = evaluate(model, test_set, o.batch_size);
        std::printf("clean test accuracy: %.2f%%\n", 100 * acc);
        save_weights(model, o);
        if (!o.report.empty()) {
            Report j;
            add_config(j, o);
            j["clean_accuracy"] = acc;
            add_epochs(j, "", fitted);
            j["images_per_second"] = images_per_second(fitted.epochs);
            write_json_atomic(o.report, j);
            std::cout << "report written to " << o.report << '\n';
        }
    } catch (const std::exception& e) {
        std::fprintf(stderr, "mnist_clean: error: %s\n", e.what());
        return 1;
    }
    return 0;
}
