// A training step that records the same graph as the step before allocates nothing: the tape keeps its
// entries and the pool hands back last step's buffers. This binary counts every operator new.
#include "counting_new.hpp"
#include "helpers.hpp"
#include "tapegrad/autodiff/parallel.hpp"
#include "tapegrad/autodiff/testing.hpp"
#include "tapegrad/models/denoising.hpp"
#include "tapegrad/models/sparse.hpp"
#include "tapegrad/nn/optim.hpp"

using namespace tapegrad;

TEST_CASE_TEMPLATE("after warm-up, a training step allocates nothing", T, float, double) {
    Var<T> x(test::random_array<T>({64, 8}, 1, 0, 1));
    std::vector<Var<T>> params = {
        test::random_param<T>({8, 4}, 2, "encoder.0.weight"), test::random_param<T>({4}, 3, "encoder.0.bias"),
        test::random_param<T>({4, 8}, 4, "decoder.0.weight"), test::random_param<T>({8}, 5, "decoder.0.bias")};
    auto step = [&] {
        for (Var<T>& p : params) {
            p.zero_grad();
        }
        Var<T> h = relu(matmul(x, params[0]) + params[1]);
        Var<T> y = sigmoid(matmul(h, params[2]) + params[3]);
        Var<T> d = y - x;
        mean(d * d).backward();
        for (Var<T>& p : params) {  // SGD, in place
            T* v = p.mutable_value().data();
            const T* g = p.grad().value().data();
            for (std::size_t i = 0; i < p.size(); ++i) {
                v[i] -= T(0.1) * g[i];
            }
        }
    };
    CHECK(test::allocations_after_warm_up(step) == 0);
    long before = test::allocations();
    // The counter counts: one more Var with a new shape allocates.
    Var<T> fresh(test::random_array<T>({3, 5}, 6));
    CHECK(test::allocations() > before);
}

// The models and the optimizer as the Trainer runs them: a batch copied from the data into a Var each
// step, the variant's loss (the denoising one corrupts a copy, the sparse one adds its penalties), Adam.
TEST_CASE_TEMPLATE("after warm-up, a step of each autoencoder with Adam allocates nothing", T, float, double) {
    // On 2 threads too, with products and batches big enough to be cut into parts.
    for (int threads : {1, 2}) {
        for (std::string kind : {"vanilla", "denoising", "sparse"}) {
            CAPTURE(threads);
            CAPTURE(kind);
            set_threads(threads);
            models::AutoencoderConfig config;
            std::size_t width = threads == 1 ? 16 : 512;
            config.sizes = {width, 8, 4};
            config.output_activation = "sigmoid";
            std::unique_ptr<models::Autoencoder<T>> model;
            if (kind == "vanilla") {
                model = std::make_unique<models::Autoencoder<T>>(config);
            } else if (kind == "denoising") {
                model = std::make_unique<models::DenoisingAutoencoder<T>>(config,
                                                                          models::DenoisingOptions{.level = 0.3});
            } else {
                config.latent_activation = "sigmoid";
                model = std::make_unique<models::SparseAutoencoder<T>>(config, models::SparseOptions{});
            }
            nn::Adam<T> adam(model->named_parameters(), nn::AdamOptions{.lr = 1e-3});
            Array<T> batch = test::random_array<T>({64, width}, 1, 0, 1);
            auto step = [&] {
                Var<T> x(batch);
                adam.zero_grad();
                Var<T> loss = model->loss(x);
                loss.backward();
                adam.step();
            };
            CHECK(test::allocations_after_warm_up(step) == 0);
            set_threads(1);
        }
    }
}

TEST_CASE_TEMPLATE("a Var that adopts an array does not grow the pool by a buffer each time", T, float, double) {
    auto use = [] {
        Var<T> x(test::random_array<T>({40, 30}, 1));
        return sum(exp(x)).item();
    };
    use();
    std::size_t pooled = testing::pooled_buffers<T>();
    for (int i = 0; i < 10; ++i) {
        use();
    }
    CHECK(testing::pooled_buffers<T>() == pooled);
}
