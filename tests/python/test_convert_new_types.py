#!/usr/bin/python3
"""Networks that need the issue-14 layer types: conversion, structure, and parity with torch once
vkrun knows the types.

  /usr/bin/python3 tests/python/test_convert_new_types.py --vkrun BUILD/vkrun [--via state_dict|onnx] [--keep]

torchvision mobilenet_v2, mobilenet_v3_small (exported at opset 14: ONNX HardSwish), mobilenet_v3_large,
efficientnet_b0 and densenet121 with seeded random weights, a randomized BN affine and BN statistics
measured on synthetic inputs (_nets.calibrate_bn: with random statistics their logits are the same for
every image to 7e-7, and a parity check against them would be vacuous), converted
from their state dicts (converters/torchvision_mobile.py) and through torch.onnx.export (--top, and
without: the features), 32x32:
- structure: the graph checks (converters/graph.py: shapes, every tensor present with its shape), the
  layer types the architecture must give (MobileNetV2: 17 depthwise convs and 35 ReLU6 clips;
  MobileNetV3: hard_swish, hard_sigmoid SE gates, SE 1x1 convs as dense; EfficientNet: swish, sigmoid
  SE gates; DenseNet: 58 concats, BN-ReLU-conv), and the conv/dense weight element count equal to
  torch's;
- the converted graph run by a float64 torch interpreter of the format (tools/torch_ref.py plus the
  new types, tests/python/_nets.py) vs the torch model, <= 1e-4: runs now;
- parity: `vkrun forward` logits (--top) and features (default cut) vs torch in float64, <= 1e-4 (or
  twice torch's own float32 error where that is larger; both printed). A check whose
  graph uses a type this vkrun does not know SKIPs with vkrun's "unknown layer type" message
  (DenseNet uses only existing types and runs now).
"""

import argparse
import collections
import os
import shutil
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _harness import Runner, Skip  # noqa: E402
import _nets as N  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402

import vkrun_model as vm  # noqa: E402
from converters import graph as vg  # noqa: E402

torch.set_num_threads(min(2, os.cpu_count() or 1))
R = Runner()
C = None
SIZE = 32
NETS = ("mobilenet_v2", "mobilenet_v3_small", "mobilenet_v3_large", "efficientnet_b0", "densenet121")


def weight_count(model):
    return sum(m.weight.numel() for m in model.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear)))


def read(path):
    g, t = vm.read_model(path, check=False)
    vg.validate(g, t)
    return g, t


def expect_types(name, g, via):
    types = collections.Counter(l["type"] for l in g["layers"])
    convs = [l for l in g["layers"] if l["type"] == "conv2d"]
    dw = [l for l in convs if l.get("groups", 1) > 1 and l["groups"] == l["filters"]]
    if name == "mobilenet_v2":
        clips = [l for l in g["layers"] if l["type"] == "clip"]
        assert len(dw) == 17 and len(clips) == 35 and all((l["min"], l["max"]) == (0.0, 6.0) for l in clips), \
            (len(dw), len(clips))
    elif name.startswith("mobilenet_v3"):
        assert types["hard_swish"] > 0 and types["hard_sigmoid"] == types["multiply"] > 0, types
        assert all(abs(l["alpha"] - 1 / 6) < 1e-7 and l["beta"] == 0.5 for l in g["layers"] if l["type"] == "hard_sigmoid")
        assert len(dw) == (11 if name.endswith("small") else 15), len(dw)
    elif name == "efficientnet_b0":
        assert types["swish"] == 49 and types["sigmoid"] == types["multiply"] == 16 and len(dw) == 16, types
    elif name == "densenet121":
        # ONNX: norm1 of the 58 dense layers, the 3 transitions and norm5 (norm0 and norm2 fold into the conv
        # before them); the state dict keeps all 121
        assert types["concat"] == 58 and not vg.uses_new_vocabulary(g), types
        assert types["batchnorm"] == (121 if via == "state dict" else 58 + 3 + 1), types
    return types


