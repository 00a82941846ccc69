#!/usr/bin/python3
"""Parity of the C runtime with PyTorch on whole networks (forward and gradients).

  /usr/bin/python3 tests/python/test_parity.py --vkrun BUILD/vkrun --grad-dump BUILD/tests/grad_dump
                                               [--keep] [--perturb]

1. torchvision ResNet50, random weights and non-identity BN statistics, converted from a
   state_dict: `vkrun forward` logits vs torchvision.models.resnet50 (eval), 2x3x224x224.
2. Keras-layout ResNet50 (torch_ref.KerasResNet50) saved as a Keras h5, converted: `vkrun forward`
   vs the torch module in float64; `vkrun summary` layer count / parameter totals; layer names vs
   <repo>/../shared/reference/keras_resnet50_layers.txt (SKIP when absent).
3. Gradients: that ResNet50 + gap + dense softmax head, layers [0, index of conv5_block3_1_conv)
   frozen, BN in inference mode: every trainable tensor's gradient of the categorical
   cross-entropy from grad_dump vs torch autograd in float64, 2x3x64x64.
4. The real SqueezeNet v1.1 weights (<repo>/../shared/weights, SKIP when absent) on two photos of
   <repo>/../shared/data/cats_dogs/val (random input without PIL or the photos): `vkrun forward`
   vs torch_ref in float64, 2x3x224x224.
Bounds: forward max|diff|/max|ref| <= 1e-4, gradients per tensor <= 1e-3.  Every vkrun / grad_dump
run must exit 0 (with VKRUN_VALIDATION=1, as ctest sets it, that includes zero validation messages).

--perturb scales one weight tensor (by 1.01) of every model file handed to vkrun / grad_dump (and not the
reference): every check except the summary/names ones must then FAIL (a manual check that the
bounds bite; never in CI). --keep keeps the temp folder.
"""

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _harness import PYTHON, TOOLS, Runner, Skip, need_shared, rel_err  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

import convert as convert_mod  # noqa: E402
import make_synthetic  # noqa: E402
import torch_ref  # noqa: E402
import vkrun_model as vm  # noqa: E402

torch.set_num_threads(min(2, os.cpu_count() or 1))

# The README publishes the measured errors (forward 1.4e-6, gradients 2.2e-6 on llvmpipe) and these
# bounds: about 3x the measured values, so a real regression fails while a reordered reduction on
# another driver does not.
FWD_BOUND = 4e-6
GRAD_BOUND = 6e-6
CAFFE_MEAN = np.array([103.939, 116.779, 123.68], np.float32)           # B, G, R
TORCH_MEAN = np.array([0.485, 0.456, 0.406], np.float32)                # R, G, B
TORCH_STD = np.array([0.229, 0.224, 0.225], np.float32)
SQUEEZE_H5 = ("weights", "squeezenet_weights_tf_dim_ordering_tf_kernels_notop.h5")
NAMES_ARGS = [] if convert_mod.imagenet_classes() else ["--no-classes"]

A = None          # parsed arguments
TMP = None


class DetailRunner(Runner):
    """Runner whose PASS line also carries what the check returned (the measured errors)."""

    def run_check(self, name, fn):
        t = time.time()
        try:
            detail = fn()
        except Skip as e:
            self.skipped += 1
            print("SKIP %s: %s" % (name, e), flush=True)
            return
        except Exception as e:  # noqa: BLE001 -- any exception is a failed check
            self.failed += 1
            print("FAIL %s: %s: %s" % (name, type(e).__name__, e), flush=True)
            if not isinstance(e, AssertionError):
                import traceback
                traceback.print_exc(file=sys.stdout)
            return
        self.passed += 1
        print("PASS %s: %s (%.1fs)" % (name, detail or "ok", time.time() - t), flush=True)


R = DetailRunner()


def tmp(name):
    return os.path.join(TMP, name)


