#!/usr/bin/python3
"""PyTorch reference for vkrun model files -- the independent reference for the C runtime.

  /usr/bin/python3 tools/torch_ref.py MODEL.safetensors --input X.npy --output Y.npy [--layer NAME] [--double]

X is NCHW float32, already preprocessed (the graph's input.preprocess is NOT applied here).
Y is the output of the last layer (or of --layer NAME).

From Python (tests):
  net = VkrunNet(graph, tensors)          generic interpreter of any graph in the format
  run_model(graph, tensors, x, layer=None) -> numpy
  gradients(graph, tensors, x, targets, freeze=N, ...) -> loss, logits, parameter gradients
  KerasResNet50(include_top)              hand-written Keras-layout ResNet50 (v1 strides, conv
                                          biases, BN eps 1.001e-5), independent of the graph code;
                                          .keras_weights() gives its weights in Keras h5 layout.
"""

import argparse
import collections
import os
import sys

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import vkrun_model as vm  # noqa: E402


# --------------------------------------------------------------------------- generic interpreter

class VkrunNet(nn.Module):
    """Interprets a vkrun graph layer by layer. Parameters are registered under sanitized names
    (dots are not allowed in torch names); `self.tensor(name)` looks them up by file name."""

    def __init__(self, graph, tensors, dtype=torch.float32, frozen_upto=0):
        super().__init__()
        vm.validate(graph, tensors)
        self.graph = graph
        self.layers = graph["layers"]
        self._key = {}
        self.frozen = set()
        for i, l in enumerate(self.layers):
            if i < frozen_upto or l.get("trainable", True) is False:
                self.frozen.add(l["name"])
        for i, (name, arr) in enumerate(tensors.items()):
            key = "t%d" % i
            self._key[name] = key
            t = torch.from_numpy(np.array(arr, dtype=np.float32)).to(dtype)
            layer, param = name.rsplit(".", 1)
            if param in vm.NON_TRAINABLE_PARAMS:
                self.register_buffer(key, t)
            else:
                self.register_parameter(key, nn.Parameter(t, requires_grad=layer not in self.frozen))
        # BN layers after the frozen prefix run in training mode (batch statistics) when the
        # module is in train(); frozen BN layers always use the running statistics (Keras).

    def tensor(self, name):
        return getattr(self, self._key[name])

    def named_model_tensors(self):
        for name, key in self._key.items():
            yield name, getattr(self, key)

    def forward(self, x, layer=None, keep=False):
        outs = {}
        last = self.layers[-1]["name"]
        stop = layer if layer is not None else last
        if stop not in {l["name"] for l in self.layers}:
            raise KeyError("no layer named %r" % stop)
        for l in self.layers:
            outs[l["name"]] = self._layer(l, x, outs)
            if l["name"] == stop:
                break
        return outs if keep else outs[stop]

    def _p(self, l, param):
        return self.tensor(vm.tensor_name(l["name"], param))

    def _layer(self, l, x, outs):
        t = l["type"]
        if t == "input":
            return x
        a = outs[l["inputs"][0]]
        if t == "conv2d":
            g, dil = vm.conv_groups_dilation(l)
            keff = [(l["kernel"][i] - 1) * dil[i] + 1 for i in range(2)]
            pt, pb, pl, pr = vm.resolve_padding(l["padding"], a.shape[2], a.shape[3], keff, l["strides"])
            bias = self._p(l, "bias") if l.get("use_bias", True) else None
            if pt == pb and pl == pr:
                y = F.conv2d(a, self._p(l, "weight"), bias, stride=tuple(l["strides"]), padding=(pt, pl),
                             dilation=dil, groups=g)
            else:
                y = F.conv2d(F.pad(a, (pl, pr, pt, pb)), self._p(l, "weight"), bias, stride=tuple(l["strides"]),
                             dilation=dil, groups=g)
            return F.relu(y) if l.get("activation", "linear") == "relu" else y
        if t == "clip":
            return torch.clamp(a, l["min"], l["max"])
        if t == "sigmoid":
            return torch.sigmoid(a)
        if t == "hard_sigmoid":
            return torch.clamp(l.get("alpha", 1.0 / 6.0) * a + l.get("beta", 0.5), 0.0, 1.0)
        if t == "hard_swish":
            return F.hardswish(a)
        if t == "swish":
            return F.silu(a)
        if t == "multiply":
            b = outs[l["inputs"][1]]
            if b.dim() == 2 and a.dim() == 4:
                b = b[:, :, None, None]
            return a * b
        if t == "flatten":
            return a.flatten(1)
        if t == "batchnorm":
            train = self.training and l["name"] not in self.frozen
            return F.batch_norm(a, self._p(l, "running_mean"), self._p(l, "running_var"), self._p(l, "gamma"),
                                self._p(l, "beta"), training=train, momentum=1.0 - l["momentum"], eps=l["epsilon"])
        if t == "relu":
            return F.relu(a)
        if t == "add":
            return a + outs[l["inputs"][1]]
        if t == "zeropad":
            pt, pb, pl, pr = l["padding"]
            return F.pad(a, (pl, pr, pt, pb))
        if t in ("maxpool", "avgpool"):
            pt, pb, pl, pr = vm.resolve_padding(l["padding"], a.shape[2], a.shape[3], l["pool"], l["strides"])
            k, s = tuple(l["pool"]), tuple(l["strides"])
            # ceil_mode: windows may run past the padded input; pad further (eb, er) so that floor
            # mode gives the same windows; those cells never count (max: -inf; avg: not in the divisor)
            ceil = l.get("ceil_mode", False)
            oh = vm.window_out(a.shape[2], k[0], s[0], pt, pb, ceil)
            ow = vm.window_out(a.shape[3], k[1], s[1], pl, pr, ceil)
            eb = max(0, (oh - 1) * s[0] + k[0] - (a.shape[2] + pt + pb))
            er = max(0, (ow - 1) * s[1] + k[1] - (a.shape[3] + pl + pr))
            if t == "maxpool":
                a = F.pad(a, (pl, pr + er, pt, pb + eb), value=float("-inf"))
                return F.max_pool2d(a, k, s)
            ssum = F.avg_pool2d(F.pad(a, (pl, pr + er, pt, pb + eb)), k, s) * (k[0] * k[1])
            ones = torch.ones_like(a[:1, :1])
            if l["count_include_pad"]:  # torch: the padded input counts, the ceil overhang does not
                ones = F.pad(ones, (pl, pr, pt, pb), value=1.0)
                cnt = F.avg_pool2d(F.pad(ones, (0, er, 0, eb)), k, s) * (k[0] * k[1])
            else:
                cnt = F.avg_pool2d(F.pad(ones, (pl, pr + er, pt, pb + eb)), k, s) * (k[0] * k[1])
            return ssum / cnt
        if t == "gap":
            return a.mean(dim=(2, 3))
        if t == "dense":
            if a.dim() == 4:
                a = a.flatten(1)
            y = F.linear(a, self._p(l, "weight"), self._p(l, "bias") if l.get("use_bias", True) else None)
            act = l.get("activation", "linear")
            if act == "relu":
                return F.relu(y)
            if act == "softmax":
                return F.softmax(y, dim=1)
            return y
        if t == "concat":
            return torch.cat([outs[i] for i in l["inputs"]], dim=1)
        if t == "softmax":
            return F.softmax(a, dim=1)
        if t == "dropout":
            return a  # identity: vkrun never applies dropout (see docs/model-format.md)
        raise ValueError("layer %r: unknown type %r" % (l["name"], t))


