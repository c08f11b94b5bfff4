#include "tapegrad/autodiff/var.hpp"

#include <algorithm>
#include <limits>
#include <unordered_map>
#include <vector>

#include <fmt/format.h>

#include "tapegrad/autodiff/parallel.hpp"
#include "tapegrad/autodiff/tape.hpp"
#include "tapegrad/autodiff/testing.hpp"

namespace tapegrad {

namespace detail {
namespace {

std::size_t size_of(const Shape& shape) {
    std::size_t n = 1;
    for (std::size_t d : shape) {
        n *= d;
    }
    return n;
}

// Nodes whose last handle went away, keyed by the size of their value so that the next step's op of
// the same size gets the same buffer back without allocating.
template <class T>
class Pool {
public:
    ~Pool() {
        alive_ = false;
        clear();
    }
    static bool alive() noexcept { return alive_; }

    Node<T>* take(const Shape& shape) {
        auto it = free_.find(size_of(shape));
        if (it == free_.end() || it->second.empty()) {
            auto* node = new Node<T>();
            node->value.resize(shape);
            return node;
        }
        Node<T>* node = it->second.back();
        it->second.pop_back();
        node->value.resize(shape);  // same size: no allocation, only the shape changes
        return node;
    }
    // A pooled node of this many elements, or nullptr when there is none.
    Node<T>* take_if_any(std::size_t size) {
        auto it = free_.find(size);
        if (it == free_.end() || it->second.empty()) {
            return nullptr;
        }
        Node<T>* node = it->second.back();
        it->second.pop_back();
        return node;
    }
    void give(Node<T>* node) { free_[node->value.size()].push_back(node); }
    template <class F>
    void for_each(F f) {
        for (auto& [size, nodes] : free_) {
            for (Node<T>* node : nodes) {
                f(*node);
            }
        }
    }
    void clear() {
        for (auto& [size, nodes] : free_) {
            for (Node<T>* node : nodes) {
                delete node;
            }
        }
        free_.clear();
    }

private:
    std::unordered_map<std::size_t, std::vector<Node<T>*>> free_;
    static inline thread_local bool alive_ = true;  // trivially destructible: readable after ~Pool
};

template <class T>
Pool<T>& pool() {
    static thread_local Pool<T> instance;
    return instance;
}

}  // namespace

template <class T>
Node<T>* acquire_node(const Shape& shape) {
    Node<T>* node = pool<T>().take(shape);
    node->refs = 0;
    return node;
}

template <class T>
void release_node(Node<T>* node) noexcept {
    // Releasing these may release further nodes; the pool takes them one by one.
    node->grad.reset();
    node->pending.reset();
    node->name.clear();
    node->serial = 0;
    node->entry = 0;
    node->requires_grad = false;
    if (Pool<T>::alive()) {
        try {
            pool<T>().give(node);
            return;
        } catch (...) {  // the pool could not grow: free the node instead
        }
    }
    delete node;
}

template <class T>
Var<T> empty(const Shape& shape) {
    return Var<T>(acquire_node<T>(shape));
}

template <class T>
Var<T> full(const Shape& shape, T fill) {
    Var<T> out = empty<T>(shape);
    std::fill(out.mutable_value().begin(), out.mutable_value().end(), fill);
    return out;
}

template Node<float>* acquire_node<float>(const Shape&);
template Node<double>* acquire_node<double>(const Shape&);
template void release_node<float>(Node<float>*) noexcept;
template void release_node<double>(Node<double>*) noexcept;
template Var<float> empty<float>(const Shape&);
template Var<double> empty<double>(const Shape&);
template Var<float> full<float>(const Shape&, float);
template Var<double> full<double>(const Shape&, double);

}  // namespace detail

template <class T>
Var<T>::Var(Array<T>&& value, bool requires_grad, std::string name) {
    // The node goes back to the pool with this buffer: take a pooled node of the same size if there is
    // one (its buffer is freed), so that the pool does not grow by a buffer each time.
    node_ = detail::pool<T>().take_if_any(value.size());
    if (node_ == nullptr) {
        node_ = detail::acquire_node<T>(Shape{});
    }
    node_->refs = 1;
    node_->value = std::move(value);
    node_->requires_grad = requires_grad;
    node_->name = std::move(name);
}

template <class T>
Var<T>::Var(const Array<T>& value, bool requires_grad, std::string name) {
    node_ = detail::acquire_node<T>(value.shape());
    node_->refs = 1;
    const T* from = value.data();
    T* to = node_->value.data();
    parallel_for(value.size(), detail::elementwise_grain,
                 [=](std::size_t begin, std::size_t end) { std::copy(from + begin, from + end, to + begin); });
    node_->requires_grad = requires_grad;
    node_->name = std::move(name);
}

template <class T>
Var<T> Var<T>::parameter(Array<T> value, std::string name) {
    return Var(std::move(value), true, std::move(name));
}

template <class T>
Var<T> Var<T>::scalar(T value) {
    return detail::constant<T>(value);
}

template <class T>
T Var<T>::item() const {
    const Array<T>& v = value();
    if (v.size() != 1) {
        detail::throw_shape_error(
            fmt::format("item: value has {} elements, not 1: {}", v.size(), to_string(v.shape())));
    }
    return *v.data();
}

template <class T>
Var<T>& Var<T>::set_requires_grad(bool on) {
    if (!is_leaf()) {
        detail::throw_graph_error(
            "set_requires_grad: only a leaf can change whether it requires grad; use detach() to cut a "
            "value produced by an op from its graph");
    }
    node_->requires_grad = on;
    return *this;
}

template <class T>
Var<T>& Var<T>::set_name(std::string name) {
    checked()->name = std::move(name);
    return *this;
}

template <class T>
Var<T> Var<T>::detach() const {
    Var<T> out = detail::empty<T>(shape());
    std::copy(value().begin(), value().end(), out.mutable_value().begin());
    return out;
}

template <class T>
void Var<T>::backward(BackwardOptions options) const {
    tapegrad::backward(*this, options);
}

template <class T>
void release_cached_memory() {
    detail::pool<T>().clear();
}

namespace testing {

template <class T>
void poison_pool() {
    detail::pool<T>().for_each([](detail::Node<T>& node) {
        std::fill(node.value.begin(), node.value.end(), std::numeric_limits<T>::quiet_NaN());
    });
}

template <class T>
std::size_t pooled_buffers() {
    std::size_t n = 0;
    detail::pool<T>().for_each([&n](detail::Node<T>&) { ++n; });
    return n;
}

template void poison_pool<float>();
template void poison_pool<double>();
template std::size_t pooled_buffers<float>();
template std::size_t pooled_buffers<double>();

}  // namespace testing

template class Var<float>;
template class Var<double>;
template void release_cached_memory<float>();
template void release_cached_memory<double>();

}  // namespace tapegrad
