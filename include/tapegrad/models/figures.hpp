// Figures a person would rather look at than read, as PNG: grids of images (originals beside
// reconstructions; clean, corrupted and denoised) through stb_image_write, and line and scatter plots
// (loss curves, error against latent size, a 2-D latent scatter coloured by label) through gnuplot's
// pngcairo terminal (Debian's gnuplot-nox).
//
// Row labels of image grids are drawn with stb_truetype in DejaVu Sans (Debian's fonts-dejavu-core).
//
// Every figure is written atomically (temporary file, rename): a failed figure leaves the old file or
// none, never half a PNG, and leaves no temporary file behind. Messages start with the figure's path as
// the user gave it: `figure runs/a/loss.png: gnuplot not found: install gnuplot-nox`. Bad arguments
// raise ShapeError or ValueError, a file that cannot be written nn::FileError, and gnuplot or the font
// missing or failing FigureError.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "tapegrad/autodiff/error.hpp"
#include "tapegrad/autodiff/var.hpp"

namespace tapegrad::models {

// gnuplot missing, failing, or finishing without an image (the message carries what gnuplot printed), or
// the font of the row labels missing or unreadable.
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
    // The TrueType font of the row labels; empty means DejaVu Sans, from Debian's fonts-dejavu-core.
    std::string font = {};
};

// Writes a grayscale PNG of `images`, shaped (N, image_height * image_width) with one row-major image
// a row, laid out left to right and top to bottom in min(columns, N) columns. Values are intensities in
// [0, 1]: 0 is black, 1 white; values outside are clamped (a reconstruction overshoots a little), and
// NaN or Inf is a ValueError rather than a silent black pixel. Double arrays convert to float.
//
// The PNG is label_width + columns * (image_width * scale + gap) + gap pixels wide and
// rows * (image_height * scale + gap) + gap high, where label_width is 0 without row labels and
// otherwise the widest label's width plus 8 pixels either side.
void write_image_grid(const std::string& path, const Array<float>& images, std::size_t image_height,
                      std::size_t image_width, std::size_t columns, ImageGridOptions options = {});

// Sets of images one above another, so that image j of every set lines up in column j:
// write_comparison(path, {clean, corrupted, denoised}, 8, 8, 0, {.row_labels = {"clean", "corrupted",
// "denoised"}}) draws three labelled rows, clean on top. Every set is (N, image_height * image_width)
// with the same N. With columns = 0 every set is one row; with 0 < columns < N the sets wrap together:
// the first `columns` images of every set, then a wider gap (4 * gap), then the next `columns` of every
// set, and so on. The width is as for write_image_grid; the height is
// rows * (image_height * scale + gap) + gap + (blocks - 1) * 3 * gap, with a row per set in every block.
void write_comparison(const std::string& path, const std::vector<Array<float>>& sets, std::size_t image_height,
                      std::size_t image_width, std::size_t columns = 0, ImageGridOptions options = {});

// Which y axis a series or a mark is drawn against: the left one, or a right one with its own range,
// label and scale, for a quantity in other units or of another size (train objective on the left,
// validation MSE on the right).
enum class Axis { left, right };

// One line of a line plot. An empty name leaves the line out of the key. Points whose x or y is NaN or
// Inf are left out, breaking the line there (a loss that diverged at the end still plots up to it).
struct Series {
    std::string name;
    std::vector<double> x;
    std::vector<double> y;
    Axis axis = Axis::left;
};

// A point drawn as a black dot with its label beside it, on the side where the label hides least of
// the data: the operating point of a threshold on a ROC curve, {fpr, tpr, "threshold 0.0123"}.
struct Mark {
    double x = 0;
    double y = 0;
    std::string label;
    Axis axis = Axis::left;
};

struct PlotOptions {
    bool log_x = false;
    bool log_y = false;  // for losses that fall by orders of magnitude; every finite y must be positive
    std::size_t width = 900;
    std::size_t height = 600;
    // The program to run; a path or a name looked up in PATH.
    std::string gnuplot = "gnuplot";
    // The right y axis, drawn when a series or a mark is on it (Axis::right): its label, and a log scale
    // for it as log_y is for the left one (every finite y of a right-axis series must then be positive).
    // When there are series on both axes, each named one says in the key which axis is its ("validation
    // MSE (right axis)"), and the label of an axis with a single series takes that series' colour. A loss
    // plot with the objective on the left and the validation MSE on the right:
    //   plot_lines(path, "loss by epoch", "epoch", "train objective",
    //              {{"train objective", epochs, objective}, {"validation MSE", epochs, mse, Axis::right}},
    //              {.log_y = true, .y2_label = "validation MSE", .log_y2 = true});
    std::string y2_label = {};
    bool log_y2 = false;
    // Points marked on the plot (plot_lines and plot_scatter); the axes are fitted to include them. Each
    // must be finite, and positive on a log axis. The threshold on a ROC curve:
    //   .marks = {{fpr, tpr, fmt::format("threshold {:.4g}", threshold)}}
    std::vector<Mark> marks = {};
    // plot_scatter: the name of label value k, shown in the key instead of the number k. Every label
    // must then be in [0, label_names.size()). Fashion-MNIST's are {"T-shirt/top", "Trouser", ...}.
    std::vector<std::string> label_names = {};
};

// Line plot: one line per series, with markers when a series has at most 30 points (error against
// latent size has a handful, a loss curve hundreds). Titles and labels appear as written: quotes are
// escaped, gnuplot's enhanced text is off (so `train_loss` keeps its underscore) and control characters
// become spaces.
//
// Both plots fit each axis to the finite data and the marks, with 3% of the span to spare on either
// side (on a log axis, of the span in decades); a single value gets +-10% around it (+-1 around 0), or
// a factor of 2 on a log axis. A log axis spanning less than four decades is labelled at 1, 2 and 5
// times powers of ten (or finer), not only at the powers. The key sits inside the frame, boxed on white,
// in the corner where it covers no data and no mark's label (preferring top right, top left, bottom
// right, bottom left); when every corner has data under it, the axis along which the key is thinner is
// extended (by at most half) to make room for it at the top right. A series on the right axis: see
// PlotOptions::y2_label.
void plot_lines(const std::string& path, const std::string& title, const std::string& x_label,
                const std::string& y_label, const std::vector<Series>& series, PlotOptions options = {});

// Scatter plot of (x[i], y[i]) coloured by labels[i], with a key of the label values in increasing
// order, or of their names from options.label_names (the key is left out beyond 20 labels, where it
// would be longer than the plot). Empty labels draw every point in one colour. Points with a NaN or Inf
// coordinate are left out.
void plot_scatter(const std::string& path, const std::string& title, const std::string& x_label,
                  const std::string& y_label, const std::vector<double>& x, const std::vector<double>& y,
                  const std::vector<std::int64_t>& labels, PlotOptions options = {});

namespace detail {
[[noreturn]] void throw_figure_error(std::string message);

// The gnuplot scripts plot_lines and plot_scatter run, after the same checks and with the same errors:
// tests read the ranges, the key's place and the labels from them rather than guess them from pixels.
std::string plot_lines_script(const std::string& path, const std::string& title, const std::string& x_label,
                              const std::string& y_label, const std::vector<Series>& series,
                              const PlotOptions& options);
std::string plot_scatter_script(const std::string& path, const std::string& title, const std::string& x_label,
                                const std::string& y_label, const std::vector<double>& x,
                                const std::vector<double>& y, const std::vector<std::int64_t>& labels,
                                const PlotOptions& options);
}  // namespace detail

}  // namespace tapegrad::models