# ------------------------------------------------------------------ helpers

def run(cmd, what):
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode != 0:
        raise AssertionError("%s failed (exit %d): %s %s" % (what, p.returncode, p.stderr.strip()[-2000:],
                                                             p.stdout.strip()[-500:]))
    return p


def convert_ok(*args):
    run([PYTHON, os.path.join(TOOLS, "convert.py")] + list(args), "convert.py " + " ".join(args))


def perturbed(path, tensor):
    """With --perturb: a copy of the model file with `tensor` scaled by 1.01 (what the
    runtime is given); otherwise the file itself."""
    if not A.perturb:
        return path
    g, t = vm.read_model(path)
    t[tensor] = (t[tensor] * 1.01).astype(np.float32)
    out = path.replace(".safetensors", ".perturbed.safetensors")
    vm.write_model(out, g, t)
    print("     --perturb: %s scaled by 1.01 in %s" % (tensor, os.path.basename(out)))
    return out


def vkrun_forward(model, x, layer=None):
    np.save(tmp("fwd_x.npy"), np.ascontiguousarray(x, np.float32))
    cmd = [A.vkrun, "forward", model, "--input", tmp("fwd_x.npy"), "--output", tmp("fwd_y.npy"),
           "--batch", str(x.shape[0])]
    if layer:
        cmd += ["--layer", layer]
    run(cmd, "vkrun forward")
    y = np.load(tmp("fwd_y.npy"))
    os.unlink(tmp("fwd_y.npy"))
    return y


