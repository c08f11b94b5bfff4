#include "targets.hpp"

#include <cxxabi.h>

#include <cmath>
#include <cstdlib>
#include <fstream>
#include <limits>
#include <memory>
#include <new>
#include <sstream>
#include <stdexcept>
#include <typeinfo>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "samples.hpp"
#include "tapegrad/models/autoencoder.hpp"
#include "tapegrad/models/factory.hpp"
#include "tapegrad/nn/io/checkpoint.hpp"
#include "tapegrad/nn/io/csv.hpp"
#include "tapegrad/nn/io/idx.hpp"
#include "tapegrad/nn/io/npy.hpp"
#include "tapegrad/nn/optim.hpp"

namespace tapegrad::fuzz {

namespace {

// Where results go so that the compiler keeps the reads that make them.
volatile double sink;

std::string whole_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
}

// A loaded array is read to the end, so that a shape claiming more than the storage holds shows as an
// AddressSanitizer report rather than passing unnoticed.
template <class A>
void touch(const A& a) {
    double sum = 0;
    for (std::size_t i = 0; i < a.size(); ++i) {
        sum += static_cast<double>(a.data()[i]);
    }
    sink = sum;
}

void idx_images(const std::string& path) {
    Array<float> x = nn::read_idx_images(path);
    touch(x);
}

void idx_labels(const std::string& path) {
    std::vector<std::int64_t> labels = nn::read_idx_labels(path);
    sink = static_cast<double>(labels.size());
}

void check_dataset(const nn::Dataset& data) {
    touch(data.x);
    if (data.has_labels() && data.labels.size() != data.x.shape(0)) {
        throw std::logic_error(fmt::format("read_csv: {} labels for {} rows", data.labels.size(), data.x.shape(0)));
    }
}

// A file is read a second time, with its last column as labels, only when it loaded. A first line with
// a ';' and no ',' says that ';' is the delimiter, as a user would see it.
void csv(const std::string& path) {
    std::string bytes = whole_file(path);
    std::string text = gunzip_bytes(bytes, std::size_t{1} << 20).value_or(bytes);
    std::string first_line = text.substr(0, text.find('\n'));
    bool semicolons = first_line.find(';') != std::string::npos && first_line.find(',') == std::string::npos;
    char delimiter = semicolons ? ';' : ',';
    check_dataset(nn::read_csv(path, {.delimiter = delimiter}));
    check_dataset(nn::read_csv(path, {.label_column = -1, .delimiter = delimiter}));
}

template <class T>
void npy(const std::string& path) {
    touch(nn::read_npy<T>(path));
}

// What an .npz entry goes through: every kind, text included.
void npy_value(const std::string& path) {
    std::string bytes = whole_file(path);
    nn::NpyValue value = nn::decode_npy_value(bytes, "npy " + path);
    std::visit(
        [](const auto& v) {
            if constexpr (!std::is_same_v<std::decay_t<decltype(v)>, std::string>) {
                touch(v);
            }
        },
        value);
}

models::AutoencoderConfig small_config() { return {.sizes = {4, 3, 2}, .seed = 1}; }

template <class T>
std::shared_ptr<models::Autoencoder<T>> small_model() {
    return std::make_shared<models::Autoencoder<T>>(small_config());
}

void checkpoint_with_adam(const std::string& path) {
    auto model = small_model<float>();
    nn::Adam<float> adam(model->named_parameters(), {.lr = 0.01});
    nn::load_checkpoint<float>(path, *model, &adam);
}

void checkpoint_config(const std::string& path) {
    // What the tools do with it: the text is JSON again, always.
    nlohmann::json config = nlohmann::json::parse(nn::read_checkpoint_config(path));
    sink = static_cast<double>(config.size());
}

// Whether a description asks for a model too big to build here, though it could exist: every size a whole
// number that a size_t holds and every weight small enough to allocate on some machine (its bytes fit in a
// ptrdiff_t), and more than description_parameter_budget parameters in all. Sizes that are negative,
// fractional or overflow are not skipped: model_from_description must refuse them itself.
bool too_big_to_build(const std::string& text) {
    nlohmann::json j = nlohmann::json::parse(text, nullptr, false);
    if (!j.is_object() || !j.contains("config") || !j["config"].is_object() || !j["config"].contains("sizes") ||
        !j["config"]["sizes"].is_array()) {
        return false;
    }
    std::vector<std::uint64_t> sizes;
    for (const nlohmann::json& s : j["config"]["sizes"]) {
        if (s.is_number_unsigned()) {
            sizes.push_back(s.get<std::uint64_t>());
        } else if (s.is_number_float() && s.get<double>() >= 0 && s.get<double>() < 0x1p53 &&
                   s.get<double>() == std::floor(s.get<double>())) {
            sizes.push_back(static_cast<std::uint64_t>(s.get<double>()));
        } else {
            return false;  // negative, fractional, huge or not a number
        }
    }
    double parameters = 0;
    for (std::size_t i = 0; i + 1 < sizes.size(); ++i) {
        std::uint64_t weight = 0;
        std::uint64_t bytes = 0;
        if (__builtin_mul_overflow(sizes[i], sizes[i + 1], &weight) || __builtin_mul_overflow(weight, 8, &bytes) ||
            bytes > static_cast<std::uint64_t>(std::numeric_limits<std::ptrdiff_t>::max())) {
            return false;
        }
        // The encoder's and the decoder's weights and biases.
        parameters += 2 * static_cast<double>(weight) + static_cast<double>(sizes[i]) + static_cast<double>(sizes[i + 1]);
    }
    return parameters > description_parameter_budget;
}

void model_description(const std::string& path) {
    std::string text = whole_file(path);
    if (too_big_to_build(text)) {
        return;
    }
    std::shared_ptr<models::Autoencoder<float>> model = models::model_from_description<float>(text);
    // A model that was built is described again as it was, and its loss has a value: failing here is a
    // bug, never a refusal of the input, hence logic_error rather than tapegrad's errors. But for
    // ValueError: some options are checked only when the loss is computed (sparse's rho outside (0, 1)).
    std::string description = models::describe_model(*model);
    std::string again;
    try {
        again = models::describe_model(*models::model_from_description<float>(description));
    } catch (const std::exception& e) {
        throw std::logic_error(fmt::format("the description of a built model is refused: {}: {}", description, e.what()));
    }
    if (again != description) {
        throw std::logic_error(fmt::format("described twice differently: {} then {}", description, again));
    }
    try {
        std::size_t n = model->config().input_size();
        Var<float> x(Array<float>(xt::zeros<float>(Shape{2, n})));
        Var<float> loss = model->loss(x);
        if (loss.shape() != Shape{}) {
            throw std::logic_error(fmt::format("the loss has shape {}", to_string(loss.shape())));
        }
    } catch (const ValueError&) {
        throw;
    } catch (const tapegrad::Error& e) {
        throw std::logic_error(fmt::format("a model built from {} fails: {}", description, e.what()));
    }
}

std::string type_name(const std::type_info& type) {
    int status = 0;
    std::unique_ptr<char, void (*)(void*)> name(abi::__cxa_demangle(type.name(), nullptr, nullptr, &status),
                                                std::free);
    return status == 0 && name ? name.get() : type.name();
}

}  // namespace

