"""Graph builders for torchvision mobilenet_v2, mobilenet_v3_small/large, efficientnet_b0 and
densenet121 (width 1.0): layer names are the state_dict module names (activations too:
`features.0.2` is MobileNetV2's first ReLU6), the functional parts of forward() get their own layers
(`<block>.add`, `<se>.mul`, DenseNet's `<layer>.cat` / `<block>.cat` and the final `relu`).
Without top the graph ends at the input of the final global pool; with top it adds `avgpool` (gap)
and the classifier (dropouts kept as dropout layers). Semantics as torch at inference: stochastic
depth is the identity, MobileNetV3's SE gate is hardsigmoid after a ReLU, EfficientNet's SE is SiLU
+ sigmoid, DenseNet's layers are BN-ReLU-conv and concatenate their inputs."""

import vkrun_model as vm

RELU6 = dict(min=0.0, max=6.0)
V3_BN = dict(epsilon=1e-3, momentum=0.99)           # torch BatchNorm2d(eps=0.001, momentum=0.01)
# (kernel, expanded, out, SE, hard-swish, stride) per inverted residual block, torchvision's tables
V3 = {
    "mobilenet_v3_large": ((3, 16, 16, 0, 0, 1), (3, 64, 24, 0, 0, 2), (3, 72, 24, 0, 0, 1), (5, 72, 40, 1, 0, 2),
                           (5, 120, 40, 1, 0, 1), (5, 120, 40, 1, 0, 1), (3, 240, 80, 0, 1, 2), (3, 200, 80, 0, 1, 1),
                           (3, 184, 80, 0, 1, 1), (3, 184, 80, 0, 1, 1), (3, 480, 112, 1, 1, 1),
                           (3, 672, 112, 1, 1, 1), (5, 672, 160, 1, 1, 2), (5, 960, 160, 1, 1, 1),
                           (5, 960, 160, 1, 1, 1)),
    "mobilenet_v3_small": ((3, 16, 16, 1, 0, 2), (3, 72, 24, 0, 0, 2), (3, 88, 24, 0, 0, 1), (5, 96, 40, 1, 1, 2),
                           (5, 240, 40, 1, 1, 1), (5, 240, 40, 1, 1, 1), (5, 120, 48, 1, 1, 1), (5, 144, 48, 1, 1, 1),
                           (5, 288, 96, 1, 1, 2), (5, 576, 96, 1, 1, 1), (5, 576, 96, 1, 1, 1)),
}
V3_LAST = {"mobilenet_v3_large": 1280, "mobilenet_v3_small": 1024}
# MobileNetV2 (expansion, out, repeats, stride); EfficientNet-B0 (expansion, kernel, stride, out, repeats)
V2 = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1))
B0 = ((1, 3, 1, 16, 1), (6, 3, 2, 24, 2), (6, 5, 2, 40, 2), (6, 3, 2, 80, 3), (6, 5, 1, 112, 3), (6, 5, 2, 192, 4),
      (6, 3, 1, 320, 1))
DENSENET121 = (6, 12, 24, 16)


