#!/usr/bin/env bash
# Offline transfer-learning demo on real photos from Debian's dataset-fashion-mnist:
# a compact bottleneck ResNet pretrained by vkrun on the source task (clothes:
# T-shirt, trouser, pullover, dress, coat; weights/fashion_resnet_source.safetensors)
# is transferred to the target task (sandal, shirt, sneaker, bag, ankle boot) from
# 10 training images per class, and compared with the same network trained from
# scratch on the same images for as many epochs.  (With 100 images per class the
# target task is easy enough that from-scratch training nearly catches up: see README.)
#   tools/demo_fashion.sh BUILD_DIR OUT_DIR     (ctest fashion_demo runs it and compares with README.md)
set -euo pipefail
build=$1
out=$2
root=$(cd "$(dirname "$0")/.." && pwd)
vkrun="$build/vkrun"
train_per_class=${VKRUN_DEMO_TRAIN_PER_CLASS:-10}
test_per_class=300
head_epochs=20
ft_epochs=20
scratch_epochs=$((head_epochs + ft_epochs))
mkdir -p "$out"
"$build/export_fashion_mnist" --out "$out/data" --task target --train-per-class "$train_per_class" \
    --test-per-class "$test_per_class"

run() { # name, then vkrun train arguments; prints the wall seconds to $out/$name/seconds
    local name=$1
    shift
    mkdir -p "$out/$name"
    local t0 t1
    t0=$(date +%s.%N)
    "$vkrun" train --data "$out/data/train" --val "$out/data/test" --out "$out/$name/model.safetensors" \
        --seed 1 --batch 16 --val-every 10 "$@" | tee "$out/$name/log"
    t1=$(date +%s.%N)
    awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f\n", b - a }' >"$out/$name/seconds"
}

echo "== transfer: head on the frozen pretrained base (feature cache), then fine-tuning"
run transfer --model "$root/weights/fashion_resnet_source.safetensors" --head 128 \
    --epochs "$head_epochs" --fine-tune-epochs "$ft_epochs" --fine-tune-lr 3e-4 --bn-train
echo "== from scratch: the same network and head, all layers trained (BatchNorm in training mode)"
run scratch --model "$root/weights/fashion_resnet.json" --head 128 --freeze 0 --bn-train --epochs "$scratch_epochs"

# model.history.csv: epoch,stage,loss,accuracy,val_loss,val_accuracy,seconds,lr
col() { awk -F, -v st="$2" -v c="$3" 'NR > 1 && (st == "" || $2 == st) { v = $c } END { print v }' "$1"; }
sum() { awk -F, -v st="$2" 'NR > 1 && (st == "" || $2 == st) { s += $7 } END { printf "%.1f", s }' "$1"; }
# "cached pooled features of N images in S s" (vkrun train's output)
cache=$(sed -n 's/^cached pooled features of [0-9]* images in \([0-9.]*\) s$/\1/p' "$out/transfer/log")
th="$out/transfer/model.history.csv"
sh="$out/scratch/model.history.csv"
head_acc=$(col "$th" head 6)
ft_acc=$(col "$th" fine-tune 6)
scratch_acc=$(col "$sh" "" 6)
head_s=$(awk -v a="$cache" -v b="$(sum "$th" head)" 'BEGIN { printf "%.1f", a + b }')
ft_s=$(awk -v a="$head_s" -v b="$(sum "$th" fine-tune)" 'BEGIN { printf "%.1f", a + b }')
scratch_s=$(sum "$sh" "")
ntest=$((test_per_class * 5))
echo
echo "Fashion-MNIST target task (sandal, shirt, sneaker, bag, ankle boot): $((train_per_class * 5)) training images," \
    "$ntest test images"
printf "%-34s %14s %10s\n" "model" "test accuracy" "seconds"
printf "%-34s %14.4f %10s\n" "head only (pretrained base frozen)" "$head_acc" "$head_s"
printf "%-34s %14.4f %10s\n" "fine-tuned (+$ft_epochs epochs, lr 3e-4)" "$ft_acc" "$ft_s"
printf "%-34s %14.4f %10s\n" "from scratch ($scratch_epochs epochs)" "$scratch_acc" "$scratch_s"
echo "(seconds: feature caching + training epochs; wall time of each whole run, with validation every 10 epochs:" \
    "$(cat "$out/transfer/seconds") s transfer, $(cat "$out/scratch/seconds") s scratch)"
echo "curves: $out/transfer/model.{accuracy,loss}.png  $out/scratch/model.{accuracy,loss}.png"
awk -v t="$ft_acc" -v h="$head_acc" -v s="$scratch_acc" 'BEGIN {
    best = t > h ? t : h
    printf "transfer beats from-scratch by %.1f accuracy points\n", 100 * (best - s)
    exit !(best > s) }'
