#include "tapegrad/autodiff/distributed.hpp"

#include <algorithm>
#include <cstdlib>
#include <type_traits>

#include <fmt/format.h>

#if TAPEGRAD_MPI
#include <mpi.h>
#endif

namespace tapegrad::distributed {

namespace {

struct World {
    int rank = 0;
    int size = 1;
    std::string why;  // why alone, when MPI was not joined
};

bool started_by_mpirun() {
    return std::getenv("OMPI_COMM_WORLD_SIZE") != nullptr || std::getenv("PMIX_RANK") != nullptr;
}

#if TAPEGRAD_MPI

[[noreturn]] void fail(std::string_view call, std::string_view mpi_call, int code) {
    char text[MPI_MAX_ERROR_STRING] = {};
    int length = 0;
    MPI_Error_string(code, text, &length);
    throw DistributedError(fmt::format("{}: {} failed: {}", call, mpi_call, std::string_view(text, length)));
}

void check(int code, std::string_view call, std::string_view mpi_call) {
    if (code != MPI_SUCCESS) {
        fail(call, mpi_call, code);
    }
}

// Leaves MPI at exit, unless the program already did.
void leave() {
    int finalized = 0;
    MPI_Finalized(&finalized);
    if (!finalized) {
        MPI_Finalize();
    }
}

template <class T>
MPI_Datatype datatype() {
    static_assert(std::is_same_v<T, float> || std::is_same_v<T, double>);
    return std::is_same_v<T, float> ? MPI_FLOAT : MPI_DOUBLE;
}

// MPI counts are ints: a longer buffer goes in pieces, the same pieces on every rank. Calls
// call(start, count) for each.
template <class Call>
void in_pieces(std::size_t n, Call call) {
    constexpr std::size_t piece = std::size_t(1) << 30;
    for (std::size_t start = 0; start < n; start += piece) {
        call(start, static_cast<int>(std::min(piece, n - start)));
    }
}

#endif

World join() {
    World w;
#if TAPEGRAD_MPI
    if (!started_by_mpirun()) {
        w.why = "MPI: not started by mpirun";
        return w;
    }
    int initialised = 0;
    MPI_Initialized(&initialised);
    if (!initialised) {
        int provided = 0;
        // Only one thread at a time calls MPI: tapegrad's workers never do.
        check(MPI_Init_thread(nullptr, nullptr, MPI_THREAD_SERIALIZED, &provided), "distributed::init",
              "MPI_Init_thread");
        std::atexit(leave);
    }
    // Errors come back as codes, which become exceptions naming the call, instead of aborting the job.
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    check(MPI_Comm_rank(MPI_COMM_WORLD, &w.rank), "distributed::init", "MPI_Comm_rank");
    check(MPI_Comm_size(MPI_COMM_WORLD, &w.size), "distributed::init", "MPI_Comm_size");
#else
    w.why = started_by_mpirun() ? "no MPI in this build, though started by mpirun" : "no MPI in this build";
#endif
    return w;
}

const World& world() {
    static const World w = join();
    return w;
}

}  // namespace

bool built_with_mpi() noexcept {
#if TAPEGRAD_MPI
    return true;
#else
    return false;
#endif
}

int init() { return world().size; }

int rank() { return world().rank; }

int size() { return world().size; }

int launched_processes() {
    const char* n = std::getenv("OMPI_COMM_WORLD_SIZE");
    return n != nullptr && std::atoi(n) > 1 ? std::atoi(n) : 1;
}

template <class T>
void all_reduce_sum([[maybe_unused]] T* data, [[maybe_unused]] std::size_t n) {
    if (world().size == 1) {
        return;
    }
#if TAPEGRAD_MPI
    in_pieces(n, [&](std::size_t start, int count) {
        check(MPI_Allreduce(MPI_IN_PLACE, data + start, count, datatype<T>(), MPI_SUM, MPI_COMM_WORLD),
              "all_reduce", "MPI_Allreduce");
    });
#endif
}

template <class T>
void broadcast([[maybe_unused]] T* data, [[maybe_unused]] std::size_t n) {
    if (world().size == 1) {
        return;
    }
#if TAPEGRAD_MPI
    in_pieces(n, [&](std::size_t start, int count) {
        check(MPI_Bcast(data + start, count, datatype<T>(), 0, MPI_COMM_WORLD), "broadcast", "MPI_Bcast");
    });
#endif
}

void barrier() {
    if (world().size == 1) {
        return;
    }
#if TAPEGRAD_MPI
    check(MPI_Barrier(MPI_COMM_WORLD), "barrier", "MPI_Barrier");
#endif
}

void abort(int code) {
#if TAPEGRAD_MPI
    if (world().size > 1) {
        MPI_Abort(MPI_COMM_WORLD, code);
    }
#endif
    std::exit(code);
}

std::string summary() {
    const World& w = world();
#if TAPEGRAD_MPI
    if (w.why.empty()) {
        char version[MPI_MAX_LIBRARY_VERSION_STRING] = {};
        int length = 0;
        MPI_Get_library_version(version, &length);
        std::string_view text(version, static_cast<std::size_t>(length));
        text = text.substr(0, text.find(','));  // "Open MPI v4.1.4, package: ..." -> "Open MPI v4.1.4"
        return fmt::format("{}, {} rank{}", text, w.size, w.size == 1 ? "" : "s");
    }
#endif
    return fmt::format("1 process ({})", w.why);
}

template void all_reduce_sum<float>(float*, std::size_t);
template void all_reduce_sum<double>(double*, std::size_t);
template void broadcast<float>(float*, std::size_t);
template void broadcast<double>(double*, std::size_t);

}  // namespace tapegrad::distributed
