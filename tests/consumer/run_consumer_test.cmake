# Run with cmake -P (see tests/CMakeLists.txt). Builds and runs a downstream
# project that uses normkit either as an installed package (MODE=package) or
# through add_subdirectory() (MODE=subdirectory). Any failing step fails the test.
cmake_minimum_required(VERSION 3.21)

foreach(_var IN ITEMS MODE NORMKIT_SOURCE_DIR NORMKIT_BINARY_DIR WORK_DIR GENERATOR CXX_COMPILER)
  if(NOT DEFINED ${_var} OR "${${_var}}" STREQUAL "")
    message(FATAL_ERROR "run_consumer_test.cmake: -D${_var}=... is required")
  endif()
endforeach()

file(REMOVE_RECURSE "${WORK_DIR}")
set(_build "${WORK_DIR}/build")
set(_args -G "${GENERATOR}" "-DCMAKE_CXX_COMPILER=${CXX_COMPILER}" "-DCMAKE_BUILD_TYPE=${BUILD_TYPE}")

if(MODE STREQUAL "package")
  set(_prefix "${WORK_DIR}/prefix")
  execute_process(COMMAND "${CMAKE_COMMAND}" --install "${NORMKIT_BINARY_DIR}" --prefix "${_prefix}"
    COMMAND_ERROR_IS_FATAL ANY)
  set(_source "${NORMKIT_SOURCE_DIR}/tests/consumer")
  # Only the fresh prefix may provide normkit (not the package registry or /usr/local).
  list(APPEND _args "-DCMAKE_PREFIX_PATH=${_prefix}" -DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF
    -DCMAKE_FIND_USE_SYSTEM_PACKAGE_REGISTRY=OFF)
elseif(MODE STREQUAL "subdirectory")
  set(_source "${NORMKIT_SOURCE_DIR}/tests/consumer_subdir")
  list(APPEND _args "-DNORMKIT_SOURCE_DIR=${NORMKIT_SOURCE_DIR}")
else()
  message(FATAL_ERROR "run_consumer_test.cmake: unknown MODE '${MODE}'")
endif()

execute_process(COMMAND "${CMAKE_COMMAND}" -S "${_source}" -B "${_build}" ${_args}
  COMMAND_ERROR_IS_FATAL ANY)

if(MODE STREQUAL "package")
  file(STRINGS "${_build}/CMakeCache.txt" _dir REGEX "^normkit_DIR:")
  string(REGEX REPLACE "^normkit_DIR:[A-Z]+=" "" _dir "${_dir}")
  file(REAL_PATH "${_dir}" _dir)
  file(REAL_PATH "${_prefix}" _real_prefix)
  string(FIND "${_dir}/" "${_real_prefix}/" _pos)
  if(NOT _pos EQUAL 0)
    message(FATAL_ERROR "normkit was found in '${_dir}', not in the install prefix '${_prefix}'")
  endif()
endif()

execute_process(COMMAND "${CMAKE_COMMAND}" --build "${_build}" --parallel 2
  COMMAND_ERROR_IS_FATAL ANY)
execute_process(COMMAND "${_build}/normkit_consumer" COMMAND_ERROR_IS_FATAL ANY)
