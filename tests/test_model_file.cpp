// SPDX-License-Identifier: MIT
// io/model_file.hpp: one loader for checkpoints and safetensors files, told
// apart by content; the named architectures of model/factory.hpp; every
// refusal names the file and the problem. Files are written by the test.
#include <eigencnn/eigencnn.hpp>
#include <eigencnn/io/model_file.hpp>

#include <doctest/doctest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>

using namespace eigencnn;
namespace fs = std::filesystem;

namespace {

std::string temp_path(const std::string& name) { return (fs::temp_directory_path() / ("eigencnn_model_file_" + name)).string(); }

void write_bytes(const std::string& path, const std::string& bytes) {
    std::ofstream f(path, std::ios::binary);
    f << bytes;
}

template <typename T>
std::vector<Tensor<T>> state(Sequential<T>& net) {
    std::vector<Tensor<T>> w;
    for (auto& p : net.parameters()) w.push_back(*p.value);
    for (auto& b : net.buffers()) w.push_back(*b.value);
    return w;
}

template <typename T>
bool same_state(Sequential<T>& a, Sequential<T>& b) {
    const auto x = state(a), y = state(b);
    if (x.size() != y.size()) return false;
    for (std::size_t i = 0; i < x.size(); ++i)
        if (x[i].shape() != y[i].shape() || std::memcmp(x[i].data(), y[i].data(), sizeof(T) * x[i].size()) != 0) return false;
    return true;
}

template <typename F>
std::string error_of(F f) {
    try {
        f();
    } catch (const std::exception& e) {
        return e.what();
    }
    return "(no error)";
}

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

}  // namespace

TEST_CASE("make_architecture: the named architectures and their shapes; an unknown name lists the valid ones") {
    CHECK(architecture_names() == std::vector<std::string>{"mnist_cnn", "mnist_cnn_bn", "preact_resnet", "preact_resnet_mnist"});
    CHECK(make_architecture<float>("mnist_cnn").output_shape(Shape{2, 1, 28, 28}) == Shape{2, 10});
    CHECK(make_architecture<float>("mnist_cnn_bn").output_shape(Shape{2, 1, 28, 28}) == Shape{2, 10});
    CHECK(make_architecture<float>("preact_resnet").output_shape(Shape{2, 3, 32, 32}) == Shape{2, 10});
    CHECK(make_architecture<double>("preact_resnet_mnist").output_shape(Shape{2, 1, 28, 28}) == Shape{2, 10});
    // the notebook's model, the same weights for the same seed
    auto a = make_architecture<float>("mnist_cnn", 5);
    auto b = mnist_cnn<float>(5);
    CHECK(same_state(a, b));
    CHECK(make_architecture<float>("mnist_cnn_bn").size() == 12);
    const std::string e = error_of([] { make_architecture<float>("resnet50"); });
    CHECK(e == "unknown architecture 'resnet50'; valid names: mnist_cnn, mnist_cnn_bn, preact_resnet, preact_resnet_mnist");
}

TEST_CASE("load_model_file: a checkpoint and a safetensors file, told apart by content whatever their names") {
    Sequential<float> net = mnist_cnn<float>(3);
    const std::string ckpt = temp_path("net.safetensors");  // a checkpoint under a safetensors name
    const std::string st = temp_path("net.ckpt");           // and the other way round
    save_checkpoint(ckpt, net, static_cast<Optimizer<float>*>(nullptr), {{"note", "ckpt"}});
    save_safetensors(net, st, {{"note", "st"}});

    ModelFileInfo info;
    Sequential<float> from_ckpt = load_model_file<float>(ckpt, "", &info);
    CHECK(info.format == ModelFileFormat::Checkpoint);
    CHECK(info.architecture.empty());
    CHECK(info.metadata.at("note") == "ckpt");
    CHECK(same_state(from_ckpt, net));

    Sequential<float> from_st = load_model_file<float>(st, "", &info);
    CHECK(info.format == ModelFileFormat::Safetensors);
    CHECK(info.architecture == "mnist_cnn");  // the default
    CHECK(info.metadata.at("note") == "st");
    CHECK(same_state(from_st, net));
    CHECK(from_st.size() == net.size());

    // a checkpoint with its own architecture named: accepted; another: refused, naming both
    CHECK_NOTHROW(load_model_file<float>(ckpt, "mnist_cnn"));
    const std::string e = error_of([&] { load_model_file<float>(ckpt, "mnist_cnn_bn"); });
    CHECK(contains(e, ckpt + ": architecture 'mnist_cnn_bn' was named, but the checkpoint holds another: Conv2d(1, 16, 5, 1, 0)"));
    fs::remove(ckpt);
    fs::remove(st);
}