def run_model(graph, tensors, x, layer=None, double=False):
    """Forward pass in eval mode; x is an NCHW numpy array. Returns a numpy array (float32,
    or float64 with double=True)."""
    dtype = torch.float64 if double else torch.float32
    net = VkrunNet(graph, tensors, dtype).eval()
    with torch.no_grad():
        y = net(torch.from_numpy(np.asarray(x)).to(dtype), layer=layer)
    return y.numpy()


# --------------------------------------------------------------------------- gradient helper

def append_dense_head(graph, tensors, units, seed=0, weight=None, bias=None, name="head"):
    """Returns (graph, tensors) with a linear dense head (logits) appended after the last layer,
    preceded by a gap layer when the last output is an image. Weights: given, or Glorot-uniform
    (Keras default) from `seed` with zero bias."""
    import copy
    g = copy.deepcopy(graph)
    g.pop("classes", None)
    t = collections.OrderedDict(tensors)
    shapes = vm.infer_shapes(g)
    last = g["layers"][-1]["name"]
    feat = shapes[last]
    if len(feat) == 3:
        g["layers"].append({"name": name + "_gap", "type": "gap", "inputs": [last]})
        last = name + "_gap"
    fin = feat[0]
    if weight is None:
        rng = np.random.default_rng(seed)
        lim = np.sqrt(6.0 / (fin + units))
        weight = rng.uniform(-lim, lim, size=(units, fin)).astype(np.float32)
    if bias is None:
        bias = np.zeros(units, np.float32)
    g["layers"].append({"name": name, "type": "dense", "inputs": [last], "units": units, "use_bias": True,
                        "activation": "linear"})
    t[name + ".weight"] = np.asarray(weight, np.float32)
    t[name + ".bias"] = np.asarray(bias, np.float32)
    return g, t


