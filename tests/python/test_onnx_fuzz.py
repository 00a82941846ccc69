#!/usr/bin/python3
"""Property test of the ONNX importer (issue 24) with Debian's python3-hypothesis, bounded in time.

  /usr/bin/python3 tests/python/test_onnx_fuzz.py --vkrun BUILD/vkrun [--seconds S] [--seed N]

Hypothesis builds small ONNX graphs (Conv, BatchNormalization, pools, Reshape, Gemm, Clip, Slice,
Pad, ConstantOfShape, ops vkrun lacks, ...) with mostly sensible and sometimes hostile attributes
(0, -1, 2^31, 2^40, NaN, inf), shapes, names (escape sequences, empty), opsets (none, 9999),
structure (a value written twice, a missing input, nodes out of order, a duplicated initializer),
external data (inside the folder, `..`, absolute, a FIFO, /dev/zero, the wrong size), and raw byte
mutations of a valid file. Property, for each: convert.py (in this process, with `--vkrun`) either
exits 0 and wrote a file that `vkrun summary` loads, or exits non-zero with exactly one escaped
`convert.py: error:` line (after one-line warnings, if any) and no output file; never an exception (a traceback), a hang (20 s alarm
per file), or a temporary left behind. Time budget: $VKRUN_FUZZ_SECONDS (default 30 s, at most 60 in
CI); the seed is fixed ($VKRUN_FUZZ_SEED, default 24) so that CI runs are reproducible."""

import argparse
import contextlib
import io
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _harness import Runner, Skip  # noqa: E402

import numpy as np  # noqa: E402

R = Runner()
A = None
STATS = {"examples": 0, "written": 0, "refused": 0}
BIG = [0, -1, 2 ** 31, 2 ** 31 - 1, 2 ** 40, -2 ** 31]
ODD_FLOATS = [0.0, float("nan"), float("inf"), -float("inf"), 1e39, -1e-45]


class Hang(Exception):
    pass


def strategies():
    from hypothesis import strategies as st
    def rare(normal, odd):  # mostly `normal`: a file with one odd value is refused, and most should not be
        return st.integers(0, 15).flatmap(lambda i: odd if i == 15 else normal)
    ints = rare(st.integers(1, 3), st.sampled_from(BIG))
    small = rare(st.integers(0, 2), st.sampled_from(BIG))
    floats = rare(st.floats(-4, 4, allow_nan=False), st.sampled_from(ODD_FLOATS))
    names = rare(st.none(), st.one_of(st.sampled_from(["", "\x1b[2J\x1b]0;t\x07", "n\x00", "y", "x", "w0"]),
                                      st.text(max_size=4)))
    return st, ints, small, floats, names, rare


@contextlib.contextmanager
def alarm(seconds):
    def hit(*_):
        raise Hang("no answer within %d s" % seconds)
    old = signal.signal(signal.SIGALRM, hit)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


