#!/usr/bin/env bash
# tests/radv_pipelines.sh PREFIX VKRUN MODEL: AMD's shader compiler without an AMD GPU.  RADV
# from tools/fetch_driver.sh PREFIX (Debian's <codename>-backports Mesa) on Mesa's amdgpu drm
# shim (LD_PRELOAD libamdgpu_noop_drm_shim.so, AMDGPU_GPU_ID: a real device's info, command
# submission a no-op): `vkrun bench MODEL --pipelines --json` creates every pipeline one
# training step of MODEL uses on that GPU (the kernels vkrun chooses there: a discrete GPU gets
# the tiled GEMMs), fp32 and fp16, and the test asserts, for GFX9 (vega10), GFX10.3 (navi21) and
# GFX11 (navi31): the device is that RADV, the driver reports statistics, every pipeline has
# "Spilled SGPRs" = "Spilled VGPRs" = 0.  It prints the GEMM pipelines' registers and occupancy
# (the table of docs/drivers.md).  Nothing executes: the numbers the step computes mean nothing.
# (GFX12: not in Mesa 25.0's drm shim.)  A failed fetch is a SKIP (exit 77), a failure under
# VKRUN_REQUIRE_ALL=1.
set -uo pipefail
prefix=$1 vkrun=$2 model=$3
root=$(cd "$(dirname "$0")/.." && pwd)
env=$("$root/tools/fetch_driver.sh" "$prefix")
rc=$?
[ $rc -eq 0 ] || exit $rc
eval "$env"
work=$(mktemp -d "${TMPDIR:-/tmp}/vkrun_radv_XXXXXX")
trap 'rm -rf "$work"' EXIT
fail=0
for gpu in vega10:GFX9 navi21:GFX10.3 navi31:GFX11; do
    id=${gpu%%:*}
    for prec in fp32 fp16; do
        if ! VK_ICD_FILENAMES=$VKRUN_RADV_ICD LD_PRELOAD=$VKRUN_DRM_SHIM AMDGPU_GPU_ID=$id \
            "$vkrun" bench "$model" --pipelines --json --precision "$prec" >"$work/${gpu#*:}-$prec.json" 2>"$work/err"; then
            echo "FAIL radv $gpu $prec: vkrun bench --pipelines failed:"
            grep -v '^DRM_IOCTL' "$work/err" | tail -n 5
            fail=1
        fi
    done
done
# RADV_FORCE_FAMILY without the shim: "Null hardware", no memory heaps.  vkrun must fail with
# a message, not crash (the driver's vkDeviceWaitIdle crashed in vkr_context_destroy before).
VK_ICD_FILENAMES=$VKRUN_RADV_ICD RADV_FORCE_FAMILY=navi21 "$vkrun" selftest --op axpby >"$work/null" 2>&1
rc=$?
if [ $rc = 1 ] && grep -q 'Null hardware' "$work/null" && grep -q 'no usable memory type' "$work/null"; then
    echo "PASS null hardware (RADV_FORCE_FAMILY=navi21): exit 1, \"no usable memory type\", no crash"
else
    echo "FAIL null hardware: exit $rc:"
    tail -n 5 "$work/null"
    fail=1
fi
[ $fail = 0 ] || exit 1
python3 - "$work" 1 <<'EOF'
import glob, json, os, sys
bad, passed = 0, int(sys.argv[2])  # the null-hardware check above passed
def check(ok, what):
    global bad, passed
    print(("PASS " if ok else "FAIL ") + what)
    bad += not ok
    passed += bool(ok)
print("| GPU | precision | pipeline | VGPRs | SGPRs | LDS bytes | waves/SIMD | spills |")
print("|---|---|---|---|---|---|---|---|")
rows = []
for f in sorted(glob.glob(os.path.join(sys.argv[1], "*.json"))):
    gpu, prec = os.path.basename(f)[:-5].rsplit("-", 1)
    j = json.load(open(f))
    name = {"GFX9": "VEGA10", "GFX10.3": "NAVI21", "GFX11": "NAVI31"}[gpu]
    check("RADV " + name in j["device"], f"{gpu} {prec}: the device is {j['device']}")
    check(j["statistics_reported"] and len(j["pipelines"]) > 0,
          f"{gpu} {prec}: statistics of {len(j['pipelines'])} pipelines")
    spills = [(p["key"], p["statistics"].get("Spilled SGPRs"), p["statistics"].get("Spilled VGPRs"))
              for p in j["pipelines"]]
    nz = [s for s in spills if s[1] != 0 or s[2] != 0]
    check(not nz, f"{gpu} {prec}: no spill in any of {len(spills)} pipelines" + (f" (spilling: {nz})" if nz else ""))
    for p in j["pipelines"]:
        if p["shader"].startswith("gemm_tiled") or p["shader"].startswith("gemm_texel"):
            s = p["statistics"]
            rows.append((gpu, prec, p["key"], s.get("VGPRs"), s.get("SGPRs"), s.get("LDS size"),
                         s.get("Subgroups per SIMD"), s.get("Spilled VGPRs", 0) + s.get("Spilled SGPRs", 0)))
for r in rows:
    print("| " + " | ".join(str(int(v)) if isinstance(v, float) else str(v) for v in r) + " |")
print(f"{passed} passed, {bad} failed")
sys.exit(1 if bad else 0)
EOF
