#!/usr/bin/python3
"""Tests of the model-file code (tools/vkrun_model.py) and of the generic PyTorch interpreter
(tools/torch_ref.py), which is the reference for the C runtime: every layer type against a plain
numpy implementation of the documented semantics, the reader's rejections, the gradient helper.

  /usr/bin/python3 tests/python/test_torch_ref.py
"""

import collections
import copy
import os
import struct
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _harness import Runner, rel_err, tf_conv_nhwc  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402

import torch_ref  # noqa: E402
import vkrun_model as vm  # noqa: E402

torch.set_num_threads(min(4, os.cpu_count() or 1))
R = Runner()
TMP = tempfile.mkdtemp(prefix="vkrun_test_torch_ref_")


def L(name, type_, inputs=None, **kw):
    d = collections.OrderedDict(name=name, type=type_)
    if inputs is not None:
        d["inputs"] = inputs
    d.update(kw)
    return d


def small_graph():
    """Every layer type once (input 3x9x8 by default)."""
    layers = [
        L("in", "input"),
        L("pad", "zeropad", ["in"], padding=[1, 0, 2, 1]),
        L("c1", "conv2d", ["pad"], filters=4, kernel=[3, 3], strides=[2, 2], padding="same", use_bias=True,
          activation="linear"),
        L("bn", "batchnorm", ["c1"], epsilon=1e-3, momentum=0.99),
        L("r", "relu", ["bn"]),
        L("c2", "conv2d", ["r"], filters=4, kernel=[1, 3], strides=[1, 1], padding=[0, 0, 1, 1], use_bias=False,
          activation="relu"),
        L("add", "add", ["r", "c2"]),
        L("mp", "maxpool", ["add"], pool=[3, 3], strides=[2, 2], padding="same"),
        L("ap", "avgpool", ["add"], pool=[3, 3], strides=[2, 2], padding="same", count_include_pad=False),
        L("cat", "concat", ["ap", "mp"]),
        L("drop", "dropout", ["cat"], rate=0.25),
        L("gap", "gap", ["drop"]),
        L("fc", "dense", ["gap"], units=5, use_bias=True, activation="linear"),
        L("sm", "softmax", ["fc"]),
    ]
    return collections.OrderedDict(version=1, name="small", source="test",
                                   input=collections.OrderedDict(name="in", channels=3, height=9, width=8,
                                                                 preprocess="none"),
                                   classes=["a", "b", "c", "d", "e"], layers=layers)


# ------------------------------------------------------------------ numpy references (NCHW)

def np_pool(x, k, s, pad, kind, count_include_pad=False):
    t, b, l, r = pad
    fill = -np.inf if kind == "max" else 0.0
    xp = np.pad(x, ((0, 0), (0, 0), (t, b), (l, r)), constant_values=fill)
    valid = np.pad(np.ones(x.shape[2:]), ((t, b), (l, r)))
    oh, ow = (xp.shape[2] - k[0]) // s[0] + 1, (xp.shape[3] - k[1]) // s[1] + 1
    out = np.zeros(x.shape[:2] + (oh, ow))
    for i in range(oh):
        for j in range(ow):
            win = xp[:, :, i * s[0]:i * s[0] + k[0], j * s[1]:j * s[1] + k[1]]
            if kind == "max":
                out[:, :, i, j] = win.max(axis=(2, 3))
            else:
                cnt = k[0] * k[1] if count_include_pad else valid[i * s[0]:i * s[0] + k[0],
                                                                 j * s[1]:j * s[1] + k[1]].sum()
                out[:, :, i, j] = win.sum(axis=(2, 3)) / cnt
    return out


