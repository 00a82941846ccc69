#!/usr/bin/env bash
# Debian packages vkrun needs.  Sourced by tools/demo.sh and tools/run_tests.sh:
#   vkr_deps build|test
# Installs what is missing when run as root; otherwise prints the exact command.
VKR_BUILD_PKGS="cmake make gcc libc6-dev libvulkan-dev glslang-tools libstb-dev libcjson-dev mesa-vulkan-drivers"
VKR_TEST_PKGS="vulkan-validationlayers python3-numpy python3-h5py python3-torch python3-torchvision python3-pil dataset-fashion-mnist"

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
        echo "vkrun: installing ${missing[*]}" >&2
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq && apt-get install -y -qq "${missing[@]}" >/dev/null || {
            echo "vkrun: apt-get install failed" >&2
            return 1
        }
    else
        echo "vkrun: missing packages; run:" >&2
        echo "  sudo apt-get install -y ${missing[*]}" >&2
        return 1
    fi
}