def gradients(graph, tensors, x, targets, freeze=0, head_units=None, head_seed=0, head_weight=None,
              head_bias=None, double=False, bn_train=True):
    """One training-style forward/backward, for gradient parity tests.

    Layers [0, freeze) are frozen (no gradients; their BN layers use running statistics, as
    Keras does for non-trainable BN). With head_units, a gap (if needed) + linear dense head is
    appended (see append_dense_head); otherwise the graph's last layer must give logits [N,K].
    Loss: mean over the batch of softmax cross-entropy with targets [N,K] (one-hot or soft).
    Trainable BN layers use batch statistics when bn_train (and update their running stats).

    Returns dict: loss (float), logits (numpy), grads {tensor name: numpy} for every trainable
    tensor, running {tensor name: numpy} (running stats after the step), graph, tensors (the
    model actually differentiated, head included)."""
    if head_units:
        graph, tensors = append_dense_head(graph, tensors, head_units, head_seed, head_weight, head_bias)
    dtype = torch.float64 if double else torch.float32
    net = VkrunNet(graph, tensors, dtype, frozen_upto=freeze)
    net.train(bn_train)
    xt = torch.from_numpy(np.asarray(x)).to(dtype)
    tt = torch.from_numpy(np.asarray(targets)).to(dtype)
    logits = net(xt)
    if logits.dim() != 2 or logits.shape != tt.shape:
        raise ValueError("logits %s and targets %s differ in shape" % (tuple(logits.shape), tuple(tt.shape)))
    loss = -(tt * F.log_softmax(logits, dim=1)).sum(dim=1).mean()
    net.zero_grad()
    loss.backward()
    grads = collections.OrderedDict()
    running = collections.OrderedDict()
    for name, p in net.named_model_tensors():
        if isinstance(p, nn.Parameter):
            if p.requires_grad:
                grads[name] = p.grad.detach().numpy().copy() if p.grad is not None else np.zeros(p.shape)
        else:
            running[name] = p.detach().numpy().copy()
    return {"loss": float(loss), "logits": logits.detach().numpy(), "grads": grads, "running": running,
            "graph": graph, "tensors": tensors}


# --------------------------------------------------------------------------- hand-written Keras ResNet50

