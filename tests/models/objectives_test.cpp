// Each variant's objective by value, against its published formula: a tiny model with chosen weights, a
// batch of three samples, and loss() and loss_terms() compared with the formula computed here with plain
// loops and <cmath>, never with the library's ops or losses. A gradient check and "the loss goes down"
// both pass when the objective itself is wrong (a KL with -1 for -0.5, a sparsity mean over the units
// instead of the batch, a penalty not divided by the batch size, the denoising target the noisy input);
// a value does not. Double only: the values are checked to 1e-12 relative.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "helpers.hpp"
#include "tapegrad/models/contractive.hpp"
#include "tapegrad/models/denoising.hpp"
#include "tapegrad/models/sparse.hpp"
#include "tapegrad/models/variational.hpp"

using namespace tapegrad;
using namespace tapegrad::models;

namespace {

using Matrix = std::vector<std::vector<double>>;  // [row][column]

double act_identity(double a) { return a; }
double act_sigmoid(double a) { return 1 / (1 + std::exp(-a)); }
double act_tanh(double a) { return std::tanh(a); }

// A dense layer as the library stores it: y = act(x W + b), W shaped (in, out).
struct Layer {
    Matrix w;
    std::vector<double> b;
    double (*act)(double) = act_identity;
};

Matrix dense(const Layer& layer, const Matrix& x) {
    Matrix y(x.size(), std::vector<double>(layer.b.size()));
    for (std::size_t n = 0; n < x.size(); ++n) {
        for (std::size_t o = 0; o < layer.b.size(); ++o) {
            double a = layer.b[o];
            for (std::size_t i = 0; i < x[n].size(); ++i) {
                a += x[n][i] * layer.w[i][o];
            }
            y[n][o] = layer.act(a);
        }
    }
    return y;
}

Matrix run(const std::vector<Layer>& layers, Matrix x) {
    for (const Layer& layer : layers) {
        x = dense(layer, x);
    }
    return x;
}

Matrix transpose(const Matrix& w) {
    Matrix t(w[0].size(), std::vector<double>(w.size()));
    for (std::size_t i = 0; i < w.size(); ++i) {
        for (std::size_t j = 0; j < w[i].size(); ++j) {
            t[j][i] = w[i][j];
        }
    }
    return t;
}

double sum_squares(const Matrix& w) {
    double s = 0;
    for (const auto& row : w) {
        for (double v : row) {
            s += v * v;
        }
    }
    return s;
}

// The mean of (a - b)^2 over every element: the library's MSE, a mean over samples and features.
double mean_squared(const Matrix& a, const Matrix& b) {
    double s = 0;
    for (std::size_t n = 0; n < a.size(); ++n) {
        for (std::size_t d = 0; d < a[n].size(); ++d) {
            s += (a[n][d] - b[n][d]) * (a[n][d] - b[n][d]);
        }
    }
    return s / double(a.size() * a[0].size());
}

Var<double> to_var(const Matrix& x) {
    Array<double> a = xt::empty<double>(Shape{x.size(), x[0].size()});
    for (std::size_t n = 0; n < x.size(); ++n) {
        for (std::size_t d = 0; d < x[n].size(); ++d) {
            a(n, d) = x[n][d];
        }
    }
    return Var<double>(std::move(a));
}

// Writes a weight by its full name; the shape must be the one given.
void set(nn::Module<double>& model, const std::string& name, const Matrix& w) {
    for (auto& p : model.named_parameters()) {
        if (p.name == name) {
            REQUIRE(p.var.shape() == Shape{w.size(), w[0].size()});
            for (std::size_t i = 0; i < w.size(); ++i) {
                for (std::size_t j = 0; j < w[i].size(); ++j) {
                    p.var.mutable_value()(i, j) = w[i][j];
                }
            }
            return;
        }
    }
    FAIL("no parameter " << name);
}

// A bias, shaped (n,).
void set_bias(nn::Module<double>& model, const std::string& name, const std::vector<double>& b) {
    for (auto& p : model.named_parameters()) {
        if (p.name == name) {
            REQUIRE(p.var.shape() == Shape{b.size()});
            std::copy(b.begin(), b.end(), p.var.mutable_value().begin());
            return;
        }
    }
    FAIL("no parameter " << name);
}

// Every parameter of the model from the reference layers: Sequential numbers a layer and the activation
// after it, so layer k is child 2k. The tied decoder has biases only. Every parameter must be written,
// or a randomly initialised one would take part in the value.
void load(Autoencoder<double>& model, const std::vector<Layer>& encoder, const std::vector<Layer>& decoder) {
    std::size_t written = 0;
    for (std::size_t k = 0; k < encoder.size(); ++k) {
        set(model, "encoder." + std::to_string(2 * k) + ".weight", encoder[k].w);
        set_bias(model, "encoder." + std::to_string(2 * k) + ".bias", encoder[k].b);
        written += 2;
    }
    for (std::size_t k = 0; k < decoder.size(); ++k) {
        if (!model.config().tied) {
            set(model, "decoder." + std::to_string(2 * k) + ".weight", decoder[k].w);
            ++written;
        }
        set_bias(model, "decoder." + std::to_string(2 * k) + ".bias", decoder[k].b);
        ++written;
    }
    REQUIRE(written == model.named_parameters().size());
}

double term(const Autoencoder<double>& model, std::string_view name) {
    for (const LossTerm& t : model.loss_terms()) {
        if (t.name == name) {
            return t.value;
        }
    }
    FAIL("no loss term " << name);
    return 0;
}

// 1e-12 relative: scale 0 drops the absolute part doctest adds by default.
doctest::Approx near(double want) { return doctest::Approx(want).epsilon(1e-12).scale(0); }

// The batch: three samples of three features in (0, 1), so that binary cross-entropy applies.
const Matrix batch = {{0.2, 0.9, 0.4}, {0.7, 0.1, 0.5}, {0.3, 0.6, 0.8}};

// Chosen weights, none symmetric: a mean over the wrong axis or a sum for a mean changes the value.
const Matrix w_in = {{0.5, -0.3}, {-0.2, 0.8}, {0.7, 0.1}};  // 3 -> 2
const std::vector<double> b_in = {0.1, -0.2};
const Matrix w_mid = {{0.9, -0.6}, {0.4, 0.3}};  // 2 -> 2
const std::vector<double> b_mid = {-0.1, 0.2};
const Matrix w_back = {{-0.7, 0.5}, {0.2, 0.8}};  // 2 -> 2, the decoder's
const std::vector<double> b_back = {0.0, 0.1};
const Matrix w_out = {{0.6, -0.4, 0.3}, {-0.5, 0.9, 0.2}};  // 2 -> 3
const std::vector<double> b_out = {0.05, -0.1, 0.2};

}  // namespace

