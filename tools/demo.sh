#!/usr/bin/env bash
# vkrun's main job: transfer learning on a folder of images.
#  - online, with a GPU: the Keras tutorial itself — official ImageNet ResNet50 (no top) +
#    GlobalAveragePooling + Dense(1024,1024,1024,512) + softmax on cats vs dogs, then evaluate;
#  - otherwise (no network, or only a CPU device): a real transfer task that needs no download:
#    a compact ResNet pretrained by vkrun on Fashion-MNIST clothes (weights/), transferred to
#    shoes and bags, against the same network trained from scratch (tools/demo_fashion.sh).
# Outputs go to out/ (VKRUN_DEMO_OUT).  VKRUN_DEMO=offline|online forces a path.
set -euo pipefail
cd "$(dirname "$0")/.."
. tools/deps.sh
vkr_deps build dataset-fashion-mnist
jobs=$(nproc 2>/dev/null || echo 2)
out=${VKRUN_DEMO_OUT:-out}
mkdir -p "$out"
vkr_with_progress "vkrun demo: building build/vkrun (log: $out/build.log)" "$out/build.log" \
    sh -c "cmake -S . -B build -DCMAKE_BUILD_TYPE=Release && cmake --build build -j$jobs"
build/vkrun devices | sed -n '1,2p'

online() {
    if [ "${VKRUN_DEMO:-}" != online ] && build/vkrun devices | grep -A1 '^\*' | grep -q 'type: cpu'; then
        echo "vkrun demo: the default device is a CPU (lavapipe): running the offline demo (ResNet50 on" \
             "3,000 photos would take about an hour here; VKRUN_DEMO=online forces it)"
        return 1
    fi
    vkr_deps build "curl python3-numpy python3-h5py" || {
        echo "vkrun demo: the online path needs the packages above: running the offline demo"
        return 1
    }
    weights/fetch_resnet50.sh >"$out/fetch.log" 2>&1 || {
        echo "vkrun demo: cannot download or convert the official ResNet50 weights (no network? see $out/fetch.log):" \
             "running the offline demo"
        return 1
    }
    local zip="$out/cats_and_dogs_filtered.zip"
    if [ ! -d "$out/cats_and_dogs_filtered" ]; then
        curl -fsSL --max-time 900 -o "$zip.part" \
            https://storage.googleapis.com/mledu-datasets/cats_and_dogs_filtered.zip && mv "$zip.part" "$zip" &&
            /usr/bin/python3 -m zipfile -e "$zip" "$out" || {
            echo "vkrun demo: cannot download the cats-vs-dogs photos: running the offline demo"
            return 1
        }
    fi
    build/vkrun train --model weights/resnet50_notop.safetensors --data "$out/cats_and_dogs_filtered/train" \
        --val "$out/cats_and_dogs_filtered/validation" --out "$out/cats_dogs/model.safetensors"
    build/vkrun evaluate "$out/cats_dogs/model.safetensors" --data "$out/cats_and_dogs_filtered/validation"
    echo "curves: $out/cats_dogs/model.accuracy.png $out/cats_dogs/model.loss.png"
}

if [ "${VKRUN_DEMO:-}" = offline ] || ! online; then
    tools/demo_fashion.sh build "$out/fashion"
fi
