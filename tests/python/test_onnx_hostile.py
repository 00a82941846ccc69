#!/usr/bin/python3
"""Hostile ONNX files against tools/convert.py (issue 24, the converter half).

  /usr/bin/python3 tests/python/test_onnx_hostile.py --vkrun BUILD/vkrun

Every file is built here with onnx.helper and converted by `convert.py` in a subprocess (so that a
hang is a timeout and a traceback is seen as the user sees it). A refused file must give exit 1,
exactly one stderr line `convert.py: error: ...` naming the file and what is wrong (the node and its
op, the tensor, the external file), no traceback, and leave neither the output nor a temporary.

1. External data is read only from regular files inside the model's folder, with the size of the
   declared shape: `..` escapes (plain and nested), an absolute location, a symlink out of the folder,
   a FIFO (must not hang), /dev/zero (must not read forever), a file of the wrong size, an offset past
   the end, a model file that is a FIFO; a valid external file (offset + length) converts with its values.
2. `-o` replaces only a regular file: a FIFO (and a symlink to one) is refused and left as it was; a
   symlink to a regular file is written through (the link stays).
3. Names are printed escaped: a node named with ESC[2J and an OSC title sequence, a producer name with
   escapes in the "wrote" line, a node name that is not UTF-8.
4. Invalid graphs: two nodes writing one output, two initializers of one name, auto_pad "BOGUS",
   kernel_shape [5, 5] on a 3x3 weight, dims [-4, 3, 3, 3], opset 9999, no opset, a Reshape
   [1, 4, 6, 6] -> [1, 7], a missing input, a cycle, a node without outputs.
5. Files vkrun would refuse are never written: BatchNorm epsilon 0, Clip min NaN, dilations 0, pads /
   strides / slice steps of 2^31, stride 0, group 0, a 100000x100000 input, 2^21 filters, an external
   initializer over 2 GiB (a sparse file, refused before it is read), a 4 PiB constant to fold; and
   convert.py loads the temporary with `vkrun summary` before the rename (a vkrun that refuses it
   keeps the old OUT).
"""

import argparse
import os
import shutil
import stat
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _harness import PYTHON, TOOLS, Runner, Skip  # noqa: E402

import numpy as np  # noqa: E402

R = Runner()
A = None
TMP = None
CONVERT = os.path.join(TOOLS, "convert.py")


def need_onnx():
    try:
        import onnx  # noqa: F401
    except ImportError:
        raise Skip("python3-onnx is not installed (apt-get install -y python3-onnx)")


def conv_model(w=None, conv_attrs=None, extra_nodes=(), extra_inits=(), xshape=(1, 3, 8, 8), out="y",
               oshape=None, opset=13, name="conv", conv_out=None, **model_kw):
    """x -> Conv(w) [-> extra nodes] -> y: the base every case edits."""
    from onnx import TensorProto, helper, numpy_helper
    if w is None:
        w = numpy_helper.from_array(np.full((4, 3, 3, 3), 0.1, np.float32), "w")
    nodes = [helper.make_node("Conv", ["x", "w"], [conv_out or ("c" if extra_nodes else out)], name=name,
                              **(conv_attrs or {}))] + list(extra_nodes)
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(xshape))],
                          [helper.make_tensor_value_info(out, TensorProto.FLOAT, oshape or ["N", 4, 6, 6])],
                          [w] + list(extra_inits))
    ops = [] if opset is None else [helper.make_opsetid("", opset)]
    return helper.make_model(g, opset_imports=ops, **model_kw)


def save(model, name, folder=None):
    d = folder or TMP
    os.makedirs(d, exist_ok=True)
    path = os.path.join(d, name + ".onnx")
    with open(path, "wb") as f:
        f.write(model.SerializeToString())
    return path


def temps(folder):
    return [f for f in os.listdir(folder) if f.endswith(".tmp")]


