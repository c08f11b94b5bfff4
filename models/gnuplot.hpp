// Running gnuplot, apart from the scripts figures.cpp writes for it: a child process, its output and its
// errors. Internal to the library.
#pragma once

#include <string>

namespace tapegrad::models::detail {

// Runs `program -d script` (-d: without the user's ~/.gnuplot, so every machine draws the same figure)
// and returns the PNG it wrote to its standard output. `what` starts the messages ("figure loss.png");
// gnuplot missing, failing, killed or writing no PNG is a FigureError carrying what gnuplot printed.
std::string run_gnuplot(const std::string& what, const std::string& program, const std::string& script);

}  // namespace tapegrad::models::detail
