#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Runs conanfile.py's set_version, package and package_info against a stand-in for the
`conan` module (Conan itself cannot be installed here), and checks the licence, the package
layout and the CMakeDeps names: what `conan create` would produce, short of the real tool."""

import fnmatch
import os
import pathlib
import re
import shutil
import sys
import tempfile
import types


def fail(message):
    print(f"check_conan_recipe: {message}", file=sys.stderr)
    sys.exit(1)


def copy(conanfile, pattern, src, dst, keep_path=True):
    """conan.tools.files.copy: files under src matching pattern (relative path or name) into dst."""
    copied = []
    for path in pathlib.Path(src).rglob("*"):
        relative = path.relative_to(src).as_posix()
        if path.is_file() and (fnmatch.fnmatch(relative, pattern) or fnmatch.fnmatch(path.name, pattern) and "/" not in pattern):
            target = pathlib.Path(dst) / (relative if keep_path else path.name)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, target)
            copied.append(str(target))
    return copied


class CppInfo:
    def __init__(self):
        self.properties = {}
        self.bindirs = ["bin"]
        self.libdirs = ["lib"]
        self.includedirs = ["include"]

    def set_property(self, name, value):
        self.properties[name] = value


class Info:
    cleared = False

    def clear(self):
        self.cleared = True


class ConanFile:
    def __init__(self, recipe_folder):
        self.recipe_folder = recipe_folder
        self.cpp_info = CppInfo()
        self.info = Info()
        self.requirements_seen = []
        self.settings = types.SimpleNamespace(get_safe=lambda name: None)

    def requires(self, reference, **traits):
        self.requirements_seen.append(reference)


def install_stub_conan():
    conan = types.ModuleType("conan")
    conan.ConanFile = ConanFile
    tools = types.ModuleType("conan.tools")
    files = types.ModuleType("conan.tools.files")
    files.copy = copy
    files.load = lambda conanfile, path: pathlib.Path(path).read_text(encoding="utf-8")
    build = types.ModuleType("conan.tools.build")
    build.check_min_cppstd = lambda conanfile, version: None
    layout = types.ModuleType("conan.tools.layout")
    layout.basic_layout = lambda conanfile, src_folder=".": None
    for name, module in {"conan": conan, "conan.tools": tools, "conan.tools.files": files,
                         "conan.tools.build": build, "conan.tools.layout": layout}.items():
        sys.modules[name] = module


def load_recipe(root):
    """conanfile.py's recipe, instantiated against the stand-in conan module."""
    install_stub_conan()
    namespace = {}
    source = (root / "conanfile.py").read_text(encoding="utf-8")
    exec(compile(source, str(root / "conanfile.py"), "exec"), namespace)
    recipe_class = next(v for v in namespace.values()
                        if isinstance(v, type) and issubclass(v, ConanFile) and v is not ConanFile)
    return recipe_class(str(root))


def main():
    root = pathlib.Path(sys.argv[1]).resolve()
    recipe = load_recipe(root)
    # Conan Center, and anyone's dependency review, read the licence from here.
    if getattr(recipe, "license", None) != "MIT":
        fail(f"license is {getattr(recipe, 'license', None)!r}, not 'MIT'")
    if recipe.package_type != "header-library":
        fail(f"package_type is {recipe.package_type!r}")
    if recipe.no_copy_source is not True:
        fail("no_copy_source must be True")
    recipe.set_version()
    # check_version.py compares it with everything else; here, only that it is a version at all.
    if not re.fullmatch(r"\d+\.\d+\.\d+", recipe.version or ""):
        fail(f"set_version gave {recipe.version!r}")
    recipe.requirements()
    names = sorted(r.split("/")[0] for r in recipe.requirements_seen)
    if names != ["nlohmann_json", "tl-expected"]:
        fail(f"requires {recipe.requirements_seen}, expected nlohmann_json and tl-expected")
    recipe.package_id()
    if not recipe.info.cleared:
        fail("package_id() must clear the info: one package for every configuration")

    with tempfile.TemporaryDirectory() as package_folder:
        recipe.source_folder = str(root)
        recipe.package_folder = package_folder
        recipe.package()
        packaged = {p.relative_to(package_folder).as_posix() for p in pathlib.Path(package_folder).rglob("*") if p.is_file()}
        expected = {f"include/parley/{p.name}" for p in (root / "include/parley").glob("*.hpp")}
        expected.add("include/parley/single/parley.hpp")
        missing = expected - packaged
        if missing:
            fail(f"package() left out {sorted(missing)}")
        if "licenses/LICENSE" not in packaged:
            fail("package() left out licenses/LICENSE")
        packaged_license = pathlib.Path(package_folder, "licenses/LICENSE").read_text(encoding="utf-8")
        if packaged_license != (root / "LICENSE").read_text(encoding="utf-8"):
            fail("the packaged licenses/LICENSE differs from LICENSE")
        single = pathlib.Path(package_folder, "include/parley/single/parley.hpp").read_text(encoding="utf-8")
        if "SPDX-License-Identifier: MIT" not in single.split("#pragma once", 1)[0]:
            fail("the packaged single header does not state its licence before its code")
        licenses = sorted(p for p in packaged if p.startswith("licenses/"))
        print(f"package(): {len(packaged)} files; licenses: {licenses}")

    recipe.package_info()
    props = recipe.cpp_info.properties
    if props.get("cmake_file_name") != "parley" or props.get("cmake_target_name") != "parley::parley":
        fail(f"CMakeDeps names are {props}, expected parley and parley::parley")
    if recipe.cpp_info.bindirs or recipe.cpp_info.libdirs:
        fail("a header-only package has no bindirs or libdirs")
    print(f"conanfile.py: parley/{recipe.version} ({recipe.license}), requires {recipe.requirements_seen}, "
          "CMakeDeps find_package(parley) -> parley::parley")


if __name__ == "__main__":
    main()
