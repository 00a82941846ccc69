#!/usr/bin/env bash
# Debian packages vkrun needs, and a progress helper.  Sourced by tools/demo.sh,
# tools/run_tests.sh and .ci/run:
#   vkr_deps build|test [EXTRA_PACKAGES]
# Installs what is missing when run as root; otherwise prints the exact command.
# openmpi-bin + libopenmpi-dev: data-parallel training (mpirun -np N vkrun train; optional: found by CMake)
VKR_BUILD_PKGS="cmake make gcc libc6-dev libvulkan-dev glslang-tools libstb-dev libcjson-dev mesa-vulkan-drivers openmpi-bin libopenmpi-dev"
# clang + libclang-rt-14-dev: libFuzzer and the sanitizer runtimes for the fuzz targets (build-fuzz);
# python3-onnx: the ONNX importer's tests (tools/converters/onnx_import.py)
VKR_TEST_PKGS="vulkan-validationlayers curl python3-numpy python3-h5py python3-torch python3-torchvision python3-onnx python3-hypothesis python3-pil dataset-fashion-mnist clang libclang-rt-14-dev"

# vkr_with_progress LABEL LOG CMD...: runs CMD with its output in LOG, printing
# "LABEL… N s" every 15 s so that a long step never leaves a silent terminal; on
# failure prints the end of LOG.
vkr_with_progress() {
    local label=$1 log=$2
    shift 2
    local t0=$SECONDS
    echo "$label…"
    "$@" >"$log" 2>&1 &
    local pid=$! rc=0
    while kill -0 "$pid" 2>/dev/null; do
        for _ in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15; do
            sleep 1
            kill -0 "$pid" 2>/dev/null || break
        done
        kill -0 "$pid" 2>/dev/null && echo "$label… $((SECONDS - t0)) s"
    done
    wait "$pid" || rc=$?
    if [ $rc -ne 0 ]; then
        echo "$label failed (exit $rc); the end of $log:" >&2
        tail -n 30 "$log" >&2
        return $rc
    fi
    echo "$label: done in $((SECONDS - t0)) s"
}

vkr_deps() {
    local want="$VKR_BUILD_PKGS"
    [ "${1:-build}" = test ] && want="$want $VKR_TEST_PKGS"
    [ -n "${2:-}" ] && want="$want $2"
    local missing=()
    for p in $want; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    if [ "$(id -u)" = 0 ]; then
        export DEBIAN_FRONTEND=noninteractive
        local log
        log=$(mktemp "${TMPDIR:-/tmp}/vkrun-apt.XXXXXX")
        vkr_with_progress "vkrun: installing ${missing[*]}" "$log" \
            sh -c 'apt-get update -q && apt-get install -y -q "$@"' apt "${missing[@]}" || {
            echo "vkrun: apt-get install failed" >&2
            return 1
        }
        rm -f "$log"
    else
        echo "vkrun: missing packages; run:" >&2
        echo "  sudo apt-get install -y ${missing[*]}" >&2
        return 1
    fi
}
