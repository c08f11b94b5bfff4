// What the tests of the image grids (images_test.cpp) and of the plots (figures_test.cpp) share: figures
// decoded with stb_image, dark pixels (text, borders) counted in a box of pixels, and a fresh folder for
// the figures with another as TMPDIR, so that a temporary file left behind shows.
#pragma once

#include <algorithm>
#include <climits>
#include <cstdlib>
#include <filesystem>
#include <optional>
#include <ostream>
#include <set>
#include <string>
#include <vector>

#include <doctest/doctest.h>
#include <fmt/format.h>

#include "scratch.hpp"

// The test binaries link no stb: a private copy of the decoder, static so that its names cannot clash
// with the copy libtapegrad links.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#pragma GCC diagnostic ignored "-Wsign-compare"
#pragma GCC diagnostic ignored "-Wunused-parameter"
#define STB_IMAGE_STATIC
#define STB_IMAGE_IMPLEMENTATION
#define STBI_ONLY_PNG
#include <stb/stb_image.h>
#pragma GCC diagnostic pop

namespace tapegrad::test {

struct Png {
    int width = 0;
    int height = 0;
    int channels = 0;
    std::vector<unsigned char> pixels;

    int grey(int x, int y) const { return pixels[static_cast<std::size_t>(y * width + x) * channels]; }
    std::set<std::string> colours() const {
        std::set<std::string> out;
        for (std::size_t i = 0; i + 2 < pixels.size(); i += static_cast<std::size_t>(channels)) {
            out.insert(fmt::format("#{:02x}{:02x}{:02x}", pixels[i], pixels[i + 1], pixels[i + 2]));
        }
        return out;
    }
};

inline Png load_png(const std::filesystem::path& path) {
    Png png;
    unsigned char* data = stbi_load(path.c_str(), &png.width, &png.height, &png.channels, 0);
    REQUIRE_MESSAGE(data != nullptr, path.string() << ": " << stbi_failure_reason());
    png.pixels.assign(data, data + png.width * png.height * png.channels);
    stbi_image_free(data);
    return png;
}

// Sets an environment variable for one test and puts the old value back.
class ScopedEnv {
public:
    ScopedEnv(const char* name, const std::string& value) : name_(name) {
        if (const char* old = std::getenv(name)) {
            old_ = old;
        }
        ::setenv(name, value.c_str(), 1);
    }
    ~ScopedEnv() {
        if (old_) {
            ::setenv(name_, old_->c_str(), 1);
        } else {
            ::unsetenv(name_);
        }
    }

private:
    const char* name_;
    std::optional<std::string> old_;
};

// A fresh folder for the figures and another as TMPDIR, so that a temporary file left behind shows.
struct Folders {
    TempDir root{"tapegrad_figures_test"};
    std::filesystem::path out = root.path / "out";
    std::filesystem::path tmp = root.path / "tmp";
    Folders() {
        std::filesystem::create_directories(out);
        std::filesystem::create_directories(tmp);
    }
    std::string at(const std::string& name) const { return (out / name).string(); }
};

// A rectangle of pixels, inclusive; empty until a pixel is added.
struct Box {
    int left = INT_MAX;
    int top = INT_MAX;
    int right = -1;
    int bottom = -1;

    bool empty() const { return right < 0; }
    int width() const { return right - left + 1; }
    int height() const { return bottom - top + 1; }
    void add(int x, int y) {
        left = std::min(left, x);
        right = std::max(right, x);
        top = std::min(top, y);
        bottom = std::max(bottom, y);
    }
    bool contains(int x, int y) const { return x >= left && x <= right && y >= top && y <= bottom; }
    bool inside(const Box& outer) const {
        return left >= outer.left && right <= outer.right && top >= outer.top && bottom <= outer.bottom;
    }
};

inline std::ostream& operator<<(std::ostream& os, const Box& b) {
    return os << "[" << b.left << ", " << b.right << "] x [" << b.top << ", " << b.bottom << "]";
}

// Black text and the plot's border; antialiased edges of coloured lines stay lighter.
inline bool dark(const Png& png, int x, int y) {
    const unsigned char* p = &png.pixels[static_cast<std::size_t>(y * png.width + x) * png.channels];
    for (int c = 0; c < std::min(png.channels, 3); ++c) {
        if (p[c] >= 100) {
            return false;
        }
    }
    return true;
}

inline int count_dark(const Png& png, Box region) {
    int n = 0;
    for (int y = std::max(region.top, 0); y <= std::min(region.bottom, png.height - 1); ++y) {
        for (int x = std::max(region.left, 0); x <= std::min(region.right, png.width - 1); ++x) {
            n += dark(png, x, y) ? 1 : 0;
        }
    }
    return n;
}

}  // namespace tapegrad::test
