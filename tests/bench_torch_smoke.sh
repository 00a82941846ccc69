#!/bin/sh
# ctest bench_torch_smoke: tools/bench_torch.py --quick --json (vkrun vs PyTorch CPU on tiny sizes)
# prints well-formed JSON in which every row not skipped has a positive finite ratio. Never a
# timing assertion. SKIP (77) when Debian's /usr/bin/python3 lacks torch/torchvision (a failure
# with VKRUN_REQUIRE_ALL=1, which also fails a skipped row: CI has ../shared).
#   tests/bench_torch_smoke.sh BUILD_DIR
set -eu
build=$1
root=$(cd "$(dirname "$0")/.." && pwd)
if ! /usr/bin/python3 -c "import numpy, torch, torchvision, PIL" 2>/dev/null; then
    echo "SKIP bench_torch_smoke: /usr/bin/python3 lacks numpy, torch, torchvision or PIL" \
        "(apt-get install python3-numpy python3-torch python3-torchvision python3-pil)"
    [ "${VKRUN_REQUIRE_ALL:-}" = 1 ] && { echo "FAIL: VKRUN_REQUIRE_ALL=1 requires every check to run"; exit 1; }
    exit 77
fi
out=$(mktemp)
trap 'rm -f "$out"' EXIT
/usr/bin/python3 "$root/tools/bench_torch.py" --build "$build" --quick --json >"$out"
/usr/bin/python3 - "$out" <<'PY'
import json, math, os, sys
d = json.load(open(sys.argv[1]))
m = d["machine"]
for k in ("cpu", "cores", "threads", "vkrun_device", "vkrun_driver", "torch", "load_before", "load_after"):
    assert k in m, "machine lacks %s" % k
rows = {r["row"]: r for r in d["rows"]}
assert sorted(rows) == [1, 2, 3, 4], sorted(rows)
fails = 0
for n, r in sorted(rows.items()):
    if r.get("skipped"):
        print("row %d skipped: %s" % (n, r["skipped"]))
        fails += os.environ.get("VKRUN_REQUIRE_ALL") == "1"
        continue
    ok = all(isinstance(r[k], float) and math.isfinite(r[k]) and r[k] > 0 for k in ("vkrun", "torch", "ratio"))
    ok = ok and r["vkrun_samples"] and r["torch_samples"] and r["unit"] in ("ms", "s", "images/s")
    print("row %d %s: vkrun %s, torch %s, ratio %s" % (n, "ok" if ok else "FAIL", r["vkrun"], r["torch"], r["ratio"]))
    fails += not ok
print("%d passed, %d failed" % (len(rows) - fails, fails))
sys.exit(1 if fails else 0)
PY
