// The variant registry as a user's program meets it: a variant registered in this process, at namespace
// scope before main or by a call, is built, checked, filled in and described as the built-in ones are;
// a name is taken once; a declaration that does not hold together, or a model that does not say who it
// is, is refused with what is wrong. Registration cannot be undone, so this is a binary of its own:
// factory_test sees the built-in five alone.
#include <algorithm>
#include <random>
#include <thread>

#include <nlohmann/json.hpp>

#include "helpers.hpp"
#include "tapegrad/models/factory.hpp"
#include "tapegrad/nn/losses.hpp"

using namespace tapegrad;
using namespace tapegrad::models;
using nlohmann::json;

namespace {

// The message of what `f` throws as ValueError, or "" when it throws nothing.
template <class F>
std::string error_of(F&& f) {
    try {
        f();
    } catch (const ValueError& e) {
        return e.what();
    }
    return "";
}

bool registered(std::string_view name) {
    std::vector<VariantInfo> infos = variant_infos();
    return std::any_of(infos.begin(), infos.end(), [&](const VariantInfo& info) { return info.name == name; });
}

// A deterministic variant with an integer and a text option: the vanilla loss, its options kept.
template <class T>
class ShiftAutoencoder : public Autoencoder<T> {
public:
    ShiftAutoencoder(AutoencoderConfig config, std::int64_t k, std::string mode)
        : Autoencoder<T>(std::move(config)), k_(k), mode_(std::move(mode)) {}
    std::string variant() const override { return "shift"; }
    std::string options_json() const override { return json{{"k", k_}, {"mode", mode_}}.dump(); }

private:
    std::int64_t k_;
    std::string mode_;
};

struct Shift {
    static VariantInfo info() {
        using Type = OptionSpec::Type;
        return {.name = "shift",
                .summary = "MSE of the reconstruction",
                .activation = "tanh",
                .lr = 2e-3,
                .options = {{.name = "k", .type = Type::integer, .default_value = "2", .min = 1, .max = 8,
                             .meaning = "how far"},
                            {.name = "mode", .type = Type::text, .default_value = "\"a\"", .choices = {"a", "b"},
                             .meaning = "which way"}}};
    }
    template <class T>
    static std::shared_ptr<Autoencoder<T>> make(const AutoencoderConfig& c, const json& o) {
        return std::make_shared<ShiftAutoencoder<T>>(c, o.at("k").get<std::int64_t>(), o.at("mode").get<std::string>());
    }
};

// Registered before main, in whatever order with the library's own statics: the registry is a
// function-local static that holds the built-in variants from its first use.
const bool shift_registered = register_variant<Shift>();

// The input plus N(0, level^2) noise from the model's generator, against the clean input.
template <class T>
class JitterAutoencoder : public Autoencoder<T> {
public:
    JitterAutoencoder(AutoencoderConfig config, double level, std::uint64_t seed)
        : Autoencoder<T>(std::move(config)), level_(level), noise_(seed) {}
    Var<T> loss(const Var<T>& x) override {
        Array<T> jittered = x.value();
        std::normal_distribution<double> normal(0, level_);
        std::mt19937_64& rng = noise_.draw();
        for (T& v : jittered) {
            v += static_cast<T>(normal(rng));
        }
        return nn::mse(this->reconstruct(Var<T>(std::move(jittered))), x);
    }
    std::string variant() const override { return "jitter"; }
    std::string options_json() const override { return json{{"level", level_}, {"seed", noise_.seed()}}.dump(); }
    NoiseSource* noise_source() override { return &noise_; }

private:
    double level_;
    NoiseSource noise_;
};

struct Jitter {
    static VariantInfo info() {
        return {.name = "jitter",
                .summary = "MSE of the reconstruction of the input plus Gaussian noise, against the clean input",
                .options = {{.name = "level", .default_value = "0.1", .min = 0, .max = 1, .min_open = true,
                             .meaning = "the noise's standard deviation"},
                            {.name = "seed", .type = OptionSpec::Type::integer, .min = 0, .meaning = "seed of the noise"}},
                .noise = "the jitter"};
    }
    template <class T>
    static std::shared_ptr<Autoencoder<T>> make(const AutoencoderConfig& c, const json& o) {
        return std::make_shared<JitterAutoencoder<T>>(c, o.at("level").get<double>(), o.at("seed").get<std::uint64_t>());
    }
};

void register_jitter_once() {
    static const bool done = register_variant<Jitter>();
    (void)done;
}

// Models that do not say who they are: each lie would make a checkpoint rebuild another model.
enum class Lie { name, options, hidden_noise, missing_noise };

template <class T, Lie lie>
class Liar : public Autoencoder<T> {
public:
    explicit Liar(AutoencoderConfig config) : Autoencoder<T>(std::move(config)) {}
    std::string variant() const override {
        static const char* names[] = {"vanilla", "liar-options", "liar-hidden-noise", "liar-missing-noise"};
        return names[static_cast<int>(lie)];
    }
    std::string options_json() const override { return lie == Lie::options ? "{}" : R"({"alpha": 1})"; }
    NoiseSource* noise_source() override { return lie == Lie::hidden_noise ? &noise_ : nullptr; }

private:
    NoiseSource noise_{0};
};

template <Lie lie>
struct LiarVariant {
    static VariantInfo info() {
        static const char* names[] = {"liar-name", "liar-options", "liar-hidden-noise", "liar-missing-noise"};
        return {.name = names[static_cast<int>(lie)],
                .summary = "MSE of the reconstruction",
                .options = {{.name = "alpha", .default_value = "1", .meaning = "unused"}},
                .noise = lie == Lie::missing_noise ? "a noise" : ""};
    }
    template <class T>
    static std::shared_ptr<Autoencoder<T>> make(const AutoencoderConfig& c, const json&) {
        return std::make_shared<Liar<T, lie>>(c);
    }
};

}  // namespace

