#!/usr/bin/env bash
# The whole test suite from a fresh Debian 12 machine: dependencies, a sanitized build of everything,
# ctest, the single-header check, and a short libFuzzer run of every fuzz target.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh
# Test-only node clients (ws, the MCP SDK), pinned by the committed lock file.
[ ! -f tests/node/package-lock.json ] || npm ci --prefix tests/node --no-audit --no-fund --loglevel=error

jobs=$(nproc)
build=${PARLEY_BUILD_DIR:-build/test}

# The generated single header must be what the generator makes of include/parley today.
python3 scripts/amalgamate.py --check

cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Debug -DPARLEY_SANITIZE=ON -DPARLEY_WERROR=ON -DPARLEY_BUILD_BENCH=OFF
cmake --build "$build" -j"$jobs"
ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
  ctest --test-dir "$build" --output-on-failure -j"$jobs" --timeout 600

# libFuzzer: every target runs briefly from its committed corpus (PARLEY_FUZZ_SECONDS each).
fuzz_build=${build}-fuzz
CXX=clang++ cmake -S . -B "$fuzz_build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DPARLEY_LIBFUZZER=ON -DPARLEY_WERROR=ON \
  -DPARLEY_BUILD_TESTS=OFF -DPARLEY_BUILD_TOOLS=OFF -DPARLEY_BUILD_BENCH=OFF -DPARLEY_INSTALL=OFF
cmake --build "$fuzz_build" -j"$jobs"
seconds=${PARLEY_FUZZ_SECONDS:-30}
for target in "$fuzz_build"/fuzz/*_fuzz; do
  name=$(basename "$target" _fuzz)
  work=$(mktemp -d)
  cp -r fuzz/corpus/"$name"/. "$work"/
  echo "fuzzing $name for ${seconds}s"
  "$target" -max_total_time="$seconds" -print_final_stats=1 "$work" 2>&1 | tail -n 3
  rm -rf "$work"
done
echo "all tests passed"
