#include "tapegrad/models/figures.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <string_view>
#include <tuple>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "figure_common.hpp"
#include "gnuplot.hpp"
#include "tapegrad/nn/io/file.hpp"

namespace tapegrad::models {

namespace {

using detail::code_points;
using detail::figure_name;
using detail::run_gnuplot;
using tapegrad::detail::throw_shape_error;
using tapegrad::detail::throw_value_error;

// ---------------------------------------------------------------------------------------------------
// gnuplot scripts

// A gnuplot single-quoted string: a quote is written twice and nothing else is special there.
// Control characters become spaces, since a newline would end the command.
std::string gnuplot_string(std::string_view text) {
    std::string out = "'";
    for (char c : text) {
        if (c == '\'') {
            out += "''";
        } else if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
            out += ' ';
        } else {
            out += c;
        }
    }
    out += "'";
    return out;
}

// gnuplot reads NaN as a missing point and leaves a gap; it has no literal for infinity.
std::string number(double v) { return std::isfinite(v) ? fmt::format("{}", v) : "NaN"; }

// matplotlib's tab10, the colours most readers already know; past ten, hues a golden angle apart.
std::string colour(std::size_t k) {
    static constexpr const char* tab10[] = {"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
                                            "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"};
    if (k < 10) {
        return tab10[k];
    }
    double hue = std::fmod(double(k) * 137.508, 360.0) / 60.0;
    double s = 0.65, v = 0.85;
    double c = v * s, x = c * (1 - std::fabs(std::fmod(hue, 2.0) - 1)), m = v - c;
    double rgb[3] = {0, 0, 0};
    int sector = static_cast<int>(hue);
    const int order[6][3] = {{0, 1, 2}, {1, 0, 2}, {1, 2, 0}, {2, 1, 0}, {2, 0, 1}, {0, 2, 1}};
    // order[sector] says which channel takes c, x and 0.
    rgb[order[sector][0]] = c;
    rgb[order[sector][1]] = x;
    rgb[order[sector][2]] = 0;
    auto byte = [&](double u) { return static_cast<int>(std::lround((u + m) * 255)); };
    return fmt::format("#{:02x}{:02x}{:02x}", byte(rgb[0]), byte(rgb[1]), byte(rgb[2]));
}

void check_plot_options(const std::string& what, const PlotOptions& options) {
    if (options.width < 100 || options.height < 100 || options.width > 10000 || options.height > 10000) {
        throw_value_error(fmt::format("{}: plot size must be 100 to 10000 pixels a side: got {} x {}", what,
                                      options.width, options.height));
    }
}

// Points a log axis could not place: gnuplot would drop them with only a warning.
void check_log_axis(const std::string& what, std::string_view axis, bool log, const std::vector<double>& values,
                    std::string_view owner) {
    if (!log) {
        return;
    }
    for (std::size_t i = 0; i < values.size(); ++i) {
        if (std::isfinite(values[i]) && values[i] <= 0) {
            throw_value_error(fmt::format("{}: log {} axis needs positive values: {} has {}[{}] = {}", what, axis,
                                          owner, axis.substr(0, 1), i, values[i]));
        }
    }
}

void check_marks(const std::string& what, const PlotOptions& options) {
    for (std::size_t k = 0; k < options.marks.size(); ++k) {
        const Mark& m = options.marks[k];
        std::string owner = fmt::format("mark {} {}", k, gnuplot_string(m.label));
        if (!std::isfinite(m.x) || !std::isfinite(m.y)) {
            throw_value_error(fmt::format("{}: {} is not finite: ({}, {})", what, owner, m.x, m.y));
        }
        bool log_y = m.axis == Axis::left ? options.log_y : options.log_y2;
        std::string_view y_axis = m.axis == Axis::left ? "y" : "y2";
        for (auto [axis, log, v] : {std::tuple{std::string_view("x"), options.log_x, m.x}, {y_axis, log_y, m.y}}) {
            if (log && v <= 0) {
                throw_value_error(fmt::format("{}: log {} axis needs positive values: {} has {} = {}", what, axis,
                                              owner, axis.substr(0, 1), v));
            }
        }
    }
}

bool any_finite_point(const std::vector<double>& x, const std::vector<double>& y) {
    for (std::size_t i = 0; i < x.size(); ++i) {
        if (std::isfinite(x[i]) && std::isfinite(y[i])) {
            return true;
        }
    }
    return false;
}

// ---------------------------------------------------------------------------------------------------
// Axes fitted to the data, the key and the marks placed where they hide least of it

struct Range {
    double lo = std::numeric_limits<double>::infinity();
    double hi = -std::numeric_limits<double>::infinity();

