#include "tapegrad/models/figures.hpp"

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <map>
#include <optional>
#include <string_view>

#include <fmt/format.h>
#include <stb_image_write.h>
#include <stb_truetype.h>

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

// Everything left to read from a file descriptor, up to its end or an error.
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

// ---------------------------------------------------------------------------------------------------
// Image grids

// Where images go on a canvas: `columns` cells a row, `rows` rows split evenly into `blocks`, a column of
// row labels on the left.
struct Layout {
    std::size_t columns = 0;
    std::size_t rows = 0;
    std::size_t blocks = 1;
    std::size_t image_height = 0;  // in pixels once render() has scaled them
    std::size_t image_width = 0;
    std::size_t gap = 0;
    std::size_t label_width = 0;  // 0 without row labels

    std::size_t left(std::size_t column) const { return label_width + gap + column * (image_width + gap); }
    // Blocks are 4 * gap apart against gap between rows, so that the eye groups the rows of a block (one
    // extra gap was too little to see).
    std::size_t top(std::size_t row) const {
        return gap + row * (image_height + gap) + row / (rows / blocks) * 3 * gap;
    }
    std::size_t width() const { return left(columns); }
    std::size_t height() const { return gap + rows * (image_height + gap) + (blocks - 1) * 3 * gap; }
};

// One image and its cell.
struct Cell {
    const float* image;
    std::size_t column;
    std::size_t row;
};

