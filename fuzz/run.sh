#!/usr/bin/env bash
# Runs every fuzz target of a fuzz build one after the other, with the libFuzzer options given after the
# build folder, and prints one line per target: executions, executions per second, corpus growth, peak
# memory, time, result. Exits non-zero when any target found something (crash, sanitizer report, leak,
# timeout, out of memory); the input that did it is saved under fuzz/regressions/<target>/ and the whole
# report is in <build>/fuzz/logs/<target>.log.
#
#   fuzz/run.sh build-fuzz -runs=1000000                     (make fuzz)
#   fuzz/run.sh build-fuzz -runs=20000 -max_total_time=30    (make fuzz-short)
#   FUZZ_TARGETS="npy csv" fuzz/run.sh build-fuzz -runs=1000  (some targets only)
#   FUZZ_REGRESSIONS=no fuzz/run.sh build-fuzz -runs=1000     (without replaying fuzz/regressions/ first,
#                                                              to measure a target whose saved bugs are not fixed)
set -uo pipefail
cd "$(dirname "$0")/.."

build=${1:?usage: fuzz/run.sh <build folder> [libFuzzer options...]}
shift
targets=${FUZZ_TARGETS:-idx_images idx_labels csv npy checkpoint checkpoint_config model_description}

# The largest input per target: a few times the largest real file of its seeds (make_seeds prints them).
max_len() {
    case $1 in
        idx_labels) echo 1024 ;;
        model_description) echo 2048 ;;
        checkpoint | checkpoint_config) echo 16384 ;;
        *) echo 4096 ;;
    esac
}
dict() {
    case $1 in
        npy | checkpoint | checkpoint_config) echo fuzz/dicts/npy.dict ;;
        csv) echo fuzz/dicts/csv.dict ;;
        model_description) echo fuzz/dicts/json.dict ;;
    esac
}

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}
mkdir -p "$build/fuzz/logs"
failed=()
printf '%-18s %10s %8s %6s %8s %7s  %s\n' target executions exec/s new "rss MB" seconds result
for t in $targets; do
    exe=$build/fuzz/${t}_fuzz
    corpus=$build/fuzz/corpus/$t
    seeds=$build/fuzz/seeds/$t
    regressions=fuzz/regressions/$t
    log=$build/fuzz/logs/$t.log
    mkdir -p "$corpus" "$regressions"
    args=(-max_len="$(max_len "$t")" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1
          -artifact_prefix="$regressions/")
    d=$(dict "$t")
    [ -n "$d" ] && args+=(-dict="$d")
    before=$(ls "$regressions")
    start=$(date +%s)
    # The first folder takes what the fuzzer finds; the seeds and the saved regressions are read too.
    inputs=("$corpus" "$seeds")
    [ "${FUZZ_REGRESSIONS:-yes}" = no ] || inputs+=("$regressions")
    "$exe" "${args[@]}" "$@" "${inputs[@]}" > "$log" 2>&1 &
    pid=$!
    wait $pid
    rc=$?
    seconds=$(( $(date +%s) - start ))
    # The folder the target writes its inputs to; left behind when it crashed.
    rm -rf "/dev/shm/tapegrad-fuzz-$t-$pid" "${TMPDIR:-/tmp}/tapegrad-fuzz-$t-$pid"
    # A saved input that still fails is written again under libFuzzer's name: keep the saved one only.
    known=""
    for f in $(ls "$regressions"); do
        grep -qxF "$f" <<< "$before" && continue
        for g in $before; do
            if cmp -s "$regressions/$f" "$regressions/$g"; then
                rm -f "$regressions/$f"
                known=" (fails on the saved $regressions/$g)"
                break
            fi
        done
    done
    stat() { awk -v k="stat::$1:" '$1 == k { print $2 }' "$log"; }
    if [ $rc -eq 0 ]; then
        result=ok
    else
        result="FAILED (exit $rc)$known: $(grep -m1 -oE 'ERROR: (AddressSanitizer|LeakSanitizer|UndefinedBehaviorSanitizer|libFuzzer): [^ ]+( [^ ]+)?|runtime error: .*|fuzz [a-z_]+: a refusal .*' "$log" | cut -c1-160)"
        failed+=("$t")
    fi
    printf '%-18s %10s %8s %6s %8s %7s  %s\n' "$t" "$(stat number_of_executed_units)" "$(stat average_exec_per_sec)" \
        "$(stat new_units_added)" "$(stat peak_rss_mb)" "$seconds" "$result"
    if [ $rc -ne 0 ]; then
        grep -E "^(==|    #|SUMMARY|artifact_prefix|Test unit written|fuzz )|runtime error" "$log" | head -30 | cut -c1-220 | sed "s/^/    /"
    fi
done
if [ ${#failed[@]} -gt 0 ]; then
    echo "fuzz: ${#failed[@]} target(s) failed: ${failed[*]}; inputs in fuzz/regressions/, logs in $build/fuzz/logs/"
    exit 1
fi
echo "fuzz: every target ran clean"
