// SPDX-License-Identifier: MIT
// safetensors (io/safetensors.hpp): bitwise round trips, the exact bytes of a
// small file, conversions from F16/BF16/F64 against hand-worked values, and
// every refusal with its own message, each leaving the model unchanged.
#include <eigencnn/eigencnn.hpp>
#include <eigencnn/io/safetensors.hpp>

#include <doctest/doctest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>

using namespace eigencnn;
namespace fs = std::filesystem;

namespace {

/// A small CNN: 0.weight [2, 1, 3, 3], 0.bias [2], 4.weight [3, 18], 4.bias [3].
Sequential<float> small_cnn(std::uint64_t seed) {
    Sequential<float> net(seed);
    net.emplace<Conv2d>(1, 2, 3).emplace<ReLU>().emplace<MaxPool2d>(2).emplace<Flatten>().emplace<Linear>(2 * 3 * 3, 3);
    return net;
}

/// Flatten, Linear(3, 2): 1.weight [2, 3], 1.bias [2].
Sequential<float> tiny() {
    Sequential<float> net(0);
    net.emplace<Flatten>().emplace<Linear>(3, 2);
    return net;
}

std::vector<Tensor<float>> weights(Sequential<float>& net) {
    std::vector<Tensor<float>> w;
    for (auto& p : net.parameters()) w.push_back(*p.value);
    for (auto& b : net.buffers()) w.push_back(*b.value);
    return w;
}

bool bitwise(const std::vector<Tensor<float>>& a, const std::vector<Tensor<float>>& b) {
    if (a.size() != b.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i)
        if (a[i].shape() != b[i].shape() || std::memcmp(a[i].data(), b[i].data(), sizeof(float) * a[i].size()) != 0) return false;
    return true;
}

std::string le64(std::uint64_t v) {
    std::string s;
    for (int i = 0; i < 8; ++i) s.push_back(static_cast<char>(v >> (8 * i)));
    return s;
}

/// A file from a header's JSON text and the data section's bytes.
std::string file(const std::string& json, const std::string& data) { return le64(json.size()) + json + data; }

std::string bytes_of(std::initializer_list<unsigned> b) {
    std::string s;
    for (unsigned v : b) s.push_back(static_cast<char>(v));
    return s;
}

template <typename T>
std::string raw(std::initializer_list<T> values) {
    std::string s;
    for (T v : values) s.append(reinterpret_cast<const char*>(&v), sizeof v);  // x86: little-endian
    return s;
}

std::string f32(int n, float v = 0.25f) {
    std::string s;
    for (int i = 0; i < n; ++i) s.append(reinterpret_cast<const char*>(&v), 4);
    return s;
}

/// tiny()'s weights as a valid F32 file, with `extra` JSON members appended to the header.
std::string tiny_file(const std::string& extra = "", const std::string& extra_data = "") {
    return file(R"({"1.weight":{"dtype":"F32","shape":[2,3],"data_offsets":[0,24]},"1.bias":{"dtype":"F32","shape":[2],"data_offsets":[24,32]})" +
                    extra + "}",
                f32(8) + extra_data);
}

SafetensorsMetadata decode(Sequential<float>& net, const std::string& bytes, SafetensorsLoadOptions o = {}) {
    return decode_safetensors(net, reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size(), "t.safetensors", o);
}

/// The message of the refusal of `bytes`, after checking the model did not change.
std::string refusal(const std::string& bytes, SafetensorsLoadOptions o = {}) {
    Sequential<float> net = tiny();
    const auto before = weights(net);
    std::string msg;
    try {
        decode(net, bytes, o);
    } catch (const SafetensorsError& e) {
        msg = e.what();
    }
    CHECK_MESSAGE(bitwise(before, weights(net)), "a refused load changed the model");
    CHECK_MESSAGE(msg.rfind("t.safetensors: ", 0) == 0, msg);
    return msg;
}

bool has(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

}  // namespace

TEST_CASE("safetensors: round trip is bitwise, in memory and through a file") {
    Sequential<float> a = small_cnn(1), b = small_cnn(2);
    REQUIRE_FALSE(bitwise(weights(a), weights(b)));
    const std::string bytes = encode_safetensors(a, {{"format", "pt"}});
    CHECK(decode(b, bytes) == SafetensorsMetadata{{"format", "pt"}});
    CHECK(bitwise(weights(a), weights(b)));

    const std::string path = "st_roundtrip.safetensors";
    Sequential<float> c = small_cnn(3);
    save_safetensors(a, path);
    CHECK(load_safetensors(c, path).empty());
    CHECK(bitwise(weights(a), weights(c)));
    for (const auto& e : fs::directory_iterator("."))
        CHECK_MESSAGE(e.path().filename().string().rfind(path + ".tmp", 0) != 0, "temporary left behind");
    CHECK_THROWS_WITH_AS(save_safetensors(a, "/nonexistent-dir/x.safetensors"), doctest::Contains("/nonexistent-dir/x.safetensors"),
                         std::runtime_error);
    CHECK_THROWS_WITH_AS(load_safetensors(c, "missing.safetensors"), "missing.safetensors: cannot open safetensors file (No such file or directory)",
                         SafetensorsError);
    CHECK_THROWS_WITH_AS(load_safetensors(c, "."), ".: cannot read safetensors file: not a regular file (a directory)", SafetensorsError);

    // double models: F64 on save; F32 files convert exactly
    Sequential<double> d1(1), d2(2), d3(3);
    for (auto* n : {&d1, &d2, &d3}) n->emplace<Flatten>().emplace<Linear>(5, 4);
    const std::string dbytes = encode_safetensors(d1);
    CHECK(has(dbytes, R"("dtype":"F64")"));
    decode_safetensors(d2, reinterpret_cast<const std::uint8_t*>(dbytes.data()), dbytes.size());
    CHECK(d2.parameters()[0].value->vector() == d1.parameters()[0].value->vector());
    Sequential<float> f(1);
    f.emplace<Flatten>().emplace<Linear>(5, 4);
    const std::string fbytes = encode_safetensors(f);
    decode_safetensors(d3, reinterpret_cast<const std::uint8_t*>(fbytes.data()), fbytes.size());
    CHECK(d3.parameters()[0].value->vector() == f.parameters()[0].value->vector().cast<double>());
}

TEST_CASE("safetensors: the bytes of a small model, laid out by hand") {
    Sequential<float> net(0);
    net.emplace<Flatten>().emplace<Linear>(2, 1);
    auto p = net.parameters();
    (*p[0].value)[0] = 1.0f;
    (*p[0].value)[1] = -2.0f;
    (*p[1].value)[0] = 0.5f;
    // 122 bytes of JSON, padded with 6 spaces to 128 = 0x80; then 1.0f, -2.0f, 0.5f little-endian
    const std::string json = R"({"1.weight":{"dtype":"F32","shape":[1,2],"data_offsets":[0,8]},"1.bias":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}})";
    REQUIRE(json.size() == 122);
    const std::string expected = bytes_of({0x80, 0, 0, 0, 0, 0, 0, 0}) + json + "      " +
                                 bytes_of({0x00, 0x00, 0x80, 0x3f, 0x00, 0x00, 0x00, 0xc0, 0x00, 0x00, 0x00, 0x3f});
    CHECK(encode_safetensors(net) == expected);
    // metadata comes first, as the reference writer puts it
    const std::string with_meta = encode_safetensors(net, {{"a", "b"}});
    CHECK(with_meta.substr(8, 29) == R"({"__metadata__":{"a":"b"},"1.)");
    CHECK((with_meta.size() - 12) % 8 == 0);
}

TEST_CASE("safetensors: F16, BF16, F64 and I64 convert to hand-worked values") {
    Sequential<float> net = tiny();
    // F16: 1, -2, 1/3 rounded (0x3555 = 0.333251953125), 2^-24 (smallest subnormal), 65504 (largest), -0
    // BF16 bias: 0x3EAB = 0.333984375, 0x4049 = 3.140625
    const std::string f16 = raw<std::uint16_t>({0x3C00, 0xC000, 0x3555, 0x0001, 0x7BFF, 0x8000});
    const std::string bf16 = raw<std::uint16_t>({0x3EAB, 0x4049});
    decode(net, file(R"({"1.weight":{"dtype":"F16","shape":[2,3],"data_offsets":[0,12]},"1.bias":{"dtype":"BF16","shape":[2],"data_offsets":[12,16]}})",
                     f16 + bf16));
    const auto& w = *net.parameters()[0].value;
    const auto& b = *net.parameters()[1].value;
    CHECK(w[0] == 1.0f);
    CHECK(w[1] == -2.0f);
    CHECK(w[2] == 0.333251953125f);
    CHECK(w[3] == 5.9604644775390625e-08f);
    CHECK(w[4] == 65504.0f);
    CHECK(w[5] == 0.0f);
    CHECK(std::signbit(w[5]));
    CHECK(b[0] == 0.333984375f);
    CHECK(b[1] == 3.140625f);
    // F64: rounded to the nearest float
    decode(net, file(R"({"1.weight":{"dtype":"F64","shape":[2,3],"data_offsets":[0,48]},"1.bias":{"dtype":"F64","shape":[2],"data_offsets":[48,64]}})",
                     raw<double>({0.1, 1.0 / 3, -1e-3, 1e30, 0, 2.5}) + raw<double>({-0.5, 7})));
    CHECK(w[0] == 0.1f);
    CHECK(w[1] == 0.333333343f);
    CHECK(w[2] == -0.001f);
    CHECK(w[3] == 1e30f);
    CHECK(b[1] == 7.0f);
}

TEST_CASE("safetensors: PyTorch's I64 num_batches_tracked loads into a model holding that buffer") {
    struct Counted final : Layer<float> {  // buffers as BatchNorm has them: running_mean [2], num_batches_tracked []
        Tensor<float> mean{Shape{2}}, count{Shape{}};
        std::string name() const override { return "Counted()"; }
        Shape output_shape(const Shape& in) const override { return in; }
        const Tensor<float>& forward(const Tensor<float>& x) override { return x; }
        const Tensor<float>& backward(const Tensor<float>& g) override { return g; }
        std::vector<Buffer<float>> buffers() override { return {{"running_mean", &mean}, {"num_batches_tracked", &count}}; }
    };
    Sequential<float> net(0);
    net.add(std::make_unique<Counted>());
    const std::string good = file(R"({"0.running_mean":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                                  R"("0.num_batches_tracked":{"dtype":"I64","shape":[],"data_offsets":[8,16]}})",
                                  raw<float>({1.5f, -1}) + raw<std::int64_t>({938}));
    decode(net, good);
    CHECK((*net.buffers()[1].value)[0] == 938.0f);
    CHECK((*net.buffers()[0].value)[0] == 1.5f);
    // I64 is refused for anything else
    CHECK(has(refusal(file(R"({"1.weight":{"dtype":"I64","shape":[2,3],"data_offsets":[0,48]},"1.bias":{"dtype":"F32","shape":[2],"data_offsets":[48,56]}})",
                           std::string(56, '\0'))),
              "tensor '1.weight': dtype I64 cannot be loaded (eigencnn converts F32, F64, F16 and BF16; I64 only for a '*.num_batches_tracked' buffer)"));
    // and an I64 num_batches_tracked the model lacks is an unexpected tensor
    CHECK(has(refusal(tiny_file(R"(,"1.num_batches_tracked":{"dtype":"I64","shape":[],"data_offsets":[32,40]})", raw<std::int64_t>({3}))),
              "unexpected (in the file, not in the model; SafetensorsLoadOptions{false} ignores them): 1.num_batches_tracked"));
}