def np_forward(g, t, x):
    """The documented semantics, layer by layer, in float64 numpy (independent of torch)."""
    o = {}
    for l in g["layers"]:
        n, ty = l["name"], l["type"]
        a = x.astype(np.float64) if ty == "input" else o[l["inputs"][0]]
        if ty == "conv2d":
            pad = vm.resolve_padding(l["padding"], a.shape[2], a.shape[3], l["kernel"], l["strides"])
            k = t[n + ".weight"].transpose(2, 3, 1, 0)  # OIHW -> HWIO
            assert l["strides"][0] == l["strides"][1]
            y = tf_conv_nhwc(a.transpose(0, 2, 3, 1), k, t.get(n + ".bias", 0.0), l["strides"][0], pad)
            y = y.transpose(0, 3, 1, 2)
            a = np.maximum(y, 0) if l.get("activation") == "relu" else y
        elif ty == "batchnorm":
            sh = (1, -1, 1, 1)
            a = (a - t[n + ".running_mean"].reshape(sh)) / np.sqrt(t[n + ".running_var"].reshape(sh).astype(np.float64)
                                                                  + l["epsilon"]) * t[n + ".gamma"].reshape(sh) \
                + t[n + ".beta"].reshape(sh)
        elif ty == "relu":
            a = np.maximum(a, 0)
        elif ty == "add":
            a = a + o[l["inputs"][1]]
        elif ty == "zeropad":
            pt, pb, pl, pr = l["padding"]
            a = np.pad(a, ((0, 0), (0, 0), (pt, pb), (pl, pr)))
        elif ty in ("maxpool", "avgpool"):
            pad = vm.resolve_padding(l["padding"], a.shape[2], a.shape[3], l["pool"], l["strides"])
            a = np_pool(a, l["pool"], l["strides"], pad, ty[:3], l.get("count_include_pad", False))
        elif ty == "concat":
            a = np.concatenate([o[i] for i in l["inputs"]], axis=1)
        elif ty == "gap":
            a = a.mean(axis=(2, 3))
        elif ty == "dense":
            a = a @ t[n + ".weight"].T.astype(np.float64) + t.get(n + ".bias", 0.0)
            if l.get("activation") == "softmax":
                a = np.exp(a - a.max(1, keepdims=True))
                a = a / a.sum(1, keepdims=True)
        elif ty == "softmax":
            a = np.exp(a - a.max(1, keepdims=True))
            a = a / a.sum(1, keepdims=True)
        o[n] = a
    return o


# ------------------------------------------------------------------ checks

def t_same_padding_rule():
    assert vm.same_padding(8, 3, 2) == (0, 1)    # asymmetric: the extra row goes after
    assert vm.same_padding(9, 3, 2) == (1, 1)
    assert vm.same_padding(7, 7, 2) == (3, 3)
    assert vm.same_padding(5, 1, 2) == (0, 0)
    assert vm.same_padding(4, 4, 1) == (1, 2)


def t_format_roundtrip():
    g = small_graph()
    t = vm.random_tensors(g, 1)
    shapes = vm.validate(g, t)
    assert shapes["c1"] == (4, 5, 6) and shapes["cat"] == (8, 3, 3) and shapes["sm"] == (5,), shapes
    path = os.path.join(TMP, "small.safetensors")
    vm.write_model(path, g, t)
    data = open(path, "rb").read()
    n = struct.unpack("<Q", data[:8])[0]
    assert n % 8 == 0
    g2, t2 = vm.read_model(path)
    assert g2 == g and list(t2) == list(t) and all(np.array_equal(t[k], t2[k]) for k in t)
    offs = [v["data_offsets"] for k, v in __import__("json").loads(data[8:8 + n]).items() if k != "__metadata__"]
    assert offs == sorted(offs) and offs[0][0] == 0 and offs[-1][1] == len(data) - 8 - n
    assert vm.param_counts(g) == (sum(a.size for a in t.values()), 8)


def _rejects(data, what):
    try:
        vm.decode(data, "bad")
    except vm.ModelError as e:
        if what not in str(e):
            raise AssertionError("error %r does not mention %r" % (str(e), what))
        return
    raise AssertionError("accepted a file with %s" % what)


def _rewrite(g, t, header_edit=None):
    head, chunks = vm.encode(g, t)
    import json
    h = json.loads(head[8:], object_pairs_hook=collections.OrderedDict)
    if header_edit:
        header_edit(h)
    hj = json.dumps(h).encode()
    return struct.pack("<Q", len(hj)) + hj + b"".join(c.tobytes() for c in chunks)


