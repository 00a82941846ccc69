#!/usr/bin/python3
"""`vkrun train` as a Keras user drives it (issue 13, data/logs/CLI half): augmentation flags,
split-looking folders, the last partial batch, Keras's history.json, resuming from a checkpoint
alone, did-you-mean, TensorBoard event files (read back by an independent reader written here).

  /usr/bin/python3 tests/python/test_train_keras.py --vkrun build/vkrun

Every check runs on small synthetic image folders and a tiny architecture (no ../shared).
"""

import argparse
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _harness import Runner  # noqa: E402

import numpy as np  # noqa: E402

ap = argparse.ArgumentParser()
ap.add_argument("--vkrun", required=True)
ap.add_argument("--only", help="run only the checks whose name contains this")
args = ap.parse_args()
VKRUN = os.path.abspath(args.vkrun)
TMP = tempfile.mkdtemp(prefix="vkrun_test_keras_")
R = Runner()
_check = R.check
R.check = lambda name, fn, **kw: _check(name, fn, **kw) if not args.only or args.only in name else None


def run(*argv, env=None, ok=True):
    e = dict(os.environ)
    e.update(env or {})
    p = subprocess.run([VKRUN] + [str(a) for a in argv], capture_output=True, text=True, env=e)
    if ok and p.returncode != 0:
        raise AssertionError("vkrun %s failed (%d):\n%s\n%s" % (argv[0], p.returncode, p.stdout[-3000:], p.stderr[-3000:]))
    return p


def write_ppm(path, rng, w, h, tint):
    img = (rng.integers(0, 255, (h, w, 3)) * 0.5 + np.array(tint) * 0.5).astype(np.uint8)
    with open(path, "wb") as f:
        f.write(b"P6\n%d %d\n255\n" % (w, h) + img.tobytes())


def make_folder(name, classes, per_class, seed=1):
    rng = np.random.default_rng(seed)
    d = os.path.join(TMP, name)
    for ci, c in enumerate(classes):
        os.makedirs(os.path.join(d, c), exist_ok=True)
        for i in range(per_class):
            write_ppm(os.path.join(d, c, "img%03d.ppm" % i), rng, 40 + i % 7, 30 + i % 5,
                      (255 * (ci == 0), 255 * (ci == 1), 128))
    return d


def tiny():
    arch = os.path.join(TMP, "tiny.json")
    if not os.path.exists(arch):
        g = {"version": 1, "name": "tiny", "input": {"name": "in", "channels": 3, "height": 16, "width": 16,
                                                     "preprocess": "torch"},
             "layers": [{"name": "in", "type": "input"},
                        {"name": "c1", "type": "conv2d", "inputs": ["in"], "filters": 8, "kernel": [3, 3],
                         "strides": [2, 2], "padding": "same", "use_bias": True, "activation": "relu"}]}
        with open(arch, "w") as f:
            json.dump(g, f)
    return arch


def hist(d):
    with open(os.path.join(d, "history.json")) as f:
        h = json.load(f)
    return {k: [e[k] for e in h["epochs"]] for k in ("loss", "stage")}


