#!/bin/sh
# run_fuzz.sh FUZZER SEEDS WORKDIR SECONDS: fuzzes for SECONDS (VKRUN_FUZZ_SECONDS in the
# environment overrides it) from the seed corpus SEEDS with a
# fresh working corpus in WORKDIR/corpus; a crash, leak, timeout (30 s: an image at the size
# caps, 100 Mpixel, takes seconds to decode under the sanitizers) or out-of-memory is written to
# WORKDIR/artifacts/ and fails (libFuzzer exits non-zero).  Prints the run's executions.
set -eu
fuzzer=$1 seeds=$2 work=$3 secs=${VKRUN_FUZZ_SECONDS:-$4}
rm -rf "$work/corpus" "$work/artifacts"
mkdir -p "$work/corpus" "$work/artifacts"
set +e
"$fuzzer" -max_total_time="$secs" -timeout=30 -rss_limit_mb=2048 -print_final_stats=1 -close_fd_mask=2 \
    -artifact_prefix="$work/artifacts/" "$work/corpus" "$seeds" >"$work/log" 2>&1
rc=$?
set -e
grep -E '^(#[0-9]+.*DONE|stat::number_of_executed_units|stat::peak_rss_mb|Done )' "$work/log" || true
if [ $rc -ne 0 ]; then
    echo "FAIL $(basename "$fuzzer"): finding (exit $rc); the end of $work/log:"
    tail -n 60 "$work/log"
    ls "$work/artifacts"
    exit 1
fi
echo "PASS $(basename "$fuzzer"): no finding in $secs s"