std::string checkpoint_model_description() { return models::describe_model(*small_model<float>()); }

const std::vector<Target>& targets() {
    static const std::vector<Target> all = {
        {"idx_images", ".idx", {idx_images}},
        {"idx_labels", ".idx", {idx_labels}},
        {"csv", ".csv", {csv}},
        {"npy", ".npy", {npy<float>, npy<double>, npy<std::int64_t>, npy_value}},
        // One model only: load_checkpoint<double> is the same code; the float64 seed takes the
        // dtype-mismatch branch.
        {"checkpoint", ".npz", {checkpoint_with_adam}},
        {"checkpoint_config", ".npz", {checkpoint_config}},
        {"model_description", ".json", {model_description}, false},
    };
    return all;
}

const Target& find_target(std::string_view name) {
    std::vector<std::string_view> known;
    for (const Target& t : targets()) {
        if (t.name == name) {
            return t;
        }
        known.push_back(t.name);
    }
    throw std::invalid_argument(fmt::format("fuzz: no target {} (known: {})", name, fmt::join(known, ", ")));
}

std::string file_name(const Target& target, std::string_view bytes, std::string_view stem) {
    bool gzip = bytes.size() >= 2 && bytes[0] == '\x1f' && bytes[1] == '\x8b';
    return fmt::format("{}{}{}", stem, target.extension, gzip ? ".gz" : "");
}

std::string verdict(const Target& target, const std::string& path) {
    for (auto read : target.reads) {
        try {
            read(path);
        } catch (const std::exception& e) {
            std::string_view what = e.what();
            bool named = target.names_file ? what.find(path) != std::string_view::npos
                                           : dynamic_cast<const tapegrad::Error*>(&e) != nullptr;
            // bad_alloc never names the file; it is listed here to be explicit that it is a bug.
            if (named && dynamic_cast<const std::bad_alloc*>(&e) == nullptr) {
                continue;
            }
            return fmt::format("{}: {} ({})", type_name(typeid(e)), what,
                               target.names_file ? "the message does not name " + path : "not a tapegrad::Error");
        } catch (...) {
            return "an exception that is not a std::exception";
        }
    }
    return "";
}

}  // namespace tapegrad::fuzz
