// The tapegrad command line as a function: a user's program registers its own variants
// (tapegrad/models/factory.hpp, register_variant) and hands its arguments here, and every verb (train,
// train --resume, evaluate, grad, gradcheck, compare, anomaly, variants) works on them as on the
// built-in ones. The tapegrad executable is this call alone. Messages, help and hints name the program
// by argv[0]'s file name ("tapegrad", or the user's program), so that a hint such as "continue with:
// <program> train --resume ..." names a program that knows the variant.
//
// Link: $(pkg-config --cflags --libs tapegrad-cli), or dependency('tapegrad-cli') in meson.
#pragma once

namespace tapegrad::cli {

// Parses argv (argv[0] the program, then a verb and its options), runs the verb and returns the exit
// status: 0, 1 for an error (one line on stderr), 2 for a usage error, 130 for a run interrupted by
// Ctrl-C. It may start the program again first (configure_blas, tapegrad/autodiff/blas.hpp), so call
// it before anything that must happen once.
int main(int argc, char** argv);

}  // namespace tapegrad::cli
