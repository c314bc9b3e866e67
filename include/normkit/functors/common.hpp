// normkit/functors/common.hpp - what every functor header needs.
#pragma once

#include <array>
#include <cmath>
#include <limits>
#include <tuple>
#include <type_traits>
#include <utility>

#include "../backward.hpp"
#include "../detail/slice_map.hpp"
#include "../ext/map.hpp"
#include "../errors.hpp"
#include "../normalize.hpp"
#include "../policy.hpp"
#include "../statistics/gradient.hpp"

namespace normkit::detail {

// The statistic's wide accumulation type (double, or long double when a
// slice was rescued).
template <class Total, class = void>
struct wide_of {
  using type = std::remove_cv_t<decltype(Total::n)>;
};
template <class Total>
struct wide_of<Total, std::void_t<typename Total::wide_type>> {
  using type = typename Total::wide_type;
};
template <class Total>
using wide_t = typename wide_of<Total>::type;

template <class A>
SliceMap<A> nan_slice() {
  return SliceMap<A>::constant(quiet_nan<A>());
}

// y = x / d, with d >= 0 and d == 0 giving zeros (a zero slice stays zero).
template <class A>
SliceMap<A> divide_by(A d) {
  if (std::isnan(d)) return nan_slice<A>();
  if (d == A(0)) return {A(0), A(0), A(0)};
  return divided_by(A(0), d, A(0));
}

}  // namespace normkit::detail
