#!/usr/bin/python3
"""Mixed precision (issue 17): `--precision` on the command line and an fp16 training run.

  /usr/bin/python3 tests/python/test_fp16.py --vkrun build/vkrun

- --precision takes fp32, fp16, bf16, auto: a bad word is a clear error before any work; auto says
  what it chose (fp32: no faster kernel is verified, README); fp16 and bf16 say so and label the
  bench rows.
- SqueezeNet v1.1 (real ImageNet weights from <repo>/../shared) + head on the real cats-vs-dogs
  photos, 5 epochs at 128x128 (CI-cheap: ~60 s for the three runs on lavapipe), trained in fp32,
  fp16 (fp16 GEMM inputs in the feature extraction and the head, dynamic loss scaling) and bf16:
  each run's validation accuracy is within MARGIN of the fp32 run's and >= 0.88; `evaluate
  --precision fp16` of the fp16 model reproduces its last validation accuracy.  (SKIP when ../shared is absent.)
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _harness import PYTHON, TOOLS, Runner, need_shared  # noqa: E402

ap = argparse.ArgumentParser()
ap.add_argument("--vkrun", required=True)
args = ap.parse_args()
VKRUN = os.path.abspath(args.vkrun)
TMP = tempfile.mkdtemp(prefix="vkrun_test_fp16_")
R = Runner()
# 2 of the 50 validation photos: fp16 rounding of the GEMM inputs (2^-11 relative) moves the pooled
# features by ~1e-3 and can flip a borderline photo or two; a broken fp16 path (wrong scaling,
# lost gradients) ends near chance (0.5) or below the fp32 run by far more.
MARGIN = 0.04


def run(*argv, ok=True):
    p = subprocess.run([VKRUN] + [str(a) for a in argv], capture_output=True, text=True)
    if ok and p.returncode != 0:
        raise AssertionError("vkrun %s failed (%d):\n%s\n%s" % (argv[0], p.returncode, p.stdout[-3000:], p.stderr[-3000:]))
    return p


def t_flag_errors():
    p = run("train", "--model", "x.safetensors", "--data", TMP, "--out", os.path.join(TMP, "o.safetensors"),
            "--precision", "fp8", ok=False)
    assert p.returncode == 2 and "fp32, fp16, bf16 or auto" in p.stderr, (p.returncode, p.stderr)
    p = run("bench", "--op", "dense", "--batch", 1, "--iters", 1, "--precision", "bf16")
    assert "precision: bf16" in p.stderr and p.stdout.count("+bf16") == 6, (p.stderr, p.stdout)
    p = run("bench", "--op", "dense", "--batch", 1, "--iters", 1, "--precision", "auto")
    assert "precision: auto -> fp32" in p.stderr and "+fp16" not in p.stdout, p.stderr
    p = run("bench", "--op", "dense", "--batch", 1, "--iters", 1, "--precision", "fp16")
    assert "precision: fp16" in p.stderr and p.stdout.count("+fp16") == 6, (p.stderr, p.stdout)
    print("  " + p.stderr.strip())


def history(d):
    with open(os.path.join(d, "m.history.json")) as f:
        return json.load(f)


def cats_dogs(name, *extra):
    h5 = need_shared("weights", "squeezenet_weights_tf_dim_ordering_tf_kernels_notop.h5")
    train = need_shared("data", "cats_dogs", "train")
    val = need_shared("data", "cats_dogs", "val")
    model = os.path.join(TMP, "squeezenet.safetensors")
    if not os.path.exists(model):
        subprocess.run([PYTHON, os.path.join(TOOLS, "convert.py"), h5, "-o", model, "--arch", "squeezenet1_1"],
                       check=True, capture_output=True)
    d = os.path.join(TMP, name)
    os.makedirs(d, exist_ok=True)
    p = run("train", "--model", model, "--data", train, "--val", val, "--out", os.path.join(d, "m.safetensors"),
            "--size", "128x128", "--epochs", 5, "--seed", 1, *extra)
    return d, p, history(d)


def t_cats_dogs_fp16_vs_fp32():
    d32, _, h32 = cats_dogs("fp32")
    d16, p16, h16 = cats_dogs("fp16", "--precision", "fp16")
    assert "precision: fp16 (fp16 GEMM inputs" in p16.stdout + p16.stderr, p16.stdout[-2000:]
    _, pb, hb = cats_dogs("bf16", "--precision", "bf16")
    assert "precision: bf16 (bf16 GEMM inputs" in pb.stdout + pb.stderr, pb.stdout[-2000:]
    a32, a16, ab = h32["val_accuracy"][-1], h16["val_accuracy"][-1], hb["val_accuracy"][-1]
    loss = lambda h: " ".join("%.4f" % x for x in h["loss"])  # noqa: E731
    print("  val_accuracy after 5 epochs: fp32 %.4f, fp16 %.4f, bf16 %.4f (margin %.2f); training loss by epoch "
          "fp32 %s, fp16 %s, bf16 %s" % (a32, a16, ab, MARGIN, loss(h32), loss(h16), loss(hb)))
    assert a16 >= a32 - MARGIN and a16 >= 0.88, (a32, a16)
    assert ab >= a32 - MARGIN and ab >= 0.88, (a32, ab)
    assert h16["loss"][-1] <= 0.05 * h16["loss"][0], h16["loss"]  # as the fp32 run's (test_train.py)
    ev = json.loads(run("evaluate", os.path.join(d16, "m.safetensors"), "--data", need_shared("data", "cats_dogs", "val"),
                        "--json", "--precision", "fp16").stdout)
    assert abs(ev["accuracy"] - a16) < 1e-9 and abs(ev["loss"] - h16["val_loss"][-1]) < 1e-3, (ev["accuracy"], a16)


R.check("--precision: a bad word is an error; auto says fp32; fp16 / bf16 label the bench rows", t_flag_errors)
R.check("cats/dogs SqueezeNet head, 5 epochs: fp16 and bf16 val accuracy within 0.04 of fp32's, >= 0.88",
        t_cats_dogs_fp16_vs_fp32,
        shared=True)
shutil.rmtree(TMP, ignore_errors=True)
sys.exit(R.finish())
