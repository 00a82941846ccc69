"""An ONNX file as untrusted input (issue 24): read, checked as ONNX's checker would, its external
data read here, before converters/onnx_import.py looks at it.

- External data only from regular files inside the model's folder: the location must be relative
  and its real path (symbolic links resolved) inside the real path of the model's folder; the file
  is opened without blocking (a FIFO never hangs), must be a regular file (no device such as
  /dev/zero), and its bytes at `offset` (and `length` when given, else to the end of the file) must
  be exactly the tensor's declared shape and type; at most MAX_TENSOR_BYTES are read. onnx 1.12
  itself only strips a leading '/' or '.', so the model is loaded with load_external_data=False.
- The graph: every name valid UTF-8, an ONNX opset this onnx knows, initializer names unique, each
  value written by one node (or initializer, or graph input), every node input defined before it
  (a missing input or a cycle is named), every node with an output, no negative dimension; then
  onnx.checker.check_model (schemas: inputs, attributes). Not onnx's shape inference: in onnx 1.12 it
  dies of SIGFPE on a stride of 0; the importer checks shapes node by node itself.

Every error names the file and the node (with its op), the initializer, or the external file."""

import os
import stat
import warnings

import numpy as np

from converters.common import ConvertError

MAX_TENSOR_BYTES = 2 << 30   # one initializer (external or not): 2 GiB, protobuf's limit for a whole inline model
MAX_MODEL_BYTES = 2 << 30


def _fail(path, msg):
    raise ConvertError("%s: %s" % (path, msg))


def _node_label(node, i):
    name = node.name if isinstance(node.name, str) else "?"
    out = node.output[0] if len(node.output) and isinstance(node.output[0], str) else ""
    op = node.op_type if isinstance(node.op_type, str) else "?"
    return "node %r (%s)" % (name or out or "#%d" % i, op)


def _check_names(model, path):
    """protobuf (cpp) returns a str field that is not UTF-8 as bytes: refuse it, escaped."""
    g = model.graph

    def bad(what, v):
        if isinstance(v, bytes):
            _fail(path, "%s %s is not valid UTF-8" % (what, v.decode("utf-8", "backslashreplace")))
    for i, n in enumerate(g.node):
        for v in (n.name, n.op_type, n.domain):
            bad("node #%d: name or op" % i, v)
        for v in list(n.input) + list(n.output):
            bad("%s: value name" % _node_label(n, i), v)
        for a in n.attribute:
            bad("%s: attribute name" % _node_label(n, i), a.name)
    for t in g.initializer:
        bad("initializer name", t.name)
    for vi in list(g.input) + list(g.output) + list(g.value_info):
        bad("graph input/output name", vi.name)
    for o in model.opset_import:
        bad("opset domain", o.domain)
    for v in (g.name, model.producer_name, model.producer_version):
        bad("graph/producer name", v)


def _check_opset(model, path):
    import onnx
    vs = [o.version for o in model.opset_import if o.domain in ("", "ai.onnx")]
    if not vs:
        _fail(path, "no ONNX opset declared (opset_import has no entry for the default domain)")
    newest = onnx.defs.onnx_opset_version()
    if max(vs) > newest or min(vs) < 1:
        _fail(path, "opset %d: this onnx (%s) knows opsets 1 to %d" % (max(vs) if max(vs) > newest else min(vs),
                                                                         onnx.__version__, newest))
    return max(vs)


def _check_graph(model, path):
    g = model.graph
    where = {}  # value name -> who defines it
    for t in g.initializer:
        if t.name in where:
            _fail(path, "initializer %r appears twice" % t.name)
        where[t.name] = "initializer %r" % t.name
        if any(d < 0 for d in t.dims):
            _fail(path, "initializer %r has a negative dimension: %s" % (t.name, list(t.dims)))
    for vi in g.input:
        where.setdefault(vi.name, "the graph input %r" % vi.name)
    later = {}
    for i, n in enumerate(g.node):
        for o in n.output:
            later.setdefault(o, (i, n))
    for i, n in enumerate(g.node):
        label = _node_label(n, i)
        if not len(n.output) or not n.output[0]:
            _fail(path, "%s has no output" % label)
        for x in n.input:
            if x and x not in where:
                if x in later:
                    j, m = later[x]
                    _fail(path, "%s: input %r comes from %s, which is not before it (a cycle, or nodes not in "
                                "topological order)" % (label, x, _node_label(m, j)))
                _fail(path, "%s: input %r is produced by no node, initializer or graph input" % (label, x))
        for o in n.output:
            if not o:
                continue
            if o in where:
                _fail(path, "%s writes %r, which %s also writes (each value must have one producer)"
                      % (label, o, where[o]))
            where[o] = label
    for o in g.output:
        if o.name not in where:
            _fail(path, "graph output %r is produced by no node" % o.name)


def _itemsize(t):
    """Bytes per element of a numeric tensor type; None for strings and unknown types."""
    import onnx
    np_type = onnx.mapping.TENSOR_TYPE_TO_NP_TYPE.get(t.data_type)
    return None if np_type is None or np.dtype(np_type).kind in "OUS" else np.dtype(np_type).itemsize


