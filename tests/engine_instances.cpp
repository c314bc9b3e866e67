// tests/engine_instances.cpp - the engine instantiations that
// engine_instances.hpp declares extern, for one functor: NORMKIT_TEST_FUNCTOR.
// Built twice per functor (tests/CMakeLists.txt): single-threaded, and with
// EIGEN_USE_THREADS for the ThreadPoolDevice executor.
#ifdef NORMKIT_TEST_THREADS
#define EIGEN_USE_THREADS
#endif
#include "engine_instances.hpp"

#ifdef NORMKIT_TEST_THREADS
NORMKIT_TEST_DEVICE_ENGINES(, NORMKIT_TEST_FUNCTOR)
#else
NORMKIT_TEST_SERIAL_ENGINES(, NORMKIT_TEST_FUNCTOR)
#endif
