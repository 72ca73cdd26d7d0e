// SPDX-License-Identifier: MIT
// fit (train/fit.hpp), its callbacks (train/callbacks.hpp) and results as JSON
// (io/json.hpp): epochs and callback order, bitwise resume, refused resumes,
// JSON round trips, the progress bar. A tiny Flatten + Linear model on random
// 4x4 images keeps every case fast.
#include "gradcheck.hpp"

#include <eigencnn/io/json.hpp>

#include <fstream>
#include <sstream>

using namespace test;
using nlohmann::json;

namespace {

Dataset<float> random_images(Index n, std::uint64_t seed) {
    Dataset<float> d;
    d.images.resize(Shape{n, 1, 4, 4});
    Rng rng(seed);
    uniform_fill(d.images, 1.0, rng);
    for (Index i = 0; i < n; ++i) d.labels.push_back(static_cast<int>(rng.below(3)));
    return d;
}

Sequential<float> tiny(std::uint64_t seed = 7) {
    Sequential<float> net(seed);
    net.emplace<Flatten>().emplace<Linear>(16, 3);
    return net;
}

/// Records every hook as one word.
struct Recorder : Callback {
    std::vector<std::string> calls;
    FitInfo info;
    std::vector<std::size_t> totals;
    void on_fit_begin(const FitInfo& i) override {
        info = i;
        calls.push_back("fit_begin");
    }
    void on_epoch_begin(int e) override { calls.push_back("epoch_begin " + std::to_string(e)); }
    void on_batch_end(std::size_t done, std::size_t total, double) override {
        calls.push_back("batch " + std::to_string(done));
        totals.push_back(total);
    }
    void on_epoch_end(int e, const EpochStats&) override { calls.push_back("epoch_end " + std::to_string(e)); }
    void on_fit_end(const FitResult& r) override { calls.push_back("fit_end " + std::to_string(r.epochs.size())); }
};

const Metadata kSettings{{"seed", "7"}, {"batch_size", "8"}, {"lr", exact_decimal(1e-3)}};

/// fit a fresh tiny model for `epochs` epochs, optionally saving/resuming.
struct Run {
    Dataset<float> data = random_images(40, 3);
    Sequential<float> net = tiny();
    Adam<float> adam{net.parameters(), AdamOptions{1e-2}};
    DataLoader<float> loader{data, 8, true, 5};
    FitResult go(int epochs, const std::string& save = "", const std::string& resume = "", const Metadata& settings = kSettings) {
        FitOptions o;
        o.epochs = epochs;
        o.checkpoint = save;
        o.resume = resume;
        o.settings = settings;
        return fit(net, adam, loader, o);
    }
};

std::string resume_error(const std::string& path, int epochs, const Metadata& settings = kSettings) {
    Run r;
    const auto before = weights_of(r.net);
    try {
        r.go(epochs, "", path, settings);
    } catch (const std::runtime_error& e) {  // CheckpointError included
        CHECK(weights_of(r.net) == before);  // a refused resume changes nothing
        CHECK(r.adam.steps() == 0);
        return e.what();
    }
    return "(no error)";
}

/// A checkpoint of the tiny model after one epoch, with `meta` as its metadata.
void forge(const std::string& path, const Metadata& meta) {
    Run r;
    r.go(1);
    save_checkpoint(path, r.net, static_cast<Optimizer<float>*>(&r.adam), meta);
}

}  // namespace

TEST_CASE("fit: runs the epochs and calls the callbacks in order with the right counts") {
    Run r;
    Recorder rec;
    FitOptions o;
    o.epochs = 2;
    const FitResult res = fit(r.net, r.adam, r.loader, o, {&rec});
    REQUIRE(res.epochs.size() == 2);
    CHECK(res.start_epoch == 0);
    CHECK(res.epochs_done == 2);
    CHECK(res.resumed_from.empty());
    CHECK(r.adam.steps() == 10);  // 40 images / batch 8, two epochs
    std::vector<std::string> want{"fit_begin"};
    for (int e = 0; e < 2; ++e) {
        want.push_back("epoch_begin " + std::to_string(e));
        for (int b = 1; b <= 5; ++b) want.push_back("batch " + std::to_string(b));
        want.push_back("epoch_end " + std::to_string(e));
    }
    want.push_back("fit_end 2");
    CHECK(rec.calls == want);
    CHECK(rec.totals == std::vector<std::size_t>(10, 5));
    CHECK(rec.info.epochs == 2);
    CHECK(rec.info.batches_per_epoch == 5);
    CHECK(rec.info.images == 40);
    CHECK(rec.info.batch_size == 8);
    CHECK(res.epochs[1].mean_loss < res.epochs[0].mean_loss);
}