void check_grid_arguments(const std::string& what, const Array<float>& images, std::size_t image_height,
                          std::size_t image_width, const ImageGridOptions& options) {
    if (image_height == 0 || image_width == 0) {
        throw_value_error(fmt::format("{}: images must be at least 1 x 1: got {} x {}", what, image_height,
                                      image_width));
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

// The scale the options ask for, or the smallest that makes images min_side long and the figure
// min_height high, stopping at images 4 * min_side long: height alone does not justify a wall of pixels.
std::size_t choose_scale(const ImageGridOptions& options, Layout layout) {
    if (options.scale != 0) {
        return options.scale;
    }
    std::size_t longer = std::max(layout.image_height, layout.image_width);
    std::size_t scale = std::max<std::size_t>(1, (options.min_side + longer - 1) / longer);
    std::size_t cap = std::max(scale, 4 * options.min_side / longer);
    Layout scaled = layout;
    for (;; ++scale) {
        scaled.image_height = layout.image_height * scale;
        if (scale >= cap || scaled.height() >= options.min_height) {
            return scale;
        }
    }
}

// DejaVu Sans: the font gnuplot's figures fall back to on Debian, so that grids and plots match.
constexpr const char* default_font = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf";

// The code points of UTF-8 text; a byte that starts no valid sequence reads as U+FFFD, a control
// character as a space.
std::vector<int> code_points(std::string_view text) {
    std::vector<int> out;
    for (std::size_t i = 0; i < text.size();) {
        auto byte = [&](std::size_t k) { return static_cast<unsigned char>(text[k]); };
        unsigned char b = byte(i);
        std::size_t length = b < 0x80 ? 1 : (b >> 5) == 0x6 ? 2 : (b >> 4) == 0xe ? 3 : (b >> 3) == 0x1e ? 4 : 0;
        bool valid = length != 0 && i + length <= text.size();
        int cp = length == 1 ? b : b & (0x7f >> length);
        for (std::size_t k = 1; valid && k < length; ++k) {
            valid = (byte(i + k) & 0xc0) == 0x80;
            cp = (cp << 6) | (byte(i + k) & 0x3f);
        }
        out.push_back(!valid ? 0xfffd : cp < 0x20 || cp == 0x7f ? ' ' : cp);
        i += valid ? length : 1;
    }
    return out;
}

// A TrueType font at one pixel height, drawing black text on a grey canvas.
class Font {
public:
    Font(const std::string& what, const std::string& path, float pixel_height) {
        int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
        if (fd < 0) {
            std::string hint = path == default_font ? ": install fonts-dejavu-core" : "";
            detail::throw_figure_error(fmt::format("{}: cannot read the font {}: {}{}", what, path,
                                                   std::strerror(errno), hint));
        }
        bytes_ = read_all(fd);
        ::close(fd);
        const auto* data = reinterpret_cast<const unsigned char*>(bytes_.data());
        // stb reads the tables the header points to without bounds checks: only a file that starts like a
        // font gets that far.
        int offset = bytes_.size() < 12 ? -1 : stbtt_GetFontOffsetForIndex(data, 0);
        if (offset < 0 || stbtt_InitFont(&info_, data, offset) == 0) {
            detail::throw_figure_error(fmt::format("{}: {} is not a TrueType font", what, path));
        }
        scale_ = stbtt_ScaleForPixelHeight(&info_, pixel_height);
        int line_gap = 0;
        stbtt_GetFontVMetrics(&info_, &ascent_, &descent_, &line_gap);
    }
    Font(const Font&) = delete;  // info_ points into bytes_
    Font& operator=(const Font&) = delete;

    std::size_t height() const { return static_cast<std::size_t>(std::ceil((ascent_ - descent_) * scale_)); }

    std::size_t width(std::string_view text) const {
        float pen = 0;
        for_each_glyph(text, [&](int, float x) { pen = x; });
        return static_cast<std::size_t>(std::ceil(pen));
    }

    // Draws `text` with its top left at (left, top), blending into `pixels` (canvas_width a row) only
    // inside `clip`: a label never spills onto an image.
    void draw(std::vector<std::uint8_t>& pixels, std::size_t canvas_width, std::size_t left, std::size_t top,
              std::string_view text, const std::array<std::size_t, 4>& clip) const {
        int baseline = static_cast<int>(top) + static_cast<int>(std::lround(ascent_ * scale_));
        std::vector<unsigned char> glyph;
        for_each_glyph(text, [&](int cp, float pen_before) {
            if (cp == 0) {  // the end of the text
                return;
            }
            float shift = pen_before - std::floor(pen_before);
            int x0 = 0, y0 = 0, x1 = 0, y1 = 0;
            stbtt_GetCodepointBitmapBoxSubpixel(&info_, cp, scale_, scale_, shift, 0, &x0, &y0, &x1, &y1);
            int w = x1 - x0, h = y1 - y0;
            if (w <= 0 || h <= 0) {
                return;
            }
            glyph.assign(static_cast<std::size_t>(w * h), 0);
            stbtt_MakeCodepointBitmapSubpixel(&info_, glyph.data(), w, h, w, scale_, scale_, shift, 0, cp);
            int gx = static_cast<int>(left) + static_cast<int>(std::floor(pen_before)) + x0;
            for (int r = 0; r < h; ++r) {
                for (int c = 0; c < w; ++c) {
                    long x = gx + c, y = baseline + y0 + r;
                    if (x < long(clip[0]) || x > long(clip[2]) || y < long(clip[1]) || y > long(clip[3])) {
                        continue;
                    }
                    // Coverage a of black over the canvas: the grey keeps 1 - a of itself.
                    std::uint8_t& p = pixels[std::size_t(y) * canvas_width + std::size_t(x)];
                    unsigned a = glyph[std::size_t(r * w + c)];
                    p = static_cast<std::uint8_t>((p * (255 - a) + 127) / 255);
                }
            }
        });
    }

private:
    // Calls f(code point, pen position before it) for every character, then f(0, end of the text)
    // (code_points made every control character a space: 0 is no character).
    template <class F>
    void for_each_glyph(std::string_view text, F f) const {
        std::vector<int> cps = code_points(text);
        float pen = 0;
        for (std::size_t i = 0; i < cps.size(); ++i) {
            f(cps[i], pen);
            int advance = 0, bearing = 0;
            stbtt_GetCodepointHMetrics(&info_, cps[i], &advance, &bearing);
            pen += advance * scale_;
            if (i + 1 < cps.size()) {
                pen += stbtt_GetCodepointKernAdvance(&info_, cps[i], cps[i + 1]) * scale_;
            }
        }
        f(0, pen);
    }

    std::string bytes_;
    stbtt_fontinfo info_{};
    float scale_ = 1;
    int ascent_ = 0;
    int descent_ = 0;
};

// Scales, labels and draws the cells (each image upscaled by nearest neighbour) on a canvas of gap grey
// with a white column for the labels, encodes it as PNG in memory and writes it atomically.
void render(const std::string& path, const std::vector<Cell>& cells, Layout layout, const ImageGridOptions& options) {
    std::string what = figure_name(path);
    std::size_t source_width = layout.image_width;
    std::size_t scale = choose_scale(options, layout);
    layout.image_height *= scale;
    layout.image_width *= scale;
    // 18 pixels reads at a glance beside a 64-pixel digit; a smaller image gets smaller text rather than
    // text that runs into the next row.
    std::optional<Font> font;
    if (!options.row_labels.empty()) {
        font.emplace(what, options.font.empty() ? default_font : options.font,
                     static_cast<float>(std::min<std::size_t>(18, layout.image_height)));
        std::size_t widest = 0;
        for (const std::string& label : options.row_labels) {
            widest = std::max(widest, font->width(label));
        }
        layout.label_width = widest + 16;
    }
    std::size_t width = layout.width();
    std::size_t height = layout.height();
    // stb takes int sizes; a larger grid would not be one anybody opens anyway.
    if (width > 32768 || height > 32768) {
        throw_value_error(fmt::format("{}: image too large: {} x {} pixels, at most 32768 a side", what, width,
                                      height));
    }
    std::vector<std::uint8_t> pixels(width * height, to_grey(options.gap_value));
    for (const Cell& cell : cells) {
        std::size_t left = layout.left(cell.column);
        std::size_t top = layout.top(cell.row);
        for (std::size_t r = 0; r < layout.image_height; ++r) {
            std::uint8_t* row = pixels.data() + (top + r) * width + left;
            const float* src = cell.image + (r / scale) * source_width;
            for (std::size_t c = 0; c < layout.image_width; ++c) {
                row[c] = to_grey(src[c / scale]);
            }
        }
    }
    if (font) {
        for (std::size_t y = 0; y < height; ++y) {
            std::fill_n(pixels.data() + y * width, layout.label_width, std::uint8_t{255});
        }
        for (std::size_t r = 0; r < layout.rows; ++r) {
            std::size_t top = layout.top(r);
            std::size_t text_top = top + (layout.image_height - std::min(layout.image_height, font->height())) / 2;
            font->draw(pixels, width, 8, text_top, options.row_labels[r % options.row_labels.size()],
                       {0, top, layout.label_width - 1, top + layout.image_height - 1});
        }
    }
    std::string png;
    auto append = [](void* context, void* data, int size) {
        static_cast<std::string*>(context)->append(static_cast<const char*>(data), static_cast<std::size_t>(size));
    };
    int w = static_cast<int>(width);
    int h = static_cast<int>(height);
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
    if (!options.row_labels.empty() && options.row_labels.size() != rows) {
        throw_value_error(
            fmt::format("{}: {} row labels for {} rows of images", what, options.row_labels.size(), rows));
    }
    std::vector<Cell> cells;
    for (std::size_t i = 0; i < n; ++i) {
        cells.push_back({images.data() + i * images.shape()[1], i % cols, i / cols});
    }
    render(path, cells, {.columns = cols, .rows = rows, .image_height = image_height, .image_width = image_width,
                         .gap = options.gap}, options);
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
    if (!options.row_labels.empty() && options.row_labels.size() != sets.size()) {
        throw_value_error(fmt::format("{}: {} row labels for {} sets of images", what, options.row_labels.size(),
                                      sets.size()));
    }
    std::size_t n = sets[0].shape()[0];
    std::size_t cols = columns == 0 ? n : std::min(columns, n);
    std::size_t blocks = (n + cols - 1) / cols;
    // One block per chunk of columns, each a row per set.
    std::vector<Cell> cells;
    for (std::size_t i = 0; i < n; ++i) {
        for (std::size_t s = 0; s < sets.size(); ++s) {
            cells.push_back({sets[s].data() + i * sets[s].shape()[1], i % cols, (i / cols) * sets.size() + s});
        }
    }
    render(path, cells, {.columns = cols, .rows = blocks * sets.size(), .blocks = blocks, .image_height = image_height,
                         .image_width = image_width, .gap = options.gap}, options);
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