def convert(src, out=None, *extra, timeout=30, quiet=True):
    """convert.py SRC -o OUT --top, checking the result with this build's vkrun ($VKRUN)."""
    out = out or os.path.splitext(src)[0] + ".safetensors"
    cmd = [PYTHON, CONVERT, src, "-o", out, "--top", "--no-classes"] + (["-q"] if quiet else [])
    try:
        p = subprocess.run(cmd + list(extra), capture_output=True, timeout=timeout, env=dict(os.environ, VKRUN=A.vkrun))
    except subprocess.TimeoutExpired:
        raise AssertionError("convert.py %s hangs (killed after %d s)" % (os.path.basename(src), timeout))
    return p, out


def refused(src, *want, out=None, extra=()):
    """convert.py must exit 1 with one escaped stderr line holding every `want`, and write nothing."""
    p, out = convert(src, out, *extra)
    err = p.stderr.decode("utf-8", "replace")
    lines = err.strip().splitlines()
    assert p.returncode == 1, "exit %d (expected 1): %s" % (p.returncode, err[-1500:])
    assert len(lines) == 1 and lines[0].startswith("convert.py: error: "), "not one error line: %r" % err[-1500:]
    assert "Traceback" not in err and "\x1b" not in err and "\x07" not in err, err
    for w in (os.path.basename(src),) + want:
        assert w in lines[0], "%r not in: %s" % (w, lines[0])
    assert not os.path.lexists(out) or os.path.isfile(out) and out.endswith(".keep"), "%s was written" % out
    left = temps(os.path.dirname(out))
    assert not left, "temporaries left: %s" % left
    print("     " + lines[0][:300])
    return lines[0]


class Cases:
    """Runs every refused() case of a check and fails the check once, listing each case that failed."""

    def __init__(self):
        self.bad = []

    def refused(self, src, *want, **kw):
        try:
            return refused(src, *want, **kw)
        except AssertionError as e:
            self.bad.append("%s: %s" % (os.path.basename(src), str(e)[:400]))
            return ""

    def done(self):
        if self.bad:
            raise AssertionError("%d case(s) failed:\n  %s" % (len(self.bad), "\n  ".join(self.bad)))


# --------------------------------------------------------------------------- 1. external data

def external_model(folder, location, nbytes=None, offset=None, length=None, name="ext"):
    """A conv whose 4x3x3x3 weight lives in `location` (relative to the model's folder)."""
    return save(conv_model(w=external_tensor("w", [4, 3, 3, 3], location, offset, length)), name, folder)


def external_tensor(name, dims, location, offset=None, length=None):
    from onnx import TensorProto
    t = TensorProto()
    t.name, t.data_type, t.data_location = name, TensorProto.FLOAT, TensorProto.EXTERNAL
    t.dims.extend(dims)
    for k, v in (("location", location), ("offset", offset), ("length", length)):
        if v is not None:
            e = t.external_data.add()
            e.key, e.value = k, str(v)
    return t


def t_external_escapes():
    need_onnx()
    c = Cases()
    d = os.path.join(TMP, "ext")
    outside = os.path.join(TMP, "secret.bin")
    with open(outside, "wb") as f:
        f.write(b"root:x:0:0:root:/root:/bin/bash\n".ljust(432, b"!"))
    os.makedirs(os.path.join(d, "sub", "deeper"), exist_ok=True)
    os.symlink(outside, os.path.join(d, "link.bin"))
    cases = [("sub/../../secret.bin", "dotdot"), ("sub/deeper/../../sub/../../secret.bin", "nested"),
             (outside, "absolute"), ("link.bin", "symlink")]
    for loc, nm in cases:
        src = external_model(d, loc, name=nm)
        c.refused(src, "'w'", "outside the model's folder")
    c.done()


