#include "tapegrad/models/images.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <optional>
#include <string_view>

#include <fmt/format.h>
#include <stb_image_write.h>
#include <stb_truetype.h>

#include "figure_common.hpp"
#include "tapegrad/nn/io/file.hpp"

namespace tapegrad::models {

namespace detail {

void throw_figure_error(std::string message) { throw FigureError(std::move(message)); }

std::string figure_name(const std::string& path) { return fmt::format("figure {}", path); }

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

}  // namespace detail

namespace {

using detail::code_points;
using detail::figure_name;
using detail::read_all;
using tapegrad::detail::throw_shape_error;
using tapegrad::detail::throw_value_error;

// Where images go on a canvas: `columns` cells a row, `rows` rows split evenly into `blocks`, a column of
// row labels on the left.
struct Layout {
    std::size_t columns = 0;
    std::size_t rows = 0;
    std::size_t blocks = 1;
    std::size_t image_height = 0;  // in pixels once render() has scaled them
    std::size_t image_width = 0;
    std::size_t gap = 0;
    std::size_t label_width = 0;   // 0 without row labels
    std::size_t label_height = 0;  // 0 without column labels

    std::size_t left(std::size_t column) const { return label_width + gap + column * (image_width + gap); }
    // Blocks are 4 * gap apart against gap between rows, so that the eye groups the rows of a block (one
    // extra gap was too little to see).
    std::size_t top(std::size_t row) const {
        return label_height + gap + row * (image_height + gap) + row / (rows / blocks) * 3 * gap;
    }
    std::size_t width() const { return left(columns); }
    std::size_t height() const { return label_height + gap + rows * (image_height + gap) + (blocks - 1) * 3 * gap; }
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
    if (!options.row_labels.empty() || !options.column_labels.empty()) {
        font.emplace(what, options.font.empty() ? default_font : options.font,
                     static_cast<float>(std::min<std::size_t>(18, layout.image_height)));
    }
    if (!options.row_labels.empty()) {
        std::size_t widest = 0;
        for (const std::string& label : options.row_labels) {
            widest = std::max(widest, font->width(label));
        }
        layout.label_width = widest + 16;
    }
    if (!options.column_labels.empty()) {
        for (std::size_t j = 0; j < options.column_labels.size(); ++j) {
            const std::string& label = options.column_labels[j];
            if (font->width(label) > layout.image_width) {
                throw_value_error(fmt::format("{}: column label {} '{}' is {} pixels wide, wider than its {}-pixel "
                                              "images: shorten it or set a larger scale",
                                              what, j, label, font->width(label), layout.image_width));
            }
        }
        layout.label_height = font->height() + 8;
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
    std::fill_n(pixels.data(), layout.label_height * width, std::uint8_t{255});
    for (std::size_t j = 0; j < options.column_labels.size(); ++j) {
        const std::string& label = options.column_labels[j];
        std::size_t left = layout.left(j);
        font->draw(pixels, width, left + (layout.image_width - font->width(label)) / 2, 4, label,
                   {left, 0, left + layout.image_width - 1, layout.label_height - 1});
    }
    if (!options.row_labels.empty()) {
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
    if (!options.column_labels.empty() && options.column_labels.size() != cols) {
        throw_value_error(fmt::format("{}: {} column labels for {} columns of images", what,
                                      options.column_labels.size(), cols));
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
    // Labels above the top block only would name the other blocks' columns wrongly.
    if (!options.column_labels.empty() && blocks > 1) {
        throw_value_error(fmt::format("{}: column labels need the sets in one block: {} images in {} columns make {}",
                                      what, n, cols, blocks));
    }
    if (!options.column_labels.empty() && options.column_labels.size() != n) {
        throw_value_error(fmt::format("{}: {} column labels for {} columns of images", what,
                                      options.column_labels.size(), n));
    }
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

}  // namespace tapegrad::models
