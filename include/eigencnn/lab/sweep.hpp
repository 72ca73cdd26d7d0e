// SPDX-License-Identifier: MIT
// eigencnn/lab/sweep.hpp
//
// A sweep: one attack over a grid of poison rates x seeds, one run_attack_cell
// per cell, every cell's result written atomically as soon as it finishes:
//
//   SweepSettings s;                      // rates 0.001 0.005 0.01 0.05 0.1, seeds 0 1 2
//   s.output_dir = "out/sweep";
//   SweepResult r = run_sweep(train, test, LabSettings{}, make_attack("badnets-patch"), s);
//   write_json_atomic("out/sweep/sweep.json", sweep_json(r));
//   write_file_atomic("out/sweep/sweep.csv", sweep_csv(r));
//
// Cell files: <output_dir>/cells/rate-<rate>_seed-<seed>.json (the cell's
// AttackCellResult, lab/json.hpp). With SweepSettings::resume a cell whose file
// exists is read instead of run, after checking that it was written with this
// sweep's settings, attack, seed and data (data_fingerprint): a difference
// throws std::runtime_error naming the file and the member. Without resume,
// every cell runs and its file is overwritten. An interrupted sweep thus loses
// at most the cell it was running.
// Per rate, SweepPoint gives the mean, min, max and (population) standard
// deviation over the seeds of C-Acc, ASR (all and non-target) and R-Acc.
#pragma once

#include "../io/file.hpp"
#include "json.hpp"

#include <cerrno>
#include <cmath>
#include <cstring>
#include <fstream>
#include <sys/stat.h>

namespace eigencnn {

struct SweepSettings {
    std::vector<double> poison_rates{0.001, 0.005, 0.01, 0.05, 0.1};
    int seeds = 3;                 ///< seeds first_seed, first_seed + 1, ...
    std::uint64_t first_seed = 0;
    std::string output_dir;        ///< cells go to output_dir/cells/
    bool resume = false;           ///< read cells already written instead of running them

