// Models by name and back: what checkpoints and the CLI rebuild models from.
#include "helpers.hpp"
#include "tapegrad/models/factory.hpp"

using namespace tapegrad;
using namespace tapegrad::models;

TEST_CASE("every variant by name, described and rebuilt the same") {
    AutoencoderConfig sigmoid_code{.sizes = {8, 4, 2}, .latent_activation = "sigmoid"};
    for (std::string_view variant : variants) {
        CAPTURE(variant);
        AutoencoderConfig c = sigmoid_code;
        if (variant == "variational") {
            c.latent_activation = "identity";
        }
        auto model = make_autoencoder<float>(std::string(variant), c);
        CHECK(model->variant() == variant);
        std::string description = describe_model(*model);
        auto rebuilt = model_from_description<float>(description);
        CHECK(describe_model(*rebuilt) == description);
        CHECK(rebuilt->parameter_count() == model->parameter_count());
    }
    auto denoising = make_autoencoder<double>("denoising", sigmoid_code, R"({"corruption": "gaussian", "level": 0.2})");
    CHECK(describe_model(*denoising).find(R"("corruption":"gaussian")") != std::string::npos);
}

TEST_CASE("unknown variants and options are named") {
    AutoencoderConfig c{.sizes = {8, 2}};
    CHECK_THROWS_WITH_AS(make_autoencoder<float>("stacked", c),
                         "model: unknown variant \"stacked\" (known: vanilla, denoising, sparse, contractive, variational)",
                         ValueError);
    CHECK_THROWS_WITH_AS(make_autoencoder<float>("contractive", c, R"({"lambda": 0.1, "gamma": 2})"),
                         "contractive: unknown option {\"gamma\":2}", ValueError);
    CHECK_THROWS_AS(make_autoencoder<float>("denoising", c, "{"), ValueError);
}