TEST_CASE("a variant registered at namespace scope is there from main on, after the built-in five") {
    CHECK(shift_registered);
    std::vector<VariantInfo> infos = variant_infos();
    REQUIRE(infos.size() >= 6);
    std::vector<std::string> first;
    for (std::size_t i = 0; i < 6; ++i) {
        first.push_back(infos[i].name);
    }
    CHECK(first == std::vector<std::string>{"vanilla", "denoising", "sparse", "contractive", "variational", "shift"});
    CHECK(variant_names().rfind("vanilla, denoising, sparse, contractive, variational, shift", 0) == 0);
    const VariantInfo& shift = variant_info("shift");
    CHECK(shift.activation == "tanh");
    CHECK(shift.lr == 2e-3);
    CHECK(shift.options[0].range() == "[1, 8]");
    CHECK(shift.options[0].default_text() == "2");
    CHECK(shift.options[1].range() == "a | b");
}

TEST_CASE("a registered variant is built, checked, filled in and described as a built-in one is") {
    register_jitter_once();
    CHECK(registered("jitter"));
    CHECK(variant_names().find(", jitter") != std::string::npos);
    CHECK(variant_info("jitter").options[1].range() == "[0, 2^64)");
    CHECK(variant_info("jitter").options[1].default_text() == "the model's seed");

    // Defaults filled in, the seed from the model's; what is given checked against the declaration.
    CHECK(json::parse(complete_options("jitter", "{}", 7)) == json{{"level", 0.1}, {"seed", 7}});
    CHECK(json::parse(complete_options("jitter", R"({"level": 0.5, "seed": 3})", 7)) ==
          json{{"level", 0.5}, {"seed", 3}});
    CHECK(error_of([] { complete_options("jitter", R"({"level": -1})", 0); }) ==
          "jitter: option level must be a number in (0, 1], got -1");
    CHECK(error_of([] { complete_options("jitter", R"({"level": 0})", 0); }) ==
          "jitter: option level must be a number in (0, 1], got 0");
    CHECK(error_of([] { complete_options("jitter", R"({"seed": -1})", 0); }) ==
          "jitter: option seed must be a whole number from 0, got -1");
    CHECK(error_of([] { complete_options("jitter", R"({"lvl": 0.2})", 0); }) ==
          "jitter: unknown option {\"lvl\":0.2} (known: level, seed)");
    CHECK(error_of([] { complete_options("shift", R"({"k": 0})", 0); }) ==
          "shift: option k must be a whole number in [1, 8], got 0");
    CHECK(error_of([] { complete_options("shift", R"({"k": 2.5})", 0); }) ==
          "shift: option k must be a whole number in [1, 8], got 2.5");
    CHECK(error_of([] { complete_options("shift", R"({"mode": "c"})", 0); }) ==
          "shift: option mode must be one of a | b, got \"c\"");

    AutoencoderConfig c{.sizes = {8, 4, 2}, .seed = 11};
    auto f = make_autoencoder<float>("jitter", c, R"({"level": 0.3})");
    auto d = make_autoencoder<double>("jitter", c);
    CHECK(f->variant() == "jitter");
    CHECK(d->variant() == "jitter");
    REQUIRE(d->noise_source() != nullptr);
    CHECK(d->noise_source()->seed() == 11);
    // The description holds every option filled in and rebuilds the same model.
    std::string description = describe_model(*f);
    CHECK(json::parse(description)["options"] == json{{"level", 0.3}, {"seed", 11}});
    auto rebuilt = model_from_description<float>(description);
    CHECK(rebuilt->variant() == "jitter");
    CHECK(describe_model(*rebuilt) == description);
    CHECK(rebuilt->parameter_count() == f->parameter_count());
    auto shift = model_from_description<double>(describe_model(*make_autoencoder<double>("shift", c, R"({"k": 5})")));
    CHECK(json::parse(shift->options_json()) == json{{"k", 5}, {"mode", "a"}});

    // The noise comes from the model's generator: the same seed draws the same loss, another seed another.
    Var<double> x(test::random_array<double>({4, 8}, 1, 0, 1));
    auto again = make_autoencoder<double>("jitter", c);
    CHECK(d->loss(x).item() == again->loss(x).item());
    auto other = make_autoencoder<double>("jitter", {.sizes = {8, 4, 2}, .seed = 11}, R"({"seed": 12})");
    CHECK(d->loss(x).item() != other->loss(x).item());
}