TEST_CASE("fit: the same epochs as train_epoch called by hand, bitwise") {
    Run a, b;
    a.go(3);
    for (std::uint64_t e = 0; e < 3; ++e) train_epoch(b.net, b.adam, b.loader, e);
    CHECK(weights_of(a.net) == weights_of(b.net));
}

TEST_CASE("fit: save after every epoch, then resume, is bitwise the uninterrupted run") {
    const std::string straight = "fit_straight.ckpt", part = "fit_part.ckpt";
    Run a;
    a.go(3, straight);
    Run b;
    b.go(1, part);
    CHECK(load_model<float>(part).parameters().size() == 2);
    Run c;  // a fresh process: new model, new optimizer
    Recorder rec;
    FitOptions o;
    o.epochs = 3;
    o.checkpoint = part;
    o.resume = part;
    o.settings = kSettings;
    const FitResult res = fit(c.net, c.adam, c.loader, o, {&rec});
    CHECK(res.start_epoch == 1);
    CHECK(res.epochs_done == 3);
    CHECK(res.epochs.size() == 2);
    CHECK(res.resumed_from == part);
    CHECK(rec.info.start_epoch == 1);
    CHECK(rec.info.resumed_from == part);
    CHECK(rec.calls[1] == "epoch_begin 1");
    CHECK(weights_of(c.net) == weights_of(a.net));
    CHECK(c.adam.steps() == a.adam.steps());
    Metadata meta;
    load_model<float>(part, &meta);
    CHECK(meta.at(kEpochsDone) == "3");
    CHECK(meta.at("batch_size") == "8");
    std::ifstream fa(straight, std::ios::binary), fc(part, std::ios::binary);
    const std::string ba((std::istreambuf_iterator<char>(fa)), {}), bc((std::istreambuf_iterator<char>(fc)), {});
    CHECK(ba == bc);

    SUBCASE("resuming a finished run trains nothing and says so") {
        Run d;
        const FitResult done = d.go(3, "", part);
        CHECK(done.epochs.empty());
        CHECK(done.start_epoch == 3);
        CHECK(done.epochs_done == 3);
        CHECK(weights_of(d.net) == weights_of(a.net));
    }
}

TEST_CASE("fit: a resume with another setting is refused, naming the setting and both values") {
    const std::string path = "fit_settings.ckpt";
    Run r;
    r.go(1, path);
    Metadata other = kSettings;
    other["batch_size"] = "16";
    CHECK(resume_error(path, 2, other) == path + ": cannot resume: the checkpoint has batch_size = '8', this run has '16'");
    other = kSettings;
    other["poison_fraction"] = exact_decimal(0.01);
    CHECK(resume_error(path, 2, other) == path + ": cannot resume: the checkpoint has no setting poison_fraction, this run has '0.01'");
    // Learning rates differing past the 6th decimal are different settings.
    other = kSettings;
    other["lr"] = exact_decimal(0.0010000001);
    CHECK(resume_error(path, 2, other).find("the checkpoint has lr = '0.001', this run has '0.0010000001'") != std::string::npos);
    CHECK(resume_error(path, 2) == "(no error)");
}

