#include "tapegrad/nn/io/npy.hpp"

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <limits>
#include <memory>
#include <optional>
#include <vector>

#include <fmt/format.h>

namespace tapegrad::nn {

// The readers copy little-endian bytes into host values; a big-endian host would need swaps throughout.
static_assert(std::endian::native == std::endian::little, "tapegrad's file formats assume a little-endian host");

// ---------------------------------------------------------------------------------------------------
// The header

namespace {

constexpr std::string_view magic = "\x93NUMPY";

enum class Kind { floating, signed_int, unsigned_int, boolean, text };

struct Dtype {
    Kind kind;
    std::size_t size;  // bytes per element (per character for text: 4)
    std::size_t chars = 0;
    bool swap = false;  // stored big-endian
    std::string descr;
};

struct Header {
    Dtype dtype;
    bool fortran_order = false;
    Shape shape;
    std::size_t count = 1;   // elements
    std::size_t offset = 0;  // where the data starts
    std::size_t data_bytes = 0;
};

std::string_view type_name(Kind kind, std::size_t size) {
    switch (kind) {
        case Kind::floating: return size == 4 ? "float32" : "float64";
        case Kind::signed_int: return size == 1 ? "int8" : size == 2 ? "int16" : size == 4 ? "int32" : "int64";
        case Kind::unsigned_int: return size == 1 ? "uint8" : size == 2 ? "uint16" : size == 4 ? "uint32" : "uint64";
        case Kind::boolean: return "bool";
        case Kind::text: return "str";
    }
    return "?";
}

// A reader of the header's Python literal: {'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }.
class HeaderParser {
public:
    HeaderParser(std::string_view text, std::string_view source) : text_(text), source_(source) {}

    Header parse() {
        std::optional<std::string> descr;
        std::optional<bool> fortran_order;
        std::optional<Shape> shape;
        expect('{');
        while (!accept('}')) {
            std::string key = string_literal();
            expect(':');
            if (key == "descr") {
                descr = peek() == '[' ? structured() : string_literal();
            } else if (key == "fortran_order") {
                fortran_order = boolean();
            } else if (key == "shape") {
                shape = tuple();
            } else {
                fail(fmt::format("unexpected key '{}'", key));
            }
            if (!accept(',')) {
                expect('}');
                break;
            }
        }
        skip_space();
        if (pos_ != text_.size()) {
            fail("text after the dict");
        }
        for (auto [present, key] : {std::pair{descr.has_value(), "descr"},
                                    {fortran_order.has_value(), "fortran_order"},
                                    {shape.has_value(), "shape"}}) {
            if (!present) {
                fail(fmt::format("no '{}'", key));
            }
        }
        Header header;
        header.dtype = parse_dtype(*descr);
        header.fortran_order = *fortran_order;
        header.shape = *shape;
        return header;
    }

private:
    [[noreturn]] void fail(std::string_view what) const {
        std::string_view shown = text_;
        while (!shown.empty() && (shown.back() == ' ' || shown.back() == '\n')) {
            shown.remove_suffix(1);
        }
        detail::throw_file_error(fmt::format("{}: bad header: {}: {}", source_, what, shown));
    }

    void skip_space() {
        while (pos_ < text_.size() && (text_[pos_] == ' ' || text_[pos_] == '\n' || text_[pos_] == '\t')) {
            ++pos_;
        }
    }
    char peek() {
        skip_space();
        return pos_ < text_.size() ? text_[pos_] : '\0';
    }
    bool accept(char c) {
        if (peek() == c) {
            ++pos_;
            return true;
        }
        return false;
    }
    void expect(char c) {
        if (!accept(c)) {
            fail(fmt::format("expected '{}' at offset {}", c, pos_));
        }
    }

    std::string string_literal() {
        char quote = peek();
        if (quote != '\'' && quote != '"') {
            fail(fmt::format("expected a string at offset {}", pos_));
        }
        std::size_t end = text_.find(quote, pos_ + 1);
        if (end == std::string_view::npos) {
            fail("unterminated string");
        }
        std::string s(text_.substr(pos_ + 1, end - pos_ - 1));
        pos_ = end + 1;
        return s;
    }

