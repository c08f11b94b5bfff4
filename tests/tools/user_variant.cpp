// A user's program, as the README shows one: a variant of its own, registered by name with its options
// declared once, and tapegrad's command line on it. `user_variant variants`, `user_variant train --model
// jitter ...`, `evaluate`, `grad`, `gradcheck`, `train --resume` all work on "jitter" as on the built-in
// variants (tests/tools/registry_test.cpp runs them). It builds against the installed library alone:
// g++ user_variant.cpp $(pkg-config --cflags --libs tapegrad-cli) (tests/install/run.sh does).
#include <cstdint>
#include <memory>
#include <random>
#include <string>

#include <nlohmann/json.hpp>

#include "tapegrad/cli.hpp"
#include "tapegrad/models/factory.hpp"
#include "tapegrad/nn/losses.hpp"

using namespace tapegrad;

// The jittered input (plus N(0, level^2) noise from the model's own generator) reconstructed against the
// clean one. The generator is the model's noise_source(), so that a checkpoint keeps its state and a
// resumed run draws what an unbroken one would; gradcheck fixes it.
template <class T>
class JitterAutoencoder : public models::Autoencoder<T> {
public:
    JitterAutoencoder(models::AutoencoderConfig config, double level, std::uint64_t seed)
        : models::Autoencoder<T>(std::move(config)), level_(level), noise_(seed) {}

    Var<T> loss(const Var<T>& x) override {
        Array<T> jittered = x.value();
        // Drawn as for the whole batch: under mpirun each rank's rows get what they get in one process.
        this->draw_over_batch(jittered.data(), x.shape()[0], x.shape()[1], [this](T* v, std::size_t n) {
            std::normal_distribution<double> normal(0, level_);
            std::mt19937_64& rng = noise_.draw();
            for (std::size_t i = 0; i < n; ++i) {
                v[i] += static_cast<T>(normal(rng));
            }
        });
        return nn::mse(this->reconstruct(Var<T>(std::move(jittered))), x);
    }
    std::string variant() const override { return "jitter"; }
    std::string options_json() const override {
        return nlohmann::json{{"level", level_}, {"seed", noise_.seed()}}.dump();
    }
    models::NoiseSource* noise_source() override { return &noise_; }

private:
    double level_;
    models::NoiseSource noise_;
};

// What the registry holds: the declaration, and how to build the model from its checked options.
struct Jitter {
    static models::VariantInfo info() {
        using Type = models::OptionSpec::Type;
        return {.name = "jitter",
                .summary = "MSE of the reconstruction of the input plus Gaussian noise, against the clean input",
                .options = {{.name = "level", .default_value = "0.1", .min = 0, .max = 1, .min_open = true,
                             .meaning = "the noise's standard deviation"},
                            {.name = "seed", .type = Type::integer, .min = 0, .meaning = "seed of the noise"}},
                .noise = "the jitter, N(0, level^2) on each input value"};
    }
    template <class T>
    static std::shared_ptr<models::Autoencoder<T>> make(const models::AutoencoderConfig& config,
                                                        const nlohmann::json& options) {
        return std::make_shared<JitterAutoencoder<T>>(config, options.at("level").get<double>(),
                                                      options.at("seed").get<std::uint64_t>());
    }
};

int main(int argc, char** argv) {
    models::register_variant<Jitter>();
    return cli::main(argc, argv);
}
