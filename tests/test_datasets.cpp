// SPDX-License-Identifier: MIT
// Readers of data sets other than MNIST: the CIFAR-10 binary format (on files the test writes; the data set is not
// on this machine) and a folder of images per class (ImageFolder).
#include <doctest/doctest.h>
#include <eigencnn/data/cifar10.hpp>
#include <eigencnn/data/image_folder.hpp>
#include <eigencnn/io/png.hpp>

#define STB_IMAGE_WRITE_IMPLEMENTATION
#define STB_IMAGE_WRITE_STATIC
#include <stb_image_write.h>

#include <filesystem>
#include <fstream>
#include <iterator>

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

namespace {

/// An h x w image of `c` channels where pixel (y, x, ch) = (base + 40 y + 7 x + 90 ch) mod 256.
std::vector<std::uint8_t> pattern(int h, int w, int c, int base) {
    std::vector<std::uint8_t> px;
    for (int y = 0; y < h; ++y)
        for (int x = 0; x < w; ++x)
            for (int ch = 0; ch < c; ++ch) px.push_back(static_cast<std::uint8_t>((base + 40 * y + 7 * x + 90 * ch) % 256));
    return px;
}

void write_png_file(const std::string& path, int h, int w, int c, int base) {
    const auto px = pattern(h, w, c, base);
    write_png(path, w, h, c, px.data());
}

void write_text(const std::string& path, const std::string& text) { write(path, Bytes(text.begin(), text.end())); }

std::string folder_error(const std::string& root, const ImageFolderOptions& o = {}) {
    try {
        load_image_folder<float>(root, o);
    } catch (const ImageError& e) {
        return e.what();
    }
    return "(no error)";
}

}  // namespace

TEST_CASE("ImageFolder: classes sorted by name, files sorted, other files skipped, pixels as ToTensor") {
    const std::string root = fresh_dir("folder");
    for (const char* c : {"dog", "cat", "bird"}) fs::create_directories(root + "/" + c);
    fs::create_directories(root + "/cat/more");
    write_png_file(root + "/dog/b.png", 3, 4, 3, 1);
    write_png_file(root + "/dog/a.PNG", 3, 4, 3, 2);  // extensions are compared case-insensitively
    write_png_file(root + "/cat/z.png", 3, 4, 3, 3);
    write_png_file(root + "/cat/more/a.png", 3, 4, 3, 4);  // a subfolder comes after its parent's files
    write_png_file(root + "/bird/x.png", 3, 4, 1, 5);      // a grey PNG read as RGB: the grey value in each channel
    const auto bmp = pattern(3, 4, 3, 6);
    REQUIRE(stbi_write_bmp((root + "/bird/y.bmp").c_str(), 4, 3, 3, bmp.data()));
    write_text(root + "/bird/README.txt", "not an image");  // skipped
    write_text(root + "/notes.txt", "files directly under root are ignored");
    const auto f = load_image_folder<float>(root);
    CHECK(f.classes == std::vector<std::string>{"bird", "cat", "dog"});
    CHECK(f.files == std::vector<std::string>{root + "/bird/x.png", root + "/bird/y.bmp", root + "/cat/z.png", root + "/cat/more/a.png",
                                              root + "/dog/a.PNG", root + "/dog/b.png"});
    CHECK(f.data.labels == std::vector<int>{0, 0, 1, 1, 2, 2});
    REQUIRE(f.data.images.shape() == Shape{6, 3, 3, 4});
    const int bases[6] = {5, 6, 3, 4, 2, 1};
    for (int n = 0; n < 6; ++n)
        for (int c = 0; c < 3; ++c)
            for (int y = 0; y < 3; ++y)
                for (int x = 0; x < 4; ++x) {
                    const int ch = n == 0 ? 0 : c;  // the grey image: its one value in all three channels
                    CHECK(f.data.images(n, c, y, x) == static_cast<float>((bases[n] + 40 * y + 7 * x + 90 * ch) % 256) / 255.0f);
                }
    // Grey (channels 1) is PIL's convert("L"): (19595 R + 38470 G + 7471 B + 2^15) >> 16; a grey image stays as it is.
    ImageFolderOptions grey;
    grey.channels = 1;
    const auto g = load_image_folder<double>(root, grey);
    REQUIRE(g.data.images.shape() == Shape{6, 1, 3, 4});
    CHECK(g.data.images(0, 0, 2, 3) == static_cast<double>((5 + 80 + 21) % 256) / 255.0);
    const int r = (3 + 40 + 14) % 256, gr = (3 + 40 + 14 + 90) % 256, b = (3 + 40 + 14 + 180) % 256;  // cat/z.png at (1, 2)
    CHECK(g.data.images(2, 0, 1, 2) == static_cast<double>((19595 * r + 38470 * gr + 7471 * b + 32768) >> 16) / 255.0);
    fs::remove_all(root);
}

