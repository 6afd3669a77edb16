#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Checks that everything stating parley's version agrees with the one place it is written,
include/parley/version.hpp: CMake's project(), the Conan recipe, the Claude Code plugin
manifest, the single header, `parley-tools --version`, the CHANGELOG's newest release and
the install commands in the docs. Also checks the git revision --version shows: this
checkout's, and none at all for a build without .git.

Usage: check_version.py --source-dir DIR --cmake-version V --cmake CMAKE [--tools PARLEY_TOOLS]
"""

import argparse
import json
import os
import pathlib
import re
import subprocess
import sys
import tempfile

from check_conan_recipe import load_recipe

VERSION = r"\d+\.\d+\.\d+"
# Commands a reader copies from the docs: a wrong version there fails for them.
DOC_PATTERNS = (
    rf"parley-tools_({VERSION})_",             # sudo apt install ./parley-tools_0.1.0_amd64.deb
    rf"libparley-dev_({VERSION})_",            # sudo apt install ./libparley-dev_0.1.0_all.deb
    rf"GIT_TAG v({VERSION})",                  # FetchContent_Declare(parley ... GIT_TAG v0.1.0)
    rf"\bparley/({VERSION})\b",                # self.requires("parley/0.1.0")
)

errors = []


def check(condition, message):
    if not condition:
        errors.append(message)
        print(f"FAIL: {message}", file=sys.stderr)
    return condition


def header_version(text, where):
    """The version the PARLEY_VERSION_* macros in text define."""
    parts = []
    for part in ("MAJOR", "MINOR", "PATCH"):
        match = re.search(rf"^#define PARLEY_VERSION_{part} +(\d+)$", text, re.M)
        if not match:
            sys.exit(f"check_version: {where} defines no PARLEY_VERSION_{part}")
        parts.append(match.group(1))
    return ".".join(parts)


def check_git_revision(root, cmake):
    """cmake/parley_git_revision.cmake: the checkout's short revision with .git, none without."""
    script = root / "cmake/parley_git_revision.cmake"
    with tempfile.TemporaryDirectory(prefix="parley-revision-") as scratch:
        scratch = pathlib.Path(scratch)

        def generate(source_dir, output):
            subprocess.run([cmake, f"-DSOURCE_DIR={source_dir}", f"-DOUTPUT={output}", "-P", str(script)],
                           check=True)
            match = re.search(r'^#define PARLEY_GIT_REVISION "([^"]*)"$', output.read_text(), re.M)
            check(match, f"{output.name} defines no PARLEY_GIT_REVISION")
            return match.group(1) if match else None

        # A source tarball: no .git, so no revision, and no word standing in for one.
        tarball = scratch / "parley-tarball"
        tarball.mkdir()
        revision = generate(tarball, scratch / "tarball.hpp")
        check(revision == "", f"without .git the revision is {revision!r}, not empty")

        if not (root / ".git").exists():
            print("no .git here (a source tarball): the checkout's revision is not checked")
            return
        try:
            expected = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=root, check=True,
                                      capture_output=True, text=True).stdout.strip()
        except (OSError, subprocess.CalledProcessError) as e:
            print(f"git cannot read this checkout ({e}): the checkout's revision is not checked")
            return
        output = scratch / "checkout.hpp"
        check(generate(root, output) == expected, f"the generated revision is not {expected}")
        # Regenerated at every build, but rewritten only on change, so parley-tools is not relinked.
        before = output.stat().st_mtime_ns
        os.utime(output, ns=(before - 10**9, before - 10**9))
        generate(root, output)
        check(output.stat().st_mtime_ns == before - 10**9, "an unchanged revision rewrote the header")
        print(f"git revision: {expected} from this checkout, none without .git")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--source-dir", type=pathlib.Path, required=True)
    parser.add_argument("--cmake-version", required=True, help="PROJECT_VERSION")
    parser.add_argument("--cmake", required=True, help="CMAKE_COMMAND, to run parley_git_revision.cmake")
    parser.add_argument("--tools", default="", help="parley-tools, when it is built")
    args = parser.parse_args()
    root = args.source_dir.resolve()

    # The source of truth. Any version literal left in it must be the same.
    version_hpp = (root / "include/parley/version.hpp").read_text(encoding="utf-8")
    version = header_version(version_hpp, "include/parley/version.hpp")
    for literal in re.findall(rf'"({VERSION})"', version_hpp):
        check(literal == version, f"version.hpp holds the literal {literal}, but its macros say {version}")
    print(f"include/parley/version.hpp: {version}")

    check(args.cmake_version == version, f"CMake's PROJECT_VERSION is {args.cmake_version}")

    recipe = load_recipe(root)
    recipe.set_version()
    check(recipe.version == version, f"conanfile.py's set_version gives {recipe.version}")

    marketplace = json.loads((root / ".claude-plugin/marketplace.json").read_text(encoding="utf-8"))
    check(marketplace.get("metadata", {}).get("version") == version,
          f".claude-plugin/marketplace.json: metadata.version is {marketplace.get('metadata', {}).get('version')}")
    for plugin in marketplace.get("plugins", []):
        check(plugin.get("version") == version,
              f".claude-plugin/marketplace.json: plugin {plugin.get('name')} has version {plugin.get('version')}")

    single = (root / "single_include/parley/parley.hpp").read_text(encoding="utf-8")
    check(single.startswith(f"// parley {version}:"),
          f"the single header's opening line is {single.splitlines()[0]!r}, not 'parley {version}: ...'")
    check(header_version(single, "the single header") == version, "the single header's macros disagree")

    if args.tools:
        shown = subprocess.run([args.tools, "--version"], check=True, capture_output=True, text=True).stdout
        check(re.fullmatch(rf"parley-tools {re.escape(version)}( \([0-9a-f]{{4,40}}\))?\n", shown),
              f"parley-tools --version printed {shown!r}")
        print(f"parley-tools --version: {shown.strip()}")
    else:
        print("parley-tools is not built: its --version is not checked")

    changelog = (root / "CHANGELOG.md").read_text(encoding="utf-8")
    check(re.search(rf"^## \[{re.escape(version)}\]", changelog, re.M),
          f"CHANGELOG.md has no '## [{version}]' section")

    for doc in [root / "README.md", *sorted((root / "docs").glob("*.md"))]:
        text = doc.read_text(encoding="utf-8")
        for pattern in DOC_PATTERNS:
            for match in re.finditer(pattern, text):
                line = text.count("\n", 0, match.start()) + 1
                check(match.group(1) == version,
                      f"{doc.relative_to(root)}:{line}: {match.group(0)!r} names version {match.group(1)}")

    check_git_revision(root, args.cmake)

    if errors:
        sys.exit(f"check_version: {len(errors)} place(s) disagree with version.hpp's {version}")
    print(f"every statement of the version says {version}")


if __name__ == "__main__":
    main()
