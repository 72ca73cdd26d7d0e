// SPDX-License-Identifier: MIT
// mnist_backdoor: the notebook's backdoor experiment. Trains the seed CNN
// on clean MNIST, then trains the same model (same initial weights, same
// batches) on MNIST where a seeded 1% of the training images carry a
// one-pixel trigger (row 3, col 3 set to 1.0) and the label 8. Prints the
// clean accuracy of both models and how often the trigger flips the
// backdoored model's prediction to the target, and writes a PNG of test
// digits, clean and triggered, with the backdoored model's predictions.
//
//   mnist_backdoor --data data/mnist --output-dir out --report backdoor.json
//   --save P writes P.clean.ckpt and P.backdoored.ckpt after every epoch; --resume P continues from them.
//   --load-weights W.safetensors: both models start from these weights (as they otherwise share their seed's);
//   --save-weights B.safetensors: the backdoored model's weights, for PyTorch or backdoor_lab evaluate.
#include "common.hpp"

#include <fstream>

using namespace example;

int main(int argc, char** argv) {
    CLI::App app{"Reproduce the notebook's one-pixel backdoor attack on MNIST."};
    Options o;
    add_common_flags(app, o);
    app.add_option("--poison-fraction", o.poison_fraction, "share of training images poisoned")
        ->check(CLI::Range(0.0, 1.0))
        ->capture_default_str();
    app.add_option("--target", o.target, "label the trigger should produce")->check(CLI::Range(0, 9))->capture_default_str();
    if (int rc = parse(app, argc, argv); rc >= 0) return rc;
    try {
        set_num_threads(o.threads);
        check_before_training(o, o.save.empty() ? std::vector<std::string>{}
                                                : std::vector<std::string>{o.save + ".clean.ckpt", o.save + ".backdoored.ckpt"});
        Sequential<float> clean = initial_model(o);  // before the data: a bad --load-weights fails first
        auto [train_set, test_set] = load(o);

        double clean_acc = 0;
        AttackSuccess clean_asr;
        FitResult clean_fit;
        {  // the clean model is freed before the backdoored one is trained
            std::cout << clean.summary(train_set.sample_shape());
            clean_fit = train(clean, train_set, o, "clean model", "clean", o.save.empty() ? "" : o.save + ".clean.ckpt",
                              o.resume.empty() ? "" : o.resume + ".clean.ckpt");
            clean_acc = evaluate(clean, test_set, o.batch_size);
            clean_asr = attack_success(clean, test_set, o.target, Trigger{}, o.batch_size);
            clean = Sequential<float>();
        }

        // Poison the training set in place: the clean model no longer needs it.
        const auto chosen = add_trigger(train_set, o.poison_fraction, Rng::mix(o.seed, 2), o.target);
        std::printf("poisoned %zu of %lld training images (trigger at row 3, col 3; label -> %d)\n", chosen.size(),
                    static_cast<long long>(train_set.size()), o.target);
        auto backdoored = initial_model(o);  // the same initial weights as the clean model
        // Resume the backdoored model only if the interrupted run had got that far.
        const std::string bd_resume = o.resume.empty() ? "" : o.resume + ".backdoored.ckpt";
        const FitResult bd_fit = train(backdoored, train_set, o, "backdoored model", "backdoored",
                                       o.save.empty() ? "" : o.save + ".backdoored.ckpt",
                                       !bd_resume.empty() && std::ifstream(bd_resume).good() ? bd_resume : "");
        const double bd_acc = evaluate(backdoored, test_set, o.batch_size);
        save_weights(backdoored, o);
        const Dataset<float> triggered = with_trigger(test_set);
        const std::vector<int> bd_pred = predict(backdoored, triggered, o.batch_size);
        const AttackSuccess asr = attack_success(bd_pred, test_set.labels, o.target);

        std::printf("\n%-52s %8s\n", "metric", "value");
        std::printf("%-52s %7.2f%%\n", "clean model, clean test accuracy", 100 * clean_acc);
        std::printf("%-52s %7.2f%%\n", "backdoored model, clean test accuracy", 100 * bd_acc);
        std::printf("%-52s %7.2f%%\n", "attack success rate (all triggered test images)", 100 * asr.all);
        std::printf("%-52s %7.2f%%\n", "attack success rate (true label != target)", 100 * asr.non_target);
        std::printf("%-52s %7.2f%%\n", "clean model on triggered images -> target (control)", 100 * clean_asr.all);

        // Two rows per block: clean digits, then the same digits with the trigger;
        // captions "true>predicted" from the backdoored model; green = predicted the target.
        const std::size_t shown = 10;
        std::vector<std::size_t> idx;
        for (std::size_t i = 0; i < shown; ++i) idx.push_back(i);
        const Dataset<float> clean_part = test_set.subset(idx), trig_part = triggered.subset(idx);
        Tensor<float> grid(Shape{2 * static_cast<Index>(shown), 1, 28, 28});
        std::copy(clean_part.images.data(), clean_part.images.data() + clean_part.images.size(), grid.data());
        std::copy(trig_part.images.data(), trig_part.images.data() + trig_part.images.size(), grid.data() + clean_part.images.size());
        const std::vector<int> clean_pred = predict(backdoored, clean_part, o.batch_size);
        std::vector<std::string> captions;
        std::vector<Rgb> colors;
        for (int row = 0; row < 2; ++row)
            for (std::size_t i = 0; i < shown; ++i) {
                const int p = row == 0 ? clean_pred[i] : bd_pred[i];
                captions.push_back(std::to_string(test_set.labels[i]) + ">" + std::to_string(p));
                colors.push_back(p == o.target ? Rgb{{60, 220, 60}} : Rgb{{230, 230, 230}});
            }
        const std::string png = o.output_dir + "/backdoor_predictions.png";
        write_image_grid(png, grid, captions, colors, static_cast<int>(shown), 3);
        std::cout << "\nwrote " << png << " (top: clean test digits, bottom: with trigger; caption true>predicted by the backdoored model)\n";

        if (!o.report.empty()) {
            Report j;
            add_config(j, o);
            j["poison_fraction"] = o.poison_fraction;
            j["target_label"] = o.target;
            j["poisoned_images"] = chosen.size();
            j["clean_accuracy"] = clean_acc;
            j["backdoored_clean_accuracy"] = bd_acc;
            j["attack_success_rate"] = asr.all;
            j["attack_success_rate_non_target"] = asr.non_target;
            j["clean_model_attack_success_rate"] = clean_asr.all;
            add_epochs(j, "", clean_fit);
            add_epochs(j, "backdoored_", bd_fit);
            std::vector<EpochStats> all = clean_fit.epochs;
            all.insert(all.end(), bd_fit.epochs.begin(), bd_fit.epochs.end());
            j["images_per_second"] = images_per_second(all);
            j["png"] = png;
            write_json_atomic(o.report, j);
            std::cout << "report written to " << o.report << '\n';
        }
    } catch (const std::exception& e) {
        std::fprintf(stderr, "mnist_backdoor: error: %s\n", e.what());
        return 1;
    }
    return 0;
}
