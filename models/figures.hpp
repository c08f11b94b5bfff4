// Line, scatter and heat-map plots a person would rather look at than read, as PNG: loss curves, error
// against latent size, a 2-D latent scatter coloured by label, an error over the plane, through gnuplot's
// pngcairo terminal (Debian's gnuplot-nox).
//
// Includes images.hpp, so that one include still gives every figure: the image grids (write_image_grid,
// write_comparison) and FigureError, which the plots raise too.
//
// Every figure is written atomically (temporary file, rename): a failed figure leaves the old file or
// none, never half a PNG, and leaves no temporary file behind. Messages start with the figure's path as
// the user gave it: `figure runs/a/loss.png: gnuplot not found: install gnuplot-nox`. Bad arguments
// raise ShapeError or ValueError, a file that cannot be written nn::FileError, and gnuplot missing or
// failing FigureError.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "tapegrad/models/images.hpp"

namespace tapegrad::models {

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
    // The title of the key, for what the entries are: plot_scatter's key of digits says "digit". Empty:
    // "label" above a key of bare numbers, no title above label_names (names speak for themselves) or
    // above plot_heatmap's point sets.
    std::string key_title = {};
    // plot_heatmap: the label of the colour box beside the map ("reconstruction MSE"), and a log colour
    // scale, for values spanning decades (every finite value must then be positive).
    std::string cb_label = {};
    bool log_cb = false;
    // plot_heatmap: at most four sets of points drawn over the map as dots with a black rim, in red,
    // orange, pink and black (colours viridis lacks, so that a dot shows on any cell), each named in a
    // key below the plot unless its name is empty. Every one must be on the left axis and have a finite
    // point. Points with a NaN or Inf coordinate, and points outside the map, are left out.
    std::vector<Series> points = {};
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

// One panel of plot_scatter_panels: what plot_scatter draws, less the options, which the panels share.
struct ScatterPanel {
    std::string title;
    std::string x_label;
    std::string y_label;
    std::vector<double> x;
    std::vector<double> y;
    std::vector<std::int64_t> labels;
};

// Scatter plots side by side in one figure under one title, each drawn as plot_scatter draws it, with
// its own axes and key, in an equal share of the figure's options.width (the figure's size, not a
// panel's). The options apply to every panel, except marks, which would belong to no panel: they must be
// left empty. An error in a panel's data names the panel: `figure codes.png: panel 2 'PCA': x, y and
// labels differ in length: 360, 360 and 2 values`. An autoencoder's 2-D codes beside PCA's:
//   plot_scatter_panels(path, "2-D codes of the test digits",
//                       {{"autoencoder", "z1", "z2", ae_x, ae_y, digits}, {"PCA", "PC1", "PC2", pc_x, pc_y, digits}},
//                       {.width = 1600, .height = 700, .key_title = "digit"});
void plot_scatter_panels(const std::string& path, const std::string& title, const std::vector<ScatterPanel>& panels,
                         PlotOptions options = {});

// Heat map of values over a grid: values(i, j) is the value at (xs[j], ys[i]), so that values has a row per
// y and a column per x, and is drawn as a cell centred there, coloured through viridis (dark purple for
// the lowest value, yellow for the highest: an order the eye reads without the colour box, and readable
// in grey), with a colour box labelled options.cb_label on the right. xs and ys must increase in even
// steps (as a linspace does), at least two each. The colours span the finite values, on a log scale with
// options.log_cb; the map fills the frame, from half a step before the first x and y to half a step past
// the last. Non-finite values are left out: their cells show the white background. Points drawn over the
// map: PlotOptions::points. Of the other options, plot_heatmap reads width, height, gnuplot and key_title;
// the axis scales, the right axis, marks and label_names must be left at their defaults (a ValueError
// says which one was not), so that nothing asked for is silently dropped. An error over the plane:
//   plot_heatmap(path, "reconstruction error", "x", "y", xs, ys, errors,
//                {.cb_label = "reconstruction MSE", .log_cb = true, .points = {{"data", data_x, data_y}}});
void plot_heatmap(const std::string& path, const std::string& title, const std::string& x_label,
                  const std::string& y_label, const std::vector<double>& xs, const std::vector<double>& ys,
                  const Array<double>& values, PlotOptions options = {});

namespace detail {
// The gnuplot scripts plot_lines, plot_scatter, plot_scatter_panels and plot_heatmap run, after the same
// checks and with the same errors: tests read the ranges, the key's place and the labels from them rather
// than guess them from pixels.
std::string plot_lines_script(const std::string& path, const std::string& title, const std::string& x_label,
                              const std::string& y_label, const std::vector<Series>& series,
                              const PlotOptions& options);
std::string plot_scatter_script(const std::string& path, const std::string& title, const std::string& x_label,
                                const std::string& y_label, const std::vector<double>& x,
                                const std::vector<double>& y, const std::vector<std::int64_t>& labels,
                                const PlotOptions& options);
std::string plot_scatter_panels_script(const std::string& path, const std::string& title,
                                      const std::vector<ScatterPanel>& panels, const PlotOptions& options);
std::string plot_heatmap_script(const std::string& path, const std::string& title, const std::string& x_label,
                                const std::string& y_label, const std::vector<double>& xs,
                                const std::vector<double>& ys, const Array<double>& values,
                                const PlotOptions& options);
}  // namespace detail

}  // namespace tapegrad::models
