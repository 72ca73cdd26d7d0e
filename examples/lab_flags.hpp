// SPDX-License-Identifier: MIT
// examples/lab_flags.hpp: backdoor_lab's flags. The attack flags (--attack,
// --poison-rate, --target, --all-to-all and each attack's own parameters) turn
// into an AttackSpec; the run flags (--data, --epochs, ...) into LabSettings;
// paths are checked before any data is read or any model trained.
#pragma once

#include "common.hpp"

#include <eigencnn/io/model_file.hpp>
#include <eigencnn/lab/json.hpp>

#include <optional>

namespace lab_program {

using namespace eigencnn;

/// The attack as the flags describe it; unset members keep the attack's defaults.
struct AttackFlags {
    std::string name;
    std::optional<double> poison_rate;
    std::optional<int> target;
    bool all_to_all = false;
    // badnets-pixel
    std::optional<Index> pixel_row, pixel_col;
    // badnets-patch
    std::optional<Index> patch_size, patch_margin;
    std::optional<std::string> patch_pattern, patch_corner;
    // blended
    std::optional<double> blend_alpha;
    std::optional<std::string> trigger_image;
    // sig
    std::optional<double> sig_delta, sig_frequency;
    // wanet
    std::optional<double> wanet_s, wanet_noise_ratio;
    std::optional<Index> wanet_grid;
    // label-consistent
    std::optional<double> lc_eps, lc_step_size;
    std::optional<int> lc_steps;
    /// Attack-specific flags given on the command line, with the attack they belong to.
    std::vector<std::pair<std::string, std::string>> given;
};

/// How the models are trained and where the results go.
struct RunFlags {
    std::string data_dir = "data/mnist";
    int epochs = 10;
    int batch_size = 500;
    double lr = 1e-3;
    std::uint64_t seed = 0;
    int threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
    long long limit_train = 0;
    bool clean_baseline = false;
    std::string report, output_dir, save_model;
};

/// "must be in [0, 1], got '1.5'" (CLI11 prefixes the flag).
inline CLI::Validator unit_interval() {
    return CLI::Validator(
        [](std::string& v) -> std::string {
            std::size_t used = 0;
            double x = -1;
            try {
                x = std::stod(v, &used);
            } catch (const std::exception&) {
                used = 0;
            }
            if (used != v.size() || v.empty() || !(x >= 0 && x <= 1)) return "must be a number in [0, 1], got '" + v + "'";
            return {};
        },
        "[0,1]");
}

/// A number, or a fraction "a/b" such as 40/255, >= 0.
inline double parse_amount(const std::string& flag, const std::string& v) {
    const auto slash = v.find('/');
    auto number = [&](const std::string& s) {
        std::size_t used = 0;
        double x = 0;
        try {
            x = std::stod(s, &used);
        } catch (const std::exception&) {
            used = 0;
        }
        if (used != s.size() || s.empty() || !std::isfinite(x))
            throw CLI::ValidationError(flag, "must be a number or a fraction such as 40/255, got '" + v + "'");
        return x;
    };
    const double x = slash == std::string::npos ? number(v) : number(v.substr(0, slash)) / number(v.substr(slash + 1));
    if (!(x >= 0) || !std::isfinite(x)) throw CLI::ValidationError(flag, "must be >= 0, got '" + v + "'");
    return x;
}

/// An attack's own flag: stores the value and notes which attack it belongs to.
template <typename T>
CLI::Option* own_flag(CLI::App* app, AttackFlags& f, const std::string& flag, const std::string& attack, std::optional<T>& target,
                      const std::string& help) {
    return app->add_option_function<std::string>(
        flag,
        [&f, &target, flag, attack](const std::string& v) {
            if constexpr (std::is_same_v<T, std::string>) target = v;
            else if constexpr (std::is_floating_point_v<T>) target = parse_amount(flag, v);
            else target = static_cast<T>(std::stoll(v));
            f.given.emplace_back(flag, attack);
        },
        help + " (" + attack + ")");
}

/// --attack and the flags every subcommand shares to describe an attack.
inline void add_attack_flags(CLI::App* app, AttackFlags& f, bool attack_required) {
    std::string names;
    for (const auto& n : attack_names()) names += (names.empty() ? "" : ", ") + n;
    auto* a = app->add_option("--attack", f.name, "the attack: " + names);
    if (attack_required) a->required();
    app->add_option_function<std::string>(
           "--poison-rate", [&f](const std::string& v) { f.poison_rate = std::stod(v); },
           "share of the training set poisoned (default: the attack's own)")
        ->check(unit_interval());
    app->add_option_function<int>("--target", [&f](int t) { f.target = t; }, "all-to-one target label (default: the attack's own)");
    app->add_flag("--all-to-all", f.all_to_all, "label mode all-to-all: y -> (y + 1) mod 10");
    own_flag(app, f, "--pixel-row", "badnets-pixel", f.pixel_row, "trigger pixel's row")->check(example::integer_at_least(0));
    own_flag(app, f, "--pixel-col", "badnets-pixel", f.pixel_col, "trigger pixel's column")->check(example::integer_at_least(0));
    own_flag(app, f, "--patch-size", "badnets-patch", f.patch_size, "k of the k x k patch (default 3)")->check(example::integer_at_least(1));
    own_flag(app, f, "--patch-margin", "badnets-patch", f.patch_margin, "pixels between the patch and its corner's edges (default 0)")
        ->check(example::integer_at_least(0));
    own_flag(app, f, "--patch-pattern", "badnets-patch", f.patch_pattern, "solid or checkerboard")->check(CLI::IsMember({"solid", "checkerboard"}));
    own_flag(app, f, "--patch-position", "badnets-patch", f.patch_corner, "top-left, top-right, bottom-left or bottom-right (default)")
        ->check(CLI::IsMember({"top-left", "top-right", "bottom-left", "bottom-right"}));
    own_flag(app, f, "--blend-alpha", "blended", f.blend_alpha, "blend ratio a in [0, 1] (default 0.2)")->check(unit_interval());
    own_flag(app, f, "--trigger-image", "blended", f.trigger_image, "PNG/JPEG pattern instead of seeded noise");
    own_flag(app, f, "--sig-delta", "sig", f.sig_delta, "amplitude, e.g. 40/255 (default)");
    own_flag(app, f, "--sig-frequency", "sig", f.sig_frequency, "periods across the width (default 6)");
    own_flag(app, f, "--wanet-s", "wanet", f.wanet_s, "warp strength s (default 0.5)");
    own_flag(app, f, "--wanet-grid", "wanet", f.wanet_grid, "k of the k x k offset grid (default 4)")->check(example::integer_at_least(2));
    own_flag(app, f, "--wanet-noise-ratio", "wanet", f.wanet_noise_ratio, "noise-warped samples per poisoned one (default 2)");
    own_flag(app, f, "--lc-eps", "label-consistent", f.lc_eps, "PGD L-inf radius, e.g. 64/255 (default)");
    own_flag(app, f, "--lc-steps", "label-consistent", f.lc_steps, "PGD steps (default 100)")->check(example::integer_at_least(0));
    own_flag(app, f, "--lc-step-size", "label-consistent", f.lc_step_size, "PGD step, e.g. 1.5/255 (default)");
}

/// The AttackSpec the flags describe, validated on MNIST-shaped data (28x28, 10 labels).
/// Throws std::invalid_argument naming the flag or the attack's parameter.
inline AttackSpec attack_from_flags(const AttackFlags& f) {
    AttackOptions options;
    options.poison_rate = f.poison_rate;
    if (f.all_to_all && f.target) throw std::invalid_argument("--target and --all-to-all exclude each other");
    if (f.all_to_all) options.label_mode = LabelMode::all_to_all(10);
    if (f.target) {
        if (*f.target < 0 || *f.target > 9) throw std::invalid_argument("--target: " + std::to_string(*f.target) + " is outside the labels 0-9");
        options.label_mode = LabelMode::all_to_one(*f.target);
    }
    AttackSpec spec = make_attack(f.name, options);  // unknown names list the valid ones
    for (const auto& [flag, owner] : f.given)
        if (owner != f.name) throw std::invalid_argument(flag + " is a parameter of " + owner + ", not of " + f.name);
    if (auto* a = spec.get<BadNetsPixel>()) {
        if (f.pixel_row) a->row = *f.pixel_row;
        if (f.pixel_col) a->col = *f.pixel_col;
    } else if (auto* a = spec.get<BadNetsPatch>()) {
        if (f.patch_size) a->patch_size = *f.patch_size;
        if (f.patch_margin) a->margin = *f.patch_margin;
        if (f.patch_pattern) a->pattern = lab_detail::enum_value(patch_pattern_names(), *f.patch_pattern, "--patch-pattern");
        if (f.patch_corner) a->corner = lab_detail::enum_value(image_corner_names(), *f.patch_corner, "--patch-position");
    } else if (auto* a = spec.get<Blended>()) {
        if (f.blend_alpha) a->alpha = *f.blend_alpha;
        if (f.trigger_image) a->trigger_image = *f.trigger_image;
    } else if (auto* a = spec.get<Sig>()) {
        if (f.sig_delta) a->delta = *f.sig_delta;
        if (f.sig_frequency) a->frequency = *f.sig_frequency;
    } else if (auto* a = spec.get<WaNet>()) {
        if (f.wanet_s) a->strength = *f.wanet_s;
        if (f.wanet_grid) a->grid_size = *f.wanet_grid;
        if (f.wanet_noise_ratio) a->cross_ratio = *f.wanet_noise_ratio;
    } else if (auto* a = spec.get<LabelConsistent>()) {
        if (f.lc_eps) a->pgd.eps = *f.lc_eps;
        if (f.lc_steps) a->pgd.steps = *f.lc_steps;
        if (f.lc_step_size) a->pgd.step = *f.lc_step_size;
    }
    spec.validate(Shape{1, 1, 28, 28}, 10);
    return spec;
}

inline void add_run_flags(CLI::App* app, RunFlags& r, bool training) {
    app->add_option("--data", r.data_dir, "folder with the four IDX files (MNIST, Fashion-MNIST; raw or .gz)")->capture_default_str();
    app->add_option("--threads", r.threads, "threads")->check(example::integer_at_least(1))->capture_default_str();
    app->add_option("--report", r.report, "write the results as JSON to this file");
    if (!training) {
        app->add_option("--batch-size", r.batch_size, "images per forward")->check(example::integer_at_least(1))->capture_default_str();
        return;
    }
    app->add_option("--epochs", r.epochs, "training epochs")->check(example::integer_at_least(1))->capture_default_str();
    app->add_option("--batch-size", r.batch_size, "mini-batch size")->check(example::integer_at_least(1))->capture_default_str();
    app->add_option("--lr", r.lr, "Adam learning rate")->check(example::positive_number())->capture_default_str();
    app->add_option_function<std::string>(
           "--seed", [&r](const std::string& v) { r.seed = std::strtoull(v.c_str(), nullptr, 10); },
           "seed of weights, batches and poisoning (sweep: the first seed)")
        ->check(example::unsigned_64())
        ->type_name("UINT64");
    app->add_option("--limit-train", r.limit_train, "train on the first N training images only (0: all)")->check(example::integer_at_least(0));
    app->add_flag("--clean-baseline", r.clean_baseline, "also train a clean model and measure the trigger on it (always for label-consistent)");
}

inline LabSettings lab_settings(const RunFlags& r) {
    LabSettings s;
    s.epochs = r.epochs;
    s.batch_size = r.batch_size;
    s.lr = r.lr;
    s.clean_baseline = r.clean_baseline;
    return s;
}

/// Throws unless `path`'s folder exists, so that a long run does not end in a failed write.
inline void check_file_folder(const std::string& flag, const std::string& path) {
    if (path.empty()) return;
    const auto slash = path.find_last_of('/');
    const std::string dir = slash == std::string::npos ? "." : (slash == 0 ? "/" : path.substr(0, slash));
    struct stat st {};
    if (::stat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode))
        throw std::invalid_argument(flag + " " + path + ": the folder " + dir + " does not exist");
    if (::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) throw std::invalid_argument(flag + " " + path + ": is a folder, not a file");
}

