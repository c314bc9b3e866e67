# xsimd 8.1's exported target lists "xtl" in INTERFACE_LINK_LIBRARIES, but xsimd
# needs nothing linked and Debian's libxsimd-dev does not depend on xtl-dev, so
# every consumer would fail with "cannot find -lxtl". Included by the build and
# by the installed normkitConfig.cmake, after find_package(xsimd).
if(TARGET xsimd AND NOT TARGET xtl)
  set_target_properties(xsimd PROPERTIES INTERFACE_LINK_LIBRARIES "")
endif()
