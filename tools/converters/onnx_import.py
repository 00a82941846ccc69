"""ONNX -> vkrun model (graph + tensors), with python3-onnx (Debian 1.12).

One vkrun layer per ONNX node that computes something, named after the node (its first output
when the node has no name). Nodes whose inputs are all constants are folded (Constant, Shape of
a known activation, Gather/Unsqueeze/Concat/... chains that exporters leave before Reshape);
Dropout, Identity, Flatten of a flat tensor and no-op Reshapes become aliases. An op that has no
vkrun equivalent is an error that names the node, its op and its inputs: never a wrong graph.

Only the nodes the chosen output needs are converted: --top keeps the whole graph (graph output
0), --cut NODE ends the graph at that node (name or output name), and by default the graph ends
at the input of the last GlobalAveragePool (squeeze-and-excitation blocks have earlier ones), or
without one, of the first Flatten / Reshape / Gemm / MatMul: the include_top=False feature map."""

import collections
import os

import numpy as np

import vkrun_model as vm
from converters import limits, onnx_checks
from converters.common import ConvertError, load_classes, set_classes
from converters.graph import layer_shape

HEAD_OPS = ("GlobalAveragePool", "Flatten", "Reshape", "Gemm", "MatMul")
F32_MAX = float(np.finfo(np.float32).max)
MAX_FOLD_ELEMENTS = 1 << 26   # a folded constant (shape arithmetic, fills): far more than exporters leave
AUTO_PADS = ("NOTSET", "VALID", "SAME_UPPER", "SAME_LOWER")
# Python errors that a hostile node's values can raise in a handler or in folding: reported naming the node
NODE_ERRORS = (ArithmeticError, LookupError, TypeError, ValueError, AttributeError, MemoryError, vm.ModelError)


class Unmappable(Exception):
    """Raised by an op handler; the importer adds the node, its op and its inputs."""


class Act:
    """An activation: the vkrun layer that holds it, its vkrun shape, its ONNX shape (with N)."""

    def __init__(self, layer, vshape, oshape):
        self.layer, self.vshape, self.oshape = layer, tuple(vshape), tuple(int(d) for d in oshape)


def _attrs(node):
    import onnx
    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


# the ops _fold evaluates when all their inputs are constants (Constant and Shape of an activation too)
FOLDED_OPS = ("Constant", "Shape", "Identity", "Cast", "Dropout", "Unsqueeze", "Squeeze", "Concat", "Gather",
              "Slice", "Reshape", "ConstantOfShape", "Add", "Sub", "Mul", "Div", "Equal", "Where", "Transpose",
              "Neg", "Range", "Expand")


def supported_ops():
    """(the ops mapped to vkrun layers, the ops folded on constant inputs): `convert.py --list`."""
    return sorted(n[3:] for n in dir(Importer) if n.startswith("op_")), sorted(FOLDED_OPS)


def _fold_size(shape):
    n = int(np.prod([int(d) for d in np.reshape(shape, -1)], dtype=object))
    if min([int(d) for d in np.reshape(shape, -1)] or [0]) < 0 or n > MAX_FOLD_ELEMENTS:
        raise Unmappable("the constant it would fold has shape %s (at most %d elements are folded)"
                         % ([int(d) for d in np.reshape(shape, -1)], MAX_FOLD_ELEMENTS))
    return shape


