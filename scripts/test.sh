#!/usr/bin/env bash
# The whole test suite from a fresh Debian 12 machine, and exactly what CI (.ci/run) runs:
# dependencies, the single-header check, then every build configuration a user is likely to try,
# each with warnings as errors -- a sanitized GCC Debug build, a GCC Release build and a clang
# build, each tested with ctest -- and a short libFuzzer run of every fuzz target.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh
# Test-only node clients (ws, the MCP SDK), pinned by the committed lock file.
[ ! -f tests/node/package-lock.json ] || npm ci --prefix tests/node --no-audit --no-fund --loglevel=error

jobs=$(nproc)
build=${PARLEY_BUILD_DIR:-build/test}
# What each step took, so CI's budget can be watched.
step_started=$SECONDS
step_done() {
  echo "== $1: $((SECONDS - step_started)) s"
  step_started=$SECONDS
}

# The generated single header must be what the generator makes of include/parley today.
python3 scripts/amalgamate.py --check

cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Debug -DPARLEY_SANITIZE=ON -DPARLEY_WERROR=ON -DPARLEY_BUILD_BENCH=OFF
cmake --build "$build" -j"$jobs"
ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
  ctest --test-dir "$build" --output-on-failure -j"$jobs" --timeout 600
step_done "Debug, ASan+UBSan (GCC): build and ctest"

# Release with GCC: what `cmake -DCMAKE_BUILD_TYPE=Release` gives a user (tests, tools, fuzz replay
# and benchmarks all on). GCC's -O3 warnings appear only here. The whole ctest, node suites included.
release_build=${build}-release
cmake -S . -B "$release_build" -DCMAKE_BUILD_TYPE=Release -DPARLEY_WERROR=ON
cmake --build "$release_build" -j"$jobs"
ctest --test-dir "$release_build" --output-on-failure -j"$jobs" --timeout 600
step_done "Release (GCC): build and ctest"

# clang (with libstdc++): every target builds, and every C++ test passes. The node suites (node_*)
# are left out here: they already ran against both GCC builds, and a third run would cost minutes
# for little; the C++ integration test against the clang-built server still runs.
clang_build=${build}-clang
CXX=clang++ cmake -S . -B "$clang_build" -DCMAKE_BUILD_TYPE=Debug -DPARLEY_WERROR=ON
cmake --build "$clang_build" -j"$jobs"
ctest --test-dir "$clang_build" --output-on-failure -j"$jobs" --timeout 600 --exclude-regex '^node_'
step_done "Debug (clang): build and ctest without the node suites"

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
step_done "libFuzzer (clang): build and ${seconds} s per target"
echo "all tests passed"
