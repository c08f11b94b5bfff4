// Models by name and back: what checkpoints and the CLI rebuild models from.
#include <nlohmann/json.hpp>

#include "helpers.hpp"
#include "tapegrad/models/sparse.hpp"
#include "tapegrad/models/factory.hpp"

using namespace tapegrad;
using namespace tapegrad::models;

TEST_CASE("every variant by name, described and rebuilt the same") {
    AutoencoderConfig sigmoid_code{.sizes = {8, 4, 2}, .latent_activation = "sigmoid"};
    for (const VariantInfo& info : variant_infos()) {
        std::string_view variant = info.name;
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
                         "contractive: unknown option {\"gamma\":2} (known: lambda)", ValueError);
    CHECK_THROWS_WITH_AS(make_autoencoder<float>("vanilla", c, R"({"level": 0.2})"),
                         "vanilla: unknown option {\"level\":0.2} (it has none)", ValueError);
    CHECK_THROWS_AS(make_autoencoder<float>("denoising", c, "{"), ValueError);
}

TEST_CASE("each option is declared once: checked against its range, filled with its default, printed") {
    AutoencoderConfig c{.sizes = {8, 2}, .seed = 7};
    // Every declared option has a default that passes its own check, and the declaration's default is
    // the options struct's.
    for (const VariantInfo& info : variant_infos()) {
        CAPTURE(info.name);
        auto filled = nlohmann::json::parse(complete_options(info.name, "{}", 7));
        CHECK(filled.size() == info.options.size());
        for (const OptionSpec& o : info.options) {
            CAPTURE(o.name);
            CHECK(filled.contains(o.name));
            CHECK_FALSE(o.meaning.empty());
            CHECK_FALSE(o.range().empty());
        }
    }
    CHECK(nlohmann::json::parse(complete_options("sparse", "{}", 0)) ==
          nlohmann::json{{"rho", SparseOptions{}.rho}, {"beta", SparseOptions{}.beta}, {"lambda", SparseOptions{}.lambda}});
    CHECK(variant_info("sparse").latent_activation == "sigmoid");
    CHECK(variant_info("sparse").options[0].range() == "(0, 1)");
    CHECK(variant_info("sparse").options[1].range() == "[0, inf)");
    CHECK(variant_info("denoising").options[0].range() == "masking | gaussian | salt_and_pepper");
    CHECK(variant_info("denoising").options[2].default_text() == "the model's seed");
    CHECK(variant_names() == "vanilla, denoising, sparse, contractive, variational");

    // Out of range, wrong type, wrong choice: named, with what is allowed.
    c.latent_activation = "sigmoid";
    CHECK_THROWS_WITH_AS(make_autoencoder<float>("sparse", c, R"({"rho": 1.5})"),
                         "sparse: option rho must be a number in (0, 1), got 1.5", ValueError);
    CHECK_THROWS_WITH_AS(make_autoencoder<float>("sparse", c, R"({"rho": 0})"),
                         "sparse: option rho must be a number in (0, 1), got 0", ValueError);
    CHECK_THROWS_WITH_AS(make_autoencoder<float>("sparse", c, R"({"beta": "big"})"),
                         "sparse: option beta must be a number in [0, inf), got \"big\"", ValueError);
    CHECK_THROWS_WITH_AS(make_autoencoder<float>("denoising", c, R"({"corruption": "blur"})"),
                         "denoising: option corruption must be one of masking | gaussian | salt_and_pepper, got \"blur\"",
                         ValueError);
    CHECK_THROWS_WITH_AS(make_autoencoder<float>("variational", {.sizes = {8, 2}}, R"({"seed": -1})"),
                         "variational: option seed must be a whole number from 0, got -1", ValueError);
    CHECK_THROWS_WITH_AS(make_autoencoder<float>("denoising", c, "[1]"),
                         "denoising: options must be a JSON object, got [1]", ValueError);
    CHECK_THROWS_WITH_AS(variant_info("stacked"),
                         "model: unknown variant \"stacked\" (known: vanilla, denoising, sparse, contractive, variational)",
                         ValueError);
}

TEST_CASE("the model's seed seeds its noise unless the options give the noise a seed of its own") {
    for (const char* variant : {"denoising", "variational"}) {
        CAPTURE(variant);
        AutoencoderConfig c{.sizes = {8, 2}, .seed = 11};
        auto model = make_autoencoder<double>(variant, c);
        REQUIRE(model->noise_source() != nullptr);
        CHECK(model->noise_source()->seed() == 11);
        auto options = nlohmann::json::parse(model->options_json());
        CHECK(options["seed"] == 11);  // described filled in: the checkpoint keeps it
        auto own = make_autoencoder<double>(variant, c, R"({"seed": 3})");
        CHECK(own->noise_source()->seed() == 3);
        // Two models of other seeds draw other noise: the seed reaches the generator.
        c.seed = 12;
        auto other = make_autoencoder<double>(variant, c);
        CHECK(other->noise_source()->draw()() != make_autoencoder<double>(variant, {.sizes = {8, 2}, .seed = 11})
                                                     ->noise_source()
                                                     ->draw()());
    }
    CHECK(make_autoencoder<float>("vanilla", {.sizes = {8, 2}})->noise_source() == nullptr);
    // The declarations say which variants draw, as the models do (make_autoencoder checks the two agree).
    for (const VariantInfo& info : variant_infos()) {
        CAPTURE(info.name);
        CHECK(info.noise.empty() == (info.name != "denoising" && info.name != "variational"));
    }
    CHECK(variant_info("denoising").noise == "the corruption");
}

TEST_CASE("a model larger than the machine's memory is refused before it is allocated, saying what was asked") {
    AutoencoderConfig c{.sizes = {64, 1000000000000}};  // 25.6 TB: more than any machine this runs on
    std::string message;
    try {
        make_autoencoder<float>("vanilla", c);
    } catch (const ValueError& e) {
        message = e.what();
    }
    CAPTURE(message);
    CHECK(message.rfind("autoencoder: sizes 64-1000000000000 ask for 1.29e+14 parameters (516000.0 GB as float32), more "
                        "than this machine's memory (",
                        0) == 0);
}
