"""Keras applications VGG16, MobileNetV2 and EfficientNetB0 (HDF5 weights of the official layout) -> vkrun.

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


# EfficientNet-B0 blocks: (kernel, repeats, filters in, filters out, expansion, stride)
B0_BLOCKS = ((3, 1, 32, 16, 1, 1), (3, 2, 16, 24, 6, 2), (5, 2, 24, 40, 6, 2), (3, 3, 40, 80, 6, 2),
             (5, 3, 80, 112, 6, 1), (5, 4, 112, 192, 6, 2), (3, 1, 192, 320, 6, 1))
KERAS_BN = dict(epsilon=1e-3, momentum=0.99)


def efficientnet_b0(top=False, units=1000, size=224, input_name="input_1", drop_connect=0.2):
    """tf.keras.applications.efficientnet B0. The model's own Rescaling(1/255) + Normalization
    (ImageNet mean / variance) layers are input.preprocess "torch" (the file's values are checked);
    they and se_reshape have no layer here. Conv2D layers with a fused swish / sigmoid (se_reduce,
    se_expand, both 1x1 convs of the pooled map: dense) get the activation as a second layer
    `<name>/swish`, `<name>/sigmoid`. stem_conv_pad / dwconv_pad are Keras's correct_pad."""
    b = _MB()
    x = b.add(input_name, "input")
    x = b.add("stem_conv_pad", "zeropad", [x], padding=[size % 2, 1, size % 2, 1])
    x = b.add("stem_conv", "conv2d", [x], filters=32, kernel=[3, 3], strides=[2, 2], padding="valid",
              use_bias=False, activation="linear")
    x = b.add("stem_activation", "swish", [b.add("stem_bn", "batchnorm", [x], **KERAS_BN)])
    h, n_blocks, bi = (size + 1) // 2, sum(r for _, r, *_ in B0_BLOCKS), 0
    for i, (k, reps, fin, fout, e, s) in enumerate(B0_BLOCKS, 1):
        for j in range(reps):
            p, cin, st = "block%d%s_" % (i, chr(97 + j)), fin if j == 0 else fout, s if j == 0 else 1
            f = cin * e
            y = x
            if e != 1:
                y = b.conv1x1(p + "expand_conv", y, f)
                y = b.add(p + "expand_activation", "swish", [b.add(p + "expand_bn", "batchnorm", [y], **KERAS_BN)])
            if st == 2:
                pad = k // 2 - (1 - h % 2)
                y = b.add(p + "dwconv_pad", "zeropad", [y], padding=[pad, k // 2, pad, k // 2])
                h = (h + 1) // 2
            y = b.add(p + "dwconv", "conv2d", [y], filters=f, kernel=[k, k], strides=[st, st],
                      padding="valid" if st == 2 else "same", use_bias=False, activation="linear", groups=f)
            y = b.add(p + "activation", "swish", [b.add(p + "bn", "batchnorm", [y], **KERAS_BN)])
            se = b.add(p + "se_squeeze", "gap", [y])
            se = b.add(p + "se_reduce", "dense", [se], units=max(1, int(cin * 0.25)), use_bias=True, activation="linear")
            se = b.add(p + "se_reduce/swish", "swish", [se])
            se = b.add(p + "se_expand", "dense", [se], units=f, use_bias=True, activation="linear")
            se = b.add(p + "se_expand/sigmoid", "sigmoid", [se])
            y = b.add(p + "se_excite", "multiply", [y, se])
            y = b.add(p + "project_bn", "batchnorm", [b.conv1x1(p + "project_conv", y, fout)], **KERAS_BN)
            if st == 1 and cin == fout:
                if drop_connect * bi / n_blocks > 0:
                    y = b.add(p + "drop", "dropout", [y], rate=round(drop_connect * bi / n_blocks, 6))
                y = b.add(p + "add", "add", [y, x])
            x, bi = y, bi + 1
    x = b.conv1x1("top_conv", x, 1280)
    x = b.add("top_activation", "swish", [b.add("top_bn", "batchnorm", [x], **KERAS_BN)])
    if top:
        x = b.add("top_dropout", "dropout", [b.add("avg_pool", "gap", [x])], rate=0.2)
        b.add("predictions", "dense", [x], units=units, use_bias=True, activation="softmax")
    return vm._graph("efficientnet_b0", "keras efficientnet_b0 %s" % ("with top" if top else "notop"), input_name,
                     size, "torch", b.layers)


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
                a = a.reshape(a.shape[-2], a.shape[-1]).T     # Dense [IN, OUT]; a 1x1 Conv2D of a pooled map
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
    if "stem_conv" in weights and "block1a_dwconv" in weights and "block7a_project_conv" in weights \
            and "block6d_project_conv" in weights and "block6e_project_conv" not in weights:
        return "efficientnet_b0"
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
    elif arch == "efficientnet_b0":
        _check_normalization(path, names, weights)
        names = [n for n in names if n not in ("rescaling", "normalization") and not n.endswith("_se_reshape")]
        graph = efficientnet_b0(args.top, units, size, names[0])
    else:
        after = names[names.index("out_relu") + 1] if args.top and "out_relu" in names[:-1] else None
        graph = mobilenet_v2(args.top, units, conv1_pad="Conv1_pad" in names, size=size, input_name=names[0],
                             pool_name=after)
    graph["source"] += " (%s)" % os.path.basename(path)
    if args.preprocess:
        graph["input"]["preprocess"] = args.preprocess
    shapes = vg.infer_shapes(graph)
    ours = [l["name"] for l in graph["layers"] if "/" not in l["name"]]  # not the split-off activations
    if names[:len(ours)] != ours:  # the file lists every layer of model.layers (a notop graph is a prefix)
        i = next((i for i, (a, b) in enumerate(zip(names, ours)) if a != b), min(len(names), len(ours)))
        raise ConvertError("%s: layer %d is %r in the file, %r in the Keras %s layout"
                           % (path, i, names[i] if i < len(names) else None, ours[i] if i < len(ours) else None, arch))
    tensors = keras_tensors(path, graph, weights, shapes)
    if args.top:
        set_classes(graph, load_classes(args, units, path))
    return graph, tensors


def _check_normalization(path, names, weights):
    """EfficientNet's Rescaling(1/255) + Normalization must be torch's ImageNet preprocessing."""
    if names[1:3] != ["rescaling", "normalization"] or "normalization" not in weights:
        raise ConvertError("%s: expected the layers rescaling, normalization after %s (tf.keras EfficientNet), "
                           "found %s" % (path, names[0], names[1:3]))
    by = {_short(w): a for w, a in weights["normalization"]}
    mean, var = by.get("mean"), by.get("variance")
    if mean is None or var is None or not (np.allclose(mean.reshape(-1), [0.485, 0.456, 0.406], atol=1e-3) and
                                           np.allclose(var.reshape(-1), np.square([0.229, 0.224, 0.225]), atol=1e-4)):
        raise ConvertError("%s: the normalization layer's mean %s / variance %s are not ImageNet's "
                           "(torch preprocessing); vkrun cannot express them"
                           % (path, None if mean is None else mean.reshape(-1).tolist(),
                              None if var is None else var.reshape(-1).tolist()))
