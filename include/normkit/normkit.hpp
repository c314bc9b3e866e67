// normkit/normkit.hpp - everything: #include <normkit/normkit.hpp>.
//
// Normalizes Eigen tensors, matrices and arrays along any axis:
//     normkit::LayerNorm<float> ln{1e-5f};
//     auto y = ln(x, -1);                        // new tensor, same shape/layout
//     normkit::L2Norm<float>{}(x, -1, out);      // into a Tensor or TensorMap
//     normkit::Softmax<float>{}.inplace(x, 1);   // in place
#pragma once

#include "affine.hpp"
#include "backward.hpp"
#include "axes.hpp"
#include "errors.hpp"
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
#include "normalize.hpp"
#include "policy.hpp"