    bool empty() const { return lo > hi; }
    void add(double v) {
        lo = std::min(lo, v);
        hi = std::max(hi, v);
    }
};

// The range from the lowest to the highest value and 3% of it more on either side, so that no point
// sits on the border; in decades on a log axis. gnuplot's own autoscaling widens to round numbers, on a
// log axis to whole decades, which left a 1.3-decade curve a third of the frame.
Range fit(Range data, bool log) {
    double lo = log ? std::log10(data.lo) : data.lo;
    double hi = log ? std::log10(data.hi) : data.hi;
    if (hi > lo) {
        double margin = 0.03 * (hi - lo);
        lo -= margin;
        hi += margin;
    } else if (log) {
        lo -= std::log10(2.0);
        hi += std::log10(2.0);
    } else {
        double half = lo == 0 ? 1.0 : 0.1 * std::fabs(lo);
        lo -= half;
        hi += half;
    }
    return log ? Range{std::pow(10.0, lo), std::pow(10.0, hi)} : Range{lo, hi};
}

// Where v falls between r.lo (0) and r.hi (1).
double fraction(double v, Range r, bool log) {
    return log ? (std::log10(v) - std::log10(r.lo)) / (std::log10(r.hi) - std::log10(r.lo))
               : (v - r.lo) / (r.hi - r.lo);
}

// Moves r.hi so that the old range takes 1 - part of the new one, leaving `part` of the axis free: at
// most half of it, since a key covering a few points is better than data squeezed to a sliver.
void make_room(Range& r, bool log, double part) {
    part = std::min(part, 0.5);
    if (log) {
        r.hi = r.lo * std::pow(r.hi / r.lo, 1 / (1 - part));
    } else {
        r.hi = r.lo + (r.hi - r.lo) / (1 - part);
    }
}

// gnuplot labels a log axis at powers of ten only: fitted to a decade or two, it shows one label or
// none. Up to four decades, label 1, 2 and 5 times powers of ten (1, 2, 3, 5 up to one decade), and on
// an axis too short for three such labels, multiples of a round step, as on a linear axis: a loss from
// 0.9 to 2.8 reads 1, 1.5, 2, 2.5.
std::string log_tics(std::string_view axis, Range r) {
    double decades = std::log10(r.hi / r.lo);
    if (decades > 4) {
        return "";
    }
    std::vector<std::string> tics;
    auto add = [&](double v) {
        std::string text = fmt::format("{:g}", v);
        double at = std::stod(text);  // the tic where its label says, not at 0.30000000000000004
        if (at >= r.lo && at <= r.hi) {
            tics.push_back(fmt::format("\"{0}\" {0}", text));
        }
    };
    std::vector<int> mantissas = decades > 1 ? std::vector<int>{1, 2, 5} : std::vector<int>{1, 2, 3, 5};
    for (int e = static_cast<int>(std::floor(std::log10(r.lo))); e <= static_cast<int>(std::ceil(std::log10(r.hi)));
         ++e) {
        for (int m : mantissas) {
            add(m * std::pow(10.0, e));
        }
    }
    if (tics.size() < 3) {
        tics.clear();
        // The smallest of 1, 2 and 5 times a power of ten that gives at most five steps.
        double step = std::pow(10.0, std::floor(std::log10((r.hi - r.lo) / 5)));
        for (double m : {1.0, 2.0, 5.0, 10.0}) {
            if ((r.hi - r.lo) / (m * step) <= 5) {
                step *= m;
                break;
            }
        }
        for (double k = std::ceil(r.lo / step); k * step <= r.hi; ++k) {
            add(k * step);
        }
    }
    return fmt::format("set {}tics ({})\n", axis, fmt::join(tics, ", "));
}

// What a plot draws, for fitting the axes around it: the points of a line or a cloud.
struct Layer {
    const std::vector<double>& x;
    const std::vector<double>& y;
    Axis axis;
    bool joined;
};

struct Axes {
    Range x, y, y2;
    bool log_x = false, log_y = false, log_y2 = false;
    // The frame's size in pixels, guessed from the figure's: gnuplot decides it from the tick labels.
    double frame_width = 0, frame_height = 0;

