#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Every source file under include/, tools/, tests/, fuzz/, bench/ and web/ opens with
`SPDX-License-Identifier: MIT` in its language's comment, so a file copied out of parley
still says how it is licensed. A file of a kind this script does not know fails too: say
how that kind is commented (COMMENTS) or why it cannot carry the line (EXEMPT).

Usage: check_spdx.py SOURCE_DIR
"""

import os
import pathlib
import subprocess
import sys

DIRS = ("include", "tools", "tests", "fuzz", "bench", "web")
SPDX = "SPDX-License-Identifier: MIT"

# File kind (suffix, or whole name) -> the line it must carry.
COMMENTS = {
    **dict.fromkeys((".hpp", ".cpp", ".h", ".cc", ".c", ".js", ".mjs", ".cjs", ".ts"), f"// {SPDX}"),
    **dict.fromkeys((".py", ".cmake", "CMakeLists.txt", ".sh"), f"# {SPDX}"),
    ".css": f"/* {SPDX} */",
    **dict.fromkeys((".html", ".svg"), f"<!-- {SPDX} -->"),
}
# Kinds that are not source or cannot hold a comment; the licence covers them all the same.
EXEMPT = {
    ".json": "JSON has no comments",
    ".md": "documentation, not source",
    ".gitignore": "tool configuration, not source",
}
# Fuzzer inputs (seed corpora and the committed crash regressions) are bytes; a comment
# would change what they test.
EXEMPT_DIRS = ("fuzz/corpus/", "fuzz/regressions/")
# What may come before the SPDX line: an interpreter line, an HTML doctype.
PREAMBLES = ("#!", "<!DOCTYPE", "<!doctype")


def source_files(root):
    """The files under DIRS that belong to the project: git's view (tracked, plus new files
    not ignored) in a checkout, a walk that skips node_modules in a tarball."""
    if (root / ".git").exists():
        try:
            listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard", "--", *DIRS],
                                    cwd=root, check=True, capture_output=True).stdout
            return sorted({p for p in listed.decode().split("\0") if p and (root / p).is_file()})
        except (OSError, subprocess.CalledProcessError) as e:
            print(f"git cannot list the files ({e}); walking the tree instead")
    found = []
    for top in DIRS:
        for dirpath, dirnames, filenames in os.walk(root / top):
            dirnames[:] = [d for d in dirnames if d not in ("node_modules", "__pycache__", "corpus-run")]
            found += [(pathlib.Path(dirpath) / f).relative_to(root).as_posix() for f in filenames]
    return sorted(found)


def kind(path):
    name = pathlib.PurePosixPath(path).name
    return name if name in COMMENTS or name in EXEMPT else pathlib.PurePosixPath(path).suffix


def main():
    root = pathlib.Path(sys.argv[1]).resolve()
    problems, checked, exempt = [], 0, 0
    for path in source_files(root):
        k = kind(path)
        if path.startswith(EXEMPT_DIRS) or k in EXEMPT:
            exempt += 1
            continue
        if k not in COMMENTS:
            problems.append(f"{path}: unknown kind of file; add its comment style to COMMENTS in "
                            f"tests/package/check_spdx.py, or to EXEMPT with the reason it has no SPDX line")
            continue
        with open(root / path, encoding="utf-8", errors="replace") as f:
            head = [f.readline().rstrip("\r\n") for _ in range(2)]
        line = head[1] if head[0].startswith(PREAMBLES) else head[0]
        checked += 1
        if line != COMMENTS[k]:
            problems.append(f"{path}: must open with `{COMMENTS[k]}` (after a #! or <!DOCTYPE line, if any), not {line!r}")

    for problem in problems:
        print(f"FAIL: {problem}", file=sys.stderr)
    if problems:
        sys.exit(f"check_spdx: {len(problems)} file(s) without their SPDX line")
    present = [d for d in DIRS if (root / d).is_dir()]
    print(f"{checked} source files under {', '.join(present)} open with their SPDX line "
          f"({exempt} exempt: JSON, Markdown, .gitignore, fuzz corpora)")


if __name__ == "__main__":
    main()
