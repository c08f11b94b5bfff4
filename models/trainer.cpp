#include "tapegrad/models/trainer.hpp"

#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <numeric>
#include <optional>
#include <sstream>

#include <fmt/format.h>
#include <fmt/ostream.h>
#include <nlohmann/json.hpp>
#include <zlib.h>

#include "tapegrad/autodiff/distributed.hpp"
#include "tapegrad/autodiff/ops.hpp"
#include "tapegrad/models/factory.hpp"
#include "tapegrad/nn/io/checkpoint.hpp"
#include "tapegrad/nn/data.hpp"
#include "tapegrad/nn/distributed.hpp"
#include "tapegrad/nn/io/file.hpp"

namespace tapegrad::models {

namespace {

double now() {
    return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

std::string clock_text(double seconds) {
    auto s = static_cast<long>(seconds + 0.5);
    return s >= 3600 ? fmt::format("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60) : fmt::format("{}:{:02}", s / 60, s % 60);
}

// The batch goes in under a name, so that checking mode can say a bad value came with the data.
template <class T>
Var<T> as_var(const Array<float>& x) {
    if constexpr (std::is_same_v<T, float>) {
        return Var<T>(x, false, "batch");
    } else {
        return Var<T>(xt::cast<T>(x), false, "batch");
    }
}

template <class T>
std::optional<std::size_t> first_nonfinite(const Array<T>& a) {
    for (std::size_t i = 0; i < a.size(); ++i) {
        if (!std::isfinite(a.data()[i])) {
            return i;
        }
    }
    return std::nullopt;
}


template <class T>
std::unique_ptr<nn::Optimizer<T>> make_optimizer(const TrainerOptions& o, const nn::ParameterList<T>& params) {
    if (o.optimizer == "adam") {
        return std::make_unique<nn::Adam<T>>(params, nn::AdamOptions{.lr = o.lr, .weight_decay = o.weight_decay});
    }
    if (o.optimizer == "adamw") {
        return std::make_unique<nn::AdamW<T>>(params, nn::AdamWOptions{.lr = o.lr, .weight_decay = o.weight_decay});
    }
    if (o.optimizer == "sgd") {
        return std::make_unique<nn::SGD<T>>(
            params, nn::SGDOptions{.lr = o.lr, .momentum = o.momentum, .weight_decay = o.weight_decay});
    }
    tapegrad::detail::throw_value_error(
        fmt::format("trainer: unknown optimizer \"{}\" (known: adam, adamw, sgd)", o.optimizer));
}

// Sums over the ranks, then rank 0's sums on all: decisions taken on them (early stopping) must be the
// same on every rank, whatever order MPI added in on each.
void sum_over_ranks(std::vector<double>& values) {
    distributed::all_reduce_sum(values.data(), values.size());
    distributed::broadcast(values.data(), values.size());
}

std::string crc_text(const void* data, std::size_t bytes) {
    return fmt::format("crc32 {:08x}", crc32_z(0, static_cast<const Bytef*>(data), bytes));
}

std::string crc_text_of_file(const std::string& path) {
    std::string bytes = nn::detail::read_file(path, "checkpoint");
    return crc_text(bytes.data(), bytes.size());
}

std::string data_text(const nn::Dataset& d) {
    return fmt::format("{} rows of {} features, {}", d.size(), d.dim(), crc_text(d.x.data(), d.x.size() * sizeof(float)));
}

}  // namespace

std::string History::to_json() const {
    nlohmann::json records = nlohmann::json::array();
    for (const EpochRecord& r : epochs) {
        nlohmann::json record = {{"epoch", r.epoch},
                                 {"train_loss", r.train_loss},
                                 {"validation_loss", r.validation_loss},
                                 {"validation_mse", r.validation_mse},
                                 {"seconds", r.seconds}};
        if (!r.terms.empty()) {
            nlohmann::json terms = nlohmann::json::object();
            for (const auto& [name, value] : r.terms) {
                terms[name] = value;
            }
            record["terms"] = terms;
        }
        records.push_back(record);
    }
    return nlohmann::json{{"epochs", records},
                          {"best_epoch", best_epoch},
                          {"best_validation_mse", best_validation_mse},
                          {"stopped_early", stopped_early}}
        .dump();
}

History History::from_json(const std::string& text) {
    try {
        nlohmann::json j = nlohmann::json::parse(text);
        History h;
        for (const auto& r : j.at("epochs")) {
            EpochRecord record{r.at("epoch").get<int>(), r.at("train_loss").get<double>(),
                               r.at("validation_loss").get<double>(), r.at("validation_mse").get<double>(),
                               r.at("seconds").get<double>()};
            if (r.contains("terms")) {
                for (const auto& [name, value] : r.at("terms").items()) {
                    record.terms.emplace_back(name, value.get<double>());
                }
            }
            h.epochs.push_back(std::move(record));
        }
        h.best_epoch = j.at("best_epoch").get<int>();
        h.best_validation_mse = j.at("best_validation_mse").get<double>();
        h.stopped_early = j.at("stopped_early").get<bool>();
        return h;
    } catch (const nlohmann::json::exception& e) {
        tapegrad::detail::throw_value_error(fmt::format("history: {}", e.what()));
    }
}

std::string History::summary_json() const {
    return nlohmann::json{{"epochs", epochs.size()},
                          {"best_epoch", best_epoch},
                          {"best_validation_mse", best_validation_mse},
                          {"stopped_early", stopped_early}}
        .dump();
}

namespace {

constexpr std::string_view history_prefix = "history/";
constexpr std::string_view terms_prefix = "terms/";

// The records as columns, one float64 array each.
std::vector<nn::NpzEntry> history_arrays(const History& h) {
    std::size_t n = h.epochs.size();
    auto column = [&](auto field) {
        Array<double> a = xt::empty<double>(Shape{n});
        for (std::size_t e = 0; e < n; ++e) {
            a(e) = field(h.epochs[e]);
        }
        return a;
    };
    std::string p(history_prefix);
    std::vector<nn::NpzEntry> entries = {
        {p + "epoch", column([](const EpochRecord& r) { return double(r.epoch); })},
        {p + "train_loss", column([](const EpochRecord& r) { return r.train_loss; })},
        {p + "validation_loss", column([](const EpochRecord& r) { return r.validation_loss; })},
        {p + "validation_mse", column([](const EpochRecord& r) { return r.validation_mse; })},
        {p + "seconds", column([](const EpochRecord& r) { return r.seconds; })}};
    if (n > 0) {
        for (std::size_t t = 0; t < h.epochs.back().terms.size(); ++t) {
            const std::string& name = h.epochs.back().terms[t].first;
            entries.push_back({p + std::string(terms_prefix) + name, column([&](const EpochRecord& r) {
                                   auto it = std::find_if(r.terms.begin(), r.terms.end(),
                                                          [&](const auto& term) { return term.first == name; });
                                   return it == r.terms.end() ? std::nan("") : it->second;
                               })});
        }
    }
    return entries;
}

}  // namespace

History read_history(const std::string& checkpoint) {
    nlohmann::json config = nlohmann::json::parse(nn::read_checkpoint_config(checkpoint));
    History h;
    const nlohmann::json& summary = config.value("extra", nlohmann::json::object()).value("history", nlohmann::json());
    if (!summary.is_object()) {
        return h;  // not written by a Trainer
    }
    if (summary.at("epochs").is_array()) {  // written before the records moved into arrays
        return History::from_json(summary.dump());
    }
    auto columns = nn::read_checkpoint_arrays<double>(checkpoint, history_prefix);
    auto find = [&](std::string_view name) -> const Array<double>& {
        for (const auto& [n, a] : columns) {
            if (n == name) {
                return a;
            }
        }
        tapegrad::detail::throw_value_error(fmt::format("checkpoint {}: history/{} is missing", checkpoint, name));
    };
    auto count = summary.at("epochs").get<std::size_t>();
    for (const auto& [name, a] : columns) {
        if (a.dimension() != 1 || a.size() != count) {
            tapegrad::detail::throw_value_error(fmt::format("checkpoint {}: history/{} has shape {}, the history has {} "
                                                            "epochs",
                                                            checkpoint, name, tapegrad::to_string(a.shape()), count));
        }
    }
    const Array<double>& epoch = find("epoch");
    for (std::size_t e = 0; e < count; ++e) {
        EpochRecord r{.epoch = static_cast<int>(epoch(e)),
                      .train_loss = find("train_loss")(e),
                      .validation_loss = find("validation_loss")(e),
                      .validation_mse = find("validation_mse")(e),
                      .seconds = find("seconds")(e)};
        for (const auto& [name, a] : columns) {
            if (name.starts_with(terms_prefix)) {
                r.terms.emplace_back(name.substr(terms_prefix.size()), a(e));
            }
        }
        h.epochs.push_back(std::move(r));
    }
    h.best_epoch = summary.at("best_epoch").get<int>();
    h.best_validation_mse = summary.at("best_validation_mse").get<double>();
    h.stopped_early = summary.at("stopped_early").get<bool>();
    return h;
}

template <class T>
Trainer<T>::Trainer(Autoencoder<T>& model, TrainerOptions options)
    : model_(model), options_(std::move(options)), optimizer_(make_optimizer<T>(options_, model.named_parameters())) {
    if (options_.epochs < 1 || options_.batch_size == 0) {
        tapegrad::detail::throw_value_error(fmt::format("trainer: needs at least one epoch and a batch size above 0, got "
                                                        "{} epochs of batches of {}",
                                                        options_.epochs, options_.batch_size));
    }
    if (!(options_.validation_fraction >= 0 && options_.validation_fraction < 1)) {
        tapegrad::detail::throw_value_error(
            fmt::format("trainer: validation fraction {} outside [0, 1)", options_.validation_fraction));
    }
    if (options_.distributed) {
        ranks_ = distributed::size();
        rank_ = distributed::rank();
        if (!leader()) {
            options_.log = nullptr;
        }
    }
    // Under mpirun a rank's output is a pseudo-terminal, whatever mpirun's own is: no progress line there.
    terminal_ = options_.log == &std::cout && isatty(fileno(stdout)) != 0 && ranks_ == 1;
}

template <class T>
BatchShard Trainer<T>::shard_of(const nn::Batches& batches, std::size_t i, nn::Batch& batch) const {
    if (ranks_ == 1) {
        batches.fill(i, batch);
        return {};
    }
    std::size_t global = batches.rows(i);
    auto [begin, end] = nn::shard_range(global, static_cast<std::size_t>(rank_), static_cast<std::size_t>(ranks_));
    if (begin == end) {
        batches.fill(i, 0, 1, batch);  // a stand-in row, counted 0
        return {.begin = 0, .rows = 0, .global_rows = global};
    }
    batches.fill(i, begin, end, batch);
    return {.begin = begin, .rows = end - begin, .global_rows = global};
}

// What must be the same on every rank for the ranks to train one run; each is compared, and the first
// that differs named, before anything is read or written.
template <class T>
void Trainer<T>::check_same_start(const nn::Dataset& train, const nn::Dataset* validation) const {
    auto same = [](std::string_view what, const std::string& text) {
        nn::check_same_on_all_ranks(fmt::format("trainer: {}", what), text);
    };
    // Every option but where the progress goes (log, log_every), the stop flag and the caller's record.
    const TrainerOptions& o = options_;
    nlohmann::ordered_json options = {{"epochs", o.epochs},
                                      {"batch_size", o.batch_size},
                                      {"optimizer", o.optimizer},
                                      {"lr", o.lr},
                                      {"weight_decay", o.weight_decay},
                                      {"momentum", o.momentum},
                                      {"validation_fraction", o.validation_fraction},
                                      {"patience", o.patience},
                                      {"min_delta", o.min_delta},
                                      {"restore_best", o.restore_best},
                                      {"clip_norm", o.clip_norm},
                                      {"seed", o.seed},
                                      {"checkpoint", o.checkpoint},
                                      {"resume", o.resume},
                                      {"check_numerics", o.check_numerics},
                                      {"checkpoint_every", o.checkpoint_every},
                                      {"checkpoint_seconds", o.checkpoint_seconds},
                                      {"history", o.history}};
    for (const auto& [name, value] : options.items()) {
        same("the option " + name, value.is_string() ? value.template get<std::string>() : value.dump());
    }
    same("the training data", data_text(train));
    same("the validation data", validation != nullptr ? data_text(*validation) : std::string("none"));
    same("the model", describe_model(model_));
}

template <class T>
History Trainer<T>::fit(const nn::Dataset& data) {
    if (options_.validation_fraction == 0) {
        return fit(data, nullptr);
    }
    auto [train, validation] = nn::train_test_split(data, options_.validation_fraction, options_.seed);
    given_ = &data;
    struct Forget {
        const nn::Dataset*& given;
        ~Forget() { given = nullptr; }
    } forget{given_};
    return fit(train, &validation);
}

template <class T>
void Trainer<T>::progress(int epoch, std::size_t batch, std::size_t batches, double loss, bool done) {
    if (options_.log == nullptr || !terminal_) {
        return;
    }
    double elapsed = now() - started_;
    double left = batches_done_ > 0 ? elapsed / double(batches_done_) * double(batches_total_ - batches_done_) : 0;
    fmt::print(*options_.log, "\repoch {}/{}  batch {}/{}  loss {:.5f}  time left {}   {}", epoch, options_.epochs,
               batch, batches, loss, clock_text(left), done ? "\r" : "");
    options_.log->flush();
}

template <class T>
double Trainer<T>::train_epoch(const nn::Dataset& train, int epoch) {
    model_.train();
    nn::Batches batches(train, {.batch_size = options_.batch_size, .seed = options_.seed}, static_cast<std::uint64_t>(epoch));
    double total = 0;
    double seen = 0;
    double last_print = 0;
    std::fill(term_sums_.begin(), term_sums_.end(), 0.0);
    nn::Batch batch;
    for (std::size_t index = 0; index < batches.size(); ++index) {
        bool stop = options_.stop != nullptr && options_.stop->load(std::memory_order_relaxed);
        if (options_.stop != nullptr && ranks_ > 1) {  // all stop after the same batch, or none
            double stops = stop ? 1 : 0;
            distributed::all_reduce_sum(&stops, 1);
            stop = stops > 0;
        }
        if (stop) {
            throw TrainingInterrupted(
                fmt::format("trainer: stopped in epoch {}/{} after batch {} of {}; {}", epoch + 1, options_.epochs,
                            index, batches.size(),
                            checkpoint_epoch_ == 0 || options_.checkpoint.empty()
                                ? std::string("no checkpoint was written")
                                : fmt::format("the last checkpoint is {}, after epoch {}", options_.checkpoint,
                                              checkpoint_epoch_)),
                options_.checkpoint.empty() ? 0 : checkpoint_epoch_);
        }
        BatchShard shard = shard_of(batches, index, batch);
        model_.set_shard(shard);
        // Each rank's loss weighed by its share of the batch: their sum is the loss of the whole batch.
        double counted = shard.split() ? double(shard.rows) : double(batch.x.shape(0));
        const char* phase = "forward pass";
        double value = 0;
        try {
            Var<T> x = as_var<T>(batch.x);
            optimizer_->zero_grad();
            Var<T> loss = model_.loss(x);
            phase = "backward pass";
            if (shard.split()) {
                (loss * static_cast<T>(counted / double(shard.global_rows))).backward();
                phase = "sum of the gradients over the ranks";
                nn::all_reduce_gradients(optimizer_->parameters());
            } else {
                loss.backward();
            }
            if (options_.clip_norm > 0) {
                nn::clip_grad_norm(optimizer_->parameters(), options_.clip_norm);
            }
            phase = "optimizer step";
            optimizer_->step();
            if (options_.check_numerics) {
                check_parameters();
            }
            value = loss.item();
        } catch (const NumericError& e) {
            std::size_t step = static_cast<std::size_t>(epoch) * batches.size() + index + 1;
            rethrow_numeric(e,
                            fmt::format("epoch {}/{}, batch {}/{} (step {}), {}", epoch + 1, options_.epochs,
                                        index + 1, batches.size(), step, phase),
                            batch, train, true);
        }
        total += value * counted;
        seen += counted;
        std::span<const LossTerm> terms = model_.loss_terms();
        for (std::size_t t = 0; t < terms.size() && t < term_sums_.size(); ++t) {
            term_sums_[t] += terms[t].value * counted;
        }
        ++batches_done_;
        if (now() - last_print > 0.2) {
            last_print = now();
            progress(epoch, index + 1, batches.size(), seen > 0 ? total / seen : value, false);
        }
    }
    if (ranks_ > 1) {
        std::vector<double> sums = {total, seen};
        sums.insert(sums.end(), term_sums_.begin(), term_sums_.end());
        sum_over_ranks(sums);
        total = sums[0];
        seen = sums[1];
        std::copy(sums.begin() + 2, sums.end(), term_sums_.begin());
    }
    for (double& sum : term_sums_) {
        sum /= seen;
    }
    return total / seen;
}

template <class T>
std::optional<std::string> Trainer<T>::nonfinite_parameter() const {
    for (const auto& p : model_.named_parameters()) {
        const Array<T>& v = p.var.value();
        if (auto bad = first_nonfinite(v)) {
            return fmt::format("{} at {} in \"{}\" {}", v.data()[*bad], index_to_string(v.shape(), *bad), p.name,
                               tapegrad::to_string(v.shape()));
        }
    }
    return std::nullopt;
}

// An update can overflow where no op did: SGD with lr 1e6 multiplies a finite gradient into Inf.
template <class T>
void Trainer<T>::check_parameters() const {
    if (auto bad = nonfinite_parameter()) {
        tapegrad::detail::throw_numeric_error(fmt::format("check: the {} update (lr {}) made {} from finite gradients",
                                                          optimizer_->kind(), options_.lr, *bad));
    }
}

template <class T>
void Trainer<T>::rethrow_numeric(const NumericError& e, const std::string& where, const nn::Batch& batch,
                                 const nn::Dataset& part, bool training) const {
    std::string text = fmt::format("trainer: {}: {}", where, e.what());
    if (auto bad = first_nonfinite(batch.x)) {
        std::size_t columns = batch.x.shape(1);
        std::size_t row = batch.rows.at(*bad / columns);
        std::size_t column = *bad % columns;
        std::string_view part_name = training ? "training" : "validation";
        // Rows of what fit(data) split are rows of the user's data: find this one there, bit for bit.
        std::optional<std::size_t> given_row;
        if (given_ != nullptr) {
            const float* wanted = part.x.data() + row * columns;
            for (std::size_t r = 0; r < given_->size() && !given_row; ++r) {
                if (std::memcmp(given_->x.data() + r * columns, wanted, columns * sizeof(float)) == 0) {
                    given_row = r;
                }
            }
        }
        text += given_row ? fmt::format("; the {} came with the data: row {}, column {} of the data given to fit "
                                        "(row {} of its {} part)",
                                        batch.x.data()[*bad], *given_row, column, row, part_name)
                          : fmt::format("; the {} came with the data: row {}, column {} of the {} data",
                                        batch.x.data()[*bad], row, column, part_name);
    } else {
        // Overflow after a too large step shows as parameters grown far beyond their usual size.
        double largest = 0;
        std::string name;
        for (const auto& p : model_.named_parameters()) {
            for (T v : p.var.value()) {
                if (std::abs(double(v)) > largest) {
                    largest = std::abs(double(v));
                    name = p.name;
                }
            }
        }
        if (largest >= 1e4 && std::isfinite(largest)) {
            text += fmt::format("; the parameters have grown large: |{}| reaches {:.3g}", name, largest);
        }
    }
    throw NumericError(text);
}

template <class T>
std::pair<double, double> Trainer<T>::evaluate(const nn::Dataset& data, int epoch, bool validation) {
    model_.eval();
    double loss = 0;
    double mse = 0;
    nn::Batches batches(data, {.batch_size = 1024, .shuffle = false});
    nn::Batch batch;
    for (std::size_t index = 0; index < batches.size(); ++index) {
        BatchShard shard = shard_of(batches, index, batch);
        model_.set_shard(shard);
        try {
            NoGrad off;
            Var<T> x = as_var<T>(batch.x);
            double n = shard.split() ? double(shard.rows) : double(batch.x.shape(0));
            loss += model_.loss(x).item() * n;
            if (n > 0) {
                mse += xt::sum(model_.reconstruction_error(x.value()))();
            }
        } catch (const NumericError& e) {
            rethrow_numeric(e,
                            fmt::format("epoch {}/{}, evaluating batch {}/{} of the {} data", epoch + 1,
                                        options_.epochs, index + 1, batches.size(),
                                        validation ? "validation" : "training"),
                            batch, data, !validation);
        }
    }
    if (ranks_ > 1) {
        std::vector<double> sums = {loss, mse};
        sum_over_ranks(sums);
        loss = sums[0];
        mse = sums[1];
    }
    auto n = double(data.size());
    return {loss / n, mse / n};
}

template <class T>
std::string Trainer<T>::save_extra(const History& history) {
    nlohmann::json extra = {{"epoch", history.epochs.back().epoch},
                            {"history", nlohmann::json::parse(history.summary_json())}};
    extra["run"] = nlohmann::json::parse(options_.run);
    NoiseSource* noise = model_.noise_source();
    if (noise != nullptr && !noise->fixed()) {
        std::ostringstream state;
        state << noise->draw();  // not fixed: draw() is the generator as it stands
        extra["noise"] = state.str();
    }
    return extra.dump();
}

template <class T>
void Trainer<T>::restore_extra(const std::string& config_text, History& history) {
    nlohmann::json extra = nlohmann::json::parse(config_text).at("extra");
    history = read_history(options_.resume);
    NoiseSource* noise = model_.noise_source();
    if (noise != nullptr && !noise->fixed() && extra.contains("noise")) {
        std::mt19937_64 state;
        std::istringstream text(extra.at("noise").get<std::string>());
        text >> state;
        if (!text) {
            tapegrad::detail::throw_value_error(
                fmt::format("checkpoint {}: extra.noise is not the state of a noise generator", options_.resume));
        }
        noise->draw() = state;
    }
}

template <class T>
void Trainer<T>::write_checkpoint(const History& history, const std::vector<Array<T>>& best) {
    if (leader()) {  // the other ranks hold the same, and only count it as written
        auto params = model_.named_parameters();
        std::vector<nn::NpzEntry> arrays = history_arrays(history);
        if (!best.empty() && history.best_epoch != history.epochs.back().epoch) {
            for (std::size_t i = 0; i < params.size(); ++i) {
                arrays.push_back({"best/" + params[i].name, best[i]});
            }
        }
        nn::save_checkpoint<T>(options_.checkpoint, model_, optimizer_.get(), describe_model(model_),
                               save_extra(history), arrays);
    }
    checkpoint_epoch_ = history.epochs.back().epoch;
    checkpoint_time_ = now();
}

// One CSV line per epoch, in the variant's order of terms; `header` starts the file afresh.
template <class T>
void Trainer<T>::append_history(const EpochRecord& r, bool header) {
    if (!leader()) {
        return;
    }
    std::span<const LossTerm> terms = model_.loss_terms();
    std::string text;
    if (header) {
        text = "epoch,train_loss,validation_loss,validation_mse,seconds";
        for (const LossTerm& t : terms) {
            text += fmt::format(",{}", t.name);
        }
        text += '\n';
    }
    text += fmt::format("{},{:.17g},{:.17g},{:.17g},{:.6f}", r.epoch, r.train_loss, r.validation_loss, r.validation_mse,
                        r.seconds);
    for (const LossTerm& t : terms) {
        auto it = std::find_if(r.terms.begin(), r.terms.end(), [&](const auto& p) { return p.first == t.name; });
        text += it == r.terms.end() ? std::string(",") : fmt::format(",{:.17g}", it->second);
    }
    text += '\n';
    std::FILE* f = std::fopen(options_.history.c_str(), header ? "w" : "a");
    if (f == nullptr) {
        nn::detail::throw_file_error(fmt::format("history {}: cannot open: {}", options_.history, std::strerror(errno)));
    }
    bool written = std::fwrite(text.data(), 1, text.size(), f) == text.size();
    if (std::fclose(f) != 0 || !written) {
        nn::detail::throw_file_error(fmt::format("history {}: cannot write: {}", options_.history, std::strerror(errno)));
    }
}

template <class T>
History Trainer<T>::fit(const nn::Dataset& train, const nn::Dataset* validation) {
    nn::FlushDenormals ftz;
    CheckNumerics checking(options_.check_numerics);
    History history;
    int first = 0;
    // The weights of the best epoch so far, for restore_best; a checkpoint holds them when they are not
    // its own ("best/<name>"), so that a resumed run ends with the weights an unbroken one would.
    std::vector<Array<T>> best;
    auto params = model_.named_parameters();
    checkpoint_epoch_ = 0;
    struct Whole {  // the model back to whole batches, however fit ends
        Autoencoder<T>& model;
        ~Whole() { model.set_shard({}); }
    } whole{model_};
    if (ranks_ > 1) {
        check_same_start(train, validation);
        if (!options_.resume.empty()) {
            nn::check_same_on_all_ranks(fmt::format("trainer: the checkpoint to resume from, {},", options_.resume),
                                        crc_text_of_file(options_.resume));
        }
    }
    if (!options_.resume.empty()) {
        nn::load_checkpoint<T>(options_.resume, model_, optimizer_.get());
        restore_extra(nn::read_checkpoint_config(options_.resume), history);
        first = static_cast<int>(history.epochs.size());
        if (history.stopped_early) {
            tapegrad::detail::throw_value_error(fmt::format(
                "trainer: {} stopped early after epoch {} (no better validation MSE for {} epochs): nothing to "
                "train", options_.resume, first, first - history.best_epoch));
        }
        if (first >= options_.epochs) {
            tapegrad::detail::throw_value_error(
                fmt::format("trainer: {} has done {} epochs, and {} {} asked for: nothing to train", options_.resume,
                            first, options_.epochs, options_.epochs == 1 ? "was" : "were"));
        }
        if (options_.resume == options_.checkpoint) {
            checkpoint_epoch_ = first;
        }
        if (options_.restore_best && history.best_epoch > 0 && history.best_epoch == first) {
            for (const auto& p : params) {
                best.push_back(p.var.value());
            }
        } else if (options_.restore_best && history.best_epoch > 0) {
            auto saved = nn::read_checkpoint_arrays<T>(options_.resume, "best/");
            bool fits = saved.size() == params.size();
            for (std::size_t i = 0; fits && i < params.size(); ++i) {
                fits = saved[i].first == params[i].name && saved[i].second.shape() == params[i].var.shape();
            }
            if (!fits && !saved.empty()) {
                tapegrad::detail::throw_value_error(fmt::format(
                    "checkpoint {}: the best weights (epoch {}) do not fit the model", options_.resume,
                    history.best_epoch));
            }
            for (auto& [name, array] : saved) {
                best.push_back(std::move(array));
            }
        }
        if (options_.log != nullptr) {
            fmt::print(*options_.log, "resumed from {} after epoch {}\n", options_.resume, first);
        }
    }
    if (ranks_ > 1) {
        nn::broadcast_parameters(params);  // rank 0's, as PyTorch's DDP does, whatever else made them
    }
    started_ = now();
    checkpoint_time_ = started_;
    batches_done_ = 0;
    term_sums_.assign(model_.loss_terms().size(), 0.0);
    std::size_t per_epoch = (train.size() + options_.batch_size - 1) / options_.batch_size;
    batches_total_ = per_epoch * static_cast<std::size_t>(std::max(options_.epochs - first, 0));
    // Without a validation part, the MSE watched is measured on the first training rows, at most
    // 10000: evaluating all 60000 of Fashion-MNIST after every epoch cost a third of an epoch.
    nn::Dataset train_sample;
    if (validation == nullptr) {
        std::vector<std::size_t> rows(std::min<std::size_t>(train.size(), 10000));
        std::iota(rows.begin(), rows.end(), std::size_t{0});
        train_sample = nn::select_rows(train, rows);
    }
    if (!options_.checkpoint.empty() && leader()) {
        nn::detail::remove_stale_temporaries(options_.checkpoint);  // left by runs killed mid-write
    }
    // The CSV starts again from what the checkpoint holds: epochs after it were lost with the run.
    if (!options_.history.empty()) {
        for (std::size_t e = 0; e < history.epochs.size(); ++e) {
            append_history(history.epochs[e], e == 0);
        }
    }
    // Early stopping counts on from where the checkpoint left off.
    int since_best = history.best_epoch > 0 ? first - history.best_epoch : 0;
    for (int epoch = first; epoch < options_.epochs && !history.stopped_early; ++epoch) {
        double start = now();
        EpochRecord record{.epoch = epoch + 1};
        record.train_loss = train_epoch(train, epoch);
        std::span<const LossTerm> terms = model_.loss_terms();
        for (std::size_t t = 0; t < terms.size() && t < term_sums_.size(); ++t) {
            record.terms.emplace_back(std::string(terms[t].name), term_sums_[t]);
        }
        const nn::Dataset& watched = validation != nullptr ? *validation : train_sample;
        std::tie(record.validation_loss, record.validation_mse) = evaluate(watched, epoch, validation != nullptr);
        record.seconds = now() - start;
        history.epochs.push_back(record);
        bool better = history.best_epoch == 0 || record.validation_mse < history.best_validation_mse - options_.min_delta;
        if (better) {
            history.best_epoch = record.epoch;
            history.best_validation_mse = record.validation_mse;
            since_best = 0;
            if (options_.restore_best) {
                best.resize(params.size());
                for (std::size_t i = 0; i < params.size(); ++i) {
                    best[i] = params[i].var.value();
                }
            }
        } else if (options_.patience > 0 && ++since_best >= options_.patience) {
            history.stopped_early = true;
        }
        bool last = record.epoch == options_.epochs || history.stopped_early;
        if (options_.log != nullptr) {
            progress(record.epoch, per_epoch, per_epoch, record.train_loss, true);
            if (last || epoch == first || options_.log_every <= 1 || record.epoch % options_.log_every == 0) {
                std::string extra;
                for (const auto& [name, value] : record.terms) {
                    extra += fmt::format("  {} {:.4g}", name, value);
                }
                fmt::print(*options_.log, "epoch {:3}/{}  train loss {:.6f}  {} loss {:.6f}  {} MSE {:.6f}{}  {:.2f} s{}\n",
                           record.epoch, options_.epochs, record.train_loss, validation ? "validation" : "train",
                           record.validation_loss, validation ? "validation" : "train", record.validation_mse, extra,
                           record.seconds, history.stopped_early ? "  (stopping: no improvement)" : "");
            }
        }
        // A diverged run stops here rather than overwrite the last finite checkpoint with NaN.
        if (auto bad = nonfinite_parameter()) {
            tapegrad::detail::throw_numeric_error(fmt::format(
                "trainer: epoch {}/{}: the run diverged, the parameters hold {} (train loss {}){}; "
                "--check-numerics (TrainerOptions::check_numerics) stops at the op that made the first one",
                record.epoch, options_.epochs, *bad, record.train_loss,
                options_.checkpoint.empty() ? "" : fmt::format("; {} was not overwritten", options_.checkpoint)));
        }
        if (!options_.history.empty()) {
            append_history(record, record.epoch == 1);
        }
        bool by_epochs = options_.checkpoint_every > 0 && record.epoch - checkpoint_epoch_ >= options_.checkpoint_every;
        bool by_time = options_.checkpoint_seconds > 0 && now() - checkpoint_time_ >= options_.checkpoint_seconds;
        bool always = options_.checkpoint_every <= 0 && options_.checkpoint_seconds <= 0;
        if (!options_.checkpoint.empty() && (last || by_epochs || by_time || always)) {
            write_checkpoint(history, best);
        }
    }
    if (options_.restore_best && !best.empty()) {
        for (std::size_t i = 0; i < params.size(); ++i) {
            params[i].var.mutable_value() = best[i];
        }
    }
    model_.eval();
    return history;
}

template class Trainer<float>;
template class Trainer<double>;

}  // namespace tapegrad::models
