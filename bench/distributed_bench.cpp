// Data-parallel training speed: the dense Fashion-MNIST autoencoder of train_bench (784-256-64-256-784,
// ReLU, sigmoid output, float32, Adam lr 1e-3, batch 128, pixels / 255) trained by models::Trainer with
// TrainerOptions::distributed, alone or as the ranks of `mpirun -np N`: each global batch of 128 split
// across them. Validation on the first 256 test images only, so that an epoch's time is training.
//
// Rank 0 prints one JSON object: the ranks and threads, each epoch's seconds, the time the gradient sums
// took (nn::gradient_reduce_stats: waiting for the slower rank included) and their share of the epochs,
// the bytes of gradient summed per step, and the time of that one sum alone, the ranks in step (the
// median of 200, after a barrier each): what the network estimate in the README starts from. Then, under
// mpirun, whether overlapping that sum with the backward sweep would save time (overlap_probe).
// bench/run_distributed.py runs it beside PyTorch's DistributedDataParallel.
//
//   distributed_bench [--epochs N] [--threads N]
#include <algorithm>
#include <chrono>
#include <numeric>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <CLI/CLI.hpp>

#include "tapegrad/autodiff.hpp"
#include "tapegrad/autodiff/distributed.hpp"
#include "tapegrad/models/trainer.hpp"
#include "tapegrad/nn/data.hpp"
#include "tapegrad/nn/distributed.hpp"

#if TAPEGRAD_MPI
#include <mpi.h>
#endif

#include "median.hpp"

using namespace tapegrad;