TEST_CASE("ImageFolder: one size for all images, or resized to the requested size") {
    const std::string root = fresh_dir("folder_sizes");
    fs::create_directories(root + "/a");
    fs::create_directories(root + "/b");
    write_png_file(root + "/a/1.png", 4, 4, 3, 0);
    write_png_file(root + "/b/1.png", 2, 2, 3, 0);
    CHECK(folder_error(root) == root + "/b/1.png: image is 2x2 (height x width), expected 4x4 (the size of the first image, " + root +
                                    "/a/1.png); set ImageFolderOptions::resize to resize");
    ImageFolderOptions sized;
    sized.height = sized.width = 2;
    CHECK(folder_error(root, sized) == root + "/a/1.png: image is 4x4 (height x width), expected 2x2 (the requested size); set "
                                          "ImageFolderOptions::resize to resize");
    sized.resize = true;
    const auto f = load_image_folder<float>(root, sized);
    REQUIRE(f.data.images.shape() == Shape{2, 3, 2, 2});
    // 4x4 -> 2x2 bilinear (align_corners=False): output (0, 0) samples source (0.5, 0.5), the mean of pixels (0..1, 0..1).
    const double expect = (0 + 7 + 40 + 47) / 4.0 / 255.0;
    CHECK(f.data.images(0, 0, 0, 0) == doctest::Approx(expect).epsilon(1e-6));
    CHECK(f.data.images(1, 1, 1, 1) == static_cast<float>(40 + 7 + 90) / 255.0f);  // already 2x2: unchanged
    fs::remove_all(root);
}

TEST_CASE("ImageFolder: bad folders and files are refused with an error naming them") {
    CHECK(folder_error("/nonexistent/images") == "/nonexistent/images: no such folder (expected root/<class>/<image>)");
    const std::string root = fresh_dir("folder_bad");
    write_text(root + "/a.png", "x");
    CHECK(folder_error(root) == root + ": no class folders (expected root/<class>/<image>, images .png .jpg .jpeg .bmp .ppm .pgm)");
    CHECK(folder_error(root + "/a.png").find("a.png: not a folder") != std::string::npos);
    fs::create_directories(root + "/cat");
    fs::create_directories(root + "/dog");
    write_png_file(root + "/cat/1.png", 2, 2, 3, 0);
    write_text(root + "/dog/notes.txt", "x");
    CHECK(folder_error(root) == root + "/dog: class folder 'dog' holds no image file (.png .jpg .jpeg .bmp .ppm .pgm; files of other types are skipped)");
    write_text(root + "/dog/1.jpg", "this is not a JPEG");
    CHECK(folder_error(root) == root + "/dog/1.jpg: not a PNG, JPEG, BMP, PGM or PPM file (unrecognised first bytes)");
    write(root + "/dog/1.jpg", {});
    CHECK(folder_error(root) == root + "/dog/1.jpg: empty file, not an image");
    fs::remove(root + "/dog/1.jpg");
    fs::create_directories(root + "/dog/2.png");  // a folder with an image's name is not a file: still no image
    CHECK(folder_error(root).find(root + "/dog: class folder 'dog' holds no image file") == 0);
    // A truncated PNG names the file.
    const auto px = pattern(8, 8, 3, 0);
    const std::string png = encode_png(8, 8, 3, px.data());
    write_text(root + "/dog/3.png", png.substr(0, png.size() / 2));
    CHECK(folder_error(root).find(root + "/dog/3.png: corrupt PNG (chunk 'IDAT' at byte 33 declares ") == 0);
    fs::remove_all(root);
    ImageFolderOptions o;
    o.channels = 2;
    CHECK_THROWS_WITH_AS(load_image_folder<float>(".", o), "load_image_folder: channels must be 1 (grey) or 3 (RGB), got 2", std::invalid_argument);
    o = {};
    o.height = 5;
    CHECK_THROWS_WITH_AS(load_image_folder<float>(".", o), doctest::Contains("height and width must both be positive, or both 0"), std::invalid_argument);
    o = {};
    o.resize = true;
    CHECK_THROWS_WITH_AS(load_image_folder<float>(".", o), "load_image_folder: resize needs height and width", std::invalid_argument);
}

TEST_CASE("decode_image: a header declaring more pixels than allowed is refused before decoding") {
    const auto px = pattern(1, 1, 3, 0);
    std::string png = encode_png(1, 1, 3, px.data());
    // IHDR's width and height are bytes 16-23; stb_image does not check chunk CRCs, so the lie reaches the size check.
    for (int i : {16, 20}) png.replace(static_cast<std::size_t>(i), 4, std::string("\x00\x00\x27\x10", 4));  // 10000
    const auto* b = reinterpret_cast<const std::uint8_t*>(png.data());
    CHECK_THROWS_WITH_AS(decode_image(b, png.size(), 3, "big.png"),
                         "big.png: image of 10000x10000 (height x width) pixels is larger than 67108864 pixels", ImageError);
    const auto ok = encode_png(1, 1, 3, px.data());
    const Image8 im = decode_image(reinterpret_cast<const std::uint8_t*>(ok.data()), ok.size(), 3, "ok.png");
    CHECK(im.pixels == std::vector<std::uint8_t>{0, 90, 180});
    CHECK_THROWS_WITH_AS(decode_image(b, png.size(), 4, "x.png"), "x.png: channels must be 1 (grey) or 3 (RGB), got 4", std::invalid_argument);
    CHECK_THROWS_WITH_AS(read_image("/nonexistent.png", 3), doctest::Contains("/nonexistent.png: cannot open image file"), ImageError);
}

