#!/usr/bin/env bash
# fuzz.sh NAME SECONDS - runs the libFuzzer target build/fuzz/NAME for SECONDS
# from its committed seed corpus (tests/fuzz_corpus/<reader>/), keeping what it
# finds in build/fuzz/corpus_NAME (never in the committed corpus). Ends with
# "1 passed, 0 failed" or, with the crashing input kept as build/fuzz/crash-*,
# "0 passed, 1 failed". Replay a crash: build/fuzz/NAME build/fuzz/crash-...
set -u
cd "$(dirname "$0")/.."
name=$1 seconds=$2
seeds=tests/fuzz_corpus/${name#fuzz_}
work=build/fuzz/corpus_$name
dict=tests/fuzz_corpus/${name#fuzz_}.dict  # the reader's tokens; the JSON readers share json.dict
[ -f "$dict" ] || dict=tests/fuzz_corpus/json.dict
mkdir -p "$work"
# -timeout: one input taking over 10 s is a hang; -rss_limit_mb: memory growing without bound is a failure
# -seed=1: the same mutations every time (how many fit in SECONDS depends on the machine)
build/fuzz/"$name" "$work" "$seeds" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
    -artifact_prefix=build/fuzz/ -dict="$dict" -seed=1 2>&1 | grep -E '^(Done [0-9]+ runs|stat::peak_rss_mb|==[0-9]+==ERROR|SUMMARY|.*Test unit written)'
rc=${PIPESTATUS[0]}
echo "seed corpus: $(ls "$seeds" | wc -l) files; corpus now: $(ls "$work" | wc -l) files"
if [ "$rc" -eq 0 ]; then echo "1 passed, 0 failed"; else echo "0 passed, 1 failed"; fi