def t_external_special_files():
    need_onnx()
    c = Cases()
    d = os.path.join(TMP, "ext_special")
    os.makedirs(os.path.join(d, "sub"), exist_ok=True)
    os.mkfifo(os.path.join(d, "fifo.bin"))
    os.symlink("/dev/zero", os.path.join(d, "zero.bin"))
    c.refused(external_model(d, "fifo.bin", name="fifo"), "'w'", "fifo.bin", "not a regular file")
    with open(os.path.join(d, "short.bin"), "wb") as f:
        f.write(b"\0" * 100)
    c.refused(external_model(d, "short.bin", name="short"), "'w'", "short.bin", "432 bytes")
    c.refused(external_model(d, "short.bin", offset=96, length=432, name="past"), "'w'", "short.bin", "432")
    # inside the folder but not a regular file: /dev/zero through a symlink that stays inside is still refused
    os.symlink("zero.bin", os.path.join(d, "zero2.bin"))
    for loc in ("zero.bin", "zero2.bin"):
        c.refused(external_model(d, loc, name="zero"), "'w'")
    os.mkfifo(os.path.join(d, "model_fifo.onnx"))  # the model itself a FIFO: refused, not opened
    c.refused(os.path.join(d, "model_fifo.onnx"), "not a regular file")
    c.done()


def t_external_valid():
    need_onnx()
    import vkrun_model as vm
    d = os.path.join(TMP, "ext_ok")
    os.makedirs(os.path.join(d, "data"), exist_ok=True)
    w = np.arange(108, dtype=np.float32).reshape(4, 3, 3, 3) / 100
    with open(os.path.join(d, "data", "weights.bin"), "wb") as f:
        f.write(b"\x07" * 16 + w.tobytes() + b"tail")
    src = external_model(d, "data/weights.bin", offset=16, length=432, name="ok")
    p, out = convert(src)
    assert p.returncode == 0, p.stderr.decode()
    _, t = vm.read_model(out)
    assert np.array_equal(t["conv.weight"], w), t["conv.weight"].reshape(-1)[:4]
    os.unlink(out)


# --------------------------------------------------------------------------- 2. the output file

def t_output_special():
    need_onnx()
    src = save(conv_model(), "plain")
    d = os.path.join(TMP, "outs")
    os.makedirs(d)
    fifo = os.path.join(d, "fifo.safetensors")
    os.mkfifo(fifo)
    os.symlink(fifo, os.path.join(d, "to_fifo.safetensors"))
    for o in (fifo, os.path.join(d, "to_fifo.safetensors")):
        p, _ = convert(src, o)
        err = p.stderr.decode()
        assert p.returncode == 1 and "not a regular file" in err and len(err.strip().splitlines()) == 1, err
        assert stat.S_ISFIFO(os.stat(o).st_mode), "%s is no longer a FIFO" % o
    assert not temps(d), temps(d)
    real = os.path.join(d, "real.safetensors")
    with open(real, "wb") as f:
        f.write(b"old")
    link = os.path.join(d, "link.safetensors")
    os.symlink("real.safetensors", link)
    p, _ = convert(src, link)
    assert p.returncode == 0, p.stderr.decode()
    assert os.path.islink(link) and os.path.getsize(real) > 100, "the symlink was replaced, not written through"
    print("     FIFO and symlink to a FIFO refused: " + err.strip()[:200])


# --------------------------------------------------------------------------- 3. names printed escaped

def t_escaped_names():
    need_onnx()
    c = Cases()
    from onnx import helper
    evil = "\x1b[2J\x1b]0;owned\x07leaky"
    m = conv_model(extra_nodes=[helper.make_node("LeakyRelu", ["c"], ["y"], name=evil)])
    line = c.refused(save(m, "evil"), "\\x1b[2J\\x1b]0;owned\\x07leaky", "LeakyRelu")
    assert "\\x1b" in line
    m = conv_model(producer_name="\x1b]0;title\x07prod\x1b[31m")
    p, out = convert(save(m, "evil_producer"), quiet=False)
    assert p.returncode == 0 and b"\x1b" not in p.stdout and b"\x07" not in p.stdout, p
    assert b"\\x1b]0;title\\x07prod" in p.stdout, p.stdout
    raw = conv_model(name="cXX").SerializeToString().replace(b"cXX", b"c\xff\xfe")
    with open(os.path.join(TMP, "nonutf8.onnx"), "wb") as f:
        f.write(raw)
    c.refused(os.path.join(TMP, "nonutf8.onnx"), "c\\xff\\xfe", "UTF-8")
    c.done()


