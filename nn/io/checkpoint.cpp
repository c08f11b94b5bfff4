#include "tapegrad/nn/io/checkpoint.hpp"

#include <algorithm>
#include <string_view>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "tapegrad/nn/io/npz.hpp"

namespace tapegrad::nn {

namespace {

constexpr std::string_view format_name = "tapegrad.checkpoint";
constexpr int format_version = 1;
constexpr std::string_view optimizer_prefix = "optimizer/";

template <class T>
constexpr std::string_view dtype_of() {
    return std::is_same_v<T, float> ? "float32" : "float64";
}

nlohmann::json parse_json(const std::string& text, std::string_view what, std::string_view path) {
    try {
        return nlohmann::json::parse(text);
    } catch (const nlohmann::json::exception& e) {
        tapegrad::detail::throw_value_error(fmt::format("checkpoint {}: {} is not JSON: {}", path, what, e.what()));
    }
}

// How deep the arrays and objects of a JSON text nest, counted without parsing (or recursing).
std::size_t json_depth(std::string_view text) {
    std::size_t depth = 0;
    std::size_t deepest = 0;
    bool in_string = false;
    for (std::size_t i = 0; i < text.size(); ++i) {
        char c = text[i];
        if (in_string) {
            if (c == '\\') {
                ++i;
            } else if (c == '"') {
                in_string = false;
            }
        } else if (c == '"') {
            in_string = true;
        } else if (c == '[' || c == '{') {
            deepest = std::max(deepest, ++depth);
        } else if ((c == ']' || c == '}') && depth > 0) {
            --depth;
        }
    }
    return deepest;
}

// A config holds a few levels; a damaged or hostile one nested thousands deep would make dump() recurse
// once a level and write text quadratic in the depth.
constexpr std::size_t deepest_config = 64;

nlohmann::json config_of(const std::vector<NpzEntry>& entries, const std::string& path) {
    const NpzEntry* entry = find_entry(entries, "config");
    const auto* text = entry != nullptr ? std::get_if<std::string>(&entry->value) : nullptr;
    if (text == nullptr) {
        detail::throw_file_error(fmt::format("checkpoint {}: no config text: not a tapegrad checkpoint", path));
    }
    if (std::size_t depth = json_depth(*text); depth > deepest_config) {
        detail::throw_file_error(fmt::format("checkpoint {}: config is nested {} deep (a checkpoint's is at most {})",
                                             path, depth, deepest_config));
    }
    nlohmann::json config;
    try {
        config = nlohmann::json::parse(*text);
    } catch (const nlohmann::json::exception& e) {
        detail::throw_file_error(fmt::format("checkpoint {}: config is not JSON: {}", path, e.what()));
    }
    if (!config.is_object() || config.value("format", "") != format_name) {
        detail::throw_file_error(fmt::format("checkpoint {}: config is not a tapegrad checkpoint's", path));
    }
    if (config.value("version", 0) != format_version) {
        detail::throw_file_error(fmt::format("checkpoint {}: format version {} (this build reads {})", path,
                                             config.value("version", 0), format_version));
    }
    return config;
}

// The arrays of `entries` that `wanted` names, checked against the shapes they must have; every
// difference goes into `problems`.
template <class T>
std::vector<std::pair<std::string, Array<T>>> match(const std::vector<NpzEntry>& entries,
                                                    const std::vector<std::pair<std::string, Shape>>& wanted,
                                                    std::string_view prefix, std::vector<std::string>& problems) {
    std::vector<std::pair<std::string, Array<T>>> found;
    for (const auto& [name, shape] : wanted) {
        const NpzEntry* entry = find_entry(entries, std::string(prefix) + name);
        if (entry == nullptr) {
            problems.push_back(fmt::format("{}{} is missing from the file", prefix, name));
            continue;
        }
        const auto* array = std::get_if<Array<T>>(&entry->value);
        if (array == nullptr) {
            problems.push_back(fmt::format("{}{} is {} in the file, the model is {}", prefix, name,
                                           dtype_name(entry->value), dtype_of<T>()));
            continue;
        }
        if (array->shape() != shape) {
            problems.push_back(fmt::format("{}{} has shape {}, file has {}", prefix, name, tapegrad::to_string(shape),
                                           tapegrad::to_string(array->shape())));
            continue;
        }
        found.emplace_back(name, *array);
    }
    return found;
}

}  // namespace

template <class T>
void save_checkpoint(const std::string& path, const Module<T>& model, const Optimizer<T>* optimizer,
                     const std::string& model_config, const std::string& extra, const std::vector<NpzEntry>& arrays) {
    std::vector<NpzEntry> entries;
    nlohmann::json names = nlohmann::json::array();
    for (const auto& p : model.named_parameters()) {
        entries.push_back({p.name, p.var.value()});
        names.push_back(p.name);
    }
    nlohmann::json optimizer_json = nullptr;
    if (optimizer != nullptr) {
        optimizer_json = parse_json(optimizer->hyperparameters_json(), "the optimizer's options", path);
        optimizer_json["kind"] = optimizer->kind();
        optimizer_json["steps"] = optimizer->steps();
        for (auto& [name, buffer] : optimizer->state()) {
            entries.push_back({std::string(optimizer_prefix) + name, std::move(buffer)});
        }
    }
    nlohmann::json config = {{"format", format_name},
                             {"version", format_version},
                             {"dtype", dtype_of<T>()},
                             {"model", parse_json(model_config, "the model configuration", path)},
                             {"optimizer", optimizer_json},
                             {"extra", parse_json(extra, "the extra state", path)},
                             {"parameters", names}};
    for (const NpzEntry& e : arrays) {
        if (e.name.starts_with(optimizer_prefix) || e.name == "config") {
            tapegrad::detail::throw_value_error(
                fmt::format("checkpoint {}: the array name \"{}\" is the checkpoint's own", path, e.name));
        }
        entries.push_back(e);
    }
    entries.push_back({"config", config.dump(2)});
    write_npz(path, entries);  // refuses a name that appears twice
}

template <class T>
void load_checkpoint(const std::string& path, Module<T>& model, Optimizer<T>* optimizer) {
    std::vector<NpzEntry> entries = read_npz(path);
    nlohmann::json config = config_of(entries, path);
    std::vector<std::string> problems;
    if (config.value("dtype", "") != dtype_of<T>()) {
        problems.push_back(fmt::format("holds {} parameters, the model is {}", config.value("dtype", "?"), dtype_of<T>()));
    }
    ParameterList<T> params = model.named_parameters();
    std::vector<std::pair<std::string, Shape>> wanted;
    for (const auto& p : params) {
        wanted.emplace_back(p.name, p.var.shape());
    }
    auto values = match<T>(entries, wanted, "", problems);
    for (const auto& name : config.value("parameters", nlohmann::json::array())) {
        bool known = std::any_of(params.begin(), params.end(), [&](const auto& p) { return p.name == name; });
        if (!known) {
            problems.push_back(fmt::format("{} is in the file but not in the model", name.get<std::string>()));
        }
    }
    std::vector<std::pair<std::string, Array<T>>> state;
    std::size_t steps = 0;
    if (optimizer != nullptr) {
        const nlohmann::json& saved = config["optimizer"];
        if (saved.is_null()) {
            problems.push_back("holds no optimizer state");
        } else if (saved.value("kind", "") != optimizer->kind()) {
            problems.push_back(fmt::format("holds {} state, the optimizer is {}", saved.value("kind", "?"),
                                           optimizer->kind()));
        } else {
            steps = saved.value("steps", std::size_t{0});
            for (const NpzEntry& e : entries) {
                if (e.name.starts_with(optimizer_prefix)) {
                    const auto* array = std::get_if<Array<T>>(&e.value);
                    if (array == nullptr) {
                        problems.push_back(fmt::format("{} is {} in the file, the model is {}", e.name,
                                                       dtype_name(e.value), dtype_of<T>()));
                    } else {
                        state.emplace_back(e.name.substr(optimizer_prefix.size()), *array);
                    }
                }
            }
        }
    }
    if (!problems.empty()) {
        tapegrad::detail::throw_value_error(fmt::format("checkpoint {}: {}", path, fmt::join(problems, "; ")));
    }
    if (optimizer != nullptr) {
        try {
            optimizer->load_state(state, steps);  // checks names and shapes, changes nothing on error
        } catch (const ValueError& e) {
            tapegrad::detail::throw_value_error(fmt::format("checkpoint {}: {}", path, e.what()));
        }
    }
    for (std::size_t i = 0; i < params.size(); ++i) {
        params[i].var.mutable_value() = std::move(values[i].second);
    }
}

template <class T>
NamedArrays<T> read_checkpoint_arrays(const std::string& path, std::string_view prefix) {
    std::vector<NpzEntry> entries = read_npz(path);
    config_of(entries, path);
    NamedArrays<T> found;
    for (NpzEntry& e : entries) {
        if (!e.name.starts_with(prefix)) {
            continue;
        }
        auto* array = std::get_if<Array<T>>(&e.value);
        if (array == nullptr) {
            tapegrad::detail::throw_value_error(fmt::format("checkpoint {}: {} is {} in the file, wanted {}",
                                                            path, e.name, dtype_name(e.value), dtype_of<T>()));
        }
        found.emplace_back(e.name.substr(prefix.size()), std::move(*array));
    }
    return found;
}

std::string read_checkpoint_config(const std::string& path) {
    return config_of(read_npz(path), path).dump(2);
}

template void save_checkpoint<float>(const std::string&, const Module<float>&, const Optimizer<float>*,
                                     const std::string&, const std::string&, const std::vector<NpzEntry>&);
template void save_checkpoint<double>(const std::string&, const Module<double>&, const Optimizer<double>*,
                                      const std::string&, const std::string&, const std::vector<NpzEntry>&);
template NamedArrays<float> read_checkpoint_arrays<float>(const std::string&, std::string_view);
template NamedArrays<double> read_checkpoint_arrays<double>(const std::string&, std::string_view);
template void load_checkpoint<float>(const std::string&, Module<float>&, Optimizer<float>*);
template void load_checkpoint<double>(const std::string&, Module<double>&, Optimizer<double>*);

}  // namespace tapegrad::nn
