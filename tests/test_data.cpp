// SPDX-License-Identifier: MIT
// IDX reader (raw and gzip, and every kind of bad file), datasets and the DataLoader.
#include <doctest/doctest.h>
#include <eigencnn/eigencnn.hpp>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <set>

using namespace eigencnn;
using Bytes = std::vector<std::uint8_t>;

namespace {

Bytes idx_bytes(std::vector<std::uint32_t> dims, std::size_t data_len, std::uint8_t type = 0x08) {
    Bytes b{0, 0, type, static_cast<std::uint8_t>(dims.size())};
    for (auto d : dims)
        for (int s = 24; s >= 0; s -= 8) b.push_back(static_cast<std::uint8_t>(d >> s));
    for (std::size_t i = 0; i < data_len; ++i) b.push_back(static_cast<std::uint8_t>(i * 37 + 11));
    return b;
}

Bytes gzip(const Bytes& in) {
    z_stream zs{};
    REQUIRE(deflateInit2(&zs, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) == Z_OK);
    Bytes out(deflateBound(&zs, in.size()) + 64);
    zs.next_in = const_cast<Bytef*>(in.data());
    zs.avail_in = static_cast<uInt>(in.size());
    zs.next_out = out.data();
    zs.avail_out = static_cast<uInt>(out.size());
    REQUIRE(deflate(&zs, Z_FINISH) == Z_STREAM_END);
    out.resize(zs.total_out);
    deflateEnd(&zs);
    return out;
}

std::string parse_error(const Bytes& b, const std::string& name = "f.idx") {
    try {
        parse_idx(b.data(), b.size(), name);
    } catch (const IdxError& e) {
        return e.what();
    }
    return "(no error)";
}

std::string temp_path(const std::string& name) { return "eigencnn_test_" + name; }

void write(const std::string& path, const Bytes& b) {
    std::ofstream(path, std::ios::binary).write(reinterpret_cast<const char*>(b.data()), static_cast<std::streamsize>(b.size()));
}

}  // namespace

TEST_CASE("IDX: a valid file parses, raw and gzip-compressed") {
    const Bytes raw = idx_bytes({3, 2, 4}, 24);
    for (const Bytes& b : {raw, gzip(raw)}) {
        const IdxArray a = parse_idx(b.data(), b.size());
        CHECK(a.dims == std::vector<std::uint32_t>{3, 2, 4});
        REQUIRE(a.data.size() == 24);
        CHECK(a.data[0] == 11);
        CHECK(a.data[23] == static_cast<std::uint8_t>(23 * 37 + 11));
    }
    const std::string p = temp_path("valid.idx.gz");
    write(p, gzip(raw));
    CHECK(read_idx(p).dims.size() == 3);
    std::remove(p.c_str());
}

TEST_CASE("read_file_bytes returns a file's exact content, and read_idx the same array as parse_idx") {
    for (std::size_t size : {std::size_t(0), std::size_t(1), std::size_t(4095), std::size_t(300001)}) {
        CAPTURE(size);
        Bytes b(size);
        for (std::size_t i = 0; i < size; ++i) b[i] = static_cast<std::uint8_t>((i * 2654435761u) >> 13);
        const std::string p = temp_path("bytes.bin");
        write(p, b);
        CHECK(read_file_bytes<IdxError>(p, "file") == b);
        std::remove(p.c_str());
    }
    const Bytes raw = idx_bytes({7, 28, 28}, 7 * 28 * 28);
    for (const Bytes& b : {raw, gzip(raw)}) {
        const std::string p = temp_path("read.idx");
        write(p, b);
        const IdxArray from_file = read_idx(p), from_memory = parse_idx(b.data(), b.size());
        CHECK(from_file.dims == std::vector<std::uint32_t>{7, 28, 28});
        CHECK(from_file.dims == from_memory.dims);
        CHECK(from_file.data == from_memory.data);
        CHECK(from_file.data == Bytes(raw.begin() + 16, raw.end()));
        std::remove(p.c_str());
    }
}

