// Figures read back: image grids decoded with stb_image and checked pixel by pixel against the layout
// the header promises, their size and their row labels measured; plots checked for a PNG of the asked
// size holding the colours of their series, and measured: the frame found from its border, data points
// placed in it through the ranges the script sets, so that a test sees where the data, the key and a
// mark landed. Every failure checked for its message, for the file it must not leave, and for no
// temporary left.
#include <climits>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <set>

#include <fmt/format.h>

#include "helpers.hpp"
#include "scratch.hpp"

// The test binary links no stb: a private copy of the decoder, static so that its names cannot clash
// with the copy libtapegrad links.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#pragma GCC diagnostic ignored "-Wsign-compare"
#pragma GCC diagnostic ignored "-Wunused-parameter"
#define STB_IMAGE_STATIC
#define STB_IMAGE_IMPLEMENTATION
#define STBI_ONLY_PNG
#include <stb/stb_image.h>
#pragma GCC diagnostic pop

#include "tapegrad/models/figures.hpp"
#include "tapegrad/nn/file.hpp"

using namespace tapegrad;
using namespace tapegrad::models;
namespace fs = std::filesystem;
using test::listing;
using test::read_bytes;

namespace {

struct Png {
    int width = 0;
    int height = 0;
    int channels = 0;
    std::vector<unsigned char> pixels;

    int grey(int x, int y) const { return pixels[static_cast<std::size_t>(y * width + x) * channels]; }
    std::set<std::string> colours() const {
        std::set<std::string> out;
        for (std::size_t i = 0; i + 2 < pixels.size(); i += static_cast<std::size_t>(channels)) {
            out.insert(fmt::format("#{:02x}{:02x}{:02x}", pixels[i], pixels[i + 1], pixels[i + 2]));
        }
        return out;
    }
};

Png load_png(const fs::path& path) {
    Png png;
    unsigned char* data = stbi_load(path.c_str(), &png.width, &png.height, &png.channels, 0);
    REQUIRE_MESSAGE(data != nullptr, path.string() << ": " << stbi_failure_reason());
    png.pixels.assign(data, data + png.width * png.height * png.channels);
    stbi_image_free(data);
    return png;
}

// Sets an environment variable for one test and puts the old value back.
class ScopedEnv {
public:
    ScopedEnv(const char* name, const std::string& value) : name_(name) {
        if (const char* old = std::getenv(name)) {
            old_ = old;
        }
        ::setenv(name, value.c_str(), 1);
    }
    ~ScopedEnv() {
        if (old_) {
            ::setenv(name_, old_->c_str(), 1);
        } else {
            ::unsetenv(name_);
        }
    }

private:
    const char* name_;
    std::optional<std::string> old_;
};

// A fresh folder for the figures and another as TMPDIR, so that a temporary file left behind shows.
struct Folders {
    test::TempDir root{"tapegrad_figures_test"};
    fs::path out = root.path / "out";
    fs::path tmp = root.path / "tmp";
    Folders() {
        fs::create_directories(out);
        fs::create_directories(tmp);
    }
    std::string at(const std::string& name) const { return (out / name).string(); }
};

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

// A rectangle of pixels, inclusive; empty until a pixel is added.
struct Box {
    int left = INT_MAX;
    int top = INT_MAX;
    int right = -1;
    int bottom = -1;

