#include "samples.hpp"

#include <zip.h>
#include <zlib.h>

#include <algorithm>
#include <cstring>
#include <fstream>
#include <memory>
#include <random>
#include <sstream>
#include <stdexcept>

#include <fmt/format.h>

#include "tapegrad/models/factory.hpp"
#include "tapegrad/nn/io/checkpoint.hpp"
#include "tapegrad/nn/io/datasets.hpp"
#include "tapegrad/nn/io/npy.hpp"
#include "tapegrad/nn/io/npz.hpp"
#include "tapegrad/nn/optim.hpp"

namespace tapegrad::fuzz {

namespace fs = std::filesystem;

// ---------------------------------------------------------------------------------------------------
// Containers

std::string gzip_bytes(std::string_view bytes) {
    z_stream z{};
    // 15 + 16: the largest window, wrapped as gzip (header and CRC) rather than zlib.
    if (deflateInit2(&z, 9, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
        throw std::runtime_error("gzip: deflateInit2 failed");
    }
    std::string out(deflateBound(&z, bytes.size()) + 32, '\0');
    z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(bytes.data()));
    z.avail_in = static_cast<uInt>(bytes.size());
    z.next_out = reinterpret_cast<Bytef*>(out.data());
    z.avail_out = static_cast<uInt>(out.size());
    int status = deflate(&z, Z_FINISH);
    out.resize(z.total_out);
    deflateEnd(&z);
    if (status != Z_STREAM_END) {
        throw std::runtime_error("gzip: deflate did not finish");
    }
    return out;
}

std::optional<std::string> gunzip_bytes(std::string_view bytes, std::size_t limit) {
    if (bytes.size() < 2 || bytes[0] != '\x1f' || bytes[1] != '\x8b') {
        return std::nullopt;
    }
    z_stream z{};
    if (inflateInit2(&z, 15 + 16) != Z_OK) {
        return std::nullopt;
    }
    z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(bytes.data()));
    z.avail_in = static_cast<uInt>(bytes.size());
    std::string out;
    int status = Z_OK;
    while (status == Z_OK && out.size() < limit) {
        char buffer[1 << 14];
        z.next_out = reinterpret_cast<Bytef*>(buffer);
        z.avail_out = sizeof buffer;
        status = inflate(&z, Z_NO_FLUSH);
        out.append(buffer, sizeof buffer - z.avail_out);
    }
    inflateEnd(&z);
    if (status != Z_STREAM_END || out.size() > limit) {
        return std::nullopt;
    }
    return out;
}

namespace {

struct ZipCloser {
    void operator()(zip_t* archive) const { zip_discard(archive); }
};
struct ZipFileCloser {
    void operator()(zip_file_t* file) const { zip_fclose(file); }
};
struct ZipSourceFreer {
    void operator()(zip_source_t* source) const { zip_source_free(source); }
};

}  // namespace

std::optional<ZipFiles> unzip_bytes(std::string_view bytes, std::size_t limit) {
    zip_error_t error;
    zip_error_init(&error);
    std::unique_ptr<zip_source_t, ZipSourceFreer> source(
        zip_source_buffer_create(bytes.data(), bytes.size(), 0, &error));
    zip_error_fini(&error);
    if (!source) {
        return std::nullopt;
    }
    zip_error_init(&error);
    std::unique_ptr<zip_t, ZipCloser> archive(zip_open_from_source(source.get(), ZIP_RDONLY, &error));
    zip_error_fini(&error);
    if (!archive) {
        return std::nullopt;
    }
    source.release();  // the archive owns it now
    ZipFiles files;
    std::size_t total = 0;
    zip_int64_t count = zip_get_num_entries(archive.get(), 0);
    for (zip_int64_t i = 0; i < count; ++i) {
        const char* name = zip_get_name(archive.get(), static_cast<zip_uint64_t>(i), 0);
        std::unique_ptr<zip_file_t, ZipFileCloser> file(zip_fopen_index(archive.get(), static_cast<zip_uint64_t>(i), 0));
        if (name == nullptr || !file) {
            return std::nullopt;
        }
        std::string content;
        char buffer[1 << 14];
        zip_int64_t n = 0;
        while ((n = zip_fread(file.get(), buffer, sizeof buffer)) > 0) {
            content.append(buffer, static_cast<std::size_t>(n));
            total += static_cast<std::size_t>(n);
            if (total > limit) {
                return std::nullopt;
            }
        }
        if (n < 0) {
            return std::nullopt;
        }
        files.emplace_back(name, std::move(content));
    }
    return files;
}