# --------------------------------------------------------------------------- 4. invalid graphs

def t_invalid_graphs():
    need_onnx()
    c = Cases()
    from onnx import helper, numpy_helper
    w = numpy_helper.from_array(np.full((4, 3, 3, 3), 0.1, np.float32), "w")
    c.refused(save(conv_model(extra_nodes=[helper.make_node("Relu", ["c"], ["y"], name="r1"),
                                          helper.make_node("Relu", ["x"], ["y"], name="r2")]), "dup_out"),
            "'y'", "r1", "r2")
    c.refused(save(conv_model(extra_inits=[w]), "dup_init"), "initializer 'w'", "twice")
    c.refused(save(conv_model(conv_attrs=dict(auto_pad="BOGUS")), "autopad"), "'conv'", "Conv", "BOGUS")
    c.refused(save(conv_model(conv_attrs=dict(kernel_shape=[5, 5])), "kshape"), "'conv'", "kernel_shape", "[5, 5]")
    neg = numpy_helper.from_array(np.zeros((4, 3, 3, 3), np.float32), "w")
    del neg.dims[:]
    neg.dims.extend([-4, 3, 3, 3])
    c.refused(save(conv_model(w=neg), "negdim"), "'w'", "-4")
    c.refused(save(conv_model(opset=9999), "opset9999"), "opset 9999")
    c.refused(save(conv_model(opset=None), "noopset"), "opset")
    sh = numpy_helper.from_array(np.array([1, 7], np.int64), "sh")
    c.refused(save(conv_model(conv_attrs=dict(pads=[1, 1, 1, 1]), xshape=(1, 3, 6, 6), extra_inits=[sh], oshape=[1, 7],
                            extra_nodes=[helper.make_node("Reshape", ["c", "sh"], ["y"], name="rs")]), "reshape"),
            "'rs'", "Reshape", "[1, 4, 6, 6]", "[1, 7]")
    c.refused(save(conv_model(extra_nodes=[helper.make_node("Relu", ["nowhere"], ["y"], name="r")]), "missing_in"),
            "'r'", "Relu", "'nowhere'")
    c.refused(save(conv_model(extra_nodes=[helper.make_node("Add", ["c", "b"], ["a"], name="add"),
                                         helper.make_node("Relu", ["a"], ["b"], name="r"),
                                         helper.make_node("Relu", ["b"], ["y"], name="r2")]), "cycle"),
            "'add'", "Add", "'b'")
    c.done()


# --------------------------------------------------------------------------- 5. limits of vkrun's loader

