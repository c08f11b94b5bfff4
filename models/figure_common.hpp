// What the image grids (images.cpp) and the gnuplot plots (figures.cpp) share. Internal to the library;
// defined in images.cpp, beside the font that first needed them.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace tapegrad::models::detail {

// How every message about the figure at `path` starts: "figure runs/a/loss.png".
std::string figure_name(const std::string& path);

// Everything left to read from a file descriptor, up to its end or an error.
std::string read_all(int fd);

// The code points of UTF-8 text; a byte that starts no valid sequence reads as U+FFFD, a control
// character as a space.
std::vector<int> code_points(std::string_view text);

}  // namespace tapegrad::models::detail