// ---------------------------------------------------------------------------------------------------
// Real files

namespace {

std::string read_whole(const fs::path& path) {
    std::ifstream in(path, std::ios::binary);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
}

std::string big_endian(std::uint32_t v) {
    return {static_cast<char>(v >> 24), static_cast<char>(v >> 16), static_cast<char>(v >> 8), static_cast<char>(v)};
}

// An IDX file as MNIST's are laid out: magic, big-endian dimensions, unsigned bytes.
std::string idx_file(std::uint32_t magic, const std::vector<std::uint32_t>& dims, std::string_view data) {
    std::string out = big_endian(magic);
    for (std::uint32_t d : dims) {
        out += big_endian(d);
    }
    out += data;
    return out;
}

// The first `header + count * item` bytes of a Fashion-MNIST file, with the count patched to `count`;
// nullopt when the data set is not installed.
std::optional<std::string> fashion_head(const char* name, std::size_t header, std::size_t item, std::uint32_t count) {
    std::string gz = read_whole(fs::path(fashion_mnist_dir) / name);
    // The files are megabytes: inflate only what is needed, through a limit on the output.
    z_stream z{};
    if (gz.empty() || inflateInit2(&z, 15 + 16) != Z_OK) {
        return std::nullopt;
    }
    std::string out(header + count * item, '\0');
    z.next_in = reinterpret_cast<Bytef*>(gz.data());
    z.avail_in = static_cast<uInt>(gz.size());
    z.next_out = reinterpret_cast<Bytef*>(out.data());
    z.avail_out = static_cast<uInt>(out.size());
    int status = Z_OK;
    while (status == Z_OK && z.avail_out > 0) {
        status = inflate(&z, Z_NO_FLUSH);
    }
    inflateEnd(&z);
    if (z.avail_out != 0) {
        return std::nullopt;
    }
    out.replace(4, 4, big_endian(count));
    return out;
}

std::vector<Sample> with_gzip(std::vector<Sample> plain) {
    std::vector<Sample> all = plain;
    for (const Sample& s : plain) {
        all.push_back({s.stem, gzip_bytes(s.bytes), s.loads});
    }
    return all;
}

std::vector<Sample> idx_image_files() {
    std::vector<Sample> files;
    if (auto fashion = fashion_head("t10k-images-idx3-ubyte.gz", 16, 28 * 28, 3)) {
        files.push_back({"fashion-3", *fashion, true});
    } else {
        std::string pixels(3 * 28 * 28, '\0');
        for (std::size_t i = 0; i < pixels.size(); ++i) {
            pixels[i] = static_cast<char>((i % 28) * 9 + (i / 28 % 28) * 3);
        }
        files.push_back({"gradient-3", idx_file(0x803, {3, 28, 28}, pixels), true});
    }
    files.push_back({"small-2x5x4", idx_file(0x803, {2, 5, 4}, std::string(40, '\x7f')), true});
    files.push_back({"none-0x28x28", idx_file(0x803, {0, 28, 28}, ""), true});
    return with_gzip(files);
}

std::vector<Sample> idx_label_files() {
    std::vector<Sample> files;
    if (auto fashion = fashion_head("t10k-labels-idx1-ubyte.gz", 8, 1, 12)) {
        files.push_back({"fashion-12", *fashion, true});
    } else {
        files.push_back({"labels-12", idx_file(0x801, {12}, "\0\1\2\3\4\5\6\7\10\11\0\1"), true});
    }
    files.push_back({"none-0", idx_file(0x801, {0}, ""), true});
    return with_gzip(files);
}

std::vector<Sample> csv_files() {
    std::optional<std::string> digits = gunzip_bytes(read_whole(fs::path(nn::data_dir()) / "digits.csv.gz"));
    std::vector<std::string> lines;
    std::istringstream in(digits.value_or(""));
    for (std::string line; lines.size() < 10 && std::getline(in, line);) {
        lines.push_back(line);
    }
    if (lines.empty()) {
        for (int r = 0; r < 10; ++r) {
            lines.push_back(fmt::format("{},{},{},{}", r, 16 - r, r % 3, r % 10));
        }
    }
    std::size_t columns = std::count(lines[0].begin(), lines[0].end(), ',') + 1;
    std::vector<std::string> names;
    for (std::size_t c = 0; c + 1 < columns; ++c) {
        names.push_back(fmt::format("pixel{}", c));
    }
    names.push_back("digit");
    std::string ten = fmt::format("{}\n", fmt::join(lines, "\n"));
    std::string header = fmt::format("{}\r\n{}\r\n\r\n{}\r\n", fmt::join(names, ","), fmt::join(lines.begin(), lines.begin() + 3, "\r\n"),
                                     lines[3]);
    std::string numbers = " 0.5, -1e-3 ,+2.25,7\n1.5e2,\t0 ,-0.0,3\n\n4,5,6,1\n";
    std::string semicolons = ten;
    std::replace(semicolons.begin(), semicolons.end(), ',', ';');
    return with_gzip({{"digits-10", ten, true},
                      {"digits-header-crlf", header, true},
                      {"numbers", numbers, true},
                      {"digits-semicolons", semicolons, true}});
}

std::vector<Sample> npy_files(const fs::path& scratch) {
    auto written = [&](const std::string& stem, auto&& write) {
        fs::path path = scratch / (stem + ".npy");
        write(path.string());
        std::string bytes = read_whole(path);
        fs::remove(path);
        return bytes;
    };
    Array<float> grid = xt::arange<float>(12) * 0.5f - 1.0f;
    grid.reshape({3, 4});
    std::vector<Sample> files;
    files.push_back({"float32-3x4", written("f", [&](const std::string& p) { nn::write_npy<float>(p, grid); }), true});
    files.push_back({"float64-5", written("d", [](const std::string& p) {
                         nn::write_npy<double>(p, Array<double>(xt::linspace<double>(-2, 2, 5)));
                     }), true});
    files.push_back({"int64-2x2x2", written("i", [](const std::string& p) {
                         Array<std::int64_t> a = xt::arange<std::int64_t>(-4, 4);
                         a.reshape({2, 2, 2});
                         nn::write_npy<std::int64_t>(p, a);
                     }), true});
    files.push_back({"float32-scalar", written("s", [](const std::string& p) {
                         nn::write_npy<float>(p, Array<float>(xt::xarray<float>(2.5f)));
                     }), true});
    files.push_back({"float32-0x3", written("e", [](const std::string& p) {
                         nn::write_npy<float>(p, Array<float>(xt::zeros<float>(Shape{0, 3})));
                     }), true});
    // A 0-d text array, as an .npz keeps a checkpoint's configuration: decode_npy_value reads it, the
    // numeric reads refuse it.
    files.push_back({"text", nn::encode_npy(nn::NpyValue{std::string("{\"h\\u00e9llo\": [1, 2]} \xc3\xa9")}), false});

    // What numpy also writes: big-endian, Fortran order, format 2.0. Made from the file above by changing
    // the header's words (padding kept: the header's length is unchanged) and the data to match.
    const std::string& c_order = files[0].bytes;
    std::size_t data_at = c_order.size() - grid.size() * sizeof(float);
    std::string swapped = c_order;
    swapped.replace(swapped.find("'<f4'"), 5, "'>f4'");
    swapped.replace(swapped.find("False, "), 7, "True, ");
    swapped.insert(data_at - 1, " ");  // before the header's final newline
    swapped.resize(data_at);
    Array<float> transposed = xt::transpose(grid);  // Fortran order: columns one after the other
    for (float v : transposed) {
        char b[4];
        std::memcpy(b, &v, 4);
        std::reverse(b, b + 4);
        swapped.append(b, 4);
    }
    files.push_back({"float32-3x4-big-endian-fortran", swapped, true});
    std::string v2 = c_order.substr(0, 6) + std::string("\x02\x00", 2);
    std::size_t header_length = data_at - 10;
    for (int i = 0; i < 4; ++i) {
        v2 += static_cast<char>((header_length >> (8 * i)) & 0xff);
    }
    v2 += c_order.substr(10);
    files.push_back({"float32-3x4-v2", v2, true});
    return files;
}

// Trains the model a few Adam or SGD steps, so that the optimizer has state to save.
template <class T>
void train(models::Autoencoder<T>& model, nn::Optimizer<T>& optimizer) {
    Array<T> x = xt::linspace<T>(0, 1, 8 * model.config().input_size());
    x.reshape({8, model.config().input_size()});
    for (int step = 0; step < 2; ++step) {
        optimizer.zero_grad();
        model.loss(Var<T>(x)).backward();
        optimizer.step();
    }
}

struct CheckpointFile {
    std::string stem;
    std::string bytes;
    bool loads_float_with_adam;
    bool is_checkpoint;
};

std::vector<CheckpointFile> checkpoint_files(const fs::path& scratch) {
    std::string description = checkpoint_model_description();
    fs::path path = scratch / "checkpoint.npz";
    auto saved = [&](auto&& save) {
        save(path.string());
        std::string bytes = read_whole(path);
        fs::remove(path);
        return bytes;
    };
    std::vector<CheckpointFile> files;
    std::string adam = saved([&](const std::string& p) {
        auto model = models::model_from_description<float>(description);
        nn::Adam<float> optimizer(model->named_parameters(), {.lr = 0.01});
        train(*model, optimizer);
        nn::save_checkpoint<float>(p, *model, &optimizer, description, R"({"epoch": 2, "seed": 7})");
    });
    files.push_back({"float32-adam", adam, true, true});
    // numpy.savez_compressed's kind: the same files deflated.
    files.push_back({"float32-adam-deflated", nn::detail::zip_in_memory(unzip_bytes(adam).value(), "fuzz sample", true),
                     true, true});
    files.push_back({"float32-sgd", saved([&](const std::string& p) {
                         auto model = models::model_from_description<float>(description);
                         nn::SGD<float> optimizer(model->named_parameters(), {.lr = 0.1, .momentum = 0.9});
                         train(*model, optimizer);
                         nn::save_checkpoint<float>(p, *model, &optimizer, description);
                     }), false, true});
    files.push_back({"float64", saved([&](const std::string& p) {
                         auto model = models::model_from_description<double>(description);
                         nn::save_checkpoint<double>(p, *model, nullptr, description);
                     }), false, true});
    files.push_back({"plain-npz", saved([&](const std::string& p) {
                         nn::write_npz(p, {{"x", Array<float>(xt::ones<float>(Shape{2, 3}))},
                                           {"note", std::string("not a checkpoint")}});
                     }), false, false});
    return files;
}

std::vector<Sample> description_files() {
    struct Spec {
        const char* stem;
        const char* variant;
        models::AutoencoderConfig config;
        const char* options;
    };
    std::vector<Spec> specs = {
        {"vanilla", "vanilla", {.sizes = {4, 3, 2}}, "{}"},
        {"vanilla-tied-tanh", "vanilla",
         {.sizes = {6, 4, 2}, .activation = "tanh", .output_activation = "identity", .tied = true,
          .init = nn::Init::xavier_uniform, .seed = 3},
         "{}"},
        {"denoising", "denoising", {.sizes = {5, 3, 2}}, R"({"corruption": "gaussian", "level": 0.1, "seed": 4})"},
        {"sparse", "sparse", {.sizes = {5, 3}, .activation = "sigmoid", .latent_activation = "sigmoid"},
         R"({"rho": 0.1, "beta": 2.0})"},
        {"contractive", "contractive", {.sizes = {4, 2}, .latent_activation = "tanh"}, R"({"lambda": 0.01})"},
        {"variational", "variational", {.sizes = {4, 3, 2}, .init = nn::Init::he_normal}, R"({"reconstruction": "bce"})"},
    };
    std::vector<Sample> files;
    for (const Spec& s : specs) {
        auto model = models::make_autoencoder<float>(s.variant, s.config, s.options);
        files.push_back({s.stem, models::describe_model(*model), true});
    }
    return files;
}

}  // namespace

