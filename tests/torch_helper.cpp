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
#include <eigencnn/eigencnn.hpp>
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

}  // namespace

int main(int argc, char** argv) {
    const std::vector<std::string> a(argv + 1, argv + argc);
    try {
        if (a.size() == 2 && a[0] == "gradients") return gradients(a[1]);
        if (a.size() == 4 && a[0] == "predict") return predict_file(a[1], a[2], a[3]);
        if (a.size() == 3 && a[0] == "resave") return resave(a[1], a[2]);
        if (a.size() == 4 && a[0] == "train") return train(a[1], std::stoi(a[2]), a[3]);
    } catch (const std::exception& e) {
        std::cerr << "torch_helper: " << e.what() << '\n';
        return 1;
    }
    std::cerr << "usage: torch_helper gradients DIR | predict MODEL MNIST OUT | resave IN OUT | train MNIST N OUT\n";
    return 2;
}
