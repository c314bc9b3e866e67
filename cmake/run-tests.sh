#!/usr/bin/env bash
# Configure, build and test normkit with CMake presets.
# Usage: cmake/run-tests.sh [preset...]   (default: native asan-baseline)
# The default pair covers both compilers, both SIMD widths and the sanitizers
# in two builds: native (g++ -O2, -march=native: every test, the thread and
# packaging tests, the benchmark's smoke test) and asan-baseline (clang -O1,
# ASan + UBSan, -Werror, plain x86-64: the SSE2 and scalar paths). baseline
# (g++ -O2 SSE2, -Werror) and asan-native run when named.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
source cmake/install-deps.sh

presets=("$@")
((${#presets[@]})) || presets=(native asan-baseline)

normkit_install_deps

declare -A result
failed=0
for preset in "${presets[@]}"; do
  echo
  echo "======== preset: $preset ========"
  start=$SECONDS
  if cmake --preset "$preset" -DNORMKIT_BENCH_PEERS=OFF &&
     cmake --build --preset "$preset" --parallel 2 &&
     ctest --preset "$preset"; then
    result[$preset]="PASS"
  else
    result[$preset]="FAIL"
    failed=1
  fi
  result[$preset]+=" ($((SECONDS - start)) s)"
done

echo
echo "======== summary ========"
for preset in "${presets[@]}"; do
  printf '  %-16s %s\n' "$preset" "${result[$preset]}"
done
echo "  total            $SECONDS s"
exit "$failed"
