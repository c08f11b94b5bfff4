// IDX: images and labels, plain and gzip, read back from files the test writes; each bad file (magic,
// element type, truncated or trailing data, short header, absurd or overflowing dimensions, damaged
// gzip, label count) refused with its exact message, plain and gzip alike.
#include "helpers.hpp"
#include "scratch.hpp"
#include "tapegrad/nn/io/idx.hpp"

using namespace tapegrad;
using namespace tapegrad::nn;
using test::TempDir;
using test::gzip;
using test::read_bytes;
using test::write_bytes;

namespace {

std::string big_endian(std::uint32_t v) {
    return {static_cast<char>(v >> 24), static_cast<char>(v >> 16), static_cast<char>(v >> 8), static_cast<char>(v)};
}

std::string idx(std::uint32_t magic, std::vector<std::uint32_t> dims, std::size_t data_bytes) {
    std::string bytes = big_endian(magic);
    for (std::uint32_t d : dims) {
        bytes += big_endian(d);
    }
    for (std::size_t i = 0; i < data_bytes; ++i) {
        bytes += static_cast<char>((i * 37) % 256);
    }
    return bytes;
}

}  // namespace

TEST_CASE("idx images and labels, plain and gzip") {
    TempDir dir("tapegrad_idx_test");
    write_bytes(dir / "images-idx3-ubyte", idx(0x803, {3, 4, 5}, 60));
    write_bytes(dir / "labels-idx1-ubyte", idx(0x801, {3}, 3));
    for (bool gz : {false, true}) {
        CAPTURE(gz);
        std::string images = dir / "images-idx3-ubyte";
        std::string labels = dir / "labels-idx1-ubyte";
        if (gz) {
            images = gzip(images);
            labels = gzip(labels);
        }
        Array<float> x = read_idx_images(images);
        REQUIRE(x.shape() == Shape{3, 20});
        for (std::size_t i = 0; i < 60; ++i) {
            CHECK(x.data()[i] == static_cast<float>((i * 37) % 256));
        }
        CHECK(read_idx_labels(labels) == std::vector<std::int64_t>{0, 37, 74});
        Dataset data = read_idx(images, labels);
        CHECK(data.x == x);
        CHECK(data.labels == std::vector<std::int64_t>{0, 37, 74});
        CHECK(data.name == images);
        CHECK(data.size() == 3);
        CHECK(data.dim() == 20);
    }
    write_bytes(dir / "empty-idx3-ubyte", idx(0x803, {0, 28, 28}, 0));
    CHECK(read_idx_images(dir / "empty-idx3-ubyte").shape() == Shape{0, 784});
}

TEST_CASE("idx bad files: each refused with what is wrong, plain and gzip") {
    TempDir dir("tapegrad_idx_test");
    std::string p = dir / "bad-idx3-ubyte";
    auto check = [&](std::string_view bytes, const std::string& message) {
        write_bytes(p, bytes);
        CHECK_THROWS_WITH_AS(read_idx_images(p), ("idx " + p + ": " + message).c_str(), FileError);
        std::string gz = gzip(p);
        CHECK_THROWS_WITH_AS(read_idx_images(gz), ("idx " + gz + ": " + message).c_str(), FileError);
    };
    check("hello world, not idx", "bad magic 0x68656c6c: not an IDX file");
    check(idx(0x801, {3}, 3), "bad magic 0x00000801 (labels): expected 0x00000803 (images)");
    check(idx(0x802, {3, 4}, 12), "bad magic 0x00000802: expected 0x00000803 (images)");
    check(idx(0xd03, {3, 4, 5}, 240),
          "bad magic 0x00000d03: element type 0x0d is not read (unsigned bytes, 0x08, are)");
    check(std::string("\0\0", 2), "truncated: 2 bytes, too short for the magic number");
    check(idx(0x803, {3}, 0), "truncated: expected a header of 16 bytes, found 8");
    check(idx(0x803, {3, 4, 5}, 50), "truncated: dimensions 3 x 4 x 5 need 60 bytes of data, found 50");
    check(idx(0x803, {3, 4, 5}, 70), "trailing bytes: dimensions 3 x 4 x 5 need 60 bytes of data, found 70");
    // Claims checked against the bytes there before anything that size is allocated.
    check(idx(0x803, {4000000, 28, 28}, 10),
          "truncated: dimensions 4000000 x 28 x 28 need 3136000000 bytes of data, found 10");
    check(idx(0x803, {4294967295u, 4294967295u, 2}, 10), "dimensions 4294967295 x 4294967295 x 2 overflow");

    std::string labels = dir / "labels-idx1-ubyte";
    write_bytes(labels, idx(0x801, {3}, 2));
    CHECK_THROWS_WITH_AS(read_idx_labels(labels),
                         ("idx " + labels + ": truncated: dimensions 3 need 3 bytes of data, found 2").c_str(),
                         FileError);
    write_bytes(labels, idx(0x803, {3, 4, 5}, 60));
    CHECK_THROWS_WITH_AS(read_idx_labels(labels),
                         ("idx " + labels + ": bad magic 0x00000803 (images): expected 0x00000801 (labels)").c_str(),
                         FileError);
    CHECK_THROWS_WITH_AS(read_idx_labels(dir / "missing"),
                         ("idx " + (dir / "missing") + ": cannot open: No such file or directory").c_str(), FileError);
}

TEST_CASE("idx gzip streams cut short or damaged") {
    TempDir dir("tapegrad_idx_test");
    std::string p = dir / "images-idx3-ubyte";
    write_bytes(p, idx(0x803, {10, 28, 28}, 7840));
    std::string gz = read_bytes(gzip(p));
    write_bytes(p + ".gz", gz.substr(0, gz.size() / 2));
    CHECK_THROWS_WITH_AS(read_idx_images(p + ".gz"),
                         ("idx " + p + ".gz: truncated gzip stream: unexpected end of file").c_str(), FileError);
    std::string damaged = gz;
    damaged[damaged.size() - 6] = static_cast<char>(damaged[damaged.size() - 6] ^ 0xff);  // the CRC
    write_bytes(p + ".gz", damaged);
    CHECK_THROWS_WITH_AS(read_idx_images(p + ".gz"), ("idx " + p + ".gz: damaged gzip stream: corrupt data").c_str(),
                         FileError);
}

TEST_CASE("idx pairs: label count must match the images") {
    TempDir dir("tapegrad_idx_test");
    write_bytes(dir / "images", idx(0x803, {3, 2, 2}, 12));
    write_bytes(dir / "labels", idx(0x801, {4}, 4));
    CHECK_THROWS_WITH_AS(read_idx(dir / "images", dir / "labels"),
                         ("idx " + (dir / "labels") + ": 4 labels for 3 images in " + (dir / "images")).c_str(),
                         FileError);
}
