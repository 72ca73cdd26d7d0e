// SPDX-License-Identifier: MIT
// eigencnn/lab/matrix.hpp
//
// The attack x defense matrix: for every (attack, poison rate, seed) one
// poisoned model is trained (train_poisoned_cell) and every defense runs on
// its own copy of it (run_defense), so the models are shared by the defenses:
//
//   MatrixSettings m;                                  // every attack and defense, rates 1% and 10%, 1 seed
//   m.output_dir = "out/matrix";
//   MatrixResult r = run_matrix(train, test, LabSettings{}, m);
//   write_json_atomic("out/matrix/matrix.json", matrix_json(r));
//   write_file_atomic("out/matrix/matrix.csv", matrix_csv(r));
//   write_file_atomic("out/matrix/matrix.md", matrix_markdown(r));
//
// Files, each written atomically as soon as it is known (an interrupted run
// loses at most the model cell it was in):
//   <output_dir>/cells/<attack>_rate-<rate>_seed-<seed>/attack.json     the poisoned model's AttackCellResult
//   <output_dir>/cells/<attack>_rate-<rate>_seed-<seed>/<defense>.json  {"identity": ..., "entry": MatrixEntry}
// With MatrixSettings::resume a defense file that exists is read instead of
// run, after checking its identity (the attack cell's identity as in a sweep:
// attack, rate, parameters, seed, settings, data fingerprint; and the defense's
// name, parameters and the defender's clean share): a difference throws
// std::runtime_error naming the file and the member. A model cell whose every
// defense file exists is not trained again.
//
// A defense that cannot work against an attack (the data filters against
// WaNet, which poisons per batch and leaves no poisoned training set) throws
// DefenseNotApplicable; the matrix records the reason in that entry and goes on.
// Any other error stops the matrix.
//
// Aggregates (MatrixSummary): per (attack, rate, defense) the mean and spread
// over the seeds of the ASR (true label != target) and C-Acc after the
// defense, the DER, and the detection F1 of the data filters.
#pragma once

#include "defend.hpp"
#include "sweep.hpp"

#include <optional>
#include <set>

namespace eigencnn {

struct MatrixSettings {
    std::vector<std::string> attacks = attack_names();
    std::vector<std::string> defenses = defense_names();
    std::vector<double> poison_rates{0.01, 0.1};
    int seeds = 1;                  ///< seeds first_seed, first_seed + 1, ...
    std::uint64_t first_seed = 0;
    std::string output_dir;
    bool resume = false;
    DefenseSettings defense;        ///< the defender's clean share