TEST_CASE("decode_image: only PNG, JPEG, BMP, PGM and PPM reach stb_image, and its known bad inputs are refused first") {
    auto err = [](const std::string& bytes) {
        try {
            decode_image(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size(), 3, "f");
        } catch (const ImageError& e) {
            return std::string(e.what());
        }
        return std::string("(no error)");
    };
    CHECK(err("GIF89a\x01\x00\x01\x00") == "f: not a PNG, JPEG, BMP, PGM or PPM file (unrecognised first bytes)");
    CHECK(err("hello") == "f: not a PNG, JPEG, BMP, PGM or PPM file (unrecognised first bytes)");
    // PNM sizes that would overflow stb_image 2.27's int parsing (fixed upstream in nothings/stb PR #1297)
    CHECK(err("P5\n3333333333 2\n255\n") == "f: PGM/PPM width is larger than 16777216");
    CHECK(err("P6 # comment\n2 99999999999\n255\n") == "f: PGM/PPM height is larger than 16777216");
    CHECK(err("P5 2 2 70000\n") == "f: PGM/PPM maximum value is larger than 255 (16-bit PGM/PPM files are not read)");
    // 16-bit PNM converted to 3 channels: stb_image 2.27 reads past its buffer (found by fuzz_image; kept in fuzz/regressions)
    CHECK(err("P5\n3\n03\n02355\n =Zw\x94\x08%B") == "f: PGM/PPM maximum value is larger than 255 (16-bit PGM/PPM files are not read)");
    CHECK(err(std::string("P5\n2 1\n255\n\x05\x07", 13)) == "(no error)");
    // A JPEG whose Huffman table declares more than 256 codes (nothings/stb#1289, #1291): refused before stb_image
    // overruns its tables, in the header and after the first scan.
    std::string dht = std::string("\xFF\xC4\x00\x14\x00", 5) + std::string(15, '\x01') + std::string("\xFF", 1);  // 15 + 255 codes
    CHECK(err(std::string("\xFF\xD8", 2) + dht) == "f: corrupt JPEG (a Huffman table declares 270 codes, at most 256)");
    CHECK(err(std::string("\xFF\xD8\xFF\xE0\x00\x04\xFF\xC4", 8) + std::string("\x00\x10junk", 6)).find("Huffman table") == std::string::npos);  // inside APP0: skipped
    CHECK(err(std::string("\xFF\xD8\xFF\xDA\x00\x02\x12\x34\xFF\x00", 10) + dht) == "f: corrupt JPEG (a Huffman table declares 270 codes, at most 256)");
    // A PNG chunk longer than the file (stb_image 2.27 allocates the declared length first: 1.8 GB for 77 bytes).
    const fs::path oom = fs::path(EIGENCNN_SOURCE_DIR) / "fuzz/regressions/image/png_chunk_of_1833761873_bytes";
    std::ifstream fo(oom, std::ios::binary);
    const std::string big((std::istreambuf_iterator<char>(fo)), std::istreambuf_iterator<char>());
    CHECK(err(big) == "f: corrupt PNG (chunk 'IDAT' at byte 33 declares 1833761873 bytes, the file has 36 after its header)");
    const auto px = pattern(3, 2, 3, 0);
    const std::string png = encode_png(2, 3, 3, px.data());
    CHECK(err(png.substr(0, png.size() - 4)) == "(no error)");  // IEND's CRC missing: stb_image does not read it
    const fs::path found = fs::path(EIGENCNN_SOURCE_DIR) / "fuzz/regressions/image/jpeg_huffman_table_of_1799_codes";
    std::ifstream f(found, std::ios::binary);
    const std::string crash((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    REQUIRE(crash.size() > 100);
    CHECK(err(crash) == "f: corrupt JPEG (a Huffman table declares 1799 codes, at most 256)");
    // A DC Huffman symbol above 15: stb_image 2.27 would read that many bits of a difference, past its 17-entry
    // bit-mask table (fixed in 2.28). The corpus JPEG decodes; with its first DC symbol made 33 it is refused.
    std::ifstream fj(fs::path(EIGENCNN_SOURCE_DIR) / "fuzz/corpus/image/rgb.jpg", std::ios::binary);
    std::string jpeg((std::istreambuf_iterator<char>(fj)), std::istreambuf_iterator<char>());
    CHECK(err(jpeg) == "(no error)");
    const std::size_t dht_at = jpeg.find("\xFF\xC4");
    REQUIRE(dht_at != std::string::npos);
    REQUIRE(jpeg[dht_at + 4] == '\x00');  // class 0 (DC), table 0; its 16 counts follow, then the symbols
    jpeg[dht_at + 21] = '\x21';
    CHECK(err(jpeg) == "f: corrupt JPEG (a DC Huffman table holds the symbol 33, at most 15)");
}