namespace {

nn::Dataset load_scaled(const std::string& split) {
    nn::Dataset data = nn::load_dataset("fashion-mnist", split);
    data.x /= 255.0f;
    return data;
}

// Seconds of one sum of `n` floats over the ranks, the ranks starting together: the median of `reps`.
double all_reduce_seconds(std::size_t n, int reps) {
    std::vector<float> buffer(n, 1.0f);
    std::vector<double> times;
    for (int i = 0; i < reps; ++i) {
        distributed::barrier();
        auto start = std::chrono::steady_clock::now();
        distributed::all_reduce_sum(buffer.data(), buffer.size());
        times.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
    }
    return median(times);
}

// Seconds of `step` on every rank, the ranks starting together: the median of `reps`.
template <class Step>
double step_seconds(int reps, Step step) {
    std::vector<double> times;
    for (int i = 0; i < reps; ++i) {
        distributed::barrier();
        auto start = std::chrono::steady_clock::now();
        step();
        times.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
    }
    return median(times);
}

// Whether a sum of the gradients running while the backward sweep computes (as PyTorch's DDP overlaps
// its buckets) would save time here: one step's forward and backward on this rank's 64 rows, alone;
// followed by a blocking sum of the gradients' size (what the Trainer does); and with the sum started
// before them (MPI_Iallreduce) and waited for after, once without and once with a poll (MPI_Test)
// between the forward and the backward sweep, where OpenMPI can move it on.
nlohmann::json overlap_probe([[maybe_unused]] models::Autoencoder<float>& model,
                             [[maybe_unused]] const nn::Dataset& train, [[maybe_unused]] std::size_t n) {
#if TAPEGRAD_MPI
    if (distributed::size() == 1) {
        return nullptr;
    }
    auto [begin, end] = nn::shard_range(128, static_cast<std::size_t>(distributed::rank()),
                                        static_cast<std::size_t>(distributed::size()));
    std::vector<std::size_t> rows(end - begin);
    std::iota(rows.begin(), rows.end(), begin);
    Array<float> x = nn::select_rows(train, rows).x;
    std::vector<float> sums(n, 1.0f);
    Var<float> loss;
    auto forward = [&] {
        model.zero_grad();
        loss = model.loss(Var<float>(x));
    };
    auto compute = [&] {
        forward();
        loss.backward();
    };
    auto start_sum = [&] {
        MPI_Request request = MPI_REQUEST_NULL;
        MPI_Iallreduce(MPI_IN_PLACE, sums.data(), static_cast<int>(n), MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD, &request);
        return request;
    };
    model.train();
    const int reps = 200;
    double alone = step_seconds(reps, compute);
    double sequential = step_seconds(reps, [&] {
        compute();
        MPI_Allreduce(MPI_IN_PLACE, sums.data(), static_cast<int>(n), MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
    });
    double overlapped = step_seconds(reps, [&] {
        MPI_Request request = start_sum();
        compute();
        MPI_Wait(&request, MPI_STATUS_IGNORE);
    });
    double polled = step_seconds(reps, [&] {
        MPI_Request request = start_sum();
        forward();
        int done = 0;
        MPI_Test(&request, &done, MPI_STATUS_IGNORE);
        loss.backward();
        MPI_Wait(&request, MPI_STATUS_IGNORE);
    });
    return {{"forward_backward_seconds", alone},
            {"then_sum_seconds", sequential},
            {"overlapped_seconds", overlapped},
            {"overlapped_polled_seconds", polled}};
#else
    return nullptr;
#endif
}

nlohmann::json run(int epochs, int threads) {
    nn::Dataset train = load_scaled("train");
    nn::Dataset test = load_scaled("test");
    std::vector<std::size_t> first(256);
    std::iota(first.begin(), first.end(), std::size_t{0});
    nn::Dataset validation = nn::select_rows(test, first);
    models::Autoencoder<float> model({.sizes = {train.dim(), 256, 64},
                                      .activation = "relu",
                                      .latent_activation = "relu",
                                      .output_activation = "sigmoid"});
    models::TrainerOptions options{.epochs = epochs, .batch_size = 128, .lr = 1e-3, .restore_best = false,
                                   .distributed = true};
    nn::reset_gradient_reduce_stats();
    models::History history = models::Trainer<float>(model, options).fit(train, &validation);
    nn::GradientReduceStats stats = nn::gradient_reduce_stats();
    std::vector<double> seconds;
    double total = 0;
    for (const models::EpochRecord& r : history.epochs) {
        seconds.push_back(r.seconds);
        total += r.seconds;
    }
    std::size_t parameters = 0;
    for (const auto& p : model.named_parameters()) {
        parameters += p.var.size();
    }
    double alone = all_reduce_seconds(parameters, 200);
    nlohmann::json overlap = overlap_probe(model, train, parameters);
    model.eval();
    double mse = 0;
    for (const nn::Batch& b : nn::Batches(test, {.batch_size = 1000, .shuffle = false})) {
        mse += xt::sum(model.reconstruction_error(b.x))();
    }
    std::size_t steps = nn::Batches(train, {.batch_size = 128}).size() * static_cast<std::size_t>(epochs);
    return {{"ranks", distributed::size()},
            {"mpi", distributed::summary()},
            {"threads", threads},
            {"blas", blas_summary()},
            {"seconds_per_epoch", median(seconds)},
            {"epoch_seconds", seconds},
            {"steps", steps},
            {"parameters", parameters},
            {"reduce_calls", stats.calls},
            {"reduce_sums", stats.sums},
            {"reduce_seconds", stats.seconds},
            {"reduce_share", total > 0 ? stats.seconds / total : 0},
            {"bytes_per_step", stats.calls > 0 ? stats.bytes / stats.calls : 0},
            {"all_reduce_alone_seconds", alone},
            {"overlap", overlap},
            {"train_loss", history.epochs.back().train_loss},
            {"test_mse", mse / double(test.size())}};
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{"tapegrad data-parallel bench: the dense Fashion-MNIST autoencoder, alone or under mpirun"};
    int epochs = 3;
    int threads = 1;
    app.add_option("--epochs", epochs, "timed epochs; the median is reported")->check(CLI::PositiveNumber);
    app.add_option("--threads", threads, "tapegrad's threads on each rank")->check(CLI::PositiveNumber);
    CLI11_PARSE(app, argc, argv);
    configure_blas(argv, threads);
    try {
        nlohmann::json result = run(epochs, threads);
        if (distributed::rank() == 0) {
            fmt::print("{}\n", result.dump());
        }
    } catch (const std::exception& e) {
        fmt::print(stderr, "distributed_bench: rank {}: {}\n", distributed::rank(), e.what());
        distributed::abort(1);
    }
    return 0;
}
