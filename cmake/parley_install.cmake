# Install rules and the CMake package: `find_package(parley CONFIG)` gives parley::parley,
# from an install prefix or straight from this build tree.
#
# Components: `dev` holds the headers and the package config (libparley-dev),
# `tools` holds parley-tools and its service files (parley-tools). Layout under the prefix:
#   include/parley/*.hpp               the split headers; #include <parley/parley.hpp>
#   include/parley/single/parley.hpp   the generated single header, self-contained
#   share/cmake/parley/                parley-config.cmake, its version file and targets;
#                                      share/, not lib/, because the library is header-only.
#   share/doc/<package>/copyright      the MIT licence, in Debian's machine-readable format
include(CMakePackageConfigHelpers)

set(PARLEY_INSTALL_CMAKEDIR "${CMAKE_INSTALL_DATADIR}/cmake/parley"
    CACHE STRING "Where parley-config.cmake is installed, relative to the prefix")

# One config file serves both the install and the build tree: it finds its targets
# next to itself and never needs PACKAGE_PREFIX_DIR.
configure_package_config_file(
  ${CMAKE_CURRENT_LIST_DIR}/parley-config.cmake.in
  ${PROJECT_BINARY_DIR}/parley-config.cmake
  INSTALL_DESTINATION ${PARLEY_INSTALL_CMAKEDIR})
# ARCH_INDEPENDENT: a header-only package fits any architecture, so a 64-bit
# install serves a 32-bit consumer too. Until 1.0 any 0.x satisfies 0.y: the
# version file compares majors only.
write_basic_package_version_file(
  ${PROJECT_BINARY_DIR}/parley-config-version.cmake
  VERSION ${PROJECT_VERSION}
  COMPATIBILITY SameMajorVersion
  ARCH_INDEPENDENT)

# Build tree: point CMAKE_PREFIX_PATH (or parley_DIR) at this build directory.
export(TARGETS parley NAMESPACE parley:: FILE ${PROJECT_BINARY_DIR}/parley-targets.cmake)

if(NOT PARLEY_INSTALL)
  return()
endif()

install(TARGETS parley EXPORT parley-targets)
install(EXPORT parley-targets
  NAMESPACE parley::
  DESTINATION ${PARLEY_INSTALL_CMAKEDIR}
  COMPONENT dev)
install(FILES
  ${PROJECT_BINARY_DIR}/parley-config.cmake
  ${PROJECT_BINARY_DIR}/parley-config-version.cmake
  DESTINATION ${PARLEY_INSTALL_CMAKEDIR}
  COMPONENT dev)
install(DIRECTORY ${PROJECT_SOURCE_DIR}/include/parley
  DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}
  COMPONENT dev
  FILES_MATCHING PATTERN "*.hpp")
# The licence goes with each package, as Debian policy wants it: share/doc/<package>/copyright,
# in the machine-readable format. <package> is the .deb's name (parley_package.cmake).
install(FILES ${PROJECT_SOURCE_DIR}/packaging/debian/copyright
  DESTINATION ${CMAKE_INSTALL_DATADIR}/doc/libparley-dev
  COMPONENT dev)
# Under its own directory, so it can never shadow the split umbrella header of the same name.
if(EXISTS ${PROJECT_SOURCE_DIR}/single_include/parley/parley.hpp)
  install(FILES ${PROJECT_SOURCE_DIR}/single_include/parley/parley.hpp
    DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/parley/single
    COMPONENT dev)
endif()

# parley-tools and what runs it as a service. tools/ is added before this file is
# included, so the target exists here whenever PARLEY_BUILD_TOOLS built it.
if(TARGET parley-tools)
  # Where the system looks for them, not under the prefix: a service's unit and
  # settings belong to the system. Override both (e.g. with relative paths) to
  # keep an install entirely under CMAKE_INSTALL_PREFIX; use DESTDIR to stage.
  set(PARLEY_INSTALL_SYSTEMDUNITDIR "/lib/systemd/system"
      CACHE STRING "Where parley-server.service is installed")
  set(PARLEY_INSTALL_DEFAULTSDIR "/etc/default"
      CACHE STRING "Where the service's settings file `parley` is installed")

  install(TARGETS parley-tools RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR} COMPONENT tools)
  # The binary carries CLI11 and nlohmann/json, whose licences want their notices shipped with it.
  install(FILES ${PROJECT_SOURCE_DIR}/packaging/debian/copyright ${PROJECT_SOURCE_DIR}/packaging/THIRD-PARTY-NOTICES
    DESTINATION ${CMAKE_INSTALL_DATADIR}/doc/parley-tools
    COMPONENT tools)
  # Debian policy wants man pages gzipped with -9n (no timestamp, so the build is reproducible).
  set(man_page ${PROJECT_SOURCE_DIR}/packaging/parley-tools.1)
  find_program(PARLEY_GZIP gzip)
  if(PARLEY_GZIP)
    add_custom_command(OUTPUT ${PROJECT_BINARY_DIR}/parley-tools.1.gz
      COMMAND ${PARLEY_GZIP} -9nc ${man_page} > ${PROJECT_BINARY_DIR}/parley-tools.1.gz
      DEPENDS ${man_page}
      COMMENT "Compressing the parley-tools man page")
    add_custom_target(parley_man_page ALL DEPENDS ${PROJECT_BINARY_DIR}/parley-tools.1.gz)
    set(man_page ${PROJECT_BINARY_DIR}/parley-tools.1.gz)
  endif()
  install(FILES ${man_page} DESTINATION ${CMAKE_INSTALL_MANDIR}/man1 COMPONENT tools)
  install(FILES ${PROJECT_SOURCE_DIR}/packaging/parley-server.service
    DESTINATION ${PARLEY_INSTALL_SYSTEMDUNITDIR}
    COMPONENT tools)
  install(FILES ${PROJECT_SOURCE_DIR}/packaging/default/parley
    DESTINATION ${PARLEY_INSTALL_DEFAULTSDIR}
    COMPONENT tools)
endif()