def _fold(op, ins, at):
    """Evaluates a node whose inputs are all constants; None when `op` is not foldable here."""
    if op not in FOLDED_OPS:
        return None
    if op in ("ConstantOfShape", "Expand"):
        _fold_size(ins[0] if op == "ConstantOfShape" else np.broadcast_shapes(np.shape(ins[0]),
                                                                             tuple(_fold_size(ins[1]))))
    if op == "Range":
        if float(ins[2]) == 0:
            raise Unmappable("Range with delta 0")
        _fold_size([max(int(np.ceil((float(ins[1]) - float(ins[0])) / float(ins[2]))), 0)])
    if op in ("Identity", "Cast", "Dropout"):
        if op == "Cast":
            import onnx
            to_np = getattr(onnx.helper, "tensor_dtype_to_np_dtype", None)  # onnx >= 1.13
            return ins[0].astype(to_np(at["to"]) if to_np else onnx.mapping.TENSOR_TYPE_TO_NP_TYPE[at["to"]])
        return ins[0]
    if op == "Unsqueeze":
        axes = at.get("axes", list(ins[1]) if len(ins) > 1 else [])
        out = ins[0]
        for a in sorted(int(a) % (out.ndim + len(axes)) for a in axes):
            out = np.expand_dims(out, a)
        return out
    if op == "Squeeze":
        axes = at.get("axes", list(ins[1]) if len(ins) > 1 else None)
        return np.squeeze(ins[0], axis=tuple(int(a) for a in axes) if axes is not None else None)
    if op == "Concat":
        return np.concatenate([np.atleast_1d(i) for i in ins], axis=at.get("axis", 0))
    if op == "Gather":
        return np.take(ins[0], ins[1].astype(np.int64), axis=at.get("axis", 0))
    if op == "Slice":
        starts, ends = ins[1], ins[2]
        axes = ins[3] if len(ins) > 3 and ins[3] is not None else range(len(starts))
        steps = ins[4] if len(ins) > 4 and ins[4] is not None else [1] * len(starts)
        sl = [slice(None)] * ins[0].ndim
        for s, e, a, st in zip(starts, ends, axes, steps):
            sl[int(a)] = slice(int(s), int(max(min(e, 2 ** 62), -2 ** 62)), int(st))
        return ins[0][tuple(sl)]
    if op == "Reshape":
        return ins[0].reshape(_reshape_target(ins[0].shape, ins[1]))
    if op == "ConstantOfShape":
        v = at.get("value")
        import onnx
        fill = onnx.numpy_helper.to_array(v).reshape(-1)[0] if v is not None else np.float32(0)
        return np.full([int(d) for d in ins[0]], fill)
    binary = {"Add": np.add, "Sub": np.subtract, "Mul": np.multiply, "Div": np.divide,
              "Equal": np.equal, "Where": None}
    if op in binary and binary[op] is not None:
        r = binary[op](ins[0], ins[1])
        if op == "Div" and np.issubdtype(ins[0].dtype, np.integer):
            r = (ins[0] // ins[1]).astype(ins[0].dtype)
        return r
    if op == "Shape":
        return np.array(np.shape(ins[0]), np.int64)
    if op == "Transpose":
        return np.transpose(ins[0], at.get("perm"))
    if op == "Neg":
        return -ins[0]
    if op == "Range":
        return np.arange(ins[0], ins[1], ins[2]).astype(ins[0].dtype)
    if op == "Expand":
        return ins[0] * np.ones([int(d) for d in ins[1]], ins[0].dtype)
    if op == "Where":
        return np.where(ins[0], ins[1], ins[2])
    return None


def _selection_weight(cin, before, after):
    w = np.zeros((before + cin + after, cin, 1, 1), np.float32)
    w[before + np.arange(cin), np.arange(cin), 0, 0] = 1.0
    return w


def _reshape_target(shape, target):
    """ONNX Reshape: 0 copies the input dimension, -1 is inferred; the sizes must agree."""
    target = [int(d) for d in np.reshape(target, -1)]
    if target.count(-1) > 1 or min(target + [0]) < -1 or any(d == 0 and i >= len(shape) for i, d in enumerate(target)):
        raise Unmappable("reshape target %s (one -1 at most, 0 only where the input has a dimension)" % target)
    out = [int(shape[i]) if d == 0 else d for i, d in enumerate(target)]
    total = int(np.prod([int(d) for d in shape], dtype=object))
    if -1 in out:
        known = int(np.prod([d for d in out if d != -1], dtype=object))
        if known == 0 or total % known:
            raise Unmappable("reshape %s -> %s: %d elements do not divide into it" % (list(shape), target, total))
        out[out.index(-1)] = total // known
    if int(np.prod(out, dtype=object)) != total:
        raise Unmappable("reshape %s -> %s: %d elements into %d" % (list(shape), target, total,
                                                                     int(np.prod(out, dtype=object))))
    return out


class Importer:
    def __init__(self, path, args):
        self.path, self.args = path, args
        self.model, self.opset = onnx_checks.load(path)
        g = self.model.graph
        self.nodes = list(g.node)
        self.consts = {i.name: onnx_checks.to_array(i, path) for i in g.initializer}
        self.acts = {}
        self.layers = []
        self.params = {}       # layer name -> OrderedDict param -> array
        self.names = set()
        self.selections = {}   # frozen selection conv -> (input channels, zeros before, zeros after)
        self.uses = collections.Counter(i for n in self.nodes for i in n.input)
        self.producer = {o: n for n in self.nodes for o in n.output}

    # ------------------------------------------------------------------ helpers

    def fail(self, msg):
        raise ConvertError("%s: %s" % (self.path, msg))

    def describe(self, name):
        if name == "":
            return "(absent)"
        if name in self.consts:
            return "%s (constant %s)" % (name, list(np.shape(self.consts[name])))
        if name in self.acts:
            return "%s %s" % (name, list(self.acts[name].oshape))
        return "%s (unknown)" % name

    def const(self, node, i, what):
        if i >= len(node.input) or node.input[i] == "":
            return None
        if node.input[i] not in self.consts:
            raise Unmappable("its %s (%s) is not a constant" % (what, node.input[i]))
        return self.consts[node.input[i]]

    def act(self, name):
        if name not in self.acts:
            raise Unmappable("input %s is not an activation (constant or unknown)" % name)
        return self.acts[name]

    def layer_name(self, node):
        base = node.name or node.output[0]
        name, i = base, 1
        while name in self.names:
            i += 1
            name = "%s_%d" % (base, i)
        if len(name.encode()) > vm.MAX_NAME:
            self.fail("node %r: name longer than %d bytes" % (name[:60], vm.MAX_NAME))
        return name

    def emit(self, node, type_, inputs, params=(), oshape=None, **fields):
        """Adds one layer for `node` (inputs: ONNX activation names) and records its output."""
        name = self.layer_name(node)
        layer = collections.OrderedDict([("name", name), ("type", type_), ("inputs", [self.acts[i].layer for i in inputs])])
        layer.update(fields)
        try:
            limits.check_layer(layer)
            vshape = layer_shape(layer, [self.acts[i].vshape for i in inputs])
            limits.check_shape(layer, vshape)
        except vm.ModelError as e:
            raise Unmappable(str(e))
        self.layers.append(layer)
        self.names.add(name)
        self.params[name] = collections.OrderedDict(
            (p, np.ascontiguousarray(a, dtype=np.float32)) for p, a in params)
        x = self.acts[inputs[0]]
        if oshape is None:
            oshape = x.oshape if vshape == x.vshape else (x.oshape[0],) + vshape
        self.acts[node.output[0]] = Act(name, vshape, oshape)
        return layer

    def alias(self, node, src, oshape=None):
        a = self.acts[src]
        self.acts[node.output[0]] = Act(a.layer, a.vshape, oshape or a.oshape)

    # ------------------------------------------------------------------ the input and the output

    def add_input(self):
        g = self.model.graph
        ins = [i for i in g.input if i.name not in self.consts]
        if len(ins) != 1:
            self.fail("the model has %d inputs (%s); vkrun models have one image input"
                      % (len(ins), ", ".join(i.name for i in ins)))
        vi = ins[0]
        dims = [d.dim_value if d.HasField("dim_value") else None for d in vi.type.tensor_type.shape.dim]
        bad = [d for d in dims if d is not None and not 0 < d <= limits.DIM_MAX]
        if bad:
            self.fail("input %r has dimensions %s; vkrun takes 1 to %d" % (vi.name, dims, limits.DIM_MAX))
        if len(dims) != 4:
            self.fail("input %r has rank %d; expected an NCHW image [N, C, H, W]" % (vi.name, len(dims)))
        if not dims[1]:
            self.fail("input %r has no fixed channel count" % vi.name)
        h, w = (self.args.size, self.args.size) if self.args.size else (dims[2], dims[3])
        if not h or not w:
            self.fail("input %r has no fixed height/width (%s); pass --size N" % (vi.name, dims))
        self.input_name = vi.name
        self.input_hw = (h, w)
        self.channels = dims[1]
        self.layers.append(collections.OrderedDict([("name", vi.name), ("type", "input")]))
        self.names.add(vi.name)
        try:
            limits.check_shape(self.layers[-1], (dims[1], h, w))
        except vm.ModelError as e:
            self.fail("input %r: %s" % (vi.name, e))
        self.acts[vi.name] = Act(vi.name, (dims[1], h, w), (dims[0] or 1, dims[1], h, w))

    def output_tensor(self):
        a = self.args
        if a.cut:
            for n in self.nodes:
                if a.cut in (n.name, n.output[0]):
                    return n.output[0]
            self.fail("--cut %r: no node of that name or output (nodes are named like %r)"
                      % (a.cut, self.nodes[len(self.nodes) // 2].name or self.nodes[0].output[0]))
        if a.top:
            if not self.model.graph.output:
                self.fail("the graph has no output")
            return self.model.graph.output[0].name
        gaps = [n for n in self.nodes if n.op_type == "GlobalAveragePool"]
        for n in gaps[-1:] or self.nodes:  # the last global pool (not an SE block's), else the first head op
            if n.op_type in HEAD_OPS:
                return n.input[0]
        self.fail("no pooling/classifier head (%s) found to cut before; pass --cut NODE or --top"
                  % "/".join(HEAD_OPS))

    def needed(self, out):
        want, stack = set(), [out]
        while stack:
            t = stack.pop()
            n = self.producer.get(t)
            if n is None or id(n) in want:
                continue
            want.add(id(n))
            stack.extend(i for i in n.input if i)
        return [n for n in self.nodes if id(n) in want]

    # ------------------------------------------------------------------ conversion

    def run(self):
        self.add_input()
        out = self.output_tensor()
        for node in self.needed(out):
            self.convert_node(node)
        if out not in self.acts:
            self.fail("the output %r is a constant, not an activation" % out)
        return self.finish(self.acts[out].layer)

    def convert_node(self, node):
        op = node.op_type
        at = _attrs(node)
        if node.domain not in ("", "ai.onnx"):
            op = "%s::%s" % (node.domain, op)
        try:
            if op == "Constant":
                self.consts[node.output[0]] = self.constant_value(at)
                return
            if op == "Shape" and node.input[0] in self.acts:
                shp = np.array(self.acts[node.input[0]].oshape, np.int64)
                self.consts[node.output[0]] = shp[at.get("start", 0):at.get("end", len(shp))]
                return
            if all(i == "" or i in self.consts for i in node.input):
                try:
                    with np.errstate(all="raise"):
                        v = _fold(op, [self.consts.get(i) for i in node.input], at)
                except NODE_ERRORS as e:
                    raise Unmappable("folding its constant inputs failed: %s: %s" % (type(e).__name__, e))
                if v is None:
                    raise Unmappable("it has only constant inputs, and %s is not folded" % op)
                self.consts[node.output[0]] = np.asarray(v)
                return
            handler = getattr(self, "op_" + op, None)
            if handler is None:
                raise Unmappable("vkrun has no layer for ONNX op %s" % op)
            handler(node, at)
        except (Unmappable,) + NODE_ERRORS as e:
            why = str(e) if isinstance(e, Unmappable) else "%s: %s" % (type(e).__name__, str(e)[:300])
            self.fail("node %r (%s, inputs: %s) cannot be mapped to a vkrun layer: %s"
                      % (node.name or node.output[0], op, ", ".join(self.describe(i) for i in node.input), why))

    def constant_value(self, at):
        from onnx import numpy_helper
        if "value" in at:
            return numpy_helper.to_array(at["value"])
        for k, dt in (("value_float", np.float32), ("value_floats", np.float32),
                      ("value_int", np.int64), ("value_ints", np.int64)):
            if k in at:
                return np.array(at[k], dt)
        raise Unmappable("Constant without a value/value_float(s)/value_int(s) attribute")

    def finish(self, out_layer):
        keep, stack = set(), [out_layer]
        by = {l["name"]: l for l in self.layers}
        while stack:
            n = stack.pop()
            if n not in keep:
                keep.add(n)
                stack.extend(by[n].get("inputs", []))
        layers = [l for l in self.layers if l["name"] in keep]
        tensors = collections.OrderedDict()
        for l in layers:
            for p, a in self.params.get(l["name"], {}).items():
                tensors[vm.tensor_name(l["name"], p)] = a
        h, w = self.input_hw
        base = os.path.splitext(os.path.basename(self.path))[0]
        producer = ("%s %s" % (self.model.producer_name, self.model.producer_version)).strip()
        g = collections.OrderedDict([
            ("version", vm.GRAPH_VERSION), ("name", base),
            ("source", "onnx %s (%s, opset %d)%s" % (os.path.basename(self.path), producer or "unknown producer",
                                                    self.opset, "" if self.args.top else ", cut at %s" % out_layer)),
            ("input", collections.OrderedDict([("name", self.input_name), ("channels", self.channels),
                                               ("height", h), ("width", w),
                                               ("preprocess", self.args.preprocess or "torch")])),
            ("layers", layers)])
        last = layers[-1]
        if self.args.top and last["type"] in ("dense", "softmax"):
            set_classes(g, load_classes(self.args, self.acts_by_layer(last["name"]).vshape[0], self.path))
        return g, tensors

    def acts_by_layer(self, name):
        return next(a for a in self.acts.values() if a.layer == name)

    # ------------------------------------------------------------------ op handlers

    def _window_padding(self, node, at, x, k, st, dil=(1, 1)):
        """ONNX auto_pad / pads -> vkrun padding ("valid", "same" or [t, b, l, r])."""
        ap = at.get("auto_pad", b"NOTSET")
        ap = ap.decode("utf-8", "backslashreplace") if isinstance(ap, bytes) else ap
        if ap not in AUTO_PADS:
            raise Unmappable("auto_pad %r is not one of %s" % (ap, ", ".join(AUTO_PADS)))
        for key, v, lo in (("strides", st, 1), ("dilations", dil, 1), ("kernel_shape", k, 1)):
            if len(v) != 2 or not all(isinstance(x, (int, np.integer)) and lo <= x <= limits.DIM_MAX for x in v):
                raise Unmappable("%s %s: 2 integers in [%d, %d] expected" % (key, list(v), lo, limits.DIM_MAX))
        if ap == "VALID":
            return "valid"
        if ap in ("SAME_UPPER", "SAME_LOWER"):
            if ap == "SAME_UPPER" and tuple(dil) == (1, 1):
                return "same"
            pads = []
            for size, kk, s, d in zip(x.vshape[1:], k, st, dil):
                before, after = vm.same_padding(size, (kk - 1) * d + 1, s)
                pads.append((after, before) if ap == "SAME_LOWER" else (before, after))
            return [pads[0][0], pads[0][1], pads[1][0], pads[1][1]]
        p = list(at.get("pads", [0, 0, 0, 0]))
        if len(p) != 4 or min(p) < 0 or max(p) > limits.DIM_MAX:
            raise Unmappable("pads %s: expected 4 values in [0, %d]" % (p, limits.DIM_MAX))
        return "valid" if not any(p) else [p[0], p[2], p[1], p[3]]

    def _image(self, name):
        x = self.act(name)
        if len(x.oshape) != 4:
            raise Unmappable("input %s has shape %s; expected NCHW" % (name, list(x.oshape)))
        return x

    def op_Conv(self, node, at):
        x = self._image(node.input[0])
        w = self.const(node, 1, "weight")
        b = self.const(node, 2, "bias")
        if w is None or w.ndim != 4:
            raise Unmappable("weight must be a 4-D constant (2-D convolution)")
        k = list(w.shape[2:])
        if "kernel_shape" in at and list(at["kernel_shape"]) != k:
            raise Unmappable("kernel_shape %s disagrees with the weight %s" % (list(at["kernel_shape"]), list(w.shape)))
        groups = int(at.get("group", 1))
        if not 1 <= groups <= limits.DIM_MAX:
            raise Unmappable("group %d (1 to %d)" % (groups, limits.DIM_MAX))
        st = list(at.get("strides", [1, 1]))
        dil = list(at.get("dilations", [1, 1]))
        if x.vshape[0] != w.shape[1] * groups:
            raise Unmappable("weight %s with group %d does not fit %d input channels" % (list(w.shape), groups, x.vshape[0]))
        fields = dict(filters=int(w.shape[0]), kernel=k, strides=st,
                      padding=self._window_padding(node, at, x, k, st, dil), use_bias=b is not None,
                      activation="linear")
        if groups != 1:
            fields["groups"] = groups
        if dil != [1, 1]:
            fields["dilation"] = dil
        params = [("weight", w)] + ([("bias", b.reshape(-1))] if b is not None else [])
        if len(x.vshape) == 1:  # a 1x1 conv of a pooled [N,C,1,1] (squeeze-and-excitation): dense
            if k != [1, 1] or groups != 1 or fields["padding"] != "valid":
                raise Unmappable("a %s conv (group %d, padding %s) of a pooled 1x1 map" % (k, groups, fields["padding"]))
            params[0] = ("weight", w.reshape(w.shape[0], -1))
            self.emit(node, "dense", [node.input[0]], params, oshape=x.oshape[:1] + (w.shape[0], 1, 1),
                      units=int(w.shape[0]), use_bias=b is not None, activation="linear")
            return
        self.emit(node, "conv2d", [node.input[0]], params, **fields)

    def op_BatchNormalization(self, node, at):
        vals = [self.const(node, i, n) for i, n in enumerate(("input", "scale", "bias", "mean", "var")) if i]
        if any(v is None for v in vals):
            raise Unmappable("scale, bias, mean and var must all be constants")
        if at.get("training_mode", 0):
            raise Unmappable("training_mode=1")
        self.act(node.input[0])
        self.emit(node, "batchnorm", [node.input[0]], zip(vm.LAYER_PARAMS["batchnorm"], vals),
                  epsilon=float(at.get("epsilon", 1e-5)), momentum=float(at.get("momentum", 0.9)))

    def op_Relu(self, node, at):
        self.act(node.input[0])
        self.emit(node, "relu", [node.input[0]])

    def op_Clip(self, node, at):
        self.act(node.input[0])
        lo = at.get("min", self.const(node, 1, "min"))
        hi = at.get("max", self.const(node, 2, "max"))
        lo = -F32_MAX if lo is None else max(float(lo), -F32_MAX)
        hi = F32_MAX if hi is None else min(float(hi), F32_MAX)
        if lo == 0.0 and hi == F32_MAX:
            self.emit(node, "relu", [node.input[0]])
        else:
            self.emit(node, "clip", [node.input[0]], min=lo, max=hi)

    def op_Sigmoid(self, node, at):
        self.act(node.input[0])
        self.emit(node, "sigmoid", [node.input[0]])

    def op_HardSigmoid(self, node, at):
        self.act(node.input[0])
        self.emit(node, "hard_sigmoid", [node.input[0]], alpha=float(at.get("alpha", 0.2)),
                  beta=float(at.get("beta", 0.5)))

    def op_HardSwish(self, node, at):
        self.act(node.input[0])
        self.emit(node, "hard_swish", [node.input[0]])

    def _scalar_const(self, node, i):
        c = self.consts.get(node.input[i])
        return None if c is None or np.size(c) != 1 else float(np.reshape(c, -1)[0])

    def op_Mul(self, node, at):
        a, b = node.input[0], node.input[1]
        for x, s in ((a, b), (b, a)):  # x * sigmoid(x) -> swish; x * hardsigmoid(x) (1/6, 1/2) -> hard_swish
            p = self.producer.get(s)
            if p is None or p.input[0] != x or x not in self.acts:
                continue
            pat = _attrs(p)
            if p.op_type == "Sigmoid":
                self.emit(node, "swish", [x])
                return
            if p.op_type == "HardSigmoid" and abs(pat.get("alpha", 0.2) - 1 / 6) < 1e-7 and pat.get("beta", 0.5) == 0.5:
                self.emit(node, "hard_swish", [x])
                return
        for i in (0, 1):
            if node.input[1 - i] in self.acts and self._scalar_const(node, i) == 1.0:
                self.alias(node, node.input[1 - i])
                return
        x, y = self.act(a), self.act(b)
        if (len(y.vshape), np.prod(y.oshape)) > (len(x.vshape), np.prod(x.oshape)):  # the image first
            a, b, x, y = b, a, y, x
        if y.oshape != x.oshape and not (len(x.oshape) == 4 and y.oshape in (x.oshape[:2], x.oshape[:2] + (1, 1))):
            raise Unmappable("broadcast of %s over %s: only equal shapes or [N,C,1,1] over [N,C,H,W]"
                             % (list(y.oshape), list(x.oshape)))
        self.emit(node, "multiply", [a, b], oshape=x.oshape)

    def op_Add(self, node, at):
        if all(i in self.acts for i in node.input):
            x, y = self.acts[node.input[0]], self.acts[node.input[1]]
            if x.oshape != y.oshape:
                raise Unmappable("broadcasting add of %s and %s" % (list(x.oshape), list(y.oshape)))
            self.emit(node, "add", list(node.input[:2]))
            return
        ci = 0 if node.input[0] in self.consts else 1
        xname, c = node.input[1 - ci], self.consts[node.input[ci]]
        x = self.act(xname)
        last = self.layers[-1]
        if (x.layer == last["name"] and last["type"] == "dense" and not last["use_bias"]
                and self.uses[xname] == 1 and c.size == last["units"]):
            last["use_bias"] = True  # MatMul + Add -> dense with bias
            self.params[last["name"]]["bias"] = np.ascontiguousarray(c.reshape(-1), np.float32)
            self.acts[node.output[0]] = x
            return
        if not np.any(c):
            self.alias(node, xname)
            return
        raise Unmappable("adding a constant %s is only supported as the bias of a preceding MatMul" % list(c.shape))

    def _flat(self, node, xname):
        x = self.act(xname)
        n = x.oshape[0]
        if len(x.vshape) == 1 or x.vshape[1:] == (1, 1):
            self.alias(node, xname, (n, int(np.prod(x.vshape))))
        else:
            self.emit(node, "flatten", [xname], oshape=(n, int(np.prod(x.vshape))))

    def op_Flatten(self, node, at):
        if at.get("axis", 1) != 1:
            raise Unmappable("axis %d (only axis 1, [N, C*H*W])" % at.get("axis", 1))
        self._flat(node, node.input[0])

    def op_Reshape(self, node, at):
        x = self.act(node.input[0])
        t = self.const(node, 1, "target shape")
        if t is None:
            raise Unmappable("no target shape")
        shape = _reshape_target(x.oshape, t)
        if tuple(shape) == x.oshape:
            self.alias(node, node.input[0])
        elif len(shape) == 2 and shape[0] == x.oshape[0]:
            self._flat(node, node.input[0])
        else:
            raise Unmappable("reshape %s -> %s (only the flatten [N, -1] and no-op forms)" % (list(x.oshape), shape))

    def op_GlobalAveragePool(self, node, at):
        x = self._image(node.input[0])
        self.emit(node, "gap", [node.input[0]], oshape=x.oshape[:2] + (1, 1))

    def _pool(self, node, at, type_):
        x = self._image(node.input[0])
        if "kernel_shape" not in at:
            raise Unmappable("no kernel_shape attribute")
        k = list(at["kernel_shape"])
        st = list(at.get("strides", [1, 1]))
        if list(at.get("dilations", [1, 1])) != [1, 1]:
            raise Unmappable("dilated pooling")
        fields = dict(pool=k, strides=st, padding=self._window_padding(node, at, x, k, st))
        if type_ == "avgpool":
            fields["count_include_pad"] = bool(at.get("count_include_pad", 0))
        if at.get("ceil_mode", 0):
            fields["ceil_mode"] = True
        self.emit(node, type_, [node.input[0]], **fields)

    def op_MaxPool(self, node, at):
        if len(node.output) > 1 and node.output[1] and self.uses[node.output[1]]:
            raise Unmappable("the Indices output is used")
        self._pool(node, at, "maxpool")

    def op_AveragePool(self, node, at):
        self._pool(node, at, "avgpool")

    def _dense(self, node, xname, w, bias):
        x = self.act(xname)
        if len(x.oshape) != 2:
            raise Unmappable("input %s has shape %s; expected [N, features]" % (xname, list(x.oshape)))
        if w.ndim != 2 or w.shape[1] != x.oshape[1]:
            raise Unmappable("weight %s does not fit %d input features" % (list(w.shape), x.oshape[1]))
        params = [("weight", w)] + ([("bias", np.broadcast_to(bias, (w.shape[0],)))] if bias is not None else [])
        self.emit(node, "dense", [xname], params, units=int(w.shape[0]), use_bias=bias is not None,
                  activation="linear")

    def op_Gemm(self, node, at):
        if at.get("transA", 0):
            raise Unmappable("transA=1")
        b = self.const(node, 1, "B")
        c = self.const(node, 2, "C")
        if b is None or b.ndim != 2:
            raise Unmappable("B must be a 2-D constant")
        w = (b if at.get("transB", 0) else b.T) * float(at.get("alpha", 1.0))
        self._dense(node, node.input[0], w, None if c is None else np.reshape(c, -1) * float(at.get("beta", 1.0)))

    def op_MatMul(self, node, at):
        b = self.const(node, 1, "B")
        if b is None or b.ndim != 2:
            raise Unmappable("B must be a 2-D constant")
        self._dense(node, node.input[0], b.T, None)

    def op_Concat(self, node, at):
        xs = [self._image(i) for i in node.input]
        if len(xs) == 1:
            self.alias(node, node.input[0])
            return
        if at.get("axis") not in (1, -3):
            raise Unmappable("axis %s (only the channel axis 1)" % at.get("axis"))
        self.emit(node, "concat", list(node.input), oshape=(xs[0].oshape[0], sum(x.vshape[0] for x in xs)) + xs[0].vshape[1:])

    def _select(self, node, xname, stride=(1, 1), cpad=(0, 0)):
        """Strided subsampling x[:, :, ::sh, ::sw] and/or zero channels before/after (option-A
        ResNet shortcuts) as a frozen 1x1 conv without bias whose weight is the identity at the
        channel offset (exact in fp32). A selection feeding only this node is extended in place."""
        x = self.act(xname)
        last = self.layers[-1] if len(self.layers) > 1 else None
        if last is not None and x.layer == last["name"] and last["name"] in self.selections and self.uses[xname] == 1:
            cin, before, after = self.selections[last["name"]]
            last["strides"] = [last["strides"][0] * stride[0], last["strides"][1] * stride[1]]
            last["filters"] += cpad[0] + cpad[1]
            self.selections[last["name"]] = (cin, before + cpad[0], after + cpad[1])
            self.params[last["name"]]["weight"] = _selection_weight(*self.selections[last["name"]])
            vshape = layer_shape(last, [self.acts_by_layer(last["inputs"][0]).vshape])
            self.acts[node.output[0]] = Act(last["name"], vshape, (x.oshape[0],) + vshape)
            for a in self.acts.values():
                if a.layer == last["name"]:
                    a.vshape, a.oshape = vshape, (a.oshape[0],) + vshape
            return
        cin = x.vshape[0]
        layer = self.emit(node, "conv2d", [xname], [("weight", _selection_weight(cin, *cpad))],
                          filters=cin + cpad[0] + cpad[1], kernel=[1, 1], strides=list(stride), padding="valid",
                          use_bias=False, activation="linear", trainable=False)
        self.selections[layer["name"]] = (cin, cpad[0], cpad[1])

    def op_Slice(self, node, at):
        x = self._image(node.input[0])
        if "starts" in at:  # opset < 10
            starts, ends, axes, steps = at["starts"], at["ends"], at.get("axes"), None
        else:
            starts, ends = self.const(node, 1, "starts"), self.const(node, 2, "ends")
            axes, steps = self.const(node, 3, "axes"), self.const(node, 4, "steps")
        axes = list(range(len(starts))) if axes is None else [int(a) % 4 for a in axes]
        steps = [1] * len(starts) if steps is None else [int(v) for v in steps]
        stride = [1, 1]
        for a, s0, e, st in zip(axes, starts, ends, steps):
            full = x.oshape[a]
            if int(s0) != 0 or int(e) < full or st < 1 or (a < 2 and st != 1):
                raise Unmappable("slice [%s:%s:%s] of axis %d (only x[:, :, ::s, ::s])" % (s0, e, st, a))
            if a >= 2:
                stride[a - 2] *= st
        if stride == [1, 1]:
            self.alias(node, node.input[0])
        else:
            self._select(node, node.input[0], stride=tuple(stride))

    def op_Pad(self, node, at):
        self._image(node.input[0])
        mode = at.get("mode", b"constant")
        mode = mode.decode() if isinstance(mode, bytes) else mode
        pads = at.get("pads", self.const(node, 1, "pads"))
        value = at.get("value", self.const(node, 2, "constant_value"))
        if mode != "constant" or (value is not None and float(np.reshape(value, -1)[0]) != 0.0):
            raise Unmappable("only zero padding (mode %s, value %s)" % (mode, value))
        p = [int(v) for v in np.reshape(pads, -1)]
        if len(p) != 8 or p[0] or p[4] or min(p) < 0 or ((p[1] or p[5]) and any(p[2:4] + p[6:])):
            raise Unmappable("pads %s: only non-negative padding of H and W, or of C alone" % p)
        if p[1] or p[5]:
            self._select(node, node.input[0], cpad=(p[1], p[5]))
            return
        if not any(p):
            self.alias(node, node.input[0])
            return
        self.emit(node, "zeropad", [node.input[0]], padding=[p[2], p[6], p[3], p[7]])

    def op_Softmax(self, node, at):
        x = self.act(node.input[0])
        axis = at.get("axis", 1 if self.opset < 13 else -1)
        if len(x.oshape) != 2 or axis not in (1, -1):
            raise Unmappable("softmax over axis %s of %s (only the features of [N, K])" % (axis, list(x.oshape)))
        self.emit(node, "softmax", [node.input[0]])

    def op_Dropout(self, node, at):
        self.alias(node, node.input[0])

    op_Identity = op_Dropout


def convert_onnx(path, args):
    try:
        import onnx  # noqa: F401
    except ImportError:
        raise ConvertError("%s is an ONNX model; reading it needs python3-onnx (apt-get install -y python3-onnx)" % path)
    return Importer(path, args).run()
