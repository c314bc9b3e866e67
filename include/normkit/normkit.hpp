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
#include "functors.hpp"
#include "normalize.hpp"
#include "policy.hpp"
#include "saved.hpp"