    void validate() const {
        if (poison_rates.empty()) throw std::invalid_argument("sweep: no poison rates");
        for (double r : poison_rates)
            if (!(r >= 0 && r <= 1)) throw std::invalid_argument("sweep: poison rate " + exact_decimal(r) + " is outside [0, 1]");
        if (seeds < 1) throw std::invalid_argument("sweep: seeds must be >= 1, got " + std::to_string(seeds));
        if (output_dir.empty()) throw std::invalid_argument("sweep: output_dir is empty");
    }
};

/// Mean, extremes and population standard deviation of a few values.
struct Spread {
    double mean = 0, min = 0, max = 0, stddev = 0;
};

inline Spread spread_of(const std::vector<double>& v) {
    Spread s;
    if (v.empty()) return s;
    s.min = *std::min_element(v.begin(), v.end());
    s.max = *std::max_element(v.begin(), v.end());
    for (double x : v) s.mean += x / static_cast<double>(v.size());
    for (double x : v) s.stddev += (x - s.mean) * (x - s.mean) / static_cast<double>(v.size());
    s.stddev = std::sqrt(s.stddev);
    return s;
}

/// One poison rate of the grid, over its seeds.
struct SweepPoint {
    double poison_rate = 0;
    int seeds = 0;
    Spread clean_accuracy, attack_success_rate, attack_success_rate_non_target, robust_accuracy, total_seconds;
};

struct SweepResult {
    std::vector<AttackCellResult> cells;  ///< rate-major, seeds inner, in grid order
    std::vector<SweepPoint> points;       ///< one per poison rate
    std::size_t cells_resumed = 0;        ///< read from files written before
};

/// Hooks into run_sweep, on top of each cell's CellObserver hooks.
struct SweepObserver : CellObserver {
    /// Cell `index` of `total` (0-based) begins; resumed cells are announced too.
    virtual void on_cell_begin(std::size_t /*index*/, std::size_t /*total*/, double /*poison_rate*/, std::uint64_t /*seed*/) {}
    virtual void on_cell_end(std::size_t /*index*/, std::size_t /*total*/, const AttackCellResult&, bool /*resumed*/,
                             const std::string& /*file*/) {}
};

inline std::string sweep_cell_file(const std::string& output_dir, double poison_rate, std::uint64_t seed) {
    return output_dir + "/cells/rate-" + exact_decimal(poison_rate) + "_seed-" + std::to_string(seed) + ".json";
}

namespace lab_detail {

inline void make_folder(const std::string& dir) {
    if (::mkdir(dir.c_str(), 0777) != 0 && errno != EEXIST)
        throw std::runtime_error(dir + ": cannot create folder (" + std::strerror(errno) + ")");
    struct stat st {};
    if (::stat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) throw std::runtime_error(dir + ": exists and is not a folder");
}

/// The members of a cell's JSON that say how it was made.
inline const std::vector<std::string>& cell_identity_keys() {
    static const std::vector<std::string> keys{"attack", "poison_rate", "label_mode", "attack_parameters", "seed",
                                               "settings", "data_fingerprint", "train_images", "test_images"};
    return keys;
}

/// Read a cell written before and check it matches `expected` (this sweep's cell).
inline AttackCellResult read_matching_cell(const std::string& path, const nlohmann::ordered_json& expected) {
    std::ifstream f(path);
    nlohmann::ordered_json j;
    try {
        j = nlohmann::ordered_json::parse(f);
    } catch (const nlohmann::json::exception& e) {
        throw std::runtime_error(path + ": cannot resume from this cell: not valid JSON (" + e.what() + ")");
    }
    for (const auto& k : cell_identity_keys()) {
        if (!j.contains(k)) throw std::runtime_error(path + ": cannot resume from this cell: it has no member '" + k + "'");
        if (j.at(k) != expected.at(k))
            throw std::runtime_error(path + ": cannot resume: written with " + k + " = " + j.at(k).dump() + ", this sweep has " +
                                     expected.at(k).dump() + " (remove the file or use another output folder)");
    }
    try {
        return j.get<AttackCellResult>();
    } catch (const nlohmann::json::exception& e) {
        throw std::runtime_error(path + ": cannot resume from this cell: " + e.what());
    }
}

}  // namespace lab_detail

/// Run (or, resuming, read) every cell of the grid; see the header comment.
inline SweepResult run_sweep(const Dataset<float>& train, const Dataset<float>& test, const LabSettings& settings, const AttackSpec& attack,
                             const SweepSettings& sweep, SweepObserver* observer = nullptr) {
    sweep.validate();
    settings.validate();
    SweepObserver no_observer;
    SweepObserver& obs = observer ? *observer : no_observer;
    lab_detail::make_folder(sweep.output_dir);
    lab_detail::make_folder(sweep.output_dir + "/cells");
    for (double rate : sweep.poison_rates) {  // every cell's attack is checked before the first one trains
        AttackSpec a = attack;
        a.set_poison_rate(rate);
        a.validate(train.sample_shape(), settings.num_classes);
    }
    const std::string fingerprint = data_fingerprint(train, test);
    SweepResult result;
    const std::size_t total = sweep.poison_rates.size() * static_cast<std::size_t>(sweep.seeds);
    std::size_t index = 0;
    for (double rate : sweep.poison_rates) {
        SweepPoint point;
        point.poison_rate = rate;
        point.seeds = sweep.seeds;
        std::vector<double> cacc, asr, asr_nt, racc, secs;
        for (int s = 0; s < sweep.seeds; ++s, ++index) {
            const std::uint64_t seed = sweep.first_seed + static_cast<std::uint64_t>(s);
            AttackSpec a = attack;
            a.set_poison_rate(rate);
            const std::string path = sweep_cell_file(sweep.output_dir, rate, seed);
            obs.on_cell_begin(index, total, rate, seed);
            const bool resumed = sweep.resume && std::ifstream(path).good();
            AttackCellResult cell;
            if (resumed) {
                AttackCellResult expected;
                expected.attack = a, expected.settings = settings, expected.seed = seed, expected.data_fingerprint = fingerprint;
                expected.train_images = train.labels.size(), expected.test_images = test.labels.size();
                cell = lab_detail::read_matching_cell(path, nlohmann::ordered_json(expected));
                ++result.cells_resumed;
            } else {
                cell = run_attack_cell(train, test, settings, a, seed, &obs);
                write_json_atomic(path, nlohmann::ordered_json(cell));
            }
            obs.on_cell_end(index, total, cell, resumed, path);
            const AttackMetrics& m = cell.backdoored.metrics;
            cacc.push_back(m.clean_accuracy), asr.push_back(m.attack_success_rate);
            asr_nt.push_back(m.attack_success_rate_non_target), racc.push_back(m.robust_accuracy), secs.push_back(cell.total_seconds);
            result.cells.push_back(std::move(cell));
        }
        point.clean_accuracy = spread_of(cacc), point.attack_success_rate = spread_of(asr);
        point.attack_success_rate_non_target = spread_of(asr_nt), point.robust_accuracy = spread_of(racc);
        point.total_seconds = spread_of(secs);
        result.points.push_back(point);
    }
    return result;
}

template <typename BasicJson>
void to_json(BasicJson& j, const Spread& s) {
    j = BasicJson{{"mean", s.mean}, {"min", s.min}, {"max", s.max}, {"stddev", s.stddev}};
}

/// {"points": [{poison_rate, seeds, clean_accuracy: Spread, ...}], "cells": [AttackCellResult...], "cells_resumed"}
inline nlohmann::ordered_json sweep_json(const SweepResult& r) {
    nlohmann::ordered_json j = nlohmann::ordered_json::object();
    j["points"] = nlohmann::ordered_json::array();
    for (const auto& p : r.points)
        j["points"].push_back(nlohmann::ordered_json{{"poison_rate", p.poison_rate},
                                                     {"seeds", p.seeds},
                                                     {"clean_accuracy", p.clean_accuracy},
                                                     {"attack_success_rate", p.attack_success_rate},
                                                     {"attack_success_rate_non_target", p.attack_success_rate_non_target},
                                                     {"robust_accuracy", p.robust_accuracy},
                                                     {"total_seconds", p.total_seconds}});
    j["cells"] = r.cells;
    j["cells_resumed"] = r.cells_resumed;
    return j;
}

/// One row per cell, with a header row.
inline std::string sweep_csv(const SweepResult& r) {
    std::string out =
        "attack,poison_rate,seed,clean_accuracy,attack_success_rate,attack_success_rate_non_target,robust_accuracy,poisoned_images,"
        "total_seconds\n";
    for (const auto& c : r.cells) {
        const AttackMetrics& m = c.backdoored.metrics;
        out += c.attack.name() + "," + exact_decimal(lab_detail::poison_rate_of(c.attack).value_or(std::nan(""))) + "," +
               std::to_string(c.seed) + "," + exact_decimal(m.clean_accuracy) + "," + exact_decimal(m.attack_success_rate) + "," +
               exact_decimal(m.attack_success_rate_non_target) + "," + exact_decimal(m.robust_accuracy) + "," +
               std::to_string(c.poisoned_images) + "," + detail::format("%.3f", c.total_seconds) + "\n";
    }
    return out;
}

}  // namespace eigencnn
