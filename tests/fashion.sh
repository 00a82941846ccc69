#!/usr/bin/env bash
# Fashion-MNIST checks (Debian's dataset-fashion-mnist; SKIP, exit 77, when absent):
#   tests/fashion.sh pretrain BUILD_DIR   the documented pretraining command on a small subset
#   tests/fashion.sh demo BUILD_DIR       the offline demo, shortened (tools/demo_fashion.sh --quick)
set -euo pipefail
mode=$1
build=$(cd "$2" && pwd)
root=$(cd "$(dirname "$0")/.." && pwd)
if [ ! -f /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ]; then
    echo "SKIP fashion $mode: dataset-fashion-mnist is not installed (apt-get install dataset-fashion-mnist)"
    [ "${VKRUN_REQUIRE_ALL:-}" = 1 ] && { echo "FAIL: VKRUN_REQUIRE_ALL=1 requires every check to run"; exit 1; }
    exit 77
fi
# sha256 of the pretraining subset's model (tests/fashion.sh pretrain), recorded on llvmpipe
PRETRAIN_SHA256=85d04e36a1f9670baf3385692f12e37a77c1021f4e73a658f60d47f9f7ad06f3
work=$(mktemp -d "${TMPDIR:-/tmp}/vkrun_fashion_XXXXXX")
trap 'rm -rf "$work"' EXIT
case $mode in
pretrain)
    # weights/README.md's command, on 40 images per class for one epoch (--drop-remainder: the
    # base was pretrained when dropping the last partial batch was the default; the hash stands)
    "$build/export_fashion_mnist" --out "$work/source" --task source --train-per-class 40 --test-per-class 10
    "$build/vkrun" train --model "$root/weights/fashion_resnet.json" --data "$work/source/train" \
        --val "$work/source/test" --head '' --freeze 0 --bn-train --epochs 1 --seed 1 --drop-remainder \
        --out "$work/base.safetensors" --plots "$work/plots"
    "$build/vkrun" summary "$work/base.safetensors" | grep -q "Total params: 202,533"
    test -s "$work/plots/loss.png"
    # Byte for byte: the same command gives the same file, and the file recorded here (lavapipe,
    # Mesa 22.3.6; weights/README.md says the full command reproduced the committed base the
    # same way).  Another driver may round differently: VKRUN_PRETRAIN_SHA256 overrides.
    got=$(sha256sum "$work/base.safetensors" | cut -d' ' -f1)
    want=${VKRUN_PRETRAIN_SHA256:-$PRETRAIN_SHA256}
    if [ "$got" != "$want" ]; then
        echo "FAIL pretraining subset: sha256 $got, recorded $want"
        exit 1
    fi
    echo "PASS pretraining command runs on a subset and reproduces the recorded file (sha256 $got)"
    ;;
demo)
    "$root/tools/demo_fashion.sh" "$build" "$work/demo" --quick
    echo "PASS shortened demo: transfer beats from-scratch"
    ;;
*)
    echo "usage: $0 pretrain|demo BUILD_DIR" >&2
    exit 2
    ;;
esac
