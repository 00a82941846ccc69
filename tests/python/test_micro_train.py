#!/usr/bin/python3
"""`vkrun train` fine-tunes ResNet50 at a batch that does not fit the device: micro-batches.

  /usr/bin/python3 tests/python/test_micro_train.py --vkrun build/vkrun

ResNet50 in the Keras layout (random weights), 32 images, batch 32, 32x32 (to fit the CI
budget), one fine-tuning epoch of every layer (with SGD, whose update is linear in the gradient:
Adam's first step divides by |g| + 3e-6 and so amplifies the summation-order noise of near-zero
gradients, see docs/memory.md):
- with a device budget too small for the whole batch (VKRUN_MEMORY_BUDGET) the planner prints
  its plan line and fine-tunes in micro-batches; the weights equal those of a run with an
  explicit --micro-batch and of a run whose batch fits whole, to fp32 tolerance;
- under that budget without --no-recompute, the planner recomputes activations inside each block
  on the backward pass instead (micro-batches would hold fewer than 8 images): same weights;
- with an injected allocation limit (VKRUN_DEVICE_MEMORY_LIMIT, invisible to the planner) the
  allocation fails, the graph re-plans with smaller micro-batches and ends with the same weights.
"""

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _harness import Runner  # noqa: E402

import numpy as np  # noqa: E402
import vkrun_model as vm  # noqa: E402

ap = argparse.ArgumentParser()
ap.add_argument("--vkrun", required=True)
args = ap.parse_args()
VKRUN = os.path.abspath(args.vkrun)
TMP = tempfile.mkdtemp(prefix="vkrun_test_micro_")
R = Runner()
RUNS = {}


def setup():
    g = vm.keras_resnet50()
    vm.write_model(os.path.join(TMP, "r50.safetensors"), g, vm.random_tensors(g, seed=3))
    rng = np.random.default_rng(7)
    for c, tint in (("cats", (40, 0, 0)), ("dogs", (0, 0, 40))):
        os.makedirs(os.path.join(TMP, "data", c))
        for i in range(16):
            img = np.clip(rng.integers(0, 200, (48, 56, 3)) + np.array(tint), 0, 255).astype(np.uint8)
            with open(os.path.join(TMP, "data", c, "%s%02d.ppm" % (c, i)), "wb") as f:
                f.write(b"P6 56 48 255\n" + img.tobytes())


def train(name, *extra, env=None):
    e = dict(os.environ)
    e.update(env or {})
    out = os.path.join(TMP, name, "m.safetensors")
    p = subprocess.run([VKRUN, "train", "--model", os.path.join(TMP, "r50.safetensors"), "--data",
                        os.path.join(TMP, "data"), "--out", out, "--size", "32x32", "--batch", "32", "--epochs", "0",
                        "--fine-tune-epochs", "1", "--optimizer", "sgd", "--fine-tune-lr", "0.1", "--head", "64",
                        "--seed", "2"] +
                       [str(a) for a in extra], capture_output=True, text=True, env=e)
    if p.returncode != 0:
        raise AssertionError("vkrun train %s failed (%d):\n%s\n%s" % (name, p.returncode, p.stdout[-3000:],
                                                                     p.stderr[-3000:]))
    RUNS[name] = vm.read_model(out)[1]
    return p.stdout


def plan(stdout, stage):
    lines = [l for l in stdout.splitlines() if l.startswith(stage + ": memory plan:")]
    assert len(lines) == 1, "one plan line for %s expected:\n%s" % (stage, stdout)
    m = re.search(r"batch 32 (in one pass|as (\d+) micro-batches of (\d+))", lines[0])
    assert m, lines[0]
    print("  " + lines[0])
    return int(m.group(3)) if m.group(2) else 32


def compare(a, b):
    """max over tensors of max|a-b| / max|a|, and the same of the fine-tuning's change (vs `whole`)."""
    worst, name = 0.0, ""
    for k in a:
        x, y = np.asarray(a[k], np.float64), np.asarray(b[k], np.float64)
        d = float(np.abs(x - y).max() / max(np.abs(x).max(), 1e-30))
        if d >= worst:
            worst, name = d, k
    return worst, name


def moved(a):
    """How far fine-tuning moved the base weights from the random start (max relative)."""
    start = RUNS["start"]
    return max(float(np.abs(np.asarray(a[k], np.float64) - start[k]).max() / max(np.abs(start[k]).max(), 1e-30))
               for k in start if not k.endswith(("running_mean", "running_var")))


def t_whole():
    RUNS["start"] = vm.read_model(os.path.join(TMP, "r50.safetensors"))[1]
    out = train("whole")
    assert plan(out, "fine-tuning") == 32


def t_auto():
    out = train("auto", "--no-recompute", env={"VKRUN_MEMORY_BUDGET": "330"})
    mb = plan(out, "fine-tuning")
    assert 1 < mb < 32, "the planner should split the batch under a 330 MiB budget"
    assert "gradients accumulated, one update per batch" in out and "(VKRUN_MEMORY_BUDGET)" in out
    d, k = compare(RUNS["whole"], RUNS["auto"])
    mv = moved(RUNS["whole"])
    print("  micro-batches of %d vs whole batch: max relative difference %.3g (%s); fine-tuning moved weights by %.3g"
          % (mb, d, k, mv))
    assert d < 1e-5 and mv > 1e-3, (d, mv)


def t_explicit():
    out = train("mb5", "--micro-batch", "5")
    assert plan(out, "fine-tuning") == 5 and "(--micro-batch)" in out
    d, k = compare(RUNS["auto"], RUNS["mb5"])
    print("  planner's micro-batches vs explicit --micro-batch 5: max relative difference %.3g (%s)" % (d, k))
    assert d < 1e-5, d


def t_recompute():
    # under the same budget, micro-batches alone would hold 7 images: the planner recomputes instead
    out = train("recompute", env={"VKRUN_MEMORY_BUDGET": "330"})
    assert plan(out, "fine-tuning") == 32
    assert "activations recomputed inside blocks (auto)" in out, out
    d, k = compare(RUNS["whole"], RUNS["recompute"])
    print("  --recompute vs stored activations: max relative difference %.3g (%s)" % (d, k))
    assert d < 1e-6, d


def t_injected_oom():
    # the whole batch's fine-tuning buffers (340 MiB) do not fit under the limit; micro-batches of 16 do
    out = train("oom", env={"VKRUN_DEVICE_MEMORY_LIMIT": "325"})
    mb = plan(out, "fine-tuning")
    assert mb < 32, "the injected limit should have forced a re-plan"
    d, k = compare(RUNS["whole"], RUNS["oom"])
    print("  after out-of-memory at allocation (re-planned to micro-batches of %d) vs unforced run: max relative "
          "difference %.3g (%s)" % (mb, d, k))
    assert d < 1e-5, d


setup()
R.check("whole batch 32 fits: the reference run", t_whole)
R.check("budget too small: planner splits batch 32, same weights as the whole batch", t_auto)
R.check("--micro-batch 5 forces the split, same weights", t_explicit)
R.check("budget too small for micro-batches of 8: recomputation chosen, same weights", t_recompute)
R.check("injected allocation failure: re-planned, same weights as the unforced run", t_injected_oom)
shutil.rmtree(TMP, ignore_errors=True)
sys.exit(R.finish())
