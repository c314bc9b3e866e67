// normkit/ext.hpp - the public protocol for writing a normalization.
//
// Everything a new functor, statistic or map needs, under normkit::ext (the
// guide is docs/extending.md; functors/power_norm.hpp is a complete example
// written only against these names):
//  * lanes: code is written once over a lane type V (an xsimd batch, a group
//    of batches, or a scalar for tails and the long double rescue pass):
//    vmax, vmin, vabs, vexp, vpow, mul_add, mul_sub, is_nan, lane_select,
//    scalar_of, infinity, quiet_nan;
//  * statistics: screen / note_nan (NaN policy), for_steps with Ways
//    accumulators, fold, count_of, CompensatedSum, the Sum / Max / Min
//    combine operations, and wants_exact (the engine's second pass over the
//    slices a statistic's needs_exact flagged);
//  * decisions: SliceMap (y = (x - center) * scale + offset, or a constant
//    fill) with divided_by / scaled_by / divide_by / nan_slice, and
//    Coefficients for maps of your own; SliceMapLanes, lanes_across,
//    divided_by_lanes and plain_divisor for an optional finalize_lanes
//    (several slices at once, lanes across slices);
//  * maps (ext/map.hpp): AffineMap, ExpMap, LinearGradMap, AffineGradMap,
//    CoefficientMap as a base;
//  * checks: check_epsilon, check_policy, fail<Error>(functor, parts...).
#pragma once

#include "detail/lanes.hpp"
#include "detail/slice_map.hpp"
#include "errors.hpp"
#include "ext/map.hpp"
#include "functors/common.hpp"
#include "policy.hpp"
#include "statistics/common.hpp"

namespace normkit::ext {

using Index = std::ptrdiff_t;

using detail::infinity;
using detail::is_nan;
using detail::lane_select;
using detail::mul_add;
using detail::mul_sub;
using detail::quiet_nan;
using detail::scalar_of;
using detail::vabs;
using detail::vexp;
using detail::vmax;
using detail::vmin;
using detail::vpow;

using stats::CenteredDot;
using stats::CompensatedSum;
using stats::Dot;
using stats::LeanDot;
using stats::count_of;
using stats::fold;
using stats::for_steps;
using stats::Max;
using stats::Min;
using stats::note_nan;
using stats::screen;
using stats::Sum;
using stats::wants_exact;
using stats::Ways;
using stats::ways_of;

using detail::divide_by;
using detail::divided_by;
using detail::nan_slice;
using detail::scaled_by;
using detail::SliceMap;
using detail::SliceMapLanes;
using detail::lanes_across;
using detail::plain_divisor;
using detail::divided_by_lanes;
using detail::minus_product;
using detail::wide_t;

using detail::check_epsilon;
using detail::check_policy;
using detail::fail;

}  // namespace normkit::ext