    std::pair<double, double> at(double vx, double vy, Axis axis) const {
        return {fraction(vx, x, log_x), axis == Axis::left ? fraction(vy, y, log_y) : fraction(vy, y2, log_y2)};
    }
};

// pngcairo's 11-point font as measured on its figures: 8 to 8.5 pixels a character, 17 a line of the key.
constexpr double char_px = 8.5;
constexpr double line_px = 17;

// A rectangle in the frame, from 0 to 1 each way, y upwards.
struct Area {
    double left, bottom, right, top;
    bool contains(std::pair<double, double> p) const {
        return p.first >= left && p.first <= right && p.second >= bottom && p.second <= top;
    }
    bool inside_frame() const { return left >= 0 && right <= 1 && bottom >= 0 && top <= 1; }
};

std::size_t covered(const std::vector<std::pair<double, double>>& samples, const Area& area) {
    return static_cast<std::size_t>(std::count_if(samples.begin(), samples.end(),
                                                  [&](const auto& p) { return area.contains(p); }));
}

// Points along the data where it is drawn, in frame fractions: a line sampled every 1% of the frame
// between its points (a key may sit between two points of a line but not on the line).
std::vector<std::pair<double, double>> samples_of(const std::vector<Layer>& layers, const Axes& axes) {
    std::vector<std::pair<double, double>> out;
    for (const Layer& layer : layers) {
        bool previous = false;
        for (std::size_t i = 0; i < layer.x.size(); ++i) {
            if (!std::isfinite(layer.x[i]) || !std::isfinite(layer.y[i])) {
                previous = false;
                continue;
            }
            auto p = axes.at(layer.x[i], layer.y[i], layer.axis);
            if (layer.joined && previous) {
                auto q = out.back();
                double length = std::hypot(p.first - q.first, p.second - q.second);
                int steps = std::min(100, static_cast<int>(std::ceil(length / 0.01)));
                for (int k = 1; k < steps; ++k) {
                    double t = double(k) / steps;
                    out.emplace_back(q.first + t * (p.first - q.first), q.second + t * (p.second - q.second));
                }
            }
            out.push_back(p);
            previous = true;
        }
    }
    return out;
}

// A mark's label goes right and below its point, else right and above, left and below, left and above:
// wherever it covers the fewest samples without leaving the frame. Returns the gnuplot label and adds
// the label's area to the samples, so that the key avoids it too.
std::string place_mark(std::size_t k, const Mark& mark, const Axes& axes,
                       std::vector<std::pair<double, double>>& samples) {
    auto [fx, fy] = axes.at(mark.x, mark.y, mark.axis);
    double w = (static_cast<double>(code_points(mark.label).size()) * char_px + 12) / axes.frame_width;
    double h = 20 / axes.frame_height;
    double dx = char_px / axes.frame_width;
    double dy = line_px / axes.frame_height;
    struct Side {
        bool right, below;
    };
    constexpr Side sides[] = {{true, true}, {true, false}, {false, true}, {false, false}};
    std::size_t best = 0, best_cost = std::numeric_limits<std::size_t>::max();
    Area best_area{};
    for (std::size_t i = 0; i < 4; ++i) {
        double left = sides[i].right ? fx + dx : fx - dx - w;
        double middle = sides[i].below ? fy - dy : fy + dy;
        Area area{left, middle - h / 2, left + w, middle + h / 2};
        std::size_t cost = covered(samples, area) + (area.inside_frame() ? 0 : samples.size() + 1);
        if (cost < best_cost) {
            best = i;
            best_cost = cost;
            best_area = area;
        }
    }
    for (int i = 0; i <= 10; ++i) {
        for (int j = 0; j <= 2; ++j) {
            samples.emplace_back(best_area.left + i * (best_area.right - best_area.left) / 10,
                                 best_area.bottom + j * (best_area.top - best_area.bottom) / 2);
        }
    }
    samples.emplace_back(fx, fy);
    const char* y_axis = mark.axis == Axis::left ? "first" : "second";
    return fmt::format("set label {} {} at first {}, {} {} point pt 7 ps 1.5 lc rgb '#000000' offset char {}, char {} "
                       "{} boxed front\n",
                       k + 1, gnuplot_string(mark.label), number(mark.x), y_axis, number(mark.y),
                       sides[best].right ? 1 : -1, sides[best].below ? -1 : 1, sides[best].right ? "left" : "right");
}

// The corner of the frame whose key covers no sample, in order of preference; when every corner has
// data, room along the axis where the key is thinner (a tall key of ten labels takes a fifth of the
// width, but more than a third of the height).
std::string place_key(const std::vector<std::string>& entries, const std::string& title, Axes& axes,
                      const std::vector<std::pair<double, double>>& samples) {
    std::size_t chars = 0;
    for (const std::string& e : entries) {
        chars = std::max(chars, code_points(e).size());
    }
    double lines = static_cast<double>(entries.size() + (title.empty() ? 0 : 1));
    // An entry is its line sample, text and the box's padding; the title is centred above the entries.
    // 0.02 more keeps points' edges off the box.
    double pixels = std::max(static_cast<double>(chars) * char_px + 64,
                             static_cast<double>(code_points(title).size()) * char_px + 20);
    double w = pixels / axes.frame_width + 0.02;
    double h = (lines * line_px + 14) / axes.frame_height + 0.02;
    struct Corner {
        const char* name;
        Area area;
    };
    const Corner corners[] = {{"top right", {1 - w, 1 - h, 1, 1}},
                              {"top left", {0, 1 - h, w, 1}},
                              {"bottom right", {1 - w, 0, 1, h}},
                              {"bottom left", {0, 0, w, h}}};
    for (const Corner& c : corners) {
        if (covered(samples, c.area) == 0) {
            return c.name;
        }
    }
    if (w <= h) {
        make_room(axes.x, axes.log_x, w);
    } else {
        make_room(axes.y, axes.log_y, h);
        if (!axes.y2.empty()) {
            make_room(axes.y2, axes.log_y2, h);
        }
    }
    return "top right";
}

// The ranges, scales, tics, key and marks of a plot, fitted to its layers.
std::string axes_and_key(const std::vector<Layer>& layers, const std::vector<std::string>& key_entries,
                         const std::string& key_title, const PlotOptions& options) {
    Axes axes;
    axes.log_x = options.log_x;
    axes.log_y = options.log_y;
    axes.log_y2 = options.log_y2;
    for (const Layer& layer : layers) {
        for (std::size_t i = 0; i < layer.x.size(); ++i) {
            if (std::isfinite(layer.x[i]) && std::isfinite(layer.y[i])) {
                axes.x.add(layer.x[i]);
                (layer.axis == Axis::left ? axes.y : axes.y2).add(layer.y[i]);
            }
        }
    }
    for (const Mark& m : options.marks) {
        axes.x.add(m.x);
        (m.axis == Axis::left ? axes.y : axes.y2).add(m.y);
    }
    bool left_used = !axes.y.empty();
    bool right_used = !axes.y2.empty();
    axes.x = fit(axes.x, options.log_x);
    // With nothing on the left axis, a range for gnuplot to draw the frame with, and no tics to misread.
    axes.y = left_used ? fit(axes.y, options.log_y) : Range{options.log_y ? 1.0 : 0.0, 10.0};
    if (right_used) {
        axes.y2 = fit(axes.y2, options.log_y2);
    }
    // The frame is the figure less the tick labels, axis labels and title around it (on a small figure,
    // what the text leaves).
    double width = static_cast<double>(options.width), height = static_cast<double>(options.height);
    axes.frame_width = std::max(0.4 * width, width - (right_used ? 190 : 110));
    axes.frame_height = std::max(0.4 * height, height - 110);

    std::vector<std::pair<double, double>> samples = samples_of(layers, axes);
    std::string labels;
    for (std::size_t k = 0; k < options.marks.size(); ++k) {
        labels += place_mark(k, options.marks[k], axes, samples);
    }
    std::string key = "unset key\n";
    if (!key_entries.empty()) {
        key = fmt::format("set key inside {} opaque box lc rgb '#a0a0a8' reverse Left samplen 3{}\n",
                          place_key(key_entries, key_title, axes, samples),
                          key_title.empty() ? "" : " title " + gnuplot_string(key_title));
    }

    std::string s;
    s += options.log_x ? "set logscale x\n" : "";
    s += options.log_y ? "set logscale y\n" : "";
    s += fmt::format("set xrange [{}:{}]\nset yrange [{}:{}]\n", axes.x.lo, axes.x.hi, axes.y.lo, axes.y.hi);
    s += options.log_x ? log_tics("x", axes.x) : "";
    s += options.log_y && left_used ? log_tics("y", axes.y) : "";
    s += left_used ? "" : "unset ytics\nset grid y2tics\n";
    if (right_used) {
        // The left axis's tics would be mirrored onto the right one, beside its own.
        s += left_used ? "set ytics nomirror\nset y2tics\n" : "set y2tics\n";
        s += options.log_y2 ? "set logscale y2\n" : "";
        s += fmt::format("set y2range [{}:{}]\n", axes.y2.lo, axes.y2.hi);
        s += options.log_y2 ? log_tics("y2", axes.y2) : "";
    }
    s += key;
    s += "set style textbox opaque noborder\n";
    s += labels;
    return s;
}

// The command every figure starts with; a figure of panels has it once.
std::string terminal(const PlotOptions& options) {
    return fmt::format("set terminal pngcairo size {},{} noenhanced font ',11'\n", options.width, options.height);
}

// The text around the frame, with which every plot or panel starts. An axis label takes its series'
// colour when it has one series, so that a reader of two axes knows which is whose.
std::string preamble(const std::string& title, const std::string& x_label, const std::string& y_label,
                     const PlotOptions& options, const std::string& y_colour = "", const std::string& y2_colour = "") {
    auto coloured = [](const std::string& c) { return c.empty() ? std::string() : " textcolor rgb '" + c + "'"; };
    std::string s;
    s += fmt::format("set title {}\n", gnuplot_string(title));
    s += fmt::format("set xlabel {}\n", gnuplot_string(x_label));
    s += fmt::format("set ylabel {}{}\n", gnuplot_string(y_label), coloured(y_colour));
    s += fmt::format("set y2label {}{}\n", gnuplot_string(options.y2_label), coloured(y2_colour));
    s += "set grid lc rgb '#d0d0d0'\n";
    return s;
}

// ---------------------------------------------------------------------------------------------------
// Heat maps

// viridis (matplotlib's default map) at nine stops: its lightness rises steadily from the lowest value
// to the highest, so that the colours have an order, also in grey or to a colour-blind eye.
constexpr const char* viridis = "set palette defined (0 '#440154', 1 '#472d7b', 2 '#3b528b', 3 '#2c728e', "
                                "4 '#21918c', 5 '#28ae80', 6 '#5ec962', 7 '#addc30', 8 '#fde725')\n";

// Colours of the point sets over a map, none of them in viridis, so that a dot shows on any cell.
constexpr const char* overlay_colours[] = {"#d62728", "#ff7f0e", "#e377c2", "#000000"};

// The options a heat map has no use for, so that a caller who sets one hears of it.
void check_heatmap_options(const std::string& what, const PlotOptions& options) {
    const std::pair<bool, const char*> unused[] = {
        {options.log_x, "log_x"},           {options.log_y, "log_y"},
        {!options.y2_label.empty(), "y2_label"}, {options.log_y2, "log_y2"},
        {!options.marks.empty(), "marks"},  {!options.label_names.empty(), "label_names"}};
    for (auto [set, name] : unused) {
        if (set) {
            throw_value_error(fmt::format("{}: a heat map takes no {}: leave it at its default", what, name));
        }
    }
}

// The centres of a map's cells along one axis: gnuplot's `with image` needs them evenly spaced, and
// would draw an uneven grid with only a warning. Returns the step.
double grid_step(const std::string& what, std::string_view name, const std::vector<double>& v) {
    if (v.size() < 2) {
        throw_value_error(fmt::format("{}: {} needs at least 2 values, for cells of a known size: got {}", what,
                                      name, v.size()));
    }
    for (std::size_t i = 0; i < v.size(); ++i) {
        if (!std::isfinite(v[i])) {
            throw_value_error(fmt::format("{}: {}[{}] is not finite: {}", what, name, i, v[i]));
        }
        if (i > 0 && !(v[i] > v[i - 1])) {
            throw_value_error(fmt::format("{}: {} must increase: {}[{}] = {} after {}[{}] = {}", what, name, name, i,
                                          v[i], name, i - 1, v[i - 1]));
        }
    }
    double step = (v.back() - v.front()) / double(v.size() - 1);
    for (std::size_t i = 1; i + 1 < v.size(); ++i) {
        double even = v.front() + double(i) * step;
        if (std::fabs(v[i] - even) > 1e-6 * step) {
            throw_value_error(fmt::format("{}: {} must increase in even steps (of {} here): {}[{}] = {}, not {}", what,
                                          name, step, name, i, v[i], even));
        }
    }
    return step;
}

void check_heatmap_values(const std::string& what, const std::vector<double>& xs, const std::vector<double>& ys,
                          const Array<double>& values, bool log_cb) {
    if (values.dimension() != 2 || values.shape()[0] != ys.size() || values.shape()[1] != xs.size()) {
        throw_shape_error(fmt::format("{}: values must be (ys, xs) = ({}, {}), a row per y: got {}", what, ys.size(),
                                      xs.size(), to_string(values.shape())));
    }
    bool any = false;
    for (std::size_t i = 0; i < ys.size(); ++i) {
        for (std::size_t j = 0; j < xs.size(); ++j) {
            double v = values(i, j);
            any = any || std::isfinite(v);
            if (log_cb && std::isfinite(v) && v <= 0) {
                throw_value_error(fmt::format("{}: log colour scale needs positive values: values({}, {}) = {}",
                                              what, i, j, v));
            }
        }
    }
    if (!any) {
        throw_value_error(fmt::format("{}: no finite value to plot: {} values", what, values.size()));
    }
}

void check_overlays(const std::string& what, const std::vector<Series>& sets) {
    if (sets.size() > std::size(overlay_colours)) {
        throw_value_error(fmt::format("{}: at most {} point sets over a heat map: got {}", what,
                                      std::size(overlay_colours), sets.size()));
    }
    for (const Series& s : sets) {
        std::string owner = fmt::format("point set {}", gnuplot_string(s.name));
        if (s.x.size() != s.y.size()) {
            throw_shape_error(fmt::format("{}: {} has {} x values and {} y values", what, owner, s.x.size(),
                                          s.y.size()));
        }
        if (s.axis != Axis::left) {
            throw_value_error(fmt::format("{}: {} is on the right axis: a heat map has none", what, owner));
        }
        if (!any_finite_point(s.x, s.y)) {
            throw_value_error(fmt::format("{}: {} has no finite point: {} points", what, owner, s.x.size()));
        }
    }
}

// The colour box's range: the finite values, or around the one value they all share.
Range colour_range(const Array<double>& values, bool log_cb) {
    Range r;
    for (double v : values) {
        if (std::isfinite(v)) {
            r.add(v);
        }
    }
    return r.hi > r.lo ? r : fit(r, log_cb);
}

}  // namespace

