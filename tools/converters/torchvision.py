"""torch state dicts -> vkrun models: torchvision ResNet18/34/50/101/152, VGG11/13/16/19 (features;
the classifier with --top) and the CIFAR ResNets of akamaster/pytorch_resnet_cifar10 (ResNet20/32/
44/56, option-A shortcuts).

Layer names are the state_dict module names; the functional parts of forward() get their own
layers (ResNet: `relu`, `<block>.relu1`, `<block>.relu2`, `<block>.add`, `<block>.relu_out`). The
architecture and its depth are read from the keys."""

import collections
import os
import re

import numpy as np

import vkrun_model as vm
from converters import graph as vg
from converters import torchvision_mobile as tvm
from converters.common import ConvertError, load_classes, set_classes, warn

TORCH_BN = {"gamma": "weight", "beta": "bias", "running_mean": "running_mean", "running_var": "running_var"}
CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
RESNET_DEPTHS = {(2, 2, 2, 2): 18, (3, 4, 6, 3): 34, (3, 4, 23, 3): 101, (3, 8, 36, 3): 152}


def _blocks(sd, stage):
    return 1 + max([int(m.group(1)) for k in sd for m in [re.match(r"layer%d\.(\d+)\." % stage, k)] if m] or [-1])


def _bn(b, name, x):
    return b.add(name, "batchnorm", [x], **vm.TORCH_BN)


def resnet(blocks, bottleneck, units=1000):
    """torchvision ResNet (v1.5: stride on the 3x3 conv). resnet(( 3, 4, 6, 3), True) is
    vkrun_model.torchvision_resnet50()."""
    b = vm._Builder()
    x = b.add("input", "input")
    x = vm._conv(b, "conv1", x, 64, 7, 2, [3, 3, 3, 3], use_bias=False)
    x = b.add("relu", "relu", [_bn(b, "bn1", x)])
    x = b.add("maxpool", "maxpool", [x], pool=[3, 3], strides=[2, 2], padding=[1, 1, 1, 1])
    cin, exp = 64, 4 if bottleneck else 1
    for li, (planes, n) in enumerate(zip((64, 128, 256, 512), blocks), 1):
        for bi in range(n):
            p = "layer%d.%d" % (li, bi)
            stride = 2 if (bi == 0 and li > 1) else 1
            if bottleneck:
                y = vm._conv(b, p + ".conv1", x, planes, 1, 1, "valid", use_bias=False)
                y = b.add(p + ".relu1", "relu", [_bn(b, p + ".bn1", y)])
                y = vm._conv(b, p + ".conv2", y, planes, 3, stride, [1, 1, 1, 1], use_bias=False)
                y = b.add(p + ".relu2", "relu", [_bn(b, p + ".bn2", y)])
                y = _bn(b, p + ".bn3", vm._conv(b, p + ".conv3", y, exp * planes, 1, 1, "valid", use_bias=False))
            else:
                y = vm._conv(b, p + ".conv1", x, planes, 3, stride, [1, 1, 1, 1], use_bias=False)
                y = b.add(p + ".relu1", "relu", [_bn(b, p + ".bn1", y)])
                y = _bn(b, p + ".bn2", vm._conv(b, p + ".conv2", y, planes, 3, 1, [1, 1, 1, 1], use_bias=False))
            s = x
            if bi == 0 and (stride != 1 or cin != exp * planes):
                s = vm._conv(b, p + ".downsample.0", x, exp * planes, 1, stride, "valid", use_bias=False)
                s = _bn(b, p + ".downsample.1", s)
            y = b.add(p + ".add", "add", [y, s])
            x = b.add(p + ".relu_out", "relu", [y])
            cin = exp * planes
    x = b.add("avgpool", "gap", [x])
    b.add("fc", "dense", [x], units=units, use_bias=True, activation="linear")
    depth = sum(blocks) * (3 if bottleneck else 2) + 2
    return vm._graph("resnet%d" % depth, "torchvision resnet%d" % depth, "input", 224, "torch", b.layers)


