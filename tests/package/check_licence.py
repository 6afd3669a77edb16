#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Checks that parley declares its MIT licence everywhere a user or a packager looks in the
source tree: LICENSE itself, the Debian copyright file, the single header's opening
comment, the CMake package config and the node test package. The built artifacts are
checked where they are made (check_debs.py for the .debs, check_conan_recipe.py for
Conan, check_plugin.py for the Claude Code plugin); they reuse the checks below.

Usage: check_licence.py SOURCE_DIR
"""

import json
import pathlib
import re
import sys

COPYRIGHT_HOLDER = "the parley authors"
# Sentences of the MIT licence a truncated or edited copy would lose.
MIT_SENTENCES = (
    "Permission is hereby granted, free of charge, to any person obtaining a copy",
    "The above copyright notice and this permission notice shall be included in all",
    'THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR',
)
DEP5_FORMAT = "https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/"


def licence_errors(text):
    """What is wrong with LICENSE's text, as a list of sentences."""
    errors = []
    lines = text.splitlines()
    if not lines or lines[0] != "MIT License":
        errors.append("LICENSE does not open with 'MIT License'")
    if not re.search(rf"^Copyright \(c\) \d{{4}}(-\d{{4}})? {re.escape(COPYRIGHT_HOLDER)}$", text, re.M):
        errors.append(f"LICENSE has no 'Copyright (c) <year> {COPYRIGHT_HOLDER}' line")
    errors += [f"LICENSE lacks {s!r}" for s in MIT_SENTENCES if s not in text]
    return errors


def permission_notice(licence_text):
    """LICENSE without its title and copyright line: the paragraphs a copyright file repeats."""
    paragraphs = licence_text.strip().split("\n\n")
    return "\n\n".join(p for p in paragraphs if p != "MIT License" and not p.startswith("Copyright"))


def debian_copyright_errors(text, licence_text, where="copyright"):
    """Checks a copyright file in Debian's machine-readable format (DEP-5) declares MIT for
    every file, with the same notice as LICENSE."""
    errors = []
    paragraphs = [p for p in re.split(r"\n\s*\n", text.strip()) if p.strip()]
    header = paragraphs[0] if paragraphs else ""
    if f"Format: {DEP5_FORMAT}" not in header.splitlines():
        errors.append(f"{where}: the header paragraph lacks 'Format: {DEP5_FORMAT}'")
    if "Upstream-Name: parley" not in header.splitlines():
        errors.append(f"{where}: the header paragraph lacks 'Upstream-Name: parley'")
    files = [p for p in paragraphs if p.startswith("Files:")]
    everything = next((p for p in files if p.splitlines()[0].split(":", 1)[1].split() == ["*"]), None)
    if everything is None:
        errors.append(f"{where}: no 'Files: *' paragraph")
    else:
        fields = dict(line.split(":", 1) for line in everything.splitlines() if not line.startswith(" "))
        if fields.get("License", "").strip() != "MIT":
            errors.append(f"{where}: 'Files: *' is licensed {fields.get('License', '').strip()!r}, not MIT")
        if COPYRIGHT_HOLDER not in fields.get("Copyright", ""):
            errors.append(f"{where}: 'Files: *' does not name {COPYRIGHT_HOLDER} as copyright holder")
    standalone = next((p for p in paragraphs if p.splitlines()[0] == "License: MIT"), None)
    if standalone is None:
        errors.append(f"{where}: no stand-alone 'License: MIT' paragraph with the licence text")
    else:
        # DEP-5 continuation lines start with one space, and " ." stands for an empty line.
        body = "\n".join("" if line == " ." else line[1:] for line in standalone.splitlines()[1:])
        if body.strip() != permission_notice(licence_text):
            errors.append(f"{where}: the 'License: MIT' text differs from LICENSE")
    return errors


def single_header_errors(text, licence_text, version=None, where="single header"):
    """The generated single header must state its licence (SPDX and the whole notice) and,
    when given, its version, in the comment before its first line of code."""
    opening = []
    for line in text.splitlines():
        if not line.startswith("//"):
            break
        opening.append(line[3:] if line.startswith("// ") else line[2:])
    comment = "\n".join(opening)
    errors = []
    if "SPDX-License-Identifier: MIT" not in comment:
        errors.append(f"{where}: the opening comment has no 'SPDX-License-Identifier: MIT'")
    if licence_text.strip() not in comment:
        errors.append(f"{where}: the opening comment does not carry LICENSE in full")
    if version is not None and not (opening and opening[0].startswith(f"parley {version}:")):
        errors.append(f"{where}: the opening line does not state version {version}: {opening[:1]}")
    return errors


def main():
    root = pathlib.Path(sys.argv[1]).resolve()
    licence_text = (root / "LICENSE").read_text(encoding="utf-8") if (root / "LICENSE").is_file() else ""
    errors = licence_errors(licence_text) if licence_text else ["there is no LICENSE file"]

    errors += debian_copyright_errors((root / "packaging/debian/copyright").read_text(encoding="utf-8"),
                                      licence_text, "packaging/debian/copyright")
    errors += single_header_errors((root / "single_include/parley/parley.hpp").read_text(encoding="utf-8"),
                                   licence_text, where="single_include/parley/parley.hpp")

    config = (root / "cmake/parley-config.cmake.in").read_text(encoding="utf-8")
    if not config.startswith("# SPDX-License-Identifier: MIT\n"):
        errors.append("cmake/parley-config.cmake.in does not open with '# SPDX-License-Identifier: MIT'")
    if 'set(parley_SPDX_LICENSE "MIT")' not in config:
        errors.append("cmake/parley-config.cmake.in does not set parley_SPDX_LICENSE to MIT")

    node = json.loads((root / "tests/node/package.json").read_text(encoding="utf-8"))
    if node.get("license") != "MIT":
        errors.append(f"tests/node/package.json: license is {node.get('license')!r}, not 'MIT'")
    lock = json.loads((root / "tests/node/package-lock.json").read_text(encoding="utf-8"))
    if lock.get("packages", {}).get("", {}).get("license") != "MIT":
        errors.append("tests/node/package-lock.json: the root package's license is not 'MIT', as in package.json")

    for error in errors:
        print(f"FAIL: {error}", file=sys.stderr)
    if errors:
        sys.exit(f"check_licence: {len(errors)} problem(s)")
    print("MIT declared in LICENSE, packaging/debian/copyright, the single header, "
          "the CMake package config and tests/node")


if __name__ == "__main__":
    main()