def pixels(n, size, seed):
    """Image-like RGB pixels in 0..255, [n, size, size, 3]: blocky colour regions plus noise."""
    rng = np.random.default_rng(seed)
    coarse = rng.uniform(0, 255, (n, size // 16 + 1, size // 16 + 1, 3))
    coarse = np.repeat(np.repeat(coarse, 16, axis=1), 16, axis=2)[:, :size, :size]
    return np.clip(0.8 * coarse + rng.uniform(-40, 40, (n, size, size, 3)), 0, 255).astype(np.float32)


def caffe(rgb):
    """[n, H, W, 3] RGB 0..255 -> NCHW BGR minus the ImageNet means (Keras 'caffe')."""
    return np.ascontiguousarray((rgb[..., ::-1] - CAFFE_MEAN).transpose(0, 3, 1, 2), np.float32)


def torch_pre(rgb):
    return np.ascontiguousarray(((rgb / 255.0 - TORCH_MEAN) / TORCH_STD).transpose(0, 3, 1, 2), np.float32)


def bound(e, what, b=FWD_BOUND):
    assert e <= b, "%s: max|diff|/max|ref| = %.2e > %.1e" % (what, e, b)


# ------------------------------------------------------------------ 1. torchvision ResNet50

def t_torchvision_resnet50():
    sd = make_synthetic.torchvision_resnet50_pth(tmp("tv.pth"), seed=101)
    convert_ok(tmp("tv.pth"), "-o", tmp("tv.safetensors"), *NAMES_ARGS)
    g, _ = vm.read_model(tmp("tv.safetensors"))
    last = g["layers"][-1]
    x = torch_pre(pixels(2, 224, 102))
    model = perturbed(tmp("tv.safetensors"), "layer2.1.conv2.weight")
    # the converted torchvision model ends in fc (linear logits); if it ever ends in a softmax,
    # compare the logits of fc (the softmax output hides errors)
    layer = "fc" if (last["type"] == "softmax" or last.get("activation") == "softmax") else None
    try:  # an independent reference only: no fallback to the project's own interpreter
        import torchvision
    except ImportError:
        raise Skip("python3-torchvision not installed: no independent reference for this check")
    y = vkrun_forward(model, x, layer)
    net = torchvision.models.resnet50()
    net.load_state_dict(sd, strict=True)
    what = "torchvision.models.resnet50"
    net = net.double().eval()
    with torch.no_grad():
        ref = net(torch.from_numpy(x).double()).numpy()
    assert y.shape == ref.shape == (2, 1000), (y.shape, ref.shape)
    e = rel_err(y, ref)
    bound(e, "fc logits vs " + what)
    same = int((y.argmax(1) == ref.argmax(1)).sum())
    return "fc logits vs %s (float64): max|diff|/max|ref| = %.2e (max|ref| %.3g, argmax agree %d/2)" % (
        what, e, np.abs(ref).max(), same)


# ------------------------------------------------------------------ 2. Keras-layout ResNet50

KERAS = {}


def keras_resnet50():
    """The synthetic Keras ResNet50 h5 (notop) and its converted model, made once."""
    if not KERAS:
        net = make_synthetic.keras_resnet50_h5(tmp("k.h5"), top=False, seed=201)
        convert_ok(tmp("k.h5"), "-o", tmp("k.safetensors"), "--arch", "resnet50")
        KERAS["net"] = net.double().eval()
    return KERAS["net"]


def t_keras_resnet50_forward():
    net = keras_resnet50()
    x = caffe(pixels(2, 224, 202))
    y = vkrun_forward(perturbed(tmp("k.safetensors"), "conv4_block2_2_conv.weight"), x)
    with torch.no_grad():
        ref = net(torch.from_numpy(x).double()).numpy()
    assert y.shape == ref.shape == (2, 2048, 7, 7), (y.shape, ref.shape)
    e = rel_err(y, ref)
    bound(e, "conv5_block3_out vs torch_ref.KerasResNet50")
    return "conv5_block3_out vs torch_ref.KerasResNet50 (float64): max|diff|/max|ref| = %.2e (max|ref| %.3g)" % (
        e, np.abs(ref).max())


SUMMARY_ROW = re.compile(r"^\s*(\d+)\s+(\S+) \((\w+)\)\s")


def summary_layers():
    keras_resnet50()
    p = run([A.vkrun, "summary", tmp("k.safetensors")], "vkrun summary")
    rows = [SUMMARY_ROW.match(l) for l in p.stdout.splitlines()]
    return p.stdout, [(int(m.group(1)), m.group(2), m.group(3)) for m in rows if m]


def t_keras_resnet50_summary():
    out, rows = summary_layers()
    assert len(rows) == 175, "vkrun summary lists %d layers, expected 175" % len(rows)
    assert [i for i, _, _ in rows] == list(range(175)), "layer indices are not 0..174"
    for want in ("Total params: 23,587,712", "Non-trainable params: 53,120"):
        assert want in out, "vkrun summary does not print %r:\n%s" % (want, out[-600:])
    return "175 layers, Total params 23,587,712, Non-trainable 53,120"


KERAS_TYPES = {"InputLayer": "input", "ZeroPadding2D": "zeropad", "Conv2D": "conv2d",
               "BatchNormalization": "batchnorm", "Activation": "relu", "MaxPooling2D": "maxpool", "Add": "add"}


def t_keras_resnet50_layer_names():
    path = need_shared("reference", "keras_resnet50_layers.txt")
    ref = [l.split() for l in open(path) if l.strip()]
    ref = [(int(i), n, KERAS_TYPES.get(t, t)) for i, n, t in ref]
    _, rows = summary_layers()
    g, _ = vm.read_model(tmp("k.safetensors"))
    from_file = [(i, l["name"], l["type"]) for i, l in enumerate(g["layers"])]
    for what, got in (("vkrun summary", rows), ("the converted file", from_file)):
        assert len(got) == len(ref), "%s: %d layers, reference %d" % (what, len(got), len(ref))
        diff = [(a, b) for a, b in zip(got, ref) if a != b]
        assert not diff, "%s: first difference %s vs reference %s" % (what, diff[0][0], diff[0][1])
    return "%d names, types and indices match %s" % (len(ref), os.path.basename(path))


# ------------------------------------------------------------------ 3. gradients

def t_keras_resnet50_gradients():
    net = keras_resnet50()
    g, t = vm.read_model(tmp("k.safetensors"))
    g["layers"].append({"name": "avg_pool", "type": "gap", "inputs": ["conv5_block3_out"]})
    g["layers"].append({"name": "head", "type": "dense", "inputs": ["avg_pool"], "units": 2, "use_bias": True,
                        "activation": "softmax"})
    x = caffe(pixels(2, 64, 302))
    # Glorot-uniform head, rescaled so that the logits differ by about 2 (an unsaturated softmax:
    # the loss and the head gradients stay informative whatever the scale of the features)
    rng = np.random.default_rng(301)
    lim = np.sqrt(6.0 / (2048 + 2))
    w = rng.uniform(-lim, lim, (2, 2048))
    with torch.no_grad():
        feats = net(torch.from_numpy(x).double()).mean(dim=(2, 3)).numpy()
    z = feats @ w.T
    w *= 2.0 / max(float(np.abs(z[:, 0] - z[:, 1]).max()), 1e-12)
    t["head.weight"] = w.astype(np.float32)
    t["head.bias"] = (rng.standard_normal(2) * 0.1).astype(np.float32)
    vm.write_model(tmp("head.safetensors"), g, t)
    names = [l["name"] for l in g["layers"]]
    freeze = next(i for i, n in enumerate(names) if n.startswith("conv5_block3_"))
    assert names[freeze] == "conv5_block3_1_conv" and freeze == 165, (freeze, names[freeze])
    tg = np.eye(2, dtype=np.float32)
    np.save(tmp("g_x.npy"), x)
    np.save(tmp("g_t.npy"), tg)
    out = tmp("grads")
    os.makedirs(out)
    model = perturbed(tmp("head.safetensors"), "conv5_block3_2_conv.weight")
    run([A.grad_dump, model, "--input", tmp("g_x.npy"), "--targets", tmp("g_t.npy"), "--out", out,
         "--freeze", str(freeze)], "grad_dump")
    got = {}
    for line in open(os.path.join(out, "grads.tsv")):
        f, name = line.rstrip("\n").split("\t")
        got[name] = np.load(os.path.join(out, f))
    loss = float(open(os.path.join(out, "loss.txt")).read().split()[0])

    # reference: the hand-written module in float64, eval mode (BN with running statistics),
    # only conv5_block3_* and the head trainable
    ref_grads = {}
    for p in net.parameters():
        p.requires_grad_(False)
    params = []
    for ln, mod in net.m.items():
        if not ln.startswith("conv5_block3_"):
            continue
        pn = ("gamma", "beta") if isinstance(mod, torch.nn.BatchNorm2d) else ("weight", "bias")
        for p, n in zip((mod.weight, mod.bias), pn):
            p.requires_grad_(True)
            params.append(("%s.%s" % (ln, n), p))
    hw = torch.from_numpy(t["head.weight"]).double().requires_grad_(True)
    hb = torch.from_numpy(t["head.bias"]).double().requires_grad_(True)
    params += [("head.weight", hw), ("head.bias", hb)]
    net.zero_grad()
    feats = net(torch.from_numpy(x).double()).mean(dim=(2, 3))
    logits = F.linear(feats, hw, hb)
    ref_loss = -(torch.from_numpy(tg).double() * F.log_softmax(logits, dim=1)).sum(dim=1).mean()
    ref_loss.backward()
    for n, p in params:
        ref_grads[n] = p.grad.numpy()
    for p in net.parameters():
        p.requires_grad_(False)
        p.grad = None

    assert sorted(got) == sorted(ref_grads), "grad_dump tensors %s differ from the trainable set %s" % (
        sorted(set(got) ^ set(ref_grads)), len(ref_grads))
    errs = sorted(((rel_err(got[n], ref_grads[n]), n) for n in ref_grads), reverse=True)
    worst, wname = errs[0]
    bad = [(e, n) for e, n in errs if not e <= GRAD_BOUND]
    assert not bad, "%d of %d gradients above %.1e; worst %s: max|diff|/max|ref| = %.2e" % (
        len(bad), len(errs), GRAD_BOUND, bad[0][1], bad[0][0])
    le = abs(loss - float(ref_loss)) / max(1.0, abs(float(ref_loss)))
    assert le <= 1e-4, "loss %.8g vs reference %.8g" % (loss, float(ref_loss))
    return ("%d gradients (freeze %d, 2x3x64x64), worst %s: max|diff|/max|ref| = %.2e; median %.1e; "
            "loss %.6f vs %.6f" % (len(errs), freeze, wname, worst, errs[len(errs) // 2][0], loss, float(ref_loss)))


# ------------------------------------------------------------------ 3b. Keras h5 built by this test

def keras_h5_from_reference(path, seed):
    """An h5 of the Keras weights layout (keras saving code: root attributes layer_names, backend,
    keras_version; a group per layer with attribute weight_names; datasets
    LAYER/LAYER/{kernel,bias,gamma,beta,moving_mean,moving_variance}:0, kernels HWIO) written with
    h5py from ../shared/reference/keras_resnet50_layers_detailed.txt alone -- no project code.
    Returns the reference rows and the float64 weights by layer."""
    import h5py
    rows = [l.split(None, 4) for l in open(need_shared("reference", "keras_resnet50_layers_detailed.txt")) if l.strip()]
    rng = np.random.default_rng(seed)
    weights = {}
    with h5py.File(path, "w") as f:
        f.attrs["layer_names"] = np.array([r[1].encode() for r in rows])
        f.attrs["backend"] = b"tensorflow"
        f.attrs["keras_version"] = b"2.2.4"
        for r in rows:
            name, kind, rest = r[1], r[2], r[4] if len(r) > 4 else ""
            grp = f.create_group(name)
            w = {}
            if kind == "Conv2D":
                kh, kw, ci, co = map(int, re.search(r"kernel=(\d+)x(\d+)x(\d+)x(\d+)", rest).groups())
                w["kernel"] = rng.standard_normal((kh, kw, ci, co)) * np.sqrt(1.0 / (kh * kw * ci))
                w["bias"] = rng.standard_normal(co) * 0.1
            elif kind == "BatchNormalization":
                c = int(re.search(r"channels=(\d+)", rest).group(1))
                w["gamma"] = rng.uniform(0.5, 1.5, c)
                w["beta"] = rng.standard_normal(c) * 0.1
                w["moving_mean"] = rng.standard_normal(c) * 0.1
                w["moving_variance"] = rng.uniform(0.5, 1.5, c)
            w = {k: v.astype(np.float32) for k, v in w.items()}
            grp.attrs["weight_names"] = np.array([("%s/%s:0" % (name, k)).encode() for k in w], dtype="S")
            for k, v in w.items():
                grp.create_dataset("%s/%s:0" % (name, k), data=v)
            weights[name] = {k: v.astype(np.float64) for k, v in w.items()}
    return rows, weights


def keras_reference_forward(rows, weights, x):
    """Forward of the reference list in float64 torch ops (NCHW), wired by Keras ResNet50's
    naming: X_N_bn <- X_N_conv, X_N_relu <- X_N_bn, X_2_conv <- X_1_relu, X_3_conv <- X_2_relu,
    X_1_conv and X_0_conv <- the block input, X_add <- its listed inputs, X_out <- X_add; every
    other layer takes the previous one.  Keras 'same' at stride 1 pads (k-1)/2 on each side."""
    out, prev, last_out, block_in = {}, None, None, {}
    for r in rows:
        name, kind, rest = r[1], r[2], r[4] if len(r) > 4 else ""
        m = re.match(r"(conv\d_block\d+)_(\d)_(conv|bn|relu)$", name)
        src = prev
        if m:
            blk, i, part = m.groups()
            block_in.setdefault(blk, last_out)
            if part == "conv":
                src = block_in[blk] if i in "01" else "%s_%d_relu" % (blk, int(i) - 1)
            else:
                src = "%s_%s_%s" % (blk, i, "conv" if part == "bn" else "bn")
        t = None
        if kind == "InputLayer":
            t = torch.from_numpy(x.astype(np.float64))
        elif kind == "ZeroPadding2D":
            t_, b_, l_, r_ = map(int, re.search(r"\((\d+), (\d+), (\d+), (\d+)\)", rest).groups())
            t = F.pad(out[src], (l_, r_, t_, b_))
        elif kind == "Conv2D":
            w = weights[name]
            k = torch.from_numpy(w["kernel"]).permute(3, 2, 0, 1)
            stride = int(re.search(r"stride=(\d+)", rest).group(1))
            pad = (k.shape[2] - 1) // 2 if "pad=same" in rest else 0
            t = F.conv2d(out[src], k, torch.from_numpy(w["bias"]), stride=stride, padding=pad)
        elif kind == "BatchNormalization":
            w = weights[name]
            eps = float(re.search(r"eps=([0-9.e-]+)", rest).group(1))
            t = F.batch_norm(out[src], torch.from_numpy(w["moving_mean"]), torch.from_numpy(w["moving_variance"]),
                             torch.from_numpy(w["gamma"]), torch.from_numpy(w["beta"]), False, 0.0, eps)
        elif kind == "Activation":
            t = F.relu(out[src])
        elif kind == "MaxPooling2D":
            t = F.max_pool2d(out[src], 3, 2)
        elif kind == "Add":
            a, b = re.search(r"inputs=(\S+),(\S+)", rest).groups()
            t = out[a] + out[b]
        else:
            raise AssertionError("reference list: unknown layer type %s" % kind)
        h, w_, c = map(int, r[3].split("x"))
        assert tuple(t.shape[1:]) == (c, h, w_), "%s: reference forward shape %s vs list %s" % (name, t.shape, r[3])
        out[name] = t
        prev = name
        if name.endswith("_out") or name == "pool1_pool":
            last_out = name
    return out[rows[-1][1]].numpy()


def t_keras_h5_from_reference_list():
    rows, weights = keras_h5_from_reference(tmp("ref_layout.h5"), seed=303)
    convert_ok(tmp("ref_layout.h5"), "-o", tmp("ref_layout.safetensors"), "--arch", "resnet50")
    x = caffe(pixels(2, 224, 404))
    y = vkrun_forward(perturbed(tmp("ref_layout.safetensors"), "conv3_block4_3_conv.weight"), x)
    with torch.no_grad():
        ref = keras_reference_forward(rows, weights, x)
    assert y.shape == ref.shape == (2, 2048, 7, 7), (y.shape, ref.shape)
    e = rel_err(y, ref)
    bound(e, "conv5_block3_out vs the reference list's forward")
    return ("h5 written by h5py from the reference list, converted, vs float64 torch ops wired from the list: "
            "max|diff|/max|ref| = %.2e (max|ref| %.3g)" % (e, np.abs(ref).max()))


# ------------------------------------------------------------------ 4. SqueezeNet, real weights

def cats_dogs(size):
    """Two photos (a cat and a dog) of shared/data/cats_dogs/val as RGB [2, size, size, 3]."""
    from PIL import Image
    d = need_shared("data", "cats_dogs", "val")
    out = []
    for sub in ("cats", "dogs"):
        fn = sorted(os.listdir(os.path.join(d, sub)))[0]
        with Image.open(os.path.join(d, sub, fn)) as im:
            out.append(np.asarray(im.convert("RGB").resize((size, size), Image.BILINEAR), np.float32))
    return np.stack(out)


def squeezenet_from_h5(path, x):
    """SqueezeNet v1.1 forward in float64 torch ops straight from the Keras 1 h5 (kernels HWIO),
    wired from the architecture in ../shared/README.md -- no project code: conv1 3x3/2 valid,
    ReLU, maxpool 3x3/2; fire2, fire3, maxpool, fire4, fire5, maxpool, fire6..fire9; a fire module
    is squeeze1x1 + ReLU, then [expand1x1 + ReLU, expand3x3 (same) + ReLU] concatenated in that
    order."""
    import h5py
    with h5py.File(path, "r") as f:
        def wb(layer):
            g = f[layer]
            k, b = (np.asarray(g[n], np.float64) for n in g.attrs["weight_names"])
            return torch.from_numpy(k).permute(3, 2, 0, 1), torch.from_numpy(b)

        def conv(t, layer, stride=1, pad=0):
            k, b = wb(layer)
            return F.relu(F.conv2d(t, k, b, stride=stride, padding=pad))

        def fire(t, n):
            s = conv(t, "fire%d/squeeze1x1" % n)
            return torch.cat([conv(s, "fire%d/expand1x1" % n), conv(s, "fire%d/expand3x3" % n, pad=1)], 1)

        t = torch.from_numpy(x.astype(np.float64))
        t = F.max_pool2d(conv(t, "conv1", stride=2), 3, 2)
        t = F.max_pool2d(fire(fire(t, 2), 3), 3, 2)
        t = F.max_pool2d(fire(fire(t, 4), 5), 3, 2)
        for n in (6, 7, 8, 9):
            t = fire(t, n)
        return t.numpy()


def t_squeezenet_real():
    src = need_shared(*SQUEEZE_H5)
    convert_ok(src, "-o", tmp("sq.safetensors"), "--arch", "squeezenet1_1")
    x, what = caffe(cats_dogs(224)), "two cats_dogs/val photos"
    y = vkrun_forward(perturbed(tmp("sq.safetensors"), "fire6/expand3x3.weight"), x)
    with torch.no_grad():
        ref = squeezenet_from_h5(src, x)
    assert y.shape == ref.shape == (2, 512, 13, 13), (y.shape, ref.shape)
    e = rel_err(y, ref)
    bound(e, "drop9 vs torch ops on the h5")
    return ("output vs float64 torch ops built from the h5 alone, on %s: max|diff|/max|ref| = %.2e (max|ref| %.3g)"
            % (what, e, np.abs(ref).max()))


def main():
    global A, TMP
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--vkrun", required=True)
    ap.add_argument("--grad-dump", required=True)
    ap.add_argument("--keep", action="store_true", help="keep the temp folder")
    ap.add_argument("--perturb", action="store_true", help="manual check: scale one weight tensor given to vkrun by 1.01")
    A = ap.parse_args()
    TMP = tempfile.mkdtemp(prefix="vkrun_test_parity_")
    print("test_parity: temp dir %s%s" % (TMP, " (--perturb: the forward/gradient checks must FAIL)"
                                          if A.perturb else ""))
    try:
        R.check("torchvision_resnet50_forward", t_torchvision_resnet50)
        R.check("keras_resnet50_forward", t_keras_resnet50_forward)
        R.check("keras_resnet50_summary", t_keras_resnet50_summary)
        R.check("keras_resnet50_layer_names", t_keras_resnet50_layer_names, shared=True)
        R.check("keras_resnet50_gradients", t_keras_resnet50_gradients)
        R.check("keras_h5_from_reference_list", t_keras_h5_from_reference_list, shared=True)
        R.check("squeezenet_real_forward", t_squeezenet_real, shared=True)
    finally:
        if not A.keep:
            shutil.rmtree(TMP, ignore_errors=True)
    return R.finish()


if __name__ == "__main__":
    sys.exit(main())