std::vector<Sample> real_files(const Target& target, const fs::path& scratch) {
    if (target.name == "idx_images") {
        return idx_image_files();
    }
    if (target.name == "idx_labels") {
        return idx_label_files();
    }
    if (target.name == "csv") {
        return csv_files();
    }
    if (target.name == "npy") {
        return npy_files(scratch);
    }
    if (target.name == "checkpoint" || target.name == "checkpoint_config") {
        std::vector<Sample> files;
        for (auto& f : checkpoint_files(scratch)) {
            files.push_back({f.stem, f.bytes, target.name == "checkpoint" ? f.loads_float_with_adam : f.is_checkpoint});
        }
        return files;
    }
    if (target.name == "model_description") {
        return description_files();
    }
    throw std::invalid_argument(fmt::format("fuzz: no real files for target {}", target.name));
}

// ---------------------------------------------------------------------------------------------------
// Variants

namespace {

std::string cut(const std::string& bytes, std::size_t length, std::string& how) {
    how = fmt::format("cut{}", length);
    return bytes.substr(0, length);
}

// One byte changed: a bit flipped, or the byte set to 0 or 0xff. Half the changes fall in the first 128
// bytes, where the headers are.
std::string changed_byte(const std::string& bytes, std::mt19937_64& rng, std::string& how) {
    if (bytes.empty()) {
        how = "empty";
        return bytes;
    }
    std::size_t window = rng() % 2 == 0 ? std::min<std::size_t>(bytes.size(), 128) : bytes.size();
    std::size_t at = std::uniform_int_distribution<std::size_t>(0, window - 1)(rng);
    std::string out = bytes;
    switch (rng() % 4) {
        case 0:
            out[at] = '\0';
            how = fmt::format("zero{}", at);
            break;
        case 1:
            out[at] = '\xff';
            how = fmt::format("ff{}", at);
            break;
        default: {
            unsigned bit = static_cast<unsigned>(rng() % 8);
            out[at] = static_cast<char>(out[at] ^ (1u << bit));
            how = fmt::format("flip{}.{}", at, bit);
        }
    }
    return out;
}

std::string cut_or_changed(const std::string& bytes, std::mt19937_64& rng, std::string& how) {
    if (rng() % 4 == 0 && !bytes.empty()) {
        return cut(bytes, std::uniform_int_distribution<std::size_t>(0, bytes.size() - 1)(rng), how);
    }
    return changed_byte(bytes, rng, how);
}

}  // namespace