def _read_external(t, base, path):
    """The bytes of external tensor t, from a regular file inside `base` (a real path)."""
    info = {e.key: e.value for e in t.external_data}
    loc = info.get("location", "")
    what = "tensor %r: external data %r" % (t.name, loc)
    if not loc:
        _fail(path, "tensor %r: external data without a location" % t.name)
    if "\0" in loc or os.path.isabs(loc):
        _fail(path, "%s: an absolute location, outside the model's folder %s" % (what, base))
    real = os.path.realpath(os.path.join(base, loc))
    if os.path.commonpath([base, real]) != base or real == base:
        _fail(path, "%s resolves to %s, outside the model's folder %s (external data must be a file inside it)"
              % (what, real, base))
    try:
        offset = int(info.get("offset") or 0)
        length = int(info["length"]) if info.get("length") else None
    except ValueError:
        _fail(path, "%s: offset %r / length %r are not integers" % (what, info.get("offset"), info.get("length")))
    count = int(np.prod([int(d) for d in t.dims], dtype=object)) if len(t.dims) else 1
    if _itemsize(t) is None:
        _fail(path, "%s: data type %d is not a numeric tensor type" % (what, t.data_type))
    need = count * _itemsize(t)
    if need > MAX_TENSOR_BYTES:
        _fail(path, "%s: shape %s needs %.1f GiB; vkrun converts tensors of at most %d GiB"
              % (what, list(t.dims), need / 2 ** 30, MAX_TENSOR_BYTES >> 30))
    if offset < 0 or (length is not None and length != need):
        _fail(path, "%s: offset %d, length %s, but shape %s needs %d bytes" % (what, offset, length, list(t.dims), need))
    try:
        fd = os.open(real, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW | getattr(os, "O_NOCTTY", 0))
    except OSError as e:
        _fail(path, "%s: cannot open %s: %s" % (what, real, e.strerror or e))
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            _fail(path, "%s: %s is not a regular file (a FIFO, device or folder)" % (what, real))
        have = st.st_size - offset
        if (length is None and have != need) or have < need:
            _fail(path, "%s: %s holds %d bytes from offset %d; shape %s needs %d bytes"
                  % (what, real, max(have, 0), offset, list(t.dims), need))
        chunks, got = [], 0
        while got < need:
            b = os.pread(fd, min(need - got, 64 << 20), offset + got)
            if not b:
                _fail(path, "%s: %s ended after %d of %d bytes" % (what, real, got, need))
            chunks.append(b)
            got += len(b)
        return b"".join(chunks)
    finally:
        os.close(fd)


def _all_tensors(graph):
    """Initializers and the tensors of node attributes, subgraphs included."""
    from onnx import AttributeProto
    for t in graph.initializer:
        yield t
    for n in graph.node:
        for a in n.attribute:
            if a.type == AttributeProto.TENSOR:
                yield a.t
            elif a.type == AttributeProto.TENSORS:
                yield from a.tensors
            elif a.type == AttributeProto.GRAPH:
                yield from _all_tensors(a.g)
            elif a.type == AttributeProto.GRAPHS:
                for sg in a.graphs:
                    yield from _all_tensors(sg)


def _load_external(model, path):
    from onnx import TensorProto
    base = os.path.realpath(os.path.dirname(os.path.abspath(path)))
    for t in _all_tensors(model.graph):
        if t.data_location == TensorProto.EXTERNAL:
            t.raw_data = _read_external(t, base, path)
            t.data_location = TensorProto.DEFAULT
            del t.external_data[:]


def load(path):
    """The checked ModelProto of `path` (external data read); raises ConvertError."""
    import onnx
    try:
        st = os.stat(path)
    except OSError as e:
        _fail(path, "cannot read: %s" % (e.strerror or e))
    if not stat.S_ISREG(st.st_mode):
        _fail(path, "not a regular file")
    if st.st_size > MAX_MODEL_BYTES:
        _fail(path, "%d bytes: larger than protobuf's 2 GiB (big weights go into external data files)" % st.st_size)
    try:
        with warnings.catch_warnings():  # protobuf warns "Not all data was converted" of a corrupt file
            warnings.simplefilter("error", RuntimeWarning)
            model = onnx.load(path, load_external_data=False)
    except Exception as e:  # noqa: BLE001 -- protobuf raises its own types
        raise ConvertError("cannot read ONNX model %s (truncated or not an ONNX file?): %s: %s"
                           % (path, type(e).__name__, str(e).split("\n")[0][:300]))
    _check_names(model, path)
    opset = _check_opset(model, path)
    _check_graph(model, path)
    _load_external(model, path)
    try:
        onnx.checker.check_model(model)
    except Exception as e:  # noqa: BLE001 -- onnx.checker.ValidationError and protobuf errors
        _fail(path, "invalid ONNX (onnx.checker): %s" % str(e).strip().split("\n")[0][:400])
    return model, opset


def to_array(t, path):
    """numpy_helper.to_array of an initializer, its failures named."""
    from onnx import numpy_helper
    count = int(np.prod([int(d) for d in t.dims], dtype=object)) if len(t.dims) else 1
    if count * (_itemsize(t) or 1) > MAX_TENSOR_BYTES:
        _fail(path, "tensor %r: shape %s is larger than %d GiB" % (t.name, list(t.dims), MAX_TENSOR_BYTES >> 30))
    try:
        return numpy_helper.to_array(t)
    except (ValueError, TypeError, MemoryError) as e:
        _fail(path, "tensor %r (shape %s): its data does not match: %s" % (t.name, list(t.dims), str(e)[:200]))
