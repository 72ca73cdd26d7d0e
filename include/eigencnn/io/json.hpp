// SPDX-License-Identifier: MIT
// eigencnn/io/json.hpp
//
// Results as JSON, with nlohmann-json (<nlohmann/json.hpp>). Not included by
// eigencnn.hpp, so that the rest of the library does not need nlohmann-json:
// include this header yourself.
//
//   nlohmann::json j = fit_result;          to_json / from_json for EpochStats, FitResult, AttackSuccess,
//   auto r = j.get<FitResult>();            for nlohmann::json and nlohmann::ordered_json alike
//   write_json_atomic("report.json", j);    through write_file_atomic: the old file or the whole new one
//
// Objects use the fields' names:
//   EpochStats     {"mean_loss", "seconds", "images_per_second", "skipped_batches"}
//   FitResult      {"epochs": [EpochStats...], "start_epoch", "epochs_done", "resumed_from"}
//   AttackSuccess  {"all", "non_target", "count_all", "count_non_target"}
// Integers are JSON integers (a std::uint64_t round-trips exactly); doubles
// are written with the digits needed to read back the same value; NaN and
// infinities, which JSON lacks, are written as null and read back as NaN.
// from_json throws nlohmann::json::exception naming a missing key or a wrong type.
#pragma once

#include "../backdoor/trigger.hpp"
#include "../train/callbacks.hpp"
#include "../train/trainer.hpp"
#include "file.hpp"

#include <nlohmann/json.hpp>

#include <cmath>
#include <limits>
#include <string>

namespace eigencnn {

namespace detail {

/// A double from a JSON number, or NaN from null (how nlohmann writes NaN and infinities).
template <typename BasicJson>
double json_double(const BasicJson& j, const char* key) {
    const auto& v = j.at(key);
    return v.is_null() ? std::numeric_limits<double>::quiet_NaN() : v.template get<double>();
}

}  // namespace detail

template <typename BasicJson>
void to_json(BasicJson& j, const EpochStats& s) {
    j = BasicJson{{"mean_loss", s.mean_loss}, {"seconds", s.seconds}, {"images_per_second", s.images_per_second},
                  {"skipped_batches", s.skipped_batches}};
}

template <typename BasicJson>
void from_json(const BasicJson& j, EpochStats& s) {
    s.mean_loss = detail::json_double(j, "mean_loss");
    s.seconds = detail::json_double(j, "seconds");
    s.images_per_second = detail::json_double(j, "images_per_second");
    s.skipped_batches = j.at("skipped_batches").template get<std::size_t>();
}

template <typename BasicJson>
void to_json(BasicJson& j, const FitResult& r) {
    j = BasicJson::object();
    j["epochs"] = r.epochs;
    j["start_epoch"] = r.start_epoch;
    j["epochs_done"] = r.epochs_done;
    j["resumed_from"] = r.resumed_from;
}

template <typename BasicJson>
void from_json(const BasicJson& j, FitResult& r) {
    r.epochs = j.at("epochs").template get<std::vector<EpochStats>>();
    r.start_epoch = j.at("start_epoch").template get<int>();
    r.epochs_done = j.at("epochs_done").template get<int>();
    r.resumed_from = j.at("resumed_from").template get<std::string>();
}

template <typename BasicJson>
void to_json(BasicJson& j, const AttackSuccess& a) {
    j = BasicJson{{"all", a.all}, {"non_target", a.non_target}, {"count_all", a.count_all}, {"count_non_target", a.count_non_target}};
}

template <typename BasicJson>
void from_json(const BasicJson& j, AttackSuccess& a) {
    a.all = detail::json_double(j, "all");
    a.non_target = detail::json_double(j, "non_target");
    a.count_all = j.at("count_all").template get<std::size_t>();
    a.count_non_target = j.at("count_non_target").template get<std::size_t>();
}

/// JSON text with an object's members one per line and every value on one line:
///   {
///     "seed": 0,
///     "epoch_loss": [0.21,0.05]
///   }
/// (grep-friendly reports); anything but an object is dumped on one line. Ends with a newline.
template <typename BasicJson>
std::string dump_json_lines(const BasicJson& j) {
    if (!j.is_object() || j.empty()) return j.dump() + "\n";
    std::string out = "{\n";
    bool first = true;
    for (auto it = j.begin(); it != j.end(); ++it) {
        out += (first ? "  " : ",\n  ") + BasicJson(it.key()).dump() + ": " + it.value().dump();
        first = false;
    }
    return out + "\n}\n";
}

/// Write `j` to `path` atomically (write_file_atomic), laid out by dump_json_lines.
template <typename BasicJson>
void write_json_atomic(const std::string& path, const BasicJson& j) {
    write_file_atomic(path, dump_json_lines(j));
}

}  // namespace eigencnn
