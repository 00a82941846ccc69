#!/usr/bin/python3
"""ONNX import (tools/converters/onnx_import.py) checked against torch.

  /usr/bin/python3 tests/python/test_onnx.py --vkrun BUILD/vkrun [--keep]

1. torchvision resnet18 / resnet34 / resnet50 / resnet101 (seeded random weights, randomized BN
   statistics) exported with torch.onnx.export at 64x64, imported with --top: `vkrun forward` logits
   vs the torch module, max|diff|/max|ref| <= 1e-4; vgg16.features the same way; squeezenet1_1
   with top (fire modules: Concat; ceil_mode max pools; the final conv + ReLU + global pool) at 96x96.
2. The default cut (the input of the final pooling: torchvision's layer4 output) and --cut NODE
   (layer2's last ReLU) against the torch feature maps.
3. A hand-built ONNX graph (onnx.helper) with what exporters leave: a symbolic batch, Constant
   nodes, Shape -> Gather -> Concat -> Reshape after GlobalAveragePool, auto_pad SAME_UPPER / SAME_LOWER with
   stride 2, asymmetric pads, Clip(min=0) as ReLU, MatMul + Add, Gemm (transB=0, alpha, beta), Dropout,
   Identity, Softmax: parity with the same ops in torch.
4. A small net with the issue-14 ops the torchvision networks do not cover (dilated and grouped conv,
   ReLU6, asymmetric F.pad, ceil_mode max/avg pools, Sigmoid, HardSwish, HardSigmoid, Mul, a view()
   flatten of a 5x5 map): the layer list, the graph interpreted in float64 torch vs the module, and
   `vkrun forward` (SKIP until vkrun knows the types).
5. An op without a vkrun layer (LeakyRelu, Resize): exit 1, the message names the node, the op
   and its inputs, and no output file is written.
6. `vkrun summary --supported` prints the lines of `convert.py --list` (the architectures and the ONNX
   ops, the latter derived from the importer's handlers) and every layer type of the format.
7. With ../shared: the real CIFAR ResNet20 through torch.onnx.export (its option-A shortcut is a
   strided Slice + channel Pad: one frozen selection conv) vs torch.
"""

import argparse
import os
import shutil
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _harness import Runner, Skip, need_shared  # noqa: E402
import _nets as N  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

import vkrun_model as vm  # noqa: E402

torch.set_num_threads(min(2, os.cpu_count() or 1))
R = Runner()
C = None


def need_onnx():
    try:
        import onnx  # noqa: F401
    except ImportError:
        raise Skip("python3-onnx is not installed (apt-get install -y python3-onnx)")


def onnx_model(model, name, size, *extra):
    """torch.onnx.export, then convert.py; returns the vkrun model path."""
    need_onnx()
    src, out = C.tmp(name + ".onnx"), C.tmp(name + ".safetensors")
    N.export_onnx(model, src, size)
    N.convert(src, "-o", out, "--no-classes", *extra)
    return out


def t_resnet(depth, seed):
    import torchvision
    m = N.calibrate_bn(N.randomize(getattr(torchvision.models, "resnet%d" % depth)(), seed), 64, seed + 100)
    path = onnx_model(m, "r%d" % depth, 64, "--top")
    g, _ = vm.read_model(path)
    assert g["input"]["preprocess"] == "torch" and g["layers"][-1]["type"] == "dense", g["layers"][-1]
    x = N.torch_pre(N.pixels(2, 64, seed))
    ref = N.torch_forward(m, x)
    t32 = N.torch32_err(m, x, ref)
    e = N.check_parity(C, path, x, ref, "resnet%d (onnx) logits" % depth, bound=N.parity_bound(t32))
    print("     resnet%d via ONNX: %d layers, logits rel err %.2e (torch float32: %.2e; bound %.1e)"
          % (depth, len(g["layers"]), e, t32, N.parity_bound(t32)))


def t_squeezenet():
    import torchvision
    m = N.randomize(torchvision.models.squeezenet1_1(), 19)
    path = onnx_model(m, "sq11", 96, "--top")
    g, _ = vm.read_model(path)
    types = [l["type"] for l in g["layers"]]
    assert types.count("concat") == 8 and types[-1] in ("gap", "flatten"), types[-4:]
    x = N.torch_pre(N.pixels(2, 96, 20))
    e = N.check_parity(C, path, x, N.torch_forward(m, x), "squeezenet1_1 (onnx) logits")
    print("     squeezenet1_1 via ONNX: %d layers, logits rel err %.2e" % (len(g["layers"]), e))


