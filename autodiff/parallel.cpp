#include "tapegrad/autodiff/parallel.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <exception>
#include <thread>
#include <vector>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define TAPEGRAD_X86 1
#endif

#include <fmt/format.h>

#include "tapegrad/autodiff/error.hpp"

namespace tapegrad {

namespace detail {

namespace {

// A worker spins this long for the next piece of work before it sleeps: the gaps between the pieces of
// a training step are a few microseconds, a system call to wake a thread costs more than that.
constexpr auto spin_time = std::chrono::microseconds(200);

void relax() noexcept {
#ifdef TAPEGRAD_X86
    _mm_pause();
#endif
}

// Flush-to-zero and denormals-are-zero are per thread (the MXCSR register): workers take the caller's.
unsigned float_mode() noexcept {
#ifdef TAPEGRAD_X86
    return _mm_getcsr();
#else
    return 0;
#endif
}

void set_float_mode([[maybe_unused]] unsigned mode) noexcept {
#ifdef TAPEGRAD_X86
    if (_mm_getcsr() != mode) {
        _mm_setcsr(mode);
    }
#endif
}

// The start of part p of n elements cut into `parts`: the nearest multiple of `align`, never past n.
std::size_t cut(std::size_t n, std::size_t parts, std::size_t align, std::size_t p) noexcept {
    return p >= parts ? n : std::min(n, (n * p / parts + align / 2) / align * align);
}

thread_local bool in_parallel = false;

class Pool {
public:
    ~Pool() { resize(1); }

    int size() const noexcept { return size_.load(std::memory_order_relaxed); }

    void resize(int threads) {
        if (busy_.exchange(true, std::memory_order_acquire)) {
            throw_value_error("set_threads: called while a parallel loop runs");
        }
        if (!workers_.empty()) {
            stop_ = true;
            generation_.fetch_add(1, std::memory_order_release);
            generation_.notify_all();
            for (std::thread& t : workers_) {
                t.join();
            }
            workers_.clear();
            stop_ = false;
        }
        std::uint32_t now = generation_.load(std::memory_order_relaxed);
        for (int w = 1; w < threads; ++w) {
            workers_.emplace_back([this, w, now] { work(static_cast<std::size_t>(w), now); });
        }
        size_.store(threads, std::memory_order_relaxed);
        busy_.store(false, std::memory_order_release);
    }

    void run(std::size_t n, std::size_t parts, std::size_t align, RangeFn fn, const void* body) {
        if (busy_.exchange(true, std::memory_order_acquire)) {
            fn(body, 0, n);  // another thread's loop holds the workers: this one runs alone
            return;
        }
        fn_ = fn;
        body_ = body;
        n_ = n;
        parts_ = parts;
        align_ = align;
        float_mode_ = float_mode();
        remaining_.store(static_cast<int>(workers_.size()), std::memory_order_relaxed);
        generation_.fetch_add(1, std::memory_order_release);
        generation_.notify_all();
        std::exception_ptr error;
        in_parallel = true;
        try {
            fn(body, 0, cut(n, parts, align, 1));
        } catch (...) {
            error = std::current_exception();
        }
        in_parallel = false;
        while (remaining_.load(std::memory_order_acquire) != 0) {
            relax();
        }
        busy_.store(false, std::memory_order_release);
        if (error) {
            std::rethrow_exception(error);
        }
    }

private:
    void work(std::size_t index, std::uint32_t seen) noexcept {
        in_parallel = true;
        for (;;) {
            wait_for_work(seen);
            seen = generation_.load(std::memory_order_acquire);
            if (stop_) {
                return;
            }
            if (index < parts_) {
                set_float_mode(float_mode_);
                fn_(body_, cut(n_, parts_, align_, index), cut(n_, parts_, align_, index + 1));
            }
            remaining_.fetch_sub(1, std::memory_order_acq_rel);
        }
    }

    void wait_for_work(std::uint32_t seen) noexcept {
        auto start = std::chrono::steady_clock::now();
        for (unsigned spins = 1; generation_.load(std::memory_order_acquire) == seen; ++spins) {
            relax();
            if (spins % 256 == 0 && std::chrono::steady_clock::now() - start > spin_time) {
                generation_.wait(seen, std::memory_order_acquire);
                return;
            }
        }
    }

    std::vector<std::thread> workers_;
    std::atomic<int> size_{1};
    std::atomic<bool> busy_{false};
    std::atomic<std::uint32_t> generation_{0};
    std::atomic<int> remaining_{0};
    // The piece of work, written before generation_ moves on and read after.
    bool stop_ = false;
    RangeFn fn_ = nullptr;
    const void* body_ = nullptr;
    std::size_t n_ = 0;
    std::size_t parts_ = 1;
    std::size_t align_ = 16;
    unsigned float_mode_ = 0;
};

Pool& pool() {
    static Pool instance;
    return instance;
}

}  // namespace

std::size_t parallel_parts(std::size_t n, std::size_t grain, std::size_t align) noexcept {
    if (in_parallel) {
        return 1;
    }
    auto threads = static_cast<std::size_t>(pool().size());
    if (threads <= 1) {
        return 1;
    }
    std::size_t parts = n / std::max({grain, align, std::size_t(1)});
    return parts < threads ? parts : threads;
}

void parallel_run(std::size_t n, std::size_t parts, std::size_t align, RangeFn fn, const void* body) {
    pool().run(n, parts, align == 0 ? 1 : align, fn, body);
}

}  // namespace detail

void set_threads(int threads) {
    if (threads < 1) {
        detail::throw_value_error(fmt::format("set_threads: {} threads; at least 1", threads));
    }
    if (threads != detail::pool().size()) {
        detail::pool().resize(threads);
    }
}

int threads() noexcept { return detail::pool().size(); }

}  // namespace tapegrad
