// .npy: round trips for float, double and int64 over shapes from 0-d to 3-d and empty; files numpy writes
// (every readable dtype, big-endian, Fortran order, versions 1.0, 2.0 and 3.0, text) read back, and files
// we write loaded by numpy; each bad file refused with its exact message.
#include <fstream>
#include <sstream>

#include "helpers.hpp"
#include "scratch.hpp"
#include "tapegrad/nn/io/npy.hpp"

using namespace tapegrad;
using namespace tapegrad::nn;
using test::TempDir;
using test::run_python;
using test::write_bytes;

namespace {

template <class T>
Array<T> counting(const Shape& shape) {
    Array<T> a = xt::empty<T>(shape);
    for (std::size_t i = 0; i < a.size(); ++i) {
        a.data()[i] = static_cast<T>(i) - static_cast<T>(3);
    }
    return a;
}

// An .npy of version 1.0 with the header `dict` and `data_bytes` zero bytes of data.
std::string with_dict(std::string dict, std::size_t data_bytes = 48) {
    dict += '\n';
    std::string bytes = std::string("\x93NUMPY\x01\x00", 8);
    bytes += static_cast<char>(dict.size() & 0xff);
    bytes += static_cast<char>(dict.size() >> 8);
    return bytes + dict + std::string(data_bytes, '\0');
}

// A valid (3, 4) float32 file: a 128-byte header, then 48 bytes of data.
std::string valid_bytes() { return encode_npy(counting<float>({3, 4})); }

}  // namespace

TEST_CASE_TEMPLATE("npy round trip", T, float, double, std::int64_t) {
    TempDir dir("tapegrad_npy_test");
    for (const Shape& shape : {Shape{}, Shape{5}, Shape{3, 4}, Shape{2, 3, 4}, Shape{0, 3}}) {
        CAPTURE(shape);
        Array<T> a = counting<T>(shape);
        write_npy(dir / "a.npy", a);
        Array<T> b = read_npy<T>(dir / "a.npy");
        CHECK(b.shape() == a.shape());
        CHECK(b == a);
        CHECK(decode_npy<T>(encode_npy(a), "npy memory") == a);
    }
}

TEST_CASE("npy header: padded to 64 bytes, version 1.0, the dict numpy writes") {
    std::string bytes = valid_bytes();
    CHECK(bytes.size() == 128 + 48);
    CHECK(bytes.substr(0, 8) == std::string("\x93NUMPY\x01\x00", 8));
    std::string dict = "{'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }";
    CHECK(bytes.substr(10, dict.size()) == dict);
    CHECK(bytes[127] == '\n');
    CHECK(encode_npy(counting<double>({5})).find("'shape': (5,), }") != std::string::npos);
    CHECK(encode_npy(counting<std::int64_t>({})).find("'descr': '<i8', 'fortran_order': False, 'shape': (), }") !=
          std::string::npos);
}