std::vector<Sample> variants(const Sample& sample, std::size_t count, std::uint64_t seed) {
    std::mt19937_64 rng(seed ^ std::hash<std::string>{}(sample.stem) ^ sample.bytes.size());
    const std::string& bytes = sample.bytes;
    std::optional<std::string> inflated = gunzip_bytes(bytes);
    std::optional<ZipFiles> files = inflated ? std::nullopt : unzip_bytes(bytes);
    bool inside = inflated.has_value() || (files.has_value() && !files->empty());
    // A third cut short (every length up to 64 bytes first), the rest with a byte changed; of a gzip or
    // zip file, the last third damaged inside and wrapped again.
    std::size_t cuts = count / 3;
    std::size_t short_cuts = std::min<std::size_t>(bytes.size(), 64);
    std::vector<Sample> out;
    for (std::size_t k = 0; k < count; ++k) {
        std::string how;
        std::string changed;
        if (k < cuts && !bytes.empty()) {
            std::size_t length =
                k < short_cuts ? k : std::uniform_int_distribution<std::size_t>(0, bytes.size() - 1)(rng);
            changed = cut(bytes, length, how);
        } else if (!inside || k < count - count / 3) {
            changed = changed_byte(bytes, rng, how);
        } else if (inflated) {
            changed = gzip_bytes(cut_or_changed(*inflated, rng, how));
            how = "inside-" + how;
        } else {
            ZipFiles wrapped = *files;
            auto& [name, content] = wrapped[rng() % wrapped.size()];
            content = cut_or_changed(content, rng, how);
            how = fmt::format("{}-{}", name, how);
            changed = nn::detail::zip_in_memory(wrapped, "fuzz sample", rng() % 4 == 0);
        }
        out.push_back({fmt::format("{}-{}", sample.stem, how), std::move(changed)});
    }
    return out;
}

}  // namespace tapegrad::fuzz
