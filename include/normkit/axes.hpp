// normkit/axes.hpp - which axes a call normalizes over.
//
// Axis k always means index position k of the tensor, exactly as in Eigen's
// own reductions, whatever the storage layout; negative values count from the
// end (-1 is the last index). Several axes normalize their combined extent and
// must be adjacent (e.g. {1, 2, 3} of an N,C,H,W tensor, like PyTorch's
// normalized_shape), so that every slice is one run of a single stride pattern.
#pragma once

#include <algorithm>
#include <initializer_list>
#include <sstream>
#include <string>
#include <utility>

#include "errors.hpp"

namespace normkit {

class Axes {
 public:
  static constexpr int max_count = 8;

  Axes(int axis) : count_(1) { axes_[0] = axis; }  // NOLINT: implicit on purpose
  Axes(std::initializer_list<int> axes) : count_(static_cast<int>(axes.size())) {
    if (axes.size() == 0 || axes.size() > max_count)
      detail::fail<axis_error>("Axes", "between 1 and ", max_count, " axes are needed, got ", axes.size());
    std::copy(axes.begin(), axes.end(), axes_);
  }

  int size() const { return count_; }
  int operator[](int i) const { return axes_[i]; }

  std::string str() const {
    std::ostringstream out;
    if (count_ > 1) out << '{';
    for (int i = 0; i < count_; ++i) out << (i ? ", " : "") << axes_[i];
    if (count_ > 1) out << '}';
    return out.str();
  }

 private:
  int axes_[max_count] = {};
  int count_;
};

/// The normalized axes after validation: the half-open index range
/// [first, last) of adjacent axes.
struct AxisRange {
  int first;
  int last;
};

namespace detail {

inline AxisRange resolve_axes(const char* functor, const Axes& axes, int rank) {
  int resolved[Axes::max_count];
  for (int i = 0; i < axes.size(); ++i) {
    const int a = axes[i] < 0 ? axes[i] + rank : axes[i];
    if (a < 0 || a >= rank)
      fail<axis_error>(functor, "axis ", axes[i], " is out of range for a tensor of rank ", rank, " (valid: ", -rank,
                       " to ", rank - 1, ")");
    resolved[i] = a;
  }
  for (int i = 1; i < axes.size(); ++i)  // insertion sort: at most 8 axes
    for (int j = i; j > 0 && resolved[j - 1] > resolved[j]; --j) std::swap(resolved[j - 1], resolved[j]);
  for (int i = 1; i < axes.size(); ++i) {
    if (resolved[i] == resolved[i - 1])
      fail<axis_error>(functor, "axes ", axes.str(), " name axis ", resolved[i], " twice");
    if (resolved[i] != resolved[i - 1] + 1)
      fail<axis_error>(functor, "axes ", axes.str(),
                       " must be adjacent (normalizing over separated axes is not supported)");
  }
  return {resolved[0], resolved[axes.size() - 1] + 1};
}

}  // namespace detail
}  // namespace normkit
