// Data-parallel training (TrainerOptions::distributed): the ranks together compute what one process
// computes, for every variant, up to the order of the sums. Alone (models/distributed), where the split
// is no split, and as 2 ranks under mpirun (models/distributed_2ranks); see distributed_main.hpp.
//
// Each rank trains the one-process reference itself (distributed off: the whole batches, alone), so the
// comparison needs no file between the ranks.
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include <unistd.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <xtensor-blas/xlinalg.hpp>
#include <xtensor/xview.hpp>

#include "distributed_main.hpp"
#include "helpers.hpp"
#include "tapegrad/models/factory.hpp"
#include "tapegrad/models/trainer.hpp"
#include "tapegrad/nn/data.hpp"
#include "tapegrad/nn/distributed.hpp"
#include "tapegrad/nn/losses.hpp"

using namespace tapegrad;
using namespace tapegrad::models;

namespace {

const std::vector<std::string> variants = {"vanilla", "denoising", "sparse", "contractive", "variational"};

// The sparse penalty needs codes in (0, 1), the variational encoder an unbounded one.
AutoencoderConfig config(const std::string& variant = "vanilla", std::uint64_t seed = 4) {
    return {.sizes = {8, 6, 3}, .activation = "tanh", .latent_activation = variant == "sparse" ? "sigmoid" : "identity",
            .seed = seed};
}

// `rows` samples of 8 features in [0, 1], near a 2-D plane. 161 rows in batches of 32 end with a batch
// of one row: under 2 ranks, rank 1's part of it is empty.
nn::Dataset plane_data(std::size_t rows, std::uint64_t seed = 1) {
    Array<double> codes = test::random_array<double>({rows, 2}, seed, 0, 1);
    Array<double> mix = test::random_array<double>({2, 8}, seed + 1, 0, 0.5);
    nn::Dataset d;
    d.x = xt::cast<float>(xt::linalg::dot(codes, mix) + test::random_array<double>({rows, 8}, seed + 2, -0.01, 0.01));
    d.name = "plane";
    return d;
}

// The largest difference between a and b, relative to b's largest magnitude.
double relative_difference(const Array<double>& a, const Array<double>& b) {
    REQUIRE(a.shape() == b.shape());
    double scale = 1e-300;
    double worst = 0;
    for (std::size_t i = 0; i < a.size(); ++i) {
        scale = std::max(scale, std::abs(b.data()[i]));
        worst = std::max(worst, std::abs(a.data()[i] - b.data()[i]));
    }
    return worst / scale;
}

double parameter_difference(Autoencoder<double>& a, Autoencoder<double>& b) {
    auto pa = a.named_parameters();
    auto pb = b.named_parameters();
    REQUIRE(pa.size() == pb.size());
    double worst = 0;
    for (std::size_t i = 0; i < pa.size(); ++i) {
        worst = std::max(worst, relative_difference(pa[i].var.value(), pb[i].var.value()));
    }
    return worst;
}

bool same_bits(Autoencoder<double>& a, Autoencoder<double>& b) {
    auto pa = a.named_parameters();
    auto pb = b.named_parameters();
    for (std::size_t i = 0; i < pa.size(); ++i) {
        if (std::memcmp(pa[i].var.value().data(), pb[i].var.value().data(), pa[i].var.size() * sizeof(double)) != 0) {
            return false;
        }
    }
    return true;
}

// This rank's rows of a batch, as the Trainer cuts it, and the shard the model is told.
std::pair<Array<double>, BatchShard> part_of(const Array<double>& x) {
    std::size_t n = x.shape(0);
    auto [begin, end] = nn::shard_range(n, static_cast<std::size_t>(distributed::rank()),
                                        static_cast<std::size_t>(distributed::size()));
    if (begin == end) {
        return {xt::view(x, xt::range(0, 1), xt::all()), {.begin = 0, .rows = 0, .global_rows = n}};
    }
    return {xt::view(x, xt::range(begin, end), xt::all()), {.begin = begin, .rows = end - begin, .global_rows = n}};
}

// The objective of a split batch as the Trainer computes it: each rank's loss weighed by its rows, the
// gradients summed over the ranks. Returns the loss summed over the ranks.
double split_step(Autoencoder<double>& model, const Array<double>& x) {
    auto [part, shard] = part_of(x);
    model.set_shard(shard);
    model.zero_grad();
    Var<double> loss = model.loss(Var<double>(part));
    double weight = double(shard.rows) / double(shard.global_rows);
    (loss * weight).backward();
    nn::all_reduce_gradients(model.named_parameters());
    model.set_shard({});
    double total = loss.item() * weight;
    distributed::all_reduce_sum(&total, 1);
    return total;
}

// A user's sparse variant that takes the batch mean with mean(code, 0) instead of batch_mean: right in
// one process, and not the same objective when the batch is split.
template <class T>
class LocalMeanSparse : public Autoencoder<T> {
public:
    using Autoencoder<T>::Autoencoder;
    Var<T> loss(const Var<T>& x) override {
        Var<T> code = this->encode(x);
        return nn::mse(this->decode(code), x) + T(0.5) * nn::kl_bernoulli(0.1, mean(code, 0));
    }
};

// draw_over_batch, open to the test as a variant uses it.
class Drawing : public Autoencoder<double> {
public:
    using Autoencoder<double>::Autoencoder;
    template <class Draw>
    void draw(double* values, std::size_t rows, std::size_t width, Draw d) {
        this->draw_over_batch(values, rows, width, d);
    }
};

}  // namespace