def t_supported_lists():
    """`vkrun summary --supported` lists what convert.py --list derives from the converters' code (the
    ONNX ops: the importer's op handlers and folded ops) and the layer types of the library."""
    import convert as convert_mod
    import subprocess
    out = subprocess.run([C.vkrun, "summary", "--supported"], capture_output=True, text=True, check=True).stdout
    lines = out.splitlines()
    assert [l.strip() for l in lines[2:]] == convert_mod.supported_lines(), (lines, convert_mod.supported_lines())
    types = lines[0].split(":", 1)[1].split()
    assert tuple(types) == vm.LAYER_TYPES, (types, vm.LAYER_TYPES)  # the C list and the Python writer's
    p = N.run([C.vkrun, "summary", "--supported", "m.safetensors"], "vkrun summary", ok=False)
    assert p.returncode == 2 and "--supported takes no model" in p.stderr, p.stderr
    print("     %d layer types; %s" % (len(types), "; ".join(l.split(":")[0] for l in lines[2:])))


def t_vgg16_features():
    import torchvision
    m = N.randomize(torchvision.models.vgg16(), 17).features
    path = onnx_model(m, "vgg16f", 64, "--top")
    x = N.torch_pre(N.pixels(2, 64, 18))
    e = N.check_parity(C, path, x, N.torch_forward(m, x), "vgg16 features (onnx)")
    print("     vgg16 features via ONNX: rel err %.2e" % e)


def t_cuts():
    import torchvision
    m = N.calibrate_bn(N.randomize(torchvision.models.resnet18(), 30), 64, 130)
    path = onnx_model(m, "r18cut", 64)
    g, _ = vm.read_model(path)
    assert g["layers"][-1]["type"] == "relu" and "cut at" in g["source"], (g["layers"][-1], g["source"])
    x = N.torch_pre(N.pixels(2, 64, 31))
    feats = {}
    hooks = [getattr(m, n).register_forward_hook(lambda mod, i, o, n=n: feats.__setitem__(n, o.numpy()))
             for n in ("layer2", "layer4")]
    N.torch_forward(m, x)
    for h in hooks:
        h.remove()
    e1 = N.check_parity(C, path, x, feats["layer4"], "default cut (layer4 output)")
    cut = C.tmp("r18cut2.safetensors")
    N.convert(C.tmp("r18cut.onnx"), "-o", cut, "--cut", "/layer2/layer2.1/relu_1/Relu")
    g, _ = vm.read_model(cut)
    assert g["layers"][-1]["name"] == "/layer2/layer2.1/relu_1/Relu", g["layers"][-1]
    e2 = N.check_parity(C, cut, x, feats["layer2"], "--cut layer2 output")
    p = N.convert(C.tmp("r18cut.onnx"), "-o", C.tmp("nope.safetensors"), "--cut", "no_such_node", ok=False)
    assert p.returncode == 1 and "no_such_node" in p.stderr and not os.path.exists(C.tmp("nope.safetensors")), p.stderr
    print("     default cut rel err %.2e, --cut layer2 %.2e" % (e1, e2))


