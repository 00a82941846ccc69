#!/usr/bin/python3
"""Keras applications VGG16 and MobileNetV2 weight files -> vkrun (tools/converters/keras_apps.py).

  /usr/bin/python3 tests/python/test_convert_keras_apps.py --vkrun BUILD/vkrun [--part vgg|mobile] [--keep]

The test writes synthetic HDF5 files of the official layouts (every layer of model.layers in
layer_names, weightless ones included; kernels HWIO, DepthwiseConv2D [kh, kw, C, 1], Dense
[IN, OUT], BN gamma/beta/moving_mean/moving_variance, names '<layer>/<weight>:0') with seeded random
weights, converts them, and compares with a float64 torch forward wired here from the h5 alone
(TF 'same' padding, NHWC flatten): VGG16 notop at 64x64 and with top at 224x224 (flatten: SKIP until
vkrun knows it; the converted graph is interpreted in torch now), MobileNetV2 notop/top in the
tf.keras layout and the keras_applications 1.0 layout (Conv1_pad) at 64x64 (clip and grouped convs:
interpreted now, vkrun SKIPs until it knows them), EfficientNetB0 with top at 64x64 (its
Rescaling + Normalization layers become input.preprocess "torch": the reference gets 0..255 pixels).
Bound 1e-4 relative.
"""

import argparse
import collections
import os
import shutil
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _harness import Runner  # noqa: E402
import _nets as N  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

import make_synthetic  # noqa: E402
import vkrun_model as vm  # noqa: E402
from converters import graph as vg  # noqa: E402

torch.set_num_threads(min(2, os.cpu_count() or 1))
R = Runner()
C = None
VGG = ((2, 64), (2, 128), (3, 256), (3, 512), (3, 512))
MNV2 = ((1, 16, 1), (6, 24, 2), (6, 24, 1), (6, 32, 2), (6, 32, 1), (6, 32, 1), (6, 64, 2), (6, 64, 1),
        (6, 64, 1), (6, 64, 1), (6, 96, 1), (6, 96, 1), (6, 96, 1), (6, 160, 2), (6, 160, 1), (6, 160, 1),
        (6, 320, 1))


class H5:
    """Layer names and Keras-layout weights of a synthetic file."""

    def __init__(self, seed):
        self.rng = np.random.default_rng(seed)
        self.names, self.w = [], collections.OrderedDict()

    def layer(self, name, *weights):
        self.names.append(name)
        if weights:
            self.w[name] = list(weights)

    def conv(self, name, k, cin, cout, bias=True, depthwise=False):
        if depthwise:
            kern = self.rng.standard_normal((k, k, cin, 1)) * np.sqrt(2.0 / (k * k))
            self.layer(name, ("depthwise_kernel", kern.astype(np.float32)))
            return
        kern = (self.rng.standard_normal((k, k, cin, cout)) * np.sqrt(2.0 / (k * k * cin))).astype(np.float32)
        self.layer(name, ("kernel", kern), *([("bias", (self.rng.standard_normal(cout) * 0.05).astype(np.float32))]
                                             if bias else []))

    def bn(self, name, c):
        r = self.rng
        self.layer(name, ("gamma", r.uniform(0.5, 1.5, c).astype(np.float32)),
                   ("beta", (r.standard_normal(c) * 0.1).astype(np.float32)),
                   ("moving_mean", (r.standard_normal(c) * 0.1).astype(np.float32)),
                   ("moving_variance", r.uniform(0.5, 1.5, c).astype(np.float32)))

    def dense(self, name, cin, cout):
        lim = np.sqrt(6.0 / (cin + cout))
        self.layer(name, ("kernel", self.rng.uniform(-lim, lim, (cin, cout)).astype(np.float32)),
                   ("bias", (self.rng.standard_normal(cout) * 0.05).astype(np.float32)))

    def save(self, path):
        make_synthetic.write_keras_h5(path, self.names, self.w)

    def get(self, layer, weight):
        return torch.from_numpy(dict(self.w[layer])[weight]).double()