def t_loader_limits():
    need_onnx()
    c = Cases()
    from onnx import helper, numpy_helper
    big = 2 ** 31
    s3 = numpy_helper.from_array(np.ones(4, np.float32), "s")
    bn = helper.make_node("BatchNormalization", ["c", "s", "s", "s", "s"], ["y"], name="bn", epsilon=0.0)
    c.refused(save(conv_model(extra_nodes=[bn], extra_inits=[s3]), "bn_eps0"), "'bn'", "epsilon")
    mn = numpy_helper.from_array(np.array(np.nan, np.float32), "mn")
    c.refused(save(conv_model(extra_nodes=[helper.make_node("Clip", ["c", "mn"], ["y"], name="clip")], extra_inits=[mn]),
                 "clip_nan"), "'clip'", "min")
    for nm, at, want in (("dil0", dict(dilations=[0, 0]), "dilation"), ("stride0", dict(strides=[0, 0]), "strides"),
                         ("strides2e31", dict(strides=[big, big]), "strides"), ("pads2e31", dict(pads=[big] * 4), "pad"),
                         ("group0", dict(group=0), "group")):
        c.refused(save(conv_model(conv_attrs=at), nm), "'conv'", "Conv", want)
    st = [numpy_helper.from_array(np.array(v, np.int64), n) for v, n in
          (([0], "s0"), ([2 ** 40], "e0"), ([3], "ax"), ([big], "stp"))]
    sl = helper.make_node("Slice", ["c", "s0", "e0", "ax", "stp"], ["y"], name="slice")
    c.refused(save(conv_model(extra_nodes=[sl], extra_inits=st), "slice_step"), "'slice'", "Slice")
    c.refused(save(conv_model(xshape=(1, 3, 100000, 100000)), "huge_input"), "too large")
    w21 = numpy_helper.from_array(np.zeros((2 ** 21, 3, 1, 1), np.float32), "w")
    c.refused(save(conv_model(w=w21), "filters2e21"), "'conv'", "filters")
    # an external initializer over 2 GiB (a sparse file: nothing is written to disk), refused unread
    d = os.path.join(TMP, "ext_big")
    os.makedirs(d)
    with open(os.path.join(d, "big.bin"), "wb") as f:
        f.truncate(3 << 30)
    c.refused(save(conv_model(w=external_tensor("w", [2 ** 28, 3, 1, 1], "big.bin")), "big", d), "'w'", "GiB")
    shape = numpy_helper.from_array(np.array([2 ** 50], np.int64), "shp")
    cos = helper.make_node("ConstantOfShape", ["shp"], ["k"], name="fill")
    m = conv_model(extra_nodes=[cos, helper.make_node("Add", ["c", "k"], ["y"], name="add")], extra_inits=[shape])
    c.refused(save(m, "fold4pib"), "'fill'", "ConstantOfShape")
    c.done()


def t_vkrun_loads_before_rename():
    """convert.py runs `vkrun summary` on the temporary: a vkrun that refuses it keeps OUT as it was."""
    need_onnx()
    src = save(conv_model(), "checked")
    fake = os.path.join(TMP, "fake_vkrun")
    with open(fake, "w") as f:
        f.write('#!/bin/sh\necho "vkrun summary: error: $2: refused by the fake vkrun" >&2\nexit 1\n')
    os.chmod(fake, 0o755)
    out = os.path.join(TMP, "checked.safetensors")
    with open(out, "wb") as f:
        f.write(b"old")
    p, _ = convert(src, out, "--vkrun", fake)
    err = p.stderr.decode()
    assert p.returncode == 1 and "refused by the fake vkrun" in err and out in err and ".tmp" not in err, err
    with open(out, "rb") as f:
        assert f.read() == b"old", "OUT was replaced"
    assert not temps(TMP), temps(TMP)
    p, _ = convert(src, out)  # the real vkrun loads it
    assert p.returncode == 0, p.stderr.decode()
    print("     " + err.strip())


def t_no_output_node():
    need_onnx()
    c = Cases()
    from onnx import helper
    m = conv_model(extra_nodes=[helper.make_node("Relu", ["c"], ["y"], name="r"),
                                helper.make_node("Relu", ["c"], [], name="nothing")])
    c.refused(save(m, "no_output"), "'nothing'", "Relu", "output")
    c.done()


def main():
    global A, TMP
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--vkrun", required=True)
    ap.add_argument("--keep", action="store_true")
    A = ap.parse_args()
    TMP = tempfile.mkdtemp(prefix="vkrun_test_onnx_hostile_")
    try:
        R.check("onnx_external_data_escapes", t_external_escapes)
        R.check("onnx_external_data_special_files", t_external_special_files)
        R.check("onnx_external_data_valid", t_external_valid)
        R.check("convert_output_special_files", t_output_special)
        R.check("convert_names_escaped", t_escaped_names)
        R.check("onnx_invalid_graphs", t_invalid_graphs)
        R.check("onnx_loader_limits", t_loader_limits)
        R.check("onnx_node_without_output", t_no_output_node)
        R.check("convert_vkrun_loads_before_rename", t_vkrun_loads_before_rename)
    finally:
        if not A.keep:
            shutil.rmtree(TMP, ignore_errors=True)
    return R.finish()


if __name__ == "__main__":
    sys.exit(main())