class KerasResNet50(nn.Module):
    """Keras ResNet50 written out by hand as a torch module (v1: stride 2 on _1_conv and
    _0_conv of conv3/4/5 block1; every conv has a bias; BN eps 1.001e-5). Submodules carry the
    Keras layer names; independent of vkrun_model's graph builder."""

    STAGES = ((2, 64, 3, 1), (3, 128, 4, 2), (4, 256, 6, 2), (5, 512, 3, 2))

    def __init__(self, include_top=False, classes=1000):
        super().__init__()
        self.include_top = include_top
        m = collections.OrderedDict()
        m["conv1_conv"] = nn.Conv2d(3, 64, 7, stride=2, bias=True)
        m["conv1_bn"] = nn.BatchNorm2d(64, eps=1.001e-5)
        cin = 64
        for st, f, n, s1 in self.STAGES:
            for b in range(1, n + 1):
                p = "conv%d_block%d" % (st, b)
                s = s1 if b == 1 else 1
                if b == 1:
                    m[p + "_0_conv"] = nn.Conv2d(cin, 4 * f, 1, stride=s)
                    m[p + "_0_bn"] = nn.BatchNorm2d(4 * f, eps=1.001e-5)
                m[p + "_1_conv"] = nn.Conv2d(cin, f, 1, stride=s)
                m[p + "_1_bn"] = nn.BatchNorm2d(f, eps=1.001e-5)
                m[p + "_2_conv"] = nn.Conv2d(f, f, 3, padding=1)
                m[p + "_2_bn"] = nn.BatchNorm2d(f, eps=1.001e-5)
                m[p + "_3_conv"] = nn.Conv2d(f, 4 * f, 1)
                m[p + "_3_bn"] = nn.BatchNorm2d(4 * f, eps=1.001e-5)
                cin = 4 * f
        if include_top:
            m["predictions"] = nn.Linear(2048, classes)
        self.m = nn.ModuleDict(m)

    def forward(self, x):
        m = self.m
        x = F.pad(x, (3, 3, 3, 3))
        x = F.relu(m["conv1_bn"](m["conv1_conv"](x)))
        x = F.pad(x, (1, 1, 1, 1))  # ZeroPadding2D then valid max pool (zeros: x >= 0 here)
        x = F.max_pool2d(x, 3, 2)
        for st, f, n, s1 in self.STAGES:
            for b in range(1, n + 1):
                p = "conv%d_block%d" % (st, b)
                if b == 1:
                    sc = m[p + "_0_bn"](m[p + "_0_conv"](x))
                else:
                    sc = x
                y = F.relu(m[p + "_1_bn"](m[p + "_1_conv"](x)))
                y = F.relu(m[p + "_2_bn"](m[p + "_2_conv"](y)))
                y = m[p + "_3_bn"](m[p + "_3_conv"](y))
                x = F.relu(sc + y)
        if self.include_top:
            x = F.softmax(m["predictions"](x.mean(dim=(2, 3))), dim=1)
        return x

    @torch.no_grad()
    def randomize_(self, seed=0):
        """Random conv/dense weights (He normal) and random, non-identity BN parameters and
        moving statistics, all from `seed`."""
        g = torch.Generator().manual_seed(seed)
        for name, mod in self.m.items():
            if isinstance(mod, nn.Conv2d):
                fan_in = mod.in_channels * mod.kernel_size[0] * mod.kernel_size[1]
                mod.weight.copy_(torch.randn(mod.weight.shape, generator=g) * (2.0 / fan_in) ** 0.5)
                mod.bias.copy_(torch.randn(mod.bias.shape, generator=g) * 0.05)
            elif isinstance(mod, nn.BatchNorm2d):
                c = mod.num_features
                gamma = 0.5 + torch.rand(c, generator=g)
                if name.endswith("_3_bn"):
                    gamma = gamma * 0.3  # keeps the residual sum from growing block after block
                mod.weight.copy_(gamma)
                mod.bias.copy_(torch.randn(c, generator=g) * 0.1)
                mod.running_mean.copy_(torch.randn(c, generator=g) * 0.1)
                mod.running_var.copy_(0.5 + torch.rand(c, generator=g))
            elif isinstance(mod, nn.Linear):
                lim = (6.0 / (mod.in_features + mod.out_features)) ** 0.5
                mod.weight.copy_((torch.rand(mod.weight.shape, generator=g) * 2 - 1) * lim)
                mod.bias.copy_(torch.randn(mod.bias.shape, generator=g) * 0.01)
        return self

    def keras_weights(self):
        """OrderedDict Keras layer name -> list of (weight name, numpy array) in Keras's
        `layer.weights` order and layout: Conv2D kernel HWIO + bias; BatchNormalization gamma,
        beta, moving_mean, moving_variance; Dense kernel [IN, OUT] + bias."""
        out = collections.OrderedDict()
        for name, mod in self.m.items():
            if isinstance(mod, nn.Conv2d):
                out[name] = [("kernel", mod.weight.detach().numpy().transpose(2, 3, 1, 0).copy()),
                             ("bias", mod.bias.detach().numpy().copy())]
            elif isinstance(mod, nn.BatchNorm2d):
                out[name] = [("gamma", mod.weight.detach().numpy().copy()),
                             ("beta", mod.bias.detach().numpy().copy()),
                             ("moving_mean", mod.running_mean.numpy().copy()),
                             ("moving_variance", mod.running_var.numpy().copy())]
            elif isinstance(mod, nn.Linear):
                out[name] = [("kernel", mod.weight.detach().numpy().T.copy()),
                             ("bias", mod.bias.detach().numpy().copy())]
        return out


# --------------------------------------------------------------------------- CLI

def main(argv=None):
    ap = argparse.ArgumentParser(description="PyTorch reference forward pass of a vkrun model file.")
    ap.add_argument("model")
    ap.add_argument("--input", required=True, help="NCHW float32 .npy, already preprocessed")
    ap.add_argument("--output", required=True, help=".npy to write")
    ap.add_argument("--layer", help="output of this layer instead of the last one")
    ap.add_argument("--double", action="store_true", help="compute in float64 (output stays float64)")
    a = ap.parse_args(argv)
    try:
        graph, tensors = vm.read_model(a.model)
    except vm.ModelError as e:
        sys.stderr.write("torch_ref.py: error: %s\n" % e)
        return 1
    try:
        x = np.load(a.input)
    except (OSError, ValueError) as e:
        sys.stderr.write("torch_ref.py: error: cannot read %s: %s\n" % (a.input, e))
        return 1
    c = graph["input"]["channels"]
    if x.ndim != 4 or x.shape[1] != c:
        sys.stderr.write("torch_ref.py: error: input %s has shape %s, expected NCHW with C=%d\n"
                         % (a.input, x.shape, c))
        return 1
    if a.layer is not None and a.layer not in vm.layer_index(graph):
        sys.stderr.write("torch_ref.py: error: %s has no layer named %r\n" % (a.model, a.layer))
        return 1
    try:
        vm.infer_shapes(graph, x.shape[2], x.shape[3])
    except vm.ModelError as e:
        sys.stderr.write("torch_ref.py: error: input size %dx%d: %s\n" % (x.shape[2], x.shape[3], e))
        return 1
    y = run_model(graph, tensors, x.astype(np.float32), a.layer, a.double)
    np.save(a.output, y if a.double else y.astype(np.float32))
    return 0


if __name__ == "__main__":
    sys.exit(main())