std::string detail::plot_lines_script(const std::string& path, const std::string& title, const std::string& x_label,
                                      const std::string& y_label, const std::vector<Series>& series,
                                      const PlotOptions& options) {
    std::string what = figure_name(path);
    check_plot_options(what, options);
    if (series.empty()) {
        throw_value_error(fmt::format("{}: no series to plot", what));
    }
    for (const auto& s : series) {
        std::string owner = fmt::format("series {}", gnuplot_string(s.name));
        if (s.x.size() != s.y.size()) {
            throw_shape_error(fmt::format("{}: {} has {} x values and {} y values", what, owner, s.x.size(),
                                          s.y.size()));
        }
        // gnuplot stops at a series with nothing to draw ("all points undefined"), with a message about
        // its own script rather than the data.
        if (!any_finite_point(s.x, s.y)) {
            throw_value_error(fmt::format("{}: {} has no finite point: {} points", what, owner, s.x.size()));
        }
        check_log_axis(what, "x", options.log_x, s.x, owner);
        bool right = s.axis == Axis::right;
        check_log_axis(what, right ? "y2" : "y", right ? options.log_y2 : options.log_y, s.y, owner);
    }
    check_marks(what, options);

    // Lines on both axes: each says in the key, and its axis's label in its colour, which axis is its.
    auto count_on = [&](Axis axis) {
        return std::count_if(series.begin(), series.end(), [&](const Series& s) { return s.axis == axis; });
    };
    bool two_axes = count_on(Axis::left) > 0 && count_on(Axis::right) > 0;
    std::vector<Layer> layers;
    std::vector<std::string> titles(series.size());
    std::vector<std::string> entries;
    std::string axis_colour[2];  // of the last series on each axis
    for (std::size_t k = 0; k < series.size(); ++k) {
        const Series& s = series[k];
        layers.push_back({s.x, s.y, s.axis, true});
        int side = s.axis == Axis::left ? 0 : 1;
        axis_colour[side] = colour(k);
        if (!s.name.empty()) {
            titles[k] = s.name + (!two_axes ? "" : side == 0 ? " (left axis)" : " (right axis)");
            entries.push_back(titles[k]);
        }
    }
    std::string script = terminal(options) + preamble(title, x_label, y_label, options,
                                  two_axes && count_on(Axis::left) == 1 ? axis_colour[0] : "",
                                  two_axes && count_on(Axis::right) == 1 ? axis_colour[1] : "");
    script += axes_and_key(layers, entries, "", options);
    for (std::size_t k = 0; k < series.size(); ++k) {
        script += fmt::format("$s{} << EOD\n", k);
        for (std::size_t i = 0; i < series[k].x.size(); ++i) {
            script += fmt::format("{} {}\n", number(series[k].x[i]), number(series[k].y[i]));
        }
        script += "EOD\n";
    }
    script += "plot ";
    for (std::size_t k = 0; k < series.size(); ++k) {
        const Series& s = series[k];
        std::string style = s.x.size() <= 30 ? "linespoints pt 7 ps 0.8" : "lines";
        std::string key = titles[k].empty() ? "notitle" : "title " + gnuplot_string(titles[k]);
        script += fmt::format("{}$s{} using 1:2{} with {} lw 2 lc rgb '{}' {}", k == 0 ? "" : ", \\\n    ", k,
                              s.axis == Axis::right ? " axes x1y2" : "", style, colour(k), key);
    }
    script += "\n";
    return script;
}