def check(name, m, seed, top, feat, via):
    """Structure, the graph interpreted in torch, and vkrun parity of the converted `top` / `feat`."""
    g, t = read(top)
    types = expect_types(name, g, via)
    n = sum(a.size for k, a in t.items() if k.endswith(".weight") and a.ndim in (2, 4))
    # SE 1x1 convs become dense layers with the same element count
    assert n == weight_count(m), "conv/dense weights: %d elements, torch has %d" % (n, weight_count(m))
    gf, _ = read(feat)
    assert gf["layers"][-1]["name"] in [l["name"] for l in g["layers"]] and len(gf["layers"]) < len(g["layers"])
    print("     %s via %s: %d layers with top (%s), %d without" % (
        name, via, len(g["layers"]), ", ".join("%s %d" % kv for kv in sorted(types.items())), len(gf["layers"])))
    x = N.torch_pre(N.pixels(2, SIZE, seed))
    ref = N.torch_forward(m, x)
    feats = N.torch_forward(m.features, x)
    if name == "densenet121":
        feats = np.maximum(feats, 0)  # DenseNet's forward applies the final ReLU after `features`
    e0 = N.rel_err(N.interpret(g, t, x), ref)
    assert e0 <= N.PARITY_BOUND, "%s: the converted graph, interpreted in torch: rel err %.2e" % (name, e0)
    print("     %s via %s: the graph with top interpreted in float64 torch vs the torch model: rel err %.2e"
          % (name, via, e0))
    N.require_types(C, g)
    t32 = N.torch32_err(m, x, ref)
    e1 = N.check_parity(C, top, x, ref, name + " logits", bound=N.parity_bound(t32))
    e2 = N.check_parity(C, feat, x, feats, name + " features", bound=N.parity_bound(t32))
    print("     %s via %s: vkrun logits rel err %.2e, features %.2e (torch float32 logits: %.2e; bound %.1e)"
          % (name, via, e1, e2, t32, N.parity_bound(t32)))


def t_onnx(name, seed, opset=13):
    import torchvision
    need_onnx()
    m = N.calibrate_bn(N.randomize(getattr(torchvision.models, name)(), seed), SIZE, seed + 100)
    src = C.tmp(name + ".onnx")
    N.export_onnx(m, src, SIZE, opset)
    top, feat = C.tmp(name + "_top.safetensors"), C.tmp(name + ".safetensors")
    N.convert(src, "-o", top, "--top", "--no-classes")
    N.convert(src, "-o", feat)
    check(name, m, seed, top, feat, "ONNX")


def t_state_dict(name, seed):
    import torchvision
    m = N.calibrate_bn(N.randomize(getattr(torchvision.models, name)(), seed), SIZE, seed + 100)
    src = C.tmp(name + ".pth")
    N.save_state_dict(m, src)
    top, feat = C.tmp(name + "_sd_top.safetensors"), C.tmp(name + "_sd.safetensors")
    N.convert(src, "-o", top, "--top", "--no-classes", "--size", str(SIZE))
    N.convert(src, "-o", feat, "--size", str(SIZE))
    check(name, m, seed, top, feat, "state dict")


def need_onnx():
    try:
        import onnx  # noqa: F401
    except ImportError:
        raise Skip("python3-onnx is not installed (apt-get install -y python3-onnx)")


def main():
    global C
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--vkrun", required=True)
    ap.add_argument("--keep", action="store_true")
    ap.add_argument("--via", choices=("all", "state_dict", "onnx"), default="all",
                    help="only the state-dict or only the ONNX checks (ctest runs them as two tests)")
    a = ap.parse_args()
    C = N.Ctx(a.vkrun)
    try:
        for i, name in enumerate(NETS):
            if a.via in ("all", "state_dict"):
                R.check("state_dict_" + name, lambda: t_state_dict(name, 60 + i))
            if a.via in ("all", "onnx"):
                R.check("onnx_" + name, lambda: t_onnx(name, 50 + i, 14 if name == "mobilenet_v3_small" else 13))
    finally:
        if not a.keep:
            shutil.rmtree(C.tmpdir, ignore_errors=True)
    return R.finish()


if __name__ == "__main__":
    sys.exit(main())
