"""The graph vocabulary of issue 14 on top of tools/vkrun_model.py.

vkrun_model.py checks the existing layer types. The converters also emit the new ones (conv2d
`groups` / `dilation`, clip, sigmoid, hard_sigmoid, hard_swish, swish, multiply, flatten, pool
`ceil_mode`); until vkrun_model.py knows them, shapes, expected tensors and parameter counts of
such graphs come from here. `uses_new_vocabulary(graph)` says which path a graph takes."""

import collections

import numpy as np

import vkrun_model as vm
from converters import limits

NEW_TYPES = ("clip", "sigmoid", "hard_sigmoid", "hard_swish", "swish", "multiply", "flatten")
ELEMENTWISE = ("relu", "dropout", "batchnorm", "clip", "sigmoid", "hard_sigmoid", "hard_swish", "swish", "softmax")


def uses_new_vocabulary(graph):
    """True when the graph has a type or field that vkrun_model.py does not know (yet)."""
    for l in graph["layers"]:
        t = l["type"]
        if t not in vm.LAYER_TYPES:
            return True
        if t == "conv2d" and (l.get("groups", 1) != 1 or list(l.get("dilation", [1, 1])) != [1, 1]):
            return True
        if t in ("maxpool", "avgpool") and l.get("ceil_mode", False):
            return True
    return False


def _window(size, k, stride, before, after, dil=1, ceil=False):
    ke = (k - 1) * dil + 1
    span = size + before + after - ke
    if span < 0:
        return 0
    out = (-(-span // stride) if ceil else span // stride) + 1
    if ceil and (out - 1) * stride >= size + before:  # the last window must start inside
        out -= 1
    return out


def layer_shape(layer, in_shapes):
    """Output shape (C,H,W) or (F,) of one layer given its inputs' shapes; ModelError names it."""
    t, name = layer["type"], layer["name"]
    s = in_shapes[0]
    where = "layer %r (%s)" % (name, t)
    if t in ELEMENTWISE:
        return s
    if t == "conv2d" or t in ("maxpool", "avgpool"):
        if len(s) != 3:
            raise vm.ModelError("%s: needs an image input, got %s" % (where, s))
        k = layer["kernel"] if t == "conv2d" else layer["pool"]
        st = layer["strides"]
        dil = layer.get("dilation", [1, 1])
        eff = [(k[0] - 1) * dil[0] + 1, (k[1] - 1) * dil[1] + 1]
        pt, pb, pl, pr = vm.resolve_padding(layer["padding"], s[1], s[2], eff, st)
        ceil = layer.get("ceil_mode", False)
        oh = _window(s[1], k[0], st[0], pt, pb, dil[0], ceil)
        ow = _window(s[2], k[1], st[1], pl, pr, dil[1], ceil)
        if oh < 1 or ow < 1:
            raise vm.ModelError("%s: output would be empty for a %dx%d input" % (where, s[1], s[2]))
        if t != "conv2d":
            return (s[0], oh, ow)
        g = layer.get("groups", 1)
        if s[0] % g or layer["filters"] % g:
            raise vm.ModelError("%s: %d input channels / %d filters not divisible by groups %d"
                                % (where, s[0], layer["filters"], g))
        return (layer["filters"], oh, ow)
    if t == "zeropad":
        p = layer["padding"]
        return (s[0], s[1] + p[0] + p[1], s[2] + p[2] + p[3])
    if t == "add":
        if in_shapes[1] != s:
            raise vm.ModelError("%s: input shapes %s and %s differ" % (where, s, in_shapes[1]))
        return s
    if t == "multiply":
        o = in_shapes[1]
        if not (o == s or (len(s) == 3 and tuple(o) in ((s[0],), (s[0], 1, 1)))):
            raise vm.ModelError("%s: second input %s is neither %s nor [C,1,1] / [C]" % (where, o, s))
        return s
    if t == "concat":
        if any(len(x) != 3 or x[1:] != s[1:] for x in in_shapes):
            raise vm.ModelError("%s: inputs %s differ in H, W" % (where, in_shapes))
        return (sum(x[0] for x in in_shapes), s[1], s[2])
    if t == "gap":
        return (s[0],)
    if t == "flatten":
        return (int(np.prod(s)),)
    if t == "dense":
        if len(s) != 1 and s[1:] != (1, 1):
            raise vm.ModelError("%s: needs a flat input, got %s" % (where, s))
        return (layer["units"],)
    raise vm.ModelError("%s: unknown layer type" % where)


def layer_tensors(layer, cin):
    """[(param, shape)] of one layer whose first input has `cin` channels/features."""
    t = layer["type"]
    if t == "conv2d":
        k = layer["kernel"]
        out = [("weight", (layer["filters"], cin // layer.get("groups", 1), k[0], k[1]))]
        return out + ([("bias", (layer["filters"],))] if layer.get("use_bias", True) else [])
    if t == "dense":
        out = [("weight", (layer["units"], cin))]
        return out + ([("bias", (layer["units"],))] if layer.get("use_bias", True) else [])
    if t == "batchnorm":
        return [(p, (cin,)) for p in vm.LAYER_PARAMS["batchnorm"]]
    return []


def infer_shapes(graph):
    if not uses_new_vocabulary(graph):
        return vm.infer_shapes(graph)
    inp = graph["input"]
    shapes = collections.OrderedDict()
    for l in graph["layers"]:
        if l["type"] == "input":
            shapes[l["name"]] = (inp["channels"], inp["height"], inp["width"])
        else:
            shapes[l["name"]] = layer_shape(l, [shapes[i] for i in l["inputs"]])
    return shapes


def expected_tensors(graph, shapes=None):
    if not uses_new_vocabulary(graph):
        return vm.expected_tensors(graph, shapes)
    shapes = shapes or infer_shapes(graph)
    out = collections.OrderedDict()
    for l in graph["layers"]:
        if l["type"] != "input":
            for p, shp in layer_tensors(l, shapes[l["inputs"][0]][0]):
                out[vm.tensor_name(l["name"], p)] = shp
    return out


def validate(graph, tensors):
    if not uses_new_vocabulary(graph):
        return vm.validate(graph, tensors)
    exp = expected_tensors(graph)
    for n, shp in exp.items():
        if n not in tensors or tuple(tensors[n].shape) != shp:
            raise vm.ModelError("tensor %r: %s, expected shape %s"
                                % (n, tuple(tensors[n].shape) if n in tensors else "missing", shp))
    stray = [n for n in tensors if n not in exp]
    if stray:
        raise vm.ModelError("tensor %r belongs to no layer parameter" % stray[0])


def param_counts(graph):
    if not uses_new_vocabulary(graph):
        return vm.param_counts(graph)
    frozen = {l["name"] for l in graph["layers"] if l.get("trainable", True) is False}
    total = non = 0
    for n, shp in expected_tensors(graph).items():
        c = int(np.prod(shp))
        total += c
        layer, p = n.rsplit(".", 1)
        non += c if (p in vm.NON_TRAINABLE_PARAMS or layer in frozen) else 0
    return total, non


def write_model(path, graph, tensors, verify=None):
    """Checks the model (here or in vkrun_model.py, then the limits of vkrun's loader) and writes
    it atomically; verify(temp path) runs before the rename (convert.py: `vkrun summary`)."""
    validate(graph, tensors)
    limits.check_graph(graph, infer_shapes(graph), tensors)
    vm.write_model(path, graph, tensors, check=not uses_new_vocabulary(graph), verify=verify)