TEST_CASE("vanilla: the loss is the reconstruction's mean squared error over samples and features") {
    SUBCASE("3-2-2, tanh hidden, identity code, sigmoid output") {
        Autoencoder<double> model({.sizes = {3, 2, 2}, .activation = "tanh", .output_activation = "sigmoid"});
        std::vector<Layer> encoder = {{w_in, b_in, act_tanh}, {w_mid, b_mid, act_identity}};
        std::vector<Layer> decoder = {{w_back, b_back, act_tanh}, {w_out, b_out, act_sigmoid}};
        load(model, encoder, decoder);
        Matrix r = run(decoder, run(encoder, batch));
        CHECK(model.loss(to_var(batch)).item() == near(mean_squared(r, batch)));
    }
    SUBCASE("3-2-2 tied: each decoder weight is its mirror encoder weight transposed") {
        Autoencoder<double> model(
            {.sizes = {3, 2, 2}, .activation = "tanh", .output_activation = "sigmoid", .tied = true});
        std::vector<Layer> encoder = {{w_in, b_in, act_tanh}, {w_mid, b_mid, act_identity}};
        std::vector<Layer> decoder = {{transpose(w_mid), b_back, act_tanh}, {transpose(w_in), b_out, act_sigmoid}};
        load(model, encoder, decoder);
        Matrix r = run(decoder, run(encoder, batch));
        CHECK(model.loss(to_var(batch)).item() == near(mean_squared(r, batch)));
    }
}