TEST_CASE("npy files numpy writes: every readable dtype, byte order, Fortran order and version") {
    TempDir dir("tapegrad_npy_test");
    run_python(dir, R"(
a = np.arange(12).reshape(3, 4) - 3
np.save(os.path.join(d, 'f4.npy'), a.astype(np.float32))
np.save(os.path.join(d, 'f8_fortran.npy'), np.asfortranarray(a.astype(np.float64)))
np.save(os.path.join(d, 'f8_big.npy'), a.astype('>f8'))
np.save(os.path.join(d, 'u1.npy'), (a + 3).astype(np.uint8))
np.save(os.path.join(d, 'i2_big.npy'), a.astype('>i2'))
np.save(os.path.join(d, 'i4.npy'), a.astype(np.int32))
np.save(os.path.join(d, 'u8.npy'), (a + 3).astype(np.uint64))
np.save(os.path.join(d, 'b1.npy'), a > 0)
np.save(os.path.join(d, 'scalar.npy'), np.float64(2.5))
np.save(os.path.join(d, 'empty.npy'), np.zeros((0, 7), np.float32))
np.save(os.path.join(d, 'fortran3d.npy'), np.asfortranarray(np.arange(24, dtype=np.float32).reshape(2, 3, 4)))
np.save(os.path.join(d, 'text.npy'), np.array('caf\u00e9 \u20ac \U0001F600'))
for v in [(2, 0), (3, 0)]:
    with open(os.path.join(d, 'v%d.npy' % v[0]), 'wb') as f:
        np.lib.format.write_array(f, a.astype(np.float32), version=v)
)");
    Array<double> expected = counting<double>({3, 4});
    for (std::string name : {"f4", "f8_fortran", "f8_big", "i2_big", "i4", "v2", "v3"}) {
        CAPTURE(name);
        CHECK(read_npy<double>(dir / (name + ".npy")) == expected);
        CHECK(read_npy<float>(dir / (name + ".npy")) == Array<float>(expected));
    }
    CHECK(read_npy<std::int64_t>(dir / "i2_big.npy") == Array<std::int64_t>(expected));
    CHECK(read_npy<float>(dir / "u1.npy") == Array<float>(expected + 3.0));
    CHECK(read_npy<std::int64_t>(dir / "u8.npy") == Array<std::int64_t>(expected + 3.0));
    Array<std::int64_t> positive = xt::cast<std::int64_t>(expected > 0.0);
    CHECK(read_npy<std::int64_t>(dir / "b1.npy") == positive);
    Array<double> scalar = read_npy<double>(dir / "scalar.npy");
    CHECK(scalar.dimension() == 0);
    CHECK(scalar() == 2.5);
    CHECK(read_npy<float>(dir / "empty.npy").shape() == Shape{0, 7});
    Array<float> cube = read_npy<float>(dir / "fortran3d.npy");
    REQUIRE(cube.shape() == Shape{2, 3, 4});
    CHECK(cube(1, 2, 3) == 23.0f);
    CHECK(cube(0, 1, 2) == 6.0f);

    // Each value keeps its kind.
    auto value = [&](const std::string& name) {
        std::ifstream in(dir / name, std::ios::binary);
        std::stringstream ss;
        ss << in.rdbuf();
        return decode_npy_value(ss.str(), name);
    };
    CHECK(std::holds_alternative<Array<float>>(value("f4.npy")));
    CHECK(std::holds_alternative<Array<double>>(value("f8_big.npy")));
    CHECK(std::holds_alternative<Array<std::int64_t>>(value("u1.npy")));
    CHECK(std::holds_alternative<Array<std::int64_t>>(value("b1.npy")));
    NpyValue text = value("text.npy");
    REQUIRE(std::holds_alternative<std::string>(text));
    CHECK(std::get<std::string>(text) == "caf\u00e9 \u20ac \U0001F600");
    CHECK(dtype_name(text) == "str");
    CHECK(dtype_name(value("u1.npy")) == "int64");
}

TEST_CASE("npy files we write load in numpy") {
    TempDir dir("tapegrad_npy_test");
    write_npy(dir / "f4.npy", counting<float>({3, 4}));
    write_npy(dir / "f8.npy", counting<double>({2, 3, 4}));
    write_npy(dir / "i8.npy", counting<std::int64_t>({5}));
    write_npy(dir / "scalar.npy", counting<double>({}));
    write_bytes(dir / "text.npy", encode_npy(NpyValue(std::string("{\"latent\": 32, \"name\": \"caf\u00e9\"}"))));
    write_bytes(dir / "empty_text.npy", encode_npy(NpyValue(std::string())));
    std::string out = run_python(dir, R"(
def load(name): return np.load(os.path.join(d, name))
a = load('f4.npy'); assert a.dtype == np.float32 and a.shape == (3, 4), a
assert (a == np.arange(12).reshape(3, 4) - 3).all()
b = load('f8.npy'); assert b.dtype == np.float64 and (b == np.arange(24).reshape(2, 3, 4) - 3).all()
c = load('i8.npy'); assert c.dtype == np.int64 and (c == np.arange(5) - 3).all()
s = load('scalar.npy'); assert s.shape == () and s == -3
t = load('text.npy'); assert t.shape == () and t.dtype.kind == 'U'
print(str(t))
assert str(load('empty_text.npy')) == ''
)");
    CHECK(out == "{\"latent\": 32, \"name\": \"caf\u00e9\"}\n");
}

