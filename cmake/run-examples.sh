#!/usr/bin/env bash
# Build the example programs (targets example_*) with the baseline preset and run each one.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
source cmake/install-deps.sh

normkit_install_deps

build=build/baseline
cmake --preset baseline -DNORMKIT_BUILD_EXAMPLES=ON

# Build only the examples, not the (slow) unit tests that share this build tree.
mapfile -t targets < <(cmake --build "$build" --target help | grep -o '\bexample_[A-Za-z0-9_]*' | sort -u)
if ((${#targets[@]} == 0)); then
  echo "error: no example_* targets found in $build" >&2
  exit 1
fi
for target in "${targets[@]}"; do
  echo "== building $target"
  cmake --build "$build" --parallel 2 --target "$target"
done

failed=()
ran=0
while IFS= read -r exe; do
  echo
  echo "======== $(basename "$exe") ========"
  ran=$((ran + 1))
  "$exe" </dev/null || { echo "!! $(basename "$exe") exited with status $?"; failed+=("$(basename "$exe")"); }
done < <(find "$build/examples" -maxdepth 2 -path '*/CMakeFiles' -prune -o -type f -executable -print | sort)

echo
if ((ran == 0)); then
  echo "error: no example binaries found in $build/examples" >&2
  exit 1
fi
if ((${#failed[@]})); then
  echo "FAILED examples (${#failed[@]} of $ran): ${failed[*]}"
  exit 1
fi
echo "all $ran examples ran successfully"