def build_model(draw, folder):
    """One ONNX graph drawn with `draw` (hypothesis's data().draw), its side files written in folder."""
    from onnx import TensorProto, helper, numpy_helper
    st, ints, small, floats, names, rare = strategies()
    c = draw(rare(st.integers(1, 4), st.sampled_from([0, -1, 100000])))
    hw = draw(rare(st.integers(3, 9), st.sampled_from([0, 1, 100000])))
    nodes, inits, cur, shape_c = [], [], "x", c
    for i in range(draw(st.integers(1, 5))):
        op = draw(st.sampled_from(["Conv", "Conv", "Relu", "BatchNormalization", "MaxPool", "AveragePool", "Clip",
                                   "GlobalAveragePool", "Flatten", "Reshape", "Gemm", "Slice", "Pad", "Sigmoid",
                                   "Add", "ConstantOfShape", "LeakyRelu", "HardSigmoid", "Softmax", "Identity"]))
        out, nm = "v%d" % i, draw(names)
        ins, at = [cur], {}
        if op == "Conv":
            f, k = draw(st.integers(1, 4)), draw(st.integers(1, 3))
            cin = shape_c if draw(st.booleans()) or shape_c < 1 or shape_c > 8 else draw(st.integers(1, 4))
            w = np.full((f, max(min(cin, 8), 1), k, k), 0.1, np.float32)
            inits.append(numpy_helper.from_array(w, "w%d" % i))
            ins.append("w%d" % i)
            for key in draw(st.lists(st.sampled_from(["strides", "dilations", "pads", "group", "auto_pad",
                                                      "kernel_shape"]), max_size=3, unique=True)):
                at[key] = (draw(ints) if key == "group" else
                           draw(st.sampled_from(["SAME_UPPER", "VALID", "NOTSET", "BOGUS"])) if key == "auto_pad" else
                           [draw(small) for _ in range(4)] if key == "pads" else [draw(ints), draw(ints)])
            shape_c = f
        elif op == "BatchNormalization":
            n = max(min(shape_c, 8), 1)
            for j, v in enumerate(("bs", "bb", "bm", "bv")):
                inits.append(numpy_helper.from_array(np.full(n, 0.5, np.float32), "%s%d" % (v, i)))
                ins.append("%s%d" % (v, i))
            at["epsilon"] = draw(st.one_of(st.just(1e-5), floats))
        elif op in ("MaxPool", "AveragePool"):
            if draw(st.integers(0, 9)) < 9:
                at["kernel_shape"] = [draw(ints), draw(ints)]
            if draw(st.booleans()):
                at["strides"] = [draw(ints), draw(ints)]
            if draw(st.booleans()):
                at["pads"] = [draw(small) for _ in range(4)]
        elif op == "Clip":
            for j in range(draw(st.integers(0, 2))):
                inits.append(numpy_helper.from_array(np.array(draw(floats), np.float32), "c%d_%d" % (i, j)))
                ins.append("c%d_%d" % (i, j))
        elif op == "Reshape":
            inits.append(numpy_helper.from_array(np.array([draw(st.sampled_from([1, 0, -1, 7, 2 ** 31]))
                                                           for _ in range(draw(st.integers(1, 3)))], np.int64), "r%d" % i))
            ins.append("r%d" % i)
        elif op == "Gemm":
            inits.append(numpy_helper.from_array(np.full((draw(st.integers(1, 4)), draw(st.integers(1, 8))), 0.1,
                                                         np.float32), "g%d" % i))
            ins.append("g%d" % i)
            at["transB"] = draw(st.integers(0, 1))
        elif op == "Slice":
            for v, nmv in (([0], "st"), ([draw(st.sampled_from([2 ** 40, 3, -1]))], "en"),
                           ([draw(st.sampled_from([2, 3, 1]))], "ax"), ([draw(ints)], "sp")):
                inits.append(numpy_helper.from_array(np.array(v, np.int64), "%s%d" % (nmv, i)))
                ins.append("%s%d" % (nmv, i))
        elif op == "Pad":
            inits.append(numpy_helper.from_array(np.array([draw(small) for _ in range(8)], np.int64), "p%d" % i))
            ins.append("p%d" % i)
        elif op in ("Add", "ConstantOfShape"):
            dims = [draw(st.sampled_from([1, 2, 2 ** 50, -3])) for _ in range(draw(st.integers(1, 2)))]
            inits.append(numpy_helper.from_array(np.array(dims, np.int64), "k%d" % i))
            nodes.append(helper.make_node("ConstantOfShape", ["k%d" % i], ["kc%d" % i], name="fill%d" % i))
            if op == "ConstantOfShape":
                op = "Add"
            ins.append("kc%d" % i)
        elif op == "HardSigmoid":
            at["alpha"] = draw(floats)
        nodes.append(helper.make_node(op, ins, [out], name=nm if nm is not None else "n%d" % i, **at))
        cur = out
    nodes[-1].output[0] = "y"
    # structure: a value written twice, a missing input, nodes out of order, a duplicated initializer
    mut = draw(st.sampled_from(["none"] * 6 + ["dup_out", "missing", "reverse", "dup_init"]))
    if mut == "dup_out" and len(nodes) > 1:
        nodes[0].output[0] = "y"
    elif mut == "missing":
        nodes[-1].input[0] = "nowhere"
    elif mut == "reverse":
        nodes.reverse()
    elif mut == "dup_init" and inits:
        inits.append(inits[0])
    ext = draw(st.sampled_from([None] * 4 + ["w.bin", "sub/../w.bin", "../w.bin", "/etc/passwd", "fifo", "zero",
                                             "sub/../../w.bin"]))
    conv_w = [t for t in inits if t.name.startswith("w")]
    if ext and conv_w:
        t = conv_w[0]
        data = t.raw_data
        if draw(st.booleans()):
            data = data[:max(len(data) - 4, 0)]
        with open(os.path.join(folder, "w.bin"), "wb") as f:
            f.write(data)
        t.ClearField("raw_data")
        t.data_location = TensorProto.EXTERNAL
        e = t.external_data.add()
        e.key, e.value = "location", ext
    xdims = [1, c, hw, hw] if draw(st.booleans()) else ["N", c, hw, hw]
    g = helper.make_graph(nodes, "fuzz", [helper.make_tensor_value_info("x", TensorProto.FLOAT, xdims)],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, None if draw(st.booleans()) else [])],
                          inits)
    g.output[0].type.tensor_type.shape.SetInParent()
    opset = draw(st.sampled_from([13] * 6 + [7, 11, 17, 9999, None]))
    m = helper.make_model(g, opset_imports=[] if opset is None else [helper.make_opsetid("", opset)],
                          producer_name=draw(st.sampled_from(["fuzz", "\x1b]0;x\x07"])))
    raw = m.SerializeToString()
    if draw(st.integers(0, 9)) == 9:  # raw byte mutations / truncation of the file
        raw = bytearray(raw)
        for pos, b in draw(st.lists(st.tuples(st.integers(0, max(len(raw) - 1, 0)), st.integers(0, 255)), max_size=4)):
            raw[pos] = b
        raw = bytes(raw[:draw(st.integers(1, len(raw)))])
    return raw


