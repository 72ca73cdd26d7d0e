// SPDX-License-Identifier: MIT
// eigencnn/data/image_folder.hpp
//
// load_image_folder(root, options): a data set stored as one folder of images
// per class, read as torchvision.datasets.ImageFolder reads it:
//
//   root/<class>/<image>.png|jpg|jpeg|bmp|ppm|pgm   (also in subfolders of a class folder)
//
// - classes: the folders directly under root, sorted by name (byte order, as
//   Python's sorted()); label = position in that list (class_to_idx).
//   Files directly under root are ignored.
// - samples: class by class in label order; within a class, the files of each
//   folder sorted by name, folders in sorted order of their paths (as
//   torchvision's sorted(os.walk(...)), symbolic links followed).
// - Files whose extension (case-insensitive) is not one of the above are
//   skipped, as torchvision skips files outside its IMG_EXTENSIONS (a README,
//   .DS_Store, ...); a file with an image extension that cannot be read or
//   decoded is an error naming it, never skipped. A class folder without a
//   single image file is an error (torchvision's allow_empty=False).
// - Each image is decoded through io/image.hpp to `channels` channels (3 RGB,
//   as torchvision's default loader; 1 grey, PIL's "L") and must be
//   height x width (default: the first image's size); with `resize` it is
//   resized bilinearly instead (io/image.hpp: antialias=False).
//
// Result: images [N, channels, H, W] in [0, 1] (ToTensor), labels, the class
// names and each sample's file. Errors are ImageError("<path>: <problem>");
// bad options are std::invalid_argument naming the option.
// Not part of eigencnn.hpp (it compiles stb_image; see io/stb_image.hpp).
#pragma once

#include "../io/image.hpp"
#include "dataset.hpp"

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