TEST_CASE("npy bad files: each refused with what is wrong") {
    TempDir dir("tapegrad_npy_test");
    std::string p = dir / "bad.npy";
    std::string valid = valid_bytes();
    auto check = [&](std::string_view bytes, const std::string& message) {
        write_bytes(p, bytes);
        CHECK_THROWS_WITH_AS(read_npy<float>(p), ("npy " + p + ": " + message).c_str(), FileError);
    };
    SUBCASE("magic and version") {
        check("PK\x03\x04 not numpy at all", "bad magic: not an npy file");
        check("", "truncated: 0 bytes, too short for a header");
        check("\x93NUM", "truncated: 4 bytes, too short for a header");
        std::string v4 = valid;
        v4[6] = 4;
        check(v4, "unsupported format version 4.0: 1.0, 2.0 and 3.0 are read");
        v4[6] = 1;
        v4[7] = 1;
        check(v4, "unsupported format version 1.1: 1.0, 2.0 and 3.0 are read");
    }
    SUBCASE("truncated or trailing data") {
        check(valid.substr(0, 128 + 20), "truncated: expected 48 bytes of data, found 20");
        check(valid.substr(0, 128), "truncated: expected 48 bytes of data, found 0");
        check(valid + "xyz", "trailing bytes: expected 48 bytes of data, found 51");
        check(valid.substr(0, 60), "truncated: expected a header of 118 bytes, found 50");
    }
    SUBCASE("header") {
        check(with_dict("{'descr': '<f4', 'shape': (3, 4), }"),
              "bad header: no 'fortran_order': {'descr': '<f4', 'shape': (3, 4), }");
        check(with_dict("{'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), 'extra': 1}"),
              "bad header: unexpected key 'extra': "
              "{'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), 'extra': 1}");
        check(with_dict("{'descr': '<f4', 'fortran_order': maybe, 'shape': (3, 4)}"),
              "bad header: 'fortran_order' is neither True nor False: "
              "{'descr': '<f4', 'fortran_order': maybe, 'shape': (3, 4)}");
        check(with_dict("{'descr': '<f4', 'fortran_order': False, 'shape': (3, x)}"),
              "bad header: bad shape at offset 54: {'descr': '<f4', 'fortran_order': False, 'shape': (3, x)}");
        check(with_dict("not a dict"), "bad header: expected '{' at offset 0: not a dict");
        // A shape whose byte count overflows is refused before anything is allocated.
        check(with_dict("{'descr': '<f8', 'fortran_order': False, 'shape': (4294967296, 4294967296)}"),
              "bad header: shape (4294967296, 4294967296) overflows");
        check(with_dict("{'descr': '<f4', 'fortran_order': False, 'shape': (1000000, 1000000)}"),
              "truncated: expected 4000000000000 bytes of data, found 48");
        // Keys in any order, Python 2's long integers: as numpy reads them.
        write_bytes(p, with_dict("{'shape': (3L, 4L), 'fortran_order': False, 'descr': '<f4'}"));
        CHECK(read_npy<float>(p).shape() == Shape{3, 4});
    }
    SUBCASE("dtypes") {
        auto with_descr = [&](const std::string& descr) {
            return with_dict("{'descr': " + descr + ", 'fortran_order': False, 'shape': (3, 4), }");
        };
        check(with_descr("'<c8'"), "unsupported dtype <c8: complex numbers are not read");
        check(with_descr("'<f2'"), "unsupported dtype <f2: float16 is not read");
        check(with_descr("'|O'"), "unsupported dtype |O: Python objects are not read");
        check(with_descr("'<x4'"), "unsupported dtype <x4: not a dtype");
        check(with_descr("'<f'"), "unsupported dtype <f: no width");
        check(with_descr("'<M8[ns]'"), "unsupported dtype <M8[ns]: dates and times are not read");
        check(with_descr("'|O8'"), "unsupported dtype |O8: Python objects are not read");
        check(with_descr("'|S4'"), "unsupported dtype |S4: byte strings are not read");
        check(with_descr("'<i3'"), "unsupported dtype <i3: not an integer width");
        check(with_descr("[('a', '<f4')]"), "unsupported dtype [('a', '<f4')]: structured arrays are not read");
        check(encode_npy(NpyValue(std::string("hello"))), "dtype <U5 is text, expected numbers");
        write_bytes(p, valid);
        CHECK_THROWS_WITH_AS(read_npy<std::int64_t>(p),
                             ("npy " + p + ": dtype <f4 (float32) cannot be read as int64 without rounding").c_str(),
                             FileError);
    }
    SUBCASE("files that are not there") {
        CHECK_THROWS_WITH_AS(read_npy<float>(dir / "missing.npy"),
                             ("npy " + (dir / "missing.npy") + ": cannot open: No such file or directory").c_str(),
                             FileError);
        CHECK_THROWS_WITH_AS(write_npy(dir / "no/such/folder.npy", counting<float>({2})),
                             ("npy " + (dir / "no/such/folder.npy") + ": cannot create a temporary file in " +
                              (dir / "no/such") + ": No such file or directory")
                                 .c_str(),
                             FileError);
    }
}

TEST_CASE("npy text: 0-d only, UTF-8 checked") {
    CHECK_THROWS_WITH_AS(encode_npy(NpyValue(std::string("ab\xff"))),
                         "encode_npy: text is not valid UTF-8: bad byte 0xff at offset 2", ValueError);
    CHECK_THROWS_WITH_AS(encode_npy(NpyValue(std::string("\xed\xa0\x80"))),  // a surrogate
                         "encode_npy: text is not valid UTF-8: bad byte 0xed at offset 0", ValueError);
    CHECK_THROWS_WITH_AS(
        decode_npy_value(with_dict("{'descr': '<U1', 'fortran_order': False, 'shape': (2,)}", 8), "npy names.npy"),
        "npy names.npy: text must be a 0-d array, found shape (2,)", FileError);
    NpyValue padded = decode_npy_value(with_dict("{'descr': '<U3', 'fortran_order': False, 'shape': ()}", 12), "npy");
    CHECK(std::get<std::string>(padded).empty());
}