namespace {

// A scatter plot's commands after the terminal's, checked; `what` starts the messages.
std::string scatter_commands(const std::string& what, const std::string& title, const std::string& x_label,
                             const std::string& y_label, const std::vector<double>& x, const std::vector<double>& y,
                             const std::vector<std::int64_t>& labels, const PlotOptions& options) {
    if (x.size() != y.size() || (!labels.empty() && labels.size() != x.size())) {
        throw_shape_error(fmt::format("{}: x, y and labels differ in length: {}, {} and {} values", what, x.size(),
                                      y.size(), labels.size()));
    }
    if (!any_finite_point(x, y)) {
        throw_value_error(fmt::format("{}: no finite point to plot: {} points", what, x.size()));
    }
    check_log_axis(what, "x", options.log_x, x, "the data");
    check_log_axis(what, "y", options.log_y, y, "the data");
    check_marks(what, options);
    const auto& names = options.label_names;
    if (!names.empty()) {
        for (std::int64_t label : labels) {
            if (label < 0 || static_cast<std::size_t>(label) >= names.size()) {
                throw_value_error(fmt::format("{}: label {} has no name: {} label_names, for labels 0 to {}", what,
                                              label, names.size(), names.size() - 1));
            }
        }
    }

    // One data block per label, in increasing order, so that the key lists the labels sorted.
    std::map<std::int64_t, std::string> blocks;
    for (std::size_t i = 0; i < x.size(); ++i) {
        blocks[labels.empty() ? 0 : labels[i]] += fmt::format("{} {}\n", number(x[i]), number(y[i]));
    }
    std::vector<std::string> titles;
    for (const auto& entry : blocks) {
        titles.push_back(names.empty() ? fmt::format("{}", entry.first) : names[static_cast<std::size_t>(entry.first)]);
    }
    bool keyed = !labels.empty() && blocks.size() <= 20;
    std::string script = preamble(title, x_label, y_label, options);
    // Names speak for themselves; bare numbers need saying what they are.
    std::string key_title = !options.key_title.empty() ? options.key_title : names.empty() ? "label" : "";
    script += axes_and_key({{x, y, Axis::left, false}}, keyed ? titles : std::vector<std::string>{}, key_title,
                           options);
    std::size_t k = 0;
    for (const auto& [label, rows] : blocks) {
        script += fmt::format("$l{} << EOD\n{}EOD\n", k++, rows);
    }
    // Smaller points where there are many, so that clusters stay visible instead of a solid blot.
    double point_size = x.size() > 2000 ? 0.4 : 0.8;
    script += "plot ";
    for (k = 0; k < blocks.size(); ++k) {
        script += fmt::format("{}$l{} using 1:2 with points pt 7 ps {} lc rgb '{}' title {}", k == 0 ? "" : ", \\\n    ",
                              k, point_size, colour(k), gnuplot_string(titles[k]));
    }
    script += "\n";
    return script;
}

}  // namespace

