#!/usr/bin/env python3
"""Generates single_include/parley/parley.hpp from include/parley/parley.hpp.

Every include of one of parley's own headers (`#include "x.hpp"` next to the
including file, or `#include <parley/x.hpp>`) is replaced by that header's text
the first time it is reached, depth first, so each header lands after the headers
it depends on and exactly once; their `#pragma once` lines are dropped. Includes
of anything else (the standard library, nlohmann/json, tl/expected) are kept.
The file opens with the version (from include/parley/version.hpp) and the whole of
LICENSE, so a copy of the one file carries its licence with it.
Every header under include/parley must be reached, so the single header is the
whole core.

    python3 scripts/amalgamate.py           # regenerate the committed file
    python3 scripts/amalgamate.py --check   # exit 1 if it is stale (CI)

Standard library only, and deterministic: same input, same bytes.
"""

import argparse
import difflib
import pathlib
import re
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
INCLUDE_DIR = ROOT / "include"
ENTRY = INCLUDE_DIR / "parley" / "parley.hpp"
OUTPUT = ROOT / "single_include" / "parley" / "parley.hpp"

LICENSE = ROOT / "LICENSE"
VERSION_HEADER = INCLUDE_DIR / "parley" / "version.hpp"

GENERATED_NOTE = (
    "// GENERATED FILE - DO NOT EDIT. Made by scripts/amalgamate.py from include/parley;\n"
    "// change the headers there and run `python3 scripts/amalgamate.py` to regenerate.\n"
)

INCLUDE_RE = re.compile(r'^\s*#\s*include\s*(?:"(?P<quoted>[^"]+)"|<(?P<angled>[^>]+)>)')
PRAGMA_ONCE_RE = re.compile(r"^\s*#\s*pragma\s+once\b")
CONDITIONAL_RE = re.compile(r"^\s*#\s*(if|ifdef|ifndef)\b")
CONDITIONAL_END_RE = re.compile(r"^\s*#\s*endif\b")


class AmalgamationError(Exception):
    pass


def version():
    """The version include/parley/version.hpp states, the one source of truth."""
    text = VERSION_HEADER.read_text(encoding="utf-8")
    parts = []
    for part in ("MAJOR", "MINOR", "PATCH"):
        match = re.search(rf"^#define PARLEY_VERSION_{part} +(\d+)$", text, re.M)
        if not match:
            raise AmalgamationError(f"version.hpp: no PARLEY_VERSION_{part}")
        parts.append(match.group(1))
    return ".".join(parts)


def banner():
    """The opening comment: what the file is, its version and its licence in full, because
    a single header is copied on its own and MIT asks the notice to travel with every copy."""
    notice = "".join(f"// {line}".rstrip() + "\n" for line in LICENSE.read_text(encoding="utf-8").splitlines())
    return (f"// parley {version()}: the header-only, sans-I/O core in one file.\n"
            "// SPDX-License-Identifier: MIT\n"
            "//\n"
            f"{notice}"
            "//\n"
            f"{GENERATED_NOTE}")


def own_header(line, including_file):
    """The parley header an include line names, or None when it names something else."""
    match = INCLUDE_RE.match(line)
    if not match:
        return None
    if match.group("quoted") is not None:
        candidate = (including_file.parent / match.group("quoted")).resolve()
        if not candidate.is_file():
            # A quoted include is always one of ours; one that resolves nowhere is a bug, not a system header.
            raise AmalgamationError(f"{including_file.relative_to(ROOT)}: cannot find {match.group('quoted')}")
        return candidate
    angled = match.group("angled")
    if angled.startswith("parley/"):
        candidate = (INCLUDE_DIR / angled).resolve()
        if not candidate.is_file():
            raise AmalgamationError(f"{including_file.relative_to(ROOT)}: cannot find <{angled}>")
        return candidate
    return None


def amalgamate():
    """Returns the single header's text."""
    emitted = set()
    out = [banner(), "#pragma once\n"]

    def inline(path, stack):
        if path in stack:
            chain = " -> ".join(p.name for p in stack + [path])
            raise AmalgamationError(f"include cycle: {chain}")
        emitted.add(path)
        name = path.relative_to(INCLUDE_DIR).as_posix()
        out.append(f"\n// ----- begin {name} -----\n")
        depth = 0  # preprocessor conditionals open at this point of the file
        for line in path.read_text(encoding="utf-8").splitlines(keepends=True):
            if not line.endswith("\n"):
                line += "\n"
            if PRAGMA_ONCE_RE.match(line):
                continue
            if CONDITIONAL_RE.match(line):
                depth += 1
            elif CONDITIONAL_END_RE.match(line):
                depth -= 1
            target = own_header(line, path)
            if target is None:
                out.append(line)
                continue
            if depth > 0:
                # Inlining once under a condition would lose the header when the condition is false.
                raise AmalgamationError(f"{name}: conditional include of {target.name} is not supported")
            if target not in emitted:
                inline(target, stack + [path])
        out.append(f"// ----- end {name} -----\n")

    inline(ENTRY.resolve(), [])
    # The single header is the whole core: a header parley.hpp does not reach would be missing
    # from it, and the test suite, built against the single header too, could not include it.
    unreached = sorted(h.relative_to(ROOT).as_posix() for h in (INCLUDE_DIR / "parley").rglob("*.hpp")
                       if h.resolve() not in emitted)
    if unreached:
        raise AmalgamationError(f"not reached from {ENTRY.relative_to(ROOT)} (add them to it): {', '.join(unreached)}")
    return "".join(out)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true",
                        help="compare the committed file with a fresh generation; exit 1 if they differ")
    parser.add_argument("--output", type=pathlib.Path, default=OUTPUT,
                        help=f"where to write (default {OUTPUT.relative_to(ROOT)})")
    args = parser.parse_args()

    try:
        text = amalgamate()
    except AmalgamationError as e:
        print(f"amalgamate.py: {e}", file=sys.stderr)
        return 2

    if args.check:
        current = args.output.read_text(encoding="utf-8") if args.output.is_file() else ""
        if current == text:
            print(f"{args.output} is up to date")
            return 0
        diff = difflib.unified_diff(current.splitlines(keepends=True), text.splitlines(keepends=True),
                                    "committed", "regenerated", n=1)
        sys.stderr.writelines(list(diff)[:60])
        print(f"\n{args.output} is stale: run `python3 scripts/amalgamate.py` and commit the result",
              file=sys.stderr)
        return 1

    args.output.parent.mkdir(parents=True, exist_ok=True)
    # newline="\n": the same bytes on every platform, so --check never trips on line endings.
    with open(args.output, "w", encoding="utf-8", newline="\n") as f:
        f.write(text)
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
