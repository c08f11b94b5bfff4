// .npz: round trips of every entry kind; numpy.load opens what we write (str() of the text entry too) and
// we read what numpy.savez and savez_compressed write; writing is atomic (no temporary left, the old file
// intact after a failed write); each bad archive refused with its exact message, naming file and entry.
#include <algorithm>
#include <filesystem>

#include "helpers.hpp"
#include "scratch.hpp"
#include "tapegrad/nn/io/npz.hpp"

using namespace tapegrad;
using namespace tapegrad::nn;
namespace fs = std::filesystem;
using test::TempDir;
using test::read_bytes;
using test::run_python;
using test::write_bytes;

namespace {

const std::string config = "{\"dims\": [64, 16, 4], \"model\": \"sparse\", \"note\": \"caf\u00e9 \u2014 \u00b5\"}";

std::vector<NpzEntry> sample_entries() {
    std::vector<NpzEntry> entries;
    entries.push_back({"encoder.0.weight", test::random_array<float>({64, 16}, 1)});
    entries.push_back({"adam.m.encoder.0.bias", test::random_array<double>({16}, 2)});
    entries.push_back({"step", Array<std::int64_t>(7)});
    entries.push_back({"config", config});
    return entries;
}

}  // namespace

TEST_CASE("npz round trip: every kind of entry, in order") {
    TempDir dir("tapegrad_npz_test");
    std::vector<NpzEntry> entries = sample_entries();
    write_npz(dir / "model.npz", entries);
    CHECK(dir.files() == std::vector<std::string>{"model.npz"});  // no temporary left behind
    std::vector<NpzEntry> back = read_npz(dir / "model.npz");
    REQUIRE(back.size() == entries.size());
    for (std::size_t i = 0; i < entries.size(); ++i) {
        CAPTURE(entries[i].name);
        CHECK(back[i].name == entries[i].name);
        CHECK(back[i].value.index() == entries[i].value.index());
        CHECK(back[i].value == entries[i].value);
    }
    REQUIRE(find_entry(back, "config") != nullptr);
    CHECK(std::get<std::string>(find_entry(back, "config")->value) == config);
    CHECK(find_entry(back, "missing") == nullptr);

    write_npz(dir / "empty.npz", {});
    CHECK(read_npz(dir / "empty.npz").empty());
}

TEST_CASE("npz files we write open in numpy") {
    TempDir dir("tapegrad_npz_test");
    std::vector<NpzEntry> entries = sample_entries();
    write_npz(dir / "model.npz", entries);
    write_npy(dir / "weight.npy", std::get<Array<float>>(entries[0].value));
    std::string out = run_python(dir, R"(
z = np.load(os.path.join(d, 'model.npz'))
assert sorted(z.files) == sorted(['encoder.0.weight', 'adam.m.encoder.0.bias', 'step', 'config']), z.files
w = z['encoder.0.weight']
assert w.dtype == np.float32 and w.shape == (64, 16)
assert (w == np.load(os.path.join(d, 'weight.npy'))).all()
assert z['adam.m.encoder.0.bias'].dtype == np.float64 and z['adam.m.encoder.0.bias'].shape == (16,)
assert z['step'].dtype == np.int64 and z['step'].shape == () and z['step'] == 7
sys.stdout.buffer.write(str(z['config']).encode('utf-8'))
)");
    CHECK(out == config);
}

TEST_CASE("npz files numpy writes: savez and savez_compressed") {
    TempDir dir("tapegrad_npz_test");
    run_python(dir, R"(
a = (np.arange(12).reshape(3, 4) - 3).astype(np.float32)
kw = dict(w=a, d=a.astype(np.float64), big=a.astype('>f8'), f=np.asfortranarray(a.astype(np.float64)),
          labels=np.arange(5, dtype=np.uint8), mask=a > 0, config=np.array('{"latent": 32}'))
np.savez(os.path.join(d, 'plain.npz'), **kw)
np.savez_compressed(os.path.join(d, 'compressed.npz'), **kw)
np.savez(os.path.join(d, 'positional.npz'), a, a)
)");
    Array<float> a = xt::arange<float>(12) - 3.0f;
    a.reshape({3, 4});
    for (std::string name : {"plain", "compressed"}) {
        CAPTURE(name);
        std::vector<NpzEntry> entries = read_npz(dir / (name + ".npz"));
        REQUIRE(entries.size() == 7);
        CHECK(entries[0].name == "w");
        CHECK(std::get<Array<float>>(find_entry(entries, "w")->value) == a);
        CHECK(std::get<Array<double>>(find_entry(entries, "d")->value) == Array<double>(a));
        CHECK(std::get<Array<double>>(find_entry(entries, "big")->value) == Array<double>(a));
        CHECK(std::get<Array<double>>(find_entry(entries, "f")->value) == Array<double>(a));
        CHECK(std::get<Array<std::int64_t>>(find_entry(entries, "labels")->value) ==
              Array<std::int64_t>{0, 1, 2, 3, 4});
        CHECK(std::get<Array<std::int64_t>>(find_entry(entries, "mask")->value) == xt::cast<std::int64_t>(a > 0.0f));
        CHECK(std::get<std::string>(find_entry(entries, "config")->value) == R"({"latent": 32})");
    }
    std::vector<NpzEntry> positional = read_npz(dir / "positional.npz");
    REQUIRE(positional.size() == 2);
    CHECK(positional[1].name == "arr_1");
}