// Vincent et al. 2008: the reconstruction of the corrupted input x~ is scored against the clean x,
// L = mean (g(f(x~)) - x)^2, never against x~.
TEST_CASE("denoising: the reconstruction of the corrupted input is compared with the clean input") {
    std::vector<Layer> encoder = {{w_in, b_in, act_sigmoid}};
    std::vector<Layer> decoder = {{w_out, b_out, act_sigmoid}};
    AutoencoderConfig config{.sizes = {3, 2}, .latent_activation = "sigmoid", .output_activation = "sigmoid"};
    SUBCASE("masking at level 1: every element is set to 0, so the model sees zeros and no draw matters") {
        DenoisingAutoencoder<double> model(config, {.corruption = Corruption::masking, .level = 1.0, .seed = 3});
        load(model, encoder, decoder);
        Matrix zeros(batch.size(), std::vector<double>(batch[0].size(), 0.0));
        Matrix r = run(decoder, run(encoder, zeros));
        CHECK(model.loss(to_var(batch)).item() == near(mean_squared(r, batch)));
    }
    SUBCASE("gaussian at level 0.2, fixed: the noise redrawn here from the same seed, element by element") {
        DenoisingAutoencoder<double> model(config, {.corruption = Corruption::gaussian, .level = 0.2, .seed = 3});
        model.noise().fix(true);
        load(model, encoder, decoder);
        std::mt19937_64 rng(3);
        std::normal_distribution<double> normal(0, 0.2);
        Matrix noisy = batch;
        for (auto& row : noisy) {
            for (double& v : row) {
                v += normal(rng);
            }
        }
        Matrix r = run(decoder, run(encoder, noisy));
        double want = mean_squared(r, batch);
        CHECK(model.loss(to_var(batch)).item() == near(want));
        CHECK(model.loss(to_var(batch)).item() == near(want));  // fixed: the same noise again
        // The reference is not the vanilla loss in disguise: the noise moves the value.
        CHECK(std::abs(want - mean_squared(run(decoder, run(encoder, batch)), batch)) > 1e-4);
    }
}

// UFLDL (Ng, CS294A "Sparse autoencoder" notes, section 3):
//   J_sparse = J + beta * sum_j KL(rho || rho_hat_j) + lambda / 2 * sum_l sum_ij (W_ij^(l))^2,
//   rho_hat_j = (1 / m) sum_i a_j(x^(i)), a mean over the m samples of the batch, one per hidden unit,
//   KL(rho || q) = rho log(rho / q) + (1 - rho) log((1 - rho) / (1 - q)).
// The decay covers every weight, no bias. UFLDL's J is (1 / m) sum_i 1/2 ||x^ - x||^2; sparse.hpp documents
// that J here is the MSE, a mean over samples and features (its beta and lambda are scaled to match).
TEST_CASE("sparse: MSE + beta * sum_j KL(rho || rho_hat_j) + lambda / 2 * sum ||W||^2, rho_hat over the batch") {
    const double rho = 0.1;
    const double beta = 3;
    const double lambda = 0.01;
    SparseAutoencoder<double> model({.sizes = {3, 2}, .latent_activation = "sigmoid", .output_activation = "sigmoid"},
                                    {.rho = rho, .beta = beta, .lambda = lambda});
    std::vector<Layer> encoder = {{w_in, b_in, act_sigmoid}};
    std::vector<Layer> decoder = {{w_out, b_out, act_sigmoid}};
    load(model, encoder, decoder);

    Matrix code = run(encoder, batch);
    Matrix r = run(decoder, code);
    double mse = mean_squared(r, batch);
    double kl = 0;
    double mean_activation = 0;
    for (std::size_t j = 0; j < 2; ++j) {
        double rho_hat = 0;
        for (const auto& sample : code) {
            rho_hat += sample[j];
        }
        rho_hat /= double(code.size());
        mean_activation += rho_hat / 2;
        kl += rho * std::log(rho / rho_hat) + (1 - rho) * std::log((1 - rho) / (1 - rho_hat));
    }
    double decay = lambda / 2 * (sum_squares(w_in) + sum_squares(w_out));

    CHECK(model.loss(to_var(batch)).item() == near(mse + beta * kl + decay));
    CHECK(term(model, "reconstruction_mse") == near(mse));
    CHECK(term(model, "mean_code_activation") == near(mean_activation));
    CHECK(term(model, "sparsity_kl") == near(kl));
    CHECK(term(model, "weight_decay") == near(decay));
}

