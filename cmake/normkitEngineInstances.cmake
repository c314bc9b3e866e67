# normkit's engine compiled once per functor, for the tests and the benchmark
# (tests/engine_instances.hpp declares the instantiations extern; each object
# below defines one functor's). Without them every test file and the
# benchmark compile the whole engine again: the benchmark's one file took
# 17 minutes and 5.7 GB of compiler memory on its own.
#
# normkit_engine_objects(<out-var>): the objects, one per functor of
# NORMKIT_FUNCTORS (include/normkit/functors.hpp), created on first use. They
# serve every executor (the engine takes it type-erased).
function(normkit_engine_objects out)
  file(STRINGS "${PROJECT_SOURCE_DIR}/include/normkit/functors.hpp" _line REGEX "^#define NORMKIT_FUNCTORS\\(X\\)")
  string(REGEX MATCHALL "X\\([A-Za-z0-9_]+\\)" _calls "${_line}")
  list(TRANSFORM _calls REPLACE "X\\(([A-Za-z0-9_]+)\\)" "\\1" OUTPUT_VARIABLE _functors)
  if(NOT _functors)
    message(FATAL_ERROR "no functors found in the NORMKIT_FUNCTORS line of include/normkit/functors.hpp")
  endif()
  set_property(DIRECTORY "${PROJECT_SOURCE_DIR}" APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS
               "${PROJECT_SOURCE_DIR}/include/normkit/functors.hpp")
  set(_objects "")
  foreach(_functor IN LISTS _functors)
    set(_lib normkit_engine_${_functor})
    if(NOT TARGET ${_lib})
      add_library(${_lib} OBJECT "${PROJECT_SOURCE_DIR}/tests/engine_instances.cpp")
      target_link_libraries(${_lib} PRIVATE normkit::normkit normkit_warnings)
      target_compile_definitions(${_lib} PRIVATE NORMKIT_TEST_FUNCTOR=${_functor})
    endif()
    list(APPEND _objects "$<TARGET_OBJECTS:${_lib}>")
  endforeach()
  set(${out} "${_objects}" PARENT_SCOPE)
endfunction()
