#include "gemm.hpp"
#include "blis.hpp"
#include "ops/conv_dnnl.hpp"

#include <cblas.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <utility>
#include <string>
#include <string_view>
#include <type_traits>

#include <fmt/format.h>

#include "tapegrad/autodiff/blas.hpp"
#include "tapegrad/autodiff/parallel.hpp"

namespace tapegrad {

namespace detail {

namespace {

// Products with two tiny dimensions and one long one, as in narrow networks (a (1000, 2) x (2, 1)
// forward, its (2, 1000) x (1000, 1) weight gradient): sgemm spends ~1 us packing and dispatching such
// a product, more than its arithmetic. With the tiny dimensions known at compile time the loops below
// unroll and vectorise along the long one.
constexpr std::size_t tiny = 4;

// C (m, N) = op(A) (m, K) op(B) (K, N), m long.
template <std::size_t K, std::size_t N, class T>
void tall_product(bool ta, bool tb, std::size_t m, const T* a, std::size_t lda, const T* b, std::size_t ldb, T* c,
                  std::size_t ldc) {
    T bb[K][N];
    for (std::size_t p = 0; p < K; ++p) {
        for (std::size_t j = 0; j < N; ++j) {
            bb[p][j] = tb ? b[j * ldb + p] : b[p * ldb + j];
        }
    }
    for (std::size_t i = 0; i < m; ++i) {
        for (std::size_t j = 0; j < N; ++j) {
            T acc = 0;
            for (std::size_t p = 0; p < K; ++p) {
                acc += (ta ? a[p * lda + i] : a[i * lda + p]) * bb[p][j];
            }
            c[i * ldc + j] = acc;
        }
    }
}

// C (M, N) = A^T (M, k) B (k, N) with A stored (k, M) and B (k, N), k long: a weight gradient.
template <std::size_t M, std::size_t N, class T>
void long_inner_product(std::size_t k, const T* a, std::size_t lda, const T* b, std::size_t ldb, T* c,
                        std::size_t ldc) {
    T acc[M][N] = {};
    for (std::size_t p = 0; p < k; ++p) {
        for (std::size_t i = 0; i < M; ++i) {
            for (std::size_t j = 0; j < N; ++j) {
                acc[i][j] += a[p * lda + i] * b[p * ldb + j];
            }
        }
    }
    for (std::size_t i = 0; i < M; ++i) {
        for (std::size_t j = 0; j < N; ++j) {
            c[i * ldc + j] = acc[i][j];
        }
    }
}

template <class Kernel, std::size_t... Is>
bool dispatch2(std::size_t x, std::size_t y, Kernel kernel, std::index_sequence<Is...>) {
    bool done = false;
    auto try_x = [&]<std::size_t X>(std::integral_constant<std::size_t, X>) {
        ((X == x && Is == y ? (kernel.template operator()<X, Is>(), done = true) : false), ...);
    };
    (try_x(std::integral_constant<std::size_t, Is>{}), ...);
    return done;
}

// Runs the product through a tiny-dimension kernel when one fits; false when none does.
template <class T>
bool tiny_gemm(bool ta, bool tb, std::size_t m, std::size_t n, std::size_t k, const T* a, std::size_t lda, const T* b,
               std::size_t ldb, T* c, std::size_t ldc) {
    using Sizes = std::index_sequence<1, 2, 3, 4>;
    if (k <= tiny && n <= tiny) {
        return dispatch2(k, n, [&]<std::size_t K, std::size_t N>() { tall_product<K, N>(ta, tb, m, a, lda, b, ldb, c, ldc); },
                         Sizes{});
    }
    if (m <= tiny && n <= tiny && ta && !tb) {
        return dispatch2(m, n, [&]<std::size_t M, std::size_t N>() { long_inner_product<M, N>(k, a, lda, b, ldb, c, ldc); },
                         Sizes{});
    }
    return false;
}

}  // namespace

}  // namespace detail

namespace {

enum class Backend { openblas, blis };

struct Choice {
    Backend backend = Backend::blis;  // the doubles' products, and the floats' without oneDNN
    bool onednn_floats = false;       // the floats' products on dnnl_sgemm
    std::string why;
};

bool cpu_has_avx512() {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") &&
           __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl");
}

bool cpu_has_avx2() {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
}

// OpenBLAS's names for kernels that use neither AVX2 nor AVX-512.
bool is_generic(std::string_view core) {
    for (std::string_view slow : {"Prescott", "Core2", "Penryn", "Dunnington", "Nehalem", "Atom", "Katmai",
                                  "Coppermine", "Northwood", "Banias", "Opteron", "Barcelona", "Sandybridge",
                                  "Bulldozer", "Piledriver", "Steamroller", "Excavator", "Unknown"}) {
        if (core == slow) {
            return true;
        }
    }
    return false;
}

// Whether OpenBLAS runs a kernel for the CPU's widest vectors.
bool openblas_at_its_best() {
    std::string_view core = openblas_get_corename();
    bool avx512_kernel = core == "SkylakeX" || core == "Cooperlake" || core == "SapphireRapids";
    if (cpu_has_avx512()) {
        return avx512_kernel;
    }
    return cpu_has_avx2() ? !is_generic(core) : true;
}

Choice choose() {
    Choice choice;
    const char* env = std::getenv("TAPEGRAD_GEMM");
    std::string_view forced = env != nullptr ? env : "";
    if (forced == "openblas") {
        choice = {Backend::openblas, false, "TAPEGRAD_GEMM=openblas"};
    } else if (forced == "blis") {
        choice = {Backend::blis, false, "TAPEGRAD_GEMM=blis"};
    } else if (openblas_at_its_best()) {
        choice = {Backend::openblas, false, "OpenBLAS runs the kernel for this CPU"};
    } else {
        choice = {Backend::blis, false,
                  fmt::format("OpenBLAS runs {}, slower than this CPU allows", openblas_get_corename())};
    }
    // oneDNN's sgemm picks the CPU's widest instructions itself, and measured faster than OpenBLAS's own
    // kernel on the training products (README, BLAS); it has no double product.
    if ((forced.empty() || forced == "onednn") && detail::onednn::built_in()) {
        choice.onednn_floats = true;
        choice.why = forced.empty() ? "oneDNN for float; doubles: " + choice.why : "TAPEGRAD_GEMM=onednn";
    }
    if (choice.backend == Backend::blis) {
        // Without AVX2, BLIS's own detection is as good as any choice made here.
        detail::blis::init(cpu_has_avx512() ? detail::blis::Kernels::avx512
                           : cpu_has_avx2() ? detail::blis::Kernels::avx2
                                            : detail::blis::Kernels::detect);
    }
    return choice;
}

// BLIS spends ~6 us on each call before it multiplies anything (OpenBLAS ~0.1): measured here, it
// overtakes OpenBLAS's Haswell kernel from about 64^3 multiply-adds on square products, and later on
// narrow ones ((128, 784) x (784, 16): 55 us against 35). Smaller products stay on OpenBLAS.
bool large(std::size_t m, std::size_t n, std::size_t k) {
    return std::min(m, n) >= 64 && m * n * k >= (std::size_t(1) << 19);
}

const Choice& chosen() {
    static const Choice choice = choose();
    return choice;
}

// One call of the chosen backend.
template <class T>
void backend_product(bool ta, bool tb, std::size_t m, std::size_t n, std::size_t k, T alpha, const T* a,
                     std::size_t lda, const T* b, std::size_t ldb, T beta, T* c, std::size_t ldc) {
    if constexpr (std::is_same_v<T, float>) {
        if (chosen().onednn_floats) {
            detail::onednn::sgemm(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
            return;
        }
    }
    if (chosen().backend == Backend::blis && large(m, n, k)) {
        detail::blis::gemm(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
        return;
    }
    auto trans = [](bool t) { return t ? CblasTrans : CblasNoTrans; };
    auto i = [](std::size_t v) { return static_cast<int>(v); };
    if constexpr (std::is_same_v<T, float>) {
        cblas_sgemm(CblasRowMajor, trans(ta), trans(tb), i(m), i(n), i(k), alpha, a, i(lda), b, i(ldb), beta, c,
                    i(ldc));
    } else {
        cblas_dgemm(CblasRowMajor, trans(ta), trans(tb), i(m), i(n), i(k), alpha, a, i(lda), b, i(ldb), beta, c,
                    i(ldc));
    }
}

// Products from this many multiply-adds are cut into bands, one per thread: the smallest product of the
// 784-256-64 autoencoder at batch 128 has 2^21.
constexpr std::size_t shared_work = std::size_t(1) << 18;
// A band has at least this many rows or columns, and starts at a multiple of band_align: bands of 392 rows
// each, not 384 and 400, and the BLAS kernels' edge cases stay at the end.
constexpr std::size_t band_grain = 32;
constexpr std::size_t band_align = 8;

std::atomic<bool> counting_time{false};
std::atomic<std::uint64_t> counted_nanoseconds{0};
std::atomic<std::uint64_t> counted_products{0};

// C = op(A) op(B) (alpha, beta as BLAS has them); with a bias, C = bias on every row + op(A) op(B), each
// band writing the bias into its own rows or columns before its product adds onto them, then applying
// act to them.
template <class T>
void product(bool ta, bool tb, std::size_t m, std::size_t n, std::size_t k, T alpha, const T* a, std::size_t lda,
             const T* b, std::size_t ldb, T beta, T* c, std::size_t ldc, const T* bias = nullptr,
             std::optional<detail::kernels::Unary> act = std::nullopt) {
    detail::ProductClock clock;
    auto band = [&](std::size_t r0, std::size_t r1, std::size_t c0, std::size_t c1) {
        T band_beta = beta;
        if (bias != nullptr) {
            for (std::size_t r = r0; r < r1; ++r) {
                std::copy(bias + c0, bias + c1, c + r * ldc + c0);
            }
            band_beta = T(1);
        }
        if (bias == nullptr || k != 0) {  // else the bias alone
            backend_product(ta, tb, r1 - r0, c1 - c0, k, alpha, ta ? a + r0 : a + r0 * lda, lda,
                            tb ? b + c0 * ldb : b + c0, ldb, band_beta, c + r0 * ldc + c0, ldc);
        }
        if (!act) {
            return;
        }
        if (c1 - c0 == ldc) {  // whole rows: one stretch of memory
            detail::kernels::map(*act, c + r0 * ldc, c + r0 * ldc, (r1 - r0) * ldc);
            return;
        }
        for (std::size_t r = r0; r < r1; ++r) {
            detail::kernels::map(*act, c + r * ldc + c0, c + r * ldc + c0, c1 - c0);
        }
    };
    if (bias == nullptr && alpha == T(1) && beta == T(0) &&
        detail::tiny_gemm(ta, tb, m, n, k, a, lda, b, ldb, c, ldc)) {
        return;
    }
    if (m * n * k < shared_work || threads() == 1) {
        band(0, m, 0, n);
        return;
    }
    // Each band is a whole product of its own (every output element summed over all of k), so the BLAS
    // needs no threads of its own and the bands need no adding up.
    if (m >= n) {
        parallel_for(m, band_grain, [&](std::size_t r0, std::size_t r1) { band(r0, r1, 0, n); }, band_align);
    } else {
        parallel_for(n, band_grain, [&](std::size_t c0, std::size_t c1) { band(0, m, c0, c1); });
    }
}

}  // namespace

template <>
void gemm<float>(bool ta, bool tb, std::size_t m, std::size_t n, std::size_t k, float alpha, const float* a,
                 std::size_t lda, const float* b, std::size_t ldb, float beta, float* c, std::size_t ldc) {
    product(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

template <>
void gemm<double>(bool ta, bool tb, std::size_t m, std::size_t n, std::size_t k, double alpha, const double* a,
                  std::size_t lda, const double* b, std::size_t ldb, double beta, double* c, std::size_t ldc) {
    product(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

namespace detail {

template <class T>
void biased_gemm(bool ta, bool tb, std::size_t m, std::size_t n, std::size_t k, const T* a, std::size_t lda,
                 const T* b, std::size_t ldb, const T* bias, T* c, std::size_t ldc, std::optional<kernels::Unary> act) {
    product(ta, tb, m, n, k, T(1), a, lda, b, ldb, T(1), c, ldc, bias, act);
}

template void biased_gemm<float>(bool, bool, std::size_t, std::size_t, std::size_t, const float*, std::size_t,
                                 const float*, std::size_t, const float*, float*, std::size_t,
                                 std::optional<kernels::Unary>);
template void biased_gemm<double>(bool, bool, std::size_t, std::size_t, std::size_t, const double*, std::size_t,
                                  const double*, std::size_t, const double*, double*, std::size_t,
                                  std::optional<kernels::Unary>);

ProductClock::ProductClock() : on_(counting_time.load(std::memory_order_relaxed)) {
    if (on_) {
        start_ = std::chrono::steady_clock::now();
    }
}

ProductClock::~ProductClock() {
    if (on_) {
        auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - start_);
        counted_nanoseconds.fetch_add(static_cast<std::uint64_t>(ns.count()), std::memory_order_relaxed);
        counted_products.fetch_add(1, std::memory_order_relaxed);
    }
}

}  // namespace detail

void count_product_time(bool on) {
    counting_time.store(false, std::memory_order_relaxed);
    if (on) {
        counted_nanoseconds.store(0, std::memory_order_relaxed);
        counted_products.store(0, std::memory_order_relaxed);
        counting_time.store(true, std::memory_order_relaxed);
    }
}

ProductTime product_time() {
    return {.seconds = double(counted_nanoseconds.load(std::memory_order_relaxed)) * 1e-9,
            .products = counted_products.load(std::memory_order_relaxed)};
}

BlasInfo blas_info() {
    const Choice& choice = chosen();
    BlasInfo info;
    std::string_view config = openblas_get_config();
    // The config string starts "OpenBLAS 0.3.21 ...".
    std::size_t end = config.find(' ', std::string_view("OpenBLAS ").size());
    std::string openblas(config.substr(0, end));
    std::string core = openblas_get_corename();
    info.openblas = fmt::format("{}, kernel {}", openblas, core);
    info.cpu_has_avx2 = cpu_has_avx2();
    info.cpu_has_avx512 = cpu_has_avx512();
    info.why = choice.why;
    if (choice.backend == Backend::blis) {
        info.backend = "BLIS " + detail::blis::version();
        info.kernel = detail::blis::kernel();
        info.generic_kernel = info.cpu_has_avx2 && info.kernel == "generic";
    } else {
        info.backend = openblas;
        info.kernel = core;
        info.generic_kernel = (info.cpu_has_avx2 || info.cpu_has_avx512) && is_generic(core);
    }
    info.threads = threads();
    if (choice.onednn_floats) {
        info.float_backend = detail::onednn::version() + ", dnnl_sgemm";
    }
    return info;
}

std::string blas_summary() {
    BlasInfo info = blas_info();
    std::string summary = fmt::format("{}, kernel {}{}", info.backend, info.kernel,
                                      info.generic_kernel ? " (generic: slower than this CPU allows)" : "");
    if (info.backend.starts_with("BLIS")) {
        summary += fmt::format(" for products from 2^19 multiply-adds, {} below and for LAPACK", info.openblas);
    }
    std::string threads = fmt::format("{} thread{}", info.threads, info.threads == 1 ? "" : "s");
    if (!info.float_backend.empty()) {
        return fmt::format("{} for float, {} for double, {}", info.float_backend, summary, threads);
    }
    return fmt::format("{}, {}", summary, threads);
}

namespace {

// tapegrad's threads cut the products into bands; each band runs on one-threaded BLAS.
void apply_threads(int count) {
    openblas_set_num_threads(1);
    if (chosen().backend == Backend::blis) {
        detail::blis::set_threads(1);
    }
    set_threads(count);
}

}  // namespace

void configure_blas(char** argv, int threads) {
    if (std::getenv("TAPEGRAD_BLAS_CONFIGURED") != nullptr) {  // already run again once: take what we have
        apply_threads(threads);
        return;
    }
    bool again = false;
    if (std::getenv("OPENBLAS_NUM_THREADS") == nullptr && std::getenv("OMP_NUM_THREADS") == nullptr &&
        openblas_get_num_threads() != 1) {
        setenv("OPENBLAS_NUM_THREADS", "1", 1);
        again = true;
    }
    if (std::getenv("OPENBLAS_CORETYPE") == nullptr && (cpu_has_avx2() || cpu_has_avx512()) &&
        is_generic(openblas_get_corename())) {
        // Haswell's kernels need only AVX2 and FMA, which every CPU that reaches here has.
        setenv("OPENBLAS_CORETYPE", "Haswell", 1);
        again = true;
    }
    if (again) {
        setenv("TAPEGRAD_BLAS_CONFIGURED", "1", 1);
        execv("/proc/self/exe", argv);
        // execv returned: go on as we are.
    }
    apply_threads(threads);
}

}  // namespace tapegrad