TEST_CASE("a large Tensor is 2 MiB aligned (huge pages on Linux) and behaves as any other") {
    const Index n = Index(3) << 20;  // 12 MiB of floats, above TensorAllocator's 8 MiB
    Tensor<float> big(Shape{n});
    if (TensorAllocator<float>::kHugePages) CHECK(reinterpret_cast<std::uintptr_t>(big.data()) % (std::uintptr_t(2) << 20) == 0);
    CHECK(reinterpret_cast<std::uintptr_t>(Tensor<float>(Shape{100}).data()) % 16 == 0);
    CHECK(big[0] == 0.0f);
    CHECK(big[n - 1] == 0.0f);
    for (Index i = 0; i < n; i += 4099) big[i] = static_cast<float>(i);
    const Tensor<float> copy = big;
    CHECK(std::equal(copy.data(), copy.data() + n, big.data()));
    big.resize(Shape{n / 8});  // shrinks below the threshold: the same block, kept
    CHECK(big[4099] == 4099.0f);
    big.resize(Shape{2 * n});  // grows: a new block, the first n / 8 carried over
    CHECK(big[4099] == 4099.0f);
    CHECK(big.size() == 2 * n);
}

TEST_CASE("IDX: each kind of bad file has its own clear error naming the file") {
    const Bytes good = idx_bytes({2, 3}, 6);
    CHECK(parse_error({}, "empty.idx") == "empty.idx: empty file");
    CHECK(parse_error({0, 0, 8}, "short.idx").find("short.idx: truncated header") == 0);
    Bytes magic = good;
    magic[0] = 0x50, magic[1] = 0x4b;  // "PK": a zip file, say
    CHECK(parse_error(magic).find("wrong magic number") != std::string::npos);
    CHECK(parse_error(idx_bytes({2, 3}, 6, 0x0d)).find("unsupported element type 0x0d") != std::string::npos);
    CHECK(parse_error(idx_bytes({}, 0)).find("0 dimensions") != std::string::npos);
    CHECK(parse_error(Bytes(good.begin(), good.begin() + 9)).find("truncated header") != std::string::npos);
    CHECK(parse_error(Bytes(good.begin(), good.end() - 1)).find("truncated data (header declares 2 x 3 = 6 bytes, file has 5)") !=
          std::string::npos);
    Bytes longer = good;
    longer.push_back(0);
    CHECK(parse_error(longer).find("1 bytes of trailing data") != std::string::npos);
    CHECK(parse_error(idx_bytes({2, 0}, 0)).find("dimension 1 is 0") != std::string::npos);
    // Absurd dimensions: declared sizes far beyond the data are refused before anything that size is allocated.
    CHECK(parse_error(idx_bytes({0xffffffffu, 0xffffffffu, 0xffffffffu}, 4)).find("overflows") != std::string::npos);
    CHECK(parse_error(idx_bytes({60000, 28, 28}, 100)).find("truncated data (header declares 60000 x 28 x 28") != std::string::npos);
}

TEST_CASE("IDX: bad gzip files") {
    const Bytes gz = gzip(idx_bytes({4, 4}, 16));
    CHECK(parse_error(Bytes(gz.begin(), gz.end() - 6)).find("truncated gzip stream") != std::string::npos);
    Bytes corrupt = gz;
    for (std::size_t i = 12; i < corrupt.size() - 8; ++i) corrupt[i] ^= 0x5a;
    CHECK(parse_error(corrupt).find("corrupt gzip data") != std::string::npos);
    CHECK(parse_error(gzip({})).find("empty file") != std::string::npos);
    CHECK(parse_error(gzip(idx_bytes({4, 4}, 20))).find("trailing data") != std::string::npos);
}

