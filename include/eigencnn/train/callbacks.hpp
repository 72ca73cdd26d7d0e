// SPDX-License-Identifier: MIT
// eigencnn/train/callbacks.hpp
//
// What fit() (train/fit.hpp) tells its observers, and two observers:
//
//   Callback     interface; every hook is a no-op unless overridden. fit() calls, in order:
//                  on_fit_begin(FitInfo)                      once, after a resume has been loaded
//                  per epoch e (0-based, from FitInfo::start_epoch to FitInfo::epochs - 1):
//                    on_epoch_begin(e)
//                    on_batch_end(done, total, loss)          after each batch: done = 1..total
//                                                             (a skipped non-finite batch too)
//                    on_epoch_end(e, EpochStats)              after the epoch's checkpoint is saved
//                  on_fit_end(FitResult)                      once, when every epoch has run
//   ProgressBar  redraws one line on a terminal: "  epoch  3/10 [#####.....] 40/120 loss 0.1234 ETA 0:52"
//                (ETA: time left in the epoch, from its mean batch time so far); draws nothing
//                when the output is not a terminal, unless forced; erases itself at the epoch's end.
//   EpochLogger  one line per epoch: "  epoch  3/10  loss 0.1234  2.61 s  22988 images/s"; with a
//                title, also "title: resumed from P after epoch N" and "title: N images, batch B,
//                NB batches per epoch, T thread(s)" when fitting begins.
//
// FitResult, the value fit() returns, is defined here because on_fit_end receives it.
#pragma once

#include "../core/threads.hpp"
#include "trainer.hpp"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <ostream>
#include <string>
#include <unistd.h>
#include <vector>

namespace eigencnn {

/// What fit() is about to do.
struct FitInfo {
    int start_epoch = 0;                ///< epochs already done (by the resumed checkpoint); the first epoch run now
    int epochs = 0;                     ///< total epochs, counting the resumed ones
    std::size_t batches_per_epoch = 0;  ///< loader.num_batches()
    Index batch_size = 0;
    Index images = 0;                   ///< samples in the training set
    std::string resumed_from;           ///< checkpoint path, "" for a fresh run
};

/// What fit() did.
struct FitResult {
    std::vector<EpochStats> epochs;  ///< the epochs run by this call, in order (epoch start_epoch first)
    int start_epoch = 0;             ///< epochs the resumed checkpoint had done (0: fresh run)
    int epochs_done = 0;             ///< epochs the model has now been trained for, resumed ones included
    std::string resumed_from;        ///< checkpoint path, "" for a fresh run
};

/// Observer of fit(); override the hooks you need.
struct Callback {
    virtual ~Callback() = default;
    virtual void on_fit_begin(const FitInfo&) {}
    virtual void on_epoch_begin(int /*epoch*/) {}
    virtual void on_batch_end(std::size_t /*done*/, std::size_t /*total*/, double /*loss*/) {}
    virtual void on_epoch_end(int /*epoch*/, const EpochStats&) {}
    virtual void on_fit_end(const FitResult&) {}
};

namespace detail {

/// A text destination: a C stream or a C++ stream.
class Sink {
public:
    explicit Sink(std::FILE* f) : file_(f) {}
    explicit Sink(std::ostream& os) : stream_(&os) {}
    void write(const std::string& s) {
        if (file_) {
            std::fputs(s.c_str(), file_);
            std::fflush(file_);
        } else {
            *stream_ << s << std::flush;
        }
    }
    /// Whether the destination is a terminal (std::cout, std::cerr, std::clog are checked; other streams are not terminals).
    bool is_tty() const {
        if (file_) return ::isatty(::fileno(file_)) != 0;
        if (stream_ == &std::cout) return ::isatty(1) != 0;
        if (stream_ == &std::cerr || stream_ == &std::clog) return ::isatty(2) != 0;
        return false;
    }

private:
    std::FILE* file_ = nullptr;
    std::ostream* stream_ = nullptr;
};

/// printf into a std::string.
template <typename... Args>
std::string format(const char* fmt, Args... args) {
    const int n = std::snprintf(nullptr, 0, fmt, args...);
    std::string s(static_cast<std::size_t>(n > 0 ? n : 0), '\0');
    std::snprintf(s.data(), s.size() + 1, fmt, args...);
    return s;
}

}  // namespace detail

/// Seconds as "m:ss", or "h:mm:ss" from an hour on; "?" when not finite or negative.
inline std::string format_duration(double seconds) {
    if (!(seconds >= 0) || seconds > 1e9) return "?";
    const long long s = static_cast<long long>(seconds + 0.5);
    if (s >= 3600) return detail::format("%lld:%02lld:%02lld", s / 3600, s / 60 % 60, s % 60);
    return detail::format("%lld:%02lld", s / 60, s % 60);
}

/// A progress line redrawn in place after every batch (see the header comment).
class ProgressBar : public Callback {
public:
    explicit ProgressBar(std::FILE* out = stderr, bool force = false, int width = 30) : sink_(out), width_(width) {
        enabled_ = force || sink_.is_tty();
    }
    explicit ProgressBar(std::ostream& out, bool force = false, int width = 30) : sink_(out), width_(width) {
        enabled_ = force || sink_.is_tty();
    }
    bool enabled() const { return enabled_; }

