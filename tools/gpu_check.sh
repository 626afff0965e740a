#!/usr/bin/env bash
# gpu_check.sh [OUTDIR] - everything issue 5 needs a GPU for, in one run:
# the CUDA build, make test-cuda (every op GPU vs CPU, refcheck --cuda on
# every fixture), a profile of one training step of the small model, make
# bench-cuda (issue 5's table) and the small model with the unfused
# attention for comparison. Logs go to OUTDIR (default $OUT, or
# gpu-out). Each stage has a time limit, so a slow stage cannot eat the
# others' time; the exit status is that of test-cuda.
set -u
cd "$(dirname "$0")/.."
out=${1:-${OUT:-gpu-out}}
mkdir -p "$out"
nvidia-smi > "$out/nvidia-smi.txt" 2>&1
stage() { # stage NAME SECONDS CMD...
    local name=$1 limit=$2; shift 2
    local start=$SECONDS
    timeout "$limit" "$@" > "$out/$name.log" 2>&1
    local rc=$?
    printf '%-12s exit %3d  %4ds  %s\n' "$name" $rc $((SECONDS - start)) "$(tail -n 1 "$out/$name.log")"
    return $rc
}
stage build 300 make cuda || exit 1
stage test-cuda 300 make test-cuda
rc=$?
if command -v nsys > /dev/null; then
    stage profile 180 nsys profile -o "$out/step" --force-overwrite true --stats=true \
        ./build/bench_cuda --model AuroraSmallPretrained --reps 1 --warmup 1
fi
stage bench 600 ./build/bench_cuda
stage bench-unfused 300 ./build/bench_cuda --model AuroraSmallPretrained --unfused
exit $rc
