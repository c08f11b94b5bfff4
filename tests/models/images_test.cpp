// Image grids read back: decoded with stb_image and checked pixel by pixel against the layout the header
// promises, their size and their row labels measured. Every failure checked for its message, for the
// file it must not leave, and for no temporary left.
#include <cmath>
#include <filesystem>
#include <fstream>

#include <fmt/format.h>

#include "figure_checks.hpp"
#include "scratch.hpp"
#include "tapegrad/models/images.hpp"
#include "tapegrad/nn/io/file.hpp"

using namespace tapegrad;
using namespace tapegrad::models;
namespace fs = std::filesystem;
using test::count_dark;
using test::Folders;
using test::listing;
using test::load_png;
using test::Png;
using test::ScopedEnv;

namespace {

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

TEST_CASE("column labels: a white band above the grid, each label centred over its column") {
    Folders folders;
    ScopedEnv tmpdir("TMPDIR", folders.tmp.string());
    std::string path = folders.at("steps.png");
    std::string bare = folders.at("bare.png");
    // Ten white 8 x 8 digits at scale 8 in one row: 64-pixel images 66 apart.
    std::vector<std::string> steps;
    for (int i = 0; i < 10; ++i) {
        steps.push_back(fmt::format("{:.2f}", i / 9.0));
    }
    steps[9] = "1";  // a narrower label, to see each is centred on its own
    write_image_grid(path, white(10, 8), 8, 8, 10, {.scale = 8, .row_labels = {"path"}, .column_labels = steps});
    write_image_grid(bare, white(10, 8), 8, 8, 10, {.scale = 8, .row_labels = {"path"}});
    Png png = load_png(path);
    Png plain = load_png(bare);
    // 18-pixel text and 4 pixels above and below it: the figure grows by 26 rows, and only in height.
    CHECK(png.width == plain.width);
    CHECK(png.height == plain.height + 26);
    int label_width = png.width - (10 * 66 + 2);
    CHECK(png.grey(label_width, 26) == 128);       // the grid's top gap below the band,
    CHECK(png.grey(label_width + 2, 28) == 255);   // then the first image
    CHECK(white_run(png, label_width + 2, 28, true) == 64);
    // The row label moved down with its row: the same text 26 pixels lower.
    CHECK(count_dark(png, {0, 28, label_width - 1, 91}) == count_dark(plain, {0, 2, label_width - 1, 65}));
    std::vector<int> dark;
    for (int j = 0; j < 10; ++j) {
        int left = label_width + 2 + j * 66;
        CAPTURE(j);
        // Text in the band over its column, none over the gaps between columns nor in the band's margins.
        dark.push_back(count_dark(png, {left, 4, left + 63, 21}));
        CHECK(dark.back() > 20);
        CHECK(count_dark(png, {left, 0, left + 63, 3}) == 0);
        CHECK(count_dark(png, {left, 22, left + 63, 25}) == 0);
        CHECK(count_dark(png, {left - 2, 0, left - 1, 25}) == 0);
        // Centred: as much text in the column's left half as in its right, give or take a glyph's shape.
        int left_half = count_dark(png, {left, 0, left + 31, 25});
        int right_half = count_dark(png, {left + 32, 0, left + 63, 25});
        CHECK(std::abs(left_half - right_half) <= (left_half + right_half) / 3);
    }
    // "0.00" and "0.11" are as long, "1" shorter.
    CHECK(dark[9] < dark[0] / 2);
    // The band is white where no text is, over the row labels' column too.
    CHECK(png.grey(0, 0) == 255);
    CHECK(png.grey(label_width + 1, 2) == 255);
    CHECK(listing(folders.tmp).empty());

    SUBCASE("write_comparison: one label per image, over every set's row") {
        write_comparison(path, {white(3, 8), white(3, 8)}, 8, 8, 0, {.scale = 8, .column_labels = {"3", "8", "5"}});
        Png cmp = load_png(path);
        CHECK(cmp.width == 3 * 66 + 2);
        CHECK(cmp.height == 26 + 2 * 66 + 2);
        CHECK(count_dark(cmp, {2, 4, 65, 21}) > 20);
    }
    SUBCASE("small images get smaller text, and a smaller band") {
        write_image_grid(path, white(2, 4), 4, 4, 2, {.scale = 3, .column_labels = {"a", "b"}});
        Png small = load_png(path);
        // 12-pixel images: 12-pixel text, a 20-pixel band.
        CHECK(small.height == 20 + 12 + 4);
    }
    SUBCASE("a label wider than its images, a count that does not match, sets that wrap") {
        std::string before = test::read_bytes(path);
        // The text's width in pixels depends on the font's version: the message is read around it.
        std::string message;
        try {
            write_image_grid(path, white(2, 8), 8, 8, 2, {.scale = 8, .column_labels = {"0.5", "a very long label"}});
        } catch (const ValueError& e) {
            message = e.what();
        }
        CAPTURE(message);
        std::string start = fmt::format("figure {}: column label 1 'a very long label' is ", path);
        std::string end = " pixels wide, wider than its 64-pixel images: shorten it or set a larger scale";
        REQUIRE(message.size() > start.size() + end.size());
        CHECK(message.substr(0, start.size()) == start);
        CHECK(message.substr(message.size() - end.size()) == end);
        // 17 characters of 18-pixel text: well over 64 pixels.
        CHECK(std::stoi(message.substr(start.size())) > 100);
        CHECK_THROWS_WITH_AS(write_image_grid(path, white(5, 8), 8, 8, 3, {.column_labels = {"a", "b"}}),
                             fmt::format("figure {}: 2 column labels for 3 columns of images", path).c_str(),
                             ValueError);
        CHECK_THROWS_WITH_AS(write_comparison(path, {white(3, 8)}, 8, 8, 0, {.column_labels = {"a", "b"}}),
                             fmt::format("figure {}: 2 column labels for 3 columns of images", path).c_str(),
                             ValueError);
        CHECK_THROWS_WITH_AS(
            write_comparison(path, {white(4, 8)}, 8, 8, 2, {.column_labels = {"a", "b"}}),
            fmt::format("figure {}: column labels need the sets in one block: 4 images in 2 columns make 2", path)
                .c_str(),
            ValueError);
        CHECK(test::read_bytes(path) == before);  // the figure of before, untouched
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