def check_one(raw, folder):
    import convert as convert_mod
    src, out = os.path.join(folder, "m.onnx"), os.path.join(folder, "m.safetensors")
    with open(src, "wb") as f:
        f.write(raw)
    err = io.StringIO()
    with alarm(20), contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        rc = convert_mod.main(["-q", src, "-o", out, "--top", "--no-classes", "--vkrun", A.vkrun])
    msg = err.getvalue()
    left = [f for f in os.listdir(folder) if f.endswith(".tmp")]
    assert not left, "temporaries left: %s (%s)" % (left, msg)
    if rc == 0:
        p = subprocess.run([A.vkrun, "summary", out], capture_output=True, text=True, timeout=60)
        assert p.returncode == 0, "convert.py wrote a file vkrun refuses: %s" % p.stderr
        STATS["written"] += 1
        os.unlink(out)
    else:
        lines = msg.strip().split("\n")
        assert rc == 1 and lines[-1].startswith("convert.py: error: "), (rc, msg)
        assert all(l.startswith("convert.py: warning: ") for l in lines[:-1]), msg
        assert "\x1b" not in msg and "\x07" not in msg and "internal error" not in msg, msg
        assert not os.path.lexists(out), "refused, but %s was written" % out
        STATS["refused"] += 1
    STATS["examples"] += 1


def t_fuzz():
    try:
        import hypothesis
        from hypothesis import HealthCheck, given, settings, strategies as st
    except ImportError:
        raise Skip("python3-hypothesis is not installed (apt-get install -y python3-hypothesis)")
    try:
        import onnx  # noqa: F401
    except ImportError:
        raise Skip("python3-onnx is not installed (apt-get install -y python3-onnx)")
    root = tempfile.mkdtemp(prefix="vkrun_test_onnx_fuzz_")
    case = os.path.join(root, "case")

    @settings(max_examples=25, deadline=None, database=None, suppress_health_check=list(HealthCheck),
              print_blob=True)
    @given(st.data())
    def prop(data):
        shutil.rmtree(case, ignore_errors=True)
        os.makedirs(os.path.join(case, "sub"))
        os.mkfifo(os.path.join(case, "fifo"))
        os.symlink("/dev/zero", os.path.join(case, "zero"))
        with open(os.path.join(root, "w.bin"), "wb") as f:  # beside the folder: must never be read
            f.write(b"\x01" * 64)
        with np.errstate(all="ignore"):
            raw = build_model(data.draw, case)
        check_one(raw, case)

    t_end, batch = time.time() + A.seconds, 0
    try:
        while time.time() < t_end:  # batches of 25 files, each with its own fixed seed, until the budget is spent
            hypothesis.seed(A.seed + batch)(prop)()
            batch += 1
    finally:
        shutil.rmtree(root, ignore_errors=True)
    assert STATS["written"] and STATS["refused"], "the generator must reach both outcomes: %s" % STATS
    print("     %d files in %d batches (seeds %d..%d): %d converted and loaded by vkrun, %d refused with one line"
          % (STATS["examples"], batch, A.seed, A.seed + batch - 1, STATS["written"], STATS["refused"]))


def main():
    global A
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--vkrun", required=True)
    ap.add_argument("--seconds", type=float, default=float(os.environ.get("VKRUN_FUZZ_SECONDS", 30)))
    ap.add_argument("--seed", type=int, default=int(os.environ.get("VKRUN_FUZZ_SEED", 24)))
    A = ap.parse_args()
    R.check("onnx_import_fuzz", t_fuzz)
    return R.finish()


if __name__ == "__main__":
    sys.exit(main())
