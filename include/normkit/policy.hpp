// normkit/policy.hpp - the policy vocabulary shared by every functor.
#pragma once

#include "errors.hpp"

namespace normkit {

/// What a NaN inside a slice does.
enum class NanPolicy {
  propagate,  ///< every output of that slice is NaN; other slices are untouched
  ignore,     ///< statistics skip NaNs; NaN inputs stay NaN in the output
  zero,       ///< as ignore, but NaN inputs are written as 0
  raise,      ///< throw nan_error (before anything is written)
};

/// What SumToOne writes for a slice whose sum is (near) zero or infinite.
enum class Degenerate {
  uniform,  ///< 1/n everywhere, so the slice still sums to one
  zeros,    ///< 0 everywhere
  nan,      ///< NaN everywhere
};

/// What Softmax and LogSoftmax write for a slice that is entirely -inf
/// (a fully masked attention row).
enum class MaskedSlice {
  nan,    ///< NaN everywhere, as PyTorch does
  zeros,  ///< 0 everywhere (probability 0 / log-probability 0 by convention)
};

inline const char* to_string(NanPolicy p) {
  switch (p) {
    case NanPolicy::propagate:
      return "propagate";
    case NanPolicy::ignore:
      return "ignore";
    case NanPolicy::zero:
      return "zero";
    case NanPolicy::raise:
      return "raise";
  }
  return "unknown";
}

namespace detail {

// Enums arrive from configuration files and casts; reject values outside them.
inline void check_policy(const char* functor, NanPolicy p) {
  if (p != NanPolicy::propagate && p != NanPolicy::ignore && p != NanPolicy::zero && p != NanPolicy::raise)
    fail<option_error>(functor, "unknown nan_policy value ", static_cast<int>(p));
}

inline void check_policy(const char* functor, Degenerate d) {
  if (d != Degenerate::uniform && d != Degenerate::zeros && d != Degenerate::nan)
    fail<option_error>(functor, "unknown degenerate policy value ", static_cast<int>(d));
}

inline void check_policy(const char* functor, MaskedSlice m) {
  if (m != MaskedSlice::nan && m != MaskedSlice::zeros)
    fail<option_error>(functor, "unknown masked policy value ", static_cast<int>(m));
}

template <class T>
void check_epsilon(const char* functor, T epsilon) {
  if (!(epsilon >= T(0)) || !(epsilon < T(1) / T(0)))
    fail<option_error>(functor, "epsilon must be finite and >= 0, got ", epsilon);
}

}  // namespace detail
}  // namespace normkit
