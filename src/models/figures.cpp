#include "tapegrad/models/figures.hpp"

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <map>
#include <string_view>

#include <fmt/format.h>
#include <stb_image_write.h>

#include "tapegrad/nn/file.hpp"

extern char** environ;

namespace tapegrad::models {

namespace detail {
void throw_figure_error(std::string message) { throw FigureError(std::move(message)); }
}  // namespace detail

namespace {

using tapegrad::detail::throw_shape_error;
using tapegrad::detail::throw_value_error;

std::string figure_name(const std::string& path) { return fmt::format("figure {}", path); }

// ---------------------------------------------------------------------------------------------------
// Image grids

// Where one image goes on the canvas: its first value and its top-left corner.
struct Placement {
    const float* image;
    std::size_t left;
    std::size_t top;
};

struct Canvas {
    std::size_t width = 0;
    std::size_t height = 0;
};

void check_grid_arguments(const std::string& what, const Array<float>& images, std::size_t image_height,
                          std::size_t image_width, const ImageGridOptions& options) {
    if (image_height == 0 || image_width == 0) {
        throw_value_error(fmt::format("{}: images must be at least 1 x 1: got {} x {}", what, image_height,
                                      image_width));
    }
    if (options.scale == 0) {
        throw_value_error(fmt::format("{}: scale must be at least 1: got 0", what));
    }
    if (!(options.gap_value >= 0.0f && options.gap_value <= 1.0f)) {
        throw_value_error(fmt::format("{}: gap_value must be in [0, 1]: got {}", what, options.gap_value));
    }
    if (images.dimension() != 2) {
        throw_shape_error(fmt::format("{}: images must be 2-D (samples, height * width): got {}", what,
                                      to_string(images.shape())));
    }
    if (images.shape()[1] != image_height * image_width) {
        throw_shape_error(fmt::format("{}: {} x {} images need {} values a row: got {}", what, image_height,
                                      image_width, image_height * image_width, to_string(images.shape())));
    }
    if (images.shape()[0] == 0) {
        throw_value_error(fmt::format("{}: no images to draw: got {}", what, to_string(images.shape())));
    }
    // A pixel that is not a number has no grey; drawing it black would hide a diverged model.
    const float* data = images.data();
    for (std::size_t k = 0; k < images.size(); ++k) {
        if (!std::isfinite(data[k])) {
            std::size_t n = k / images.shape()[1];
            throw_value_error(fmt::format("{}: image {} has a non-finite value: {} at pixel {}", what, n, data[k],
                                          k % images.shape()[1]));
        }
    }
}

std::uint8_t to_grey(float v) { return static_cast<std::uint8_t>(std::lround(std::clamp(v, 0.0f, 1.0f) * 255.0f)); }

// Draws the placed images (each upscaled by nearest neighbour) on a canvas of gap grey, encodes it as
// PNG in memory and writes it atomically.
void render(const std::string& path, const std::vector<Placement>& placements, Canvas canvas,
            std::size_t image_height, std::size_t image_width, const ImageGridOptions& options) {
    std::string what = figure_name(path);
    // stb takes int sizes; a larger grid would not be one anybody opens anyway.
    if (canvas.width > 32768 || canvas.height > 32768) {
        throw_value_error(fmt::format("{}: image too large: {} x {} pixels, at most 32768 a side", what,
                                      canvas.width, canvas.height));
    }
    std::vector<std::uint8_t> pixels(canvas.width * canvas.height, to_grey(options.gap_value));
    std::size_t scale = options.scale;
    for (const Placement& at : placements) {
        for (std::size_t r = 0; r < image_height * scale; ++r) {
            std::uint8_t* row = pixels.data() + (at.top + r) * canvas.width + at.left;
            const float* src = at.image + (r / scale) * image_width;
            for (std::size_t c = 0; c < image_width * scale; ++c) {
                row[c] = to_grey(src[c / scale]);
            }
        }
    }
    std::string png;
    auto append = [](void* context, void* data, int size) {
        static_cast<std::string*>(context)->append(static_cast<const char*>(data), static_cast<std::size_t>(size));
    };
    int w = static_cast<int>(canvas.width);
    int h = static_cast<int>(canvas.height);
    if (stbi_write_png_to_func(append, &png, w, h, 1, pixels.data(), w) == 0) {
        detail::throw_figure_error(fmt::format("{}: png encoding failed: {} x {} pixels", what, w, h));
    }
    nn::detail::write_file_atomically(path, png, what);
}

// ---------------------------------------------------------------------------------------------------
// gnuplot

// A temporary file that is removed when it goes out of scope, whatever happens in between.
struct TempFile {
    std::string path;
    int fd = -1;

