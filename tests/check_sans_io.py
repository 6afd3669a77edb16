#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""The core is sans-I/O: nothing under include/parley may read a clock, draw from a global RNG,
open a file or a socket, or start a thread. Fails naming each offending line."""
import pathlib
import re
import sys

FORBIDDEN = {
    r"\bsystem_clock::now\b|\bsteady_clock::now\b|\bhigh_resolution_clock::now\b": "reads a clock",
    r"\btime\s*\(\s*(nullptr|NULL|0)?\s*\)|\bclock_gettime\b|\bgettimeofday\b": "reads a clock",
    r"\brandom_device\b|\bstd::rand\b|\b(s)?rand\s*\(|\bgetrandom\b|/dev/u?random": "draws from a global RNG",
    r"\bfopen\b|\bifstream\b|\bofstream\b|\bfstream\b|::open\s*\(|<fstream>|<filesystem>|<fcntl\.h>|<unistd\.h>": "touches a file",
    r"::socket\s*\(|::connect\s*\(|::accept\s*\(|<sys/socket\.h>|<netinet/|<arpa/inet\.h>|\basio\b": "touches a socket",
    r"\bstd::thread\b|\bstd::async\b|<thread>|\bpthread_": "starts a thread",
    r"\bgetenv\b|\bstd::cout\b|\bstd::cerr\b|\bprintf\s*\(": "does I/O of its own",
}


def main(root: str) -> int:
    failures = []
    files = sorted(pathlib.Path(root).rglob("*.hpp"))
    if not files:
        print(f"no headers under {root}")
        return 1
    for path in files:
        for number, line in enumerate(path.read_text().splitlines(), 1):
            code = line.split("//", 1)[0]
            for pattern, why in FORBIDDEN.items():
                if re.search(pattern, code):
                    failures.append(f"{path}:{number}: {why}: {line.strip()}")
    for f in failures:
        print(f)
    print(f"checked {len(files)} headers: {len(failures)} violations")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
