// CSV: numbers with and without a header (detected or given), a label column anywhere (negative from
// the end), other delimiters, CRLF, blank lines, spaces, signs and exponents, plain and gzip; each bad
// file refused naming the line and column: ragged rows, non-numeric and empty cells, NaN, Inf,
// values out of float range, labels that are not integers, no data.
#include "helpers.hpp"
#include "scratch.hpp"
#include "tapegrad/nn/io/csv.hpp"

using namespace tapegrad;
using namespace tapegrad::nn;
using test::TempDir;
using test::gzip;

namespace {

std::string write(const TempDir& dir, const std::string& name, std::string_view text) {
    std::string path = dir / name;
    test::write_bytes(path, text);
    return path;
}

Array<float> matrix(std::initializer_list<std::initializer_list<float>> rows) { return Array<float>(rows); }

}  // namespace

TEST_CASE("csv numbers, plain and gzip") {
    TempDir dir("tapegrad_csv_test");
    std::string plain = write(dir, "a.csv", "1,2,3\n4,5,6\n");
    for (const std::string& path : {plain, gzip(plain)}) {
        CAPTURE(path);
        Dataset data = read_csv(path);
        CHECK(data.x == matrix({{1, 2, 3}, {4, 5, 6}}));
        CHECK(data.labels.empty());
        CHECK(data.name == path);
    }
}

TEST_CASE("csv headers: detected or given") {
    TempDir dir("tapegrad_csv_test");
    std::string with = write(dir, "h.csv", "a,b,label\n1,2,0\n3,4,1\n");
    std::string without = write(dir, "n.csv", "1,2,0\n3,4,1\n");
    CHECK(read_csv(with).x == matrix({{1, 2, 0}, {3, 4, 1}}));
    CHECK(read_csv(without).x == matrix({{1, 2, 0}, {3, 4, 1}}));
    CHECK(read_csv(with, {.header = true}).x == matrix({{1, 2, 0}, {3, 4, 1}}));
    // A header of numbers is only skipped when said so.
    CHECK(read_csv(without, {.header = true}).x == matrix({{3, 4, 1}}));
    CHECK_THROWS_WITH_AS(read_csv(with, {.header = false}),
                         ("csv " + with + ": line 1, column 1: not a number: \"a\"").c_str(), FileError);
}

TEST_CASE("csv label columns: first, middle, last, counted from the end") {
    TempDir dir("tapegrad_csv_test");
    std::string p = write(dir, "l.csv", "x,y,z\n1,2,3\n4,5,6\n");
    Dataset last = read_csv(p, {.label_column = -1});
    CHECK(last.x == matrix({{1, 2}, {4, 5}}));
    CHECK(last.labels == std::vector<std::int64_t>{3, 6});
    CHECK(read_csv(p, {.label_column = 2}).labels == std::vector<std::int64_t>{3, 6});
    Dataset first = read_csv(p, {.label_column = 0});
    CHECK(first.x == matrix({{2, 3}, {5, 6}}));
    CHECK(first.labels == std::vector<std::int64_t>{1, 4});
    Dataset middle = read_csv(p, {.label_column = -2});
    CHECK(middle.x == matrix({{1, 3}, {4, 6}}));
    CHECK(middle.labels == std::vector<std::int64_t>{2, 5});
    CHECK_THROWS_WITH_AS(read_csv(p, {.label_column = 3}),
                         ("csv " + p + ": label column 3 is out of range for 3 columns").c_str(), ValueError);
    CHECK_THROWS_WITH_AS(read_csv(p, {.label_column = -4}),
                         ("csv " + p + ": label column -4 is out of range for 3 columns").c_str(), ValueError);
}

TEST_CASE("csv forms: delimiters, CRLF, blank lines, spaces, signs, exponents") {
    TempDir dir("tapegrad_csv_test");
    CHECK(read_csv(write(dir, "s.csv", "1;2\n3;4\n"), {.delimiter = ';'}).x == matrix({{1, 2}, {3, 4}}));
    CHECK(read_csv(write(dir, "t.tsv", "1\t2\n3\t4\n"), {.delimiter = '\t'}).x == matrix({{1, 2}, {3, 4}}));
    CHECK(read_csv(write(dir, "crlf.csv", "a,b\r\n1,2\r\n3,4\r\n")).x == matrix({{1, 2}, {3, 4}}));
    CHECK(read_csv(write(dir, "blank.csv", "\n1,2\n\n  \n3,4")).x == matrix({{1, 2}, {3, 4}}));
    CHECK(read_csv(write(dir, "forms.csv", " +1.5 , -2e-1\n.5,1E2\n")).x == matrix({{1.5f, -0.2f}, {0.5f, 100}}));
    // Too small for a double is 0 to a float, not an error.
    CHECK(read_csv(write(dir, "tiny.csv", "1e-400,1\n")).x == matrix({{0, 1}}));
}

TEST_CASE("csv bad files: each refused naming line and column") {
    TempDir dir("tapegrad_csv_test");
    auto check = [&](std::string_view text, const std::string& message, CsvOptions options = {}) {
        std::string p = write(dir, "bad.csv", text);
        CHECK_THROWS_WITH_AS(read_csv(p, options), ("csv " + p + ": " + message).c_str(), FileError);
        std::string gz = gzip(p);
        CHECK_THROWS_WITH_AS(read_csv(gz, options), ("csv " + gz + ": " + message).c_str(), FileError);
    };
    check("a,b\n1,2\n\n3,4,5\n", "line 4: 3 columns, expected 2 as on line 1");
    check("1,2\n3\n", "line 2: 1 columns, expected 2 as on line 1");
    check("1,2\n3,abc\n", "line 2, column 2: not a number: \"abc\"");
    check("1,2\n3,4x\n", "line 2, column 2: not a number: \"4x\"");
    check("1,2\n3,+-4\n", "line 2, column 2: not a number: \"+-4\"");
    check("1,2\n,4\n", "line 2, column 1: empty cell: \"\"");
    check("1,2\n3,nan\n", "line 2, column 2: not finite: \"nan\"");
    check("1,NaN\n3,4\n", "line 1, column 2: not finite: \"NaN\"");  // not taken for a header
    check("1,2\n-inf,4\n", "line 2, column 1: not finite: \"-inf\"");
    check("1,2\n3,1e39\n", "line 2, column 2: out of float32 range: \"1e39\"");
    check("1,2\n3,1e400\n", "line 2, column 2: out of float32 range: \"1e400\"");
    check("1,2\n3,4.5\n", "line 2, column 2: label is not an integer: \"4.5\"", {.label_column = -1});
    check("1,2\n3,a-very-long-cell-that-goes-on-and-on-and-on-and-on\n",
          "line 2, column 2: not a number: \"a-very-long-cell-that-goes-on-and-on-and...\"");
    check("", "no data rows");
    check("a,b\n\n", "no data rows");
    check("1\n2\n", "no feature columns: the only column holds the labels", {.label_column = 0});
    CHECK_THROWS_WITH_AS(read_csv(dir / "missing.csv"),
                         ("csv " + (dir / "missing.csv") + ": cannot open: No such file or directory").c_str(),
                         FileError);
}
