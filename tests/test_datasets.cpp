// Readers of data sets other than MNIST: the CIFAR-10 binary format (on files the test writes; the data set is not
// on this machine) and a folder of images per class (ImageFolder).
#include <doctest/doctest.h>
#include <eigencnn/data/cifar10.hpp>

#include <filesystem>
#include <fstream>

using namespace eigencnn;
namespace fs = std::filesystem;
using Bytes = std::vector<std::uint8_t>;

namespace {

/// A CIFAR-10 record with a known content: label, then R, G, B planes where
/// pixel (c, y, x) of record `seed` holds (seed * 7 + c * 50 + y * 3 + x) mod 256.
Bytes cifar_record(std::uint8_t label, int seed) {
    Bytes b{label};
    for (int c = 0; c < 3; ++c)
        for (int y = 0; y < 32; ++y)
            for (int x = 0; x < 32; ++x) b.push_back(static_cast<std::uint8_t>((seed * 7 + c * 50 + y * 3 + x) % 256));
    return b;
}

Bytes cifar_file(const std::vector<std::uint8_t>& labels, int first_seed = 0) {
    Bytes b;
    for (std::size_t i = 0; i < labels.size(); ++i) {
        const Bytes r = cifar_record(labels[i], first_seed + static_cast<int>(i));
        b.insert(b.end(), r.begin(), r.end());
    }
    return b;
}

void write(const std::string& path, const Bytes& b) {
    std::ofstream(path, std::ios::binary).write(reinterpret_cast<const char*>(b.data()), static_cast<std::streamsize>(b.size()));
}

std::string cifar_error(const Bytes& b, const std::string& name = "b.bin") {
    try {
        parse_cifar10<float>(b.data(), b.size(), name);
    } catch (const Cifar10Error& e) {
        return e.what();
    }
    return "(no error)";
}

/// A fresh empty folder under the test's working directory.
std::string fresh_dir(const std::string& name) {
    const fs::path p = fs::current_path() / ("eigencnn_test_" + name);
    fs::remove_all(p);
    fs::create_directories(p);
    return p.string();
}

}  // namespace

TEST_CASE("CIFAR-10: records decode to [N, 3, 32, 32] in [0, 1] with R, G, B planes in order, and labels 0-9") {
    const Bytes b = cifar_file({3, 9, 0});
    const auto ds = parse_cifar10<float>(b.data(), b.size());
    REQUIRE(ds.images.shape() == Shape{3, 3, 32, 32});
    CHECK(ds.labels == std::vector<int>{3, 9, 0});
    for (int n = 0; n < 3; ++n)
        for (int c = 0; c < 3; ++c)
            for (int y : {0, 5, 31})
                for (int x : {0, 17, 31}) CHECK(ds.images(n, c, y, x) == static_cast<float>((n * 7 + c * 50 + y * 3 + x) % 256) / 255.0f);
    Bytes white = cifar_record(1, 0);
    std::fill(white.begin() + 1, white.end(), std::uint8_t(255));
    const auto w = parse_cifar10<double>(white.data(), white.size());
    CHECK(w.images(0, 2, 31, 31) == 1.0);
    CHECK(w.images.shape() == Shape{1, 3, 32, 32});
}

TEST_CASE("CIFAR-10: each kind of bad file has its own clear error naming the file") {
    CHECK(cifar_error({}, "e.bin") == "e.bin: empty file (a CIFAR-10 batch holds records of 3073 bytes)");
    Bytes two = cifar_file({1, 2});
    two.pop_back();
    CHECK(cifar_error(two, "short.bin") ==
          "short.bin: size 6145 bytes is not a multiple of the record size 3073 (1 label byte + 3072 image bytes): 1 whole records "
          "and 3072 bytes left over");
    CHECK(cifar_error(Bytes(100, 0)).find("size 100 bytes is not a multiple of the record size 3073") != std::string::npos);
    CHECK(cifar_error(cifar_file({4, 5, 10, 1}), "bad.bin") == "bad.bin: record 2 (byte offset 6146) has label 10 (CIFAR-10 labels are 0-9)");
    CHECK(cifar_error(cifar_file({255})).find("record 0 (byte offset 0) has label 255") != std::string::npos);
    CHECK_THROWS_WITH_AS(read_cifar10<float>("/nonexistent/data_batch_1.bin"),
                         doctest::Contains("/nonexistent/data_batch_1.bin: cannot open CIFAR-10 batch file (No such file"), Cifar10Error);
    const std::string dir = fresh_dir("cifar_dir_as_file");
    CHECK_THROWS_WITH_AS(read_cifar10<float>(dir), doctest::Contains("not a regular file (a directory)"), Cifar10Error);
}