namespace eigencnn {

struct ImageFolderOptions {
    Index channels = 3;  ///< 3 RGB, 1 grey
    Index height = 0;    ///< 0 (with width 0): the first image's size
    Index width = 0;
    bool resize = false;  ///< resize images of another size to height x width (which must then be given) instead of refusing them
    Index max_pixels = kMaxImagePixels;  ///< refuse a file whose header declares more pixels
};

template <typename T>
struct ImageFolder {
    Dataset<T> data;                   ///< images [N, C, H, W] in [0, 1], labels = class indices
    std::vector<std::string> classes;  ///< class names (folder names), sorted; label i is classes[i]
    std::vector<std::string> files;    ///< the file of each sample, in sample order
};

/// The file extensions read, lower case (a file name's extension is compared case-insensitively).
inline const std::vector<std::string>& image_folder_extensions() {
    static const std::vector<std::string> ext{".png", ".jpg", ".jpeg", ".bmp", ".ppm", ".pgm"};
    return ext;
}

namespace detail {

inline bool has_image_extension(const std::string& name) {
    std::string lower = name;
    std::transform(lower.begin(), lower.end(), lower.begin(), [](unsigned char ch) { return static_cast<char>(std::tolower(ch)); });
    for (const auto& e : image_folder_extensions())
        if (lower.size() > e.size() && lower.compare(lower.size() - e.size(), e.size(), e) == 0) return true;
    return false;
}

inline std::string extension_list() {
    std::string s;
    for (const auto& e : image_folder_extensions()) s += (s.empty() ? "" : " ") + e;
    return s;
}

/// The image files under `dir` (recursively, links followed), ordered as torchvision's sorted(os.walk(dir)).
inline std::vector<std::string> image_files_under(const std::filesystem::path& dir) {
    namespace fs = std::filesystem;
    std::vector<std::pair<std::string, std::string>> found;  // (folder, file name)
    std::error_code ec;
    fs::recursive_directory_iterator it(dir, fs::directory_options::follow_directory_symlink, ec), end;
    if (ec) throw ImageError(dir.string() + ": cannot list the class folder (" + ec.message() + ")");
    for (; it != end; it.increment(ec)) {
        if (ec) throw ImageError(dir.string() + ": cannot list the class folder (" + ec.message() + ")");
        const std::string name = it->path().filename().string();
        if (it->is_regular_file(ec) && has_image_extension(name)) found.emplace_back(it->path().parent_path().string(), name);
    }
    if (ec) throw ImageError(dir.string() + ": cannot list the class folder (" + ec.message() + ")");
    std::sort(found.begin(), found.end());
    std::vector<std::string> files;
    for (const auto& f : found) files.push_back(f.first + "/" + f.second);
    return files;
}

}  // namespace detail

/// The class folders under `root`, sorted (torchvision's find_classes). Throws ImageError if there are none.
inline std::vector<std::string> image_folder_classes(const std::string& root) {
    namespace fs = std::filesystem;
    std::error_code ec;
    if (!fs::is_directory(root, ec))
        throw ImageError(root + ": " + (fs::exists(root, ec) ? "not a folder" : "no such folder") + " (expected root/<class>/<image>)");
    std::vector<std::string> classes;
    fs::directory_iterator it(root, ec), end;
    if (ec) throw ImageError(root + ": cannot list the folder (" + ec.message() + ")");
    for (; it != end; it.increment(ec)) {
        if (ec) throw ImageError(root + ": cannot list the folder (" + ec.message() + ")");
        if (it->is_directory(ec)) classes.push_back(it->path().filename().string());
    }
    if (ec) throw ImageError(root + ": cannot list the folder (" + ec.message() + ")");
    if (classes.empty()) throw ImageError(root + ": no class folders (expected root/<class>/<image>, images " + detail::extension_list() + ")");
    std::sort(classes.begin(), classes.end());
    return classes;
}

/// Read the data set of one folder of images per class (see the top of this header).
template <typename T = float>
ImageFolder<T> load_image_folder(const std::string& root, const ImageFolderOptions& options = {}) {
    if (options.channels != 1 && options.channels != 3)
        throw std::invalid_argument("load_image_folder: channels must be 1 (grey) or 3 (RGB), got " + std::to_string(options.channels));
    if (options.height < 0 || options.width < 0 || (options.height == 0) != (options.width == 0))
        throw std::invalid_argument("load_image_folder: height and width must both be positive, or both 0 (the first image's size); got " +
                                    std::to_string(options.height) + " and " + std::to_string(options.width));
    if (options.resize && options.height == 0)
        throw std::invalid_argument("load_image_folder: resize needs height and width");
    if (options.max_pixels < 1) throw std::invalid_argument("load_image_folder: max_pixels must be >= 1, got " + std::to_string(options.max_pixels));
    ImageFolder<T> out;
    out.classes = image_folder_classes(root);
    std::vector<int> labels;
    for (std::size_t c = 0; c < out.classes.size(); ++c) {
        const std::string dir = root + "/" + out.classes[c];
        const auto files = detail::image_files_under(dir);
        if (files.empty())
            throw ImageError(dir + ": class folder '" + out.classes[c] + "' holds no image file (" + detail::extension_list() +
                             "; files of other types are skipped)");
        out.files.insert(out.files.end(), files.begin(), files.end());
        labels.insert(labels.end(), files.size(), static_cast<int>(c));
    }
    Index H = options.height, W = options.width;
    std::string size_from = "the requested size";
    const Index N = static_cast<Index>(out.files.size());
    for (Index i = 0; i < N; ++i) {
        const std::string& file = out.files[static_cast<std::size_t>(i)];
        const Image8 im = read_image(file, options.channels, options.max_pixels);
        if (H == 0) {  // the first image fixes the size
            H = im.height;
            W = im.width;
            size_from = "the size of the first image, " + file;
            out.data.images.resize(Shape{N, options.channels, H, W});
        } else if (i == 0) {
            out.data.images.resize(Shape{N, options.channels, H, W});
        }
        if (!options.resize && (im.height != H || im.width != W))
            throw ImageError(file + ": image is " + std::to_string(im.height) + "x" + std::to_string(im.width) + " (height x width), expected " +
                             std::to_string(H) + "x" + std::to_string(W) + " (" + size_from + "); set ImageFolderOptions::resize to resize");
        resize_to_chw(im, H, W, out.data.images.data() + i * options.channels * H * W);
    }
    out.data.labels = std::move(labels);
    return out;
}

}  // namespace eigencnn
