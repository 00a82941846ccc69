#!/usr/bin/env bash
# tools/fetch_driver.sh PREFIX: a second Mesa (lavapipe, RADV, the drm shim) from Debian's
# <codename>-backports suite, unpacked into PREFIX; nothing on the system is installed or replaced.
#
#   eval "$(tools/fetch_driver.sh build/drivers/mesa-backports)"   # then run vkrun on that driver
#
# - The apt source is derived at run time from the machine's own sources (/etc/apt/sources.list
#   and /etc/apt/sources.list.d/*.sources or *.list): the URI and keyring of the entry that
#   carries the release's main suite, with the suite <codename>-backports
#   (VKRUN_DRIVER_SUITE overrides the suite).
# - apt runs on a private configuration: its source list, preferences, package lists and
#   cache are in PREFIX/apt; the system's apt lists, cache and dpkg database are only read
#   (the dpkg status file, /etc/apt/apt.conf.d for proxies, the keyrings).
# - `apt-get download` + `dpkg-deb -x` of mesa-vulkan-drivers, libdrm2, libdrm-amdgpu1 and
#   mesa-drm-shim into PREFIX/root; ICD files with absolute library paths are written to
#   PREFIX/lvp_icd.json and PREFIX/radeon_icd.json.
# - Prints the environment as shell lines: VK_ICD_FILENAMES (lavapipe), LD_LIBRARY_PATH,
#   VKRUN_RADV_ICD, VKRUN_DRM_SHIM (for LD_PRELOAD with AMDGPU_GPU_ID), VKRUN_DRIVER_VERSION.
#   The same lines are kept in PREFIX/env.sh; a second run reuses PREFIX without the network.
# A fetch that fails (no network, no such suite) says SKIP and exits 77, or 1 under
# VKRUN_REQUIRE_ALL=1.
set -uo pipefail

PKGS="mesa-vulkan-drivers libdrm2 libdrm-amdgpu1 mesa-drm-shim"

prefix=${1:?usage: tools/fetch_driver.sh PREFIX}
mkdir -p "$prefix" || exit 1
prefix=$(cd "$prefix" && pwd)

skip() {
    echo "SKIP fetch_driver: $*" >&2
    [ "${VKRUN_REQUIRE_ALL:-}" = 1 ] && { echo "FAIL: VKRUN_REQUIRE_ALL=1 requires the backports driver" >&2; exit 1; }
    exit 77
}

# One fetch at a time per prefix (ctest -j runs several users of it at once).
exec 9>"$prefix.lock" || skip "cannot lock $prefix.lock"
flock 9

if [ -f "$prefix/env.sh" ]; then
    cat "$prefix/env.sh"
    exit 0
fi
for tool in apt-get dpkg-deb dpkg; do
    command -v "$tool" >/dev/null || skip "$tool not found (a Debian system is needed)"
done

# shellcheck disable=SC1091
codename=$(. /etc/os-release 2>/dev/null && echo "${VERSION_CODENAME:-}")
[ -n "$codename" ] || skip "no VERSION_CODENAME in /etc/os-release"
suite=${VKRUN_DRIVER_SUITE:-$codename-backports}
multiarch=$(dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null || gcc -print-multiarch 2>/dev/null)
[ -n "$multiarch" ] || skip "cannot tell the multiarch triplet"

