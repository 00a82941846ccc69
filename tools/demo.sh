#!/usr/bin/env bash
# The main job: build vkrun, then run it on this machine's Vulkan device.
set -euo pipefail
cd "$(dirname "$0")/.."
. tools/deps.sh
vkr_deps build
jobs=$(nproc 2>/dev/null || echo 2)
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j"$jobs" >/dev/null
build/vkrun devices
build/vkrun selftest
