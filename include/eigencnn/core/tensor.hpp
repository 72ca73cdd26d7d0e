// SPDX-License-Identifier: MIT
// eigencnn/core/tensor.hpp
//
// Shape and Tensor<T>: a dense, contiguous, row-major (C order) array of up to
// four dimensions. Batches of images use the NCHW layout [N, C, H, W]; the
// output of Flatten and Linear is [N, F]. Storage is a std::vector (aligned,
// and in 2 MiB pages when large: core/tensor_allocator.hpp) so that resizing
// to a size already seen never reallocates: layers keep their output tensors
// between batches and only resize them.
#pragma once

#include "tensor_allocator.hpp"

#include <Eigen/Core>

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace eigencnn {

using Index = std::ptrdiff_t;

/// The extents of a tensor, outermost first ([N, C, H, W] for images).
class Shape {
public:
    Shape() = default;
    Shape(std::initializer_list<Index> dims) : dims_(dims) { validate(); }
    explicit Shape(std::vector<Index> dims) : dims_(std::move(dims)) { validate(); }

    Index rank() const { return static_cast<Index>(dims_.size()); }
    Index operator[](Index i) const { return dims_.at(static_cast<std::size_t>(i)); }
    const std::vector<Index>& dims() const { return dims_; }

    /// Product of all extents (1 for a rank-0 shape).
    Index numel() const {
        Index n = 1;
        for (Index d : dims_) n *= d;
        return n;
    }

    /// Product of all extents but the first: the size of one sample.
    Index sample_size() const {
        Index n = 1;
        for (std::size_t i = 1; i < dims_.size(); ++i) n *= dims_[i];
        return n;
    }

    /// The same shape with the first (batch) extent replaced.
    Shape with_batch(Index n) const {
        Shape s = *this;
        if (!s.dims_.empty()) s.dims_[0] = n;
        return s;
    }

    bool operator==(const Shape& o) const { return dims_ == o.dims_; }
    bool operator!=(const Shape& o) const { return dims_ != o.dims_; }

    /// "[500, 16, 24, 24]"
    std::string str() const {
        std::ostringstream os;
        os << '[';
        for (std::size_t i = 0; i < dims_.size(); ++i) os << (i ? ", " : "") << dims_[i];
        os << ']';
        return os.str();
    }

private:
    void validate() const {
        for (Index d : dims_)
            if (d < 0) throw std::invalid_argument("Shape: negative extent in " + str());
    }
    std::vector<Index> dims_;
};

inline std::ostream& operator<<(std::ostream& os, const Shape& s) { return os << s.str(); }

/// Dense row-major tensor of scalars T.
template <typename T>
class Tensor {
public:
    using Scalar = T;
    using Matrix = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
    using MatrixMap = Eigen::Map<Matrix, Eigen::Aligned16>;
    using ConstMatrixMap = Eigen::Map<const Matrix, Eigen::Aligned16>;
    using VectorMap = Eigen::Map<Eigen::Matrix<T, Eigen::Dynamic, 1>, Eigen::Aligned16>;
    using ConstVectorMap = Eigen::Map<const Eigen::Matrix<T, Eigen::Dynamic, 1>, Eigen::Aligned16>;

    Tensor() = default;
    /// A zero-filled tensor of the given shape.
    explicit Tensor(const Shape& shape) : shape_(shape), data_(static_cast<std::size_t>(shape.numel()), T(0)) {}
    Tensor(const Shape& shape, T value) : shape_(shape), data_(static_cast<std::size_t>(shape.numel()), value) {}

    const Shape& shape() const { return shape_; }
    Index size() const { return static_cast<Index>(data_.size()); }
    Index dim(Index i) const { return shape_[i]; }
    bool empty() const { return data_.empty(); }

    T* data() { return data_.data(); }
    const T* data() const { return data_.data(); }
    T& operator[](Index i) { return data_[static_cast<std::size_t>(i)]; }
    const T& operator[](Index i) const { return data_[static_cast<std::size_t>(i)]; }

    /// Element (n, c, h, w) of a rank-4 tensor.
    T& operator()(Index n, Index c, Index h, Index w) { return data_[offset4(n, c, h, w)]; }
    const T& operator()(Index n, Index c, Index h, Index w) const { return data_[offset4(n, c, h, w)]; }
    /// Element (i, j) of a rank-2 tensor.
    T& operator()(Index i, Index j) { return data_[static_cast<std::size_t>(i * shape_[1] + j)]; }
    const T& operator()(Index i, Index j) const { return data_[static_cast<std::size_t>(i * shape_[1] + j)]; }

    /// Change the shape. Contents are unspecified afterwards unless the
    /// element count is unchanged; capacity is kept, so a tensor resized to
    /// a size it has held before does not allocate.
    void resize(const Shape& shape) {
        shape_ = shape;
        data_.resize(static_cast<std::size_t>(shape.numel()));
    }
    /// Same data, new shape with the same number of elements.
    void reshape(const Shape& shape) {
        if (shape.numel() != size())
            throw std::invalid_argument("Tensor::reshape: cannot view " + shape_.str() + " as " + shape.str());
        shape_ = shape;
    }

    void set_zero() { std::fill(data_.begin(), data_.end(), T(0)); }
    void fill(T v) { std::fill(data_.begin(), data_.end(), v); }

    /// Row-major matrix view of the storage, rows x cols == size().
    MatrixMap matrix(Index rows, Index cols) { check_view(rows, cols); return MatrixMap(data(), rows, cols); }
    ConstMatrixMap matrix(Index rows, Index cols) const { check_view(rows, cols); return ConstMatrixMap(data(), rows, cols); }
    /// [N, rest] view: one sample per row.
    MatrixMap matrix() { return matrix(shape_[0], shape_.sample_size()); }
    ConstMatrixMap matrix() const { return matrix(shape_[0], shape_.sample_size()); }
    VectorMap vector() { return VectorMap(data(), size()); }
    ConstVectorMap vector() const { return ConstVectorMap(data(), size()); }

private:
    std::size_t offset4(Index n, Index c, Index h, Index w) const {
        return static_cast<std::size_t>(((n * shape_[1] + c) * shape_[2] + h) * shape_[3] + w);
    }
    void check_view(Index rows, Index cols) const {
        if (rows * cols != size())
            throw std::invalid_argument("Tensor::matrix: " + std::to_string(rows) + "x" + std::to_string(cols) +
                                        " view of a tensor of shape " + shape_.str());
    }

    Shape shape_;
    std::vector<T, TensorAllocator<T>> data_;
};

}  // namespace eigencnn
