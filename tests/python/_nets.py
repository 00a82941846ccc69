"""Shared by test_onnx.py, test_convert_torchvision.py and test_convert_new_types.py: torch models
with randomized weights and BN statistics, conversion through tools/convert.py (state dict or
torch.onnx.export -> ONNX import), `vkrun forward`, and the question whether the vkrun binary knows
a layer type yet (`vkrun summary` on a one-layer graph)."""

import json
import os
import subprocess
import tempfile

import numpy as np

from _harness import PYTHON, TOOLS, Skip

PARITY_BOUND = 1e-4   # max|vkrun - torch| / max|torch|
TORCH_MEAN = np.array([0.485, 0.456, 0.406], np.float32)
TORCH_STD = np.array([0.229, 0.224, 0.225], np.float32)


class Ctx:
    """The vkrun binary and a temp folder for one test file."""

    def __init__(self, vkrun):
        self.vkrun = vkrun
        self.tmpdir = tempfile.mkdtemp(prefix="vkrun_test_nets_")
        self._support = {}

    def tmp(self, name):
        return os.path.join(self.tmpdir, name)


def run(cmd, what, ok=True):
    p = subprocess.run(cmd, capture_output=True, text=True)
    if ok and p.returncode != 0:
        raise AssertionError("%s failed (exit %d): %s %s" % (what, p.returncode, p.stderr.strip()[-2000:],
                                                             p.stdout.strip()[-500:]))
    return p


def convert(*args, ok=True):
    """tools/convert.py: in this process when it must succeed (saves the interpreter and torch start),
    as a subprocess (the CompletedProcess) when the test looks at a failure."""
    if ok:
        import convert as convert_mod
        rc = convert_mod.main(["-q"] + list(args))
        assert rc == 0, "convert.py %s failed (exit %d; its message is above)" % (" ".join(args), rc)
        return None
    return run([PYTHON, os.path.join(TOOLS, "convert.py"), "-q"] + list(args), "convert.py " + " ".join(args), ok)


def pixels(n, size, seed):
    """Image-like RGB pixels in 0..255, [n, size, size, 3]: blocky colour regions plus noise."""
    rng = np.random.default_rng(seed)
    cell = max(size // 8, 2)
    coarse = rng.uniform(0, 255, (n, size // cell + 1, size // cell + 1, 3))
    coarse = np.repeat(np.repeat(coarse, cell, axis=1), cell, axis=2)[:, :size, :size]
    return np.clip(0.8 * coarse + rng.uniform(-40, 40, (n, size, size, 3)), 0, 255).astype(np.float32)


def torch_pre(rgb):
    return np.ascontiguousarray(((rgb / 255.0 - TORCH_MEAN) / TORCH_STD).transpose(0, 3, 1, 2), np.float32)


def randomize(model, seed):
    """Seeded random weights and non-identity BN statistics / affine. Conv and Linear weights are He
    normal (std sqrt(2 / fan_in), as torchvision initializes VGG): with torch's default init
    (variance 1/3 of that) a network without BN (VGG16, SqueezeNet) loses its input on the way to
    the logits (identical logits for every image). Deep BN networks need calibrate_bn as well."""
    import torch
    torch.manual_seed(seed)
    for m in model.modules():
        if hasattr(m, "reset_parameters") and not isinstance(m, torch.nn.BatchNorm2d):
            m.reset_parameters()
        if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear)):
            torch.nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
    g = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                c = m.num_features
                m.running_mean.copy_(torch.randn(c, generator=g) * 0.1)
                m.running_var.copy_(torch.rand(c, generator=g) + 0.5)
                m.weight.copy_(torch.rand(c, generator=g) + 0.5)
                m.bias.copy_(torch.randn(c, generator=g) * 0.1)
    return model.eval()


def calibrate_bn(model, size, seed, batches=4, n=16):
    """BN running statistics measured on batches x n synthetic image-like inputs (pixels(), torch
    preprocessing) at size x size, the BN affine kept. With randomize()'s random statistics a deep
    random network (MobileNetV2) loses its input: the features vary over images by ~5e-8; with
    measured ones they vary as a trained network's do (std ~0.2 over the cats-vs-dogs photos)."""
    import torch
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.reset_running_stats()
            m.momentum = None  # the cumulative average over the batches
    model.train()
    with torch.no_grad():
        for s in range(batches):
            model(torch.from_numpy(torch_pre(pixels(n, size, seed + s))))
    return model.eval()


def torch_forward(model, x):
    """The reference: `model` in float64 (a copy) on x. A float32 torch forward is itself off by up to
    1e-4 of max|y| through ResNet101 with realistic activations, as much as vkrun may be."""
    import copy
    import torch
    with torch.no_grad():
        return copy.deepcopy(model).double()(torch.from_numpy(np.asarray(x, np.float64))).numpy()


def export_onnx(model, path, size, opset=13):
    import torch
    import warnings
    warnings.filterwarnings("ignore", category=UserWarning)     # the exporter's shape-inference notes
    warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)
    torch.onnx.export(model, torch.zeros(1, 3, size, size), path, opset_version=opset,
                      input_names=["input"], output_names=["output"], do_constant_folding=True)


