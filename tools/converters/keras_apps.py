"""Keras applications VGG16 and MobileNetV2 (HDF5 weights of the official layout) -> vkrun.

One graph layer per Keras layer, in model.layers order, with Keras's names (the weight file's
layer_names): a layer's index is its Keras index. Fused activations stay in the conv/dense layer
where vkrun has them (`relu`, `softmax`); Keras ReLU(6.) layers are `clip` 0..6.
Kernels HWIO -> OIHW, DepthwiseConv2D [kh, kw, C, 1] -> grouped [C, 1, kh, kw], Dense [IN, OUT] ->
[OUT, IN]; VGG16's fc1 rows are reordered from Keras's NHWC flatten to vkrun's NCHW flatten."""

import collections

import numpy as np

import vkrun_model as vm
from converters.common import ConvertError

MNV2_BN = dict(epsilon=1e-3, momentum=0.999)
# MobileNetV2 inverted residual blocks: (expansion, filters, stride) for block ids 0..16
MNV2_BLOCKS = ((1, 16, 1), (6, 24, 2), (6, 24, 1), (6, 32, 2), (6, 32, 1), (6, 32, 1), (6, 64, 2), (6, 64, 1),
               (6, 64, 1), (6, 64, 1), (6, 96, 1), (6, 96, 1), (6, 96, 1), (6, 160, 2), (6, 160, 1), (6, 160, 1),
               (6, 320, 1))


def vgg16(top=False, units=1000, size=224):
    """keras.applications.vgg16: blockN_convM (3x3 same, relu), blockN_pool (2x2/2); top: flatten,
    fc1, fc2 (4096 relu), predictions (softmax)."""
    b = vm._Builder()
    x = b.add("input_1", "input")
    for blk, (n, f) in enumerate(((2, 64), (2, 128), (3, 256), (3, 512), (3, 512)), 1):
        for i in range(1, n + 1):
            x = vm._conv(b, "block%d_conv%d" % (blk, i), x, f, 3, 1, "same", activation="relu")
        x = b.add("block%d_pool" % blk, "maxpool", [x], pool=[2, 2], strides=[2, 2], padding="valid")
    if top:
        x = b.add("flatten", "flatten", [x])
        x = b.add("fc1", "dense", [x], units=4096, use_bias=True, activation="relu")
        x = b.add("fc2", "dense", [x], units=4096, use_bias=True, activation="relu")
        b.add("predictions", "dense", [x], units=units, use_bias=True, activation="softmax")
    return vm._graph("vgg16", "keras vgg16 %s" % ("with top" if top else "notop"), "input_1", size, "caffe", b.layers)


def mobilenet_v2(top=False, units=1000, conv1_pad=False, size=224, input_name="input_1", pool_name=None):
    """keras.applications.mobilenet_v2 (alpha 1.0). conv1_pad: the keras_applications 1.0.x layout
    (Conv1_pad ZeroPadding2D + valid Conv1) instead of tf.keras's 'same' Conv1. Stride-2 depthwise
    convs follow block_N_pad (correct_pad: [0, 1, 0, 1] for even sizes)."""
    b = _MB()
    x = b.add(input_name, "input")
    if conv1_pad:
        x = b.add("Conv1_pad", "zeropad", [x], padding=[0, 1, 0, 1])
    x = b.add("Conv1", "conv2d", [x], filters=32, kernel=[3, 3], strides=[2, 2],
              padding="valid" if conv1_pad else "same", use_bias=False, activation="linear")
    x = b.relu6("Conv1_relu", b.add("bn_Conv1", "batchnorm", [x], **MNV2_BN))
    cin, h = 32, size // 2
    for bid, (t, f, s) in enumerate(MNV2_BLOCKS):
        p = "block_%d_" % bid if bid else "expanded_conv_"
        y = x
        if bid:
            y = b.conv1x1(p + "expand", y, cin * t)
            y = b.relu6(p + "expand_relu", b.add(p + "expand_BN", "batchnorm", [y], **MNV2_BN))
        if s == 2:
            y = b.add(p + "pad", "zeropad", [y], padding=[h % 2, 1, h % 2, 1])  # correct_pad (square input)
            h = (h + 1) // 2
        y = b.add(p + "depthwise", "conv2d", [y], filters=cin * t, kernel=[3, 3], strides=[s, s],
                  padding="same" if s == 1 else "valid", use_bias=False, activation="linear", groups=cin * t)
        y = b.relu6(p + "depthwise_relu", b.add(p + "depthwise_BN", "batchnorm", [y], **MNV2_BN))
        y = b.add(p + "project_BN", "batchnorm", [b.conv1x1(p + "project", y, f)], **MNV2_BN)
        x = b.add(p + "add", "add", [x, y]) if cin == f and s == 1 else y
        cin = f
    x = b.conv1x1("Conv_1", x, 1280)
    x = b.relu6("out_relu", b.add("Conv_1_bn", "batchnorm", [x], **MNV2_BN))
    if top:
        x = b.add(pool_name or "global_average_pooling2d", "gap", [x])
        b.add("predictions", "dense", [x], units=units, use_bias=True, activation="softmax")
    # Keras's "tf" preprocessing (x / 127.5 - 1) is not one of input.preprocess's values: "none", and the
    # source says what the input must be
    return vm._graph("mobilenet_v2", "keras mobilenet_v2 1.0 %s; inputs RGB scaled to [-1, 1] (x / 127.5 - 1)"
                     % ("with top" if top else "notop"), input_name, size, "none", b.layers)


