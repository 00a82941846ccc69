"""vkrun model files: writer, reader, validation, shape inference and graph builders.

The format is documented in docs/model-format.md. This module needs only numpy
(run the tools with /usr/bin/python3, Debian's build, which has numpy, h5py and torch).

A model in memory is (graph, tensors):
  graph   -- the graph JSON as a dict (version 1)
  tensors -- an ordered dict "<layer>.<param>" -> numpy float32 array
"""

import collections
import json
import os
import stat
import struct
import tempfile

import numpy as np

FORMAT = "vkrun"
GRAPH_VERSION = 1


class ModelError(Exception):
    """A model file or graph that does not follow the format (message names the culprit)."""


# --------------------------------------------------------------------------- layer table

# parameters of each layer type, in the order they are stored in the file
LAYER_PARAMS = {
    "conv2d": ("weight", "bias"),          # bias only when use_bias
    "batchnorm": ("gamma", "beta", "running_mean", "running_var"),
    "dense": ("weight", "bias"),           # bias only when use_bias
}
NON_TRAINABLE_PARAMS = ("running_mean", "running_var")
LAYER_TYPES = ("input", "conv2d", "batchnorm", "relu", "add", "zeropad", "maxpool", "avgpool",
               "gap", "dense", "concat", "softmax", "dropout", "clip", "sigmoid", "hard_sigmoid", "hard_swish",
               "swish", "multiply", "flatten")
# element-wise activations: shape unchanged, no parameters (docs/model-format.md)
ELEMENTWISE = ("relu", "dropout", "clip", "sigmoid", "hard_sigmoid", "hard_swish", "swish")
ACTIVATIONS = {"conv2d": ("linear", "relu"), "dense": ("linear", "relu", "softmax")}
PREPROCESS = ("caffe", "torch", "none")


MAX_NAME = 255  # bytes of a layer name (VKR_MAX_NAME in include/vkrun_model.h)


def param_names(layer):
    """Names of the tensors a layer owns, in file order (without the '<layer>.' prefix)."""
    t = layer["type"]
    if t in ("conv2d", "dense"):
        return ("weight", "bias") if layer.get("use_bias", True) else ("weight",)
    return LAYER_PARAMS.get(t, ())


def tensor_name(layer_name, param):
    return "%s.%s" % (layer_name, param)


# --------------------------------------------------------------------------- padding helpers