def hand_built(path):
    """The graph of check 3, and a torch function computing the same."""
    from onnx import TensorProto, helper, numpy_helper
    rng = np.random.default_rng(40)
    w1 = rng.standard_normal((8, 3, 3, 3)).astype(np.float32) * 0.3
    b1 = rng.standard_normal(8).astype(np.float32) * 0.1
    w2 = rng.standard_normal((6, 8, 3, 3)).astype(np.float32) * 0.2
    w3 = rng.standard_normal((5, 6, 2, 2)).astype(np.float32) * 0.2
    mm = rng.standard_normal((5, 7)).astype(np.float32) * 0.2
    mb = rng.standard_normal(7).astype(np.float32) * 0.1
    gb = rng.standard_normal((7, 4)).astype(np.float32) * 0.3
    gc = rng.standard_normal(4).astype(np.float32) * 0.1
    inits = [numpy_helper.from_array(a, n) for a, n in
             ((w1, "w1"), (b1, "b1"), (w2, "w2"), (w3, "w3"), (mm, "mm"), (mb, "mb"), (gb, "gb"), (gc, "gc"),
              (np.array([0], np.int64), "zero_idx"), (np.array([0], np.int64), "axes0"))]
    nodes = [
        helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], name="conv_same_upper", auto_pad="SAME_UPPER", strides=[2, 2]),
        helper.make_node("Constant", [], ["zero"], name="zero_const", value=numpy_helper.from_array(np.array(0, np.float32))),
        helper.make_node("Clip", ["c1", "zero"], ["r1"], name="clip_relu"),
        helper.make_node("Conv", ["r1", "w2"], ["c2"], name="conv_same_lower", auto_pad="SAME_LOWER", strides=[2, 2]),
        helper.make_node("Relu", ["c2"], ["r2"], name="relu2"),
        helper.make_node("Conv", ["r2", "w3"], ["c3"], name="conv_asym", pads=[1, 0, 0, 1]),
        helper.make_node("Dropout", ["c3"], ["d3"], name="drop"),
        helper.make_node("Identity", ["d3"], ["i2"], name="ident"),
        helper.make_node("GlobalAveragePool", ["i2"], ["i3"], name="gap"),
        helper.make_node("Shape", ["i3"], ["shp"], name="shape"),
        helper.make_node("Gather", ["shp", "zero_idx"], ["n1"], name="gather", axis=0),
        helper.make_node("Constant", [], ["minus1"], name="minus1", value=numpy_helper.from_array(np.array([-1], np.int64))),
        helper.make_node("Concat", ["n1", "minus1"], ["target"], name="target", axis=0),
        helper.make_node("Reshape", ["i3", "target"], ["flat"], name="flatten_reshape"),
        helper.make_node("MatMul", ["flat", "mm"], ["m1"], name="matmul"),
        helper.make_node("Add", ["m1", "mb"], ["a1"], name="matmul_bias"),
        helper.make_node("Relu", ["a1"], ["r3"], name="relu3"),
        helper.make_node("Gemm", ["r3", "gb", "gc"], ["g1"], name="gemm", alpha=0.5, beta=2.0),
        helper.make_node("Softmax", ["g1"], ["y"], name="softmax", axis=1),
    ]
    graph = helper.make_graph(nodes, "hand", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, 15, 15])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 4])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], producer_name="test_onnx")
    import onnx
    onnx.checker.check_model(model)
    onnx.save(model, path)

    def ref(x):
        t = lambda a: torch.from_numpy(a).double()  # noqa: E731
        h = torch.from_numpy(x).double()
        h = F.relu(F.conv2d(F.pad(h, (1, 1, 1, 1)), t(w1), t(b1), stride=2))      # 15 -> 8: total 3 -> 1 / 2
        h = F.relu(F.conv2d(F.pad(h, (1, 0, 1, 0)), t(w2), stride=2))             # 8 -> 4: total 1, lower: before
        h = F.conv2d(F.pad(h, (0, 1, 1, 0)), t(w3))                              # pads [t=1, l=0, b=0, r=1]
        h = F.relu(h.mean((2, 3)) @ t(mm) + t(mb))
        return torch.softmax(0.5 * h @ t(gb) + 2.0 * t(gc), 1).numpy()
    return ref


def t_hand_built():
    need_onnx()
    ref = hand_built(C.tmp("hand.onnx"))
    out = C.tmp("hand.safetensors")
    N.convert(C.tmp("hand.onnx"), "-o", out, "--top", "--size", "15", "--preprocess", "none", "--no-classes")
    g, t = vm.read_model(out)
    L = {l["name"]: l for l in g["layers"]}
    assert L["conv_same_upper"]["padding"] == "same" and L["conv_same_lower"]["padding"] == [1, 0, 1, 0], L
    assert L["conv_asym"]["padding"] == [1, 0, 0, 1] and L["clip_relu"]["type"] == "relu"
    assert L["matmul"]["use_bias"] and "matmul_bias" not in L and L["gemm"]["units"] == 4
    assert "flatten_reshape" not in L and L["matmul"]["inputs"] == ["gap"], L["matmul"]  # [N,5,1,1] -> [N,5]: alias
    assert g["input"]["preprocess"] == "none" and g["input"]["height"] == 15
    x = np.random.default_rng(41).standard_normal((2, 3, 15, 15)).astype(np.float32)
    e = N.check_parity(C, out, x, ref(x), "hand-built graph")
    print("     hand-built graph: rel err %.2e" % e)


class OpsNet(torch.nn.Module):
    """The ONNX ops of the issue-14 vocabulary that the torchvision networks do not cover."""

    def __init__(self):
        super().__init__()
        self.dil = torch.nn.Conv2d(3, 8, 3, padding=2, dilation=2)
        self.grp = torch.nn.Conv2d(8, 8, 3, padding=1, groups=2, bias=False)
        self.fc = torch.nn.Linear(8 * 5 * 5, 5)

    def forward(self, x):
        y = F.relu6(self.dil(x))                                             # exported as Relu + Clip(0, 6)
        y = F.pad(self.grp(y), (1, 2, 0, 1))                                  # asymmetric zero padding
        y = F.max_pool2d(y, 3, 2, ceil_mode=True)
        y = F.avg_pool2d(y, 3, 2, padding=1, count_include_pad=False, ceil_mode=True)
        y = torch.sigmoid(y) * F.hardswish(y) + F.hardsigmoid(y)
        return torch.softmax(self.fc(y.view(y.size(0), -1)), 1)             # Shape chain + Reshape: flatten