std::string detail::plot_scatter_script(const std::string& path, const std::string& title, const std::string& x_label,
                                        const std::string& y_label, const std::vector<double>& x,
                                        const std::vector<double>& y, const std::vector<std::int64_t>& labels,
                                        const PlotOptions& options) {
    std::string what = figure_name(path);
    check_plot_options(what, options);
    return terminal(options) + scatter_commands(what, title, x_label, y_label, x, y, labels, options);
}

std::string detail::plot_scatter_panels_script(const std::string& path, const std::string& title,
                                               const std::vector<ScatterPanel>& panels, const PlotOptions& options) {
    std::string what = figure_name(path);
    check_plot_options(what, options);
    if (panels.empty()) {
        throw_value_error(fmt::format("{}: no panels to plot", what));
    }
    if (!options.marks.empty()) {
        throw_value_error(fmt::format("{}: a figure of panels takes no marks: {} given, and no panel to put them in",
                                      what, options.marks.size()));
    }
    // Each panel fits its axes and places its key in its share of the width, below the figure's title.
    PlotOptions panel_options = options;
    panel_options.width = options.width / panels.size();
    panel_options.height = options.height - 30;
    std::string script = terminal(options);
    script += fmt::format("set multiplot layout 1,{} title {} font ',13'\n", panels.size(), gnuplot_string(title));
    for (std::size_t k = 0; k < panels.size(); ++k) {
        const ScatterPanel& p = panels[k];
        // reset: a panel's ranges, scales and key are its own, not left over from the one before.
        script += k == 0 ? "" : "reset\n";
        script += scatter_commands(fmt::format("{}: panel {} {}", what, k + 1, gnuplot_string(p.title)), p.title,
                                   p.x_label, p.y_label, p.x, p.y, p.labels, panel_options);
    }
    script += "unset multiplot\n";
    return script;
}

