"""Tiny test harness shared by tests/python/test_*.py (run each with /usr/bin/python3).

Each check prints one line 'PASS name', 'FAIL name: why' or 'SKIP name: why'; finish() prints
'N passed, N failed[, N skipped]' and returns the exit status (1 on any failure)."""

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

    def check(self, name, fn):
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
        return 1 if self.failed else 0


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
