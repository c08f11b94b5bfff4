// tapegrad gradcheck and tapegrad grad: a model's gradients against finite differences, and written out
// so that another framework can check them.
#include <iostream>

#include <fmt/format.h>

#include "commands.hpp"
#include "common.hpp"
#include "report.hpp"
#include "tapegrad/autodiff/gradcheck.hpp"
#include "tapegrad/models/denoising.hpp"
#include "tapegrad/models/variational.hpp"
#include "tapegrad/nn/data.hpp"
#include "tapegrad/nn/npz.hpp"

namespace tapegrad::tools {

namespace {

// The variants that draw noise in their loss draw the same noise at every evaluation, so that the loss
// is a function of the parameters alone.
template <class T>
void fix_noise(models::Autoencoder<T>& model) {
    if (auto* d = dynamic_cast<models::DenoisingAutoencoder<T>*>(&model)) {
        d->noise().fix(true);
    }
    if (auto* v = dynamic_cast<models::VariationalAutoencoder<T>*>(&model)) {
        v->noise().fix(true);
    }
}

struct GradcheckArgs {
    ModelOptions model;
    std::size_t input = 64;
    std::size_t batch = 8;
    GradcheckOptions check;
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
    fmt::print("{}", report.str());
    if (!args.json.empty()) {
        report.write_json(args.json);
    }
    return report.passed ? 0 : 1;
}

struct GradArgs {
    std::string checkpoint;
    DataOptions data;
    std::size_t batch = 32;
    std::string out = "grad.npz";
};

int run_grad(const GradArgs& args) {
    auto model = load_model<float>(args.checkpoint);
    fix_noise(*model);
    Split split = load_split(args.data);
    std::vector<std::size_t> rows(std::min(args.batch, split.test.size()));
    std::iota(rows.begin(), rows.end(), std::size_t{0});
    Array<float> x = nn::select_rows(split.test, rows).x;
    model->zero_grad();
    Var<float> loss = model->loss(Var<float>(x));
    loss.backward();
    std::vector<nn::NpzEntry> entries = {{"loss", Array<double>(xt::xarray<double>(loss.item()))}, {"x", x}};
    for (const auto& p : model->named_parameters()) {
        entries.push_back({"param/" + p.name, p.var.value()});
        entries.push_back({"grad/" + p.name, p.var.grad().value()});
    }
    nn::write_npz(args.out, entries);
    fmt::print("loss {:.8g} on the first {} test rows of {}; wrote {} (loss, x, param/<name>, grad/<name>)\n",
               loss.item(), rows.size(), args.data.data, args.out);
    return 0;
}

}  // namespace

Command add_gradcheck(CLI::App& app) {
    auto args = std::make_shared<GradcheckArgs>();
    args->model.activation = "tanh";
    add_model_options(app, args->model);
    app.add_option("--input", args->input, "input size when --dims is not given")->capture_default_str();
    app.add_option("--batch", args->batch, "rows of the random batch")->check(positive)->capture_default_str();
    app.add_flag("--fast", args->check.fast, "random directional derivatives instead of every element");
    app.add_option("--directions", args->check.directions, "directions per parameter in fast mode")
        ->capture_default_str();
    app.add_option("--eps", args->check.eps, "finite-difference step")->capture_default_str();
    app.add_option("--atol", args->check.atol, "absolute tolerance")->capture_default_str();
    app.add_option("--rtol", args->check.rtol, "relative tolerance")->capture_default_str();
    app.add_option("--json", args->json, "write the report as JSON to this file");
    return [args] { return run_gradcheck(*args); };
}

Command add_grad(CLI::App& app) {
    auto args = std::make_shared<GradArgs>();
    app.add_option("--checkpoint", args->checkpoint, "a checkpoint written by tapegrad train")->required();
    add_data_options(app, args->data);
    app.add_option("--batch", args->batch, "the first N rows of the test split")->check(positive)->capture_default_str();
    app.add_option("--out", args->out, "the .npz to write")->capture_default_str();
    return [args] { return run_grad(*args); };
}

}  // namespace tapegrad::tools