TEST_CASE("IDX: gzip follows gzip(1): several members are one stream, other trailing bytes are refused") {
    const Bytes raw = idx_bytes({6, 5}, 30);
    const Bytes first = gzip(Bytes(raw.begin(), raw.begin() + 17)), second = gzip(Bytes(raw.begin() + 17, raw.end()));
    Bytes two = first;
    two.insert(two.end(), second.begin(), second.end());
    const IdxArray a = parse_idx(two.data(), two.size(), "two.gz");
    CHECK(a.dims == std::vector<std::uint32_t>{6, 5});
    CHECK(a.data == Bytes(raw.begin() + 12, raw.end()));
    Bytes garbage = gzip(raw);
    garbage.push_back('x');
    garbage.push_back('y');
    CHECK(parse_error(garbage) == "f.idx: 2 bytes of trailing data after gzip member 1 (not another gzip member)");
}

TEST_CASE("IDX: a gzip file whose header declares more than deflate can expand to is refused before inflating") {
    // 3 x 100000 x 100000 = 3e10 bytes declared, a few dozen bytes of gzip: refused at once, whatever follows.
    Bytes header = idx_bytes({3, 100000, 100000}, 0);
    header.resize(header.size() + 4096, 0);
    const Bytes gz = gzip(header);
    CHECK(gz.size() < 200);
    CHECK(parse_error(gz).find("f.idx: header declares 3 x 100000 x 100000 = 30000000000 bytes, more than " + std::to_string(gz.size()) +
                               " bytes of gzip data can hold") == 0);
    // A plausible declaration (within 1032:1) inflates and is then refused for its real size, not earlier.
    const Bytes honest = gzip(idx_bytes({100, 100}, 100));
    CHECK(parse_error(honest).find("truncated data") != std::string::npos);
}

TEST_CASE("IDX: a missing file and a mismatched image/label pair") {
    CHECK_THROWS_WITH_AS(read_idx("/nonexistent/x.idx"), doctest::Contains("/nonexistent/x.idx: cannot open file"), IdxError);
    const IdxArray images = parse_idx(idx_bytes({3, 2, 2}, 12).data(), 16 + 12);
    const IdxArray labels = parse_idx(idx_bytes({2}, 2).data(), 8 + 2);
    CHECK_THROWS_WITH_AS(make_dataset<float>(images, labels, "imgs", "lbls"), "imgs holds 3 images but lbls holds 2 labels", IdxError);
    CHECK_THROWS_WITH_AS(make_dataset<float>(labels, labels, "a", "b"), doctest::Contains("a: expected images of 3 dimensions"), IdxError);
}

TEST_CASE("load_mnist finds raw or .gz files and checks labels are digits") {
    const std::string dir = ".";
    Bytes img = idx_bytes({2, 3, 3}, 18), lab = idx_bytes({2}, 2);
    lab[8] = 7, lab[9] = 1;
    write(dir + "/t10k-images-idx3-ubyte.gz", gzip(img));
    write(dir + "/t10k-labels-idx1-ubyte", lab);
    const auto ds = load_mnist<float>(dir, Split::Test);
    CHECK(ds.images.shape() == Shape{2, 1, 3, 3});
    CHECK(ds.labels == std::vector<int>{7, 1});
    CHECK(ds.images[0] == doctest::Approx(11.0f / 255.0f));
    lab[9] = 12;
    write(dir + "/t10k-labels-idx1-ubyte", lab);
    CHECK_THROWS_WITH_AS(load_mnist<float>(dir, Split::Test), doctest::Contains("label 12 of sample 1 is not a digit"), IdxError);
    CHECK_THROWS_WITH_AS(load_mnist<float>(dir, Split::Train), doctest::Contains("train-images-idx3-ubyte.gz exists"), IdxError);
    std::remove((dir + "/t10k-images-idx3-ubyte.gz").c_str());
    std::remove((dir + "/t10k-labels-idx1-ubyte").c_str());
}

