# Debian packages with CPack: `cpack -G DEB` in the build directory makes
#   parley-tools_<version>_<arch>.deb   the server/bridge binary, man page, systemd service
#   libparley-dev_<version>_all.deb     headers, single header, CMake package config
# from the `tools` and `dev` install components (see parley_install.cmake).

# Packaging belongs to the top-level project: a parent that pulls parley in owns its own CPack.
if(NOT PARLEY_TOP_LEVEL OR NOT PARLEY_INSTALL)
  return()
endif()

set(CPACK_PACKAGE_NAME parley)
set(CPACK_PACKAGE_VENDOR "parley")
# The project itself maintains the packages; it has no address to give, and an invented one
# would send bug reports nowhere.
set(CPACK_PACKAGE_CONTACT "parley")
set(CPACK_DEBIAN_PACKAGE_MAINTAINER "parley")
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_RESOURCE_FILE_LICENSE ${PROJECT_SOURCE_DIR}/LICENSE)
# CPackDeb puts this summary first in every package's Description; the components add the rest.
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "parley: real-time rooms for AI agents")
set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
# The service's unit and settings have absolute destinations; DESTDIR staging keeps them
# inside the package instead of writing to this machine's /etc and /lib.
set(CPACK_SET_DESTDIR ON)
set(CPACK_INSTALL_PREFIX /usr)
set(CPACK_STRIP_FILES ON)

set(CPACK_DEB_COMPONENT_INSTALL ON)
if(TARGET parley-tools)
  set(CPACK_COMPONENTS_ALL tools dev)
else()
  set(CPACK_COMPONENTS_ALL dev)
endif()

set(CPACK_DEBIAN_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_DEBIAN_PACKAGE_SECTION net)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
set(CPACK_DEBIAN_COMPRESSION_TYPE xz)

# parley-tools: the binary and the service that runs it.
set(CPACK_DEBIAN_TOOLS_PACKAGE_NAME parley-tools)
# DEB-DEFAULT: <name>_<version>_<dpkg architecture>.deb, as no Debian revision is set.
set(CPACK_DEBIAN_TOOLS_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_TOOLS_PACKAGE_SECTION net)
set(CPACK_DEBIAN_TOOLS_DESCRIPTION "The parley server, MCP bridge and token administration.
parley-tools runs a parley hub (rooms where AI agents and humans talk in real
time) as a WebSocket server, bridges an MCP host's stdio to it, and issues
the access tokens it checks. The package ships parley-server.service.")
# dpkg-shlibdeps derives exact library versions (libc6, libstdc++6, libssl3, libsqlite3-0, libnats3.4);
# without it, name the libraries parley-tools links by hand.
find_program(PARLEY_DPKG_SHLIBDEPS dpkg-shlibdeps)
if(PARLEY_DPKG_SHLIBDEPS)
  set(CPACK_DEBIAN_TOOLS_PACKAGE_SHLIBDEPS ON)
  set(CPACK_DEBIAN_TOOLS_PACKAGE_DEPENDS "adduser | passwd")
else()
  set(CPACK_DEBIAN_TOOLS_PACKAGE_DEPENDS "libsqlite3-0, libssl3, libnats3.4, libstdc++6, libc6, adduser | passwd")
endif()
set(parley_maintainer_scripts
  ${PROJECT_SOURCE_DIR}/packaging/debian/postinst
  ${PROJECT_SOURCE_DIR}/packaging/debian/prerm
  ${PROJECT_SOURCE_DIR}/packaging/debian/postrm
  ${PROJECT_SOURCE_DIR}/packaging/debian/conffiles)
set(CPACK_DEBIAN_TOOLS_PACKAGE_CONTROL_EXTRA "${parley_maintainer_scripts}")

# libparley-dev: header-only, so one package serves every architecture.
set(CPACK_DEBIAN_DEV_PACKAGE_NAME libparley-dev)
set(CPACK_DEBIAN_DEV_FILE_NAME "libparley-dev_${PROJECT_VERSION}_all.deb")
set(CPACK_DEBIAN_DEV_PACKAGE_ARCHITECTURE all)
set(CPACK_DEBIAN_DEV_PACKAGE_SECTION libdevel)
set(CPACK_DEBIAN_DEV_PACKAGE_DEPENDS "nlohmann-json3-dev (>= 3.10), libexpected-dev (>= 1.0)")
set(CPACK_DEBIAN_DEV_DESCRIPTION "The header-only C++17 core, for building against.
The sans-I/O core of parley: hub state machine, wire protocol, WebSocket and
HTTP handshake, MCP server logic. Use it with find_package(parley CONFIG) and
parley::parley, or include <parley/single/parley.hpp>.")

include(CPack)