TEST_CASE("load_model_file: a safetensors file of another architecture, named with --arch; not named, the tensor and shapes are") {
    Sequential<float> bn = mnist_cnn_bn<float>(4);
    // give the buffers values other than their defaults, as a trained model has
    bn.train();
    Tensor<float> x(Shape{4, 1, 28, 28});
    Rng rng(1);
    for (Index i = 0; i < x.size(); ++i) x[i] = static_cast<float>(rng.uniform());
    bn.forward(x);
    const std::string st = temp_path("bn.safetensors");
    save_safetensors(bn, st);

    ModelFileInfo info;
    Sequential<float> back = load_model_file<float>(st, "mnist_cnn_bn", &info);
    CHECK(info.architecture == "mnist_cnn_bn");
    CHECK(same_state(back, bn));

    // read as the default mnist_cnn: the names do not fit (layer 1 is a BatchNorm2d there, a ReLU here)
    std::string e = error_of([&] { load_model_file<float>(st); });
    CHECK(contains(e, st + ": the safetensors tensors do not fit architecture 'mnist_cnn' (the default; --arch names another of: mnist_cnn, "
                           "mnist_cnn_bn, preact_resnet, preact_resnet_mnist): the tensors do not match the model: missing"));
    CHECK(contains(e, "unexpected (in the file, not in the model"));
    CHECK(contains(e, "1.running_mean"));

    // same names, other shapes: the tensor and both shapes are named
    Sequential<float> wide(0);
    wide.emplace<Conv2d>(1, 8, 5).emplace<ReLU>().emplace<MaxPool2d>(2).emplace<Conv2d>(8, 32, 5).emplace<ReLU>().emplace<MaxPool2d>(2)
        .emplace<Flatten>().emplace<Linear>(512, 512).emplace<ReLU>().emplace<Linear>(512, 10);
    const std::string narrow = temp_path("narrow.safetensors");
    save_safetensors(wide, narrow);
    e = error_of([&] { load_model_file<float>(narrow); });
    CHECK(contains(e, narrow + ": the safetensors tensors do not fit architecture 'mnist_cnn'"));
    CHECK(contains(e, "tensor '0.weight': shape [8, 1, 5, 5] in the file, [16, 1, 5, 5] in the model"));
    CHECK_THROWS_AS(load_model_file<float>(narrow), ModelFileError);
    fs::remove(st);
    fs::remove(narrow);
}

TEST_CASE("load_model_file: bad files and names are refused, naming the file and the problem") {
    const std::string junk = temp_path("junk.bin");
    write_bytes(junk, "this is not a model file at all");
    std::string e = error_of([&] { load_model_file<float>(junk); });
    CHECK(e == junk + ": neither an eigencnn checkpoint (it would start with \"EIGENCNN\") nor a safetensors file (an 8-byte header "
                      "length, then a JSON header starting with '{'); 31 bytes");
    write_bytes(junk, "");
    CHECK(contains(error_of([&] { load_model_file<float>(junk); }), junk + ": neither an eigencnn checkpoint"));
    CHECK(contains(error_of([&] { load_model_file<float>(junk); }), "0 bytes (empty file)"));

    // a broken safetensors container keeps the reader's own message
    Sequential<float> net = mnist_cnn<float>(0);
    std::string bytes = encode_safetensors(net);
    bytes.resize(bytes.size() - 4);
    write_bytes(junk, bytes);
    CHECK_THROWS_AS(load_model_file<float>(junk), SafetensorsError);
    CHECK(contains(error_of([&] { load_model_file<float>(junk); }), junk + ": "));
    // a truncated checkpoint: the checkpoint reader's message
    std::string ck = encode_checkpoint(net, static_cast<Optimizer<float>*>(nullptr), {});
    ck.resize(ck.size() / 2);
    write_bytes(junk, ck);
    CHECK_THROWS_AS(load_model_file<float>(junk), CheckpointError);

    CHECK(error_of([] { load_model_file<float>("/nonexistent/m.safetensors"); }) ==
          "/nonexistent/m.safetensors: cannot open model file (No such file or directory)");
    CHECK_THROWS_AS(load_model_file<float>(fs::temp_directory_path().string()), ModelFileError);
    // an unknown architecture is refused before the file is read
    CHECK(contains(error_of([] { load_model_file<float>("/nonexistent/m.safetensors", "vgg"); }), "unknown architecture 'vgg'; valid names"));
    fs::remove(junk);
}

TEST_CASE("load_model_file: double models, from F32 safetensors and from double checkpoints") {
    Sequential<double> net = mnist_cnn<double>(9);
    const std::string st = temp_path("double.safetensors"), ck = temp_path("double.ckpt");
    save_safetensors(net, st);
    save_checkpoint(ck, net);
    auto a = load_model_file<double>(st);
    auto b = load_model_file<double>(ck);
    CHECK(same_state(a, net));
    CHECK(same_state(b, net));
    fs::remove(st);
    fs::remove(ck);
}
