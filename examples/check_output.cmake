# cmake -DEXAMPLE=<exe> -DEXPECTED=<file> -DACTUAL=<file> -P check_output.cmake
# Runs an example and requires exit status 0 and stdout equal to EXPECTED
# (line endings aside). The examples print with fixed precision, so the text
# is the same for every compiler and instruction set.
foreach(_var IN ITEMS EXAMPLE EXPECTED ACTUAL)
  if(NOT DEFINED ${_var})
    message(FATAL_ERROR "check_output.cmake: -D${_var}=... is required")
  endif()
endforeach()

execute_process(COMMAND "${EXAMPLE}"
  RESULT_VARIABLE _status
  OUTPUT_VARIABLE _actual
  ERROR_VARIABLE _errors)
if(NOT _status STREQUAL "0")
  message("stdout:\n${_actual}\nstderr:\n${_errors}")
  message(FATAL_ERROR "${EXAMPLE} failed (${_status})")
endif()

file(READ "${EXPECTED}" _expected)
string(REPLACE "\r\n" "\n" _expected "${_expected}")
string(REPLACE "\r\n" "\n" _actual "${_actual}")
if(NOT _actual STREQUAL _expected)
  file(WRITE "${ACTUAL}" "${_actual}")
  # diff -u (or the whole output) verbatim, before the error message.
  find_program(_diff diff)
  if(_diff)
    execute_process(COMMAND "${_diff}" -u "${EXPECTED}" "${ACTUAL}")
  else()
    message("${_actual}")
  endif()
  message(FATAL_ERROR "output of ${EXAMPLE} differs from ${EXPECTED} (actual output saved to ${ACTUAL})")
endif()
file(REMOVE "${ACTUAL}")
message(STATUS "output matches ${EXPECTED}")