    bool boolean() {
        skip_space();
        for (auto [word, value] : {std::pair{std::string_view("True"), true}, {std::string_view("False"), false}}) {
            if (text_.substr(pos_, word.size()) == word) {
                pos_ += word.size();
                return value;
            }
        }
        fail("'fortran_order' is neither True nor False");
    }

    Shape tuple() {
        expect('(');
        Shape shape;
        while (!accept(')')) {
            skip_space();
            std::size_t start = pos_;
            std::size_t value = 0;
            while (pos_ < text_.size() && text_[pos_] >= '0' && text_[pos_] <= '9') {
                auto digit = static_cast<std::size_t>(text_[pos_] - '0');
                if (value > (std::numeric_limits<std::size_t>::max() - digit) / 10) {
                    fail("a dimension overflows");
                }
                value = value * 10 + digit;
                ++pos_;
            }
            if (pos_ == start) {
                fail(fmt::format("bad shape at offset {}", pos_));
            }
            if (pos_ < text_.size() && text_[pos_] == 'L') {
                ++pos_;  // Python 2's long integers, as old numpy wrote them
            }
            shape.push_back(value);
            if (!accept(',')) {
                expect(')');
                break;
            }
        }
        return shape;
    }

    // A structured dtype: a list of fields, kept as text only to name it in the error.
    std::string structured() {
        std::size_t start = pos_;
        int depth = 0;
        for (; pos_ < text_.size(); ++pos_) {
            char c = text_[pos_];
            depth += c == '[' ? 1 : c == ']' ? -1 : 0;
            if (depth == 0) {
                ++pos_;
                return std::string(text_.substr(start, pos_ - start));
            }
        }
        fail("unterminated list");
    }

    [[noreturn]] void unsupported(std::string_view descr, std::string_view why) const {
        detail::throw_file_error(fmt::format("{}: unsupported dtype {}: {}", source_, descr, why));
    }

    Dtype parse_dtype(const std::string& descr) const {
        if (descr.starts_with('[')) {
            unsupported(descr, "structured arrays are not read");
        }
        std::string_view s = descr;
        Dtype d{Kind::floating, 0, 0, false, descr};
        if (!s.empty() && (s[0] == '<' || s[0] == '>' || s[0] == '|' || s[0] == '=')) {
            d.swap = s[0] == '>';
            s.remove_prefix(1);
        }
        char kind = s.empty() ? '\0' : s[0];
        switch (kind) {
            case 'c': unsupported(descr, "complex numbers are not read");
            case 'S':
            case 'a': unsupported(descr, "byte strings are not read");
            case 'O': unsupported(descr, "Python objects are not read");
            case 'V': unsupported(descr, "void (raw bytes) is not read");
            case 'M':
            case 'm': unsupported(descr, "dates and times are not read");
            case 'f': d.kind = Kind::floating; break;
            case 'i': d.kind = Kind::signed_int; break;
            case 'u': d.kind = Kind::unsigned_int; break;
            case 'b': d.kind = Kind::boolean; break;
            case 'U': d.kind = Kind::text; break;
            default: unsupported(descr, "not a dtype");
        }
        std::size_t n = 0;
        for (char c : s.substr(1)) {
            if (c < '0' || c > '9' || n > 1'000'000'000) {
                unsupported(descr, "not a dtype");
            }
            n = n * 10 + static_cast<std::size_t>(c - '0');
        }
        if (s.size() < 2) {
            unsupported(descr, "no width");
        }
        if (d.kind == Kind::text) {
            d.chars = n;
            d.size = 4 * n;
            return d;
        }
        if (d.kind == Kind::floating && n != 4 && n != 8) {
            unsupported(descr, n == 2 ? "float16 is not read" : "not a float width");
        }
        if ((n != 1 && n != 2 && n != 4 && n != 8) || (d.kind == Kind::boolean && n != 1)) {
            unsupported(descr, "not an integer width");
        }
        d.size = n;
        return d;
    }

