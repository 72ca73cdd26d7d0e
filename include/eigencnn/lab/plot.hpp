// SPDX-License-Identifier: MIT
// eigencnn/lab/plot.hpp
//
// The sweep's figure, drawn by gnuplot (Debian's gnuplot-nox) through a pipe:
// ASR (non-target, BackdoorBench's) and C-Acc in percent against the poison
// rate on a log axis, each point the mean over the seeds with a bar from the
// lowest to the highest seed.
//
//   if (!gnuplot_available()) ...                 // say so and skip the plot
//   plot_sweep_png("out/sweep/sweep.png", result.points, "badnets-patch on MNIST");
//
// The PNG is written to a temporary file of a unique name and renamed into
// place, as write_file_atomic does (render_gnuplot_png, also used by the
// matrix's heatmaps). Rates of 0 cannot go on a log axis and are left out;
// with no rate above 0 there is nothing to draw: plot_sweep_png throws
// std::invalid_argument before it starts gnuplot (sweep_has_plot tells first).
// plot_sweep_png throws std::runtime_error naming the file when gnuplot fails.
#pragma once

#include "sweep.hpp"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <sstream>
#include <sys/stat.h>
#include <unistd.h>

namespace eigencnn {

/// The path of the gnuplot executable on PATH, or "" when there is none.
inline std::string gnuplot_path() {
    const char* path = std::getenv("PATH");
    std::stringstream dirs(path ? path : "");
    std::string dir;
    while (std::getline(dirs, dir, ':')) {
        const std::string exe = (dir.empty() ? "." : dir) + "/gnuplot";
        if (::access(exe.c_str(), X_OK) == 0) return exe;
    }
    return "";
}
inline bool gnuplot_available() { return !gnuplot_path().empty(); }

namespace lab_detail {

/// `s` as a gnuplot string literal.
inline std::string gnuplot_quoted(const std::string& s) {
    std::string q = "\"";
    for (char c : s) {
        if (c == '\n') q += "\\n";  // gnuplot reads \n in a double-quoted string as a line break
        else q += (c == '"' || c == '\\') ? std::string("\\") + c : std::string(1, c);
    }
    return q + "\"";
}

/// Run gnuplot on script(tmp), a script that draws into the PNG file `tmp`, then rename tmp to `png`.
/// tmp is a new file of a unique name (mkstemp) in png's folder, so two plots never share it.
/// std::runtime_error naming `png` when gnuplot is missing or fails; no partial PNG is left.
inline void render_gnuplot_png(const std::string& png, const std::function<std::string(const std::string&)>& script) {
    const std::string exe = gnuplot_path();
    if (exe.empty()) throw std::runtime_error(png + ": cannot plot: gnuplot is not installed (Debian: gnuplot-nox)");
    std::string tmp = png + ".tmp.XXXXXX";
    const int fd = ::mkstemp(tmp.data());
    if (fd < 0) throw std::runtime_error(png + ": cannot create a temporary file beside it (" + std::strerror(errno) + ")");
    ::close(fd);
    std::FILE* pipe = ::popen(("'" + exe + "' 2>&1").c_str(), "w");
    if (!pipe) {
        std::remove(tmp.c_str());
        throw std::runtime_error(png + ": cannot start gnuplot");
    }
    const std::string text = script(tmp);
    const bool written = std::fwrite(text.data(), 1, text.size(), pipe) == text.size();
    const int status = ::pclose(pipe);
    struct stat st {};
    const bool drawn = ::stat(tmp.c_str(), &st) == 0 && st.st_size > 0;
    if (!written || status != 0 || !drawn) {
        std::remove(tmp.c_str());
        throw std::runtime_error(png + ": gnuplot failed (exit status " + std::to_string(status) + ")");
    }
    ::chmod(tmp.c_str(), 0644);  // mkstemp made it 0600; a PNG is for everyone to read
    if (std::rename(tmp.c_str(), png.c_str()) != 0) {
        std::remove(tmp.c_str());
        throw std::runtime_error(png + ": cannot rename " + tmp + " into place");
    }
}

}  // namespace lab_detail

/// The gnuplot script of plot_sweep_png, with the data inline.
inline std::string sweep_plot_script(const std::string& png, const std::vector<SweepPoint>& points, const std::string& title) {
    const auto quoted = lab_detail::gnuplot_quoted;
    std::string s;
    s += "set terminal pngcairo size 800,520 font 'sans,11'\n";
    s += "set output " + quoted(png) + "\n";
    s += "set title " + quoted(title) + "\n";
    s += "set logscale x\nset xlabel 'poison rate (share of the training set, log scale)'\n";
    s += "set ylabel 'percent of test images'\nset yrange [0:102]\nset grid\nset key bottom right\n";
    s += "$data << EOD\n";
    for (const auto& p : points) {
        if (!(p.poison_rate > 0)) continue;
        s += detail::format("%.17g %.6f %.6f %.6f %.6f %.6f %.6f\n", p.poison_rate, 100 * p.attack_success_rate_non_target.mean,
                            100 * p.attack_success_rate_non_target.min, 100 * p.attack_success_rate_non_target.max,
                            100 * p.clean_accuracy.mean, 100 * p.clean_accuracy.min, 100 * p.clean_accuracy.max);
    }
    s += "EOD\n";
    const int seeds = points.empty() ? 0 : points.front().seeds;
    const std::string spread = seeds > 1 ? " (mean; bars: min-max over " + std::to_string(seeds) + " seeds)" : " (1 seed)";
    s += "plot $data using 1:2:3:4 with yerrorlines lw 2 pt 7 title " + quoted("ASR, true label != target" + spread) +
         ", \\\n     $data using 1:5:6:7 with yerrorlines lw 2 pt 5 title " + quoted("C-Acc" + spread) + "\n";
    return s;
}

/// Whether the sweep has a point to draw: a poison rate above 0.
inline bool sweep_has_plot(const std::vector<SweepPoint>& points) {
    return std::any_of(points.begin(), points.end(), [](const SweepPoint& p) { return p.poison_rate > 0; });
}

/// Draw the sweep's figure into `png` (see the header comment).
inline void plot_sweep_png(const std::string& png, const std::vector<SweepPoint>& points, const std::string& title) {
    if (!sweep_has_plot(points))
        throw std::invalid_argument(png + ": no poison rate above 0 to draw on the plot's log axis");
    lab_detail::render_gnuplot_png(png, [&](const std::string& tmp) { return sweep_plot_script(tmp, points, title); });
}

}  // namespace eigencnn
