// A k-sparse autoencoder (Makhzani and Frey 2013) written outside the library: its own op, its variant
// registered by name with its option declared once, and tapegrad's command line on it.
#include <nlohmann/json.hpp>
#include <tapegrad/autodiff/op.hpp>
#include <tapegrad/cli.hpp>
#include <tapegrad/models/factory.hpp>
using namespace tapegrad;

struct TopK {  // each row's k largest values kept, the others 0; dy passes where a value was kept
    static constexpr std::string_view name = "top_k";
    static constexpr int arity = 1;
    template <class T> static void forward(const Call<T>& c, Array<T>& out) {  // out: input 0's shape
        if (c.in(0).ndim() != 2 || std::size_t(c.attrs().i) > c.shape(0)[1])
            throw ShapeError("top_k: k = " + std::to_string(c.attrs().i) + " for " + to_string(c.shape(0)));
        out = c.value(0);
        std::vector<T> v(c.shape(0)[1]);  // a row, its k-th largest value at kth
        auto kth = v.begin() + (c.attrs().i - 1);
        for (T* row = out.data(); row != out.data() + out.size(); row += v.size()) {
            std::nth_element(v.begin(), kth, std::copy(row, row + v.size(), v.begin()), std::greater<T>());
            std::replace_if(row, row + v.size(), [&](T x) { return x < *kth; }, T(0));
        }
        // Which side of the k-th place each value fell: gradcheck and the audit recognise ties as kinks.
        note_branches(name, out.size(), [&](std::size_t i) { return out.data()[i] != 0; });
    }
    template <class T> static void backward(Grads<T>& g) {
        g.add(0, g.dy() * mask_of(g.out(), [](T v) { return v != 0; }));
    }
};

template <class T> struct KSparse : models::Autoencoder<T> {  // the encoder's code, its top k kept
    KSparse(const models::AutoencoderConfig& c, int k) : models::Autoencoder<T>(c), k(k) {}
    Var<T> encode(const Var<T>& x) override { return apply<TopK>({models::Autoencoder<T>::encode(x)}, {.i = k}); }
    static std::shared_ptr<models::Autoencoder<T>> make(const models::AutoencoderConfig& c, const nlohmann::json& o) {
        return std::make_shared<KSparse>(c, o.at("k").get<int>());
    }
    int k;
};

int main(int argc, char** argv) {
    models::OptionSpec k{.name = "k", .type = models::OptionSpec::Type::integer, .default_value = "4", .min = 1,
                         .meaning = "code units kept per sample"};
    models::register_variant({.name = "k-sparse", .summary = "MSE of the reconstruction from the k largest code units",
                              .options = {k}}, &KSparse<float>::make, &KSparse<double>::make);
    return cli::main(argc, argv);
}