TEST_CASE("safetensors: every refusal names the file, the tensor and the problem, and changes nothing") {
    const std::string W = R"("1.weight":{"dtype":"F32","shape":[2,3],"data_offsets":[0,24]})";
    const std::string B = R"("1.bias":{"dtype":"F32","shape":[2],"data_offsets":[24,32]})";
    auto with = [](const std::string& members, const std::string& data) { return file("{" + members + "}", data); };
    {
        Sequential<float> net = tiny();
        decode(net, tiny_file());  // the baseline is accepted
        CHECK((*net.parameters()[0].value)[0] == 0.25f);
    }
    // container
    CHECK(refusal("") == "t.safetensors: empty file");
    CHECK(refusal("abcde") == "t.safetensors: 5 bytes: too short for the 8-byte header length (truncated?)");
    CHECK(refusal(le64(200'000'000) + "{}") ==
          "t.safetensors: header length 200000000 exceeds the limit of 100000000 bytes (not a safetensors file, or a corrupted one)");
    CHECK(refusal(le64(~0ull) + "{}") == "t.safetensors: header length 18446744073709551615 exceeds the limit of 100000000 bytes (not a safetensors file, or a corrupted one)");
    CHECK(refusal(le64(40) + "{}") == "t.safetensors: header length 40 but only 2 bytes follow the length field (truncated?)");
    CHECK(refusal(tiny_file().substr(0, 100)) == "t.safetensors: header length 124 but only 92 bytes follow the length field (truncated?)");
    CHECK(refusal(file("[1, 2]", "")) == "t.safetensors: the header does not start with '{' (not a JSON object)");
    CHECK(has(refusal(file(R"({"1.weight": })", "")), "t.safetensors: the header is not valid JSON: [json.exception.parse_error.101]"));
    CHECK(has(refusal(file("{\"\xff\": 1}", "")), "the header is not valid JSON"));  // invalid UTF-8
    CHECK(refusal(file("{" + W + "," + B + "," + W + "}", f32(8))) == "t.safetensors: duplicate key '1.weight' in the header");
    CHECK(refusal(with(R"("1.weight":{"dtype":"F32","dtype":"F16","shape":[2,3],"data_offsets":[0,24]},)" + B, f32(8))) ==
          "t.safetensors: duplicate key 'dtype' in the header");
    // types and fields
    CHECK(refusal(with(R"("1.weight":[1],)" + B, f32(8))) ==
          "t.safetensors: tensor '1.weight': entry must be an object {dtype, shape, data_offsets}, got array");
    CHECK(refusal(with(R"("1.weight":{"dtype":4,"shape":[2,3],"data_offsets":[0,24]},)" + B, f32(8))) ==
          "t.safetensors: tensor '1.weight': dtype must be a string, got 4");
    CHECK(refusal(with(R"("1.weight":{"dtype":"F17","shape":[2,3],"data_offsets":[0,24]},)" + B, f32(8))) ==
          "t.safetensors: tensor '1.weight': unknown dtype 'F17'");
    CHECK(refusal(with(R"("1.weight":{"dtype":"F32","shape":6,"data_offsets":[0,24]},)" + B, f32(8))) ==
          "t.safetensors: tensor '1.weight': shape must be an array, got 6");
    CHECK(refusal(with(R"("1.weight":{"dtype":"F32","shape":[-2,-3],"data_offsets":[0,24]},)" + B, f32(8))) ==
          "t.safetensors: tensor '1.weight': each shape extent must be a non-negative integer, got -2");
    CHECK(refusal(with(R"("1.weight":{"dtype":"F32","shape":[2.0,3],"data_offsets":[0,24]},)" + B, f32(8))) ==
          "t.safetensors: tensor '1.weight': each shape extent must be a non-negative integer, got 2.0");
    CHECK(refusal(with(R"("1.weight":{"dtype":"F32","shape":[2,3],"data_offsets":[0,24,32]},)" + B, f32(8))) ==
          "t.safetensors: tensor '1.weight': data_offsets must be [begin, end], got [0,24,32]");
    CHECK(refusal(with(R"("1.weight":{"dtype":"F32","shape":[2,3],"data_offsets":["0",24]},)" + B, f32(8))) ==
          "t.safetensors: tensor '1.weight': data_offsets' begin must be a non-negative integer, got \"0\"");
    CHECK(refusal(with(R"("1.weight":{"dtype":"F32","shape":[2,3]},)" + B, f32(8))) == "t.safetensors: tensor '1.weight': no 'data_offsets'");
    CHECK(refusal(with(R"("1.weight":{"dtype":"F32","shape":[2,3],"data_offsets":[0,24],"stride":[3,1]},)" + B, f32(8))) ==
          "t.safetensors: tensor '1.weight': unknown field 'stride'");
    CHECK(refusal(with(R"("__metadata__":{"epoch":3},)" + W + "," + B, f32(8))) ==
          "t.safetensors: __metadata__ value of 'epoch' must be a string, got 3");
    CHECK(refusal(with(R"("__metadata__":["a"],)" + W + "," + B, f32(8))) == "t.safetensors: __metadata__ must be an object of strings, got array");
    CHECK(refusal(with(R"("1.weight":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,24]},)" + B, f32(8))) ==
          "t.safetensors: tensor '1.weight': shape [4294967296, 4294967296, ...] of F32 would need more than 2^63 bytes");
    // data offsets
    CHECK(refusal(with(R"("1.weight":{"dtype":"F32","shape":[2,3],"data_offsets":[24,0]},)" + B, f32(8))) ==
          "t.safetensors: tensor '1.weight': data_offsets begin 24 > end 0");
    CHECK(refusal(with(W + R"(,"1.bias":{"dtype":"F32","shape":[2],"data_offsets":[24,40]})", f32(8))) ==
          "t.safetensors: tensor '1.bias': data_offsets [24, 40) hold 16 bytes, but F32 [2] needs 8");
    CHECK(refusal(with(W + R"(,"1.bias":{"dtype":"F32","shape":[4],"data_offsets":[24,40]})", f32(8))) ==
          "t.safetensors: tensor '1.bias': data_offsets [24, 40) run past the data section's 32 bytes (truncated?)");
    CHECK(refusal(with(W + R"(,"1.bias":{"dtype":"F32","shape":[2],"data_offsets":[16,24]})", f32(8))) ==
          "t.safetensors: tensor '1.bias': data_offsets [16, 24) overlap tensor '1.weight' [0, 24)");
    CHECK(refusal(with(W + R"(,"1.bias":{"dtype":"F32","shape":[2],"data_offsets":[28,36]})", f32(9))) ==
          "t.safetensors: tensor '1.bias': data_offsets [28, 36) leave bytes [24, 28) of the data section in no tensor (a gap)");
    CHECK(refusal(tiny_file("", "xyz")) == "t.safetensors: 3 bytes at the end of the data section (from offset 32) belong to no tensor");
    // names, shapes, dtypes, values against the model
    CHECK(refusal(with(W + R"(,"1.b":{"dtype":"F32","shape":[2],"data_offsets":[24,32]})", f32(8))) ==
          "t.safetensors: the tensors do not match the model: missing (in the model, not in the file): 1.bias; unexpected (in the file, not in the "
          "model; SafetensorsLoadOptions{false} ignores them): 1.b");
    CHECK(refusal(with(W, f32(6))) == "t.safetensors: the tensors do not match the model: missing (in the model, not in the file): 1.bias");
    CHECK(refusal(with(W, f32(6)), {false}) == "t.safetensors: the tensors do not match the model: missing (in the model, not in the file): 1.bias");
    const std::string extra = tiny_file(R"(,"2.weight":{"dtype":"U8","shape":[3],"data_offsets":[32,35]})", "abc");
    CHECK(refusal(extra) == "t.safetensors: the tensors do not match the model: unexpected (in the file, not in the model; "
                            "SafetensorsLoadOptions{false} ignores them): 2.weight");
    {
        Sequential<float> net = tiny();
        decode(net, extra, {false});  // not strict: the unexpected tensor is ignored, the others load
        CHECK((*net.parameters()[1].value)[1] == 0.25f);
    }
    CHECK(refusal(with(R"("1.weight":{"dtype":"F32","shape":[3,2],"data_offsets":[0,24]},)" + B, f32(8))) ==
          "t.safetensors: tensor '1.weight': shape [3, 2] in the file, [2, 3] in the model");
    CHECK(refusal(with(R"("1.weight":{"dtype":"F32","shape":[6],"data_offsets":[0,24]},)" + B, f32(8))) ==
          "t.safetensors: tensor '1.weight': shape [6] in the file, [2, 3] in the model");
    CHECK(refusal(with(R"("1.weight":{"dtype":"I32","shape":[2,3],"data_offsets":[0,24]},)" + B, f32(8))) ==
          "t.safetensors: tensor '1.weight': dtype I32 cannot be loaded (eigencnn converts F32, F64, F16 and BF16; I64 only for a "
          "'*.num_batches_tracked' buffer)");
    CHECK(refusal(with(W + "," + B, f32(7) + raw<float>({std::nanf("")}))) == "t.safetensors: tensor '1.bias': non-finite value nan (F32) at index 1");
    CHECK(refusal(with(R"("1.weight":{"dtype":"F16","shape":[2,3],"data_offsets":[0,12]},"1.bias":{"dtype":"F32","shape":[2],"data_offsets":[12,20]})",
                       raw<std::uint16_t>({0, 0, 0xFC00, 0, 0, 0}) + f32(2))) ==
          "t.safetensors: tensor '1.weight': non-finite value -inf (F16) at index 2");
    CHECK(refusal(with(R"("1.weight":{"dtype":"F64","shape":[2,3],"data_offsets":[0,48]},"1.bias":{"dtype":"F32","shape":[2],"data_offsets":[48,56]})",
                       raw<double>({0, 1e300, 0, 0, 0, 0}) + f32(2))) ==
          "t.safetensors: tensor '1.weight': value 1.0000000000000001e+300 (F64) at index 1 is outside float's range");
    // the 25th value of 1.weight bad after 1.bias was fine: still nothing changed (checked inside refusal)
    CHECK(refusal(with(W + "," + B, raw<float>({1, 2, 3, 4, 5, INFINITY}) + f32(2))) ==
          "t.safetensors: tensor '1.weight': non-finite value inf (F32) at index 5");
}

TEST_CASE("safetensors: empty and zero-size tensors follow the specification") {
    // a file without tensors is valid; it just misses the model's
    CHECK(parse_safetensors(reinterpret_cast<const std::uint8_t*>(file("{}", "").data()), 10).tensors.empty());
    const std::string zero = file(R"({"a":{"dtype":"F32","shape":[0,5],"data_offsets":[0,0]},"b":{"dtype":"F32","shape":[],"data_offsets":[0,4]}})",
                                  f32(1));
    const auto parsed = parse_safetensors(reinterpret_cast<const std::uint8_t*>(zero.data()), zero.size());
    REQUIRE(parsed.tensors.size() == 2);
    CHECK(parsed.tensors[0].name == "a");
    CHECK(parsed.tensors[1].shape.empty());
}
