// tests/engine_instances.hpp - compiles normkit's engine once per functor
// (for the tests and the benchmark).
//
// Nearly all of normkit's object code is detail::run (one instantiation per
// functor or backward kernel and scalar type; the executor is type-erased, so
// serial and thread-pool calls share it), and every test file calls it for
// every functor. Declared extern here, each instantiation is compiled once,
// by engine_instances.cpp (one object per functor, so that the objects build
// in parallel), instead of once in every test file: the suite then builds in
// a fraction of the time. What runs is the same code either way.
#pragma once

#include <normkit/normkit.hpp>

// `Kind` is `extern` (declaration) or empty (definition).
#define NORMKIT_TEST_ENGINE(Kind, Functor, T)                                                               \
  Kind template void normkit::detail::run(const normkit::Functor<T>&, normkit::detail::SliceView<const T>, \
                                          normkit::detail::SliceView<T>, normkit::detail::Weights<T>,      \
                                          normkit::detail::AnyExecutor);

// The backward kernel of Functor (two inputs: x or y, and dy).
#define NORMKIT_TEST_BACKWARD_ENGINE(Kind, Functor, T)                                                          \
  Kind template void normkit::detail::run(const normkit::Functor<T>::Gradient&, normkit::detail::Inputs<T, 2>, \
                                          normkit::detail::SliceView<T>, normkit::detail::Weights<T>,         \
                                          normkit::detail::AnyExecutor, double*);

// The forward that saves its statistics, and the backward that takes them
// (no-ops for functors without saved statistics).
#define NORMKIT_TEST_SAVED_ENGINES(Kind, Functor, T)                                                              \
  Kind template void normkit::detail::run_saving(const normkit::Functor<T>&, normkit::detail::SliceView<const T>, \
                                                 normkit::detail::SliceView<T>, normkit::detail::Weights<T>,      \
                                                 normkit::detail::AnyExecutor,                                    \
                                                 std::array<double*, normkit::detail::max_saved>);                \
  Kind template void normkit::detail::run_from_saved<normkit::Functor<T>>(                                        \
      const normkit::Functor<T>::Gradient&, normkit::detail::Inputs<T, 2>, normkit::detail::SliceView<T>,        \
      normkit::detail::Weights<T>, normkit::detail::AnyExecutor, double*,                                        \
      std::array<const double*, normkit::detail::max_saved>);

#define NORMKIT_TEST_ENGINES(Kind, Functor)                \
  NORMKIT_TEST_ENGINE(Kind, Functor, float)                \
  NORMKIT_TEST_ENGINE(Kind, Functor, double)               \
  NORMKIT_TEST_BACKWARD_ENGINE(Kind, Functor, float)       \
  NORMKIT_TEST_BACKWARD_ENGINE(Kind, Functor, double)      \
  NORMKIT_TEST_SAVED_ENGINES(Kind, Functor, float)         \
  NORMKIT_TEST_SAVED_ENGINES(Kind, Functor, double)

#define NORMKIT_TEST_EXTERN_ENGINES(Functor) NORMKIT_TEST_ENGINES(extern, Functor)
NORMKIT_FUNCTORS(NORMKIT_TEST_EXTERN_ENGINES)
