# SPDX-License-Identifier: MIT
# Builds and runs the consumer program one way, failing the ctest test on any error.
#
#   cmake -DWORK_DIR=... -DCONSUMER_DIR=... [-DINSTALL_FROM=<build dir>] [-DEXPECT_PACKAGE_UNDER=<dir>]
#         [-DPREFIX_PATH=a|b] [-DCONFIGURE_ARGS=-Dx=y|...] [-DCXX_COMPILER=...] [-DGENERATOR=...]
#         -P run_consumer.cmake
#   cmake -DWORK_DIR=... -DMODE=compile -DCXX_COMPILER=... -DSOURCE=main.cpp -DFLAGS=-I...|... -P run_consumer.cmake
#
# Lists are separated by "|", since ";" would split add_test's arguments.
# WORK_DIR is wiped first, so every run starts from an empty cache.
cmake_minimum_required(VERSION 3.16)

function(run)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    string(REPLACE ";" " " shown "${ARGN}")
    message(FATAL_ERROR "failed (${rc}): ${shown}")
  endif()
endfunction()

foreach(var PREFIX_PATH CONFIGURE_ARGS FLAGS)
  string(REPLACE "|" ";" ${var} "${${var}}")
endforeach()

file(REMOVE_RECURSE ${WORK_DIR})
file(MAKE_DIRECTORY ${WORK_DIR})

if(MODE STREQUAL "compile")
  # A plain compiler invocation: nothing on the include path but what FLAGS names.
  set(exe ${WORK_DIR}/consumer)
  run(${CXX_COMPILER} ${FLAGS} ${SOURCE} -o ${exe})
  run(${exe})
  return()
endif()

if(INSTALL_FROM)
  # The install a find_package user gets: the dev component into a fresh prefix.
  set(prefix ${WORK_DIR}/prefix)
  run(${CMAKE_COMMAND} --install ${INSTALL_FROM} --prefix ${prefix} --component dev)
  list(PREPEND PREFIX_PATH ${prefix})
  if(NOT EXPECT_PACKAGE_UNDER)
    set(EXPECT_PACKAGE_UNDER ${prefix})
  endif()
endif()

set(args -S ${CONSUMER_DIR} -B ${WORK_DIR}/build)
if(GENERATOR)
  list(APPEND args -G ${GENERATOR})
endif()
if(CXX_COMPILER)
  list(APPEND args -DCMAKE_CXX_COMPILER=${CXX_COMPILER})
endif()
if(PREFIX_PATH)
  string(REPLACE ";" "\\;" prefix_arg "${PREFIX_PATH}")
  list(APPEND args "-DCMAKE_PREFIX_PATH=${prefix_arg}")
endif()
run(${CMAKE_COMMAND} ${args} ${CONFIGURE_ARGS})

# A parley installed elsewhere on this machine must not stand in for the one under test.
if(EXPECT_PACKAGE_UNDER)
  file(STRINGS ${WORK_DIR}/build/CMakeCache.txt parley_dir REGEX "^parley_DIR:")
  string(REGEX REPLACE "^parley_DIR:[A-Z]+=" "" parley_dir "${parley_dir}")
  get_filename_component(parley_dir "${parley_dir}" REALPATH)
  get_filename_component(expected "${EXPECT_PACKAGE_UNDER}" REALPATH)
  string(FIND "${parley_dir}/" "${expected}/" at)
  if(NOT at EQUAL 0)
    message(FATAL_ERROR "find_package(parley) found ${parley_dir}, not the package under ${expected}")
  endif()
  message(STATUS "parley found in ${parley_dir}")
endif()

run(${CMAKE_COMMAND} --build ${WORK_DIR}/build)
if(NOT CONSUMER_EXE)
  set(CONSUMER_EXE consumer)
endif()
run(${WORK_DIR}/build/${CONSUMER_EXE})