// Rifai et al. 2011, "Contractive auto-encoders", eq. 7 and 8:
//   J_CAE = sum_x (L(x, g(f(x))) + lambda ||J_f(x)||_F^2),  ||J_f(x)||_F^2 = sum_ij (d h_j / d x_i)^2,
// and for a sigmoid code h = sigmoid(x W + b): ||J_f(x)||_F^2 = sum_j (h_j (1 - h_j))^2 sum_i W_ij^2.
// Here both terms are averaged over the batch (contractive.hpp): MSE + lambda * mean_x ||J_f(x)||_F^2.
TEST_CASE("contractive: MSE + lambda * ||J_f(x)||_F^2 averaged over the batch") {
    const double lambda = 0.5;
    SUBCASE("3-2, sigmoid code: the paper's closed form") {
        ContractiveAutoencoder<double> model(
            {.sizes = {3, 2}, .latent_activation = "sigmoid", .output_activation = "sigmoid"}, {.lambda = lambda});
        std::vector<Layer> encoder = {{w_in, b_in, act_sigmoid}};
        std::vector<Layer> decoder = {{w_out, b_out, act_sigmoid}};
        load(model, encoder, decoder);
        Matrix code = run(encoder, batch);
        double jacobian = 0;
        for (const auto& h : code) {
            for (std::size_t j = 0; j < 2; ++j) {
                double column = 0;
                for (std::size_t i = 0; i < 3; ++i) {
                    column += w_in[i][j] * w_in[i][j];
                }
                jacobian += h[j] * (1 - h[j]) * h[j] * (1 - h[j]) * column;
            }
        }
        jacobian /= double(batch.size());
        double mse = mean_squared(run(decoder, code), batch);
        CHECK(model.loss(to_var(batch)).item() == near(mse + lambda * jacobian));
        CHECK(term(model, "reconstruction_mse") == near(mse));
        CHECK(term(model, "jacobian_sq_norm") == near(jacobian));
    }
    SUBCASE("3-2-2, tanh hidden and code: the Jacobian by the chain rule, element by element") {
        ContractiveAutoencoder<double> model(
            {.sizes = {3, 2, 2}, .activation = "tanh", .latent_activation = "tanh", .output_activation = "sigmoid"},
            {.lambda = lambda});
        std::vector<Layer> encoder = {{w_in, b_in, act_tanh}, {w_mid, b_mid, act_tanh}};
        std::vector<Layer> decoder = {{w_back, b_back, act_tanh}, {w_out, b_out, act_sigmoid}};
        load(model, encoder, decoder);
        Matrix hidden = dense(encoder[0], batch);
        Matrix code = dense(encoder[1], hidden);
        double jacobian = 0;
        for (std::size_t n = 0; n < batch.size(); ++n) {
            // d c_j / d x_i = (1 - c_j^2) sum_k W2_kj (1 - h_k^2) W1_ik
            for (std::size_t j = 0; j < 2; ++j) {
                for (std::size_t i = 0; i < 3; ++i) {
                    double d = 0;
                    for (std::size_t k = 0; k < 2; ++k) {
                        d += w_mid[k][j] * (1 - hidden[n][k] * hidden[n][k]) * w_in[i][k];
                    }
                    d *= 1 - code[n][j] * code[n][j];
                    jacobian += d * d;
                }
            }
        }
        jacobian /= double(batch.size());
        double mse = mean_squared(run(decoder, code), batch);
        CHECK(model.loss(to_var(batch)).item() == near(mse + lambda * jacobian));
        CHECK(term(model, "reconstruction_mse") == near(mse));
        CHECK(term(model, "jacobian_sq_norm") == near(jacobian));
    }
}