TEST_CASE("fit: a refused resume puts back the running statistics too, not only the weights (ModelState)") {
    const auto bn_net = [](std::uint64_t seed) {
        Sequential<float> net(seed);
        net.emplace<Flatten>().emplace<Linear>(16, 4).emplace<BatchNorm1d>(4).emplace<Linear>(4, 3);
        return net;
    };
    const auto buffers_of = [](Sequential<float>& net) {
        std::vector<float> v;
        for (auto& b : net.buffers()) v.insert(v.end(), b.value->data(), b.value->data() + b.value->size());
        return v;
    };
    const std::string path = "fit_bn.ckpt";
    const Dataset<float> data = random_images(40, 3);
    {
        Sequential<float> trained = bn_net(7);
        Adam<float> adam{trained.parameters(), AdamOptions{1e-2}};
        DataLoader<float> loader{data, 8, true, 5};
        FitOptions o;
        o.epochs = 1;
        o.checkpoint = path;
        o.settings = kSettings;
        fit(trained, adam, loader, o);
    }
    Sequential<float> net = bn_net(8);
    Adam<float> adam{net.parameters(), AdamOptions{1e-2}};
    DataLoader<float> loader{data, 8, true, 5};
    const auto weights = weights_of(net), buffers = buffers_of(net);
    FitOptions o;
    o.epochs = 2;
    o.resume = path;
    o.settings = kSettings;
    o.settings["batch_size"] = "16";
    CHECK_THROWS_WITH_AS(fit(net, adam, loader, o), doctest::Contains("cannot resume: the checkpoint has batch_size = '8'"), std::runtime_error);
    CHECK(weights_of(net) == weights);
    CHECK(buffers_of(net) == buffers);  // the checkpoint's running mean and variance were loaded, then undone

    // ModelState itself: bitwise back after training, and a model of another shape is refused by name
    const ModelState<float> state(net);
    o.resume.clear();
    o.settings = kSettings;
    fit(net, adam, loader, o);
    CHECK(weights_of(net) != weights);
    CHECK(buffers_of(net) != buffers);
    state.restore(net);
    CHECK(weights_of(net) == weights);
    CHECK(buffers_of(net) == buffers);
    Sequential<float> other(1);
    other.emplace<Flatten>().emplace<Linear>(16, 5).emplace<BatchNorm1d>(5).emplace<Linear>(5, 3);
    CHECK_THROWS_WITH_AS(state.restore(other), doctest::Contains("ModelState::restore: 1.weight is [5, 16] in the model, [4, 16] in the copy"),
                         std::invalid_argument);
    Sequential<float> fewer = tiny();
    CHECK_THROWS_WITH_AS(state.restore(fewer), doctest::Contains("the model has 2 parameters and buffers, the copy 9"), std::invalid_argument);
}

TEST_CASE("fit: a forged, missing or non-numeric epochs_done is refused naming the file and the key") {
    const std::string path = "fit_forged.ckpt";
    for (const std::string bad : {"-3", "", "abc", "2x", "+1", "99999999999", " 1"}) {
        CAPTURE(bad);
        Metadata meta = kSettings;
        meta[kEpochsDone] = bad;
        forge(path, meta);
        CHECK(resume_error(path, 5) == path + ": metadata key 'epochs_done' is '" + bad + "', not a whole number of epochs (0 to 2147483647)");
    }
    forge(path, kSettings);
    CHECK(resume_error(path, 5) == path + ": metadata key 'epochs_done' is missing (not a checkpoint written by fit())");
    Metadata ok = kSettings;
    ok[kEpochsDone] = "1";
    forge(path, ok);
    CHECK(resume_error(path, 5) == "(no error)");
}

TEST_CASE("fit: asking for fewer epochs than the checkpoint has done is refused") {
    const std::string path = "fit_fewer.ckpt";
    Run r;
    r.go(3, path);
    CHECK(resume_error(path, 2) == path + ": cannot resume: the checkpoint has 3 epochs done, more than this run's epochs = 2 "
                                          "(the total, resumed epochs included; use at least 3)");
    CHECK(resume_error(path, 3) == "(no error)");
}

TEST_CASE("fit: on_epoch_end comes after that epoch's checkpoint is saved") {
    struct Checker : Callback {
        std::string path;
        std::vector<std::string> seen;
        void on_epoch_end(int, const EpochStats&) override {
            Metadata meta;
            load_model<float>(path, &meta);
            seen.push_back(meta.at(kEpochsDone));
        }
    } check;
    check.path = "fit_order.ckpt";
    std::remove(check.path.c_str());
    Run r;
    FitOptions o;
    o.epochs = 2;
    o.checkpoint = check.path;
    fit(r.net, r.adam, r.loader, o, {&check});
    CHECK(check.seen == std::vector<std::string>{"1", "2"});
}

