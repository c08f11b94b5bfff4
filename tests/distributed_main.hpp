// The main of a test that runs alone and as several ranks under mpirun (tests/meson.build runs it both
// ways). TAPEGRAD_TEST_RANKS says how many ranks the run was started as; a run that finds itself with
// another count (no MPI in the build, or no mpirun) says why and exits 77, meson's "skipped", so that it
// never passes having checked nothing. Under mpirun every rank runs every test case.
#pragma once

#include <cstdio>
#include <cstdlib>

#include <doctest/doctest.h>

#include "tapegrad/autodiff/distributed.hpp"

namespace tapegrad::test {

inline int expected_ranks() {
    const char* text = std::getenv("TAPEGRAD_TEST_RANKS");
    return text != nullptr ? std::atoi(text) : 1;
}

inline int run_as_ranks(int argc, char** argv) {
    int expected = expected_ranks();
    if (distributed::init() != expected) {
        std::printf("skipped: asked for %d ranks, running as %s\n", expected,
                    distributed::summary().c_str());
        return 77;
    }
    doctest::Context context(argc, argv);
    return context.run();
}

}  // namespace tapegrad::test