class _MB(vm._Builder):
    def relu6(self, name, x):
        return self.add(name, "clip", [x], min=0.0, max=6.0)

    def conv1x1(self, name, x, f):
        return self.add(name, "conv2d", [x], filters=f, kernel=[1, 1], strides=[1, 1], padding="same",
                        use_bias=False, activation="linear")


def _short(wname):
    return wname.rsplit("/", 1)[-1].split(":", 1)[0]


def keras_tensors(path, graph, weights, shapes):
    """The graph's tensors from Keras weights (layer -> [(weight name, array)]), checked."""
    tensors = collections.OrderedDict()
    for l in graph["layers"]:
        t, ln = l["type"], l["name"]
        if t not in vm.LAYER_PARAMS:
            continue
        if ln not in weights:
            raise ConvertError("%s has no weights for layer %r" % (path, ln))
        by = {_short(w): a for w, a in weights[ln]}
        cin = shapes[l["inputs"][0]]
        if t == "batchnorm":
            want = {"gamma": "gamma", "beta": "beta", "running_mean": "moving_mean", "running_var": "moving_variance"}
            pairs = [(p, want[p]) for p in vm.LAYER_PARAMS["batchnorm"]]
        else:
            kname = "depthwise_kernel" if l.get("groups", 1) > 1 else "kernel"
            pairs = [("weight", kname)] + ([("bias", "bias")] if l.get("use_bias", True) else [])
        for p, kname in pairs:
            if kname not in by:
                raise ConvertError("%s: layer %r has no %s weight (it has %s)" % (path, ln, kname, ", ".join(by)))
            a = by[kname]
            if kname == "kernel" and t == "conv2d":
                a = a.transpose(3, 2, 0, 1)
            elif kname == "depthwise_kernel":
                a = a.transpose(2, 3, 0, 1)                   # [kh, kw, C, 1] -> [C, 1, kh, kw]
            elif kname == "kernel":
                a = a.T
                if len(cin) == 1 and l["inputs"][0] in [x["name"] for x in graph["layers"] if x["type"] == "flatten"]:
                    src = shapes[[x for x in graph["layers"] if x["name"] == l["inputs"][0]][0]["inputs"][0]]
                    c, h, w = src
                    if a.shape[1] == c * h * w:               # Keras flattens NHWC: reorder to NCHW
                        a = a.reshape(a.shape[0], h, w, c).transpose(0, 3, 1, 2).reshape(a.shape[0], -1)
            tensors[vm.tensor_name(ln, p)] = np.ascontiguousarray(a, np.float32)
    return tensors


def detect(weights):
    if "block1_conv1" in weights and "block5_conv3" in weights:
        return "vgg16"
    if "Conv1" in weights and "expanded_conv_depthwise" in weights:
        return "mobilenet_v2"
    return None


def convert(path, names, weights, args):
    """(graph, tensors) of a Keras VGG16 / MobileNetV2 weight file (layer_names `names`)."""
    import os
    from converters import graph as vg
    from converters.common import load_classes, set_classes
    arch = detect(weights)
    if args.arch and args.arch != arch:
        raise ConvertError("%s holds Keras %s weights, not %s" % (path, arch, args.arch))
    if args.top and "predictions" not in weights:
        raise ConvertError("--top: %s has no classifier weights (layer predictions); it is a notop file" % path)
    units = int(next(a for w, a in weights["predictions"] if a.ndim == 2).shape[1]) if args.top else 1000
    size = args.size or 224
    if arch == "vgg16":
        graph = vgg16(args.top, units, size)
    else:
        after = names[names.index("out_relu") + 1] if args.top and "out_relu" in names[:-1] else None
        graph = mobilenet_v2(args.top, units, conv1_pad="Conv1_pad" in names, size=size, input_name=names[0],
                             pool_name=after)
    graph["source"] += " (%s)" % os.path.basename(path)
    if args.preprocess:
        graph["input"]["preprocess"] = args.preprocess
    shapes = vg.infer_shapes(graph)
    ours = [l["name"] for l in graph["layers"]]
    if names[:len(ours)] != ours:  # the file lists every layer of model.layers (a notop graph is a prefix)
        i = next((i for i, (a, b) in enumerate(zip(names, ours)) if a != b), min(len(names), len(ours)))
        raise ConvertError("%s: layer %d is %r in the file, %r in the Keras %s layout"
                           % (path, i, names[i] if i < len(names) else None, ours[i] if i < len(ours) else None, arch))
    tensors = keras_tensors(path, graph, weights, shapes)
    if args.top:
        set_classes(graph, load_classes(args, units, path))
    return graph, tensors
