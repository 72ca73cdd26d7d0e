// SPDX-License-Identifier: MIT
// The eigencnn side of the PyTorch oracle tests (tests/torch_oracle.sh, tests/torch_oracle.py).
// Everything it writes is safetensors, read in Python by torch_oracle.py's own parser.
//
//   torch_helper gradients DIR            the seed model with random weights (DIR/model.safetensors), a seeded
//                                         batch of 8 images with labels, and what eigencnn computes for them:
//                                         logits, loss, dloss/dinput (DIR/io.safetensors) and every parameter
//                                         gradient of the mean cross-entropy (DIR/grads.safetensors)
//   torch_helper predict MODEL MNIST OUT  load MODEL into the seed model, predict the 10,000 test images,
//                                         write one byte per image to OUT
//   torch_helper resave IN OUT            load IN (any dtype eigencnn converts) into the seed model, save as F32
//   torch_helper train MNIST N OUT        train the seed model for 1 epoch on the first N training images
//                                         (Adam, batch 100, seeded) with fit(), save it to OUT
//   torch_helper model_file DIR           load PyTorch's DIR/bn.safetensors with load_model_file (--arch mnist_cnn_bn;
//                                         refused without it), run DIR/bn_io.safetensors' images in eval mode (the
//                                         plan folds the BatchNorms) and compare with PyTorch's logits (1e-5 relative)
#include <eigencnn/eigencnn.hpp>
#include <eigencnn/io/model_file.hpp>
#include <eigencnn/io/safetensors.hpp>

#include <fstream>
#include <iostream>

using namespace eigencnn;

