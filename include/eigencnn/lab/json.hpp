// SPDX-License-Identifier: MIT
// eigencnn/lab/json.hpp
//
// JSON (nlohmann-json) for the laboratory's values: the attacks with all their
// parameters (AttackSpec), LabSettings, AttackMetrics, PgdResult and
// AttackCellResult, for nlohmann::json and nlohmann::ordered_json alike.
// Not in eigencnn.hpp (needs nlohmann-json, like io/json.hpp).
//
//   nlohmann::ordered_json j = cell_result;      // the report of one cell
//   AttackCellResult r = j.get<AttackCellResult>();
//   without_timings(j)                           // j minus every "...seconds" member, at any depth:
//                                                // the part a seed determines
//
// AttackCellResult's object, flat where a report reader looks first:
//   attack, poison_rate, label_mode, attack_parameters   what was attacked and how
//   seed, settings, data_fingerprint, train_images, test_images
//   clean_accuracy, attack_success_rate, attack_success_rate_non_target, robust_accuracy
//   clean_count, triggered_count, non_target_count, poisoned_images, per_batch_poisoning
//   epoch_seconds, epoch_loss                            the backdoored model's training
//   clean_model: {clean_accuracy, ..., epoch_seconds, epoch_loss} or null
//   pgd: {initial_loss, final_loss} or null, poison_seconds, total_seconds
// Enumerations are written as names: "solid", "checkerboard"; "top-left", ...,
// "bottom-right"; label modes as {"kind": "all-to-one" | "all-to-all", "target", "num_classes"}.
// from_json throws nlohmann::json::exception naming a missing key or a wrong
// type, and std::invalid_argument for an unknown attack or enumeration name.
#pragma once

#include "../io/json.hpp"
#include "cell.hpp"

#include <nlohmann/json.hpp>