    TempFile(const std::string& what, const char* suffix) {
        auto dir = std::filesystem::temp_directory_path();
        std::string name = (dir / fmt::format("tapegrad-figure-XXXXXX{}", suffix)).string();
        fd = ::mkostemps(name.data(), static_cast<int>(std::strlen(suffix)), O_CLOEXEC);
        if (fd < 0) {
            detail::throw_figure_error(fmt::format("{}: cannot create a temporary file in {}: {}", what,
                                                   dir.string(), std::strerror(errno)));
        }
        path = name;
    }
    TempFile(const TempFile&) = delete;
    TempFile& operator=(const TempFile&) = delete;
    ~TempFile() {
        if (fd >= 0) {
            ::close(fd);
        }
        ::unlink(path.c_str());
    }
};

void write_all(const std::string& what, int fd, std::string_view bytes) {
    while (!bytes.empty()) {
        ssize_t n = ::write(fd, bytes.data(), bytes.size());
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            detail::throw_figure_error(fmt::format("{}: cannot write the gnuplot script: {}", what,
                                                   std::strerror(errno)));
        }
        bytes.remove_prefix(static_cast<std::size_t>(n));
    }
}

std::string read_all(int fd) {
    std::string out;
    char buffer[65536];
    for (;;) {
        ssize_t n = ::read(fd, buffer, sizeof buffer);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            return out;
        }
        out.append(buffer, static_cast<std::size_t>(n));
    }
}

// What gnuplot said, without the blank lines around it and short enough for a message.
std::string tidy(std::string text) {
    auto first = text.find_first_not_of(" \t\r\n");
    if (first == std::string::npos) {
        return "";
    }
    text = text.substr(first, text.find_last_not_of(" \t\r\n") - first + 1);
    if (text.size() > 2000) {
        text = text.substr(0, 2000) + " ...";
    }
    return text;
}

// Runs `program -d script` (-d: without the user's ~/.gnuplot, so every machine draws the same figure)
// and returns the PNG it wrote to its standard output. Its standard error goes to a temporary file
// rather than a second pipe: a pipe would have to be drained while stdout is read, or gnuplot could
// block on a full one.
std::string run_gnuplot(const std::string& what, const std::string& program, const std::string& script) {
    TempFile script_file(what, ".gp");
    write_all(what, script_file.fd, script);
    TempFile errors(what, ".err");

    int out[2];
    if (::pipe2(out, O_CLOEXEC) != 0) {
        detail::throw_figure_error(fmt::format("{}: cannot run gnuplot: pipe: {}", what, std::strerror(errno)));
    }
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&actions, out[1], 1);
    posix_spawn_file_actions_adddup2(&actions, errors.fd, 2);
    std::string dash_d = "-d";
    std::vector<char*> argv{const_cast<char*>(program.c_str()), dash_d.data(), script_file.path.data(), nullptr};
    pid_t pid = 0;
    int spawned = ::posix_spawnp(&pid, program.c_str(), &actions, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    ::close(out[1]);
    if (spawned != 0) {
        ::close(out[0]);
        if (spawned == ENOENT) {
            std::string where = program == "gnuplot" ? "" : fmt::format(" at {}", program);
            detail::throw_figure_error(fmt::format("{}: gnuplot not found{}: install gnuplot-nox", what, where));
        }
        detail::throw_figure_error(fmt::format("{}: cannot run {}: {}", what, program, std::strerror(spawned)));
    }
    std::string png = read_all(out[0]);
    ::close(out[0]);
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    ::lseek(errors.fd, 0, SEEK_SET);
    std::string said = tidy(read_all(errors.fd));
    std::string detail_text = said.empty() ? "" : ": " + said;
    if (WIFSIGNALED(status)) {
        detail::throw_figure_error(fmt::format("{}: gnuplot killed by signal {}{}", what, WTERMSIG(status),
                                               detail_text));
    }
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        detail::throw_figure_error(fmt::format("{}: gnuplot failed with exit status {}{}", what,
                                               WEXITSTATUS(status), detail_text));
    }
    constexpr std::string_view signature("\x89PNG\r\n\x1a\n", 8);
    if (png.size() < signature.size() || std::string_view(png).substr(0, signature.size()) != signature) {
        detail::throw_figure_error(fmt::format("{}: gnuplot wrote no png: {} bytes on its output{}", what,
                                               png.size(), detail_text));
    }
    return png;
}

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