    std::string_view text_;
    std::string_view source_;
    std::size_t pos_ = 0;
};

std::uint32_t little_endian(const char* p, std::size_t bytes) {
    std::uint32_t v = 0;
    for (std::size_t i = bytes; i-- > 0;) {
        v = (v << 8) | static_cast<unsigned char>(p[i]);
    }
    return v;
}

// Magic, version, header; and the size of the data against the shape, before anything is allocated.
// The header at the start of `bytes`; with `whole`, bytes must also hold exactly the data it declares.
Header read_header(std::string_view bytes, std::string_view source, bool whole = true) {
    // A file shorter than the magic but agreeing with it so far is truncated, not foreign.
    if (bytes.substr(0, magic.size()) != magic.substr(0, std::min(bytes.size(), magic.size()))) {
        detail::throw_file_error(fmt::format("{}: bad magic: not an npy file", source));
    }
    if (bytes.size() < 10) {
        detail::throw_file_error(fmt::format("{}: truncated: {} bytes, too short for a header", source, bytes.size()));
    }
    auto major = static_cast<unsigned char>(bytes[6]);
    auto minor = static_cast<unsigned char>(bytes[7]);
    if ((major != 1 && major != 2 && major != 3) || minor != 0) {
        detail::throw_file_error(
            fmt::format("{}: unsupported format version {}.{}: 1.0, 2.0 and 3.0 are read", source, major, minor));
    }
    // Version 1.0 gives the header's length in 2 bytes; 2.0 and 3.0 (UTF-8 header) in 4.
    std::size_t length_bytes = major == 1 ? 2 : 4;
    if (bytes.size() < 8 + length_bytes) {
        detail::throw_file_error(fmt::format("{}: truncated: {} bytes, too short for a header", source, bytes.size()));
    }
    std::size_t header_length = little_endian(bytes.data() + 8, length_bytes);
    std::size_t offset = 8 + length_bytes + header_length;
    if (bytes.size() < offset) {
        detail::throw_file_error(fmt::format("{}: truncated: expected a header of {} bytes, found {}", source,
                                             header_length, bytes.size() - 8 - length_bytes));
    }
    Header header = HeaderParser(bytes.substr(8 + length_bytes, header_length), source).parse();
    header.offset = offset;
    std::size_t count = 1;
    for (std::size_t n : header.shape) {
        if (__builtin_mul_overflow(count, n, &count)) {
            detail::throw_file_error(
                fmt::format("{}: bad header: shape {} overflows", source, to_string(header.shape)));
        }
    }
    header.count = count;
    if (__builtin_mul_overflow(count, header.dtype.size, &header.data_bytes)) {
        detail::throw_file_error(fmt::format("{}: bad header: shape {} overflows", source, to_string(header.shape)));
    }
    // A dimension of 0 makes the count 0 whatever the others are, but xtensor still multiplies them into
    // its strides, signed longs: (0, 2^32, 2^32) must be refused as well.
    std::size_t span = header.dtype.size;
    for (std::size_t n : header.shape) {
        if (__builtin_mul_overflow(span, std::max<std::size_t>(n, 1), &span) ||
            span > static_cast<std::size_t>(std::numeric_limits<std::ptrdiff_t>::max())) {
            detail::throw_file_error(
                fmt::format("{}: bad header: shape {} overflows", source, to_string(header.shape)));
        }
    }
    if (!whole) {
        return header;
    }
    std::size_t found = bytes.size() - offset;
    if (found < header.data_bytes) {
        detail::throw_file_error(
            fmt::format("{}: truncated: expected {} bytes of data, found {}", source, header.data_bytes, found));
    }
    if (found > header.data_bytes) {
        detail::throw_file_error(
            fmt::format("{}: trailing bytes: expected {} bytes of data, found {}", source, header.data_bytes, found));
    }
    return header;
}

// ---------------------------------------------------------------------------------------------------
// The data

template <class S>
S load(const char* p, bool swap) {
    char b[sizeof(S)];
    std::memcpy(b, p, sizeof(S));
    if (swap) {
        std::reverse(b, b + sizeof(S));
    }
    S v;
    std::memcpy(&v, b, sizeof(S));
    return v;
}

// Calls f.template operator()<S>() with S the C++ type of a numeric dtype.
template <class F>
void visit_numeric(const Dtype& d, F&& f) {
    switch (d.kind) {
        case Kind::floating: return d.size == 4 ? f.template operator()<float>() : f.template operator()<double>();
        case Kind::signed_int:
            switch (d.size) {
                case 1: return f.template operator()<std::int8_t>();
                case 2: return f.template operator()<std::int16_t>();
                case 4: return f.template operator()<std::int32_t>();
                default: return f.template operator()<std::int64_t>();
            }
        case Kind::unsigned_int:
        case Kind::boolean:
            switch (d.size) {
                case 1: return f.template operator()<std::uint8_t>();
                case 2: return f.template operator()<std::uint16_t>();
                case 4: return f.template operator()<std::uint32_t>();
                default: return f.template operator()<std::uint64_t>();
            }
        case Kind::text: break;
    }
}

template <class T>
std::string_view target_name() {
    return std::is_same_v<T, float> ? "float32" : std::is_same_v<T, double> ? "float64" : "int64";
}

template <class T>
Array<T> decode(const Header& h, std::string_view bytes, std::string_view source) {
    const Dtype& d = h.dtype;
    if (d.kind == Kind::text) {
        detail::throw_file_error(fmt::format("{}: dtype {} is text, expected numbers", source, d.descr));
    }
    if (std::is_integral_v<T> && d.kind == Kind::floating) {
        detail::throw_file_error(fmt::format("{}: dtype {} ({}) cannot be read as {} without rounding", source, d.descr,
                                             type_name(d.kind, d.size), target_name<T>()));
    }
    // The data in the file's order (Fortran or C); a Fortran array is transposed into C order below.
    Array<T> values(h.shape);
    const char* src = bytes.data() + h.offset;
    T* out = values.data();
    visit_numeric(d, [&]<class S>() {
        if constexpr (std::is_same_v<S, T>) {
            if (!d.swap && h.count > 0) {
                std::memcpy(out, src, h.data_bytes);
                return;
            }
        }
        for (std::size_t i = 0; i < h.count; ++i) {
            S v = load<S>(src + i * sizeof(S), d.swap);
            if constexpr (std::is_same_v<T, std::int64_t> && std::is_same_v<S, std::uint64_t>) {
                if (v > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) {
                    detail::throw_file_error(
                        fmt::format("{}: value {} at flat index {} does not fit in int64", source, v, i));
                }
            }
            out[i] = d.kind == Kind::boolean ? static_cast<T>(v != 0) : static_cast<T>(v);
        }
    });
    if (!h.fortran_order || h.shape.size() < 2) {
        return values;
    }
    xt::xarray<T, xt::layout_type::column_major> column_major(h.shape);
    std::copy(values.data(), values.data() + h.count, column_major.data());
    return Array<T>(column_major);
}

std::string decode_text(const Header& h, std::string_view bytes, std::string_view source) {
    if (!h.shape.empty()) {
        detail::throw_file_error(
            fmt::format("{}: text must be a 0-d array, found shape {}", source, to_string(h.shape)));
    }
    const char* src = bytes.data() + h.offset;
    std::size_t n = h.dtype.chars;
    // numpy pads with NULs to the dtype's width and strips them when it reads: so do we.
    while (n > 0 && load<std::uint32_t>(src + 4 * (n - 1), h.dtype.swap) == 0) {
        --n;
    }
    std::string text;
    for (std::size_t i = 0; i < n; ++i) {
        std::uint32_t c = load<std::uint32_t>(src + 4 * i, h.dtype.swap);
        if (c < 0x80) {
            text += static_cast<char>(c);
        } else if (c < 0x800) {
            text += static_cast<char>(0xc0 | (c >> 6));
            text += static_cast<char>(0x80 | (c & 0x3f));
        } else if (c < 0x10000 && (c < 0xd800 || c > 0xdfff)) {
            text += static_cast<char>(0xe0 | (c >> 12));
            text += static_cast<char>(0x80 | ((c >> 6) & 0x3f));
            text += static_cast<char>(0x80 | (c & 0x3f));
        } else if (c >= 0x10000 && c < 0x110000) {
            text += static_cast<char>(0xf0 | (c >> 18));
            text += static_cast<char>(0x80 | ((c >> 12) & 0x3f));
            text += static_cast<char>(0x80 | ((c >> 6) & 0x3f));
            text += static_cast<char>(0x80 | (c & 0x3f));
        } else {
            detail::throw_file_error(fmt::format("{}: text holds an invalid code point {:#x} at {}", source, c, i));
        }
    }
    return text;
}

// The code points of UTF-8 text; `source` starts the message naming the first byte that is not UTF-8.
std::vector<std::uint32_t> code_points(std::string_view text, std::string_view source) {
    std::vector<std::uint32_t> out;
    for (std::size_t i = 0; i < text.size();) {
        auto b = static_cast<unsigned char>(text[i]);
        std::size_t len = b < 0x80 ? 1 : (b >> 5) == 0x6 ? 2 : (b >> 4) == 0xe ? 3 : (b >> 3) == 0x1e ? 4 : 0;
        std::uint32_t c = len == 1 ? b : len == 2 ? b & 0x1f : len == 3 ? b & 0x0f : b & 0x07;
        bool ok = len > 0 && i + len <= text.size();
        for (std::size_t k = 1; ok && k < len; ++k) {
            auto cont = static_cast<unsigned char>(text[i + k]);
            ok = (cont >> 6) == 0x2;
            c = (c << 6) | (cont & 0x3f);
        }
        // Overlong forms, surrogates and values past U+10FFFF are not UTF-8 either.
        ok = ok && !(len == 2 && c < 0x80) && !(len == 3 && c < 0x800) && !(len == 4 && c < 0x10000) &&
             !(c >= 0xd800 && c <= 0xdfff) && c < 0x110000;
        if (!ok) {
            tapegrad::detail::throw_value_error(
                fmt::format("{}: text is not valid UTF-8: bad byte {:#04x} at offset {}", source, b, i));
        }
        out.push_back(c);
        i += len;
    }
    return out;
}

// Python's repr of a shape tuple: (), (5,), (3, 4).
std::string python_tuple(const Shape& shape) {
    if (shape.size() == 1) {
        return fmt::format("({},)", shape[0]);
    }
    return fmt::format("({})", fmt::join(shape, ", "));
}

std::string encode(std::string_view descr, const Shape& shape, const void* data, std::size_t data_bytes) {
    std::string dict =
        fmt::format("{{'descr': '{}', 'fortran_order': False, 'shape': {}, }}", descr, python_tuple(shape));
    // numpy pads the header with spaces and a newline so that the data starts at a multiple of 64 bytes,
    // and moves to version 2.0 (a 4-byte length) only when the header outgrows 2 bytes.
    std::size_t prefix = 10;
    std::size_t total = (prefix + dict.size() + 1 + 63) / 64 * 64;
    if (total - prefix > 65535) {
        prefix = 12;
        total = (prefix + dict.size() + 1 + 63) / 64 * 64;
    }
    std::size_t header_length = total - prefix;
    dict.append(header_length - dict.size() - 1, ' ');
    dict += '\n';
    std::string out;
    out.reserve(total + data_bytes);
    out += magic;
    out += static_cast<char>(prefix == 10 ? 1 : 2);
    out += '\0';
    for (std::size_t i = 0; i < prefix - 8; ++i) {
        out += static_cast<char>((header_length >> (8 * i)) & 0xff);
    }
    out += dict;
    out.append(static_cast<const char*>(data), data_bytes);
    return out;
}

}  // namespace

// ---------------------------------------------------------------------------------------------------
// The public functions

template <class T>
Array<T> decode_npy(std::string_view bytes, std::string_view source) {
    Header header = read_header(bytes, source);
    return decode<T>(header, bytes, source);
}

std::size_t detail::npy_size(std::string_view prefix, std::string_view source) {
    Header h = read_header(prefix, source, false);
    std::size_t total = 0;
    if (__builtin_add_overflow(h.offset, h.data_bytes, &total)) {
        tapegrad::nn::detail::throw_file_error(fmt::format("{}: bad header: shape {} overflows", source, to_string(h.shape)));
    }
    return total;
}

NpyValue decode_npy_value(std::string_view bytes, std::string_view source) {
    Header h = read_header(bytes, source);
    switch (h.dtype.kind) {
        case Kind::text: return decode_text(h, bytes, source);
        case Kind::floating:
            if (h.dtype.size == 4) {
                return decode<float>(h, bytes, source);
            }
            return decode<double>(h, bytes, source);
        default: return decode<std::int64_t>(h, bytes, source);
    }
}

template <class T>
Array<T> read_npy(const std::string& path) {
    std::string what = fmt::format("npy {}", path);
    // Not detail::read_file: a .npy is never gzipped, and a gzipped one should fail on its magic.
    std::string bytes;
    {
        std::FILE* f = std::fopen(path.c_str(), "rb");
        if (f == nullptr) {
            detail::throw_file_error(fmt::format("{}: cannot open: {}", what, std::strerror(errno)));
        }
        std::unique_ptr<std::FILE, int (*)(std::FILE*)> guard(f, std::fclose);
        char buffer[1 << 16];
        std::size_t n = 0;
        while ((n = std::fread(buffer, 1, sizeof buffer, f)) > 0) {
            bytes.append(buffer, n);
        }
        if (std::ferror(f)) {
            detail::throw_file_error(fmt::format("{}: cannot read: {}", what, std::strerror(errno)));
        }
    }
    return decode_npy<T>(bytes, what);
}

template <class T>
std::string encode_npy(const Array<T>& a) {
    // xtensor's arrays are row-major and contiguous (Array<T> has xarray's default layout).
    return encode(fmt::format("<{}{}", std::is_floating_point_v<T> ? 'f' : 'i', sizeof(T)), a.shape(), a.data(),
                  a.size() * sizeof(T));
}

std::string encode_npy(const NpyValue& value) { return detail::encode_npy_value(value, "encode_npy"); }

std::string detail::encode_npy_value(const NpyValue& value, std::string_view source) {
    if (const auto* text = std::get_if<std::string>(&value)) {
        std::vector<std::uint32_t> chars = code_points(*text, source);
        // numpy gives '' the dtype '<U1' too: a width of 0 is not a dtype it writes.
        std::size_t width = std::max<std::size_t>(chars.size(), 1);
        chars.resize(width, 0);
        return encode(fmt::format("<U{}", width), Shape{}, chars.data(), 4 * width);
    }
    return std::visit(
        [](const auto& a) -> std::string {
            if constexpr (std::is_same_v<std::decay_t<decltype(a)>, std::string>) {
                return {};
            } else {
                return encode_npy(a);
            }
        },
        value);
}

template <class T>
void write_npy(const std::string& path, const Array<T>& a) {
    detail::write_file_atomically(path, encode_npy(a), fmt::format("npy {}", path));
}

std::string_view dtype_name(const NpyValue& value) {
    switch (value.index()) {
        case 0: return "float32";
        case 1: return "float64";
        case 2: return "int64";
        default: return "str";
    }
}

template Array<float> read_npy<float>(const std::string&);
template Array<double> read_npy<double>(const std::string&);
template Array<std::int64_t> read_npy<std::int64_t>(const std::string&);
template void write_npy<float>(const std::string&, const Array<float>&);
template void write_npy<double>(const std::string&, const Array<double>&);
template void write_npy<std::int64_t>(const std::string&, const Array<std::int64_t>&);
template std::string encode_npy<float>(const Array<float>&);
template std::string encode_npy<double>(const Array<double>&);
template std::string encode_npy<std::int64_t>(const Array<std::int64_t>&);
template Array<float> decode_npy<float>(std::string_view, std::string_view);
template Array<double> decode_npy<double>(std::string_view, std::string_view);
template Array<std::int64_t> decode_npy<std::int64_t>(std::string_view, std::string_view);

}  // namespace tapegrad::nn