TEST_CASE("draw_over_batch gives a part its rows' draws of the whole batch, and a stand-in row the first row's") {
    Drawing model(config());
    // Each value set from its place in what is drawn over: a draw that ignores what was there, as the
    // variational noise does, so that a value never written stays NaN.
    auto draw = [](double* v, std::size_t n) {
        for (std::size_t i = 0; i < n; ++i) {
            v[i] = double(i) + 0.5;
        }
    };
    double nan = std::nan("");
    std::vector<double> part = {nan, nan, nan, nan};  // rows 1 and 2 of a batch of 3, 2 wide
    model.set_shard({.begin = 1, .rows = 2, .global_rows = 3});
    model.draw(part.data(), 2, 2, draw);
    CHECK(part == std::vector<double>{2.5, 3.5, 4.5, 5.5});
    std::vector<double> stand_in = {nan, nan};  // a rank whose part is empty computes on row 0
    model.set_shard({.begin = 0, .rows = 0, .global_rows = 3});
    model.draw(stand_in.data(), 1, 2, draw);
    CHECK(stand_in == std::vector<double>{0.5, 1.5});
    std::vector<double> whole = {nan, nan};
    model.set_shard({});
    model.draw(whole.data(), 1, 2, draw);
    CHECK(whole == std::vector<double>{0.5, 1.5});
}

TEST_CASE("a split batch gives each variant the gradient and the loss of the whole batch") {
    for (const std::string& variant : variants) {
        for (std::size_t rows : {7, 1}) {  // 1 row: rank 1's part is empty and counts 0
            CAPTURE(variant);
            CAPTURE(rows);
            auto whole = make_autoencoder<double>(variant, config(variant));
            auto split = make_autoencoder<double>(variant, config(variant));
            Array<double> x = xt::cast<double>(plane_data(rows).x);
            whole->zero_grad();
            Var<double> loss = whole->loss(Var<double>(x));
            loss.backward();
            double total = split_step(*split, x);
            CHECK(total == doctest::Approx(loss.item()).epsilon(1e-13));
            auto want = whole->named_parameters();
            auto got = split->named_parameters();
            for (std::size_t i = 0; i < want.size(); ++i) {
                CAPTURE(want[i].name);
                CHECK(relative_difference(got[i].var.grad().value(), want[i].var.grad().value()) < 1e-13);
            }
            // The noise drawn for the batch leaves every rank's generator where one process's is.
            if (NoiseSource* noise = whole->noise_source()) {
                bool same_state = split->noise_source()->draw() == noise->draw();
                CHECK(same_state);
            }
        }
    }
}

TEST_CASE("a batch mean taken on each rank's rows alone is caught: the split gradient is another") {
    LocalMeanSparse<double> whole(config("sparse"));
    LocalMeanSparse<double> split(config("sparse"));
    Array<double> x = xt::cast<double>(plane_data(7).x);
    whole.zero_grad();
    whole.loss(Var<double>(x)).backward();
    split_step(split, x);
    double worst = 0;
    auto want = whole.named_parameters();
    auto got = split.named_parameters();
    for (std::size_t i = 0; i < want.size(); ++i) {
        worst = std::max(worst, relative_difference(got[i].var.grad().value(), want[i].var.grad().value()));
    }
    if (distributed::size() == 1) {
        CHECK(worst == 0);
    } else {
        CHECK(worst > 1e-4);
    }
}

