// normkit/functors.hpp - every built-in normalization, and the one list of
// them: NORMKIT_FUNCTORS(X) expands X(Name) for each functor template
// normkit::Name<T>. The tests (tests/CMakeLists.txt reads this list) and
// anything else that must cover every functor iterate over it; a new
// normalization is its header, included here, and its name in the list.
#pragma once

#include "functors/l1_norm.hpp"
#include "functors/l2_norm.hpp"
#include "functors/layer_norm.hpp"
#include "functors/log_softmax.hpp"
#include "functors/max_norm.hpp"
#include "functors/min_max.hpp"
#include "functors/power_norm.hpp"
#include "functors/rms_norm.hpp"
#include "functors/softmax.hpp"
#include "functors/sum_to_one.hpp"
#include "functors/z_score.hpp"

// clang-format off
#define NORMKIT_FUNCTORS(X) X(SumToOne) X(L1Norm) X(L2Norm) X(PowerNorm) X(MaxNorm) X(MinMax) X(ZScore) X(LayerNorm) X(RMSNorm) X(Softmax) X(LogSoftmax)
// clang-format on