TEST_CASE("load_cifar10: the five training batches in order, the test batch, the archive's folder, and missing files") {
    const std::string root = fresh_dir("cifar");
    const std::string dir = root + "/cifar-10-batches-bin";  // as unpacked from cifar-10-binary.tar.gz
    fs::create_directories(dir);
    const std::string not_found = "CIFAR-10 binary files not found: neither " + root + "/test_batch.bin nor " + dir + "/test_batch.bin exists";
    CHECK_THROWS_WITH_AS(load_cifar10<float>(root, Split::Test), doctest::Contains(not_found.c_str()), Cifar10Error);
    write(dir + "/test_batch.bin", cifar_file({7, 8}, 100));
    for (int k = 1; k <= 4; ++k) write(dir + "/data_batch_" + std::to_string(k) + ".bin", cifar_file({static_cast<std::uint8_t>(k), 0}, 10 * k));
    const std::string missing = "CIFAR-10 file not found: " + dir +
                                "/data_batch_5.bin (the training split is data_batch_1.bin ... data_batch_5.bin; the test split is test_batch.bin)";
    CHECK_THROWS_WITH_AS(load_cifar10<float>(root, Split::Train), missing.c_str(), Cifar10Error);
    write(dir + "/data_batch_5.bin", cifar_file({5, 6, 9}, 50));
    const auto test = load_cifar10<float>(root, Split::Test);  // found through cifar-10-batches-bin
    CHECK(test.labels == std::vector<int>{7, 8});
    CHECK(test.images(1, 0, 0, 0) == static_cast<float>(101 * 7 % 256) / 255.0f);
    const auto train = load_cifar10<float>(dir, Split::Train);  // the folder itself
    REQUIRE(train.images.shape() == Shape{11, 3, 32, 32});
    CHECK(train.labels == std::vector<int>{1, 0, 2, 0, 3, 0, 4, 0, 5, 6, 9});
    CHECK(train.images(8, 1, 2, 3) == static_cast<float>((50 * 7 + 50 + 6 + 3) % 256) / 255.0f);  // first record of batch 5
    CHECK(train.images(10, 2, 31, 0) == static_cast<float>((52 * 7 + 100 + 93) % 256) / 255.0f);
    // A bad record in batch 3 is named by its file and index.
    write(dir + "/data_batch_3.bin", cifar_file({1, 11}));
    const std::string bad_label = dir + "/data_batch_3.bin: record 1 (byte offset 3073) has label 11 (CIFAR-10 labels are 0-9)";
    CHECK_THROWS_WITH_AS(load_cifar10<float>(dir, Split::Train), bad_label.c_str(), Cifar10Error);
    write(dir + "/data_batch_3.bin", {});
    CHECK_THROWS_WITH_AS(load_cifar10<float>(dir, Split::Train), doctest::Contains("data_batch_3.bin: empty file"), Cifar10Error);
    fs::remove_all(root);
}

TEST_CASE("CIFAR-10 class names from batches.meta.txt") {
    const std::string dir = fresh_dir("cifar_meta");
    const std::string names = "airplane\nautomobile\nbird\ncat\ndeer\ndog\nfrog\nhorse\nship\ntruck\n";
    write(dir + "/batches.meta.txt", Bytes(names.begin(), names.end()));
    const auto got = read_cifar10_class_names(dir);  // the folder, or the file itself
    REQUIRE(got.size() == 10);
    CHECK(got[0] == "airplane");
    CHECK(got[9] == "truck");
    CHECK(read_cifar10_class_names(dir + "/batches.meta.txt") == got);
    CHECK(parse_cifar10_class_names("airplane\r\nautomobile\r\nbird\r\ncat\r\ndeer\r\ndog\r\nfrog\r\nhorse\r\nship\r\ntruck\r\n\n\n") == got);
    CHECK_THROWS_WITH_AS(parse_cifar10_class_names("a\nb\n", "m.txt"), "m.txt: 2 class names (CIFAR-10 has 10, one a line)", Cifar10Error);
    CHECK_THROWS_WITH_AS(parse_cifar10_class_names("a\n\nb\n", "m.txt"), "m.txt: line 2 is empty (expected one class name a line)", Cifar10Error);
    CHECK_THROWS_WITH_AS(parse_cifar10_class_names("\n\n", "m.txt"), "m.txt: no class names (expected 10 lines, airplane ... truck)", Cifar10Error);
    CHECK_THROWS_WITH_AS(read_cifar10_class_names("/nonexistent"), doctest::Contains("/nonexistent: cannot open CIFAR-10 class names"), Cifar10Error);
    fs::remove_all(dir);
}