TEST_CASE("a name is registered once") {
    register_jitter_once();
    std::string again = error_of([] { register_variant<Jitter>(); });
    CAPTURE(again);
    CHECK(again.rfind("register_variant: a variant named \"jitter\" is registered already (known: vanilla, denoising, "
                      "sparse, contractive, variational, shift",
                      0) == 0);
    VariantInfo vanilla = variant_info("vanilla");
    CHECK(error_of([&] { register_variant(vanilla, &Shift::make<float>, &Shift::make<double>); })
              .rfind("register_variant: a variant named \"vanilla\" is registered already", 0) == 0);
    std::vector<VariantInfo> infos = variant_infos();
    CHECK(std::count_if(infos.begin(), infos.end(), [](const VariantInfo& i) { return i.name == "jitter"; }) == 1);
}

TEST_CASE("a declaration that does not hold together is refused when registered, saying what is wrong") {
    auto refused = [](VariantInfo info) {
        std::string name = info.name;
        std::string message = error_of([&] { register_variant(info, &Shift::make<float>, &Shift::make<double>); });
        CHECK_FALSE(registered(name));
        return message;
    };
    VariantInfo good = Shift::info();
    auto with = [&](std::string name, auto change) {
        VariantInfo info = good;
        info.name = std::move(name);
        change(info);
        return info;
    };
    CHECK(refused(with("Big Name", [](VariantInfo&) {})) ==
          "register_variant: the name \"Big Name\" is not a word of lowercase letters, digits, '-' and '_'");
    CHECK(refused(with("", [](VariantInfo&) {})) ==
          "register_variant: the name \"\" is not a word of lowercase letters, digits, '-' and '_'");
    CHECK(refused(with("twice", [](VariantInfo& i) { i.options.push_back(i.options[0]); })) ==
          "register_variant: twice: option k is declared twice");
    CHECK(refused(with("bad-default", [](VariantInfo& i) { i.options[0].default_value = "9"; })) ==
          "register_variant: bad-default: option k: its default 9 is not a whole number in [1, 8]");
    CHECK(refused(with("unquoted", [](VariantInfo& i) { i.options[1].default_value = "a"; })) ==
          "register_variant: unquoted: option mode: its default a is not JSON text (a text default is quoted: "
          "\"\\\"masking\\\"\")");
    CHECK(refused(with("no-choices", [](VariantInfo& i) { i.options[1].choices.clear(); })) ==
          "register_variant: no-choices: option mode is text with no choices");
    CHECK(refused(with("no-default", [](VariantInfo& i) { i.options[0].default_value.clear(); })) ==
          "register_variant: no-default: option k has no default (only a seed, an integer in [0, 2^64), may leave it "
          "to the model's seed)");
    CHECK(refused(with("no-meaning", [](VariantInfo& i) { i.options[0].meaning.clear(); })) ==
          "register_variant: no-meaning: option k has no meaning: say what it does");
    CHECK(refused(with("no-summary", [](VariantInfo& i) { i.summary.clear(); })) ==
          "register_variant: no-summary: no summary: give its objective in one line");
    CHECK(refused(with("bad-lr", [](VariantInfo& i) { i.lr = 0; })) ==
          "register_variant: bad-lr: learning rate 0 is not a number above 0");
    std::string swish = refused(with("swish", [](VariantInfo& i) { i.activation = "swish"; }));
    CAPTURE(swish);
    CHECK(swish.rfind("register_variant: swish: ", 0) == 0);
    CHECK(swish.find("swish") != std::string::npos);
    CHECK(error_of([&] { register_variant(with("null-maker", [](VariantInfo&) {}), nullptr, &Shift::make<double>); }) ==
          "register_variant: null-maker: a maker is null");
}

