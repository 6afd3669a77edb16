#!/usr/bin/env bash
# Builds parley-tools (release) and starts the server on 127.0.0.1:7539 with its SQLite database
# in ~/.local/share/parley/. Extra arguments go to `parley-tools server` (see --help).
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh
cmake -S . -B build/release -DCMAKE_BUILD_TYPE=Release -DPARLEY_BUILD_TESTS=OFF -DPARLEY_BUILD_FUZZ=OFF \
  -DPARLEY_BUILD_BENCH=OFF >/dev/null
cmake --build build/release -j"$(nproc)" --target parley-tools
exec build/release/tools/parley-tools server "$@"
