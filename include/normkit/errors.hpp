// normkit/errors.hpp - the exceptions normkit throws.
//
// Every check runs before the first write, so when one of these is thrown the
// output (and, for in-place calls, the input) is untouched.
#pragma once

#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>

namespace normkit {

/// An axis is out of range for the tensor's rank, repeated, or the axes given
/// together are not adjacent.
class axis_error : public std::invalid_argument {
 public:
  using std::invalid_argument::invalid_argument;
};

/// An output, gamma or beta does not have the shape the call needs, or the
/// normalized dimension is empty.
class shape_error : public std::invalid_argument {
 public:
  using std::invalid_argument::invalid_argument;
};

/// A functor option is invalid: negative epsilon, lo >= hi, ddof >= n, or an
/// enumerator value outside its enum.
class option_error : public std::invalid_argument {
 public:
  using std::invalid_argument::invalid_argument;
};

/// NanPolicy::raise found a NaN in the input.
class nan_error : public std::domain_error {
 public:
  using std::domain_error::domain_error;
};

namespace detail {

// Builds "normkit::<where>: <parts...>" so every message names its origin.
template <class Error, class... Parts>
[[noreturn]] void fail(const char* where, Parts&&... parts) {
  std::ostringstream message;
  message << "normkit::" << where << ": ";
  (message << ... << std::forward<Parts>(parts));
  throw Error(message.str());
}

}  // namespace detail
}  // namespace normkit