// The commands every plot starts with: the terminal, the text, the axes.
std::string preamble(const std::string& title, const std::string& x_label, const std::string& y_label,
                     const PlotOptions& options) {
    std::string s;
    s += fmt::format("set terminal pngcairo size {},{} noenhanced font ',11'\n", options.width, options.height);
    s += fmt::format("set title {}\n", gnuplot_string(title));
    s += fmt::format("set xlabel {}\n", gnuplot_string(x_label));
    s += fmt::format("set ylabel {}\n", gnuplot_string(y_label));
    s += "set grid lc rgb '#d0d0d0'\n";
    // Linear axes fit the data rather than widen to the next round tick (epochs 1..100 would get an axis
    // from -20 to 120), with a little room so that extreme points are not drawn on the border. Log axes
    // do widen, to whole decades: fitted, they may show one labelled tick or none.
    s += "set offsets graph 0.02, graph 0.02, graph 0.04, graph 0.04\n";
    s += options.log_x ? "set logscale x\n" : "set autoscale xfix\n";
    s += options.log_y ? "set logscale y\n" : "set autoscale yfix\n";
    // Outside the plot, the key never hides a line or a cluster.
    s += "set key outside right top\n";
    return s;
}

// Points a log axis could not place: gnuplot would drop them with only a warning.
void check_log_axis(const std::string& what, char axis, bool log, const std::vector<double>& values,
                    std::string_view owner) {
    if (!log) {
        return;
    }
    for (std::size_t i = 0; i < values.size(); ++i) {
        if (std::isfinite(values[i]) && values[i] <= 0) {
            throw_value_error(fmt::format("{}: log {} axis needs positive values: {} has {}[{}] = {}", what, axis,
                                          owner, axis, i, values[i]));
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

}  // namespace

void write_image_grid(const std::string& path, const Array<float>& images, std::size_t image_height,
                      std::size_t image_width, std::size_t columns, ImageGridOptions options) {
    std::string what = figure_name(path);
    if (columns == 0) {
        throw_value_error(fmt::format("{}: columns must be at least 1: got 0", what));
    }
    check_grid_arguments(what, images, image_height, image_width, options);
    std::size_t n = images.shape()[0];
    std::size_t cols = std::min(columns, n);
    std::size_t rows = (n + cols - 1) / cols;
    std::size_t cell_w = image_width * options.scale + options.gap;
    std::size_t cell_h = image_height * options.scale + options.gap;
    Canvas canvas{cols * cell_w + options.gap, rows * cell_h + options.gap};
    std::vector<Placement> placements;
    for (std::size_t i = 0; i < n; ++i) {
        placements.push_back({images.data() + i * images.shape()[1], options.gap + (i % cols) * cell_w,
                              options.gap + (i / cols) * cell_h});
    }
    render(path, placements, canvas, image_height, image_width, options);
}

void write_comparison(const std::string& path, const std::vector<Array<float>>& sets, std::size_t image_height,
                      std::size_t image_width, std::size_t columns, ImageGridOptions options) {
    std::string what = figure_name(path);
    if (sets.empty()) {
        throw_value_error(fmt::format("{}: no sets of images to compare", what));
    }
    for (std::size_t s = 0; s < sets.size(); ++s) {
        check_grid_arguments(fmt::format("{}: set {}", what, s), sets[s], image_height, image_width, options);
        if (sets[s].shape()[0] != sets[0].shape()[0]) {
            throw_shape_error(fmt::format("{}: sets differ in size: set 0 has {} images, set {} has {}", what,
                                          sets[0].shape()[0], s, sets[s].shape()[0]));
        }
    }
    std::size_t n = sets[0].shape()[0];
    std::size_t cols = columns == 0 ? n : std::min(columns, n);
    std::size_t chunks = (n + cols - 1) / cols;
    std::size_t cell_w = image_width * options.scale + options.gap;
    std::size_t cell_h = image_height * options.scale + options.gap;
    // One block per chunk of columns, each a row per set. Blocks are 4 * gap apart against gap between
    // rows, so that the eye groups the rows of a block (one extra gap was too little to see).
    std::size_t block_h = sets.size() * cell_h + 3 * options.gap;
    Canvas canvas{cols * cell_w + options.gap, options.gap + chunks * block_h - 3 * options.gap};
    std::vector<Placement> placements;
    for (std::size_t i = 0; i < n; ++i) {
        for (std::size_t s = 0; s < sets.size(); ++s) {
            std::size_t top = options.gap + (i / cols) * block_h + s * cell_h;
            placements.push_back({sets[s].data() + i * sets[s].shape()[1], options.gap + (i % cols) * cell_w, top});
        }
    }
    render(path, placements, canvas, image_height, image_width, options);
}

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
        check_log_axis(what, 'x', options.log_x, s.x, owner);
        check_log_axis(what, 'y', options.log_y, s.y, owner);
    }
    std::string script = preamble(title, x_label, y_label, options);
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
        std::string key = s.name.empty() ? "notitle" : "title " + gnuplot_string(s.name);
        script += fmt::format("{}$s{} using 1:2 with {} lw 2 lc rgb '{}' {}", k == 0 ? "" : ", \\\n    ", k,
                              style, colour(k), key);
    }
    script += "\n";
    return script;
}

