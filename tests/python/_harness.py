"""Tiny test harness shared by tests/python/test_*.py (run each with /usr/bin/python3).

Each check prints one line 'PASS name', 'FAIL name: why' or 'SKIP name: why'; finish() prints
'N passed, N failed[, N skipped]' and returns the exit status: 1 on any failure, else 77 (ctest's
SKIP) when any check was skipped, else 0.  With VKRUN_REQUIRE_ALL=1 (set by .ci/run, where every
prerequisite is installed and ../shared is present) a skipped check is a failure.

Checks that need <repo>/../shared are registered with shared=True.  VKRUN_TEST_PART=local runs
only the others, VKRUN_TEST_PART=shared only those (tests/CMakeLists.txt registers each file
twice, so that in a clone without ../shared the local checks still run and pass while the shared
ones show as a skipped test); unset, every check runs."""

import os
import sys
import time
import traceback

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TOOLS = os.path.join(ROOT, "tools")
SHARED = os.path.normpath(os.path.join(ROOT, "..", "shared"))
PYTHON = "/usr/bin/python3"
sys.path.insert(0, TOOLS)


class Skip(Exception):
    pass


class Runner:
    def __init__(self):
        self.passed = self.failed = self.skipped = 0
        self.t0 = time.time()

    def selected(self, shared):
        part = os.environ.get("VKRUN_TEST_PART", "")
        return not part or (part == "shared") == bool(shared)

    def check(self, name, fn, shared=False):
        if self.selected(shared):
            self.run_check(name, fn)

    def run_check(self, name, fn):
        t = time.time()
        try:
            fn()
        except Skip as e:
            self.skipped += 1
            print("SKIP %s: %s" % (name, e), flush=True)
            return
        except Exception as e:  # noqa: BLE001 -- any exception is a failed check
            self.failed += 1
            print("FAIL %s: %s: %s" % (name, type(e).__name__, e), flush=True)
            traceback.print_exc(file=sys.stdout)
            return
        self.passed += 1
        print("PASS %s (%.1fs)" % (name, time.time() - t), flush=True)

    def finish(self):
        line = "%d passed, %d failed" % (self.passed, self.failed)
        if self.skipped:
            line += ", %d skipped" % self.skipped
        print("(%.1fs)" % (time.time() - self.t0))
        print(line, flush=True)
        return finish_status(self.passed, self.failed, self.skipped)


def finish_status(passed, failed, skipped):
    """Exit status of a test file: 1 on failure (or when nothing ran), 77 (SKIP) when a check was
    skipped, unless VKRUN_REQUIRE_ALL=1 makes skips failures."""
    if failed:
        return 1
    if skipped:
        if os.environ.get("VKRUN_REQUIRE_ALL") == "1":
            print("FAIL: %d check(s) skipped, and VKRUN_REQUIRE_ALL=1 requires every check to run" % skipped,
                  flush=True)
            return 1
        return 77
    if not passed:
        print("FAIL: no check ran", flush=True)
        return 1
    return 0


def vkrun_test_setup(prefix):
    """A test that drives vkrun: its command line (--vkrun PATH, --only NAME), the vkrun path, a
    temporary folder and a Runner whose check() runs only the checks whose name contains --only."""
    import argparse
    import tempfile
    ap = argparse.ArgumentParser()
    ap.add_argument("--vkrun", required=True)
    ap.add_argument("--only", help="run only the checks whose name contains this")
    args = ap.parse_args()
    r = Runner()
    check = r.check
    r.check = lambda name, fn, **kw: check(name, fn, **kw) if not args.only or args.only in name else None
    return args, os.path.abspath(args.vkrun), tempfile.mkdtemp(prefix=prefix), r


def tiny_arch(folder, filters):
    """An architecture-only model (folder/tiny.json): 16x16 input, one 3x3/2 conv + ReLU of `filters`
    filters; vkrun train puts a head on it (seeded initial weights)."""
    import json
    arch = os.path.join(folder, "tiny.json")
    if not os.path.exists(arch):
        g = {"version": 1, "name": "tiny", "input": {"name": "in", "channels": 3, "height": 16, "width": 16,
                                                     "preprocess": "torch"},
             "layers": [{"name": "in", "type": "input"},
                        {"name": "c1", "type": "conv2d", "inputs": ["in"], "filters": filters, "kernel": [3, 3],
                         "strides": [2, 2], "padding": "same", "use_bias": True, "activation": "relu"}]}
        with open(arch, "w") as f:
            json.dump(g, f)
    return arch


def reference_platform(vkrun):
    """(True, why) when the default device is the platform whose bits README.md's training figures
    are (tests/reference_platform.sh: lavapipe 22.3.6 on a CPU with FMA), else (False, why)."""
    import subprocess
    p = subprocess.run(["bash", os.path.join(ROOT, "tests", "reference_platform.sh"), vkrun],
                       capture_output=True, text=True)
    return p.returncode == 0, (p.stdout + p.stderr).strip()


def need_shared(*parts):
    p = os.path.join(SHARED, *parts)
    if not os.path.exists(p):
        raise Skip("%s not found (shared data lives in <repo>/../shared)" % p)
    return p


def rel_err(a, b):
    import numpy as np
    a = np.asarray(a, np.float64)
    b = np.asarray(b, np.float64)
    if a.shape != b.shape:
        raise AssertionError("shapes differ: %s vs %s" % (a.shape, b.shape))
    return float(np.abs(a - b).max() / max(np.abs(b).max(), 1e-30))


def tf_conv_nhwc(x, k, b, s, pad):
    """out[n,i,j,o] = sum_{h,w,c} xpad[n, i*s+h, j*s+w, c] * k[h,w,c,o] + b[o] (tf.nn.conv2d)."""
    import numpy as np
    t, bt, l, r = pad
    xp = np.pad(x.astype(np.float64), ((0, 0), (t, bt), (l, r), (0, 0)))
    kh, kw = k.shape[:2]
    oh, ow = (xp.shape[1] - kh) // s + 1, (xp.shape[2] - kw) // s + 1
    out = np.zeros((x.shape[0], oh, ow, k.shape[3]))
    for h in range(kh):
        for w in range(kw):
            out += np.einsum("nijc,co->nijo", xp[:, h:h + s * (oh - 1) + 1:s, w:w + s * (ow - 1) + 1:s, :], k[h, w])
    return out + b
