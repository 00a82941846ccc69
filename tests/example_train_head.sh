#!/usr/bin/env bash
# examples/train_head.c end to end (SKIP, exit 77, without Debian's dataset-fashion-mnist):
#   tests/example_train_head.sh TRAIN_HEAD BUILD_DIR
# A head on the committed pretrained base (weights/fashion_resnet_source.safetensors, trained on
# Fashion-MNIST labels 0-4) learns the target task (labels 5-9, 20 images per class, 8 epochs):
# the loss falls by 20% or more (measured 1.89 -> 0.97), validation accuracy is above 0.5
# (chance: 0.2; measured 0.65), and the history vkr_fit returns equals what its on_epoch
# callback reported, epoch by epoch.
set -euo pipefail
example=$1
build=$(cd "$2" && pwd)
root=$(cd "$(dirname "$0")/.." && pwd)
if [ ! -f /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ]; then
    echo "SKIP example_train_head: dataset-fashion-mnist is not installed (apt-get install dataset-fashion-mnist)"
    [ "${VKRUN_REQUIRE_ALL:-}" = 1 ] && { echo "FAIL: VKRUN_REQUIRE_ALL=1 requires every check to run"; exit 1; }
    exit 77
fi
work=$(mktemp -d "${TMPDIR:-/tmp}/vkrun_example_XXXXXX")
trap 'rm -rf "$work"' EXIT
"$build/export_fashion_mnist" --out "$work/data" --task target --train-per-class 20 --test-per-class 20
"$example" "$root/weights/fashion_resnet_source.safetensors" "$work/data/train" "$work/data/test" \
    "$work/out/model.safetensors" | tee "$work/log"
test -s "$work/out/model.safetensors" && test -s "$work/out/model.history.json" && test -s "$work/out/model.loss.png"
grep '^epoch ' "$work/log" | sed 's/^epoch //' >"$work/reported"
grep '^history ' "$work/log" | sed 's/^history //' >"$work/returned"
[ "$(wc -l <"$work/reported")" = 8 ] || { echo "FAIL: expected 8 epoch lines"; exit 1; }
cmp "$work/reported" "$work/returned" || { echo "FAIL: the returned history differs from the callbacks"; exit 1; }
grep -q '^8 epochs reported, 8 in the history$' "$work/log"
# fields 4: loss, 10: val_accuracy ("1 (head): loss L accuracy A val_loss V val_accuracy W")
awk '{ loss[NR] = $4; acc = $10 } END {
    printf "loss %.4f -> %.4f, final val_accuracy %.4f\n", loss[1], loss[NR], acc
    if (!(loss[NR] < 0.8 * loss[1])) { print "FAIL: the loss did not fall by 20%"; exit 1 }
    if (!(acc > 0.5)) { print "FAIL: val_accuracy not above 0.5 (chance: 0.2)"; exit 1 }
}' "$work/reported"
echo "PASS example train_head: loss falls, validation well above chance, history matches the callbacks"