    void on_fit_begin(const FitInfo& info) override { epochs_ = info.epochs; }
    void on_epoch_begin(int epoch) override {
        epoch_ = epoch;
        t0_ = std::chrono::steady_clock::now();
    }
    void on_batch_end(std::size_t done, std::size_t total, double loss) override {
        if (!enabled_ || total == 0) return;
        const int filled = static_cast<int>(static_cast<std::size_t>(width_) * done / total);
        const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0_).count();
        const double left = elapsed / static_cast<double>(done) * static_cast<double>(total - done);
        std::string line = detail::format("  epoch %2d/%d [%s%s] %zu/%zu loss %.4f ETA %s", epoch_ + 1, epochs_,
                                          std::string(static_cast<std::size_t>(filled), '#').c_str(),
                                          std::string(static_cast<std::size_t>(width_ - filled), '.').c_str(), done, total, loss,
                                          format_duration(left).c_str());
        const std::size_t shown = line.size();
        if (shown < last_) line += std::string(last_ - shown, ' ');  // cover a longer previous line
        sink_.write("\r" + line);
        last_ = shown;
        if (done == total) {  // erase the line: the epoch's summary comes from elsewhere (EpochLogger)
            sink_.write("\r" + std::string(std::max(last_, line.size()), ' ') + "\r");
            last_ = 0;
        }
    }

private:
    detail::Sink sink_;
    int width_;
    bool enabled_ = false;
    int epochs_ = 0, epoch_ = 0;
    std::size_t last_ = 0;
    std::chrono::steady_clock::time_point t0_ = std::chrono::steady_clock::now();
};

/// The per-epoch line the example programs print (see the header comment).
class EpochLogger : public Callback {
public:
    explicit EpochLogger(std::FILE* out = stdout, std::string title = "") : sink_(out), title_(std::move(title)) {}
    explicit EpochLogger(std::ostream& out, std::string title = "") : sink_(out), title_(std::move(title)) {}

    void on_fit_begin(const FitInfo& info) override {
        epochs_ = info.epochs;
        if (title_.empty()) return;
        if (!info.resumed_from.empty())
            sink_.write(title_ + ": resumed from " + info.resumed_from + " after epoch " + std::to_string(info.start_epoch) + "\n");
        sink_.write(detail::format("%s: %lld images, batch %lld, %zu batches per epoch, %d thread(s)\n", title_.c_str(),
                                   static_cast<long long>(info.images), static_cast<long long>(info.batch_size), info.batches_per_epoch,
                                   num_threads()));
    }
    void on_epoch_end(int epoch, const EpochStats& s) override {
        std::string line = detail::format("  epoch %2d/%d  loss %.4f  %.2f s  %.0f images/s", epoch + 1, epochs_, s.mean_loss, s.seconds,
                                          s.images_per_second);
        if (s.skipped_batches) line += detail::format("  (%zu non-finite batches skipped)", s.skipped_batches);
        sink_.write(line + "\n");
    }

private:
    detail::Sink sink_;
    std::string title_;
    int epochs_ = 0;
};

}  // namespace eigencnn