std::string detail::plot_heatmap_script(const std::string& path, const std::string& title, const std::string& x_label,
                                        const std::string& y_label, const std::vector<double>& xs,
                                        const std::vector<double>& ys, const Array<double>& values,
                                        const PlotOptions& options) {
    std::string what = figure_name(path);
    check_plot_options(what, options);
    check_heatmap_options(what, options);
    double dx = grid_step(what, "xs", xs);
    double dy = grid_step(what, "ys", ys);
    check_heatmap_values(what, xs, ys, values, options.log_cb);
    check_overlays(what, options.points);

    std::string script = terminal(options) + preamble(title, x_label, y_label, options);
    // Grid lines would lie under the map, unseen; ticks outside keep off its cells.
    script += "unset grid\nset tics out\n";
    script += viridis;
    Range cb = colour_range(values, options.log_cb);
    script += options.log_cb ? "set logscale cb\n" : "";
    script += fmt::format("set cbrange [{}:{}]\n", cb.lo, cb.hi);
    // %g: gnuplot's default writes 1e-5 as 0.00001, 1 as 1.00000, wider than the room right of the box.
    script += options.log_cb ? "set format cb '%g'\n" + log_tics("cb", cb) : "";
    // gnuplot leaves no room right of the frame for the box's tic labels and its label: 18 characters,
    // for labels such as 0.0001 and the label's line.
    script += fmt::format("set cblabel {}\nset rmargin 18\n", gnuplot_string(options.cb_label));
    script += fmt::format("set xrange [{}:{}]\nset yrange [{}:{}]\n", xs.front() - dx / 2, xs.back() + dx / 2,
                          ys.front() - dy / 2, ys.back() + dy / 2);
    // Below the plot: inside the frame every corner is map.
    bool keyed = std::any_of(options.points.begin(), options.points.end(),
                             [](const Series& s) { return !s.name.empty(); });
    script += !keyed ? "unset key\n"
                     : fmt::format("set key below horizontal samplen 1{}\n",
                                   options.key_title.empty() ? "" : " title " + gnuplot_string(options.key_title));
    script += "$map << EOD\n";
    for (std::size_t i = 0; i < ys.size(); ++i) {
        for (std::size_t j = 0; j < xs.size(); ++j) {
            script += fmt::format("{} {} {}\n", number(xs[j]), number(ys[i]), number(values(i, j)));
        }
    }
    script += "EOD\n";
    for (std::size_t k = 0; k < options.points.size(); ++k) {
        script += fmt::format("$p{} << EOD\n", k);
        for (std::size_t i = 0; i < options.points[k].x.size(); ++i) {
            script += fmt::format("{} {}\n", number(options.points[k].x[i]), number(options.points[k].y[i]));
        }
        script += "EOD\n";
    }
    script += "plot $map using 1:2:3 with image notitle";
    for (std::size_t k = 0; k < options.points.size(); ++k) {
        const Series& s = options.points[k];
        // Smaller dots where there are many; each on a black disc a little larger, its rim.
        auto [size, rim] = s.x.size() > 500 ? std::pair{0.5, 0.7} : std::pair{0.8, 1.1};
        std::string key = s.name.empty() ? "notitle" : "title " + gnuplot_string(s.name);
        script += fmt::format(", \\\n    $p{0} using 1:2 with points pt 7 ps {1} lc rgb '#000000' notitle, \\\n"
                              "    $p{0} using 1:2 with points pt 7 ps {2} lc rgb '{3}' {4}",
                              k, rim, size, overlay_colours[k], key);
    }
    script += "\n";
    return script;
}