/// Creates `dir` (one level) unless it exists; throws if it is a file or cannot be made.
inline void prepare_output_dir(const std::string& dir) {
    if (dir.empty()) return;
    struct stat st {};
    if (::stat(dir.c_str(), &st) == 0 && !S_ISDIR(st.st_mode)) throw std::invalid_argument("--output-dir " + dir + ": is a file, not a folder");
    if (::mkdir(dir.c_str(), 0777) != 0 && errno != EEXIST)
        throw std::invalid_argument("--output-dir " + dir + ": cannot create the folder (" + std::strerror(errno) + ")");
}

/// MNIST-format training and test sets, --limit-train applied.
inline std::pair<Dataset<float>, Dataset<float>> load_data(const RunFlags& r) {
    Dataset<float> train = load_mnist<float>(r.data_dir, Split::Train);
    Dataset<float> test = load_mnist<float>(r.data_dir, Split::Test);
    if (r.limit_train > 0) train = train.head(r.limit_train);
    return {std::move(train), std::move(test)};
}

/// --arch NAME: the architecture of a safetensors --model (a checkpoint carries its own; see
/// io/model_file.hpp). An unknown name is refused at parse time, listing the valid ones. For
/// evaluate and scan: load_model_file<float>(model_path, arch).
inline CLI::Option* add_arch_flag(CLI::App* app, std::string& arch) {
    std::string valid;
    for (const auto& n : architecture_names()) valid += (valid.empty() ? "" : ", ") + n;
    return app
        ->add_option("--arch", arch,
                     "architecture of a safetensors --model: " + valid + " (default: " + kDefaultArchitecture +
                         "; a checkpoint carries its own)")
        ->check(CLI::Validator(
            [valid](std::string& v) -> std::string {
                for (const auto& n : architecture_names())
                    if (v == n) return {};
                return "unknown architecture '" + v + "'; valid names: " + valid;
            },
            "NAME"));
}

}  // namespace lab_program
