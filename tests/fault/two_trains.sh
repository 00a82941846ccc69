#!/bin/sh
# two_trains.sh VKRUN TEST_SOAK SOURCE_DIR: two `vkrun train` processes on one device at the same
# time both finish and write byte-identical models (and identical loss histories) to a run alone.
# The model: weights/fashion_resnet.json (architecture only, seeded init), 2 classes of 12 PNGs.
set -u
vkrun=$1 soak=$2 root=$3
work=$(mktemp -d "${TMPDIR:-/tmp}/vkrun-two-trains.XXXXXX")
trap 'rm -rf "$work"' EXIT
"$soak" --make-data "$work/data" 12 || { echo "FAIL cannot write the data"; exit 1; }
train() { # train NAME: one run, its output in $work/NAME/
    mkdir -p "$work/$1"
    "$vkrun" train --model "$root/weights/fashion_resnet.json" --data "$work/data" --out "$work/$1/m.safetensors" \
        --plots "$work/$1" --head 8 --freeze 0 --epochs 2 --batch 6 --seed 3 --no-cache --quiet >"$work/$1/log" 2>&1
}
fail=0
train alone || { echo "FAIL the run alone exited $?:"; cat "$work/alone/log"; exit 1; }
train first & p1=$!
train second & p2=$!
wait $p1; r1=$?
wait $p2; r2=$?
for n in first second; do
    r=$r1
    [ $n = second ] && r=$r2
    if [ "$r" != 0 ]; then
        echo "FAIL concurrent run $n exited $r:"; cat "$work/$n/log"; fail=1
    elif ! cmp -s "$work/alone/m.safetensors" "$work/$n/m.safetensors"; then
        echo "FAIL concurrent run $n wrote another model than the run alone"; fail=1
    elif [ "$(grep -o '"loss":[^,]*' "$work/alone/m.history.json")" != "$(grep -o '"loss":[^,]*' "$work/$n/m.history.json")" ]; then
        echo "FAIL concurrent run $n: another loss history than the run alone"; fail=1
    else
        echo "PASS concurrent run $n: same model bytes and losses as the run alone ($(grep -o '"loss":[^,]*' "$work/$n/m.history.json" | tr '\n' ' '))"
    fi
done
[ $fail = 0 ] && echo "2 passed, 0 failed" || echo "failed"
exit $fail
