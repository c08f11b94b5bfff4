// The tapegrad executable: the command line of tools/cli.hpp, on the built-in variants.
#include "tapegrad/cli.hpp"

int main(int argc, char** argv) {
    return tapegrad::cli::main(argc, argv);
}