# The URI (and Signed-By) of the system's source for "$codename" main, deb822 or one-line.
uri="" keyring=""
for f in /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] || continue
    # Paragraphs separated by blank lines; the first one with Types deb and Suites ∋ codename.
    read -r uri keyring < <(awk -v want="$codename" '
        function flush() { if (t ~ /(^| )deb( |$)/ && s ~ ("(^| )" want "( |$)") && u != "") { split(u, a, " "); print a[1], (k == "" ? "-" : k); found = 1; exit } t = s = u = k = "" }
        /^[ \t]*#/ { next }
        /^[ \t]*$/ { flush(); next }
        { key = tolower($1); sub(/:$/, "", key); $1 = ""; sub(/^ +/, ""); if (key == "types") t = $0; else if (key == "suites") s = $0; else if (key == "uris") u = $0; else if (key == "signed-by") k = $0 }
        END { if (!found) flush() }' "$f")
    [ -n "$uri" ] && break
done
if [ -z "$uri" ]; then
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
        [ -f "$f" ] || continue
        uri=$(awk -v want="$codename" '$1 == "deb" { i = 2; if ($2 ~ /^\[/) { while ($i !~ /\]$/) i++; i++ } if ($(i + 1) == want) { print $i; exit } }' "$f")
        [ -n "$uri" ] && break
    done
    keyring=-
fi
[ -n "$uri" ] || skip "no apt source for '$codename' found in /etc/apt to derive '$suite' from"

apt_dir=$prefix/apt
rm -rf "$apt_dir" "$prefix/root" "$prefix/debs"
mkdir -p "$apt_dir/sources.list.d" "$apt_dir/preferences.d" "$apt_dir/lists/partial" \
         "$apt_dir/cache/archives/partial" "$prefix/debs" "$prefix/root" || exit 1
{
    echo "Types: deb"
    echo "URIs: $uri"
    echo "Suites: $suite"
    echo "Components: main"
    [ "$keyring" != - ] && echo "Signed-By: $keyring"
} >"$apt_dir/sources.list.d/driver.sources"
: >"$apt_dir/sources.list"
apt_opts=(-q -o "Dir::Etc::sourcelist=$apt_dir/sources.list"
          -o "Dir::Etc::sourceparts=$apt_dir/sources.list.d"
          -o "Dir::Etc::preferences=$apt_dir/preferences"
          -o "Dir::Etc::preferencesparts=$apt_dir/preferences.d"
          -o "Dir::State::lists=$apt_dir/lists"
          -o "Dir::Cache=$apt_dir/cache"
          -o "APT::Sandbox::User=$(id -un)")
log=$prefix/fetch.log
echo "vkrun: fetching $PKGS from $suite into $prefix" >&2
apt-get "${apt_opts[@]}" update >"$log" 2>&1 || skip "apt-get update of $suite failed (see $log)"
want=()
for p in $PKGS; do want+=("$p/$suite"); done
(cd "$prefix/debs" && apt-get "${apt_opts[@]}" download "${want[@]}") >>"$log" 2>&1 ||
    skip "apt-get download from $suite failed (see $log)"
for deb in "$prefix"/debs/*.deb; do
    dpkg-deb -x "$deb" "$prefix/root" || skip "dpkg-deb -x $deb failed"
done

lib=$prefix/root/usr/lib/$multiarch
icd() { # icd NAME: the package's ICD file with the library's absolute path
    local src="" f
    # 22.x names it NAME_icd.<arch>.json, 25.x NAME_icd.json (with a relative library_path)
    for f in "$prefix"/root/usr/share/vulkan/icd.d/"$1"_icd*.json; do
        case "$f" in *i686*) ;; *) [ -f "$f" ] && src=$f && break ;; esac
    done
    [ -n "$src" ] || skip "$1_icd*.json missing from mesa-vulkan-drivers"
    sed -E "s|\"library_path\": *\"([^\"]*/)?([^/\"]*)\"|\"library_path\": \"$lib/\\2\"|" "$src" >"$prefix/$1_icd.json"
    grep -q "\"$lib/" "$prefix/$1_icd.json" || skip "cannot rewrite the library path of $src"
}
icd lvp
icd radeon
[ -f "$lib/libamdgpu_noop_drm_shim.so" ] || skip "libamdgpu_noop_drm_shim.so missing from mesa-drm-shim"
debs=("$prefix"/debs/mesa-vulkan-drivers_*.deb)
version=$(dpkg-deb -f "${debs[0]}" Version)
rm -rf "$prefix/debs" "$apt_dir/cache" # 76 MB of packages, unpacked now

{
    echo "export VK_ICD_FILENAMES='$prefix/lvp_icd.json'"
    echo "export LD_LIBRARY_PATH='$lib'\${LD_LIBRARY_PATH:+:\$LD_LIBRARY_PATH}"
    echo "export VKRUN_RADV_ICD='$prefix/radeon_icd.json'"
    echo "export VKRUN_DRM_SHIM='$lib/libamdgpu_noop_drm_shim.so'"
    echo "export VKRUN_DRIVER_VERSION='$version'"
} >"$prefix/env.sh.tmp" && mv "$prefix/env.sh.tmp" "$prefix/env.sh"
cat "$prefix/env.sh"
