// Image grids a person would rather look at than read, as grayscale PNG through stb_image_write:
// originals beside reconstructions; clean, corrupted and denoised. Row and column labels are drawn with
// stb_truetype in DejaVu Sans (Debian's fonts-dejavu-core), the font gnuplot's plots (figures.hpp) fall
// back to.
//
// Every figure is written atomically (temporary file, rename): a failed figure leaves the old file or
// none, never half a PNG, and leaves no temporary file behind. Messages start with the figure's path as
// the user gave it: `figure runs/a/cmp.png: 2 row labels for 3 sets of images`. Bad arguments raise
// ShapeError or ValueError, a file that cannot be written nn::FileError, and the font missing or
// unreadable FigureError.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "tapegrad/autodiff/error.hpp"
#include "tapegrad/autodiff/var.hpp"

namespace tapegrad::models {

// A figure that cannot be drawn for want of a tool outside the library: the font of the row labels
// missing or unreadable here; gnuplot missing, failing, or finishing without an image in figures.hpp
// (the message carries what gnuplot printed).
class FigureError : public Error {
public:
    using Error::Error;
};

struct ImageGridOptions {
    // Each pixel becomes a scale x scale block. 0, the default, picks the smallest whole scale that makes
    // each image at least min_side pixels on its longer side and the whole figure at least min_height
    // pixels high, though never an image longer than 4 * min_side for the height's sake: 8 x 8 digits
    // become 64 x 64 (104 x 104 in a figure of two rows), 28 x 28 Fashion-MNIST 84 x 84 (112 x 112 in two
    // rows), where the old fixed scale of 4 left 32 x 32 specks. min_side and min_height apply to the
    // automatic scale only.
    std::size_t scale = 0;
    std::size_t min_side = 64;
    std::size_t min_height = 200;
    // Pixels between neighbouring images and around the grid.
    std::size_t gap = 2;
    // Grey of the gaps and of empty cells, in [0, 1]. Mid-grey (128) sets off white digits on black
    // as well as black ones on white.
    float gap_value = 0.5f;
    // A label for each row, drawn in black on a white column left of the images and centred on its row:
    // write_comparison takes one per set ({"original", "corrupted", "reconstructed"}), repeated for every
    // block when the sets wrap; write_image_grid one per row of the grid. Empty: no labels and no column.
    // Text is UTF-8, at most 18 pixels high, and no taller than an image.
    std::vector<std::string> row_labels = {};
    // A label for each column, drawn in black on a white band above the grid and centred over its
    // column: the step of an interpolation ("0.50"), the digit a column shows. One per column:
    // min(columns, N) for write_image_grid; for write_comparison the sets must fit in one block (columns
    // 0 or at least N), one label per image. The text is as tall as row labels' (18 pixels, or an
    // image's height if less); the band is that plus 4 pixels above and below. A label wider than an
    // image is a ValueError, rather than text running into its neighbour's: shorten it, or set a larger
    // scale.
    std::vector<std::string> column_labels = {};
    // The TrueType font of the labels; empty means DejaVu Sans, from Debian's fonts-dejavu-core.
    std::string font = {};
};

// Writes a grayscale PNG of `images`, shaped (N, image_height * image_width) with one row-major image
// a row, laid out left to right and top to bottom in min(columns, N) columns. Values are intensities in
// [0, 1]: 0 is black, 1 white; values outside are clamped (a reconstruction overshoots a little), and
// NaN or Inf is a ValueError rather than a silent black pixel. Double arrays convert to float.
//
// The PNG is label_width + columns * (image_width * scale + gap) + gap pixels wide and
// label_height + rows * (image_height * scale + gap) + gap high, where label_width is 0 without row
// labels and otherwise the widest label's width plus 8 pixels either side, and label_height is 0
// without column labels and otherwise their band's height (ImageGridOptions::column_labels).
void write_image_grid(const std::string& path, const Array<float>& images, std::size_t image_height,
                      std::size_t image_width, std::size_t columns, ImageGridOptions options = {});

// Sets of images one above another, so that image j of every set lines up in column j:
// write_comparison(path, {clean, corrupted, denoised}, 8, 8, 0, {.row_labels = {"clean", "corrupted",
// "denoised"}}) draws three labelled rows, clean on top. Every set is (N, image_height * image_width)
// with the same N. With columns = 0 every set is one row; with 0 < columns < N the sets wrap together:
// the first `columns` images of every set, then a wider gap (4 * gap), then the next `columns` of every
// set, and so on. The width is as for write_image_grid; the height is
// label_height + rows * (image_height * scale + gap) + gap + (blocks - 1) * 3 * gap, with a row per set
// in every block.
void write_comparison(const std::string& path, const std::vector<Array<float>>& sets, std::size_t image_height,
                      std::size_t image_width, std::size_t columns = 0, ImageGridOptions options = {});

namespace detail {
[[noreturn]] void throw_figure_error(std::string message);
}  // namespace detail

}  // namespace tapegrad::models
