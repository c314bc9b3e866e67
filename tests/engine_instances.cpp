// tests/engine_instances.cpp - the engine instantiations that
// engine_instances.hpp declares extern, for one functor: NORMKIT_TEST_FUNCTOR
// (one object per functor: cmake/normkitEngineInstances.cmake).
#include "engine_instances.hpp"

NORMKIT_TEST_ENGINES(, NORMKIT_TEST_FUNCTOR)