def vgg16_h5(top, seed):
    h = H5(seed)
    h.layer("input_1")
    cin = 3
    for b, (n, f) in enumerate(VGG, 1):
        for i in range(1, n + 1):
            h.conv("block%d_conv%d" % (b, i), 3, cin, f)
            cin = f
        h.layer("block%d_pool" % b)
    if top:
        h.layer("flatten")
        h.dense("fc1", 7 * 7 * 512, 4096)
        h.dense("fc2", 4096, 4096)
        h.dense("predictions", 4096, 1000)
    return h


def tf_same(x, k, s):
    """TF 'same' padding of an NCHW tensor for a k x k window at stride s (extra at the end)."""
    pads = []
    for size in (x.shape[3], x.shape[2]):
        out = -(-size // s)
        total = max((out - 1) * s + k - size, 0)
        pads += [total // 2, total - total // 2]
    return F.pad(x, pads)


def conv(h, x, name, s=1, pad="same", groups=1):
    d = dict(h.w[name])
    if "depthwise_kernel" in d:
        w, groups = h.get(name, "depthwise_kernel").permute(2, 3, 0, 1), x.shape[1]
    else:
        w = h.get(name, "kernel").permute(3, 2, 0, 1)
    b = h.get(name, "bias") if "bias" in d else None
    if pad == "same":
        x = tf_same(x, w.shape[2], s)
    return F.conv2d(x, w, b, stride=s, groups=groups)


def bn(h, x, name, eps):
    g, b, m, v = (h.get(name, k) for k in ("gamma", "beta", "moving_mean", "moving_variance"))
    return (x - m[:, None, None]) / torch.sqrt(v[:, None, None] + eps) * g[:, None, None] + b[:, None, None]


def vgg16_ref(h, x, top):
    x = torch.from_numpy(x).double()
    for b, (n, f) in enumerate(VGG, 1):
        for i in range(1, n + 1):
            x = F.relu(conv(h, x, "block%d_conv%d" % (b, i)))
        x = F.max_pool2d(x, 2, 2)
    if top:
        x = x.permute(0, 2, 3, 1).reshape(x.shape[0], -1)           # Keras Flatten: NHWC order
        for name in ("fc1", "fc2", "predictions"):
            x = x @ h.get(name, "kernel") + h.get(name, "bias")
            x = F.relu(x) if name != "predictions" else torch.softmax(x, 1)
    return x.numpy()


def mnv2_h5(top, seed, conv1_pad):
    h = H5(seed)
    h.layer("input_1")
    if conv1_pad:
        h.layer("Conv1_pad")
    h.conv("Conv1", 3, 3, 32, bias=False)
    h.bn("bn_Conv1", 32)
    h.layer("Conv1_relu")
    cin = 32
    for bid, (t, f, s) in enumerate(MNV2):
        p = "block_%d_" % bid if bid else "expanded_conv_"
        if bid:
            h.conv(p + "expand", 1, cin, cin * t, bias=False)
            h.bn(p + "expand_BN", cin * t)
            h.layer(p + "expand_relu")
        if s == 2:
            h.layer(p + "pad")
        h.conv(p + "depthwise", 3, cin * t, cin * t, bias=False, depthwise=True)
        h.bn(p + "depthwise_BN", cin * t)
        h.layer(p + "depthwise_relu")
        h.conv(p + "project", 1, cin * t, f, bias=False)
        h.bn(p + "project_BN", f)
        if cin == f and s == 1:
            h.layer(p + "add")
        cin = f
    h.conv("Conv_1", 1, 320, 1280, bias=False)
    h.bn("Conv_1_bn", 1280)
    h.layer("out_relu")
    if top:
        h.layer("global_average_pooling2d_1")
        h.dense("predictions", 1280, 1000)
    return h


def mnv2_ref(h, x, top):
    relu6 = lambda t: t.clamp(0, 6)  # noqa: E731
    x = torch.from_numpy(x).double()
    x = relu6(bn(h, conv(h, x, "Conv1", 2), "bn_Conv1", 1e-3))
    cin = 32
    for bid, (t, f, s) in enumerate(MNV2):
        p = "block_%d_" % bid if bid else "expanded_conv_"
        y = x
        if bid:
            y = relu6(bn(h, conv(h, y, p + "expand"), p + "expand_BN", 1e-3))
        y = relu6(bn(h, conv(h, y, p + "depthwise", s), p + "depthwise_BN", 1e-3))
        y = bn(h, conv(h, y, p + "project"), p + "project_BN", 1e-3)
        x = x + y if cin == f and s == 1 else y
        cin = f
    x = relu6(bn(h, conv(h, x, "Conv_1"), "Conv_1_bn", 1e-3))
    if top:
        x = torch.softmax(x.mean((2, 3)) @ h.get("predictions", "kernel") + h.get("predictions", "bias"), 1)
    return x.numpy()


B0 = ((3, 1, 32, 16, 1, 1), (3, 2, 16, 24, 6, 2), (5, 2, 24, 40, 6, 2), (3, 3, 40, 80, 6, 2), (5, 3, 80, 112, 6, 1),
      (5, 4, 112, 192, 6, 2), (3, 1, 192, 320, 6, 1))


def b0_blocks():
    for i, (k, reps, fin, fout, e, s) in enumerate(B0, 1):
        for j in range(reps):
            yield "block%d%s_" % (i, chr(97 + j)), k, fin if j == 0 else fout, fout, e, s if j == 0 else 1


def effnet_h5(top, seed):
    h = H5(seed)
    h.layer("input_1")
    h.layer("rescaling")
    h.layer("normalization", ("mean", np.array([0.485, 0.456, 0.406], np.float32)),
            ("variance", np.square([0.229, 0.224, 0.225]).astype(np.float32)), ("count", np.array(0, np.int64)))
    h.layer("stem_conv_pad")
    h.conv("stem_conv", 3, 3, 32, bias=False)
    h.bn("stem_bn", 32)
    h.layer("stem_activation")
    for bi, (p, k, cin, fout, e, s) in enumerate(b0_blocks()):
        f = cin * e
        if e != 1:
            h.conv(p + "expand_conv", 1, cin, f, bias=False)
            h.bn(p + "expand_bn", f)
            h.layer(p + "expand_activation")
        if s == 2:
            h.layer(p + "dwconv_pad")
        h.conv(p + "dwconv", k, f, f, bias=False, depthwise=True)
        h.bn(p + "bn", f)
        h.layer(p + "activation")
        h.layer(p + "se_squeeze")
        h.layer(p + "se_reshape")
        h.conv(p + "se_reduce", 1, f, max(1, cin // 4))
        h.conv(p + "se_expand", 1, max(1, cin // 4), f)
        h.layer(p + "se_excite")
        h.conv(p + "project_conv", 1, f, fout, bias=False)
        h.bn(p + "project_bn", fout)
        if s == 1 and cin == fout:
            h.layer(p + "drop")
            h.layer(p + "add")
    h.conv("top_conv", 1, 320, 1280, bias=False)
    h.bn("top_bn", 1280)
    h.layer("top_activation")
    if top:
        h.layer("avg_pool")
        h.layer("top_dropout")
        h.dense("predictions", 1280, 1000)
    return h


def effnet_ref(h, x, top):
    swish = lambda t: t * torch.sigmoid(t)  # noqa: E731
    x = (torch.from_numpy(x).double() / 255 - torch.tensor([0.485, 0.456, 0.406]).double()[:, None, None]) \
        / torch.tensor([0.229, 0.224, 0.225]).double()[:, None, None]
    x = swish(bn(h, conv(h, x, "stem_conv", 2), "stem_bn", 1e-3))
    for p, k, cin, fout, e, s in b0_blocks():
        y = x
        if e != 1:
            y = swish(bn(h, conv(h, y, p + "expand_conv"), p + "expand_bn", 1e-3))
        y = swish(bn(h, conv(h, y, p + "dwconv", s), p + "bn", 1e-3))
        se = y.mean((2, 3), keepdim=True)
        se = torch.sigmoid(conv(h, swish(conv(h, se, p + "se_reduce")), p + "se_expand"))
        y = bn(h, conv(h, y * se, p + "project_conv"), p + "project_bn", 1e-3)
        x = y + x if s == 1 and cin == fout else y
    x = swish(bn(h, conv(h, x, "top_conv"), "top_bn", 1e-3))
    if top:
        x = torch.softmax(x.mean((2, 3)) @ h.get("predictions", "kernel") + h.get("predictions", "bias"), 1)
    return x.numpy()


def convert_check(h, name, ref, size, top, extra=(), pixels=False):
    src, out = C.tmp(name + ".h5"), C.tmp(name + ".safetensors")
    h.save(src)
    N.convert(src, "-o", out, "--size", str(size), "--no-classes", *(["--top"] if top else []), *extra)
    g, t = vm.read_model(out, check=False)
    vg.validate(g, t)
    skip = ("rescaling", "normalization")  # EfficientNet's in-model preprocessing: input.preprocess "torch"
    want = [n for n in h.names if n not in skip and not n.endswith("_se_reshape")]
    assert [l["name"] for l in g["layers"] if "/" not in l["name"]] == want, "layer names differ from layer_names"
    x = np.random.default_rng(len(name)).uniform(-1, 1, (1 if size >= 224 else 2, 3, size, size)).astype(np.float32)
    r = ref(h, N.pixels(2, size, 5).transpose(0, 3, 1, 2), top) if pixels else ref(h, x, top)
    if pixels:  # the reference preprocesses 0..255 pixels itself; vkrun gets them preprocessed
        assert g["input"]["preprocess"] == "torch"
        x = N.torch_pre(N.pixels(2, size, 5))
    e0 = N.rel_err(N.interpret(g, t, x), r)
    assert e0 <= N.PARITY_BOUND, "%s: the converted graph interpreted in torch: rel err %.2e" % (name, e0)
    print("     %s: %d layers (= layer_names), interpreted graph vs the h5-wired torch forward: %.2e"
          % (name, len(g["layers"]), e0))
    N.require_types(C, g)
    # one image at 224x224 (time): no input-spread check there; the h5 weights are He-scaled
    e = N.check_parity(C, out, x, r, name, min_spread=None if len(x) < 2 else N.MIN_SPREAD)
    print("     %s: vkrun rel err %.2e" % (name, e))


def main():
    global C
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--vkrun", required=True)
    ap.add_argument("--keep", action="store_true")
    ap.add_argument("--part", choices=("all", "vgg", "mobile"), default="all",
                    help="VGG16 only or MobileNetV2 + EfficientNetB0 only (ctest runs them as two tests)")
    a = ap.parse_args()
    C = N.Ctx(a.vkrun)
    try:
        if a.part in ("all", "vgg"):
            R.check("keras_vgg16_notop", lambda: convert_check(vgg16_h5(False, 80), "vgg16", vgg16_ref, 64, False))
            R.check("keras_vgg16_top", lambda: convert_check(vgg16_h5(True, 81), "vgg16_top", vgg16_ref, 224, True))
        if a.part in ("all", "mobile"):
            R.check("keras_mobilenet_v2_notop",
                    lambda: convert_check(mnv2_h5(False, 82, False), "mnv2", mnv2_ref, 64, False))
            R.check("keras_mobilenet_v2_top_conv1_pad",
                    lambda: convert_check(mnv2_h5(True, 83, True), "mnv2_top", mnv2_ref, 64, True))
            R.check("keras_efficientnet_b0_top",
                    lambda: convert_check(effnet_h5(True, 84), "effb0", effnet_ref, 64, True, pixels=True))
    finally:
        if not a.keep:
            shutil.rmtree(C.tmpdir, ignore_errors=True)
    return R.finish()


if __name__ == "__main__":
    sys.exit(main())