def make_divisible(v, divisor=8):
    new = max(divisor, int(v + divisor / 2) // divisor * divisor)
    return new + divisor if new < 0.9 * v else new


class _Net(vm._Builder):
    def __init__(self, bn):
        super().__init__()
        self.bn = bn

    def conv_bn(self, p, x, filters, k, stride=1, groups=1, act=None):
        """torchvision Conv2dNormActivation: <p>.0 conv (no bias), <p>.1 BN, <p>.2 activation."""
        pad = (k - 1) // 2
        fields = dict(filters=filters, kernel=[k, k], strides=[stride, stride], padding=[pad] * 4,
                      use_bias=False, activation="linear")
        if groups != 1:
            fields["groups"] = groups
        x = self.add(p + ".0", "conv2d", [x], **fields)
        x = self.add(p + ".1", "batchnorm", [x], **self.bn)
        return self.act(p + ".2", x, act) if act else x

    def act(self, name, x, act):
        if act == "relu6":
            return self.add(name, "clip", [x], **RELU6)
        if act == "hard_sigmoid":
            return self.add(name, "hard_sigmoid", [x], alpha=1 / 6, beta=0.5)
        return self.add(name, act, [x])

    def se(self, p, x, squeeze, channels, act, gate):
        """torchvision SqueezeExcitation: avgpool, fc1 (1x1 conv = dense), act, fc2, gate, x * gate."""
        s = self.add(p + ".avgpool", "gap", [x])
        s = self.add(p + ".fc1", "dense", [s], units=squeeze, use_bias=True, activation="linear")
        s = self.act(p + ".activation", s, act)
        s = self.add(p + ".fc2", "dense", [s], units=channels, use_bias=True, activation="linear")
        s = self.act(p + ".scale_activation", s, gate)
        return self.add(p + ".mul", "multiply", [x, s])

    def head(self, x, dense, units, dropout=0.2):
        """avgpool + classifier: `dense` lists (name, units, activation-layer or None) before the last."""
        x = self.add("avgpool", "gap", [x])
        for name, u, act in dense:
            x = self.add(name, "dense", [x], units=u, use_bias=True, activation="linear")
            if act:
                x = self.act(act[0], x, act[1])
        i = len(dense) * 2 if dense else 0
        x = self.add("classifier.%d" % i, "dropout", [x], rate=dropout)
        self.add("classifier.%d" % (i + 1), "dense", [x], units=units, use_bias=True, activation="linear")


def _graph(name, b, top):
    g = vm._graph(name, "torchvision %s%s" % (name, "" if top else " features"), "input", 224, "torch", b.layers)
    return g


def mobilenet_v2(top=False, units=1000):
    b = _Net(vm.TORCH_BN)
    x = b.conv_bn("features.0", b.add("input", "input"), 32, 3, 2, act="relu6")
    cin, i = 32, 1
    for t, c, n, s in V2:
        for r in range(n):
            p, stride, hidden, j = "features.%d.conv" % i, s if r == 0 else 1, cin * t, 0
            y = x
            if t != 1:
                y, j = b.conv_bn(p + ".0", y, hidden, 1, act="relu6"), 1
            y = b.conv_bn(p + ".%d" % j, y, hidden, 3, stride, groups=hidden, act="relu6")
            y = b.add(p + ".%d" % (j + 1), "conv2d", [y], filters=c, kernel=[1, 1], strides=[1, 1], padding="valid",
                      use_bias=False, activation="linear")
            y = b.add(p + ".%d" % (j + 2), "batchnorm", [y], **vm.TORCH_BN)
            x = b.add("features.%d.add" % i, "add", [x, y]) if stride == 1 and cin == c else y
            cin, i = c, i + 1
    x = b.conv_bn("features.%d" % i, x, 1280, 1, act="relu6")
    if top:
        b.head(x, [], units)
    return _graph("mobilenet_v2", b, top)


def mobilenet_v3(name, top=False, units=1000):
    b = _Net(V3_BN)
    x = b.conv_bn("features.0", b.add("input", "input"), 16, 3, 2, act="hard_swish")
    cin = 16
    for i, (k, exp, out, se, hs, stride) in enumerate(V3[name], 1):
        p, act, j = "features.%d.block" % i, "hard_swish" if hs else "relu", 0
        y = x
        if exp != cin:
            y, j = b.conv_bn(p + ".0", y, exp, 1, act=act), 1
        y = b.conv_bn(p + ".%d" % j, y, exp, k, stride, groups=exp, act=act)
        if se:
            j += 1
            y = b.se(p + ".%d" % j, y, make_divisible(exp // 4), exp, "relu", "hard_sigmoid")
        y = b.conv_bn(p + ".%d" % (j + 1), y, out, 1)
        x = b.add("features.%d.add" % i, "add", [x, y]) if stride == 1 and cin == out else y
        cin = out
    n = len(V3[name]) + 1
    x = b.conv_bn("features.%d" % n, x, 6 * cin, 1, act="hard_swish")
    if top:
        b.head(x, [("classifier.0", V3_LAST[name], ("classifier.1", "hard_swish"))], units)
    return _graph(name, b, top)


def efficientnet_b0(top=False, units=1000):
    b = _Net(vm.TORCH_BN)
    x = b.conv_bn("features.0", b.add("input", "input"), 32, 3, 2, act="swish")
    cin = 32
    for si, (e, k, s, c, n) in enumerate(B0, 1):
        for r in range(n):
            p, stride, exp, j = "features.%d.%d.block" % (si, r), s if r == 0 else 1, cin * e, 0
            y = x
            if e != 1:
                y, j = b.conv_bn(p + ".0", y, exp, 1, act="swish"), 1
            y = b.conv_bn(p + ".%d" % j, y, exp, k, stride, groups=exp, act="swish")
            y = b.se(p + ".%d" % (j + 1), y, max(1, cin // 4), exp, "swish", "sigmoid")
            y = b.conv_bn(p + ".%d" % (j + 2), y, c, 1)
            x = b.add("features.%d.%d.add" % (si, r), "add", [x, y]) if stride == 1 and cin == c else y
            cin = c
    x = b.conv_bn("features.8", x, 1280, 1, act="swish")
    if top:
        b.head(x, [], units)
    return _graph("efficientnet_b0", b, top)


def densenet121(top=False, units=1000, growth=32, bn_size=4):
    b = _Net(vm.TORCH_BN)
    f = "features."
    x = b.add(f + "conv0", "conv2d", [b.add("input", "input")], filters=64, kernel=[7, 7], strides=[2, 2],
              padding=[3, 3, 3, 3], use_bias=False, activation="linear")
    x = b.add(f + "relu0", "relu", [b.add(f + "norm0", "batchnorm", [x], **vm.TORCH_BN)])
    x = b.add(f + "pool0", "maxpool", [x], pool=[3, 3], strides=[2, 2], padding=[1, 1, 1, 1])
    c = 64
    for bi, n in enumerate(DENSENET121, 1):
        blk, feats = f + "denseblock%d" % bi, [x]
        for li in range(1, n + 1):
            p = "%s.denselayer%d" % (blk, li)
            y = b.add(p + ".cat", "concat", list(feats)) if len(feats) > 1 else feats[0]
            y = b.add(p + ".relu1", "relu", [b.add(p + ".norm1", "batchnorm", [y], **vm.TORCH_BN)])
            y = b.add(p + ".conv1", "conv2d", [y], filters=bn_size * growth, kernel=[1, 1], strides=[1, 1],
                      padding="valid", use_bias=False, activation="linear")
            y = b.add(p + ".relu2", "relu", [b.add(p + ".norm2", "batchnorm", [y], **vm.TORCH_BN)])
            feats.append(b.add(p + ".conv2", "conv2d", [y], filters=growth, kernel=[3, 3], strides=[1, 1],
                               padding=[1, 1, 1, 1], use_bias=False, activation="linear"))
        x = b.add(blk + ".cat", "concat", feats)
        c += n * growth
        if bi < len(DENSENET121):
            t = f + "transition%d" % bi
            x = b.add(t + ".relu", "relu", [b.add(t + ".norm", "batchnorm", [x], **vm.TORCH_BN)])
            c //= 2
            x = b.add(t + ".conv", "conv2d", [x], filters=c, kernel=[1, 1], strides=[1, 1], padding="valid",
                      use_bias=False, activation="linear")
            x = b.add(t + ".pool", "avgpool", [x], pool=[2, 2], strides=[2, 2], padding="valid",
                      count_include_pad=True)
    x = b.add("relu", "relu", [b.add(f + "norm5", "batchnorm", [x], **vm.TORCH_BN)])
    if top:
        x = b.add("avgpool", "gap", [x])
        b.add("classifier", "dense", [x], units=units, use_bias=True, activation="linear")
    return _graph("densenet121", b, top)


def detect(sd):
    """(arch, builder) for the state dicts of this module, else (None, None)."""
    if "features.denseblock4.denselayer16.conv2.weight" in sd and "features.denseblock5.denselayer1.conv1.weight" not in sd:
        if "features.denseblock3.denselayer25.conv1.weight" not in sd and "features.denseblock3.denselayer24.conv1.weight" in sd:
            return "densenet121", densenet121
    if "features.18.0.weight" in sd and "features.17.conv.3.weight" in sd and "features.19.0.weight" not in sd:
        return "mobilenet_v2", mobilenet_v2
    for name, cfg in V3.items():
        n = len(cfg) + 1
        w = sd.get("features.%d.0.weight" % n)
        if w is not None and "features.1.block.0.0.weight" in sd and "features.%d.0.weight" % (n + 1) not in sd \
                and tuple(w.shape[:2]) == (6 * cfg[-1][2], cfg[-1][2]):
            return name, (lambda top=False, units=1000, name=name: mobilenet_v3(name, top, units))
    if "features.7.0.block.3.0.weight" in sd and "features.8.0.weight" in sd and "features.6.3.block.0.0.weight" in sd:
        if tuple(sd["features.8.0.weight"].shape[:2]) == (1280, 320) and "features.6.4.block.0.0.weight" not in sd:
            return "efficientnet_b0", efficientnet_b0
    return None, None


def classifier_key(arch):
    return {"densenet121": "classifier.weight", "mobilenet_v3_large": "classifier.3.weight",
            "mobilenet_v3_small": "classifier.3.weight"}.get(arch, "classifier.1.weight")
