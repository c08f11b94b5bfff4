// Trainer: losses fall, validation is split off, early stopping stops, the best weights come back, and
// a run resumed from its checkpoint ends where the unbroken one does.
#include <filesystem>
#include <sstream>

#include <xtensor-blas/xlinalg.hpp>

#include "helpers.hpp"
#include "tapegrad/models/trainer.hpp"

using namespace tapegrad;
using namespace tapegrad::models;

namespace {

// 200 samples of 8 features in [0, 1] that lie near a 2-D plane: an autoencoder with a 2-D code can
// learn them.
nn::Dataset plane_data() {
    Array<float> codes = test::random_array<float>({200, 2}, 1, 0, 1);
    Array<float> mix = test::random_array<float>({2, 8}, 2, 0, 0.5);
    Array<float> noise = test::random_array<float>({200, 8}, 3, -0.01, 0.01);
    nn::Dataset d;
    d.x = xt::linalg::dot(codes, mix) + noise;
    d.name = "plane";
    return d;
}

AutoencoderConfig config() {
    return {.sizes = {8, 6, 2}, .activation = "tanh", .output_activation = "sigmoid", .seed = 4};
}

}  // namespace

TEST_CASE("training lowers the loss and records every epoch") {
    Autoencoder<float> model(config());
    std::ostringstream log;
    Trainer<float> trainer(model, {.epochs = 15, .batch_size = 32, .lr = 1e-2, .restore_best = false, .log = &log});
    History h = trainer.fit(plane_data());
    REQUIRE(h.epochs.size() == 15);
    CHECK(h.epochs.back().train_loss < 0.5 * h.epochs.front().train_loss);
    CHECK(h.epochs.back().validation_mse < 0.5 * h.epochs.front().validation_mse);
    CHECK(h.best_epoch >= 1);
    CHECK_FALSE(h.stopped_early);
    // Not a terminal: one plain line per epoch.
    std::string text = log.str();
    CHECK(text.find("epoch   1/15  train loss ") == 0);
    CHECK(std::count(text.begin(), text.end(), '\n') == 15);
    CHECK(text.find('\r') == std::string::npos);
    History back = History::from_json(h.to_json());
    CHECK(back.to_json() == h.to_json());
}

TEST_CASE("early stopping stops, and the best weights come back") {
    Autoencoder<float> model(config());
    Trainer<float> frozen(model, {.epochs = 10, .optimizer = "sgd", .lr = 1e-12, .momentum = 0, .patience = 2,
                                  .min_delta = 1e-3});
    History h = frozen.fit(plane_data());
    CHECK(h.stopped_early);
    CHECK(h.epochs.size() == 3);  // epoch 1 is the best; 2 and 3 do not improve on it by min_delta
    Autoencoder<float> other(config());
    Trainer<float> trainer(other, {.epochs = 8, .lr = 0.05, .seed = 2});
    nn::Dataset data = plane_data();
    History best = trainer.fit(data, &data);
    CHECK(xt::mean(other.reconstruction_error(data.x))() == doctest::Approx(best.best_validation_mse).epsilon(1e-5));
}

TEST_CASE("a run resumed from its checkpoint ends where the unbroken run does") {
    namespace fs = std::filesystem;
    fs::path dir = fs::temp_directory_path() / "tapegrad_trainer_test";
    fs::create_directories(dir);
    nn::Dataset data = plane_data();
    TrainerOptions options{.epochs = 4, .batch_size = 32, .lr = 1e-2, .restore_best = false, .seed = 5};

    Autoencoder<float> unbroken(config());
    Trainer<float>(unbroken, options).fit(data);

    Autoencoder<float> first_half(config());
    TrainerOptions half = options;
    half.epochs = 2;
    half.checkpoint = (dir / "run.npz").string();
    Trainer<float>(first_half, half).fit(data);

    Autoencoder<float> resumed({.sizes = {8, 6, 2}, .activation = "tanh", .output_activation = "sigmoid", .seed = 77});
    TrainerOptions rest = options;
    rest.resume = (dir / "run.npz").string();
    History h = Trainer<float>(resumed, rest).fit(data);
    CHECK(h.epochs.size() == 4);
    auto a = unbroken.named_parameters();
    auto b = resumed.named_parameters();
    for (std::size_t i = 0; i < a.size(); ++i) {
        CAPTURE(a[i].name);
        CHECK(a[i].var.value() == b[i].var.value());
    }
    fs::remove_all(dir);
}

TEST_CASE("bad options are named") {
    Autoencoder<float> model(config());
    CHECK_THROWS_WITH_AS(Trainer<float>(model, {.optimizer = "lbfgs"}),
                         "trainer: unknown optimizer \"lbfgs\" (known: adam, adamw, sgd)", ValueError);
    CHECK_THROWS_WITH_AS(Trainer<float>(model, {.validation_fraction = 1.0}),
                         "trainer: validation fraction 1 outside [0, 1)", ValueError);
}