TEST_CASE("fit: the NonFinite policy reaches train_epoch") {
    Run r;
    r.data.images[0] = std::numeric_limits<float>::quiet_NaN();  // one poisoned image: one bad batch per epoch
    FitOptions o;
    o.epochs = 2;
    CHECK_THROWS_AS(fit(r.net, r.adam, r.loader, o), std::runtime_error);
    Run s;
    s.data.images[0] = std::numeric_limits<float>::quiet_NaN();
    o.on_non_finite = NonFinite::SkipBatch;
    const FitResult res = fit(s.net, s.adam, s.loader, o);
    REQUIRE(res.epochs.size() == 2);
    CHECK(res.epochs[0].skipped_batches == 1);
    CHECK(res.epochs[1].skipped_batches == 1);
    CHECK(s.adam.steps() == 8);
}

TEST_CASE("fit: bad options are rejected before training") {
    Run r;
    CHECK_THROWS_WITH_AS(r.go(-1), "fit: epochs must be >= 0, got -1", std::invalid_argument);
    CHECK_THROWS_WITH_AS(r.go(1, "", "", {{kEpochsDone, "1"}}), "fit: 'epochs_done' is fit's own checkpoint key, not a setting",
                         std::invalid_argument);
    CHECK_THROWS_AS(fit(r.net, r.adam, r.loader, FitOptions{}, {nullptr}), std::invalid_argument);
    CHECK(r.adam.steps() == 0);
}

TEST_CASE("exact_decimal: reads back as the same double, shortest where possible") {
    CHECK(exact_decimal(0.01) == "0.01");
    CHECK(exact_decimal(1e-3) == "0.001");
    for (double v : {0.1, 1.0 / 3, 0.01 + 1e-9, 2.0 / 3 * 1e-5, 1e300, 5e-324}) CHECK(std::strtod(exact_decimal(v).c_str(), nullptr) == v);
    CHECK(exact_decimal(0.01) != exact_decimal(0.0100000001));  // std::to_string gave "0.010000" for both
}

TEST_CASE("json: EpochStats, FitResult and AttackSuccess round-trip; NaN is null; integers exact") {
    const EpochStats e{0.123456789012345678, 2.5, 12345.678901234567, 3};
    json je = e;
    CHECK(je.at("skipped_batches").is_number_unsigned());
    const auto e2 = je.get<EpochStats>();
    CHECK(e2.mean_loss == e.mean_loss);
    CHECK(e2.seconds == e.seconds);
    CHECK(e2.images_per_second == e.images_per_second);
    CHECK(e2.skipped_batches == 3);
    const auto e3 = json::parse(je.dump()).get<EpochStats>();  // through text, full precision
    CHECK(e3.images_per_second == e.images_per_second);
    CHECK(e3.mean_loss == e.mean_loss);

    const EpochStats nan_loss{std::numeric_limits<double>::quiet_NaN(), 1, 2, 5};
    const std::string text = json(nan_loss).dump();
    CHECK(text.find("\"mean_loss\":null") != std::string::npos);
    CHECK(std::isnan(json::parse(text).get<EpochStats>().mean_loss));

    FitResult r;
    r.epochs = {e, nan_loss};
    r.start_epoch = 4;
    r.epochs_done = 6;
    r.resumed_from = "a \"quoted\"\npath";
    const auto r2 = json::parse(json(r).dump()).get<FitResult>();
    REQUIRE(r2.epochs.size() == 2);
    CHECK(r2.epochs[0].mean_loss == e.mean_loss);
    CHECK(std::isnan(r2.epochs[1].mean_loss));
    CHECK(r2.epochs[1].skipped_batches == 5);
    CHECK(r2.start_epoch == 4);
    CHECK(r2.epochs_done == 6);
    CHECK(r2.resumed_from == r.resumed_from);

    const std::size_t big = std::numeric_limits<std::size_t>::max();
    const AttackSuccess a{0.9535, 1.0 / 3, big, 9000};
    const auto a2 = json::parse(json(a).dump()).get<AttackSuccess>();
    CHECK(a2.all == a.all);
    CHECK(a2.non_target == a.non_target);
    CHECK(a2.count_all == big);
    CHECK(a2.count_non_target == 9000);

    const std::uint64_t seed = 18446744073709551615ull;
    nlohmann::ordered_json report;
    report["seed"] = seed;
    report["stats"] = e;  // the ordered flavour works too
    const std::string dumped = dump_json_lines(report);
    CHECK(dumped.find("\"seed\": 18446744073709551615,\n") != std::string::npos);
    CHECK(json::parse(dumped).at("seed").get<std::uint64_t>() == seed);
    CHECK(json::parse(dumped).at("stats").get<EpochStats>().seconds == 2.5);

    CHECK_THROWS_AS(json::parse(R"({"all": 1})").get<AttackSuccess>(), json::exception);
}