// Kingma and Welling 2014, "Auto-encoding variational Bayes", eq. 10 and appendix B:
//   -ELBO = -log p(x | z) + KL(N(mu, sigma^2) || N(0, I)),  KL = -1/2 sum_j (1 + log sigma_j^2 - mu_j^2 - sigma_j^2),
//   z = mu + sigma * eps, eps ~ N(0, I), one sample per datapoint; the minibatch estimate is the mean
//   over the batch. Bernoulli decoder (appendix C.1): -log p(x | z) = -sum_d (x_d log y_d + (1 - x_d) log(1 - y_d)).
// The encoder's last layer gives [mu, logvar] side by side. eps is drawn here as variational.cpp draws it:
// std::normal_distribution<double> on the model's mt19937_64, sample by sample, unit by unit.
TEST_CASE("variational: reconstruction summed over features + KL(N(mu, sigma^2) || N(0, I)), both batch means") {
    const Matrix w_enc = {{0.5, -0.3, 0.2, -0.4}, {-0.2, 0.8, -0.1, 0.3}, {0.7, 0.1, 0.4, -0.2}};  // 3 -> [mu, logvar]
    const std::vector<double> b_enc = {0.1, -0.2, -0.3, 0.1};
    const std::uint64_t seed = 5;
    for (const char* reconstruction : {"bce", "mse"}) {
        CAPTURE(reconstruction);
        bool bce = std::string(reconstruction) == "bce";
        double (*output)(double) = bce ? act_sigmoid : act_identity;
        VariationalAutoencoder<double> model(
            {.sizes = {3, 2}, .output_activation = bce ? "sigmoid" : "identity"},
            {.reconstruction = reconstruction, .seed = seed});
        model.noise().fix(true);
        std::vector<Layer> encoder = {{w_enc, b_enc, act_identity}};
        std::vector<Layer> decoder = {{w_out, b_out, output}};
        load(model, encoder, decoder);

        Matrix out = run(encoder, batch);
        std::mt19937_64 rng(seed);
        std::normal_distribution<double> normal;
        Matrix z(batch.size(), std::vector<double>(2));
        double kl = 0;
        for (std::size_t n = 0; n < batch.size(); ++n) {
            for (std::size_t j = 0; j < 2; ++j) {
                double mu = out[n][j];
                double logvar = out[n][2 + j];
                z[n][j] = mu + std::exp(logvar / 2) * normal(rng);
                kl += -0.5 * (1 + logvar - mu * mu - std::exp(logvar));
            }
        }
        kl /= double(batch.size());
        Matrix y = run(decoder, z);
        double rec = 0;
        for (std::size_t n = 0; n < batch.size(); ++n) {
            for (std::size_t d = 0; d < 3; ++d) {
                double x = batch[n][d];
                // mse: the sum of squares, as variational.hpp documents. A unit-variance Gaussian decoder
                // (appendix C.2) gives half of it, 1/2 sum_d (x_d - y_d)^2, up to a constant.
                rec += bce ? -(x * std::log(y[n][d]) + (1 - x) * std::log(1 - y[n][d])) : (x - y[n][d]) * (x - y[n][d]);
            }
        }
        rec /= double(batch.size());

        CHECK(model.loss(to_var(batch)).item() == near(rec + kl));
        CHECK(term(model, "reconstruction") == near(rec));
        CHECK(term(model, "kl") == near(kl));
        CHECK(term(model, "elbo") == near(-(rec + kl)));
        CHECK(model.last_kl() == near(kl));
        CHECK(model.last_elbo() == near(-(rec + kl)));
    }
}