    bool empty() const { return right < 0; }
    int width() const { return right - left + 1; }
    int height() const { return bottom - top + 1; }
    void add(int x, int y) {
        left = std::min(left, x);
        right = std::max(right, x);
        top = std::min(top, y);
        bottom = std::max(bottom, y);
    }
    bool contains(int x, int y) const { return x >= left && x <= right && y >= top && y <= bottom; }
    bool inside(const Box& outer) const {
        return left >= outer.left && right <= outer.right && top >= outer.top && bottom <= outer.bottom;
    }
};

std::ostream& operator<<(std::ostream& os, const Box& b) {
    return os << "[" << b.left << ", " << b.right << "] x [" << b.top << ", " << b.bottom << "]";
}

// Black text and the plot's border; antialiased edges of coloured lines stay lighter.
bool dark(const Png& png, int x, int y) {
    const unsigned char* p = &png.pixels[static_cast<std::size_t>(y * png.width + x) * png.channels];
    for (int c = 0; c < std::min(png.channels, 3); ++c) {
        if (p[c] >= 100) {
            return false;
        }
    }
    return true;
}

int count_dark(const Png& png, Box region) {
    int n = 0;
    for (int y = std::max(region.top, 0); y <= std::min(region.bottom, png.height - 1); ++y) {
        for (int x = std::max(region.left, 0); x <= std::min(region.right, png.width - 1); ++x) {
            n += dark(png, x, y) ? 1 : 0;
        }
    }
    return n;
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
        : frame(find_frame(png)), log_x(log_x_axis), log_y(log_y_axis) {
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

// Every label of `images` (N, side * side) set to 1, a white square that a test can measure.
Array<float> white(std::size_t n, std::size_t side) { return xt::ones<float>(Shape{n, side * side}); }

// The length of the run of white pixels from (x, y) rightwards or downwards.
int white_run(const Png& png, int x, int y, bool down) {
    int n = 0;
    while (x < png.width && y < png.height && png.grey(x, y) == 255) {
        ++n;
        (down ? y : x) += 1;
    }
    return n;
}

}  // namespace

TEST_CASE("write_image_grid: layout, clamping and gaps read back pixel by pixel") {
    Folders folders;
    ScopedEnv tmpdir("TMPDIR", folders.tmp.string());
    // Three 2 x 3 images in 2 columns, scale 2, gap 1: 2 * (3 * 2 + 1) + 1 = 15 wide,
    // 2 * (2 * 2 + 1) + 1 = 11 high.
    Array<float> images = {{1, 1, 1, 1, 1, 1},
                           {0, 0, 0, 0, 0, 0},
                           {0.0f, 0.5f, 1.0f, -0.3f, 1.7f, 0.25f}};
    std::string path = folders.at("grid.png");
    write_image_grid(path, images, 2, 3, 2, {.scale = 2, .gap = 1});
    Png png = load_png(path);
    REQUIRE(png.width == 15);
    REQUIRE(png.height == 11);
    CHECK(png.channels == 1);
    // Expected grey of every pixel: 128 for gaps and the empty fourth cell, else the image's value.
    const int pattern[6] = {0, 128, 255, 0, 255, 64};  // 0.5 -> 127.5 -> 128; clamped; 0.25 -> 64
    int mismatches = 0;
    for (int y = 0; y < 11; ++y) {
        for (int x = 0; x < 15; ++x) {
            int want = 128;
            int cx = (x - 1) % 7, cy = (y - 1) % 5;
            int col = (x - 1) / 7, row = (y - 1) / 5;
            bool inside = x >= 1 && y >= 1 && cx < 6 && cy < 4 && col < 2 && row < 2;
            if (inside) {
                int image = row * 2 + col;
                if (image == 0) {
                    want = 255;
                } else if (image == 1) {
                    want = 0;
                } else if (image == 2) {
                    want = pattern[(cy / 2) * 3 + cx / 2];
                }
            }
            if (png.grey(x, y) != want) {
                CAPTURE(x);
                CAPTURE(y);
                CHECK(png.grey(x, y) == want);
                ++mismatches;
            }
        }
    }
    CHECK(mismatches == 0);
    // Spot checks that read without the loop: white image, black image, gap between them, empty cell.
    CHECK(png.grey(1, 1) == 255);
    CHECK(png.grey(8, 1) == 0);
    CHECK(png.grey(7, 2) == 128);
    CHECK(png.grey(10, 8) == 128);
    CHECK(listing(folders.out) == std::vector<std::string>{"grid.png"});
    CHECK(listing(folders.tmp).empty());
}

TEST_CASE("write_image_grid: the default scale makes 3 digits in a row 200 x 200, columns capped at N") {
    Folders folders;
    Array<float> images = xt::ones<float>(Shape{3, 64});
    std::string path = folders.at("digits.png");
    write_image_grid(path, images, 8, 8, 10);
    Png png = load_png(path);
    // One row of 8 x 8 digits: 64 pixels (scale 8) would leave the figure 70 high; 25 is the smallest
    // scale that makes it 200: 25 * 8 + 2 * 2 = 204.
    CHECK(png.width == 3 * (200 + 2) + 2);
    CHECK(png.height == 200 + 4);
    CHECK(png.grey(2, 2) == 255);
    CHECK(png.grey(201, 201) == 255);
    CHECK(png.grey(202, 2) == 128);
}

TEST_CASE("image grids at a size one can see: images at least 64 pixels, the figure at least 200 high") {
    Folders folders;
    std::string path = folders.at("cmp.png");

    SUBCASE("three sets of 16 digits, 8 x 8: scale 8") {
        write_comparison(path, {white(16, 8), white(16, 8), white(16, 8)}, 8, 8);
        Png png = load_png(path);
        CHECK(white_run(png, 2, 2, false) == 64);
        CHECK(white_run(png, 2, 2, true) == 64);
        CHECK(png.width == 16 * 66 + 2);
        CHECK(png.height == 3 * 66 + 2);
    }
    SUBCASE("two sets of 16 Fashion-MNIST images, 28 x 28: 84 pixels would be 174 high, so 112") {
        write_comparison(path, {white(16, 28), white(16, 28)}, 28, 28);
        Png png = load_png(path);
        CHECK(white_run(png, 2, 2, false) == 112);
        CHECK(png.height == 2 * 114 + 2);
    }
    SUBCASE("two sets wrapped into 8 columns: four rows, so 84 pixels are enough") {
        write_comparison(path, {white(16, 28), white(16, 28)}, 28, 28, 8);
        Png png = load_png(path);
        CHECK(white_run(png, 2, 2, false) == 84);
        CHECK(png.height >= 200);
    }
    SUBCASE("a tall grid keeps 64 pixels") {
        write_image_grid(path, white(100, 8), 8, 8, 10);
        Png png = load_png(path);
        CHECK(white_run(png, 2, 2, true) == 64);
        CHECK(png.height == 10 * 66 + 2);
    }
    SUBCASE("no image grows past 4 * min_side for the height's sake") {
        write_image_grid(path, white(2, 1), 1, 1, 2, {.min_side = 16, .min_height = 1000});
        Png png = load_png(path);
        CHECK(white_run(png, 2, 2, false) == 64);
    }
}

TEST_CASE("write_comparison: each set a row, image j of every set in column j, blocks wrap together") {
    Folders folders;
    // Two sets of three 1 x 1 images, 2 columns, scale 1, gap 1: cells 2 pixels; a block is two rows
    // (4 pixels) plus 3 more of gap; height 1 + 2 * 7 - 3 = 12, width 2 * 2 + 1 = 5.
    Array<float> clean = {1.0f, 0.8f, 0.6f};
    Array<float> denoised = {0.0f, 0.2f, 0.4f};
    clean.reshape({3, 1});
    denoised.reshape({3, 1});
    std::string path = folders.at("cmp.png");
    write_comparison(path, {clean, denoised}, 1, 1, 2, {.scale = 1, .gap = 1});
    Png png = load_png(path);
    REQUIRE(png.width == 5);
    REQUIRE(png.height == 12);
    CHECK(png.grey(1, 1) == 255);  // clean 0
    CHECK(png.grey(3, 1) == 204);  // clean 1
    CHECK(png.grey(1, 3) == 0);    // denoised 0, under clean 0
    CHECK(png.grey(3, 3) == 51);   // denoised 1
    CHECK(png.grey(1, 8) == 153);   // clean 2 starts the second block
    CHECK(png.grey(1, 10) == 102);  // denoised 2
    CHECK(png.grey(3, 8) == 128);   // no fourth image
    for (int y : {0, 2, 4, 5, 6, 7, 9, 11}) {
        for (int x = 0; x < 5; ++x) {
            CAPTURE(x);
            CAPTURE(y);
            CHECK(png.grey(x, y) == 128);
        }
    }

    SUBCASE("columns = 0 puts every set on one row") {
        // Default scale: 1 x 1 images need 64 for min_side, which makes the figure 3 * 66 + 2 = 200 high.
        write_comparison(path, {clean, denoised, clean}, 1, 1);
        Png one_row = load_png(path);
        CHECK(one_row.width == 3 * (64 + 2) + 2);
        CHECK(one_row.height == 3 * (64 + 2) + 2);
        CHECK(one_row.grey(2, 2) == 255);
        CHECK(one_row.grey(2, 69) == 0);
        CHECK(one_row.grey(2, 136) == 255);
        CHECK(one_row.grey(2, 67) == 128);
    }
}

TEST_CASE("write_comparison: a label left of every row, in every block") {
    Folders folders;
    ScopedEnv tmpdir("TMPDIR", folders.tmp.string());
    std::string path = folders.at("cmp.png");
    // White images on grey gaps: the only dark pixels are the labels' text.
    std::vector<std::string> labels = {"original", "corrupted", "reconstructed"};
    write_comparison(path, {white(16, 8), white(16, 8), white(16, 8)}, 8, 8, 8, {.row_labels = labels});
    Png png = load_png(path);
    // Two blocks of 8 columns, three rows each, 64-pixel digits.
    int grid_width = 8 * 66 + 2;
    int label_width = png.width - grid_width;
    CAPTURE(label_width);
    // "reconstructed" is 13 letters, each several pixels wide, plus 8 pixels either side.
    CHECK(label_width > 16 + 13 * 5);
    CHECK(label_width < 16 + 13 * 14);
    CHECK(png.grey(1, 1) == 255);                   // the label column is white,
    CHECK(png.grey(label_width, 1) == 128);         // then the grid's first gap,
    CHECK(png.grey(label_width + 2, 2) == 255);     // then the first image,
    CHECK(white_run(png, label_width + 2, 2, false) == 64);
    std::vector<int> dark_in_row;
    for (int row = 0; row < 6; ++row) {
        int top = 2 + row * 66 + (row / 3) * 6;  // 4 * gap between the blocks instead of gap
        CAPTURE(row);
        CHECK(png.grey(label_width + 2, top) == 255);
        CHECK(png.grey(label_width + 2, top - 1) == 128);
        dark_in_row.push_back(count_dark(png, {0, top, label_width - 1, top + 63}));
        CHECK(dark_in_row.back() > 40);
        // Text stays in its row's band: nothing dark in the gaps between rows.
        CHECK(count_dark(png, {0, top - 2, label_width - 1, top - 1}) == 0);
        // No text over the images.
        CHECK(count_dark(png, {label_width, top, png.width - 1, top + 63}) == 0);
    }
    // The second block repeats the labels of the first, pixel for pixel.
    CHECK(dark_in_row[0] == dark_in_row[3]);
    CHECK(dark_in_row[2] == dark_in_row[5]);
    // Three different words: "reconstructed" is longer than "original".
    CHECK(dark_in_row[2] > dark_in_row[0]);
    CHECK(listing(folders.tmp).empty());

    SUBCASE("write_image_grid: one label per row of the grid") {
        write_image_grid(path, white(6, 8), 8, 8, 3, {.scale = 8, .row_labels = {"epoch 1", "epoch 100"}});
        Png grid = load_png(path);
        int width = grid.width - (3 * 66 + 2);
        CHECK(count_dark(grid, {0, 2, width - 1, 65}) > 20);
        CHECK(count_dark(grid, {0, 68, width - 1, 131}) > count_dark(grid, {0, 2, width - 1, 65}));
    }
    SUBCASE("a font that is not there, or not a font") {
        CHECK_THROWS_WITH_AS(
            write_comparison(path, {white(2, 8)}, 8, 8, 0, {.row_labels = {"a"}, .font = "/nonexistent/font.ttf"}),
            fmt::format("figure {}: cannot read the font /nonexistent/font.ttf: No such file or directory", path)
                .c_str(),
            FigureError);
        fs::path not_a_font = folders.root / "font.ttf";
        {
            std::ofstream(not_a_font) << "not a font";
        }
        CHECK_THROWS_WITH_AS(
            write_comparison(path, {white(2, 8)}, 8, 8, 0, {.row_labels = {"a"}, .font = not_a_font.string()}),
            fmt::format("figure {}: {} is not a TrueType font", path, not_a_font.string()).c_str(), FigureError);
    }
}

TEST_CASE("image grid errors name the figure and the shapes, and write nothing") {
    Folders folders;
    std::string path = folders.at("grid.png");
    Array<float> ok = xt::zeros<float>(Shape{3, 64});

    CHECK_THROWS_WITH_AS(write_image_grid(path, xt::zeros<float>(Shape{3, 63}), 8, 8, 4),
                         fmt::format("figure {}: 8 x 8 images need 64 values a row: got (3, 63)", path).c_str(),
                         ShapeError);
    CHECK_THROWS_WITH_AS(
        write_image_grid(path, xt::zeros<float>(Shape{2, 8, 8}), 8, 8, 4),
        fmt::format("figure {}: images must be 2-D (samples, height * width): got (2, 8, 8)", path).c_str(),
        ShapeError);
    CHECK_THROWS_WITH_AS(write_image_grid(path, xt::zeros<float>(Shape{0, 64}), 8, 8, 4),
                         fmt::format("figure {}: no images to draw: got (0, 64)", path).c_str(), ValueError);
    CHECK_THROWS_WITH_AS(write_image_grid(path, ok, 8, 8, 0),
                         fmt::format("figure {}: columns must be at least 1: got 0", path).c_str(), ValueError);
    CHECK_THROWS_WITH_AS(write_comparison(path, {ok, ok, ok}, 8, 8, 0, {.row_labels = {"clean", "denoised"}}),
                         fmt::format("figure {}: 2 row labels for 3 sets of images", path).c_str(), ValueError);
    CHECK_THROWS_WITH_AS(write_image_grid(path, ok, 8, 8, 2, {.row_labels = {"a", "b", "c"}}),
                         fmt::format("figure {}: 3 row labels for 2 rows of images", path).c_str(), ValueError);
    Array<float> with_nan = ok;
    with_nan(1, 5) = std::nanf("");
    CHECK_THROWS_WITH_AS(write_image_grid(path, with_nan, 8, 8, 4),
                         fmt::format("figure {}: image 1 has a non-finite value: nan at pixel 5", path).c_str(),
                         ValueError);
    CHECK_THROWS_WITH_AS(write_comparison(path, {ok, xt::zeros<float>(Shape{2, 64})}, 8, 8),
                         fmt::format("figure {}: sets differ in size: set 0 has 3 images, set 1 has 2", path).c_str(),
                         ShapeError);
    CHECK_THROWS_WITH_AS(write_comparison(path, {ok, xt::zeros<float>(Shape{3, 65})}, 8, 8),
                         fmt::format("figure {}: set 1: 8 x 8 images need 64 values a row: got (3, 65)", path).c_str(),
                         ShapeError);
    CHECK_THROWS_WITH_AS(write_comparison(path, {}, 8, 8),
                         fmt::format("figure {}: no sets of images to compare", path).c_str(), ValueError);
    CHECK(listing(folders.out).empty());
}

TEST_CASE("a figure in a folder that does not exist names the file") {
    Array<float> ok = xt::zeros<float>(Shape{1, 4});
    CHECK_THROWS_WITH_AS(write_image_grid("/nonexistent-tapegrad-dir/x.png", ok, 2, 2, 1),
                         "figure /nonexistent-tapegrad-dir/x.png: cannot create a temporary file in "
                         "/nonexistent-tapegrad-dir: No such file or directory",
                         nn::FileError);
}

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
