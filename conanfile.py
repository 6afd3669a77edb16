# Conan 2 recipe for parley's header-only core: `conan create .` packages the headers
# (and the single header) and gives CMakeDeps users find_package(parley) -> parley::parley.
import os
import re

from conan import ConanFile
from conan.tools.build import check_min_cppstd
from conan.tools.files import copy, load
from conan.tools.layout import basic_layout

required_conan_version = ">=2.0"


class ParleyConan(ConanFile):
    name = "parley"
    description = "Real-time rooms for AI agents: a header-only, sans-I/O C++17 core"
    license = "MIT"
    topics = ("chat", "websocket", "mcp", "header-only", "sans-io")
    package_type = "header-library"
    settings = "os", "arch", "compiler", "build_type"
    exports_sources = "include/*", "single_include/*", "LICENSE*"
    no_copy_source = True

    def set_version(self):
        # One source of truth: the version the headers report (include/parley/version.hpp).
        text = load(self, os.path.join(self.recipe_folder, "include", "parley", "version.hpp"))
        parts = [re.search(rf"#define PARLEY_VERSION_{p}\s+(\d+)", text).group(1) for p in ("MAJOR", "MINOR", "PATCH")]
        self.version = ".".join(parts)

    def layout(self):
        basic_layout(self, src_folder=".")

    def requirements(self):
        # Public headers include both, so consumers need them too (transitive_headers).
        self.requires("nlohmann_json/3.11.3", transitive_headers=True)
        self.requires("tl-expected/1.1.0", transitive_headers=True)

    def package_id(self):
        self.info.clear()

    def validate(self):
        if self.settings.get_safe("compiler.cppstd"):
            check_min_cppstd(self, 17)

    def package(self):
        copy(self, "LICENSE*", src=self.source_folder, dst=os.path.join(self.package_folder, "licenses"))
        copy(self, "*.hpp", src=os.path.join(self.source_folder, "include"),
             dst=os.path.join(self.package_folder, "include"))
        # The same layout as `cmake --install`: the single header as <parley/single/parley.hpp>.
        copy(self, "parley.hpp", src=os.path.join(self.source_folder, "single_include", "parley"),
             dst=os.path.join(self.package_folder, "include", "parley", "single"))

    def package_info(self):
        self.cpp_info.set_property("cmake_file_name", "parley")
        self.cpp_info.set_property("cmake_target_name", "parley::parley")
        self.cpp_info.bindirs = []
        self.cpp_info.libdirs = []