std::string detail::plot_scatter_script(const std::string& path, const std::string& title, const std::string& x_label,
                                        const std::string& y_label, const std::vector<double>& x,
                                        const std::vector<double>& y, const std::vector<std::int64_t>& labels,
                                        const PlotOptions& options) {
    std::string what = figure_name(path);
    check_plot_options(what, options);
    if (x.size() != y.size() || (!labels.empty() && labels.size() != x.size())) {
        throw_shape_error(fmt::format("{}: x, y and labels differ in length: {}, {} and {} values", what, x.size(),
                                      y.size(), labels.size()));
    }
    if (!any_finite_point(x, y)) {
        throw_value_error(fmt::format("{}: no finite point to plot: {} points", what, x.size()));
    }
    check_log_axis(what, 'x', options.log_x, x, "the data");
    check_log_axis(what, 'y', options.log_y, y, "the data");

    // One data block per label, in increasing order, so that the key lists the labels sorted.
    std::map<std::int64_t, std::string> blocks;
    for (std::size_t i = 0; i < x.size(); ++i) {
        blocks[labels.empty() ? 0 : labels[i]] += fmt::format("{} {}\n", number(x[i]), number(y[i]));
    }
    std::string script = preamble(title, x_label, y_label, options);
    if (labels.empty() || blocks.size() > 20) {
        script += "unset key\n";
    } else {
        script += "set key title 'label'\n";
    }
    std::size_t k = 0;
    for (const auto& [label, rows] : blocks) {
        script += fmt::format("$l{} << EOD\n{}EOD\n", k++, rows);
    }
    // Smaller points where there are many, so that clusters stay visible instead of a solid blot.
    double point_size = x.size() > 2000 ? 0.4 : 0.8;
    script += "plot ";
    k = 0;
    for (const auto& entry : blocks) {
        script += fmt::format("{}$l{} using 1:2 with points pt 7 ps {} lc rgb '{}' title {}", k == 0 ? "" : ", \\\n    ",
                              k, point_size, colour(k), gnuplot_string(fmt::format("{}", entry.first)));
        ++k;
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

}  // namespace tapegrad::models
