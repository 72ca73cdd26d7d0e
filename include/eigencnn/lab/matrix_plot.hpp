// SPDX-License-Identifier: MIT
// eigencnn/lab/matrix_plot.hpp
//
// The attack x defense matrix as heatmaps, drawn by gnuplot (lab/plot.hpp):
// one row per (attack, poison rate), one column per defense, each square
// coloured by a metric's mean over the seeds and labelled with its value;
// grey "n/a" where the defense cannot run against the attack (or, for the
// detection F1, where the defense is not a data filter).
//
//   plot_matrix_heatmap_png("out/matrix/asr_after.png", result, MatrixMetric::AsrAfter, "MNIST, 10 epochs");
//
// Metrics: ASR after the defense (true label != target, percent, low is good),
// DER (BackdoorBench's, 0 to 1, high is good), detection F1 (0 to 1).
#pragma once

#include "matrix.hpp"
#include "plot.hpp"

namespace eigencnn {

enum class MatrixMetric { AsrAfter, Der, DetectionF1 };

struct MatrixMetricInfo {
    const char* file;    ///< the PNG's usual name
    const char* title;
    double low, high;    ///< the colour range
    const char* format;  ///< printf format of a square's label
};

inline MatrixMetricInfo matrix_metric_info(MatrixMetric m) {
    switch (m) {
        case MatrixMetric::AsrAfter: return {"heatmap_asr_after.png", "ASR after the defense (%, true label != target)", 0, 100, "%.1f"};
        case MatrixMetric::Der: return {"heatmap_der.png", "DER (BackdoorBench; 0.5 = no change, 1 = backdoor removed at no cost)", 0, 1, "%.2f"};
        case MatrixMetric::DetectionF1: return {"heatmap_detection_f1.png", "detection F1 of the poisoned training samples", 0, 1, "%.2f"};
    }
    throw std::invalid_argument("matrix_metric_info: unknown metric");
}

/// The metric's value in a summary row, or nothing (n/a).
inline std::optional<double> matrix_metric_value(const MatrixSummaryRow& r, MatrixMetric m) {
    if (r.applicable == 0) return std::nullopt;
    switch (m) {
        case MatrixMetric::AsrAfter: return 100 * r.asr_after.mean;
        case MatrixMetric::Der: return r.der.mean;
        case MatrixMetric::DetectionF1: return r.detection_f1 ? std::optional<double>(r.detection_f1->mean) : std::nullopt;
    }
    return std::nullopt;
}

/// The gnuplot script of plot_matrix_heatmap_png, with the data inline.
inline std::string matrix_heatmap_script(const std::string& png, const MatrixResult& r, MatrixMetric metric, const std::string& title) {
    const MatrixMetricInfo info = matrix_metric_info(metric);
    const auto q = lab_detail::gnuplot_quoted;
    const std::size_t rows = r.attacks.size() * r.poison_rates.size(), cols = r.defenses.size();
    std::string s;
    s += detail::format("set terminal pngcairo size %d,%d font 'sans,10'\n", static_cast<int>(260 + 120 * cols), static_cast<int>(140 + 34 * rows));
    s += "set output " + q(png) + "\n";
    s += "set title " + q(std::string(info.title) + (title.empty() ? "" : "\n" + title)) + "\n";
    s += detail::format("set xrange [-0.5:%g]\nset yrange [%g:-0.5]\n", static_cast<double>(cols) - 0.5, static_cast<double>(rows) - 0.5);
    s += detail::format("set cbrange [%g:%g]\n", info.low, info.high);
    s += "set termoption noenhanced\n";  // names and rates print as they are (no _ subscripts or @ overprints)
    s += "set palette defined (0 '#2166ac', 0.5 '#f7f7f7', 1 '#b2182b')\nset tics nomirror out\nunset key\nset xtics rotate by -25\n";
    s += "set xtics (";
    for (std::size_t c = 0; c < cols; ++c) s += (c ? ", " : "") + q(r.defenses[c]) + " " + std::to_string(c);
    s += ")\nset ytics (";
    std::size_t row = 0;
    for (const auto& a : r.attacks)
        for (double rate : r.poison_rates) {
            s += (row ? ", " : "") + q(a + " @ " + exact_decimal(rate)) + " " + std::to_string(row);
            ++row;
        }
    s += ")\n$values << EOD\n";
    std::string missing;
    row = 0;
    for (const auto& a : r.attacks)
        for (double rate : r.poison_rates) {
            for (std::size_t c = 0; c < cols; ++c)
                for (const auto& sr : r.summary) {
                    if (sr.attack != a || sr.defense != r.defenses[c] || sr.poison_rate != rate) continue;
                    if (const auto v = matrix_metric_value(sr, metric))
                        s += detail::format("%zu %zu %.17g \"", c, row, *v) + detail::format(info.format, *v) + "\"\n";
                    else
                        missing += detail::format("%zu %zu\n", c, row);
                }
            ++row;
        }
    s += "EOD\n$missing << EOD\n" + missing + "EOD\n";
    s += "plot $values using 1:2:(0.5):(0.5):3 with boxxyerror fs solid 1.0 noborder lc palette, \\\n"
         "     $values using 1:2:4 with labels, \\\n";
    s += missing.empty() ? "     NaN notitle\n"
                         : "     $missing using 1:2:(0.5):(0.5) with boxxyerror fs solid 1.0 noborder lc rgb '#bbbbbb', \\\n"
                           "     $missing using 1:2:(\"n/a\") with labels\n";
    return s;
}

/// Draw one metric's heatmap into `png` (atomic; std::runtime_error naming the file when gnuplot fails).
inline void plot_matrix_heatmap_png(const std::string& png, const MatrixResult& r, MatrixMetric metric, const std::string& title) {
    if (r.attacks.empty() || r.defenses.empty() || r.poison_rates.empty()) throw std::invalid_argument(png + ": the matrix is empty");
    lab_detail::render_gnuplot_png(png, [&](const std::string& tmp) { return matrix_heatmap_script(tmp, r, metric, title); });
}

}  // namespace eigencnn