TEST_CASE("a model that does not say who it is is refused when built, before a checkpoint records it") {
    register_variant<LiarVariant<Lie::name>>();
    register_variant<LiarVariant<Lie::options>>();
    register_variant<LiarVariant<Lie::hidden_noise>>();
    register_variant<LiarVariant<Lie::missing_noise>>();
    AutoencoderConfig c{.sizes = {8, 2}};
    CHECK(error_of([&] { make_autoencoder<float>("liar-name", c); }) ==
          "liar-name: the model made says its variant() is \"vanilla\": it must return \"liar-name\", the name it is "
          "registered under, for a checkpoint to rebuild it");
    CHECK(error_of([&] { make_autoencoder<double>("liar-options", c); }) ==
          "liar-options: the model's options_json() {} leaves out alpha: it must hold every declared option, for a "
          "checkpoint to rebuild the model");
    CHECK(error_of([&] { make_autoencoder<float>("liar-hidden-noise", c); }) ==
          "liar-hidden-noise: the model has a noise_source() but the declaration names no noise: say what its loss "
          "draws (VariantInfo::noise)");
    CHECK(error_of([&] { make_autoencoder<float>("liar-missing-noise", c); }) ==
          "liar-missing-noise: the declaration names a noise (a noise) but the model's noise_source() is null: "
          "return its generator, for the trainer to checkpoint it");
}

TEST_CASE("registrations from several threads each land once") {
    std::vector<std::thread> threads;
    for (int t = 0; t < 8; ++t) {
        threads.emplace_back([t] {
            VariantInfo info = Shift::info();
            info.name = "thread-" + std::to_string(t);
            register_variant(info, &Shift::make<float>, &Shift::make<double>);
        });
    }
    for (auto& thread : threads) {
        thread.join();
    }
    std::vector<VariantInfo> infos = variant_infos();
    for (int t = 0; t < 8; ++t) {
        std::string name = "thread-" + std::to_string(t);
        CAPTURE(name);
        CHECK(std::count_if(infos.begin(), infos.end(), [&](const VariantInfo& i) { return i.name == name; }) == 1);
    }
}