void plot_lines(const std::string& path, const std::string& title, const std::string& x_label,
                const std::string& y_label, const std::vector<Series>& series, PlotOptions options) {
    std::string script = detail::plot_lines_script(path, title, x_label, y_label, series, options);
    std::string what = figure_name(path);
    nn::detail::write_file_atomically(path, run_gnuplot(what, options.gnuplot, script), what);
}

void plot_scatter(const std::string& path, const std::string& title, const std::string& x_label,
                  const std::string& y_label, const std::vector<double>& x, const std::vector<double>& y,
                  const std::vector<std::int64_t>& labels, PlotOptions options) {
    std::string script = detail::plot_scatter_script(path, title, x_label, y_label, x, y, labels, options);
    std::string what = figure_name(path);
    nn::detail::write_file_atomically(path, run_gnuplot(what, options.gnuplot, script), what);
}

void plot_scatter_panels(const std::string& path, const std::string& title, const std::vector<ScatterPanel>& panels,
                         PlotOptions options) {
    std::string script = detail::plot_scatter_panels_script(path, title, panels, options);
    std::string what = figure_name(path);
    nn::detail::write_file_atomically(path, run_gnuplot(what, options.gnuplot, script), what);
}

void plot_heatmap(const std::string& path, const std::string& title, const std::string& x_label,
                  const std::string& y_label, const std::vector<double>& xs, const std::vector<double>& ys,
                  const Array<double>& values, PlotOptions options) {
    std::string script = detail::plot_heatmap_script(path, title, x_label, y_label, xs, ys, values, options);
    std::string what = figure_name(path);
    nn::detail::write_file_atomically(path, run_gnuplot(what, options.gnuplot, script), what);
}

}  // namespace tapegrad::models