def t_reader_rejects():
    g = small_graph()
    t = vm.random_tensors(g, 2)
    good = _rewrite(g, t)
    vm.decode(good)
    _rejects(good[:4], "too short")
    _rejects(good[:len(good) // 2], "past the end")
    _rejects(struct.pack("<Q", 10 ** 9) + good[8:], "header length")

    def ed(fn):
        return _rewrite(g, t, fn)
    _rejects(ed(lambda h: h.__setitem__("c1.bias", dict(h["c1.bias"], dtype="F16"))), "F16")
    _rejects(ed(lambda h: h.__setitem__("c1.bias", dict(h["c1.bias"], data_offsets=[0, 16]))), "overlap")
    _rejects(ed(lambda h: h.__setitem__("c1.bias", dict(h["c1.bias"], data_offsets=[0, 12]))), "c1.bias")
    _rejects(ed(lambda h: h.pop("bn.running_var")), "bn.running_var")
    _rejects(ed(lambda h: h.pop("__metadata__")), "metadata")
    _rejects(ed(lambda h: h.__setitem__("fc.weight", dict(h["fc.weight"], shape=[8, 5]))), "fc.weight")

    def graph_edit(fn, what):
        g2 = copy.deepcopy(g)
        fn(g2)
        _rejects(_rewrite(g2, t), what)
    graph_edit(lambda g2: g2["layers"][6].__setitem__("inputs", ["r", "nope"]), "nope")
    graph_edit(lambda g2: g2["layers"][6].__setitem__("inputs", ["r", "mp"]), "later")
    graph_edit(lambda g2: g2["layers"][6].__setitem__("inputs", ["r"]), "add")
    graph_edit(lambda g2: g2["layers"][4].__setitem__("name", "r0") or
               g2["layers"][4].__setitem__("name", "bn"), "duplicate")
    graph_edit(lambda g2: g2["layers"][4].__setitem__("type", "gelu"), "unknown layer type")
    graph_edit(lambda g2: g2.__setitem__("classes", ["a"]), "classes")
    graph_edit(lambda g2: g2.__setitem__("version", 2), "version")
    graph_edit(lambda g2: g2["layers"][4].__setitem__("name", "x" * 256), "at most 255")  # as the C loader
    graph_edit(lambda g2: g2["layers"][7].__setitem__("padding", [3, 0, 0, 0]), "mp")
    g3 = copy.deepcopy(g)  # a stray tensor is an error too
    t3 = collections.OrderedDict(t, extra=np.zeros(2, np.float32))
    try:
        vm.validate(g3, t3)
        raise AssertionError("stray tensor accepted")
    except vm.ModelError as e:
        assert "extra" in str(e)


def t_interpreter_vs_numpy():
    g = small_graph()
    t = vm.random_tensors(g, 3)
    x = np.random.default_rng(4).standard_normal((3, 3, 9, 8)).astype(np.float32)
    ref = np_forward(g, t, x)
    with torch.no_grad():
        got = torch_ref.VkrunNet(g, t, torch.float64).eval()(torch.from_numpy(x).double(), keep=True)
    for l in g["layers"]:
        e = rel_err(got[l["name"]].numpy(), ref[l["name"]])
        assert e <= 1e-10, "layer %s (%s): relative error %g" % (l["name"], l["type"], e)
    # float32 path too, and another input size (the graph allows it)
    x2 = np.random.default_rng(5).standard_normal((2, 3, 12, 7)).astype(np.float32)
    e = rel_err(torch_ref.run_model(g, t, x2), np_forward(g, t, x2)["sm"])
    assert e <= 1e-5, e


def t_maxpool_padding_never_wins():
    g = collections.OrderedDict(version=1, name="mp", source="test",
                                input=dict(name="in", channels=2, height=4, width=4, preprocess="none"),
                                layers=[L("in", "input"),
                                        L("mp", "maxpool", ["in"], pool=[3, 3], strides=[1, 1], padding=[1, 1, 1, 1]),
                                        L("ap", "avgpool", ["in"], pool=[3, 3], strides=[1, 1], padding=[1, 1, 1, 1],
                                          count_include_pad=True)])
    x = -1 - np.random.default_rng(6).random((1, 2, 4, 4)).astype(np.float32)
    y = torch_ref.run_model(g, {}, x, layer="mp")
    assert (y < -1).all(), "padding (0) won a max over negative inputs"
    ap = torch_ref.run_model(g, {}, x, layer="ap")
    assert abs(ap[0, 0, 0, 0] - x[0, 0, :2, :2].sum() / 9) < 1e-6  # count_include_pad: corner / 9


def t_gradients_vs_finite_differences():
    g = small_graph()
    g["layers"] = g["layers"][:-2]  # ... gap; the helper appends the dense head
    del g["classes"]
    t = vm.random_tensors(g, 7)
    x = np.random.default_rng(8).standard_normal((4, 3, 9, 8))
    tg = np.eye(3)[[0, 2, 1, 2]]
    r = torch_ref.gradients(g, t, x, tg, freeze=3, head_units=3, head_seed=1, double=True, bn_train=False)
    assert "c1.weight" not in r["grads"] and "bn.gamma" in r["grads"] and "head.weight" in r["grads"]
    assert r["logits"].shape == (4, 3)
    # analytic check of the head: dW = ((softmax - t)/B)^T . features
    feats = torch_ref.run_model(g, t, x, double=True)
    p = np.exp(r["logits"] - r["logits"].max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    assert rel_err(r["grads"]["head.weight"], ((p - tg) / 4).T @ feats) <= 1e-10
    # finite differences on a few entries of inner tensors
    rng = np.random.default_rng(9)
    for name in ("c2.weight", "bn.beta", "bn.gamma"):
        base = r["tensors"]
        idx = tuple(rng.integers(0, s) for s in base[name].shape)
        h = 1e-4
        vals = []
        for sgn in (1, -1):
            t2 = collections.OrderedDict((k, v.astype(np.float64).copy()) for k, v in base.items())
            t2[name][idx] += sgn * h
            z = torch_ref.run_model(r["graph"], t2, x, double=True)
            z = z - z.max(1, keepdims=True)
            vals.append(float(-(tg * (z - np.log(np.exp(z).sum(1, keepdims=True)))).sum(1).mean()))
        fd = (vals[0] - vals[1]) / (2 * h)
        an = float(r["grads"][name][idx])
        assert abs(fd - an) <= 1e-5 * max(1.0, abs(fd)), "%s%s: analytic %g, finite difference %g" % (name, idx, an, fd)


def t_gradients_bn_training():
    g = small_graph()
    g["layers"] = g["layers"][:-2]
    del g["classes"]
    t = vm.random_tensors(g, 10)
    x = np.random.default_rng(11).standard_normal((4, 3, 9, 8))
    r = torch_ref.gradients(g, t, x, np.eye(3)[[0, 1, 2, 0]], freeze=0, head_units=3, double=True)
    # running = momentum * running + (1 - momentum) * batch (unbiased variance), momentum 0.99
    with torch.no_grad():
        c1 = torch_ref.run_model(g, t, x, layer="c1", double=True)
    m = 0.99
    mean = c1.mean(axis=(0, 2, 3))
    var = c1.var(axis=(0, 2, 3), ddof=1)
    assert rel_err(r["running"]["bn.running_mean"], m * t["bn.running_mean"] + (1 - m) * mean) <= 1e-6
    assert rel_err(r["running"]["bn.running_var"], m * t["bn.running_var"] + (1 - m) * var) <= 1e-6


def t_gradients_resnet50_frozen_prefix():
    g = vm.keras_resnet50(False)
    t = vm.random_tensors(g, 12)
    x = np.random.default_rng(13).standard_normal((2, 3, 32, 32)).astype(np.float32)
    r = torch_ref.gradients(g, t, x, np.eye(2)[[0, 1]], freeze=165, head_units=2)
    trainable_layers = {n.rsplit(".", 1)[0] for n in r["grads"]}
    # index 165 is conv5_block3_1_conv: Keras's layers[165:] are trainable
    assert g["layers"][165]["name"] == "conv5_block3_1_conv"
    assert trainable_layers == {"conv5_block3_%s" % n for n in ("1_conv", "1_bn", "2_conv", "2_bn", "3_conv", "3_bn")} \
        | {"head"}, sorted(trainable_layers)
    assert all(np.isfinite(v).all() for v in r["grads"].values()) and np.isfinite(r["loss"])


def main():
    try:
        R.check("same_padding_rule", t_same_padding_rule)
        R.check("format_roundtrip", t_format_roundtrip)
        R.check("reader_rejects_bad_files", t_reader_rejects)
        R.check("interpreter_vs_numpy_all_layer_types", t_interpreter_vs_numpy)
        R.check("maxpool_padding_never_wins", t_maxpool_padding_never_wins)
        R.check("gradients_vs_finite_differences", t_gradients_vs_finite_differences)
        R.check("gradients_bn_training_running_stats", t_gradients_bn_training)
        R.check("gradients_resnet50_frozen_prefix", t_gradients_resnet50_frozen_prefix)
    finally:
        import shutil
        shutil.rmtree(TMP, ignore_errors=True)
    return R.finish()


if __name__ == "__main__":
    sys.exit(main())
