// Plots read back: checked for a PNG of the asked size holding the colours of their series, and
// measured: the frame found from its border, data points placed in it through the ranges the script
// sets, so that a test sees where the data, the key and a mark landed. Every failure checked for its
// message, for the file it must not leave, and for no temporary left.
#include <cmath>
#include <filesystem>
#include <optional>
#include <set>

#include <fmt/format.h>

#include "figure_checks.hpp"
#include "helpers.hpp"
#include "scratch.hpp"
#include "tapegrad/models/figures.hpp"
#include "tapegrad/nn/io/file.hpp"

using namespace tapegrad;
using namespace tapegrad::models;
namespace fs = std::filesystem;
using test::Box;
using test::count_dark;
using test::Folders;
using test::listing;
using test::load_png;
using test::Png;
using test::read_bytes;
using test::ScopedEnv;

namespace {

constexpr std::string_view png_signature("\x89PNG\r\n\x1a\n", 8);

void check_plot_png(const fs::path& path, int width, int height) {
    std::string bytes = read_bytes(path);
    REQUIRE(bytes.size() > 8);
    CHECK(std::string_view(bytes).substr(0, 8) == png_signature);
    // An empty 900 x 600 pngcairo plot with only a border compresses to a few kB; text, ticks and lines
    // make more.
    CHECK(bytes.size() > 5000);
    CHECK(bytes.size() < 2000000);
    // IHDR: width and height big-endian at bytes 16 and 20.
    auto be32 = [&](std::size_t at) {
        return (int(std::uint8_t(bytes[at])) << 24) | (int(std::uint8_t(bytes[at + 1])) << 16) |
               (int(std::uint8_t(bytes[at + 2])) << 8) | int(std::uint8_t(bytes[at + 3]));
    };
    CHECK(bytes.substr(12, 4) == "IHDR");
    CHECK(be32(16) == width);
    CHECK(be32(20) == height);
}

std::vector<Series> loss_curves() {
    Series train{"train_loss", {}, {}};
    Series test{"test \"held-out\" it's", {}, {}};
    for (int e = 1; e <= 50; ++e) {
        train.x.push_back(e);
        train.y.push_back(0.5 * std::exp(-0.08 * e) + 0.01);
        test.x.push_back(e);
        test.y.push_back(0.55 * std::exp(-0.07 * e) + 0.02);
    }
    return {train, test};
}

std::string colour_at(const Png& png, int x, int y) {
    const unsigned char* p = &png.pixels[static_cast<std::size_t>(y * png.width + x) * png.channels];
    return fmt::format("#{:02x}{:02x}{:02x}", p[0], p[1], p[2]);
}

// The pixels of exactly these colours: the centres of lines and points, not their antialiased edges.
Box colour_box(const Png& png, const std::set<std::string>& colours) {
    Box box;
    for (int y = 0; y < png.height; ++y) {
        for (int x = 0; x < png.width; ++x) {
            if (colours.count(colour_at(png, x, y)) != 0) {
                box.add(x, y);
            }
        }
    }
    return box;
}

// The plot's border: the rows and columns dark over at least 40% of the figure (tick labels, text and
// the key's grey box are not).
Box find_frame(const Png& png) {
    Box frame;
    for (int y = 0; y < png.height; ++y) {
        int n = count_dark(png, {0, y, png.width - 1, y});
        if (n >= png.width * 2 / 5) {
            frame.top = std::min(frame.top, y);
            frame.bottom = std::max(frame.bottom, y);
        }
    }
    for (int x = 0; x < png.width; ++x) {
        int n = count_dark(png, {x, 0, x, png.height - 1});
        if (n >= png.height * 2 / 5) {
            frame.left = std::min(frame.left, x);
            frame.right = std::max(frame.right, x);
        }
    }
    REQUIRE_MESSAGE(!frame.empty(), "no border found");
    REQUIRE(frame.width() > 100);
    REQUIRE(frame.height() > 100);
    return frame;
}

struct Range {
    double lo = 0;
    double hi = 0;
};

// `set xrange [lo:hi]` (or yrange, y2range) from a plot's script; nothing if the script sets none.
std::optional<Range> script_range(const std::string& script, const std::string& axis) {
    std::string key = fmt::format("set {}range [", axis);
    auto at = script.find(key);
    if (at == std::string::npos) {
        return std::nullopt;
    }
    auto colon = script.find(':', at);
    auto end = script.find(']', at);
    std::size_t first = at + key.size();
    return Range{std::stod(script.substr(first, colon - first)), std::stod(script.substr(colon + 1, end - colon - 1))};
}

// The colour of the key's box: a grey with a touch of blue that no antialiased black, grey or colour
// line on white produces, so that its pixels show where the key is.
const std::string key_box = "#a0a0a8";

bool has(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

// Where a data point lands in the PNG: the script's ranges laid over the frame found in the pixels.
struct Mapping {
    Box frame;
    Range x;
    Range y;
    bool log_x = false;
    bool log_y = false;

    Mapping(const Png& png, const std::string& script, bool log_x_axis, bool log_y_axis)
        : Mapping(find_frame(png), script, log_x_axis, log_y_axis) {}
    Mapping(Box area, const std::string& script, bool log_x_axis, bool log_y_axis)
        : frame(area), log_x(log_x_axis), log_y(log_y_axis) {
        auto xr = script_range(script, "x");
        auto yr = script_range(script, "y");
        REQUIRE_MESSAGE(xr.has_value(), "the script sets no x range");
        REQUIRE_MESSAGE(yr.has_value(), "the script sets no y range");
        x = *xr;
        y = *yr;
    }
    static double fraction(double v, Range r, bool log) {
        return log ? (std::log10(v) - std::log10(r.lo)) / (std::log10(r.hi) - std::log10(r.lo))
                   : (v - r.lo) / (r.hi - r.lo);
    }
    std::pair<int, int> pixel(double px, double py) const {
        return {static_cast<int>(std::lround(frame.left + fraction(px, x, log_x) * frame.width())),
                static_cast<int>(std::lround(frame.bottom - fraction(py, y, log_y) * frame.height()))};
    }
};

// The points of a polyline, 50 between every two vertices, where its pixels are.
std::vector<std::pair<double, double>> along(const Series& s) {
    std::vector<std::pair<double, double>> out;
    for (std::size_t i = 0; i + 1 < s.x.size(); ++i) {
        for (int k = 0; k <= 50; ++k) {
            double t = k / 50.0;
            out.emplace_back(s.x[i] + t * (s.x[i + 1] - s.x[i]), s.y[i] + t * (s.y[i + 1] - s.y[i]));
        }
    }
    return out;
}

// An ROC curve that rises steeply at the left and runs along the top: the key and the threshold's label
// fit only below it.
std::vector<Series> roc_curves() {
    return {{"autoencoder", {0, 0, 0.02, 0.05, 0.1, 0.3, 1}, {0, 0.6, 0.8, 0.9, 0.97, 1, 1}},
            {"chance", {0, 1}, {0, 1}}};
}

}  // namespace

TEST_CASE("plot_lines: a 900 x 600 png with one colour per series, no temporary left") {
    Folders folders;
    ScopedEnv tmpdir("TMPDIR", folders.tmp.string());
    std::string path = folders.at("loss.png");
    plot_lines(path, "loss of \"vanilla\" ae: it's falling", "epoch", "mse", loss_curves());
    check_plot_png(path, 900, 600);
    Png png = load_png(path);
    auto colours = png.colours();
    CHECK(colours.count("#1f77b4") == 1);  // first series
    CHECK(colours.count("#ff7f0e") == 1);  // second series
    CHECK(colours.count("#2ca02c") == 0);  // there is no third
    CHECK(listing(folders.out) == std::vector<std::string>{"loss.png"});
    CHECK(listing(folders.tmp).empty());

    SUBCASE("log y, a size of its own, a few points with markers and a NaN gap") {
        Series error{"pca", {1, 2, 4, 8, 16}, {0.06, 0.04, std::nan(""), 0.012, 0.004}};
        plot_lines(path, "error against latent size", "latent size", "test mse", {error},
                   {.log_x = true, .log_y = true, .width = 640, .height = 480});
        check_plot_png(path, 640, 480);
        CHECK(listing(folders.tmp).empty());
    }
}

TEST_CASE("plot_lines: argument errors, exactly") {
    Folders folders;
    std::string path = folders.at("loss.png");
    CHECK_THROWS_WITH_AS(plot_lines(path, "t", "x", "y", {{"train", {1, 2, 3}, {1, 2}}}),
                         fmt::format("figure {}: series 'train' has 3 x values and 2 y values", path).c_str(),
                         ShapeError);
    CHECK_THROWS_WITH_AS(
        plot_lines(path, "t", "x", "y", {{"train", {1, 2, 3}, {1, 0, 2}}}, {.log_y = true}),
        fmt::format("figure {}: log y axis needs positive values: series 'train' has y[1] = 0", path).c_str(),
        ValueError);
    CHECK_THROWS_WITH_AS(plot_lines(path, "t", "x", "y", {}),
                         fmt::format("figure {}: no series to plot", path).c_str(), ValueError);
    double nan = std::nan("");
    CHECK_THROWS_WITH_AS(plot_lines(path, "t", "x", "y", {{"train", {1, 2}, {nan, nan}}}),
                         fmt::format("figure {}: series 'train' has no finite point: 2 points", path).c_str(),
                         ValueError);
    CHECK_THROWS_WITH_AS(plot_lines(path, "t", "x", "y", loss_curves(), {.width = 0}),
                         fmt::format("figure {}: plot size must be 100 to 10000 pixels a side: got 0 x 600", path)
                             .c_str(),
                         ValueError);
    CHECK(listing(folders.out).empty());
}

TEST_CASE("gnuplot missing, failing or silent: clear errors, old figure kept, no temporary left") {
    Folders folders;
    ScopedEnv tmpdir("TMPDIR", folders.tmp.string());
    std::string path = folders.at("loss.png");
    {
        std::ofstream old(path);
        old << "old figure";
    }

    SUBCASE("not in PATH") {
        ScopedEnv no_path("PATH", folders.tmp.string());
        CHECK_THROWS_WITH_AS(plot_lines(path, "t", "x", "y", loss_curves()),
                             fmt::format("figure {}: gnuplot not found: install gnuplot-nox", path).c_str(),
                             FigureError);
    }
    SUBCASE("a program given by path that is not there") {
        CHECK_THROWS_WITH_AS(
            plot_lines(path, "t", "x", "y", loss_curves(), {.gnuplot = "/nonexistent/gnuplot"}),
            fmt::format("figure {}: gnuplot not found at /nonexistent/gnuplot: install gnuplot-nox", path).c_str(),
            FigureError);
    }
    SUBCASE("a failing gnuplot: its exit status and what it printed") {
        fs::path fake = folders.root / "fake-gnuplot";
        {
            std::ofstream script(fake);
            script << "#!/bin/sh\necho '' >&2\necho '\"script.gp\" line 3: boom' >&2\nexit 3\n";
        }
        fs::permissions(fake, fs::perms::owner_all);
        CHECK_THROWS_WITH_AS(
            plot_scatter(path, "t", "z1", "z2", {1, 2}, {3, 4}, {0, 1}, {.gnuplot = fake.string()}),
            fmt::format("figure {}: gnuplot failed with exit status 3: \"script.gp\" line 3: boom", path).c_str(),
            FigureError);
    }
    SUBCASE("a gnuplot that writes nothing") {
        CHECK_THROWS_WITH_AS(plot_lines(path, "t", "x", "y", loss_curves(), {.gnuplot = "true"}),
                             fmt::format("figure {}: gnuplot wrote no png: 0 bytes on its output", path).c_str(),
                             FigureError);
    }
    CHECK(read_bytes(path) == "old figure");
    CHECK(listing(folders.out) == std::vector<std::string>{"loss.png"});
    CHECK(listing(folders.tmp).empty());
}

TEST_CASE("plot_scatter: a 900 x 600 png, points coloured by label") {
    Folders folders;
    ScopedEnv tmpdir("TMPDIR", folders.tmp.string());
    // Three clusters, labels given out of order: colours go to the sorted labels 2, 5, 7.
    std::vector<double> x, y;
    std::vector<std::int64_t> labels;
    Array<double> noise = test::random_array<double>({300, 2}, 7, -0.4, 0.4);
    const std::int64_t label_of[3] = {7, 2, 5};
    const double centre[3][2] = {{0, 0}, {2, 1}, {1, 3}};
    for (std::size_t i = 0; i < 300; ++i) {
        x.push_back(centre[i % 3][0] + noise(i, 0));
        y.push_back(centre[i % 3][1] + noise(i, 1));
        labels.push_back(label_of[i % 3]);
    }
    std::string path = folders.at("latent.png");
    plot_scatter(path, "latent space of the test digits", "z1", "z2", x, y, labels);
    check_plot_png(path, 900, 600);
    auto colours = load_png(path).colours();
    CHECK(colours.count("#1f77b4") == 1);
    CHECK(colours.count("#ff7f0e") == 1);
    CHECK(colours.count("#2ca02c") == 1);
    CHECK(colours.count("#d62728") == 0);
    CHECK(listing(folders.tmp).empty());

    SUBCASE("without labels: one colour") {
        plot_scatter(path, "codes", "z1", "z2", x, y, {});
        auto one = load_png(path).colours();
        CHECK(one.count("#1f77b4") == 1);
        CHECK(one.count("#ff7f0e") == 0);
    }
    SUBCASE("lengths that differ") {
        CHECK_THROWS_WITH_AS(
            plot_scatter(path, "t", "z1", "z2", x, y, {1, 2}),
            fmt::format("figure {}: x, y and labels differ in length: 300, 300 and 2 values", path).c_str(),
            ShapeError);
    }
}

TEST_CASE("plot_lines: axes fitted to the data, log axes labelled within their range") {
    Folders folders;
    std::string path = folders.at("rate.png");
    // Error against latent size as the demo draws it: 2 to 32 and 0.0026 to 0.054. Widened to whole
    // decades (1 to 100, 0.0001 to 1), the lines filled a third of the frame each way. Unnamed, so that
    // no key adds pixels of their colours.
    std::vector<Series> rate = {{"", {2, 4, 8, 16, 32}, {0.038, 0.023, 0.014, 0.0074, 0.0039}},
                                {"", {2, 4, 8, 16, 32}, {0.054, 0.038, 0.024, 0.0116, 0.0026}}};
    PlotOptions options{.log_x = true, .log_y = true};
    plot_lines(path, "test MSE against latent size", "latent size", "test MSE", rate, options);
    Png png = load_png(path);
    Box frame = find_frame(png);
    Box data = colour_box(png, {"#1f77b4", "#ff7f0e"});
    CAPTURE(frame);
    CAPTURE(data);
    CHECK(data.inside(frame));
    CHECK(data.width() >= 0.85 * frame.width());
    CHECK(data.height() >= 0.85 * frame.height());

    std::string script = models::detail::plot_lines_script(path, "t", "x", "y", rate, options);
    CAPTURE(script);
    auto x = script_range(script, "x");
    REQUIRE(x.has_value());
    // 3% of the 1.2 decades from 2 to 32 on either side.
    double margin = std::pow(16.0, 0.03);
    CHECK(x->lo == doctest::Approx(2 / margin));
    CHECK(x->hi == doctest::Approx(32 * margin));
    // 1.4 decades labelled at 1, 2 and 5 times powers of ten, not at 0.01 alone.
    CHECK(has(script, "set ytics (\"0.005\" 0.005, \"0.01\" 0.01, \"0.02\" 0.02, \"0.05\" 0.05)"));
    CHECK(has(script, "set xtics (\"2\" 2, \"5\" 5, \"10\" 10, \"20\" 20)"));

    SUBCASE("a constant series, a single point and a constant on a log axis get a range around them") {
        std::string flat = models::detail::plot_lines_script(path, "t", "x", "y", {{"flat", {1, 2, 3}, {5, 5, 5}}}, {});
        REQUIRE(script_range(flat, "y").has_value());
        CHECK(script_range(flat, "y")->lo == doctest::Approx(4.5));
        CHECK(script_range(flat, "y")->hi == doctest::Approx(5.5));
        CHECK(script_range(flat, "x")->lo == doctest::Approx(0.94));
        std::string one = models::detail::plot_lines_script(path, "t", "x", "y", {{"one", {3}, {0}}}, {});
        REQUIRE(script_range(one, "x").has_value());
        CHECK(script_range(one, "x")->lo == doctest::Approx(2.7));
        CHECK(script_range(one, "x")->hi == doctest::Approx(3.3));
        CHECK(script_range(one, "y")->lo == doctest::Approx(-1));
        CHECK(script_range(one, "y")->hi == doctest::Approx(1));
        std::string log =
            models::detail::plot_lines_script(path, "t", "x", "y", {{"l", {1, 2}, {0.01, 0.01}}}, {.log_y = true});
        REQUIRE(script_range(log, "y").has_value());
        CHECK(script_range(log, "y")->lo == doctest::Approx(0.005));
        CHECK(script_range(log, "y")->hi == doctest::Approx(0.02));
        // Drawn, too: gnuplot takes these ranges without complaint.
        plot_lines(path, "t", "x", "y", {{"one", {3}, {0}}});
        check_plot_png(path, 900, 600);
    }
}

TEST_CASE("plot_lines: the key inside the frame, in a corner with no data under it") {
    Folders folders;
    std::string path = folders.at("roc.png");
    std::vector<Series> roc = roc_curves();
    plot_lines(path, "ROC", "false positive rate", "true positive rate", roc);
    std::string script =
        models::detail::plot_lines_script(path, "ROC", "false positive rate", "true positive rate", roc, {});
    CAPTURE(script);
    // Top left and top right hold the curve, bottom left its start: bottom right is free.
    CHECK(has(script, "set key inside bottom right"));
    Png png = load_png(path);
    Box key = colour_box(png, {key_box});
    Mapping at(png, script, false, false);
    CAPTURE(at.frame);
    CAPTURE(key);
    REQUIRE(!key.empty());
    CHECK(key.inside(at.frame));
    int covered = 0;
    for (const Series& s : roc) {
        for (auto [x, y] : along(s)) {
            auto [px, py] = at.pixel(x, y);
            covered += key.contains(px, py) ? 1 : 0;
        }
    }
    CHECK(covered == 0);
    // Both lines still show in full: their colours reach the frame's corners.
    Box data = colour_box(png, {"#1f77b4", "#ff7f0e"});
    CHECK(data.width() >= 0.9 * at.frame.width());

    SUBCASE("scatter with data in every corner: room made beside it") {
        std::vector<double> x, y;
        std::vector<std::int64_t> labels;
        Array<double> noise = test::random_array<double>({400, 2}, 3, -0.3, 0.3);
        const double centre[5][2] = {{0, 0}, {0, 4}, {4, 0}, {4, 4}, {2, 2}};
        for (std::size_t i = 0; i < 400; ++i) {
            x.push_back(centre[i % 5][0] + noise(i, 0));
            y.push_back(centre[i % 5][1] + noise(i, 1));
            labels.push_back(static_cast<std::int64_t>(i % 5));
        }
        std::string scatter = folders.at("scatter.png");
        plot_scatter(scatter, "codes", "z1", "z2", x, y, labels);
        std::string s = models::detail::plot_scatter_script(scatter, "codes", "z1", "z2", x, y, labels, {});
        CAPTURE(s);
        CHECK(has(s, "set key inside top right"));
        Png points = load_png(scatter);
        Box box = colour_box(points, {key_box});
        Mapping m(points, s, false, false);
        REQUIRE(!box.empty());
        CHECK(box.inside(m.frame));
        int hidden = 0;
        for (std::size_t i = 0; i < x.size(); ++i) {
            auto [px, py] = m.pixel(x[i], y[i]);
            // A point is 8 pixels across: its edge must stay off the box too.
            for (auto [dx, dy] : {std::pair{-4, 0}, {4, 0}, {0, -4}, {0, 4}}) {
                hidden += box.contains(px + dx, py + dy) ? 1 : 0;
            }
        }
        CHECK(hidden == 0);
    }
}

TEST_CASE("plot_lines: a series on the right axis gets its own range, scale and label") {
    Folders folders;
    std::string path = folders.at("loss.png");
    // A train objective (with a KL term) near 1 and a validation MSE near 0.02: on one axis the MSE
    // would be a flat line along the bottom.
    Series objective{"train objective", {}, {}};
    Series validation{"validation MSE", {}, {}, Axis::right};
    for (int e = 1; e <= 60; ++e) {
        objective.x.push_back(e);
        objective.y.push_back(2.0 * std::exp(-0.05 * e) + 0.8);
        validation.x.push_back(e);
        validation.y.push_back(0.05 * std::exp(-0.04 * e) + 0.01);
    }
    PlotOptions options{.log_y = true, .y2_label = "validation MSE", .log_y2 = true};
    std::string script =
        models::detail::plot_lines_script(path, "loss", "epoch", "train objective", {objective, validation}, options);
    CAPTURE(script);
    CHECK(has(script, "set y2label 'validation MSE'"));
    CHECK(has(script, "set logscale y2"));
    CHECK(has(script, "set y2tics"));
    CHECK(has(script, "set ytics nomirror"));
    CHECK(has(script, "axes x1y2"));
    CHECK(has(script, "title 'train objective (left axis)'"));
    CHECK(has(script, "title 'validation MSE (right axis)'"));
    auto y2 = script_range(script, "y2");
    CHECK(y2.has_value());
    CHECK((y2 && y2->hi < 0.1));

    // Unnamed, so that the key's samples do not count as data: each line spans its axis's height.
    objective.name.clear();
    validation.name.clear();
    plot_lines(path, "loss", "epoch", "train objective", {objective, validation}, options);
    Png png = load_png(path);
    Box frame = find_frame(png);
    Box left = colour_box(png, {"#1f77b4"});
    Box right = colour_box(png, {"#ff7f0e"});
    CAPTURE(frame);
    CAPTURE(left);
    CAPTURE(right);
    CHECK(left.height() >= 0.85 * frame.height());
    CHECK(right.height() >= 0.85 * frame.height());
    // The right axis's tick labels: text right of the frame, where a plot without one has none.
    CHECK(count_dark(png, {frame.right + 3, frame.top, png.width - 1, frame.bottom}) > 100);

    SUBCASE("everything on the right axis, a mark there too, on a small figure") {
        validation.name = "validation MSE";
        plot_lines(path, "loss", "epoch", "", {validation},
                   {.width = 300, .height = 200, .y2_label = "validation MSE", .log_y2 = true,
                    .marks = {{30, 0.02, "best", Axis::right}}});
        check_plot_png(path, 300, 200);
        std::string right = models::detail::plot_lines_script(path, "loss", "epoch", "", {validation},
                                                              {.y2_label = "validation MSE", .log_y2 = true,
                                                               .marks = {{30, 0.02, "best", Axis::right}}});
        CHECK(has(right, "'best' at first 30, second 0.02 point"));
        CHECK(has(right, "unset ytics"));
    }
}

TEST_CASE("plot_lines: a marked point, a black dot with its label beside it") {
    Folders folders;
    std::string path = folders.at("roc.png");
    std::string bare = folders.at("bare.png");
    PlotOptions options{.marks = {{0.05, 0.9, "threshold 0.0123"}}};
    plot_lines(path, "ROC", "fpr", "tpr", roc_curves(), options);
    plot_lines(bare, "ROC", "fpr", "tpr", roc_curves());
    std::string script = models::detail::plot_lines_script(path, "ROC", "fpr", "tpr", roc_curves(), options);
    CAPTURE(script);
    CHECK(has(script, "'threshold 0.0123' at first 0.05, first 0.9 point"));
    Png marked = load_png(path);
    Png plain = load_png(bare);
    Mapping at(marked, script, false, false);
    auto [px, py] = at.pixel(0.05, 0.9);
    CAPTURE(px);
    CAPTURE(py);
    // The dot: black over the 5 x 5 pixels around the point, where the curve alone is blue.
    CHECK(count_dark(marked, {px - 2, py - 2, px + 2, py + 2}) == 25);
    CHECK(count_dark(plain, {px - 2, py - 2, px + 2, py + 2}) < 25);
    // The label: text within 200 pixels of the dot, inside the frame clear of its ticks.
    Box near{std::max(px - 200, at.frame.left + 12), py - 40, std::min(px + 200, at.frame.right - 12), py + 40};
    Box dot{px - 8, py - 8, px + 8, py + 8};
    int text = count_dark(marked, near) - count_dark(marked, dot);
    int before = count_dark(plain, near) - count_dark(plain, dot);
    CAPTURE(text);
    CAPTURE(before);
    CHECK(text - before > 100);

    SUBCASE("marks outside the data widen the axes to show them; bad marks are named") {
        std::string far =
            models::detail::plot_lines_script(path, "t", "x", "y", roc_curves(), {.marks = {{2, 3, "far"}}});
        REQUIRE(script_range(far, "x").has_value());
        CHECK(script_range(far, "x")->hi > 2);
        CHECK(script_range(far, "y")->hi > 3);
        CHECK_THROWS_WITH_AS(
            plot_lines(path, "t", "x", "y", roc_curves(), {.marks = {{0.1, 0.5, "ok"}, {std::nan(""), 0.5, "bad"}}}),
            fmt::format("figure {}: mark 1 'bad' is not finite: (nan, 0.5)", path).c_str(), ValueError);
        CHECK_THROWS_WITH_AS(plot_lines(path, "t", "x", "y", {{"l", {1, 2}, {1, 2}}},
                                        {.log_y = true, .marks = {{1, 0, "zero"}}}),
                             fmt::format("figure {}: log y axis needs positive values: mark 0 'zero' has y = 0", path)
                                 .c_str(),
                             ValueError);
    }
}

TEST_CASE("plot_scatter: class names in the key") {
    Folders folders;
    std::string path = folders.at("latent.png");
    const std::vector<std::string> fashion = {"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                                              "Sandal",      "Shirt",   "Sneaker",  "Bag",   "Ankle boot"};
    std::vector<double> x, y;
    std::vector<std::int64_t> labels;
    for (std::int64_t k = 0; k < 10; ++k) {
        for (int i = 0; i < 5; ++i) {
            x.push_back(double(k) + 0.1 * i);
            y.push_back(double(k % 3) + 0.1 * i);
            labels.push_back(k);
        }
    }
    PlotOptions options{.label_names = fashion};
    std::string script = models::detail::plot_scatter_script(path, "t", "z1", "z2", x, y, labels, options);
    CAPTURE(script);
    CHECK(has(script, "title 'T-shirt/top'"));
    CHECK(has(script, "title 'Ankle boot'"));
    CHECK(!has(script, "title '0'"));
    CHECK(!has(script, "title '9'"));
    // The names in the colours of their labels: T-shirt/top the first colour, Ankle boot the tenth.
    CHECK(has(script, "lc rgb '#1f77b4' title 'T-shirt/top'"));
    CHECK(has(script, "lc rgb '#17becf' title 'Ankle boot'"));
    CHECK(has(models::detail::plot_scatter_script(path, "t", "z1", "z2", x, y, labels, {}), "title '0'"));
    plot_scatter(path, "Fashion-MNIST codes", "z1", "z2", x, y, labels, options);
    check_plot_png(path, 900, 600);

    SUBCASE("a label without a name") {
        labels.back() = 10;
        CHECK_THROWS_WITH_AS(plot_scatter(path, "t", "z1", "z2", x, y, labels, options),
                             fmt::format("figure {}: label 10 has no name: 10 label_names, for labels 0 to 9", path)
                                 .c_str(),
                             ValueError);
        labels.back() = -1;
        CHECK_THROWS_WITH_AS(plot_scatter(path, "t", "z1", "z2", x, y, labels, options),
                             fmt::format("figure {}: label -1 has no name: 10 label_names, for labels 0 to 9", path)
                                 .c_str(),
                             ValueError);
    }
}

TEST_CASE("plot_scatter: a key titled as the program asks") {
    Folders folders;
    std::string path = folders.at("latent.png");
    std::vector<double> x = {0, 1, 2, 3};
    std::vector<double> y = {0, 1, 0, 1};
    std::vector<std::int64_t> labels = {0, 1, 2, 3};
    std::string digits = models::detail::plot_scatter_script(path, "t", "z1", "z2", x, y, labels, {.key_title = "digit"});
    CHECK(has(digits, "title 'digit'"));
    CHECK(!has(digits, "title 'label'"));
    CHECK(has(models::detail::plot_scatter_script(path, "t", "z1", "z2", x, y, labels, {}), "title 'label'"));
    std::string named = models::detail::plot_scatter_script(path, "t", "z1", "z2", x, y, labels,
                                                            {.label_names = {"a", "b", "c", "d"}, .key_title = "kind"});
    CHECK(has(named, "title 'kind'"));
    plot_scatter(path, "codes", "z1", "z2", x, y, labels, {.key_title = "digit"});
    check_plot_png(path, 900, 600);
}

namespace {

// The part of a figure inside `box`, as a figure of its own: one panel of several.
Png crop(const Png& png, Box box) {
    Png part{box.width(), box.height(), png.channels, {}};
    for (int y = box.top; y <= box.bottom; ++y) {
        auto row = png.pixels.begin() + static_cast<std::ptrdiff_t>((y * png.width + box.left) * png.channels);
        part.pixels.insert(part.pixels.end(), row, row + static_cast<std::ptrdiff_t>(box.width() * png.channels));
    }
    return part;
}

// Every `set xrange [lo:hi]` of a script, in order: one a panel.
std::vector<Range> x_ranges(const std::string& script) {
    std::vector<Range> out;
    for (auto at = script.find("set xrange ["); at != std::string::npos; at = script.find("set xrange [", at + 1)) {
        out.push_back(*script_range(script.substr(at), "x"));
    }
    return out;
}

}  // namespace

TEST_CASE("plot_scatter_panels: two labelled panels side by side, each with its own axes and key") {
    Folders folders;
    ScopedEnv tmpdir("TMPDIR", folders.tmp.string());
    // The same labels on scales a hundred times apart: on a shared axis the small cloud would be a dot.
    ScatterPanel small{"autoencoder", "z1", "z2", {}, {}, {}};
    ScatterPanel large{"PCA", "PC1", "PC2", {}, {}, {}};
    Array<double> noise = test::random_array<double>({200, 2}, 3, -0.5, 0.5);
    for (std::size_t i = 0; i < 200; ++i) {
        auto label = static_cast<std::int64_t>(i % 2);
        small.x.push_back(double(label) + noise(i, 0));
        small.y.push_back(noise(i, 1));
        small.labels.push_back(label);
        large.x.push_back(100 * (double(label) + noise(i, 1)));
        large.y.push_back(100 * noise(i, 0));
        large.labels.push_back(label);
    }
    std::string path = folders.at("codes.png");
    PlotOptions options{.width = 1600, .height = 700, .key_title = "digit"};
    std::string script = models::detail::plot_scatter_panels_script(path, "2-D codes", {small, large}, options);
    CAPTURE(script);
    CHECK(has(script, "set multiplot layout 1,2 title '2-D codes'"));
    for (const char* text : {"set title 'autoencoder'", "set xlabel 'z1'", "set ylabel 'z2'", "set title 'PCA'",
                             "set xlabel 'PC1'", "set ylabel 'PC2'", "title 'digit'", "title '0'", "title '1'"}) {
        CAPTURE(text);
        CHECK(has(script, text));
    }
    std::vector<Range> ranges = x_ranges(script);
    REQUIRE(ranges.size() == 2);
    CHECK(ranges[0].hi < 2);
    CHECK(ranges[1].hi > 100);

    plot_scatter_panels(path, "2-D codes", {small, large}, options);
    check_plot_png(path, 1600, 700);
    CHECK(listing(folders.tmp).empty());
    // In each half a frame of its own, its points in the labels' colours inside it and spread over most of
    // it: the panels side by side, each fitted to its own data.
    Png png = load_png(path);
    for (int half = 0; half < 2; ++half) {
        CAPTURE(half);
        Png panel = crop(png, {half * 800, 0, half * 800 + 799, 699});
        Box frame = find_frame(panel);
        Box points = colour_box(panel, {"#1f77b4", "#ff7f0e"});
        CAPTURE(frame);
        CAPTURE(points);
        REQUIRE(!points.empty());
        CHECK(points.inside(frame));
        CHECK(points.width() > frame.width() / 2);
        CHECK(points.height() > frame.height() / 2);
    }

    SUBCASE("errors name the panel; no panels and marks are refused") {
        large.labels.resize(2);
        CHECK_THROWS_WITH_AS(plot_scatter_panels(path, "t", {small, large}, options),
                             fmt::format("figure {}: panel 2 'PCA': x, y and labels differ in length: 200, 200 and 2 "
                                         "values",
                                         path)
                                 .c_str(),
                             ShapeError);
        CHECK_THROWS_WITH_AS(plot_scatter_panels(path, "t", {}, options),
                             fmt::format("figure {}: no panels to plot", path).c_str(), ValueError);
        options.marks = {{0, 0, "origin"}};
        CHECK_THROWS_WITH_AS(plot_scatter_panels(path, "t", {small}, options),
                             fmt::format("figure {}: a figure of panels takes no marks: 1 given, and no panel to put "
                                         "them in",
                                         path)
                                 .c_str(),
                             ValueError);
    }
}

namespace {

// Not a grey: a cell of the map or a coloured dot, not the border, a tick, text or the background.
bool coloured(const Png& png, int x, int y) {
    const unsigned char* p = &png.pixels[static_cast<std::size_t>(y * png.width + x) * png.channels];
    return std::max({p[0], p[1], p[2]}) - std::min({p[0], p[1], p[2]}) > 24;
}

// The map's area in a heat map's PNG (find_frame cannot tell its border from a row of dark cells): the
// longest run of coloured pixels along every 10th row gives its left and right, down every 10th column
// between them its top and bottom. Scanning many lines steps around the dots and the colour box.
Box map_area(const Png& png) {
    auto longest = [](int n, auto is_coloured) {
        std::pair<int, int> best{0, -1};
        int start = -1;
        for (int i = 0; i <= n; ++i) {
            if (i < n && is_coloured(i)) {
                start = start < 0 ? i : start;
            } else if (start >= 0) {
                if (i - 1 - start > best.second - best.first) {
                    best = {start, i - 1};
                }
                start = -1;
            }
        }
        return best;
    };
    auto widest = [](std::pair<int, int> a, std::pair<int, int> b) {
        return b.second - b.first > a.second - a.first ? b : a;
    };
    std::pair<int, int> across{0, -1}, down{0, -1};
    for (int y = 0; y < png.height; y += 10) {
        across = widest(across, longest(png.width, [&](int x) { return coloured(png, x, y); }));
    }
    for (int x = across.first; x <= across.second; x += 10) {
        down = widest(down, longest(png.height, [&](int y) { return coloured(png, x, y); }));
    }
    REQUIRE(across.second - across.first > 100);
    REQUIRE(down.second - down.first > 100);
    return {across.first, down.first, across.second, down.second};
}

// A 5 x 4 map (5 ys, 4 xs): value 10^(row - 3) * (column + 1), so that the lowest is at the bottom left
// and the highest at the top right, four decades apart.
struct Map {
    std::vector<double> xs = {0, 0.5, 1, 1.5};
    std::vector<double> ys = {-2, -1, 0, 1, 2};
    Array<double> values = xt::empty<double>(Shape{5, 4});
    Map() {
        for (std::size_t i = 0; i < 5; ++i) {
            for (std::size_t j = 0; j < 4; ++j) {
                values(i, j) = std::pow(10.0, double(i) - 3) * double(j + 1);
            }
        }
    }
};

}  // namespace

TEST_CASE("plot_heatmap: cells coloured in viridis order, a labelled colour box, points over them") {
    Folders folders;
    ScopedEnv tmpdir("TMPDIR", folders.tmp.string());
    std::string path = folders.at("error.png");
    Map m;
    PlotOptions options{.cb_label = "reconstruction MSE", .log_cb = true};
    std::string script = models::detail::plot_heatmap_script(path, "error", "x", "y", m.xs, m.ys, m.values, options);
    CAPTURE(script);
    CHECK(has(script, "set palette defined (0 '#440154'"));
    CHECK(has(script, "8 '#fde725')"));
    CHECK(has(script, "set cblabel 'reconstruction MSE'"));
    CHECK(has(script, "set logscale cb"));
    CHECK(has(script, "set cbrange [0.001:40]"));
    // 4.6 decades: gnuplot's tics at powers of ten, written as 0.001 rather than 0.00100.
    CHECK(has(script, "set format cb '%g'"));
    CHECK(!has(script, "set cbtics"));
    CHECK(has(script, "unset key"));
    // The map fills the frame: half a step beyond the first and last centres.
    REQUIRE(script_range(script, "x").has_value());
    CHECK(script_range(script, "x")->lo == doctest::Approx(-0.25));
    CHECK(script_range(script, "x")->hi == doctest::Approx(1.75));
    CHECK(script_range(script, "y")->lo == doctest::Approx(-2.5));
    CHECK(script_range(script, "y")->hi == doctest::Approx(2.5));
    // Row i of values at ys[i]: the value at (1.5, -2) is 0.004.
    CHECK(has(script, "\n1.5 -2 0.004\n"));
    CHECK(has(script, "with image notitle"));

    plot_heatmap(path, "error", "x", "y", m.xs, m.ys, m.values, options);
    check_plot_png(path, 900, 600);
    Png png = load_png(path);
    Mapping at(map_area(png), script, false, false);
    auto colour_of = [&](double x, double y) {
        auto [px, py] = at.pixel(x, y);
        return colour_at(png, px, py);
    };
    // The lowest cell in viridis's first colour, the highest in its last, the cells between in between
    // (a colour box along the way would be the same colours).
    CHECK(colour_of(0, -2) == "#440154");
    CHECK(colour_of(1.5, 2) == "#fde725");
    CHECK(colour_of(0, 0) != "#440154");
    CHECK(colour_of(0, 0) != "#fde725");
    // The box's label: text right of the box, which is right of the frame.
    CHECK(count_dark(png, {at.frame.right + 80, at.frame.top, png.width - 1, at.frame.bottom}) > 100);
    CHECK(listing(folders.tmp).empty());

    SUBCASE("a linear scale: one colour per value, evenly") {
        std::string linear = models::detail::plot_heatmap_script(path, "error", "x", "y", m.xs, m.ys, m.values,
                                                                 {.cb_label = "MSE"});
        CHECK(!has(linear, "logscale"));
        CHECK(has(linear, "set cbrange [0.001:40]"));
    }
    SUBCASE("a non-finite value is left out: its cell shows the background") {
        m.values(2, 1) = std::nan("");
        m.values(3, 2) = std::numeric_limits<double>::infinity();
        std::string gaps = models::detail::plot_heatmap_script(path, "error", "x", "y", m.xs, m.ys, m.values, options);
        CHECK(has(gaps, "\n0.5 0 NaN\n"));
        CHECK(has(gaps, "\n1 1 NaN\n"));
        plot_heatmap(path, "error", "x", "y", m.xs, m.ys, m.values, options);
        Png holes = load_png(path);
        auto [px, py] = at.pixel(0.5, 0);
        CHECK(colour_at(holes, px, py) == "#ffffff");
    }
    SUBCASE("one value everywhere: a range around it") {
        m.values.fill(0.5);
        std::string flat = models::detail::plot_heatmap_script(path, "error", "x", "y", m.xs, m.ys, m.values, options);
        CHECK(has(flat, "set cbrange [0.25:1]"));
        // Labelled within its two quarters of a decade, as a short log axis of plot_lines is.
        CHECK(has(flat, "\"0.5\" 0.5"));
    }
    SUBCASE("points over the map, named in a key below it") {
        Series data{"data", {0.1, 0.6, 1.2}, {-1.5, 0.2, 1.4}};
        Series centres{"", {0.5}, {0.0}};
        std::string points = models::detail::plot_heatmap_script(
            path, "error", "x", "y", m.xs, m.ys, m.values,
            {.key_title = "points", .cb_label = "MSE", .log_cb = true, .points = {data, centres}});
        CAPTURE(points);
        CHECK(has(points, "set key below horizontal samplen 1 title 'points'"));
        CHECK(has(points, "lc rgb '#d62728' title 'data'"));
        CHECK(has(points, "lc rgb '#ff7f0e' notitle"));
        plot_heatmap(path, "error", "x", "y", m.xs, m.ys, m.values,
                     {.cb_label = "MSE", .log_cb = true, .points = {data, centres}});
        Png dotted = load_png(path);
        // Each dot is red around its centre (antialiasing blends its edge, the map a pixel off what the
        // ranges say), over cells that are not red.
        Mapping over(map_area(dotted), points, false, false);
        for (std::size_t i = 0; i < data.x.size(); ++i) {
            auto [px, py] = over.pixel(data.x[i], data.y[i]);
            int red = 0;
            for (int dy = -2; dy <= 2; ++dy) {
                for (int dx = -2; dx <= 2; ++dx) {
                    red += colour_at(dotted, px + dx, py + dy) == "#d62728";
                }
            }
            CHECK(red >= 4);
        }
        CHECK(png.colours().count("#d62728") == 0);
    }
}

TEST_CASE("plot_heatmap: argument errors, exactly") {
    Folders folders;
    std::string path = folders.at("error.png");
    Map m;
    auto fails = [&](const std::vector<double>& xs, const std::vector<double>& ys, const Array<double>& values,
                     const PlotOptions& options) { plot_heatmap(path, "t", "x", "y", xs, ys, values, options); };
    CHECK_THROWS_WITH_AS(fails(m.xs, {0, 1, 2}, m.values, {}),
                         fmt::format("figure {}: values must be (ys, xs) = (3, 4), a row per y: got (5, 4)", path)
                             .c_str(),
                         ShapeError);
    CHECK_THROWS_WITH_AS(fails({0, 1, 3, 4}, m.ys, m.values, {}),
                         fmt::format("figure {}: xs must increase in even steps (of 1.3333333333333333 here): "
                                     "xs[1] = 1, not 1.3333333333333333",
                                     path)
                             .c_str(),
                         ValueError);
    CHECK_THROWS_WITH_AS(fails(m.xs, {2, 1, 0, -1, -2}, m.values, {}),
                         fmt::format("figure {}: ys must increase: ys[1] = 1 after ys[0] = 2", path).c_str(),
                         ValueError);
    CHECK_THROWS_WITH_AS(fails({0}, m.ys, xt::ones<double>(Shape{5, 1}), {}),
                         fmt::format("figure {}: xs needs at least 2 values, for cells of a known size: got 1", path)
                             .c_str(),
                         ValueError);
    CHECK_THROWS_WITH_AS(fails({0, std::nan("")}, m.ys, xt::ones<double>(Shape{5, 2}), {}),
                         fmt::format("figure {}: xs[1] is not finite: nan", path).c_str(), ValueError);
    Array<double> undefined = xt::empty<double>(Shape{5, 4});
    undefined.fill(std::nan(""));
    CHECK_THROWS_WITH_AS(fails(m.xs, m.ys, undefined, {}),
                         fmt::format("figure {}: no finite value to plot: 20 values", path).c_str(), ValueError);
    Array<double> zero = m.values;
    zero(1, 2) = 0;
    CHECK_THROWS_WITH_AS(
        fails(m.xs, m.ys, zero, {.log_cb = true}),
        fmt::format("figure {}: log colour scale needs positive values: values(1, 2) = 0", path).c_str(), ValueError);
    CHECK_THROWS_WITH_AS(fails(m.xs, m.ys, m.values, {.log_y = true}),
                         fmt::format("figure {}: a heat map takes no log_y: leave it at its default", path).c_str(),
                         ValueError);
    CHECK_THROWS_WITH_AS(fails(m.xs, m.ys, m.values, {.marks = {{0, 0, "here"}}}),
                         fmt::format("figure {}: a heat map takes no marks: leave it at its default", path).c_str(),
                         ValueError);
    CHECK_THROWS_WITH_AS(fails(m.xs, m.ys, m.values, {.points = {{"data", {1, 2}, {1}}}}),
                         fmt::format("figure {}: point set 'data' has 2 x values and 1 y values", path).c_str(),
                         ShapeError);
    CHECK_THROWS_WITH_AS(
        fails(m.xs, m.ys, m.values, {.points = {{"data", {1}, {1}, Axis::right}}}),
        fmt::format("figure {}: point set 'data' is on the right axis: a heat map has none", path).c_str(), ValueError);
    CHECK_THROWS_WITH_AS(
        fails(m.xs, m.ys, m.values, {.points = std::vector<Series>(5, Series{"p", {1}, {1}})}),
        fmt::format("figure {}: at most 4 point sets over a heat map: got 5", path).c_str(), ValueError);
    CHECK(listing(folders.out).empty());
}