def cifar_resnet(n, units=10):
    """akamaster's CIFAR ResNet (6n+2 layers): 3x3 conv 16, three stages of n BasicBlocks (16, 32,
    64 planes; stride 2 at the start of stages 2, 3). Option-A shortcut
    F.pad(x[:, :, ::2, ::2], (0, 0, 0, 0, planes//4, planes//4)) = a frozen 1x1 stride-2 conv without
    bias (`<block>.shortcut`) whose weight is the identity at channel offset planes//4."""
    b = vm._Builder()
    x = b.add("input", "input")
    x = vm._conv(b, "conv1", x, 16, 3, 1, [1, 1, 1, 1], use_bias=False)
    x = b.add("relu", "relu", [_bn(b, "bn1", x)])
    cin = 16
    for li, planes in enumerate((16, 32, 64), 1):
        for bi in range(n):
            p = "layer%d.%d" % (li, bi)
            stride = 2 if (bi == 0 and li > 1) else 1
            y = vm._conv(b, p + ".conv1", x, planes, 3, stride, [1, 1, 1, 1], use_bias=False)
            y = b.add(p + ".relu1", "relu", [_bn(b, p + ".bn1", y)])
            y = _bn(b, p + ".bn2", vm._conv(b, p + ".conv2", y, planes, 3, 1, [1, 1, 1, 1], use_bias=False))
            s = x
            if stride != 1 or cin != planes:
                s = vm._conv(b, p + ".shortcut", x, planes, 1, stride, "valid", use_bias=False)
                b.layers[-1]["trainable"] = False
            y = b.add(p + ".add", "add", [y, s])
            x = b.add(p + ".relu_out", "relu", [y])
            cin = planes
    x = b.add("avgpool", "gap", [x])
    b.add("linear", "dense", [x], units=units, use_bias=True, activation="linear")
    name = "resnet%d_cifar" % (6 * n + 2)
    g = vm._graph(name, "akamaster pytorch_resnet_cifar10 " + name, "input", 32, "torch", b.layers)
    return g


def option_a_weight(cout, cin):
    """The 1x1 conv weight of an option-A shortcut: output channel cout//4 + i copies input i."""
    w = np.zeros((cout, cin, 1, 1), np.float32)
    off = (cout - cin) // 2
    w[off + np.arange(cin), np.arange(cin), 0, 0] = 1.0
    return w


def vgg(convs, pools, top=False, units=1000):
    """torchvision VGG (no BN): `convs` maps a features index to its filters, `pools` lists the
    features indices of the max pools; every conv is followed by its ReLU at index + 1. --top adds
    avgpool (adaptive 7x7: the identity at 224x224, so the graph keeps input 224), flatten and
    classifier.0/.3/.6 (dropouts .2/.5 kept as dropout layers)."""
    b = vm._Builder()
    x = b.add("input", "input")
    for i in range(max(max(convs), max(pools)) + 1):
        if i in convs:
            x = vm._conv(b, "features.%d" % i, x, convs[i], 3, 1, [1, 1, 1, 1])
        elif i - 1 in convs:
            x = b.add("features.%d" % i, "relu", [x])
        elif i in pools:
            x = b.add("features.%d" % i, "maxpool", [x], pool=[2, 2], strides=[2, 2], padding="valid")
    if top:
        x = b.add("flatten", "flatten", [x])
        x = b.add("classifier.0", "dense", [x], units=4096, use_bias=True, activation="relu")
        x = b.add("classifier.2", "dropout", [x], rate=0.5)
        x = b.add("classifier.3", "dense", [x], units=4096, use_bias=True, activation="relu")
        x = b.add("classifier.5", "dropout", [x], rate=0.5)
        b.add("classifier.6", "dense", [x], units=units, use_bias=True, activation="linear")
    depth = len(convs) + 3
    return vm._graph("vgg%d" % depth, "torchvision vgg%d%s" % (depth, "" if top else " features"),
                     "input", 224, "torch", b.layers)


def detect(sd):
    """(arch, graph builder arguments) from the state-dict keys."""
    if "linear.weight" in sd and "layer3.0.conv1.weight" in sd and "layer4.0.conv1.weight" not in sd:
        n = _blocks(sd, 1)
        return "resnet%d_cifar" % (6 * n + 2), dict(n=n)
    if "fc.weight" in sd and "layer4.0.conv1.weight" in sd:
        blocks = tuple(_blocks(sd, i) for i in (1, 2, 3, 4))
        bottleneck = "layer1.0.conv3.weight" in sd
        depth = sum(blocks) * (3 if bottleneck else 2) + 2
        if (bottleneck and depth not in (50, 101, 152)) or (not bottleneck and RESNET_DEPTHS.get(blocks) not in (18, 34)):
            raise ConvertError("ResNet with blocks %s is not a torchvision resnet18/34/50/101/152" % (blocks,))
        return "resnet%d" % depth, dict(blocks=blocks, bottleneck=bottleneck)
    feats = {int(m.group(1)): v for k, v in sd.items() for m in [re.match(r"features\.(\d+)\.weight$", k)] if m}
    if feats and all(v.dim() == 4 for v in feats.values()) and "features.0.bias" in sd:
        if any(v.dim() == 1 for v in feats.values()):
            raise ConvertError("VGG with batch norm (vgg*_bn) is not supported")
        convs = {i: int(v.shape[0]) for i, v in feats.items()}
        idx = sorted(convs)
        pools = [a + 2 for a, b in zip(idx, idx[1:] + [None]) if b is None or b - a == 3]
        return "vgg%d" % (len(convs) + 3), dict(convs=convs, pools=pools)
    return None, None


