#!/usr/bin/env bash
# Build and run the normkit benchmarks, then write bench/results/report.md and
# bench/results/ratios_<size>MiB.png. Full run (4 and 256 MiB): the forward
# passes took about 12 min here; the backward passes add about as many
# benchmarks again, and at 256 MiB the dgamma check of layer_norm and rms_norm
# runs the long-double reference over the whole tensor (about 7 s per float
# shape, 2 min per invocation of normkit_bench).
#
#   bench/run.sh
#
# runs exactly (from the repository root):
#   cmake --preset native -DNORMKIT_BUILD_BENCH=ON
#   cmake --build --preset native --target normkit_bench
#   OMP_NUM_THREADS=1 taskset -c 0 build/native/bench/normkit_bench \
#       --impls=normkit,normkit_saved,eigen_naive,onednn,torch,floor_scale,floor_memcpy,bound_two_pass,bound_exp,floor_axpby \
#       --sizes=4,256 --passes=forward,backward --benchmark_min_time=0.2 --benchmark_repetitions=1 \
#       --benchmark_out=bench/results/single.json --benchmark_out_format=json
#   build/native/bench/normkit_bench --impls=normkit_mt,floor_scale,floor_memcpy,floor_scale_mt,floor_axpby \
#       --sizes=4,256 --passes=forward,backward --benchmark_min_time=0.2 --benchmark_repetitions=1 \
#       --benchmark_out=bench/results/threads.json --benchmark_out_format=json
#   /usr/bin/python3 bench/report.py bench/results/single.json bench/results/threads.json -o bench/results
#
# Environment overrides: BENCH_SIZES (MiB, default 4,256), BENCH_MIN_TIME (0.2),
# BENCH_FILTER (a --benchmark_filter regex, default all), BENCH_PASSES (forward,
# backward or both, the default), BENCH_BIN (use this binary, skip the build),
# BENCH_OUT (output directory, default bench/results).
# Example, a quick check: BENCH_SIZES=4 BENCH_MIN_TIME=0.05 bench/run.sh
# The backward passes only: BENCH_PASSES=backward bench/run.sh
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

sizes=${BENCH_SIZES:-4,256}
min_time=${BENCH_MIN_TIME:-0.2}
filter=${BENCH_FILTER:-.}
passes=${BENCH_PASSES:-forward,backward}
out=${BENCH_OUT:-bench/results}
bin=${BENCH_BIN:-}

if [[ -z $bin ]]; then
  cmake --preset native -DNORMKIT_BUILD_BENCH=ON
  cmake --build --preset native --target normkit_bench
  bin=build/native/bench/normkit_bench
fi
mkdir -p "$out"
common=(--sizes="$sizes" --passes="$passes" --benchmark_filter="$filter" --benchmark_min_time="$min_time"
        --benchmark_repetitions=1 --benchmark_out_format=json)

# Single-threaded implementations and the floors on one core; OMP_NUM_THREADS
# keeps oneDNN's OpenMP runtime at one thread too (torch is set to 1 in code).
OMP_NUM_THREADS=1 taskset -c 0 "$bin" \
  --impls=normkit,normkit_saved,eigen_naive,onednn,torch,floor_scale,floor_memcpy,bound_two_pass,bound_exp,floor_axpby \
  "${common[@]}" --benchmark_out="$out/single.json"
# normkit_mt (2 threads) unpinned, with its own floors so its ratios come from the same run.
"$bin" --impls=normkit_mt,floor_scale,floor_memcpy,floor_scale_mt,floor_axpby "${common[@]}" \
  --benchmark_out="$out/threads.json"

/usr/bin/python3 bench/report.py "$out/single.json" "$out/threads.json" -o "$out"