def vkrun_forward(ctx, model_path, x, layer=None):
    xp, yp = ctx.tmp("fwd_x.npy"), ctx.tmp("fwd_y.npy")
    np.save(xp, np.ascontiguousarray(x, np.float32))
    cmd = [ctx.vkrun, "forward", model_path, "--input", xp, "--output", yp, "--batch", str(x.shape[0])]
    if layer:
        cmd += ["--layer", layer]
    run(cmd, "vkrun forward " + os.path.basename(model_path))
    y = np.load(yp)
    os.unlink(yp)
    return y


def rel_err(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if a.shape != b.shape:
        raise AssertionError("shapes differ: vkrun %s vs torch %s" % (a.shape, b.shape))
    return float(np.abs(a - b).max() / max(np.abs(b).max(), 1e-30))


MIN_SPREAD = 1e-2  # max|ref[i] - ref[0]| / max|ref| over a batch: below, the output hardly depends on the input


def input_spread(ref):
    ref = np.asarray(ref, np.float64)
    return float(np.abs(ref - ref[:1]).max() / max(np.abs(ref).max(), 1e-30))


def torch32_err(model, x, ref):
    """max|torch float32 - ref| / max|ref|: PyTorch's own float32 error against the float64 reference."""
    import torch
    with torch.no_grad():
        return rel_err(model.float()(torch.from_numpy(np.asarray(x, np.float32))).numpy(), ref)


def parity_bound(torch32):
    """PARITY_BOUND, or twice PyTorch's own float32 error where that is larger: through ResNet101 with
    realistic activations (BN statistics from calibrate_bn) torch's float32 forward is 1.1e-4 off
    float64 -- no float32 implementation can promise 1e-4 there."""
    return max(PARITY_BOUND, 2 * torch32)


def check_parity(ctx, model_path, x, ref, what, bound=PARITY_BOUND, min_spread=MIN_SPREAD):
    """max|vkrun - ref| / max|ref| of `vkrun forward` on x (<= bound). The reference must depend on
    the input (batch >= 2, spread >= MIN_SPREAD): a deep net with random BN statistics computes a
    near-constant output (MobileNetV2: 7e-7 over images), against which a parity check is vacuous."""
    sp = input_spread(ref)
    assert min_spread is None or (len(ref) >= 2 and sp >= min_spread), \
        "%s: the reference hardly depends on the input (spread %.1e < %.0e)" % (what, sp, min_spread)
    y = vkrun_forward(ctx, model_path, x)
    y = y.reshape(ref.shape) if y.size == ref.size else y
    e = rel_err(y, ref)
    assert e <= bound, "%s: max|vkrun - torch|/max|torch| = %.2e > %.0e" % (what, e, bound)
    return e


def new_types_in(graph):
    """The issue-14 layer types / fields a graph uses (each as a one-layer probe)."""
    probes = []
    for l in graph["layers"]:
        t = l["type"]
        if t in ("clip", "sigmoid", "hard_sigmoid", "hard_swish", "swish", "multiply", "flatten"):
            probes.append(t)
        elif t == "conv2d" and l.get("groups", 1) != 1:
            probes.append("conv2d groups")
        elif t == "conv2d" and l.get("dilation", [1, 1]) != [1, 1]:
            probes.append("conv2d dilation")
        elif t in ("maxpool", "avgpool") and l.get("ceil_mode"):
            probes.append(t + " ceil_mode")
    return sorted(set(probes))


PROBE_LAYERS = {
    "clip": dict(type="clip", min=0.0, max=6.0), "sigmoid": dict(type="sigmoid"),
    "hard_sigmoid": dict(type="hard_sigmoid", alpha=1 / 6, beta=0.5), "hard_swish": dict(type="hard_swish"),
    "swish": dict(type="swish"), "flatten": dict(type="flatten"),
}


def require_types(ctx, graph):
    """Skip unless the vkrun binary knows every new layer type the graph uses: `vkrun summary` on a
    tiny graph with that layer says "unknown layer type" until it does (any other failure fails the
    check). The new conv2d / pool fields (groups, dilation, ceil_mode) come with the same change, so
    a graph using only those is probed with `clip`."""
    used = new_types_in(graph)
    probes = [p for p in used if p in PROBE_LAYERS or p == "multiply"] or (["clip"] if used else [])
    for probe in probes:
        if probe not in ctx._support:
            layers = [{"name": "in", "type": "input"}]
            if probe == "multiply":
                layers += [{"name": "g", "type": "gap", "inputs": ["in"]},
                           {"name": "m", "type": "multiply", "inputs": ["in", "g"]}]
            else:
                layers += [dict(name="x", inputs=["in"], **PROBE_LAYERS[probe])]
            g = {"version": 1, "name": "probe", "source": "test", "layers": layers,
                 "input": {"name": "in", "channels": 4, "height": 8, "width": 8, "preprocess": "none"}}
            path = ctx.tmp("probe.json")
            with open(path, "w") as f:
                json.dump(g, f)
            p = run([ctx.vkrun, "summary", path], "vkrun summary", ok=False)
            out = (p.stderr + p.stdout).strip()
            if p.returncode != 0 and "unknown layer type" not in out:
                raise AssertionError("vkrun summary on a one-layer %s graph failed (exit %d): %s"
                                     % (probe, p.returncode, out[-500:]))
            ctx._support[probe] = out.splitlines()[-1] if p.returncode != 0 else None
        if ctx._support[probe]:
            raise Skip("this vkrun does not support %s yet (the graph uses %s; vkrun summary: %s)"
                       % (probe, ", ".join(used), ctx._support[probe][:160]))


def cifar_resnet20():
    """akamaster/pytorch_resnet_cifar10's resnet20, re-implemented here (option-A shortcuts: the
    strided slice and the channel zero padding of the original LambdaLayer)."""
    import torch.nn as nn
    import torch.nn.functional as F

    class Block(nn.Module):
        def __init__(self, cin, planes, stride):
            super().__init__()
            self.conv1 = nn.Conv2d(cin, planes, 3, stride, 1, bias=False)
            self.bn1 = nn.BatchNorm2d(planes)
            self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
            self.bn2 = nn.BatchNorm2d(planes)
            self.pad = planes // 4 if (stride != 1 or cin != planes) else None

        def forward(self, x):
            out = F.relu(self.bn1(self.conv1(x)))
            out = self.bn2(self.conv2(out))
            s = x if self.pad is None else F.pad(x[:, :, ::2, ::2], (0, 0, 0, 0, self.pad, self.pad), "constant", 0)
            return F.relu(out + s)

    class ResNet20(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1 = nn.Conv2d(3, 16, 3, 1, 1, bias=False)
            self.bn1 = nn.BatchNorm2d(16)
            cin, layers = 16, []
            for planes, stride in ((16, 1), (32, 2), (64, 2)):
                blocks = []
                for i in range(3):
                    blocks.append(Block(cin, planes, stride if i == 0 else 1))
                    cin = planes
                layers.append(nn.Sequential(*blocks))
            self.layer1, self.layer2, self.layer3 = layers
            self.linear = nn.Linear(64, 10)

        def forward(self, x):
            out = F.relu(self.bn1(self.conv1(x)))
            out = self.layer3(self.layer2(self.layer1(out)))
            out = F.avg_pool2d(out, int(out.size()[3]))  # int(): a constant kernel when traced for ONNX
            return self.linear(out.view(out.size(0), -1))

    return ResNet20()


def load_resnet20(path):
    """(the torch ResNet20 with the checkpoint's weights, the state dict as convert.py reads it)"""
    import convert as convert_mod  # tools/ is on sys.path (_harness)
    sd = convert_mod.read_torch(path)
    m = cifar_resnet20()
    m.load_state_dict(sd)
    return m.eval(), sd


def save_state_dict(model, path):
    import torch
    torch.save(model.state_dict(), path)


def interpret(graph, tensors, x):
    """Runs a vkrun graph in float64 torch: tools/torch_ref.py's interpreter, plus the issue-14 types
    (test-only until torch_ref.py learns them) -- checks the converters' graphs now, before vkrun can."""
    import types
    import torch
    import torch.nn.functional as F
    import torch_ref
    import vkrun_model as vm
    from converters import graph as vg

    class ExtNet(torch_ref.VkrunNet):
        def _layer(self, l, x, outs):
            t = l["type"]
            a = outs[l["inputs"][0]] if t != "input" else None
            if t == "conv2d" and (l.get("groups", 1) != 1 or l.get("dilation", [1, 1]) != [1, 1]):
                d = l.get("dilation", [1, 1])
                eff = [(k - 1) * di + 1 for k, di in zip(l["kernel"], d)]
                pt, pb, pl, pr = vm.resolve_padding(l["padding"], a.shape[2], a.shape[3], eff, l["strides"])
                y = F.conv2d(F.pad(a, (pl, pr, pt, pb)), self._p(l, "weight"),
                             self._p(l, "bias") if l.get("use_bias", True) else None, stride=tuple(l["strides"]),
                             dilation=tuple(d), groups=l.get("groups", 1))
                return F.relu(y) if l.get("activation", "linear") == "relu" else y
            if t in ("maxpool", "avgpool") and l.get("ceil_mode"):  # torch's ceil_mode is the vocabulary's
                pt, pb, pl, pr = vm.resolve_padding(l["padding"], a.shape[2], a.shape[3], l["pool"], l["strides"])
                if (pt, pl) != (pb, pr):
                    raise NotImplementedError("ceil_mode pools with asymmetric padding are not interpreted here")
                k, st = tuple(l["pool"]), tuple(l["strides"])
                if t == "maxpool":
                    return F.max_pool2d(a, k, st, (pt, pl), ceil_mode=True)
                return F.avg_pool2d(a, k, st, (pt, pl), ceil_mode=True, count_include_pad=l["count_include_pad"])
            if t == "clip":
                return a.clamp(l["min"], l["max"])
            if t == "sigmoid":
                return torch.sigmoid(a)
            if t == "hard_sigmoid":
                return (l.get("alpha", 1 / 6) * a + l.get("beta", 0.5)).clamp(0, 1)
            if t == "hard_swish":
                return a * (a / 6 + 0.5).clamp(0, 1)
            if t == "swish":
                return a * torch.sigmoid(a)
            if t == "multiply":
                b = outs[l["inputs"][1]]
                return a * (b.reshape(b.shape[0], b.shape[1], 1, 1) if a.dim() == 4 and b.dim() == 2 else b)
            if t == "flatten":
                return a.flatten(1)
            return super()._layer(l, x, outs)

    saved = torch_ref.vm
    torch_ref.vm = types.SimpleNamespace(**dict(vars(vm), validate=vg.validate))
    try:
        net = ExtNet(graph, tensors, dtype=torch.float64).eval()
    finally:
        torch_ref.vm = saved
    with torch.no_grad():
        return net(torch.from_numpy(np.asarray(x, np.float64))).numpy()
