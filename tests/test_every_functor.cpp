// What every functor of the list (NORMKIT_FUNCTORS, include/normkit/functors.hpp)
// gets without a line of its own, default-constructed, float and double,
// rank 3, every axis and both layouts:
//  * the forward's call forms (new object, into out, in place) agree bit for
//    bit, and the output is finite on smooth data;
//  * the backward against central differences of the double forward (step
//    1e-5 |x|; |dx - fd| <= 1e-6 max |dx|), with x, or y for the functors
//    whose backward reads the output;
//  * functors that save statistics: normkit::forward's y is the plain
//    forward's bit for bit, and the backward from them agrees with the one
//    that recomputes them (1e-5 / 1e-12 of max |dx|).
// The reference-checked tests of each functor (test_reference*.cpp,
// test_backward.cpp, test_saved.cpp) are written per functor on top of this.
#include <catch2/catch.hpp>

#include <normkit/normkit.hpp>

#include "engine_instances.hpp"
#include "reference.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>

namespace {

using Index = Eigen::Index;

template <class T, int L>
using Tensor3 = Eigen::Tensor<T, 3, L>;

template <class T, int L>
bool same_bits(const Tensor3<T, L>& a, const Tensor3<T, L>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), sizeof(T) * std::size_t(a.size())) == 0;
}

template <class T, int L>
double max_abs(const Tensor3<T, L>& t) {
  double m = 0;
  for (Index i = 0; i < t.size(); ++i) m = std::max(m, std::fabs(double(t.data()[i])));
  return m;
}

// Smooth data: positive (no sign kinks, sums far from 0), distinct values.
template <class T, int L>
Tensor3<T, L> smooth(const std::array<Index, 3>& dims, unsigned seed) {
  Tensor3<T, L> x(dims);
  ref::fill_uniform(x, seed, 0.5, 2.0);
  return x;
}

template <class F, int L>
void forms_agree(const F& f, const std::array<Index, 3>& dims, unsigned seed) {
  using T = typename F::value_type;
  const auto x = smooth<T, L>(dims, seed);
  for (int axis = 0; axis < 3; ++axis) {
    INFO(F::name << " axis " << axis << " layout " << L);
    const Tensor3<T, L> y = f(x, axis);
    Tensor3<T, L> into(x.dimensions()), in_place = x;
    f(x, axis, into);
    f.inplace(in_place, axis);
    CHECK(same_bits(y, into));
    CHECK(same_bits(y, in_place));
    bool finite = true;
    for (Index i = 0; i < y.size(); ++i) finite = finite && std::isfinite(y.data()[i]);
    CHECK(finite);
  }
}

template <class F, int L>
void backward_against_differences(const F& f, unsigned seed) {
  static_assert(std::is_same<typename F::value_type, double>::value, "differences of the double forward");
  const std::array<Index, 3> dims{3, 4, 5};
  const auto x = smooth<double, L>(dims, seed);
  Tensor3<double, L> dy(dims);
  ref::fill_normal(dy, seed + 1, 0.0, 1.0);
  for (int axis = 0; axis < 3; ++axis) {
    INFO(F::name << " axis " << axis << " layout " << L);
    const Tensor3<double, L> y = f(x, axis);
    const Tensor3<double, L> dx = f.backward(F::backward_from_output ? y : x, dy, axis);
    const double scale = max_abs(dx);
    double worst = 0;
    for (Index i = 0; i < x.size(); ++i) {
      const double h = 1e-5 * std::fabs(x.data()[i]);
      Tensor3<double, L> up = x, down = x;
      up.data()[i] += h;
      down.data()[i] -= h;
      const Tensor3<double, L> yu = f(up, axis), yd = f(down, axis);
      double fd = 0;
      for (Index j = 0; j < y.size(); ++j) fd += dy.data()[j] * (yu.data()[j] - yd.data()[j]);
      fd /= (up.data()[i] - down.data()[i]);
      worst = std::max(worst, std::fabs(dx.data()[i] - fd) / scale);
    }
    INFO("worst |dx - fd| / max |dx| = " << worst);
    CHECK(worst <= 1e-6);
  }
}

template <class F, int L>
void saved_statistics(const F& f, unsigned seed) {
  if constexpr (normkit::saves_statistics_v<F>) {
    using T = typename F::value_type;
    const std::array<Index, 3> dims{5, 9, 17};
    const auto x = smooth<T, L>(dims, seed);
    Tensor3<T, L> dy(dims);
    ref::fill_normal(dy, seed + 1, 0.0, 1.0);
    for (int axis = 0; axis < 3; ++axis) {
      INFO(F::name << " saved statistics, axis " << axis << " layout " << L);
      auto [y, saved] = normkit::forward(x, f, axis);
      CHECK(same_bits(y, Tensor3<T, L>(f(x, axis))));
      if constexpr (!F::backward_from_output) {
        const Tensor3<T, L> want = f.backward(x, dy, axis), got = normkit::backward(f, x, dy, axis, saved);
        const double tol = (std::is_same<T, float>::value ? 1e-5 : 1e-12) * max_abs(want);
        double worst = 0;
        for (Index i = 0; i < want.size(); ++i) worst = std::max(worst, std::fabs(double(got.data()[i] - want.data()[i])));
        CHECK(worst <= tol);
      }
    }
  }
}

template <class F>
void every_layout(const F& f, unsigned seed) {
  for (const auto& dims : {std::array<Index, 3>{3, 5, 19}, std::array<Index, 3>{9, 2, 33}}) {
    forms_agree<F, Eigen::ColMajor>(f, dims, seed);
    forms_agree<F, Eigen::RowMajor>(f, dims, seed);
  }
  saved_statistics<F, Eigen::ColMajor>(f, seed + 2);
  saved_statistics<F, Eigen::RowMajor>(f, seed + 2);
}

}  // namespace

#define NORMKIT_TEST_EVERY_FUNCTOR(Functor)                                                              \
  TEST_CASE("every functor in the list: " #Functor, "[list]") {                                          \
    every_layout(normkit::Functor<float>{}, 100);                                                        \
    every_layout(normkit::Functor<double>{}, 200);                                                       \
    backward_against_differences<normkit::Functor<double>, Eigen::ColMajor>(normkit::Functor<double>{}, 300); \
    backward_against_differences<normkit::Functor<double>, Eigen::RowMajor>(normkit::Functor<double>{}, 400); \
  }
NORMKIT_FUNCTORS(NORMKIT_TEST_EVERY_FUNCTOR)