def convert_state_dict(sd, path, args):
    arch, kw = detect(sd)
    build = None
    if arch is None:
        arch, build = tvm.detect(sd)
    if arch is None:
        raise ConvertError("%s: unknown state_dict (expected torchvision resnet18/34/50/101/152, vgg11/13/16/19, "
                           "mobilenet_v2, mobilenet_v3_small/large, efficientnet_b0, densenet121, "
                           "or a CIFAR ResNet of pytorch_resnet_cifar10; first keys: %s)"
                           % (path, ", ".join(list(sd)[:5])))
    if args.arch and args.arch != arch:
        raise ConvertError("%s holds %s weights, not %s" % (path, arch, args.arch))
    if build is not None:
        key = tvm.classifier_key(arch)
        if args.top and key not in sd:
            raise ConvertError("--top: %s has no classifier (%s)" % (path, key))
        graph = build(top=args.top, units=int(sd[key].shape[0]) if args.top else 1000)
        units = graph["layers"][-1].get("units")
    elif arch.startswith("vgg"):
        units = int(sd["classifier.6.weight"].shape[0]) if args.top and "classifier.6.weight" in sd else 1000
        if args.top and "classifier.6.weight" not in sd:
            raise ConvertError("--top: %s has no classifier (classifier.6.weight)" % path)
        graph = vgg(top=args.top, units=units, **kw)
    else:
        fc = "linear.weight" if "cifar" in arch else "fc.weight"
        if sd[fc].dim() != 2:
            raise ConvertError("%s: %s has shape %s, expected [OUT, IN]" % (path, fc, tuple(sd[fc].shape)))
        units = int(sd[fc].shape[0])
        graph = cifar_resnet(units=units, **kw) if "cifar" in arch else resnet(units=units, **kw)
    graph["source"] += " (%s)" % os.path.basename(path)
    if args.size:
        graph["input"]["height"] = graph["input"]["width"] = args.size
    if args.preprocess:
        graph["input"]["preprocess"] = args.preprocess
    tensors = collections.OrderedDict()
    used = set()
    frozen = {l["name"]: l for l in graph["layers"] if l.get("trainable", True) is False}
    shapes = vg.infer_shapes(graph)
    for tn, shape in vg.expected_tensors(graph, shapes).items():
        ln, p = tn.rsplit(".", 1)
        if ln in frozen:  # option-A shortcut
            tensors[tn] = option_a_weight(shape[0], shape[1])
            continue
        key = "%s.%s" % (ln, TORCH_BN.get(p, p))
        if key not in sd:
            raise ConvertError("%s has no weight %r (expected shape %s)" % (path, key, shape))
        v = sd[key]
        if len(shape) == 2 and v.dim() == 4 and tuple(v.shape) == tuple(shape) + (1, 1):
            v = v.reshape(shape)  # a squeeze-and-excitation 1x1 conv, a dense layer here
        if tuple(v.shape) != tuple(shape):
            raise ConvertError("%s: weight %r has shape %s, expected %s" % (path, key, tuple(v.shape), tuple(shape)))
        if not v.is_floating_point():
            raise ConvertError("%s: weight %r has dtype %s, expected a float type" % (path, key, v.dtype))
        a = v.detach().to("cpu").float().numpy()
        if not np.all(np.isfinite(a)):
            raise ConvertError("%s: weight %r holds NaN or infinite values" % (path, key))
        tensors[tn] = np.ascontiguousarray(a)
        used.add(key)
    extra = [k for k in sd if k not in used and not k.endswith(".num_batches_tracked")
             and not (not args.top and k.startswith("classifier."))]
    if extra:
        warn("%s: ignored %d entries not in %s: %s" % (path, len(extra), arch, ", ".join(extra[:8])))
    last = graph["layers"][-1]
    if last["type"] == "dense":
        if "cifar" in arch and units == 10 and not args.classes and not args.no_classes:
            set_classes(graph, CIFAR10_CLASSES)
        else:
            set_classes(graph, load_classes(args, units, path))  # after the weights were checked
    return graph, tensors