TEST_CASE("DataLoader: every sample once per epoch, seeded order, short last batch") {
    Dataset<float> ds;
    ds.images.resize(Shape{23, 1, 2, 2});
    for (Index i = 0; i < ds.images.size(); ++i) ds.images[i] = static_cast<float>(i / 4);  // image i is filled with i
    for (int i = 0; i < 23; ++i) ds.labels.push_back(i % 10);
    DataLoader<float> a(ds, 5, true, 42), b(ds, 5, true, 42), c(ds, 5, true, 43);
    CHECK(a.num_batches() == 5);
    std::vector<std::size_t> seen, first_epoch;
    Batch<float> batch;
    for (std::size_t i = 0; i < a.num_batches(); ++i) {
        a.load(i, batch);
        CHECK(batch.images.dim(0) == (i == 4 ? 3 : 5));
        for (std::size_t k = 0; k < batch.indices.size(); ++k) {
            CHECK(batch.images(static_cast<Index>(k), 0, 1, 1) == static_cast<float>(batch.indices[k]));
            CHECK(batch.labels[k] == static_cast<int>(batch.indices[k] % 10));
        }
        seen.insert(seen.end(), batch.indices.begin(), batch.indices.end());
    }
    first_epoch = seen;
    CHECK(std::set<std::size_t>(seen.begin(), seen.end()).size() == 23);
    std::vector<std::size_t> sorted(seen);
    std::sort(sorted.begin(), sorted.end());
    CHECK(seen != sorted);  // shuffled

    auto order = [](DataLoader<float>& l, std::uint64_t epoch) {
        l.set_epoch(epoch);
        std::vector<std::size_t> o;
        Batch<float> bb;
        for (std::size_t i = 0; i < l.num_batches(); ++i) {
            l.load(i, bb);
            o.insert(o.end(), bb.indices.begin(), bb.indices.end());
        }
        return o;
    };
    CHECK(order(b, 0) == first_epoch);
    CHECK(order(c, 0) != first_epoch);
    CHECK(order(b, 1) != first_epoch);
    DataLoader<float> plain(ds, 10, false);
    CHECK(order(plain, 3) == sorted);
    CHECK_THROWS_AS(DataLoader<float>(ds, 0, true), std::invalid_argument);
    CHECK_THROWS_AS(a.load(5, batch), std::out_of_range);
}

TEST_CASE("Rng: permutation and choice are uniform-looking and seeded") {
    Rng r(1);
    const auto p = r.permutation(10);
    CHECK(std::set<std::size_t>(p.begin(), p.end()).size() == 10);
    const auto c = Rng(5).choice(100, 30);
    CHECK(std::set<std::size_t>(c.begin(), c.end()).size() == 30);
    CHECK(c == Rng(5).choice(100, 30));
    std::vector<int> hist(4);
    Rng h(9);
    for (int i = 0; i < 40000; ++i) ++hist[h.below(4)];
    for (int v : hist) CHECK(std::abs(v - 10000) < 400);
}

TEST_CASE("datasets and loaders refuse mismatched label counts and labels out of range") {
    Dataset<float> ds;
    ds.images.resize(Shape{4, 1, 2, 2});
    ds.labels = {1, 2, 3};
    CHECK_THROWS_WITH_AS(DataLoader<float>(ds, 2, false), doctest::Contains("4 images but 3 labels"), std::invalid_argument);
    CHECK_THROWS_WITH_AS(ds.validate(10), doctest::Contains("4 images but 3 labels"), std::invalid_argument);
    ds.labels = {1, 2, 3, 10};
    CHECK_THROWS_WITH_AS(ds.validate(10), doctest::Contains("label 10 of sample 3 is outside [0, 10)"), std::invalid_argument);
    ds.labels = {1, 2, 3, -1};
    CHECK_THROWS_AS(ds.validate(10), std::invalid_argument);
    Dataset<float> empty;
    empty.images.resize(Shape{0, 1, 2, 2});
    CHECK_THROWS_WITH_AS(DataLoader<float>(empty, 2, false), doctest::Contains("empty"), std::invalid_argument);
}