    /// Throws std::invalid_argument naming the setting (unknown names list the valid ones).
    void validate() const {
        const auto check_names = [](const std::vector<std::string>& names, const char* what, auto make) {
            if (names.empty()) throw std::invalid_argument(std::string("matrix: no ") + what);
            std::set<std::string> seen;
            for (const auto& n : names) {
                make(n);  // throws for an unknown name, listing the valid ones
                if (!seen.insert(n).second) throw std::invalid_argument(std::string("matrix: ") + what + " '" + n + "' is listed twice");
            }
        };
        check_names(attacks, "attacks", [](const std::string& n) { return make_attack(n); });
        check_names(defenses, "defenses", [](const std::string& n) { return make_defense(n); });
        if (poison_rates.empty()) throw std::invalid_argument("matrix: no poison rates");
        std::set<double> rates;
        for (double r : poison_rates) {
            if (!(r >= 0 && r <= 1)) throw std::invalid_argument("matrix: poison rate " + exact_decimal(r) + " is outside [0, 1]");
            if (!rates.insert(r).second) throw std::invalid_argument("matrix: poison rate " + exact_decimal(r) + " is listed twice");
        }
        if (seeds < 1) throw std::invalid_argument("matrix: seeds must be >= 1, got " + std::to_string(seeds));
        if (output_dir.empty()) throw std::invalid_argument("matrix: output_dir is empty");
        defense.validate();
    }
};

/// One defense against one poisoned model.
struct MatrixEntry {
    std::string attack, defense;
    double poison_rate = 0;
    std::uint64_t seed = 0;
    std::string not_applicable;          ///< why the defense did not run (empty when it ran)
    AttackMetrics before, after;         ///< after == before when it did not run
    double der = 0.5;
    std::optional<double> detection_f1;  ///< data filters: F1 of finding the poisoned samples
    double seconds = 0;                  ///< the defense's time
    bool resumed = false;                ///< read from its file, not run
    nlohmann::ordered_json run;          ///< the DefenseRun (null when not applicable)
};

/// Mean and spread over the seeds of one (attack, rate, defense).
struct MatrixSummaryRow {
    std::string attack, defense;
    double poison_rate = 0;
    int seeds = 0, applicable = 0;  ///< entries, and those where the defense ran
    Spread asr_before, asr_after, clean_accuracy_after, der;
    std::optional<Spread> detection_f1;
};

struct MatrixResult {
    std::vector<MatrixEntry> entries;         ///< in grid order: attack, rate, seed, defense
    std::vector<MatrixSummaryRow> summary;    ///< in grid order: attack, rate, defense
    std::vector<std::string> attacks, defenses;
    std::vector<double> poison_rates;
    std::size_t models_trained = 0, entries_resumed = 0;
    double seconds = 0;
};

/// A defense that cannot run against the attack at hand (not an error of the matrix).
inline bool is_not_applicable(const std::exception& e) { return dynamic_cast<const DefenseNotApplicable*>(&e) != nullptr; }

/// Progress hooks (the defense and training ones of DefenseObserver, plus the grid's).
struct MatrixObserver : DefenseObserver {
    virtual void on_model_begin(std::size_t /*index*/, std::size_t /*total*/, const std::string& /*attack*/, double /*rate*/,
                                std::uint64_t /*seed*/, bool /*resumed*/) {}
    virtual void on_entry(const MatrixEntry& /*entry*/, const std::string& /*file*/) {}
};

template <typename BasicJson>
void to_json(BasicJson& j, const MatrixEntry& e) {
    j = BasicJson::object();
    j["attack"] = e.attack, j["poison_rate"] = e.poison_rate, j["seed"] = e.seed, j["defense"] = e.defense;
    j["applicable"] = e.not_applicable.empty();
    j["not_applicable"] = e.not_applicable;
    j["before"] = e.before;
    j["after"] = e.after;
    j["der"] = e.der;
    if (e.detection_f1) j["detection_f1"] = *e.detection_f1;
    else j["detection_f1"] = nullptr;
    j["seconds"] = e.seconds;
    j["run"] = e.run;
}

template <typename BasicJson>
void from_json(const BasicJson& j, MatrixEntry& e) {
    e.attack = j.at("attack").template get<std::string>();
    e.poison_rate = j.at("poison_rate").template get<double>();
    e.seed = j.at("seed").template get<std::uint64_t>();
    e.defense = j.at("defense").template get<std::string>();
    e.not_applicable = j.at("not_applicable").template get<std::string>();
    e.before = j.at("before").template get<AttackMetrics>();
    e.after = j.at("after").template get<AttackMetrics>();
    e.der = j.at("der").template get<double>();
    if (j.at("detection_f1").is_null()) e.detection_f1.reset();
    else e.detection_f1 = j.at("detection_f1").template get<double>();
    e.seconds = j.at("seconds").template get<double>();
    e.run = j.at("run");
}

namespace matrix_detail {

inline std::string model_folder(const std::string& output_dir, const std::string& attack, double rate, std::uint64_t seed) {
    return output_dir + "/cells/" + attack + "_rate-" + exact_decimal(rate) + "_seed-" + std::to_string(seed);
}

/// What makes a defense entry this one: the attack cell's identity keys and the defense's.
inline nlohmann::ordered_json entry_identity(const nlohmann::ordered_json& cell_identity, const DefenseSpec& defense, const DefenseSettings& ds) {
    nlohmann::ordered_json id = nlohmann::ordered_json::object();
    for (const auto& k : lab_detail::cell_identity_keys()) id[k] = cell_identity.at(k);
    id["defense"] = defense.name();
    id["defense_parameters"] = defense_parameters(defense);
    id["clean_share"] = ds.clean_share;
    return id;
}

/// The entry in `path`, checked against `identity`; std::runtime_error naming the file and the member otherwise.
inline MatrixEntry read_entry(const std::string& path, const nlohmann::ordered_json& identity) {
    std::ifstream f(path);
    nlohmann::ordered_json j;
    try {
        j = nlohmann::ordered_json::parse(f);
    } catch (const nlohmann::json::exception& e) {
        throw std::runtime_error(path + ": cannot resume from this entry: not valid JSON (" + e.what() + ")");
    }
    if (!j.is_object() || !j.contains("identity") || !j.contains("entry"))
        throw std::runtime_error(path + ": cannot resume from this entry: it lacks 'identity' or 'entry'");
    for (const auto& [k, v] : identity.items()) {
        if (!j["identity"].contains(k)) throw std::runtime_error(path + ": cannot resume from this entry: its identity has no member '" + k + "'");
        if (j["identity"][k] != v)
            throw std::runtime_error(path + ": cannot resume: written with " + k + " = " + j["identity"][k].dump() + ", this matrix has " + v.dump() +
                                     " (remove the file or use another output folder)");
    }
    try {
        MatrixEntry e = j["entry"].get<MatrixEntry>();
        e.resumed = true;
        return e;
    } catch (const nlohmann::json::exception& ex) {
        throw std::runtime_error(path + ": cannot resume from this entry: " + ex.what());
    }
}

inline MatrixEntry entry_from_run(const DefenseRun& r) {
    MatrixEntry e;
    e.before = r.effect.before, e.after = r.effect.after, e.der = r.effect.der;
    if (r.detection) e.detection_f1 = r.detection->f1;
    e.seconds = r.seconds;
    e.run = r;
    return e;
}

inline void summarise(MatrixResult& r) {
    for (const auto& attack : r.attacks)
        for (double rate : r.poison_rates)
            for (const auto& defense : r.defenses) {
                MatrixSummaryRow row;
                row.attack = attack, row.defense = defense, row.poison_rate = rate;
                std::vector<double> before, after, cacc, der, f1;
                for (const auto& e : r.entries) {
                    if (e.attack != attack || e.defense != defense || e.poison_rate != rate) continue;
                    ++row.seeds;
                    if (!e.not_applicable.empty()) continue;
                    ++row.applicable;
                    before.push_back(e.before.attack_success_rate_non_target), after.push_back(e.after.attack_success_rate_non_target);
                    cacc.push_back(e.after.clean_accuracy), der.push_back(e.der);
                    if (e.detection_f1) f1.push_back(*e.detection_f1);
                }
                row.asr_before = spread_of(before), row.asr_after = spread_of(after), row.clean_accuracy_after = spread_of(cacc), row.der = spread_of(der);
                if (!f1.empty()) row.detection_f1 = spread_of(f1);
                r.summary.push_back(row);
            }
}

}  // namespace matrix_detail

/// Run (or, resuming, read) the whole grid; see the header comment.
inline MatrixResult run_matrix(const Dataset<float>& train, const Dataset<float>& test, const LabSettings& settings, const MatrixSettings& m,
                               MatrixObserver* observer = nullptr) {
    const auto t0 = std::chrono::steady_clock::now();
    m.validate();
    settings.validate();
    MatrixObserver none;
    MatrixObserver& obs = observer ? *observer : none;
    // Every attack at every rate and every defense is checked before the first model trains.
    std::vector<DefenseSpec> defenses;
    for (const auto& d : m.defenses) defenses.push_back(make_defense(d)), defenses.back().validate();
    for (const auto& a : m.attacks)
        for (double rate : m.poison_rates) {
            AttackSpec spec = make_attack(a);
            spec.set_poison_rate(rate);
            spec.validate(train.sample_shape(), settings.num_classes);
        }
    lab_detail::make_folder(m.output_dir);
    lab_detail::make_folder(m.output_dir + "/cells");
    const std::string fingerprint = data_fingerprint(train, test);
    MatrixResult result;
    result.attacks = m.attacks, result.defenses = m.defenses, result.poison_rates = m.poison_rates;
    const std::size_t total = m.attacks.size() * m.poison_rates.size() * static_cast<std::size_t>(m.seeds);
    std::size_t index = 0;
    for (const auto& attack_name : m.attacks)
        for (double rate : m.poison_rates)
            for (int s = 0; s < m.seeds; ++s, ++index) {
                const std::uint64_t seed = m.first_seed + static_cast<std::uint64_t>(s);
                AttackSpec attack = make_attack(attack_name);
                attack.set_poison_rate(rate);
                const std::string folder = matrix_detail::model_folder(m.output_dir, attack_name, rate, seed);
                AttackCellResult expected;
                expected.attack = attack, expected.settings = settings, expected.seed = seed, expected.data_fingerprint = fingerprint;
                expected.train_images = train.labels.size(), expected.test_images = test.labels.size();
                const nlohmann::ordered_json cell_identity = expected;
                std::vector<std::string> files;
                bool all_written = m.resume;
                for (const auto& d : defenses) {
                    files.push_back(folder + "/" + d.name() + ".json");
                    all_written = all_written && std::ifstream(files.back()).good();
                }
                obs.on_model_begin(index, total, attack_name, rate, seed, all_written);
                std::optional<PoisonedCell> cell;
                if (!all_written) {
                    lab_detail::make_folder(folder);
                    cell = train_poisoned_cell(train, test, settings, attack, seed, m.defense, &obs);
                    write_json_atomic(folder + "/attack.json", nlohmann::ordered_json(cell->result));
                    ++result.models_trained;
                }
                for (std::size_t d = 0; d < defenses.size(); ++d) {
                    const nlohmann::ordered_json identity = matrix_detail::entry_identity(cell_identity, defenses[d], m.defense);
                    MatrixEntry entry;
                    if (m.resume && std::ifstream(files[d]).good()) {
                        entry = matrix_detail::read_entry(files[d], identity);
                        ++result.entries_resumed;
                    } else {
                        try {
                            entry = matrix_detail::entry_from_run(run_defense(*cell, test, defenses[d], &obs));
                        } catch (const DefenseNotApplicable& e) {
                            entry.not_applicable = e.what();
                            entry.before = entry.after = cell->result.backdoored.metrics;
                            entry.run = nullptr;
                        }
                        entry.attack = attack_name, entry.defense = defenses[d].name(), entry.poison_rate = rate, entry.seed = seed;
                        write_json_atomic(files[d], nlohmann::ordered_json{{"identity", identity}, {"entry", entry}});
                    }
                    obs.on_entry(entry, files[d]);
                    result.entries.push_back(std::move(entry));
                }
            }
    matrix_detail::summarise(result);
    result.seconds = lab_detail::seconds_since(t0);
    return result;
}

template <typename BasicJson>
void to_json(BasicJson& j, const MatrixSummaryRow& r) {
    j = BasicJson::object();
    j["attack"] = r.attack, j["poison_rate"] = r.poison_rate, j["defense"] = r.defense;
    j["seeds"] = r.seeds, j["applicable"] = r.applicable;
    j["asr_before"] = r.asr_before, j["asr_after"] = r.asr_after, j["clean_accuracy_after"] = r.clean_accuracy_after, j["der"] = r.der;
    if (r.detection_f1) j["detection_f1"] = *r.detection_f1;
    else j["detection_f1"] = nullptr;
}

/// {"attacks", "defenses", "poison_rates", "summary": [MatrixSummaryRow], "entries": [MatrixEntry], "models_trained", "entries_resumed", "seconds"}
inline nlohmann::ordered_json matrix_json(const MatrixResult& r) {
    nlohmann::ordered_json j = nlohmann::ordered_json::object();
    j["attacks"] = r.attacks, j["defenses"] = r.defenses, j["poison_rates"] = r.poison_rates;
    j["summary"] = r.summary;
    j["entries"] = r.entries;
    j["models_trained"] = r.models_trained, j["entries_resumed"] = r.entries_resumed, j["seconds"] = r.seconds;
    return j;
}

/// One row per entry, with a header row; ASR is BackdoorBench's (true label != target).
inline std::string matrix_csv(const MatrixResult& r) {
    std::string out =
        "attack,poison_rate,seed,defense,applicable,before_clean_accuracy,before_asr,after_clean_accuracy,after_asr,after_robust_accuracy,der,"
        "detection_f1,seconds\n";
    for (const auto& e : r.entries)
        out += e.attack + "," + exact_decimal(e.poison_rate) + "," + std::to_string(e.seed) + "," + e.defense + "," +
               (e.not_applicable.empty() ? "1" : "0") + "," + exact_decimal(e.before.clean_accuracy) + "," +
               exact_decimal(e.before.attack_success_rate_non_target) + "," + exact_decimal(e.after.clean_accuracy) + "," +
               exact_decimal(e.after.attack_success_rate_non_target) + "," + exact_decimal(e.after.robust_accuracy) + "," + exact_decimal(e.der) +
               "," + (e.detection_f1 ? exact_decimal(*e.detection_f1) : "") + "," + detail::format("%.3f", e.seconds) + "\n";
    return out;
}

/// A Markdown table per poison rate: a row per attack (its ASR before), a column per defense with
/// "ASR after / C-Acc after (DER)" in percent (means over the seeds), "n/a" where the defense cannot run.
inline std::string matrix_markdown(const MatrixResult& r) {
    std::string out;
    for (double rate : r.poison_rates) {
        out += "Poison rate " + exact_decimal(rate) + " (ASR after / C-Acc after in %, DER in parentheses; means over the seeds):\n\n";
        out += "| attack | ASR before |";
        for (const auto& d : r.defenses) out += " " + d + " |";
        out += "\n|---|---|";
        for (std::size_t i = 0; i < r.defenses.size(); ++i) out += "---|";
        out += "\n";
        for (const auto& a : r.attacks) {
            std::string row = "| " + a + " |", before = "n/a";
            for (const auto& d : r.defenses)
                for (const auto& s : r.summary) {
                    if (s.attack != a || s.defense != d || s.poison_rate != rate) continue;
                    if (s.applicable == 0) {
                        row += " n/a |";
                        continue;
                    }
                    before = detail::format("%.1f", 100 * s.asr_before.mean);
                    row += detail::format(" %.1f / %.1f (%.2f) |", 100 * s.asr_after.mean, 100 * s.clean_accuracy_after.mean, s.der.mean);
                }
            const std::size_t at = row.find('|', 2);
            out += row.substr(0, at + 1) + " " + before + " |" + row.substr(at + 1) + "\n";
        }
        out += "\n";
    }
    return out;
}

}  // namespace eigencnn
