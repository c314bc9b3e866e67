// Outputs larger than normkit's streaming bound (32 MiB) are written with
// non-temporal stores wherever the rows are aligned for them. Slices do not
// depend on each other, so the same slices normalized as a small tensor
// (ordinary stores) must give the same bits: contiguous rows via a map over
// some rows, strided slices via a tensor of some of the columns (whole Wide
// chunks, so every lane computes exactly as in the big call).
#include <catch2/catch.hpp>

#include <normkit/normkit.hpp>

#include "engine_instances.hpp"

#include "reference.hpp"

#include <cstring>

namespace {

using Eigen::Index;
template <class T>
using Mat = Eigen::Tensor<T, 2, Eigen::RowMajor>;

template <class T>
bool same_rows(const Mat<T>& big, Index first, const Mat<T>& small) {
  return std::memcmp(big.data() + first * big.dimension(1), small.data(), sizeof(T) * std::size_t(small.size())) == 0;
}

// Rows [first, first + count) of x along axis 1, as their own small tensor.
template <class T, class F>
Mat<T> rows_alone(const Mat<T>& x, Index first, Index count, const F& f) {
  const Eigen::TensorMap<const Mat<T>> rows(x.data() + first * x.dimension(1), count, x.dimension(1));
  return f(rows, 1);
}

template <class T, class F>
void contiguous_rows_match(const F& f, Index rows, Index cols) {
  INFO(F::name << " [" << rows << ", " << cols << "]");
  Mat<T> x(rows, cols);
  ref::fill_normal(x, 91, 0.5, 2.0);
  REQUIRE(x.size() * Index(sizeof(T)) > (Index(32) << 20));
  const Mat<T> big = f(x, 1);
  for (Index first : {Index(0), Index(1), rows / 2, rows - 67})
    CHECK(same_rows(big, first, rows_alone(x, first, 67, f)));
}

template <class T, class F>
void strided_columns_match(const F& f, Index rows, Index cols) {
  INFO(F::name << " [" << rows << ", " << cols << "] axis 0");
  Mat<T> x(rows, cols);
  ref::fill_normal(x, 92, -1.0, 3.0);
  REQUIRE(x.size() * Index(sizeof(T)) > (Index(32) << 20));
  const Mat<T> big = f(x, 0);
  const Index width = 128;  // whole chunks for every vector width
  for (Index first : {Index(0), cols - width}) {
    const Eigen::array<Index, 2> offsets{0, first}, extents{rows, width};
    const Mat<T> part = x.slice(offsets, extents);
    const Mat<T> small = f(part, 0);
    const Mat<T> big_part = big.slice(offsets, extents);
    CHECK(std::memcmp(big_part.data(), small.data(), sizeof(T) * std::size_t(small.size())) == 0);
  }
}

}  // namespace

TEST_CASE("outputs past the streaming bound equal the same slices computed small", "[streaming]") {
  // 12288 x 768 floats = 36 MiB: rows aligned for every vector width.
  contiguous_rows_match<float>(normkit::L2Norm<float>{}, 12288, 768);
  contiguous_rows_match<float>(normkit::LayerNorm<float>{}, 12288, 768);
  contiguous_rows_match<float>(normkit::Softmax<float>{}, 12288, 768);
  // 771 columns: rows alternate between aligned and not.
  contiguous_rows_match<float>(normkit::MinMax<float>{}, 11000, 771);
  contiguous_rows_match<double>(normkit::ZScore<double>{}, 6144, 768);

  strided_columns_match<float>(normkit::SumToOne<float>{}, 12288, 768);
  strided_columns_match<float>(normkit::LogSoftmax<float>{}, 12288, 768);
  strided_columns_match<double>(normkit::RMSNorm<double>{}, 6144, 768);
}