def safetensors_meta(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        return json.loads(f.read(n)).get("__metadata__", {})


def t_augment():
    """--augment takes the full spec: a fixed seed gives the same losses, another augmentation other
    losses; the cache-off message comes once; --augment-fine-tune keeps the head's feature cache."""
    d = make_folder("aug", ["a", "b"], 10)
    base = ["train", "--model", tiny(), "--data", d, "--epochs", 2, "--batch", 4, "--head", "8", "--seed", 3]
    spec = "flip,rotate=20,zoom=0.2,shift=0.1,brightness=0.2,contrast=0.2,resized-crop"
    p1 = run(*base, "--out", os.path.join(TMP, "aug1", "m.safetensors"), "--augment", spec)
    p2 = run(*base, "--out", os.path.join(TMP, "aug2", "m.safetensors"), "--augment", spec)
    p3 = run(*base, "--out", os.path.join(TMP, "aug3", "m.safetensors"), "--augment", "flip")
    l1, l2, l3 = (hist(os.path.join(TMP, n))["loss"] for n in ("aug1", "aug2", "aug3"))
    assert l1 == l2, (l1, l2)
    assert l1 != l3, (l1, l3)
    assert p1.stdout.count("turns the feature cache off") == 1 and "--augment-fine-tune" in p1.stdout, p1.stdout
    assert "feature cache: off" in p1.stdout, p1.stdout
    p = run(*base, "--out", os.path.join(TMP, "aug4", "m.safetensors"), "--augment", "spin=3", ok=False)
    assert p.returncode == 2 and 'unknown item "spin=3"' in p.stderr and "rotate=DEG" in p.stderr, p.stderr
    p = run(*base, "--out", os.path.join(TMP, "aug5", "m.safetensors"), "--augment", "zoom=1.5", ok=False)
    assert p.returncode == 2 and "zoom" in p.stderr, p.stderr
    p = run(*base, "--out", os.path.join(TMP, "aug6", "m.safetensors"), "--augment", spec, "--augment-fine-tune",
            "--fine-tune-epochs", 1, "--fine-tune-lr", 1e-3)
    h = hist(os.path.join(TMP, "aug6"))
    assert "feature cache: in memory" in p.stdout and "cached pooled features" in p.stdout, p.stdout
    assert "turns the feature cache off" not in p.stdout and h["stage"] == ["head", "head", "fine-tune"], (p.stdout, h)
    print("  losses %s (same seed twice) vs %s (flip only)" % (l1, l3))


def t_augment_checkpoint_compat():
    """A flip,crop run's checkpoint records augment=6, as checkpoints always did (VKR_LOAD_FLIP |
    VKR_LOAD_CROP), and resumes; a richer spec is recorded by name."""
    d = make_folder("augck", ["a", "b"], 8)
    out = os.path.join(TMP, "augck_out", "m.safetensors")
    argv = ["train", "--model", tiny(), "--data", d, "--out", out, "--epochs", 2, "--batch", 4, "--head", "8",
            "--augment", "flip,crop"]
    p = run(*argv, env={"VKRUN_TEST_SIGINT_AFTER": "3"}, ok=False)
    assert p.returncode == 130, (p.returncode, p.stderr)
    settings = json.loads(safetensors_meta(out + ".checkpoint")["vkrun_checkpoint"])["settings"]
    assert " augment=6 " in settings, settings
    run(*argv, "--resume", out + ".checkpoint")
    assert len(hist(os.path.dirname(out))["loss"]) == 2
    p = run(*argv[:-1], "rotate=5,flip", env={"VKRUN_TEST_SIGINT_AFTER": "3"}, ok=False)
    settings = json.loads(safetensors_meta(out + ".checkpoint")["vkrun_checkpoint"])["settings"]
    assert " augment=flip,rotate=5 " in settings, settings


def t_split_folders():
    """--data DIR holding train/ and val/ is refused with the fix; --split-folders-as-classes trains
    on them as two classes."""
    d = os.path.join(TMP, "splitds")
    make_folder(os.path.join("splitds", "train"), ["a", "b"], 4)
    make_folder(os.path.join("splitds", "val"), ["a", "b"], 4)
    out = os.path.join(TMP, "split_out", "m.safetensors")
    p = run("train", "--model", tiny(), "--data", d, "--out", out, "--batch", 4, ok=False)
    assert p.returncode == 1 and "already split" in p.stderr and "--split-folders-as-classes" in p.stderr and \
        "'%s/train'" % d in p.stderr, p.stderr
    assert not os.path.exists(out)
    p = run("train", "--model", tiny(), "--data", d, "--out", out, "--batch", 4, "--epochs", 1, "--head", "4",
            "--split-folders-as-classes")
    assert "2 classes (train: 8, val: 8)" in p.stdout, p.stdout
    print("  " + [l for l in run("train", "--model", tiny(), "--data", d, "--out", out, ok=False).stderr.splitlines()
                  if "split" in l][0][:150] + " ...")


R.check("--augment SPEC: seeded, the cache-off message once; --augment-fine-tune caches the head", t_augment)
R.check("flip,crop checkpoints record augment=6 as before and resume", t_augment_checkpoint_compat)
R.check("--data with train/ and val/ refused with the fix; --split-folders-as-classes", t_split_folders)
shutil.rmtree(TMP, ignore_errors=True)
sys.exit(R.finish())