TEST_CASE("npz writes are atomic: a failed write leaves the old file and no temporary") {
    TempDir dir("tapegrad_npz_test");
    std::string p = dir / "model.npz";
    write_npz(p, sample_entries());
    std::string before = read_bytes(p);

    SUBCASE("a newer version replaces the file whole") {
        write_npz(p, {{"only", Array<float>{1, 2, 3}}});
        std::vector<NpzEntry> back = read_npz(p);
        REQUIRE(back.size() == 1);
        CHECK(back[0].name == "only");
    }
    SUBCASE("entries refused before anything is written") {
        CHECK_THROWS_WITH_AS(write_npz(p, {{"a", Array<float>{1}}, {"a", Array<float>{2}}}),
                             ("npz " + p + ": entry a appears twice").c_str(), ValueError);
        CHECK_THROWS_WITH_AS(write_npz(p, {{"", Array<float>{1}}}),
                             ("npz " + p + ": an entry has an empty name").c_str(), ValueError);
        CHECK_THROWS_WITH_AS(
            write_npz(p, {{"config", std::string("ok \xc3")}}),
            ("npz " + p + ": entry config: text is not valid UTF-8: bad byte 0xc3 at offset 3").c_str(), ValueError);
        CHECK(read_bytes(p) == before);
    }
    SUBCASE("a rename that fails removes the temporary") {
        fs::create_directory(dir / "folder.npz");
        CHECK_THROWS_WITH_AS(write_npz(dir / "folder.npz", sample_entries()),
                             ("npz " + (dir / "folder.npz") + ": cannot write: rename: Is a directory").c_str(),
                             FileError);
        CHECK(fs::is_directory(dir / "folder.npz"));
        CHECK_THROWS_WITH_AS(write_npz(dir / "no/such/model.npz", sample_entries()),
                             ("npz " + (dir / "no/such/model.npz") + ": cannot create a temporary file in " +
                              (dir / "no/such") + ": No such file or directory")
                                 .c_str(),
                             FileError);
        CHECK(read_bytes(p) == before);
    }
    std::vector<std::string> files = dir.files();
    files.erase(std::remove(files.begin(), files.end(), "folder.npz"), files.end());
    CHECK(files == std::vector<std::string>{"model.npz"});
}

TEST_CASE("npz bad files: each refused naming the file and the entry") {
    TempDir dir("tapegrad_npz_test");
    std::string p = dir / "bad.npz";
    write_npz(dir / "good.npz", sample_entries());
    std::string good = read_bytes(dir / "good.npz");
    auto check = [&](std::string_view bytes, const std::string& message) {
        write_bytes(p, bytes);
        CHECK_THROWS_WITH_AS(read_npz(p), ("npz " + p + ": " + message).c_str(), FileError);
    };
    check("just some text, not a zip", "not a zip file");
    check("", "not a zip file: the file is empty");
    check(good.substr(0, good.size() / 2), "truncated: the zip directory at its end is missing");
    check(good.substr(0, good.size() - 10), "truncated: the zip directory at its end is missing");
    CHECK_THROWS_WITH_AS(read_npz(dir / "missing.npz"),
                         ("npz " + (dir / "missing.npz") + ": cannot open: No such file or directory").c_str(),
                         FileError);

    // One byte of the weights flipped: the zip's checksum catches it.
    std::string damaged = good;
    damaged[300] = static_cast<char>(damaged[300] ^ 0x55);
    check(damaged, "entry encoder.0.weight: cannot read: CRC error");

    run_python(dir, R"(
import zipfile
def npy(a):
    import io
    b = io.BytesIO(); np.save(b, a); return b.getvalue()
with zipfile.ZipFile(os.path.join(d, 'readme.npz'), 'w') as z:
    z.writestr('w.npy', npy(np.zeros(3, np.float32)))
    z.writestr('readme.txt', 'hello')
with zipfile.ZipFile(os.path.join(d, 'short.npz'), 'w') as z:
    z.writestr('w.npy', npy(np.zeros((4, 4), np.float32))[:-10])
np.savez(os.path.join(d, 'complex.npz'), z=np.ones(3, np.complex64))
np.savez(os.path.join(d, 'objects.npz'), o=np.array([1, 'a'], dtype=object))
)");
    CHECK_THROWS_WITH_AS(read_npz(dir / "readme.npz"),
                         ("npz " + (dir / "readme.npz") + ": entry readme.txt: bad magic: not an npy file").c_str(),
                         FileError);
    CHECK_THROWS_WITH_AS(
        read_npz(dir / "short.npz"),
        ("npz " + (dir / "short.npz") + ": entry w: truncated: expected 64 bytes of data, found 54").c_str(),
        FileError);
    CHECK_THROWS_WITH_AS(
        read_npz(dir / "complex.npz"),
        ("npz " + (dir / "complex.npz") + ": entry z: unsupported dtype <c8: complex numbers are not read").c_str(),
        FileError);
    CHECK_THROWS_WITH_AS(
        read_npz(dir / "objects.npz"),
        ("npz " + (dir / "objects.npz") + ": entry o: unsupported dtype |O: Python objects are not read").c_str(),
        FileError);
}
