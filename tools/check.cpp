// tapegrad gradcheck and tapegrad grad: a model's gradients against finite differences, and written out
// so that another framework can check them.
#include <iostream>

#include <fmt/format.h>

#include "commands.hpp"
#include "common.hpp"
#include "report.hpp"
#include "tapegrad/autodiff/audit.hpp"
#include "tapegrad/autodiff/gradcheck.hpp"
#include "run.hpp"
#include "tapegrad/models/factory.hpp"
#include "tapegrad/nn/data.hpp"
#include "tapegrad/nn/io/npz.hpp"

namespace tapegrad::tools {

namespace {

// A variant that draws noise in its loss draws the same noise at every evaluation (from its seed), so
// that the loss is a function of the parameters alone.
template <class T>
void fix_noise(models::Autoencoder<T>& model) {
    if (models::NoiseSource* noise = model.noise_source()) {
        noise->fix(true);
    }
}

struct GradcheckArgs {
    ModelOptions model;
    std::size_t input = 64;
    std::size_t batch = 8;
    GradcheckOptions check;
    bool audit = false;
    std::string json;
};

int run_gradcheck(const GradcheckArgs& args) {
    std::size_t input = args.model.dims.empty() ? args.input : args.model.dims.front();
    auto model = build_model<double>(args.model, input);
    fix_noise(*model);
    // A batch in [0, 1), as scaled data is.
    std::mt19937_64 rng(args.model.seed + 1);
    std::uniform_real_distribution<double> u(0, 1);
    Array<double> values = xt::empty<double>(Shape{args.batch, input});
    for (double& v : values) {
        v = u(rng);
    }
    Var<double> x(values);
    std::vector<Var<double>> params = model->parameters();
    fmt::print("{}: {} parameters in {} tensors, batch {}\n", model->describe(), model->parameter_count(),
               params.size(), args.batch);
    GradcheckOptions options = args.check;
    options.log = &std::cout;
    GradcheckReport report = gradcheck([&] { return model->loss(x); }, params, options);
    // A failed check has audited the tape already; --audit asks for it when the check passed too.
    if (args.audit && !report.audit) {
        report.audit = audit(model->loss(x), params,
                             {.eps = options.eps, .atol = options.atol, .rtol = options.rtol, .log = &std::cout});
    }
    fmt::print("{}", report.str());
    if (!args.json.empty()) {
        report.write_json(args.json);
    }
    return report.passed && (!report.audit || report.audit->passed) ? 0 : 1;
}

struct GradArgs {
    std::string checkpoint;
    DataOptions data;
    std::size_t batch = 32;
    std::string dtype = "float32";
    std::string out = "grad.npz";
    bool overwrite = false;
    const CLI::App* app = nullptr;
};

// The checkpoint's model in T: float as trained, or double with the float weights widened.
template <class T>
std::shared_ptr<models::Autoencoder<T>> model_in(const std::string& checkpoint) {
    auto trained = load_model<float>(checkpoint);
    if constexpr (std::is_same_v<T, float>) {
        return trained;
    } else {
        auto model = models::model_from_description<double>(models::describe_model(*trained));
        auto from = trained->named_parameters();
        auto to = model->named_parameters();
        for (std::size_t i = 0; i < to.size(); ++i) {
            to[i].var.mutable_value() = xt::cast<double>(from[i].var.value());
        }
        return model;
    }
}

template <class T>
int write_grad(const GradArgs& args) {
    claim_file("grad", args.out, args.overwrite);
    auto model = model_in<T>(args.checkpoint);
    fix_noise(*model);
    CheckpointRecord record = CheckpointRecord::read(args.checkpoint);
    nlohmann::json scaling;
    DataOptions data = data_for(*args.app, args.data, record, scaling);
    Split split = load_split(data, scaling);
    std::vector<std::size_t> rows(std::min(args.batch, split.test.size()));
    std::iota(rows.begin(), rows.end(), std::size_t{0});
    Array<T> x = xt::cast<T>(nn::select_rows(split.test, rows).x);
    model->zero_grad();
    Var<T> loss = model->loss(Var<T>(x));
    loss.backward();
    std::vector<nn::NpzEntry> entries = {{"loss", Array<double>(xt::xarray<double>(double(loss.item())))}, {"x", x}};
    for (const auto& p : model->named_parameters()) {
        entries.push_back({"param/" + p.name, p.var.value()});
        entries.push_back({"grad/" + p.name, p.var.grad().value()});
    }
    nn::write_npz(args.out, entries);
    fmt::print("loss {:.17g} on the first {} test rows of {} in {}; wrote {} (loss, x, param/<name>, grad/<name>)\n",
               double(loss.item()), rows.size(), data.data, args.dtype, args.out);
    return 0;
}

}  // namespace

Command add_gradcheck(CLI::App& app) {
    auto args = std::make_shared<GradcheckArgs>();
    args->model.activation = "tanh";
    add_model_options(app, args->model);
    app.add_option("--input", args->input, "input size when --dims is not given")
        ->check(positive_whole)
        ->capture_default_str();
    app.add_option("--batch", args->batch, "rows of the random batch")->check(positive_whole)->capture_default_str();
    app.add_flag("--fast", args->check.fast, "random directional derivatives instead of every element");
    app.add_option("--directions", args->check.directions, "directions per parameter in fast mode")
        ->check(positive_whole)
        ->capture_default_str();
    app.add_option("--eps", args->check.eps, "finite-difference step")->check(positive)->capture_default_str();
    app.add_option("--atol", args->check.atol, "absolute tolerance")->check(non_negative)->capture_default_str();
    app.add_option("--rtol", args->check.rtol, "relative tolerance")->check(non_negative)->capture_default_str();
    app.add_flag("--audit", args->audit,
                 "also audit the tape: check each op's backward alone, in tape order, and name the first that is "
                 "wrong (a failed check does this by itself)");
    app.add_option("--json", args->json, "write the report as JSON to this file");
    app.footer(fmt::format("The loss's noise ({}) is drawn from the model's seed and is the same at every "
                           "evaluation.",
                           noise_list()));
    return [args] { return run_gradcheck(*args); };
}

Command add_grad(CLI::App& app) {
    auto args = std::make_shared<GradArgs>();
    args->app = &app;
    app.add_option("--checkpoint", args->checkpoint, fmt::format("a checkpoint written by {} train", program()))
        ->required();
    add_data_options(app, args->data);
    app.add_option("--batch", args->batch, "the first N rows of the test split")
        ->check(positive_whole)
        ->capture_default_str();
    app.add_option("--dtype", args->dtype, "float32 as trained, or float64 with the weights widened")
        ->check(CLI::IsMember({"float32", "float64"}))
        ->capture_default_str();
    app.add_option("--out", args->out, "the .npz to write")->capture_default_str();
    add_overwrite_option(app, args->overwrite);
    app.footer(fmt::format("The data, its split and its scaling are the checkpoint's own unless given. The loss's "
                           "noise ({}) is drawn from the model's seed, as gradcheck draws it: the same at every "
                           "call.",
                           noise_list()));
    return [args] { return args->dtype == "float64" ? write_grad<double>(*args) : write_grad<float>(*args); };
}

}  // namespace tapegrad::tools