def same_padding(size, k, stride):
    """Keras 'same': out = ceil(in/stride); total = max((out-1)*stride + k - in, 0);
    before = total // 2, after = total - before. Returns (before, after)."""
    out = -(-size // stride)
    total = max((out - 1) * stride + k - size, 0)
    return total // 2, total - total // 2


def resolve_padding(padding, h, w, kernel, strides):
    """padding ("valid" | "same" | [t,b,l,r]) -> (t, b, l, r) for an input of h x w."""
    if padding == "valid":
        return (0, 0, 0, 0)
    if padding == "same":
        t, b = same_padding(h, kernel[0], strides[0])
        l, r = same_padding(w, kernel[1], strides[1])
        return (t, b, l, r)
    if isinstance(padding, (list, tuple)) and len(padding) == 4 and all(
            isinstance(p, int) and not isinstance(p, bool) and p >= 0 for p in padding):
        return tuple(padding)
    raise ModelError("bad padding %r" % (padding,))


def window_out(size, k, stride, before, after, ceil_mode=False):
    """Output size of a window k (the effective, dilated, size) over a padded input; ceil_mode
    rounds up, torch's rule: the last window must start inside the input or its left padding."""
    if not ceil_mode:
        return (size + before + after - k) // stride + 1
    out = -(-(size + before + after - k) // stride) + 1
    if (out - 1) * stride >= size + before:
        out -= 1
    return out


def conv_groups_dilation(layer):
    """(groups, (dh, dw)) of a conv2d layer (defaults 1, [1, 1])."""
    g = layer.get("groups", 1)
    d = layer.get("dilation", [1, 1])
    if isinstance(d, int) and not isinstance(d, bool):
        d = [d, d]
    return g, tuple(d)


# --------------------------------------------------------------------------- graph validation

def _is_pos_int(v):
    return isinstance(v, int) and not isinstance(v, bool) and v > 0


def _pair(layer, key):
    v = layer.get(key)
    if not (isinstance(v, (list, tuple)) and len(v) == 2 and all(_is_pos_int(x) for x in v)):
        raise ModelError("layer %r (%s): %r must be two positive integers, got %r"
                         % (layer.get("name"), layer.get("type"), key, v))
    return tuple(v)


def infer_shapes(graph, height=None, width=None):
    """Validates the graph structure and returns an OrderedDict layer name -> output shape,
    (C, H, W) for image tensors or (F,) for flat ones (batch not included).
    height/width default to graph["input"]. Raises ModelError naming the layer."""
    if not isinstance(graph, dict):
        raise ModelError("graph is not a JSON object")
    if graph.get("version") != GRAPH_VERSION:
        raise ModelError("graph version %r is not supported (expected %d)"
                         % (graph.get("version"), GRAPH_VERSION))
    inp = graph.get("input")
    if not isinstance(inp, dict):
        raise ModelError("graph has no 'input' object")
    for key in ("channels", "height", "width"):
        if not _is_pos_int(inp.get(key)):
            raise ModelError("graph input.%s must be a positive integer, got %r" % (key, inp.get(key)))
    if inp.get("preprocess", "none") not in PREPROCESS:
        raise ModelError("graph input.preprocess %r is not one of %s" % (inp.get("preprocess"), PREPROCESS))
    layers = graph.get("layers")
    if not isinstance(layers, list) or not layers:
        raise ModelError("graph has no 'layers' list")
    h = height if height is not None else inp["height"]
    w = width if width is not None else inp["width"]
    shapes = collections.OrderedDict()
    for idx, layer in enumerate(layers):
        if not isinstance(layer, dict) or not isinstance(layer.get("name"), str) or not layer["name"]:
            raise ModelError("layer %d has no name" % idx)
        if len(layer["name"].encode()) > MAX_NAME:
            raise ModelError("layer %d: name %r... is %d bytes long; names may have at most %d"
                             % (idx, layer["name"][:40], len(layer["name"].encode()), MAX_NAME))
        name, t = layer["name"], layer.get("type")
        where = "layer %d %r (%s)" % (idx, name, t)
        if name in shapes:
            raise ModelError("%s: duplicate layer name" % where)
        if t not in LAYER_TYPES:
            raise ModelError("%s: unknown layer type" % where)
        if "trainable" in layer and not isinstance(layer["trainable"], bool):
            raise ModelError("%s: 'trainable' must be true or false" % where)
        if t == "input":
            if idx != 0:
                raise ModelError("%s: the input layer must be layers[0]" % where)
            if inp.get("name", name) != name:
                raise ModelError("%s: input.name is %r" % (where, inp.get("name")))
            if layer.get("inputs"):
                raise ModelError("%s: an input layer has no inputs" % where)
            shapes[name] = (inp["channels"], h, w)
            continue
        if idx == 0:
            raise ModelError("%s: layers[0] must be the input layer" % where)
        ins = layer.get("inputs")
        if not isinstance(ins, list) or not ins or not all(isinstance(i, str) for i in ins):
            raise ModelError("%s: 'inputs' must be a non-empty list of layer names" % where)
        for i in ins:
            if i not in shapes:
                if any(l.get("name") == i for l in layers if isinstance(l, dict)):
                    raise ModelError("%s: input %r comes later in the list (cycle or bad order)" % (where, i))
                raise ModelError("%s: unknown input %r" % (where, i))
        nin = {"add": 2, "multiply": 2}.get(t)
        if nin is not None and len(ins) != nin:
            raise ModelError("%s: takes %d inputs, has %d" % (where, nin, len(ins)))
        if t == "concat":
            if len(ins) < 2:
                raise ModelError("%s: concat takes at least 2 inputs" % where)
        elif t not in ("add", "multiply") and len(ins) != 1:
            raise ModelError("%s: takes 1 input, has %d" % (where, len(ins)))
        s = shapes[ins[0]]
        if t in ("conv2d", "zeropad", "maxpool", "avgpool", "gap", "batchnorm", "concat") and len(s) != 3:
            if not (t == "batchnorm" and len(s) == 1):
                raise ModelError("%s: needs an image (C,H,W) input, %r gives %s" % (where, ins[0], s))
        if t == "conv2d":
            if not _is_pos_int(layer.get("filters")):
                raise ModelError("%s: 'filters' must be a positive integer" % where)
            k, st = _pair(layer, "kernel"), _pair(layer, "strides")
            g, dil = conv_groups_dilation(layer)
            if not _is_pos_int(g) or s[0] % g or layer["filters"] % g:
                raise ModelError("%s: 'groups' %r must be a positive integer dividing the input channels %d and "
                                 "the filters %d" % (where, g, s[0], layer["filters"]))
            if len(dil) != 2 or not all(_is_pos_int(v) for v in dil):
                raise ModelError("%s: 'dilation' must be one or two positive integers" % where)
            k = ((k[0] - 1) * dil[0] + 1, (k[1] - 1) * dil[1] + 1)  # the effective window
            if layer.get("activation", "linear") not in ACTIVATIONS["conv2d"]:
                raise ModelError("%s: bad activation %r" % (where, layer.get("activation")))
            if not isinstance(layer.get("use_bias", True), bool):
                raise ModelError("%s: 'use_bias' must be true or false" % where)
            try:
                t_, b_, l_, r_ = resolve_padding(layer.get("padding"), s[1], s[2], k, st)
            except ModelError as e:
                raise ModelError("%s: %s" % (where, e))
            oh, ow = window_out(s[1], k[0], st[0], t_, b_), window_out(s[2], k[1], st[1], l_, r_)
            if oh < 1 or ow < 1:
                raise ModelError("%s: output would be empty for a %dx%d input" % (where, s[1], s[2]))
            shapes[name] = (layer["filters"], oh, ow)
        elif t in ("maxpool", "avgpool"):
            k, st = _pair(layer, "pool"), _pair(layer, "strides")
            if t == "avgpool" and not isinstance(layer.get("count_include_pad"), bool):
                raise ModelError("%s: 'count_include_pad' must be true or false" % where)
            ceil = layer.get("ceil_mode", False)
            if not isinstance(ceil, bool):
                raise ModelError("%s: 'ceil_mode' must be true or false" % where)
            try:
                t_, b_, l_, r_ = resolve_padding(layer.get("padding"), s[1], s[2], k, st)
            except ModelError as e:
                raise ModelError("%s: %s" % (where, e))
            if max(t_, b_) >= k[0] or max(l_, r_) >= k[1]:
                raise ModelError("%s: padding must be smaller than the pool window" % where)
            oh, ow = window_out(s[1], k[0], st[0], t_, b_, ceil), window_out(s[2], k[1], st[1], l_, r_, ceil)
            if oh < 1 or ow < 1:
                raise ModelError("%s: output would be empty for a %dx%d input" % (where, s[1], s[2]))
            shapes[name] = (s[0], oh, ow)
        elif t == "zeropad":
            try:
                p = resolve_padding(layer.get("padding"), 0, 0, (1, 1), (1, 1))
            except ModelError as e:
                raise ModelError("%s: %s" % (where, e))
            if not isinstance(layer.get("padding"), list):
                raise ModelError("%s: zeropad padding must be [t,b,l,r]" % where)
            shapes[name] = (s[0], s[1] + p[0] + p[1], s[2] + p[2] + p[3])
        elif t == "batchnorm":
            for key in ("epsilon", "momentum"):
                v = layer.get(key)
                if not isinstance(v, (int, float)) or isinstance(v, bool) or not v >= 0:
                    raise ModelError("%s: %r must be a non-negative number" % (where, key))
            shapes[name] = s
        elif t in ELEMENTWISE:
            if t == "dropout":
                r = layer.get("rate", 0.0)
                if not isinstance(r, (int, float)) or not 0 <= r < 1:
                    raise ModelError("%s: 'rate' must be in [0,1)" % where)
            if t == "clip":
                lo, hi = layer.get("min"), layer.get("max")
                if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (lo, hi)) or lo > hi:
                    raise ModelError("%s: clip needs numbers 'min' <= 'max'" % where)
            shapes[name] = s
        elif t == "add":
            if shapes[ins[0]] != shapes[ins[1]]:
                raise ModelError("%s: inputs %r %s and %r %s differ in shape"
                                 % (where, ins[0], shapes[ins[0]], ins[1], shapes[ins[1]]))
            shapes[name] = s
        elif t == "multiply":
            b = shapes[ins[1]]
            if not (b == s or (len(s) == 3 and b in ((s[0],), (s[0], 1, 1)))):
                raise ModelError("%s: input %r %s is neither the shape of %r %s nor [N, C, 1, 1] / [N, C] with its C"
                                 % (where, ins[1], b, ins[0], s))
            shapes[name] = s
        elif t == "flatten":
            n = 1
            for v in s:
                n *= v
            shapes[name] = (n,)
        elif t == "concat":
            for i in ins:
                if len(shapes[i]) != 3 or shapes[i][1:] != s[1:]:
                    raise ModelError("%s: input %r %s does not match %r %s in H,W"
                                     % (where, i, shapes[i], ins[0], s))
            shapes[name] = (sum(shapes[i][0] for i in ins), s[1], s[2])
        elif t == "gap":
            shapes[name] = (s[0],)
        elif t == "dense":
            if not _is_pos_int(layer.get("units")):
                raise ModelError("%s: 'units' must be a positive integer" % where)
            if layer.get("activation", "linear") not in ACTIVATIONS["dense"]:
                raise ModelError("%s: bad activation %r" % (where, layer.get("activation")))
            if not isinstance(layer.get("use_bias", True), bool):
                raise ModelError("%s: 'use_bias' must be true or false" % where)
            if len(s) != 1 and s[1:] != (1, 1):
                raise ModelError("%s: dense needs a flat input (or 1x1 image), %r gives %s" % (where, ins[0], s))
            shapes[name] = (layer["units"],)
        elif t == "softmax":
            if len(s) != 1:
                raise ModelError("%s: softmax needs a flat [N,K] input" % where)
            shapes[name] = s
    classes = graph.get("classes")
    if classes is not None:
        if not isinstance(classes, list) or not all(isinstance(c, str) for c in classes):
            raise ModelError("graph 'classes' must be a list of strings")
        last = shapes[layers[-1]["name"]]
        if last != (len(classes),):
            raise ModelError("graph has %d classes but the last layer %r outputs %s"
                             % (len(classes), layers[-1]["name"], last))
    return shapes


def expected_tensors(graph, shapes=None):
    """OrderedDict tensor name -> shape tuple for every tensor the graph needs, in file order."""
    if shapes is None:
        shapes = infer_shapes(graph)
    out = collections.OrderedDict()
    for layer in graph["layers"]:
        t, name = layer["type"], layer["name"]
        if t not in LAYER_PARAMS:
            continue
        cin = shapes[layer["inputs"][0]]
        if t == "conv2d":
            k = layer["kernel"]
            g = layer.get("groups", 1)
            out[tensor_name(name, "weight")] = (layer["filters"], cin[0] // g, k[0], k[1])
            if layer.get("use_bias", True):
                out[tensor_name(name, "bias")] = (layer["filters"],)
        elif t == "batchnorm":
            for p in LAYER_PARAMS["batchnorm"]:
                out[tensor_name(name, p)] = (cin[0],)
        elif t == "dense":
            out[tensor_name(name, "weight")] = (layer["units"], cin[0])
            if layer.get("use_bias", True):
                out[tensor_name(name, "bias")] = (layer["units"],)
    return out


def validate(graph, tensors):
    """Full check of a model: graph structure + every tensor present with the right shape and
    no stray tensors. Returns the shape table. Raises ModelError."""
    shapes = infer_shapes(graph)
    exp = expected_tensors(graph, shapes)
    for name, shape in exp.items():
        if name not in tensors:
            raise ModelError("tensor %r is missing" % name)
        if tuple(tensors[name].shape) != shape:
            raise ModelError("tensor %r has shape %s, expected %s"
                             % (name, tuple(tensors[name].shape), shape))
    for name in tensors:
        if name not in exp:
            raise ModelError("tensor %r belongs to no layer parameter" % name)
    return shapes


def param_counts(graph, tensors=None):
    """(total, non_trainable) element counts, Keras-style: BatchNorm running stats and the
    parameters of layers with "trainable": false are non-trainable."""
    exp = expected_tensors(graph)
    frozen = {l["name"] for l in graph["layers"] if l.get("trainable", True) is False}
    total = non = 0
    for name, shape in exp.items():
        n = int(np.prod(shape))
        total += n
        layer, param = name.rsplit(".", 1)
        if param in NON_TRAINABLE_PARAMS or layer in frozen:
            non += n
    return total, non


# --------------------------------------------------------------------------- file I/O

def encode(graph, tensors):
    """Returns (header bytes incl. the 8-byte length, list of data chunks)."""
    header = collections.OrderedDict()
    try:  # JSON has no NaN / Infinity: Python's default would write them, vkrun's parser refuses them
        gj = json.dumps(graph, separators=(",", ":"), allow_nan=False)
    except ValueError:
        bad = [l.get("name") for l in graph.get("layers", []) if "NaN" in json.dumps(l) or "Infinity" in json.dumps(l)]
        raise ModelError("layer %r: a field is NaN or infinite (JSON cannot hold it)" % (bad[0] if bad else "?"))
    header["__metadata__"] = {"format": FORMAT, "vkrun_graph": gj}
    chunks = []
    off = 0
    for name, arr in tensors.items():
        a = np.ascontiguousarray(np.asarray(arr, dtype="<f4"))
        if not np.all(np.isfinite(a)):
            raise ModelError("tensor %r holds non-finite values" % name)
        nbytes = a.size * 4
        header[name] = {"dtype": "F32", "shape": [int(d) for d in a.shape], "data_offsets": [off, off + nbytes]}
        chunks.append(a)
        off += nbytes
    hj = json.dumps(header, separators=(",", ":")).encode("utf-8")  # the graph's string: no NaN left
    hj += b" " * ((-len(hj)) % 8)  # data section starts 8-byte aligned
    return struct.pack("<Q", len(hj)) + hj, chunks


def output_target(path):
    """The file a model written to `path` replaces: `path`, or where its symbolic link points (links
    are written through, as vkrun's own writer does). Refuses anything but a regular file or a new
    name: a device, a FIFO, a folder, a dangling link (so that `-o /dev/null` never replaces it)."""
    target = os.path.realpath(path) if os.path.islink(path) else path
    if os.path.islink(path) and not os.path.lexists(target):
        raise ModelError("%s is a symbolic link to %s, which does not exist; refusing to write through it" % (path, target))
    try:
        st = os.stat(target)
    except FileNotFoundError:
        return target
    except OSError as e:
        raise ModelError("cannot write %s: %s" % (path, e.strerror or e))
    if not stat.S_ISREG(st.st_mode):
        kind = ("a folder" if stat.S_ISDIR(st.st_mode) else "a FIFO" if stat.S_ISFIFO(st.st_mode) else
                "a device" if stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode) else "a socket or other special file")
        raise ModelError("%s is %s, not a regular file; refusing to replace it with a model" % (path, kind))
    return target


def write_model(path, graph, tensors, check=True, verify=None):
    """Writes a model file atomically (temp file in the same folder, then os.replace): a failed
    write never leaves a partial file at `path`. Only a regular file (or a symlink to one, written
    through) is replaced (output_target). verify(temp path), when given, runs before the rename and
    raises to keep the old file."""
    if check:
        validate(graph, tensors)
    head, chunks = encode(graph, tensors)
    target = output_target(path)
    d = os.path.dirname(os.path.abspath(target))
    fd, tmp = tempfile.mkstemp(prefix=".%s." % os.path.basename(target), suffix=".tmp", dir=d)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(head)
            for c in chunks:
                f.write(c.tobytes())
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        if verify is not None:
            verify(tmp)
        if output_target(path) != target:
            raise ModelError("%s changed while the model was written; not replaced" % path)
        os.replace(tmp, target)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def read_model(path, check=True):
    """Reads and checks a model file. Returns (graph, tensors); raises ModelError."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        raise ModelError("cannot read %s: %s" % (path, e.strerror or e))
    return decode(data, path, check)


def decode(data, path="<bytes>", check=True):
    if len(data) < 8:
        raise ModelError("%s: too short for a model file (%d bytes)" % (path, len(data)))
    (n,) = struct.unpack("<Q", data[:8])
    if n > len(data) - 8:
        raise ModelError("%s: header length %d runs past the end of the file (%d bytes)" % (path, n, len(data)))
    try:
        header = json.loads(data[8:8 + n].decode("utf-8"), object_pairs_hook=collections.OrderedDict)
    except (UnicodeDecodeError, ValueError) as e:
        raise ModelError("%s: header is not valid UTF-8 JSON: %s" % (path, e))
    if not isinstance(header, dict):
        raise ModelError("%s: header is not a JSON object" % path)
    meta = header.get("__metadata__")
    if not isinstance(meta, dict) or meta.get("format") != FORMAT or not isinstance(meta.get("vkrun_graph"), str):
        raise ModelError("%s: no vkrun metadata (__metadata__.format == 'vkrun' and vkrun_graph)" % path)
    try:
        graph = json.loads(meta["vkrun_graph"], object_pairs_hook=collections.OrderedDict)
    except ValueError as e:
        raise ModelError("%s: vkrun_graph is not valid JSON: %s" % (path, e))
    base = 8 + n
    size = len(data) - base
    tensors = collections.OrderedDict()
    spans = []
    for name, info in header.items():
        if name == "__metadata__":
            continue
        if not isinstance(info, dict):
            raise ModelError("%s: tensor %r: entry is not an object" % (path, name))
        if info.get("dtype") != "F32":
            raise ModelError("%s: tensor %r: dtype %r (only F32 is accepted)" % (path, name, info.get("dtype")))
        shape, offs = info.get("shape"), info.get("data_offsets")
        if not isinstance(shape, list) or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape):
            raise ModelError("%s: tensor %r: bad shape %r" % (path, name, shape))
        if not (isinstance(offs, list) and len(offs) == 2 and all(isinstance(o, int) and not isinstance(o, bool) for o in offs)):
            raise ModelError("%s: tensor %r: bad data_offsets %r" % (path, name, offs))
        b, e = offs
        count = int(np.prod(shape)) if shape else 1
        if b < 0 or e < b or e - b != 4 * count:
            raise ModelError("%s: tensor %r: data_offsets %r do not hold %s float32 values" % (path, name, offs, shape))
        if e > size:
            raise ModelError("%s: tensor %r: data_offsets %r run past the end of the data (%d bytes)" % (path, name, offs, size))
        spans.append((b, e, name))
        tensors[name] = np.frombuffer(data, dtype="<f4", count=count, offset=base + b).reshape(shape)
    spans.sort()
    for (b0, e0, n0), (b1, e1, n1) in zip(spans, spans[1:]):
        if b1 < e0:
            raise ModelError("%s: tensors %r and %r overlap" % (path, n0, n1))
    if check:
        try:
            validate(graph, tensors)
        except ModelError as e:
            raise ModelError("%s: %s" % (path, e))
    return graph, tensors


# --------------------------------------------------------------------------- graph builders

class _Builder:
    def __init__(self):
        self.layers = []

    def add(self, name, type_, inputs=None, **fields):
        layer = collections.OrderedDict()
        layer["name"] = name
        layer["type"] = type_
        if inputs is not None:
            layer["inputs"] = list(inputs)
        layer.update(fields)
        self.layers.append(layer)
        return name


def _graph(name, source, input_name, size, preprocess, layers, classes=None):
    g = collections.OrderedDict()
    g["version"] = GRAPH_VERSION
    g["name"] = name
    g["source"] = source
    g["input"] = collections.OrderedDict(
        [("name", input_name), ("channels", 3), ("height", size), ("width", size), ("preprocess", preprocess)])
    if classes is not None:
        g["classes"] = list(classes)
    g["layers"] = layers
    return g


def _conv(b, name, x, filters, k, stride=1, padding="valid", use_bias=True, activation="linear"):
    return b.add(name, "conv2d", [x], filters=filters, kernel=[k, k], strides=[stride, stride],
                 padding=padding, use_bias=use_bias, activation=activation)


KERAS_BN = dict(epsilon=1.001e-5, momentum=0.99)
TORCH_BN = dict(epsilon=1e-5, momentum=0.9)  # torch momentum=0.1 in the Keras convention


def keras_resnet50(include_top=False, classes=None, units=1000, top_name="predictions"):
    """Keras ResNet50 (keras_applications.resnet_common / tf.keras.applications.resnet, v1:
    stride on _1_conv and _0_conv). 175 layers without top; +avg_pool, +<top_name> with top."""
    b = _Builder()
    x = b.add("input_1", "input")
    x = b.add("conv1_pad", "zeropad", [x], padding=[3, 3, 3, 3])
    x = _conv(b, "conv1_conv", x, 64, 7, 2)
    x = b.add("conv1_bn", "batchnorm", [x], **KERAS_BN)
    x = b.add("conv1_relu", "relu", [x])
    x = b.add("pool1_pad", "zeropad", [x], padding=[1, 1, 1, 1])
    x = b.add("pool1_pool", "maxpool", [x], pool=[3, 3], strides=[2, 2], padding="valid")
    for stage, (filters, blocks, stride1) in enumerate(((64, 3, 1), (128, 4, 2), (256, 6, 2), (512, 3, 2)), 2):
        for blk in range(1, blocks + 1):
            p = "conv%d_block%d" % (stage, blk)
            stride = stride1 if blk == 1 else 1
            # Keras model.layers order: the shortcut conv is created first but is listed after
            # the _2_ branch (layers are ordered by graph depth); see the reference list.
            y = _conv(b, p + "_1_conv", x, filters, 1, stride)
            y = b.add(p + "_1_bn", "batchnorm", [y], **KERAS_BN)
            y = b.add(p + "_1_relu", "relu", [y])
            y = _conv(b, p + "_2_conv", y, filters, 3, 1, "same")
            y = b.add(p + "_2_bn", "batchnorm", [y], **KERAS_BN)
            y = b.add(p + "_2_relu", "relu", [y])
            if blk == 1:
                s = _conv(b, p + "_0_conv", x, 4 * filters, 1, stride)
                y = _conv(b, p + "_3_conv", y, 4 * filters, 1)
                s = b.add(p + "_0_bn", "batchnorm", [s], **KERAS_BN)
                y = b.add(p + "_3_bn", "batchnorm", [y], **KERAS_BN)
            else:
                s = x
                y = _conv(b, p + "_3_conv", y, 4 * filters, 1)
                y = b.add(p + "_3_bn", "batchnorm", [y], **KERAS_BN)
            y = b.add(p + "_add", "add", [s, y])
            x = b.add(p + "_out", "relu", [y])
    if include_top:
        x = b.add("avg_pool", "gap", [x])
        x = b.add(top_name, "dense", [x], units=units, use_bias=True, activation="softmax")
    src = "keras resnet50 %s" % ("with top" if include_top else "notop")
    return _graph("resnet50", src, "input_1", 224, "caffe", b.layers, classes if include_top else None)


def torchvision_resnet50(classes=None, units=1000):
    """torchvision.models.resnet50 (v1.5: stride on the 3x3 conv2, no conv bias, BN eps 1e-5).
    Layer names are the state_dict module names; the functional parts get their own layers:
    <block>.relu1, <block>.relu2, <block>.add (inputs [bn3, identity]), <block>.relu_out."""
    b = _Builder()
    x = b.add("input", "input")
    x = _conv(b, "conv1", x, 64, 7, 2, [3, 3, 3, 3], use_bias=False)
    x = b.add("bn1", "batchnorm", [x], **TORCH_BN)
    x = b.add("relu", "relu", [x])
    x = b.add("maxpool", "maxpool", [x], pool=[3, 3], strides=[2, 2], padding=[1, 1, 1, 1])
    for li, (planes, blocks, stride1) in enumerate(((64, 3, 1), (128, 4, 2), (256, 6, 2), (512, 3, 2)), 1):
        for bi in range(blocks):
            p = "layer%d.%d" % (li, bi)
            stride = stride1 if bi == 0 else 1
            y = _conv(b, p + ".conv1", x, planes, 1, 1, "valid", use_bias=False)
            y = b.add(p + ".bn1", "batchnorm", [y], **TORCH_BN)
            y = b.add(p + ".relu1", "relu", [y])
            y = _conv(b, p + ".conv2", y, planes, 3, stride, [1, 1, 1, 1], use_bias=False)
            y = b.add(p + ".bn2", "batchnorm", [y], **TORCH_BN)
            y = b.add(p + ".relu2", "relu", [y])
            y = _conv(b, p + ".conv3", y, 4 * planes, 1, 1, "valid", use_bias=False)
            y = b.add(p + ".bn3", "batchnorm", [y], **TORCH_BN)
            if bi == 0:
                s = _conv(b, p + ".downsample.0", x, 4 * planes, 1, stride, "valid", use_bias=False)
                s = b.add(p + ".downsample.1", "batchnorm", [s], **TORCH_BN)
            else:
                s = x
            y = b.add(p + ".add", "add", [y, s])
            x = b.add(p + ".relu_out", "relu", [y])
    x = b.add("avgpool", "gap", [x])
    x = b.add("fc", "dense", [x], units=units, use_bias=True, activation="linear")
    return _graph("resnet50", "torchvision resnet50", "input", 224, "torch", b.layers, classes)


SQUEEZENET_FIRES = ((2, 16, 64), (3, 16, 64), (4, 32, 128), (5, 32, 128),
                    (6, 48, 192), (7, 48, 192), (8, 64, 256), (9, 64, 256))


def squeezenet1_1(include_drop9=True):
    """SqueezeNet v1.1 as built by keras-squeezenet (DeepCognition), notop. Layer order is Keras's
    model.layers order as stored in the weight file's layer_names: inside a fire module
    squeeze1x1, relu_squeeze1x1, expand1x1, expand3x3, relu_expand1x1, relu_expand3x3, concat.
    Pools are pool1, pool3, pool5 (3x3/2 valid). Ends with drop9 (Dropout 0.5) as the file does."""
    b = _Builder()
    x = b.add("input_1", "input")
    x = _conv(b, "conv1", x, 64, 3, 2, "valid")
    x = b.add("relu_conv1", "relu", [x])
    x = b.add("pool1", "maxpool", [x], pool=[3, 3], strides=[2, 2], padding="valid")
    for fid, sq, ex in SQUEEZENET_FIRES:
        p = "fire%d/" % fid
        x = _conv(b, p + "squeeze1x1", x, sq, 1)
        x = b.add(p + "relu_squeeze1x1", "relu", [x])
        left = _conv(b, p + "expand1x1", x, ex, 1)
        right = _conv(b, p + "expand3x3", x, ex, 3, 1, "same")
        left = b.add(p + "relu_expand1x1", "relu", [left])
        right = b.add(p + "relu_expand3x3", "relu", [right])
        x = b.add(p + "concat", "concat", [left, right])
        if fid in (3, 5):
            x = b.add("pool%d" % fid, "maxpool", [x], pool=[3, 3], strides=[2, 2], padding="valid")
    if include_drop9:
        x = b.add("drop9", "dropout", [x], rate=0.5)
    return _graph("squeezenet1_1", "keras-squeezenet v1.1 notop", "input_1", 227, "caffe", b.layers)


# --------------------------------------------------------------------------- misc

def random_tensors(graph, seed=0):
    """Seeded random tensors for every parameter of `graph`: conv He-normal with small biases,
    BN gamma U(0.5,1.5) (x0.3 on layers feeding an add, to keep residual sums bounded),
    beta/mean N(0,0.1), var U(0.5,1.5), dense Glorot-uniform."""
    rng = np.random.default_rng(seed)
    feeds_add = {i for l in graph["layers"] if l["type"] == "add" for i in l["inputs"]}
    out = collections.OrderedDict()
    for name, shape in expected_tensors(graph).items():
        layer, p = name.rsplit(".", 1)
        if p == "weight" and len(shape) == 4:
            a = rng.standard_normal(shape) * np.sqrt(2.0 / (shape[1] * shape[2] * shape[3]))
        elif p == "weight":
            lim = np.sqrt(6.0 / (shape[0] + shape[1]))
            a = rng.uniform(-lim, lim, shape)
        elif p == "bias":
            a = rng.standard_normal(shape) * 0.05
        elif p == "gamma":
            a = rng.uniform(0.5, 1.5, shape) * (0.3 if layer in feeds_add else 1.0)
        elif p == "running_var":
            a = rng.uniform(0.5, 1.5, shape)
        else:
            a = rng.standard_normal(shape) * 0.1
        out[name] = a.astype(np.float32)
    return out


def layer_index(graph):
    return {l["name"]: i for i, l in enumerate(graph["layers"])}


def summary(graph, tensors=None, height=None, width=None):
    """Human-readable table: index, name, type, output shape, params."""
    shapes = infer_shapes(graph, height, width)
    exp = expected_tensors(graph)
    per_layer = collections.Counter()
    for n, s in exp.items():
        per_layer[n.rsplit(".", 1)[0]] += int(np.prod(s))
    lines = []
    for i, l in enumerate(graph["layers"]):
        lines.append("%3d %-28s %-10s %-18s %d" % (i, l["name"], l["type"], "x".join(map(str, shapes[l["name"]])),
                                                    per_layer[l["name"]]))
    total, non = param_counts(graph)
    lines.append("total params %d, non-trainable %d" % (total, non))
    return "\n".join(lines)


if __name__ == "__main__":
    import sys
    if len(sys.argv) != 2:
        sys.stderr.write("usage: vkrun_model.py MODEL.safetensors   (prints the layer table)\n")
        sys.exit(2)
    try:
        g, t = read_model(sys.argv[1])
    except ModelError as e:
        sys.stderr.write("vkrun_model.py: error: %s\n" % e)
        sys.exit(1)
    print("%s (%s), %d layers, %d tensors" % (g.get("name"), g.get("source"), len(g["layers"]), len(t)))
    print(summary(g, t))