namespace eigencnn {

/// The names of PatchPattern and ImageCorner values, as flags and JSON spell them.
inline const std::vector<std::pair<std::string, PatchPattern>>& patch_pattern_names() {
    static const std::vector<std::pair<std::string, PatchPattern>> names{{"solid", PatchPattern::Solid},
                                                                         {"checkerboard", PatchPattern::Checkerboard}};
    return names;
}
inline const std::vector<std::pair<std::string, ImageCorner>>& image_corner_names() {
    static const std::vector<std::pair<std::string, ImageCorner>> names{{"top-left", ImageCorner::TopLeft},
                                                                        {"top-right", ImageCorner::TopRight},
                                                                        {"bottom-left", ImageCorner::BottomLeft},
                                                                        {"bottom-right", ImageCorner::BottomRight}};
    return names;
}

namespace lab_detail {

template <typename Enum>
std::string enum_name(const std::vector<std::pair<std::string, Enum>>& names, Enum value) {
    for (const auto& n : names)
        if (n.second == value) return n.first;
    return "?";
}
template <typename Enum>
Enum enum_value(const std::vector<std::pair<std::string, Enum>>& names, const std::string& name, const std::string& what) {
    std::string valid;
    for (const auto& n : names) {
        if (n.first == name) return n.second;
        valid += (valid.empty() ? "" : ", ") + n.first;
    }
    throw std::invalid_argument("unknown " + what + " '" + name + "'; valid: " + valid);
}

/// An attack's own parameters (not the name, rate or label mode).
template <typename BasicJson>
BasicJson attack_parameters(const AttackSpec& spec) {
    BasicJson p = BasicJson::object();
    if (const auto* pixel = spec.get<BadNetsPixel>()) {
        p["row"] = pixel->row, p["col"] = pixel->col, p["value"] = pixel->value;
    } else if (const auto* patch = spec.get<BadNetsPatch>()) {
        p["patch_size"] = patch->patch_size, p["pattern"] = enum_name(patch_pattern_names(), patch->pattern);
        p["corner"] = enum_name(image_corner_names(), patch->corner), p["margin"] = patch->margin, p["value"] = patch->value;
    } else if (const auto* blended = spec.get<Blended>()) {
        p["alpha"] = blended->alpha, p["trigger_image"] = blended->trigger_image, p["noise_seed"] = blended->noise_seed;
    } else if (const auto* sig = spec.get<Sig>()) {
        p["delta"] = sig->delta, p["frequency"] = sig->frequency;
    } else if (const auto* wanet = spec.get<WaNet>()) {
        p["grid_size"] = wanet->grid_size, p["strength"] = wanet->strength, p["cross_ratio"] = wanet->cross_ratio;
        p["grid_seed"] = wanet->grid_seed, p["per_batch"] = wanet->per_batch;
    } else if (const auto* lc = spec.get<LabelConsistent>()) {
        p["target_class_share"] = lc->target_class_share, p["trigger_size"] = lc->trigger_size, p["margin"] = lc->margin;
        p["pgd_eps"] = lc->pgd.eps, p["pgd_step"] = lc->pgd.step, p["pgd_steps"] = lc->pgd.steps, p["pgd_batch_size"] = lc->pgd.batch_size;
    }
    return p;
}

template <typename BasicJson>
void set_attack_parameters(const BasicJson& p, AttackSpec& spec) {
    if (auto* pixel = spec.get<BadNetsPixel>()) {
        p.at("row").get_to(pixel->row), p.at("col").get_to(pixel->col), p.at("value").get_to(pixel->value);
    } else if (auto* patch = spec.get<BadNetsPatch>()) {
        p.at("patch_size").get_to(patch->patch_size), p.at("margin").get_to(patch->margin), p.at("value").get_to(patch->value);
        patch->pattern = enum_value(patch_pattern_names(), p.at("pattern").template get<std::string>(), "patch pattern");
        patch->corner = enum_value(image_corner_names(), p.at("corner").template get<std::string>(), "image corner");
    } else if (auto* blended = spec.get<Blended>()) {
        p.at("alpha").get_to(blended->alpha), p.at("trigger_image").get_to(blended->trigger_image), p.at("noise_seed").get_to(blended->noise_seed);
    } else if (auto* sig = spec.get<Sig>()) {
        p.at("delta").get_to(sig->delta), p.at("frequency").get_to(sig->frequency);
    } else if (auto* wanet = spec.get<WaNet>()) {
        p.at("grid_size").get_to(wanet->grid_size), p.at("strength").get_to(wanet->strength), p.at("cross_ratio").get_to(wanet->cross_ratio);
        p.at("grid_seed").get_to(wanet->grid_seed), p.at("per_batch").get_to(wanet->per_batch);
    } else if (auto* lc = spec.get<LabelConsistent>()) {
        p.at("target_class_share").get_to(lc->target_class_share), p.at("trigger_size").get_to(lc->trigger_size);
        p.at("margin").get_to(lc->margin), p.at("pgd_eps").get_to(lc->pgd.eps), p.at("pgd_step").get_to(lc->pgd.step);
        p.at("pgd_steps").get_to(lc->pgd.steps), p.at("pgd_batch_size").get_to(lc->pgd.batch_size);
    }
}

/// The poison rate as written: label-consistent's is optional (null: half the target class).
inline std::optional<double> poison_rate_of(const AttackSpec& spec) {
    if (const auto* lc = spec.get<LabelConsistent>()) return lc->poison_rate;
    return std::visit([](const auto& a) -> std::optional<double> { return a.poison_rate; }, spec.variant());
}

template <typename BasicJson>
void metrics_members(BasicJson& j, const AttackMetrics& m) {
    j["clean_accuracy"] = m.clean_accuracy;
    j["attack_success_rate"] = m.attack_success_rate;
    j["attack_success_rate_non_target"] = m.attack_success_rate_non_target;
    j["robust_accuracy"] = m.robust_accuracy;
    j["clean_count"] = m.clean_count;
    j["triggered_count"] = m.triggered_count;
    j["non_target_count"] = m.non_target_count;
}
template <typename BasicJson>
void read_metrics_members(const BasicJson& j, AttackMetrics& m) {
    m.clean_accuracy = detail::json_double(j, "clean_accuracy");
    m.attack_success_rate = detail::json_double(j, "attack_success_rate");
    m.attack_success_rate_non_target = detail::json_double(j, "attack_success_rate_non_target");
    m.robust_accuracy = detail::json_double(j, "robust_accuracy");
    j.at("clean_count").get_to(m.clean_count), j.at("triggered_count").get_to(m.triggered_count);
    j.at("non_target_count").get_to(m.non_target_count);
}
template <typename BasicJson>
void measurement_members(BasicJson& j, const ModelMeasurement& m) {
    metrics_members(j, m.metrics);
    j["epoch_seconds"] = m.epoch_seconds;
    j["epoch_loss"] = m.epoch_loss;
}
template <typename BasicJson>
void read_measurement_members(const BasicJson& j, ModelMeasurement& m) {
    read_metrics_members(j, m.metrics);
    j.at("epoch_seconds").get_to(m.epoch_seconds);
    m.epoch_loss.clear();
    for (const auto& v : j.at("epoch_loss")) m.epoch_loss.push_back(v.is_null() ? std::nan("") : v.template get<double>());
}

}  // namespace lab_detail

template <typename BasicJson>
void to_json(BasicJson& j, const LabelMode& m) {
    j = BasicJson{{"kind", m.all_to_all_mode() ? "all-to-all" : "all-to-one"}, {"target", m.target}, {"num_classes", m.num_classes}};
}
template <typename BasicJson>
void from_json(const BasicJson& j, LabelMode& m) {
    const std::string kind = j.at("kind").template get<std::string>();
    if (kind != "all-to-one" && kind != "all-to-all") throw std::invalid_argument("unknown label mode '" + kind + "'");
    m.kind = kind == "all-to-all" ? LabelMode::Kind::AllToAll : LabelMode::Kind::AllToOne;
    j.at("target").get_to(m.target), j.at("num_classes").get_to(m.num_classes);
}

/// {"name", "poison_rate" (null: the attack's own default share), "label_mode", "parameters"};
/// nlohmann's adl_serializer<AttackSpec> (below) calls these, as AttackSpec has no default value.
template <typename BasicJson>
void attack_spec_to_json(BasicJson& j, const AttackSpec& spec) {
    j = BasicJson::object();
    j["name"] = spec.name();
    const auto rate = lab_detail::poison_rate_of(spec);
    j["poison_rate"] = rate ? BasicJson(*rate) : BasicJson(nullptr);
    j["label_mode"] = spec.label_mode();
    j["parameters"] = lab_detail::attack_parameters<BasicJson>(spec);
}
template <typename BasicJson>
AttackSpec attack_spec_from_json(const BasicJson& j) {
    AttackSpec spec = make_attack(j.at("name").template get<std::string>());
    if (!j.at("poison_rate").is_null()) spec.set_poison_rate(j.at("poison_rate").template get<double>());
    spec.set_label_mode(j.at("label_mode").template get<LabelMode>());
    lab_detail::set_attack_parameters(j.at("parameters"), spec);
    return spec;
}

template <typename BasicJson>
void to_json(BasicJson& j, const LabSettings& s) {
    j = BasicJson{{"epochs", s.epochs},
                  {"batch_size", s.batch_size},
                  {"lr", s.lr},
                  {"eval_batch_size", s.eval_batch_size},
                  {"num_classes", s.num_classes},
                  {"clean_baseline", s.clean_baseline}};
}
template <typename BasicJson>
void from_json(const BasicJson& j, LabSettings& s) {
    j.at("epochs").get_to(s.epochs), j.at("batch_size").get_to(s.batch_size), j.at("lr").get_to(s.lr);
    j.at("eval_batch_size").get_to(s.eval_batch_size), j.at("num_classes").get_to(s.num_classes);
    j.at("clean_baseline").get_to(s.clean_baseline);
}

template <typename BasicJson>
void to_json(BasicJson& j, const AttackMetrics& m) {
    j = BasicJson::object();
    lab_detail::metrics_members(j, m);
}
template <typename BasicJson>
void from_json(const BasicJson& j, AttackMetrics& m) {
    lab_detail::read_metrics_members(j, m);
}

template <typename BasicJson>
void to_json(BasicJson& j, const AttackCellResult& r) {
    j = BasicJson::object();
    j["attack"] = r.attack.name();
    const auto rate = lab_detail::poison_rate_of(r.attack);
    j["poison_rate"] = rate ? BasicJson(*rate) : BasicJson(nullptr);
    j["label_mode"] = r.attack.label_mode();
    j["attack_parameters"] = lab_detail::attack_parameters<BasicJson>(r.attack);
    j["seed"] = r.seed;
    j["settings"] = r.settings;
    j["data_fingerprint"] = r.data_fingerprint;
    j["train_images"] = r.train_images;
    j["test_images"] = r.test_images;
    lab_detail::metrics_members(j, r.backdoored.metrics);
    j["poisoned_images"] = r.poisoned_images;
    j["per_batch_poisoning"] = r.per_batch_poisoning;
    j["epoch_seconds"] = r.backdoored.epoch_seconds;
    j["epoch_loss"] = r.backdoored.epoch_loss;
    if (r.clean_model) {
        BasicJson c = BasicJson::object();
        lab_detail::measurement_members(c, *r.clean_model);
        j["clean_model"] = c;
    } else {
        j["clean_model"] = nullptr;
    }
    j["pgd"] = r.pgd ? BasicJson{{"initial_loss", r.pgd->initial_loss}, {"final_loss", r.pgd->final_loss}} : BasicJson(nullptr);
    j["poison_seconds"] = r.poison_seconds;
    j["total_seconds"] = r.total_seconds;
}
template <typename BasicJson>
void from_json(const BasicJson& j, AttackCellResult& r) {
    BasicJson spec{{"name", j.at("attack")}, {"poison_rate", j.at("poison_rate")}, {"label_mode", j.at("label_mode")},
                   {"parameters", j.at("attack_parameters")}};
    r.attack = attack_spec_from_json(spec);
    j.at("seed").get_to(r.seed);
    j.at("settings").get_to(r.settings);
    j.at("data_fingerprint").get_to(r.data_fingerprint);
    j.at("train_images").get_to(r.train_images), j.at("test_images").get_to(r.test_images);
    lab_detail::read_measurement_members(j, r.backdoored);
    j.at("poisoned_images").get_to(r.poisoned_images), j.at("per_batch_poisoning").get_to(r.per_batch_poisoning);
    r.clean_model.reset();
    if (!j.at("clean_model").is_null()) lab_detail::read_measurement_members(j.at("clean_model"), r.clean_model.emplace());
    r.pgd.reset();
    if (!j.at("pgd").is_null())
        r.pgd = PgdResult{detail::json_double(j.at("pgd"), "initial_loss"), detail::json_double(j.at("pgd"), "final_loss")};
    r.poison_seconds = detail::json_double(j, "poison_seconds");
    r.total_seconds = detail::json_double(j, "total_seconds");
}

/// `j` without the members whose key ends in "seconds", at any depth.
template <typename BasicJson>
BasicJson without_timings(const BasicJson& j) {
    if (!j.is_object()) return j;
    BasicJson out = BasicJson::object();
    for (auto it = j.begin(); it != j.end(); ++it) {
        const std::string& k = it.key();
        if (k.size() >= 7 && k.compare(k.size() - 7, 7, "seconds") == 0) continue;
        out[k] = without_timings(it.value());
    }
    return out;
}

}  // namespace eigencnn

namespace nlohmann {
template <>
struct adl_serializer<eigencnn::AttackSpec> {
    template <typename BasicJson>
    static void to_json(BasicJson& j, const eigencnn::AttackSpec& spec) { eigencnn::attack_spec_to_json(j, spec); }
    template <typename BasicJson>
    static eigencnn::AttackSpec from_json(const BasicJson& j) { return eigencnn::attack_spec_from_json(j); }
};
}  // namespace nlohmann