def t_ops():
    need_onnx()
    m = N.randomize(OpsNet(), 70)
    path = onnx_model(m, "ops", 16, "--top")
    g, t = vm.read_model(path, check=False)
    L = [l for l in g["layers"] if l["type"] != "input"]
    types = [l["type"] for l in L]
    assert types == ["conv2d", "relu", "clip", "conv2d", "zeropad", "maxpool", "avgpool", "sigmoid", "hard_swish", "multiply",
                     "hard_sigmoid", "add", "flatten", "dense", "softmax"], types
    assert L[0]["dilation"] == [2, 2] and L[0]["padding"] == [2, 2, 2, 2] and L[3]["groups"] == 2, (L[0], L[3])
    assert L[4]["padding"] == [0, 1, 1, 2] and L[5]["ceil_mode"] and L[6]["ceil_mode"], L[4:7]
    assert L[6]["count_include_pad"] is False and t[L[3]["name"] + ".weight"].shape == (8, 4, 3, 3)
    x = N.torch_pre(N.pixels(2, 16, 71))
    ref = N.torch_forward(m, x)
    e0 = N.rel_err(N.interpret(g, t, x), ref)
    assert e0 <= N.PARITY_BOUND, "the converted graph, interpreted in torch: rel err %.2e" % e0
    print("     ops graph interpreted in float64 torch: rel err %.2e" % e0)
    N.require_types(C, g)
    e = N.check_parity(C, path, x, ref, "ops graph", min_spread=1e-3)  # softmax probabilities of a toy net
    print("     ops graph: vkrun rel err %.2e" % e)


def t_unmappable():
    need_onnx()

    class Bad(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = torch.nn.Conv2d(3, 4, 3)
            self.act = torch.nn.LeakyReLU(0.1)

        def forward(self, x):
            return F.interpolate(self.act(self.conv(x)), scale_factor=2.0)

    N.export_onnx(Bad().eval(), C.tmp("bad.onnx"), 16)
    out = C.tmp("bad.safetensors")
    p = N.convert(C.tmp("bad.onnx"), "-o", out, "--top", ok=False)
    msg = p.stderr.strip()
    assert p.returncode == 1 and not os.path.exists(out), (p.returncode, msg)
    for want in ("bad.onnx", "/act/LeakyRelu", "LeakyRelu", "/conv/Conv_output_0 [1, 4, 14, 14]", "cannot be mapped"):
        assert want in msg, "%r not in: %s" % (want, msg)
    print("     " + msg)


def t_resnet20_onnx():
    ck = need_shared("weights", "resnet20-12fca82f.th")
    m, _ = N.load_resnet20(ck)
    path = onnx_model(m, "r20", 32, "--top")
    g, t = vm.read_model(path)
    sel = [l for l in g["layers"] if l.get("trainable", True) is False]
    assert len(sel) == 2 and all(l["strides"] == [2, 2] and l["kernel"] == [1, 1] for l in sel), sel
    x = N.torch_pre(N.pixels(8, 32, 42))
    ref = N.torch_forward(m, x)
    y = N.vkrun_forward(C, path, x)
    e = N.rel_err(y, ref)
    assert e <= N.PARITY_BOUND and (y.argmax(1) == ref.argmax(1)).all(), "resnet20 via ONNX: rel err %.2e" % e
    print("     resnet20 via ONNX: logits rel err %.2e" % e)


def main():
    global C
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--vkrun", required=True)
    ap.add_argument("--keep", action="store_true")
    a = ap.parse_args()
    C = N.Ctx(a.vkrun)
    try:
        R.check("onnx_resnet18_forward", lambda: t_resnet(18, 11))
        R.check("onnx_resnet34_forward", lambda: t_resnet(34, 12))
        R.check("onnx_resnet50_forward", lambda: t_resnet(50, 15))
        R.check("onnx_resnet101_forward", lambda: t_resnet(101, 13))
        R.check("onnx_squeezenet1_1_forward", t_squeezenet)
        R.check("onnx_vgg16_features_forward", t_vgg16_features)
        R.check("onnx_default_cut_and_cut_node", t_cuts)
        R.check("onnx_hand_built_graph", t_hand_built)
        R.check("onnx_issue14_ops", t_ops)
        R.check("onnx_unmappable_op", t_unmappable)
        R.check("supported_lists_agree", t_supported_lists)
        R.check("onnx_resnet20_cifar_real", t_resnet20_onnx, shared=True)
    finally:
        if not a.keep:
            shutil.rmtree(C.tmpdir, ignore_errors=True)
    return R.finish()


if __name__ == "__main__":
    sys.exit(main())
