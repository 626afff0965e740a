#!/usr/bin/env bash
# make_headers.sh [--check] [--lines] - joins the files of src/ into the four
# headers users vendor (aurora.h, surya.h, lora.h, kernels.cuh), as
# src/manifest lists them, in that order. The library is written in src/, one
# concern per file; the headers are generated and committed, so a user still
# copies four files (the way Nuklear's src/ and sqlite's amalgamation work).
#
#   (no option)  writes the headers in the repository root
#   --check      writes them to a temporary folder and compares them with the
#                ones in the root; exit status 1 and a diff summary if one
#                differs (make test runs this: a committed header must be
#                what the committed src/ generates)
#   --lines      adds #line directives, so compiler errors and debuggers point
#                into src/ (make headers LINES=1; never commit these)
#
# In each file, an #include "..." of another file in src/ at the top of the
# file is dropped (it is there for editors; the join puts everything in
# order); other includes, and any below the first other line, stay.
set -euo pipefail
cd "$(dirname "$0")/.."
check=0 lines=0
for a in "$@"; do
    case $a in
    --check) check=1 ;;
    --lines) lines=1 ;;
    *) echo "usage: $0 [--check] [--lines]" >&2; exit 2 ;;
    esac
done
manifest=src/manifest
out=.
[ $check = 1 ] && out=$(mktemp -d) && trap 'rm -rf "$out"' EXIT

# emit FILE: the file's lines, local includes dropped (with #line directives under --lines)
emit() {
    local f=src/$1
    [ -f "$f" ] || { echo "$manifest: $1: no such file in src/" >&2; exit 1; }
    awk -v path="$f" -v dir="$(dirname "$f")" -v lines=$lines '
        BEGIN { if (lines) printf "#line 1 \"%s\"\n", path }
        !body && /^[ \t]*#[ \t]*include[ \t]*"[^"]*"/ {
            inc = $0; sub(/^[^"]*"/, "", inc); sub(/".*$/, "", inc)
            if ((getline junk < (dir "/" inc)) >= 0) {   # the file exists in src/: drop the line
                close(dir "/" inc)
                dropped = 1
                if (lines) printf "#line %d \"%s\"\n", NR + 1, path
                next
            }
        }
        dropped && /^$/ { dropped = 0; if (lines) printf "#line %d \"%s\"\n", NR + 1, path; next }   # and the blank line after them
        { dropped = 0; if ($0 != "") body = 1; print }' "$f"
}

# generate HEADER GUARD IMPL_GUARD INTRO API IMPL: one header from its parts (space-separated lists)
generate() {
    local name=$1 guard=$2 impl_guard=$3 intro=$4 api=$5 impl=$6 first=1 f
    {
        printf '/* %s - GENERATED from src/ by `make headers` (tools/make_headers.sh; src/manifest\n' "$name"
        printf '   lists its files in order). Do not edit it: edit src/, run make headers, commit both. */\n'
        for f in $intro; do emit "$f"; done
        printf '\n#ifndef %s\n#define %s\n\n' "$guard" "$guard"
        for f in $api; do
            [ $first = 1 ] || echo
            first=0
            emit "$f"
        done
        printf '\n#endif /* %s */\n' "$guard"
        if [ -n "$impl" ]; then
            printf '\n/* ======================================================================== */\n'
            printf '/*                            IMPLEMENTATION                                */\n'
            printf '/* ======================================================================== */\n\n'
            printf '#if defined(AURORA_IMPLEMENTATION) && !defined(%s)\n#define %s\n\n' "$impl_guard" "$impl_guard"
            first=1
            for f in $impl; do
                [ $first = 1 ] || echo
                first=0
                emit "$f"
            done
            printf '\n#endif /* %s */\n' "$impl_guard"
        fi
    } >"$out/$name"
}

# the manifest: "header NAME GUARD [IMPL_GUARD]", then "intro F", "api F" and "impl F" lines
headers=() name="" guard="" impl_guard="" intro="" api="" impl=""
flush() { [ -z "$name" ] || { generate "$name" "$guard" "$impl_guard" "$intro" "$api" "$impl"; headers+=("$name"); }; }
while read -r kind a b c; do
    case $kind in
    "" | \#*) ;;
    header) flush; name=$a guard=$b impl_guard=${c:-} intro="" api="" impl="" ;;
    intro) intro="$intro $a" ;;
    api) api="$api $a" ;;
    impl) impl="$impl $a" ;;
    *) echo "$manifest: unknown line '$kind $a'" >&2; exit 1 ;;
    esac
done <"$manifest"
flush

[ $check = 1 ] || exit 0
passed=0 failed=0
for h in "${headers[@]}"; do
    if cmp -s "$out/$h" "$h"; then
        passed=$((passed + 1))
        echo "ok   $h is what src/ generates"
    else
        failed=$((failed + 1))
        echo "FAIL $h differs from what src/ generates (edit src/, run make headers, commit both):"
        diff -u "$h" "$out/$h" | head -n 20 || true
    fi
done
echo "$passed passed, $failed failed"
[ $failed = 0 ]
