#!/usr/bin/env python3
"""The installed vkrun is the whole product (issue 31): `cmake --install` into a fresh prefix, then,
from a folder outside the checkout with only PREFIX/bin (and /usr/bin, /bin) on the PATH:
vkrun-convert turns an ONNX file (a small CNN exported here by torch.onnx) into a base model,
vkrun trains a head on it, evaluates and predicts; vkrun --version runs; the messages that name
the converter name the installed command.

  /usr/bin/python3 tests/python/test_install.py --build BUILD_DIR
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _harness import Runner, Skip  # noqa: E402

import numpy as np  # noqa: E402

ap = argparse.ArgumentParser()
ap.add_argument("--build", required=True)
args = ap.parse_args()
BUILD = os.path.abspath(args.build)
TMP = tempfile.mkdtemp(prefix="vkrun_test_install_")
PREFIX = os.path.join(TMP, "prefix")
WORK = os.path.join(TMP, "work")
ENV = {k: v for k, v in os.environ.items() if k not in ("VKRUN", "PYTHONPATH")}
ENV["PATH"] = os.path.join(PREFIX, "bin") + ":/usr/bin:/bin"
R = Runner()


def run(*argv, ok=True):
    p = subprocess.run([str(a) for a in argv], capture_output=True, text=True, cwd=WORK, env=ENV, timeout=600)
    if ok and p.returncode != 0:
        raise AssertionError("%s failed (%d):\n%s\n%s" % (" ".join(map(str, argv[:3])), p.returncode, p.stdout[-2000:],
                                                          p.stderr[-2000:]))
    return p


def t_install():
    subprocess.run(["cmake", "--install", BUILD, "--prefix", PREFIX], check=True, capture_output=True)
    os.makedirs(WORK)
    for cmd in ("vkrun", "vkrun-convert"):
        assert shutil.which(cmd, path=ENV["PATH"]) == os.path.join(PREFIX, "bin", cmd), cmd
    out = run("vkrun", "--version").stdout
    assert out.startswith("vkrun ") and "Vulkan loader:" in out, out
    print("  " + out.splitlines()[0])


def t_convert_train_evaluate_predict():
    try:
        import torch
    except ImportError:
        raise Skip("python3-torch is not installed (needed to export the ONNX file)")
    if not os.path.isdir(PREFIX):
        raise Skip("needs the install of the previous check")
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.BatchNorm2d(8), torch.nn.ReLU(),
                              torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(8, 4)).eval()
    onnx_file = os.path.join(WORK, "tiny.onnx")
    torch.onnx.export(net, torch.zeros(1, 3, 16, 16), onnx_file, input_names=["x"], output_names=["y"], opset_version=13)
    p = run("vkrun-convert", "tiny.onnx", "-o", "base.safetensors")
    assert "wrote base.safetensors" in p.stdout, p.stdout
    rng = np.random.default_rng(1)
    for ci, c in enumerate(("a", "b")):
        os.makedirs(os.path.join(WORK, "imgs", c))
        for i in range(6):
            img = (rng.integers(0, 255, (16, 16, 3)) * 0.5 + 127 * ci).astype(np.uint8)
            with open(os.path.join(WORK, "imgs", c, "%d.ppm" % i), "wb") as f:
                f.write(b"P6\n16 16\n255\n" + img.tobytes())
    run("vkrun", "train", "--model", "base.safetensors", "--data", "imgs", "--out", "m.safetensors", "--head", "8",
        "--epochs", 2, "--batch", 4)
    for f in ("m.safetensors", "m.history.json", "m.loss.png"):
        assert os.path.getsize(os.path.join(WORK, f)) > 0, f
    ev = json.loads(run("vkrun", "evaluate", "m.safetensors", "--data", "imgs", "--json").stdout)
    assert sum(sum(r) for r in ev["confusion"]) == 12, ev
    pr = json.loads(run("vkrun", "predict", "m.safetensors", os.path.join("imgs", "a", "0.ppm"), "--json").stdout)
    assert abs(sum(pr[0]["probabilities"]) - 1) < 1e-5, pr
    print("  converted, trained (2 epochs), evaluated (accuracy %.3f) and predicted from the prefix" % ev["accuracy"])


def t_messages_name_installed_commands():
    if not os.path.isdir(PREFIX):
        raise Skip("needs the install of the first check")
    h5 = os.path.join(WORK, "weights.h5")
    with open(h5, "wb") as f:
        f.write(b"\x89HDF\r\n\x1a\n" + bytes(64))
    p = run("vkrun", "summary", h5, ok=False)
    assert p.returncode != 0 and "vkrun-convert FILE.h5 -o MODEL.safetensors" in p.stderr, p.stderr
    p = run("vkrun", "summary", "--supported")
    assert "converted by vkrun-convert" in p.stdout, p.stdout
    p = run("vkrun-convert", "nonexistent.onnx", "-o", "x.safetensors", ok=False)
    assert p.returncode != 0 and p.stderr.startswith("vkrun-convert: error:"), p.stderr


R.check("cmake --install puts vkrun and vkrun-convert in PREFIX/bin; vkrun --version", t_install)
R.check("from the prefix alone: vkrun-convert an ONNX file, train, evaluate, predict", t_convert_train_evaluate_predict)
R.check("messages name the installed converter", t_messages_name_installed_commands)
shutil.rmtree(TMP, ignore_errors=True)
sys.exit(R.finish())
