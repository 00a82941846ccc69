"""The limits of vkrun's model loader, checked by the converters before they write a file, so that
convert.py never writes a model that vkrun then refuses (issue 24).

Each number is the C loader's: the field readers of runtime/layers/layer_fields.c (integers and
pairs up to 2^20, pads 0..2^20), the layer kinds' parse functions (conv2d filters / groups up to 2^20,
dense units up to 2^24, batchnorm epsilon in (0, 1] and momentum in [0, 1], clip min <= max within
+-FLT_MAX, hard_sigmoid alpha != 0 within +-1e30, dropout rate in [0, 1)), the input size
(runtime/model/model_load.c: 1..2^20), shape inference (runtime/model/model_shapes.c: every output
dimension up to 2^30 and C*H*W up to 2^34, parameters up to 2^34 elements; flatten: features fit an
int; pools: padding smaller than the window). convert.py also loads the written temporary with
vkrun itself when a binary is found (tools/convert.py --vkrun)."""

import math

import numpy as np

import vkrun_model as vm

DIM_MAX = 1 << 20          # vkr__json_int / _pair / _pad4, conv2d filters and groups, input size
UNITS_MAX = 1 << 24        # dense units
OUT_DIM_MAX = 1 << 30      # one dimension of a layer's output
OUT_FLOATS_MAX = 1 << 34   # C*H*W of a layer's output, elements of one parameter
FLAT_MAX = 0x7fffffff      # flatten's features
FLT_MAX = float(np.finfo(np.float32).max)


def _fail(layer, msg):
    raise vm.ModelError("layer %r (%s): %s" % (layer.get("name"), layer.get("type"), msg))


def _int(v, lo, hi):
    if isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)):
        return False
    return math.isfinite(v) and v == math.floor(v) and lo <= v <= hi


def _num(layer, key, default, lo, hi):
    v = layer.get(key, default)
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or not lo <= v <= hi:
        _fail(layer, "%s %r must be a finite number in [%g, %g]" % (key, v, lo, hi))
    return v


def _field_int(layer, key, default, lo, hi):
    v = layer.get(key, default)
    if not _int(v, lo, hi):
        _fail(layer, "%s %r must be an integer in [%d, %d]" % (key, v, lo, hi))


def _pair(layer, key, default, lo):
    v = layer.get(key, default)
    vals = v if isinstance(v, (list, tuple)) else [v]
    if not (len(vals) in (1, 2) and all(_int(x, lo, DIM_MAX) for x in vals)) or (isinstance(v, (list, tuple)) and len(v) != 2):
        _fail(layer, "%s %r must be an integer or 2 integers in [%d, %d]" % (key, v, lo, DIM_MAX))


def _padding(layer, key="padding", required=False):
    v = layer.get(key, None if required else "valid")
    if v in ("valid", "same") and key == "padding" and layer["type"] != "zeropad":
        return
    vals = v if isinstance(v, (list, tuple)) else [v]
    if not (len(vals) in (1, 4) and all(_int(x, 0, DIM_MAX) for x in vals)) or (isinstance(v, (list, tuple)) and len(v) != 4):
        _fail(layer, "%s %r must be 'valid', 'same' or 4 integers in [0, %d]" % (key, v, DIM_MAX))


def check_layer(layer):
    """The fields of one layer as the C loader parses them; raises vm.ModelError naming the layer."""
    t = layer.get("type")
    name = layer.get("name")
    if not isinstance(name, str) or not name or len(name.encode("utf-8", "surrogatepass")) > vm.MAX_NAME:
        _fail(layer, "the name must be 1 to %d bytes" % vm.MAX_NAME)
    if t == "conv2d":
        _field_int(layer, "filters", None, 1, DIM_MAX)
        _field_int(layer, "groups", 1, 1, DIM_MAX)
        _pair(layer, "kernel", None, 1)
        _pair(layer, "strides", [1, 1], 1)
        _pair(layer, "dilation", [1, 1], 1)
        _padding(layer)
    elif t in ("maxpool", "avgpool"):
        _pair(layer, "pool", None, 1)
        _pair(layer, "strides", layer.get("pool"), 1)
        _padding(layer)
    elif t == "zeropad":
        _padding(layer, required=True)
    elif t == "dense":
        _field_int(layer, "units", None, 1, UNITS_MAX)
    elif t == "batchnorm":
        if _num(layer, "epsilon", 1e-3, 0, 1) <= 0:
            _fail(layer, "epsilon must be > 0 (vkrun divides by sqrt(var + epsilon))")
        _num(layer, "momentum", 0.99, 0, 1)
    elif t == "clip":
        lo, hi = _num(layer, "min", None, -FLT_MAX, FLT_MAX), _num(layer, "max", None, -FLT_MAX, FLT_MAX)
        if lo > hi:
            _fail(layer, "min %g is above max %g" % (lo, hi))
    elif t == "hard_sigmoid":
        if _num(layer, "alpha", 1 / 6, -1e30, 1e30) == 0:
            _fail(layer, "alpha must not be 0")
        _num(layer, "beta", 0.5, -1e30, 1e30)
    elif t == "dropout":
        if _num(layer, "rate", 0, 0, 1) >= 1:
            _fail(layer, "rate must be below 1")


def check_shape(layer, shape):
    """One layer's output shape (C, H, W) or (F,) against shape inference's bounds."""
    if any(d > OUT_DIM_MAX for d in shape) or int(np.prod(shape, dtype=object)) > OUT_FLOATS_MAX:
        _fail(layer, "output %s is too large (vkrun: each dimension <= 2^30, C*H*W <= 2^34)" % list(shape))
    if layer.get("type") == "flatten" and shape[0] > FLAT_MAX:
        _fail(layer, "%d features do not fit an int" % shape[0])


def check_graph(graph, shapes, tensors):
    """Every limit above on a whole graph (shapes: layer name -> output shape) and its tensors."""
    inp = graph.get("input", {})
    for k in ("channels", "height", "width"):
        if not _int(inp.get(k), 1, DIM_MAX):
            raise vm.ModelError("input %s %r must be an integer in [1, %d]" % (k, inp.get(k), DIM_MAX))
    for l in graph["layers"]:
        check_layer(l)
        check_shape(l, shapes[l["name"]])
        if l["type"] in ("maxpool", "avgpool") and isinstance(l.get("padding"), (list, tuple)):
            k = l["pool"] if isinstance(l["pool"], (list, tuple)) else [l["pool"]] * 2
            p = l["padding"]
            if p[0] >= k[0] or p[1] >= k[0] or p[2] >= k[1] or p[3] >= k[1]:
                _fail(l, "padding %s must be smaller than the pool %s" % (list(p), list(k)))
    for n, a in tensors.items():
        if np.size(a) > OUT_FLOATS_MAX:
            raise vm.ModelError("tensor %r has %d elements (vkrun: at most 2^34)" % (n, np.size(a)))