TEST_CASE("json: write_json_atomic writes one member per line and leaves no temporary file") {
    const std::string path = "fit_report.json";
    nlohmann::ordered_json j;
    j["b"] = 1;
    j["a"] = std::vector<double>{0.5, std::numeric_limits<double>::infinity()};
    write_json_atomic(path, j);
    std::ifstream f(path);
    const std::string text((std::istreambuf_iterator<char>(f)), {});
    CHECK(text == "{\n  \"b\": 1,\n  \"a\": [0.5,null]\n}\n");
    CHECK_THROWS_AS(write_json_atomic("/nonexistent/dir/r.json", j), std::runtime_error);
}

TEST_CASE("ProgressBar: draws the epoch, the bar, the batches, the loss and an ETA when forced; nothing otherwise") {
    std::ostringstream forced, quiet;
    ProgressBar bar(forced, /*force=*/true, /*width=*/10), off(quiet);
    CHECK(bar.enabled());
    CHECK_FALSE(off.enabled());  // a string stream is no terminal
    Run r;
    FitOptions o;
    o.epochs = 2;
    fit(r.net, r.adam, r.loader, o, {&bar, &off});
    const std::string s = forced.str();
    CHECK(s.find("\r  epoch  1/2 [####......] 2/5 loss ") != std::string::npos);
    CHECK(s.find("\r  epoch  2/2 [##########] 5/5 loss ") != std::string::npos);
    CHECK(s.find(" ETA 0:00") != std::string::npos);
    CHECK(s.back() == '\r');  // erased at the end of the epoch
    CHECK(quiet.str().empty());
    CHECK(format_duration(65) == "1:05");
    CHECK(format_duration(3 * 3600 + 62) == "3:01:02");
    CHECK(format_duration(std::numeric_limits<double>::quiet_NaN()) == "?");
}

TEST_CASE("EpochLogger: the examples' per-epoch line and, with a title, the header") {
    std::ostringstream out;
    EpochLogger log(out, "training");
    FitInfo info;
    info.epochs = 10;
    info.start_epoch = 2;
    info.images = 1500;
    info.batch_size = 100;
    info.batches_per_epoch = 15;
    info.resumed_from = "run.ckpt";
    log.on_fit_begin(info);
    log.on_epoch_end(2, EpochStats{0.25, 1.5, 1000, 0});
    log.on_epoch_end(9, EpochStats{0.125, 0.5, 3000, 2});
    CHECK(out.str() == "training: resumed from run.ckpt after epoch 2\n"
                       "training: 1500 images, batch 100, 15 batches per epoch, " + std::to_string(num_threads()) + " thread(s)\n"
                       "  epoch  3/10  loss 0.2500  1.50 s  1000 images/s\n"
                       "  epoch 10/10  loss 0.1250  0.50 s  3000 images/s  (2 non-finite batches skipped)\n");
    std::ostringstream bare;
    EpochLogger plain(bare);
    plain.on_fit_begin(info);
    CHECK(bare.str().empty());
}
