#!/usr/bin/env bash
# run.sh [all|asan|cuda] - runs every CPU test program (plain and under
# ASan+UBSan), every fixture case, and the CUDA paths emulated on the CPU;
# the thread test under TSan, the kill -9 test and brief fuzzing of the
# untrusted-input readers; adds up their "N passed, N failed" lines and ends with the total in the
# same form. Exit status 1 if anything failed. "cuda" runs the GPU build
# instead (make test-cuda, on a machine with a GPU): every op against the
# CPU and every fixture case on the GPU.
set -u
cd "$(dirname "$0")/.."
mode=${1:-all}
tests="test_grad test_ops test_autograd test_safetensors test_model test_optim test_aurora test_train test_surya test_surya_train test_threads"
asan_only_tests="test_sdo test_ckpt test_weather test_forecast" # the file readers: built and run under ASan+UBSan only (Makefile)
passed=0 failed=0
export LSAN_OPTIONS=suppressions=$PWD/tests/lsan.supp ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 TSAN_OPTIONS=halt_on_error=1

# count LINE: adds "N passed, M failed" or "refcheck: N checked, M failed"
count() {
    local line=$1 p=0 f=1
    if [[ $line =~ ^([0-9]+)\ passed,\ ([0-9]+)\ failed$ ]]; then p=${BASH_REMATCH[1]} f=${BASH_REMATCH[2]};
    elif [[ $line =~ ^refcheck:\ ([0-9]+)\ checked,\ ([0-9]+)\ failed$ ]]; then f=${BASH_REMATCH[2]} p=$((BASH_REMATCH[1] - f)); fi
    passed=$((passed + p)) failed=$((failed + f))
}

# run NAME CMD...: runs a program, keeps its log, counts its last line (a crash counts as a failure)
run() {
    local name=$1; shift
    local log="build/logs/${name//[\/ ]/_}.log"
    mkdir -p build/logs
    local start=$SECONDS
    "$@" >"$log" 2>&1
    local rc=$? last
    last=$(tail -n 1 "$log")
    count "$last"
    if [ $rc -ne 0 ] && ! grep -qE '^[0-9]+ passed, [1-9][0-9]* failed$|failed$' <<<"$last"; then failed=$((failed + 1)); last="exit status $rc: $last"; fi
    [ $rc -ne 0 ] && grep -E 'FAIL|ERROR|runtime error' "$log" | head -n 20
    printf '%-48s %-34s %3ds\n' "$name" "$last" $((SECONDS - start))
}

cases="tests/fixtures/optim tests/fixtures/aurora_tiny tests/fixtures/aurora_tiny_lora tests/fixtures/aurora_tiny_ext $(ls -d tests/fixtures/aurora_gen/*/ | sed 's#/$##')"
cases="$cases tests/fixtures/surya_tiny $(ls -d tests/fixtures/surya_heads/*/ tests/fixtures/surya_gen/*/ | sed 's#/$##')"
if [ "$mode" = cuda ]; then
    run "test_cuda" build/test_cuda
    for c in $cases; do run "refcheck --cuda ${c#tests/fixtures/}" build/refcheck_cuda --cuda "$c"; done
    run "refcheck --cuda --checkpoint lora_from_second" build/refcheck_cuda --cuda --checkpoint tests/fixtures/aurora_gen/lora_from_second
    run "refcheck --cuda --autocast aurora_tiny" build/refcheck_cuda --cuda --autocast tests/fixtures/aurora_tiny
    echo "$passed passed, $failed failed"
    [ "$failed" -eq 0 ]
    exit
fi
# the committed headers are what src/ generates (make headers)
run "headers match src/" bash tools/make_headers.sh --check
for t in $tests; do
    [ "$mode" = all ] && run "$t" "build/$t"
    run "asan/$t" "build/asan/$t"
done
for t in $asan_only_tests; do run "asan/$t" "build/asan/$t"; done
# every golden case: the shared ones and those made by tools/make_*_fixtures.py
for c in $cases; do
    [ "$mode" = all ] && run "refcheck ${c#tests/fixtures/}" build/refcheck "$c"
    run "asan/refcheck ${c#tests/fixtures/}" build/asan/refcheck "$c"
done
# the CUDA paths, emulated on the CPU (tests/cuda_emu.h): every kernel against the CPU ops
# every golden case again through the CUDA paths (the model, its gradients and the optimisers "on the GPU")
if [ "$mode" = all ]; then
    run "test_cuda (emulated GPU)" build/test_cuda_emu
    run "test_train device cuda (emulated GPU)" build/test_train_cuda_emu
    for c in $cases; do run "refcheck --cuda ${c#tests/fixtures/} (emulated)" build/refcheck_cuda_emu --cuda "$c"; done
    run "refcheck --cuda --checkpoint lora_from_second (emulated)" build/refcheck_cuda_emu --cuda --checkpoint tests/fixtures/aurora_gen/lora_from_second
    run "refcheck --cuda --checkpoint flare_class_token (emulated)" build/refcheck_cuda_emu --cuda --checkpoint tests/fixtures/surya_heads/flare_class_token
    run "refcheck --cuda --autocast aurora_tiny (emulated)" build/refcheck_cuda_emu --cuda --autocast tests/fixtures/aurora_tiny
    run "refcheck --autocast aurora_tiny" build/refcheck --autocast tests/fixtures/aurora_tiny
fi
# the fixture models from torch.save checkpoints (PyTorch's zip format, read without Python) against the reference
for w in "aurora_tiny aurora_tiny_net.ckpt" "surya_tiny surya_tiny.pt"; do
    set -- $w
    [ "$mode" = all ] && run "refcheck $1 --weights $2" build/refcheck --weights "tests/fixtures/torch_ckpt/$2" "tests/fixtures/$1"
    run "asan/refcheck $1 --weights $2" build/asan/refcheck --weights "tests/fixtures/torch_ckpt/$2" "tests/fixtures/$1"
done
# activation checkpointing must not change a single number
[ "$mode" = all ] && run "refcheck --checkpoint aurora_tiny_ext" build/refcheck --checkpoint tests/fixtures/aurora_tiny_ext
run "asan/refcheck --checkpoint lora_all" build/asan/refcheck --checkpoint tests/fixtures/aurora_gen/lora_all_rollout
[ "$mode" = all ] && run "refcheck --checkpoint surya_tiny" build/refcheck --checkpoint tests/fixtures/surya_tiny
run "asan/refcheck --checkpoint flare_class_token" build/asan/refcheck --checkpoint tests/fixtures/surya_heads/flare_class_token
# never crash, never lose a run (issue 13): two trainers and concurrent calls under ThreadSanitizer;
# the training tool (ASan build) killed with SIGKILL 10 times and resumed; each untrusted-input reader fuzzed briefly
run "tsan/test_threads" build/tsan/test_threads
run "test_crash (10 x kill -9 + resume, seed 13)" build/test_crash build/asan/aurora-train 13
for f in fuzz_safetensors fuzz_run_config fuzz_trainer_state fuzz_lora_config fuzz_sdo_tables fuzz_torch_pickle; do run "fuzz/$f (6 s)" bash tests/fuzz.sh "$f" 6; done
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