namespace {

int gradients(const std::string& dir) {
    Sequential<float> net = mnist_cnn<float>(7);
    save_safetensors(net, dir + "/model.safetensors");
    Rng rng(3);
    Tensor<float> x(Shape{8, 1, 28, 28});
    for (Index i = 0; i < x.size(); ++i) x[i] = static_cast<float>(rng.uniform());
    std::vector<int> labels{3, 1, 4, 1, 5, 9, 2, 6};
    net.set_input_grad(true);
    const Tensor<float> logits = net.forward(x);
    Tensor<float> dlogits;
    const float loss = cross_entropy(logits, labels, dlogits);
    const Tensor<float> dx = net.backward(dlogits);
    Tensor<float> loss_t(Shape{1}, loss), labels_t(Shape{8});
    for (int i = 0; i < 8; ++i) labels_t[i] = static_cast<float>(labels[static_cast<std::size_t>(i)]);
    write_file_atomic(dir + "/io.safetensors",
                      encode_safetensors<float>({{"x", &x}, {"labels", &labels_t}, {"logits", &logits}, {"loss", &loss_t}, {"dx", &dx}}));
    std::vector<std::pair<std::string, const Tensor<float>*>> grads;
    for (auto& p : net.parameters()) grads.emplace_back(p.name, p.grad);
    write_file_atomic(dir + "/grads.safetensors", encode_safetensors<float>(grads));
    return 0;
}

void write_predictions(Sequential<float>& net, const std::string& mnist, const std::string& out) {
    const auto test = load_mnist<float>(mnist, Split::Test);
    const std::vector<int> pred = predict(net, test);
    std::string bytes(pred.begin(), pred.end());
    write_file_atomic(out, bytes);
    std::size_t right = 0;
    for (std::size_t i = 0; i < pred.size(); ++i) right += pred[i] == test.labels[i];
    std::cout << "eigencnn: " << pred.size() << " test images, accuracy " << static_cast<double>(right) / static_cast<double>(pred.size()) << '\n';
}

int predict_file(const std::string& model, const std::string& mnist, const std::string& out) {
    Sequential<float> net = mnist_cnn<float>(0);
    load_safetensors(net, model);
    write_predictions(net, mnist, out);
    return 0;
}

int resave(const std::string& in, const std::string& out) {
    Sequential<float> net = mnist_cnn<float>(0);
    load_safetensors(net, in);
    save_safetensors(net, out);
    return 0;
}

int train(const std::string& mnist, Index n, const std::string& out) {
    const auto data = load_mnist<float>(mnist, Split::Train).head(n);
    Sequential<float> net = mnist_cnn<float>(11);
    Adam<float> adam(net.parameters());
    DataLoader<float> loader(data, 100, /*shuffle=*/true, /*seed=*/5);
    FitOptions options;
    options.epochs = 1;
    const FitResult r = fit(net, adam, loader, options);
    std::cout << "eigencnn: trained 1 epoch on " << data.size() << " images, mean loss " << r.epochs.at(0).mean_loss << '\n';
    save_safetensors(net, out, {{"trained_by", "eigencnn"}});
    return 0;
}

int model_file(const std::string& dir) {
    const std::string path = dir + "/bn.safetensors";
    try {
        load_model_file<float>(path);
        std::cerr << "model_file: " << path << " loaded as mnist_cnn, which it is not\n";
        return 1;
    } catch (const ModelFileError& e) {
        std::cout << "without --arch, refused: " << e.what() << '\n';
    }
    ModelFileInfo info;
    Sequential<float> net = load_model_file<float>(path, "mnist_cnn_bn", &info);
    net.eval();
    const std::string plan = net.plan_summary();
    if (plan.find("conv-batchnorm-pool") == std::string::npos) {
        std::cerr << "model_file: the eval plan does not fold the BatchNorms:\n" << plan;
        return 1;
    }
    Tensor<float> x(Shape{8, 1, 28, 28}), want(Shape{8, 10});
    {
        const auto bytes = read_file_bytes<SafetensorsError>(dir + "/bn_io.safetensors", "safetensors file");
        const SafetensorsFile f = parse_safetensors(bytes.data(), bytes.size(), dir + "/bn_io.safetensors");
        for (const auto& t : f.tensors) {
            Tensor<float>& into = t.name == "x" ? x : want;
            std::int64_t n = 1;
            for (auto d : t.shape) n *= static_cast<std::int64_t>(d);
            if (n != into.size()) throw std::runtime_error("bn_io.safetensors: tensor '" + t.name + "' has " + std::to_string(n) + " elements");
            detail::convert_tensor(bytes.data() + f.data_start + t.begin, t.dtype, into.data(), into.size(), t.name);
        }
    }
    const Tensor<float>& y = net.forward(x);
    double num = 0, den = 0;
    for (Index i = 0; i < y.size(); ++i) {
        num = std::max(num, std::abs(static_cast<double>(y[i]) - want[i]));
        den = std::max(den, std::abs(static_cast<double>(want[i])));
    }
    std::cout << "eigencnn: PyTorch's mnist_cnn_bn (" << to_string(info.format) << ", architecture " << info.architecture
              << "), eval-mode logits with folded BatchNorm: worst difference " << num / den << " relative to PyTorch's\n";
    return num / den <= 1e-5 ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
    const std::vector<std::string> a(argv + 1, argv + argc);
    try {
        if (a.size() == 2 && a[0] == "gradients") return gradients(a[1]);
        if (a.size() == 4 && a[0] == "predict") return predict_file(a[1], a[2], a[3]);
        if (a.size() == 3 && a[0] == "resave") return resave(a[1], a[2]);
        if (a.size() == 4 && a[0] == "train") return train(a[1], std::stoi(a[2]), a[3]);
        if (a.size() == 2 && a[0] == "model_file") return model_file(a[1]);
    } catch (const std::exception& e) {
        std::cerr << "torch_helper: " << e.what() << '\n';
        return 1;
    }
    std::cerr << "usage: torch_helper gradients DIR | predict MODEL MNIST OUT | resave IN OUT | train MNIST N OUT | model_file DIR\n";
    return 2;
}
