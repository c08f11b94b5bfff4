#include "run.hpp"

#include <algorithm>

#include <fmt/format.h>

#include "tapegrad/models/factory.hpp"
#include "tapegrad/nn/io/checkpoint.hpp"

namespace tapegrad::tools {

namespace {

using nlohmann::json;

json training_json(const models::TrainerOptions& t) {
    return {{"epochs", t.epochs},       {"batch_size", t.batch_size},
            {"optimizer", t.optimizer}, {"lr", t.lr},
            {"weight_decay", t.weight_decay}, {"momentum", t.momentum},
            {"validation", t.validation_fraction}, {"patience", t.patience},
            {"clip_norm", t.clip_norm}, {"train_seed", t.seed}};
}

struct Key {
    const char* option;
    const char* key;
};

// What makes the batches and the model's steps what they are: another value is another run.
constexpr Key fixed_training[] = {
    {"--batch-size", "batch_size"}, {"--optimizer", "optimizer"}, {"--train-seed", "train_seed"},
    {"--validation", "validation"}};
// What a user may change on the way: the step's size and the stopping rule.
constexpr Key free_training[] = {
    {"--lr", "lr"}, {"--weight-decay", "weight_decay"}, {"--momentum", "momentum"}, {"--clip-norm", "clip_norm"},
    {"--patience", "patience"}};

std::string text(const json& value) {
    return value.is_string() ? value.get<std::string>() : value.dump();
}

std::string sizes_text(const std::vector<std::size_t>& sizes) {
    return fmt::format("{}", fmt::join(sizes, "-"));
}

}  // namespace

json run_record(const DataOptions& data, const Split& split, const models::TrainerOptions& trainer) {
    json d = data.to_json();
    d["scaling"] = split.scaling;
    d["train_rows"] = split.train.size();
    d["test_rows"] = split.test.size();
    d["features"] = split.train.dim();
    return {{"data", d}, {"training", training_json(trainer)}};
}

CheckpointRecord CheckpointRecord::read(const std::string& path) {
    CheckpointRecord r;
    r.path = path;
    r.config = json::parse(nn::read_checkpoint_config(path));
    r.model = r.config.value("model", json());
    if (!r.model.is_object() || !r.model.contains("variant") || !r.model["variant"].is_string()) {
        tapegrad::detail::throw_value_error(
            fmt::format("checkpoint {}: it does not describe its model: not written by {} train", path, program()));
    }
    // A variant a user's program registered is unknown to another program, the plain tapegrad too.
    std::string variant = r.model["variant"].get<std::string>();
    std::vector<models::VariantInfo> known = models::variant_infos();
    if (std::none_of(known.begin(), known.end(), [&](const auto& info) { return info.name == variant; })) {
        tapegrad::detail::throw_value_error(fmt::format(
            "checkpoint {}: its model is the variant \"{}\", which {} does not know (known: {}): run it with the "
            "program that registers that variant",
            path, variant, program(), models::variant_names()));
    }
    const json& extra = r.config.value("extra", json::object());
    r.run = extra.value("run", json());
    r.epochs_done = extra.value("epoch", 0);
    if (extra.contains("history")) {
        r.stopped_early = extra["history"].value("stopped_early", false);
    }
    return r;
}

DataOptions data_for(const CLI::App& app, const DataOptions& given_options, const CheckpointRecord& record,
                     json& scaling) {
    std::string verb = app.get_name();
    if (record.run.is_null()) {
        note(fmt::format("{} {}: the checkpoint does not record its data (written before tapegrad kept it): using "
                         "--data {} --scale {}, fitted again",
                         verb, record.path, given_options.data, given_options.scale));
        scaling = nullptr;
        return given_options;
    }
    const json& stored = record.run.at("data");
    scaling = stored.value("scaling", json());
    json given_json = given_options.to_json();
    for (const auto& [option, key] : data_option_keys) {
        if (given(app, option) && given_json[key] != stored[key]) {
            note(fmt::format("{}: {} {} instead of the checkpoint's {}", verb, option, text(given_json[key]),
                             text(stored[key])));
            if (key == "scale") {
                scaling = nullptr;
            }
        }
    }
    DataOptions data = DataOptions::from_json(stored);
    data.data = given(app, "--data") ? given_options.data : data.data;
    data.test_fraction = given(app, "--test-fraction") ? given_options.test_fraction : data.test_fraction;
    data.seed = given(app, "--data-seed") ? given_options.seed : data.seed;
    data.scale = given(app, "--scale") ? given_options.scale : data.scale;
    data.limit = given(app, "--limit") ? given_options.limit : data.limit;
    return data;
}

std::vector<std::string> resume_conflicts(const CLI::App& app, const CheckpointRecord& record,
                                          const ModelOptions& model, const DataOptions& data,
                                          const models::TrainerOptions& trainer) {
    std::vector<std::string> conflicts;
    auto differ = [&](const std::string& what, const json& asked, const json& stored) {
        if (asked != stored) {
            conflicts.push_back(fmt::format("{} (the checkpoint's: {})", what, text(stored)));
        }
    };
    const json& m = record.model;
    const json& c = m.at("config");
    if (given(app, "--model")) {
        differ("--model " + model.variant, model.variant, m.at("variant"));
    }
    auto stored_sizes = c.at("sizes").get<std::vector<std::size_t>>();
    if (given(app, "--dims") || given(app, "--hidden") || given(app, "--latent")) {
        std::vector<std::size_t> sizes = model.dims;
        if (!given(app, "--dims")) {
            sizes = {stored_sizes.front()};
            if (given(app, "--hidden")) {
                sizes.insert(sizes.end(), model.hidden.begin(), model.hidden.end());
            } else {
                sizes.insert(sizes.end(), stored_sizes.begin() + 1, stored_sizes.end() - 1);
            }
            sizes.push_back(given(app, "--latent") ? model.latent : stored_sizes.back());
        }
        if (sizes != stored_sizes) {
            conflicts.push_back(
                fmt::format("sizes {} (the checkpoint's: {})", sizes_text(sizes), sizes_text(stored_sizes)));
        }
    }
    const std::pair<const char*, std::pair<const char*, json>> model_fields[] = {
        {"--activation", {"activation", model.activation}},
        {"--latent-activation", {"latent_activation", model.latent_activation}},
        {"--output-activation", {"output_activation", model.output_activation}},
        {"--tied", {"tied", model.tied}},
        {"--init", {"init", model.init}},
        {"--seed", {"seed", model.seed}},
    };
    for (const auto& [option, field] : model_fields) {
        if (given(app, option)) {
            differ(fmt::format("{} {}", option, text(field.second)), field.second, c.at(field.first));
        }
    }
    const std::pair<const char*, std::pair<const char*, json>> image_fields[] = {
        {"--conv", {"channels", model.conv}},
        {"--image", {"image", model.image}},
    };
    for (const auto& [option, field] : image_fields) {
        if (given(app, option)) {
            differ(fmt::format("{} {}", option, fmt::join(field.second.get<std::vector<std::size_t>>(), ",")),
                   field.second, c.value(field.first, json::array()));
        }
    }
    if (given(app, "--options")) {
        std::string variant = given(app, "--model") ? model.variant : m.at("variant").get<std::string>();
        json asked = json::parse(models::complete_options(variant, model.options, c.at("seed").get<std::uint64_t>()));
        json wanted = json::parse(model.options);
        const json& stored = m.at("options");
        for (const auto& [key, value] : wanted.items()) {
            differ(fmt::format("--options {}: {}", key, asked[key].dump()), asked[key],
                   stored.contains(key) ? stored[key] : json());
        }
    }
    if (record.run.is_null()) {
        return conflicts;  // an older checkpoint: its data and settings are not known
    }
    json asked_data = data.to_json();
    const json& stored_data = record.run.at("data");
    for (const auto& [option, key] : data_option_keys) {
        if (given(app, option)) {
            differ(fmt::format("{} {}", option, text(asked_data[key])), asked_data[key], stored_data.at(key));
        }
    }
    json asked_training = training_json(trainer);
    const json& stored_training = record.run.at("training");
    for (const Key& k : fixed_training) {
        if (given(app, k.option)) {
            differ(fmt::format("{} {}", k.option, text(asked_training[k.key])), asked_training[k.key],
                   stored_training.at(k.key));
        }
    }
    for (const Key& k : free_training) {
        if (given(app, k.option) && asked_training[k.key] != stored_training.at(k.key)) {
            note(fmt::format("train --resume: {} {} from here on, where the run had {}", k.option,
                             text(asked_training[k.key]), text(stored_training.at(k.key))));
        }
    }
    return conflicts;
}

void adopt_record(const CLI::App& app, const CheckpointRecord& record, DataOptions& data,
                  models::TrainerOptions& trainer) {
    if (record.run.is_null()) {
        return;
    }
    data = DataOptions::from_json(record.run.at("data"));
    const json& t = record.run.at("training");
    auto take = [&](const char* option, const char* key, auto& field) {
        if (!given(app, option)) {
            field = t.at(key).get<std::decay_t<decltype(field)>>();
        }
    };
    take("--epochs", "epochs", trainer.epochs);
    take("--batch-size", "batch_size", trainer.batch_size);
    take("--optimizer", "optimizer", trainer.optimizer);
    take("--lr", "lr", trainer.lr);
    take("--weight-decay", "weight_decay", trainer.weight_decay);
    take("--momentum", "momentum", trainer.momentum);
    take("--validation", "validation", trainer.validation_fraction);
    take("--patience", "patience", trainer.patience);
    take("--clip-norm", "clip_norm", trainer.clip_norm);
    take("--train-seed", "train_seed", trainer.seed);
}

}  // namespace tapegrad::tools