TEST_CASE("the ranks train what one process trains, each variant two epochs in float64, and repeat it bit for bit") {
    nn::Dataset data = plane_data(161);
    for (const std::string& variant : variants) {
        CAPTURE(variant);
        TrainerOptions options{.epochs = 2, .batch_size = 32, .lr = 1e-2, .validation_fraction = 0.2, .seed = 3};
        auto alone = make_autoencoder<double>(variant, config(variant));
        History want = Trainer<double>(*alone, options).fit(data);
        options.distributed = true;
        auto split = make_autoencoder<double>(variant, config(variant));
        History got = Trainer<double>(*split, options).fit(data);
        REQUIRE(got.epochs.size() == want.epochs.size());
        double losses = 0;
        for (std::size_t e = 0; e < want.epochs.size(); ++e) {
            const EpochRecord& a = got.epochs[e];
            const EpochRecord& b = want.epochs[e];
            for (auto [x, y] : {std::pair{a.train_loss, b.train_loss}, {a.validation_loss, b.validation_loss},
                                {a.validation_mse, b.validation_mse}}) {
                losses = std::max(losses, std::abs(x - y) / std::abs(y));
            }
            REQUIRE(a.terms.size() == b.terms.size());
            for (std::size_t t = 0; t < a.terms.size(); ++t) {
                CAPTURE(a.terms[t].first);
                CHECK(a.terms[t].second == doctest::Approx(b.terms[t].second).epsilon(1e-12));
                losses = std::max(losses, std::abs(a.terms[t].second - b.terms[t].second) / std::abs(b.terms[t].second));
            }
        }
        double weights = parameter_difference(*split, *alone);
        MESSAGE(fmt::format("{} on {} ranks: losses and terms within {:.2g}, weights within {:.2g} (relative)", variant,
                            distributed::size(), losses, weights));
        CHECK(losses < 1e-14);
        CHECK(weights < 1e-14);
        if (distributed::size() == 1) {
            CHECK(same_bits(*split, *alone));
        }
        auto again = make_autoencoder<double>(variant, config(variant));
        Trainer<double>(*again, options).fit(data);
        CHECK(same_bits(*again, *split));
    }
}

TEST_CASE("a checkpoint written by the ranks resumes alone, and one written alone resumes on the ranks") {
    namespace fs = std::filesystem;
    // The ranks of one job share their mpirun, their parent: one folder for all of them.
    fs::path dir = fs::temp_directory_path() / fmt::format("tapegrad_distributed_test_{}", getppid());
    if (distributed::rank() == 0) {
        fs::remove_all(dir);
        fs::create_directories(dir);
    }
    distributed::barrier();
    nn::Dataset data = plane_data(161);
    TrainerOptions options{.epochs = 4, .batch_size = 32, .lr = 1e-2, .restore_best = false, .seed = 5,
                           .checkpoint_seconds = 0};
    auto unbroken = make_autoencoder<double>("denoising", config());
    Trainer<double>(*unbroken, options).fit(data);

    auto resumed = [&](const std::string& checkpoint, bool split) {
        TrainerOptions rest = options;
        rest.resume = checkpoint;
        rest.distributed = split;
        auto model = make_autoencoder<double>("denoising", config());
        Trainer<double>(*model, rest).fit(data);
        return model;
    };
    TrainerOptions half = options;
    half.epochs = 2;
    // Written by the ranks, resumed alone.
    half.distributed = true;
    half.checkpoint = (dir / "ranks.npz").string();
    Trainer<double>(*make_autoencoder<double>("denoising", config()), half).fit(data);
    distributed::barrier();  // rank 0 wrote it
    CHECK(parameter_difference(*resumed(half.checkpoint, false), *unbroken) < 1e-12);
    // Written alone (by rank 0 only: two writers of one file would race), resumed on the ranks.
    half.distributed = false;
    half.checkpoint = (dir / "alone.npz").string();
    if (distributed::rank() == 0) {
        Trainer<double>(*make_autoencoder<double>("denoising", config()), half).fit(data);
    }
    distributed::barrier();
    CHECK(parameter_difference(*resumed(half.checkpoint, true), *unbroken) < 1e-12);
    distributed::barrier();
    if (distributed::rank() == 0) {
        fs::remove_all(dir);
    }
}

TEST_CASE("ranks that differ in an option, the data or the model are refused at the start, naming it") {
    nn::Dataset data = plane_data(64);
    int rank = distributed::rank();
    auto fit = [&](TrainerOptions options, const nn::Dataset& d, AutoencoderConfig c) {
        options.distributed = true;
        auto model = make_autoencoder<double>("vanilla", c);
        Trainer<double>(*model, options).fit(d);
    };
    TrainerOptions options{.epochs = 1, .batch_size = 16};
    if (distributed::size() == 1) {
        CHECK_NOTHROW(fit(options, data, config()));
        return;
    }
    TrainerOptions other = options;
    other.lr = rank == 1 ? 0.02 : 0.01;
    CHECK_THROWS_WITH_AS(fit(other, data, config()),
                         "trainer: the option lr differs between the ranks: rank 0 has 0.01, rank 1 has 0.02",
                         DistributedError);
    nn::Dataset theirs = rank == 1 ? plane_data(64, 7) : data;
    CHECK_THROWS_WITH_AS(fit(options, theirs, config()),
                         doctest::Contains("trainer: the training data differs between the ranks: rank 0 has "),
                         DistributedError);
    CHECK_THROWS_WITH_AS(fit(options, data, config("vanilla", rank == 1 ? 9 : 4)),
                         doctest::Contains("trainer: the model differs between the ranks"), DistributedError);
}

int main(int argc, char** argv) { return tapegrad::test::run_as_ranks(argc, argv); }
