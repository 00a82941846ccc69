#!/usr/bin/python3
"""Converter tests: synthetic Keras/torchvision ResNet50 files of the official layouts, the real
SqueezeNet file (from <repo>/../shared, skipped when absent), corrupt inputs, the fetch script.

  /usr/bin/python3 tests/python/test_convert.py
"""

import os
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _harness import PYTHON, ROOT, TOOLS, Runner, Skip, need_shared, rel_err, tf_conv_nhwc  # noqa: E402

import h5py  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

import convert as convert_mod  # noqa: E402
import make_synthetic  # noqa: E402
import torch_ref  # noqa: E402
import vkrun_model as vm  # noqa: E402

torch.set_num_threads(min(4, os.cpu_count() or 1))

KERAS_TYPES = {"InputLayer": "input", "ZeroPadding2D": "zeropad", "Conv2D": "conv2d",
               "BatchNormalization": "batchnorm", "Activation": "relu", "MaxPooling2D": "maxpool", "Add": "add",
               "GlobalAveragePooling2D": "gap", "Dense": "dense"}
SQUEEZE_H5 = ("weights", "squeezenet_weights_tf_dim_ordering_tf_kernels_notop.h5")
TMP = tempfile.mkdtemp(prefix="vkrun_test_convert_")
# the ImageNet class names come from python3-torchvision; without it, torch conversions need this
NAMES_ARGS = [] if convert_mod.imagenet_classes() else ["--no-classes"]
R = Runner()


def tmp(name):
    return os.path.join(TMP, name)


def convert(*args):
    return subprocess.run([PYTHON, os.path.join(TOOLS, "convert.py")] + list(args), capture_output=True, text=True)


def convert_ok(*args):
    p = convert(*args)
    if p.returncode != 0:
        raise AssertionError("convert.py %s failed (%d): %s" % (" ".join(args), p.returncode, p.stderr.strip()))
    return p


def expect_clean_error(src, out, *extra, must_mention=()):
    """convert.py must fail with exit 1, a one-line error (no traceback) and no output file
    (no temp file left behind either)."""
    before = set(os.listdir(os.path.dirname(out)))
    p = convert(src, "-o", out, *extra)
    if p.returncode != 1:
        raise AssertionError("exit status %d (expected 1); stderr: %s" % (p.returncode, p.stderr.strip()))
    if "Traceback" in p.stderr or "error:" not in p.stderr:
        raise AssertionError("not a clean error message: %s" % p.stderr.strip())
    for m in must_mention:
        if m not in p.stderr:
            raise AssertionError("error does not mention %r: %s" % (m, p.stderr.strip()))
    if os.path.exists(out):
        raise AssertionError("output file %s was written" % out)
    left = set(os.listdir(os.path.dirname(out))) - before
    if left:
        raise AssertionError("files left behind: %s" % sorted(left))
    return p.stderr.strip()


def reference_layers():
    path = need_shared("reference", "keras_resnet50_layers.txt")
    rows = [l.split() for l in open(path) if l.strip()]
    return [(int(i), n, KERAS_TYPES[t]) for i, n, t in rows]


# ------------------------------------------------------------------ builders vs reference

def t_keras_builder_vs_reference():
    import re
    g = vm.keras_resnet50(False)
    ref = reference_layers()
    got = [(i, l["name"], l["type"]) for i, l in enumerate(g["layers"])]
    assert got == ref, "first difference: %s" % next((a, b) for a, b in zip(got, ref) if a != b) \
        if len(got) == len(ref) else "%d layers vs %d" % (len(got), len(ref))
    shapes = vm.infer_shapes(g)
    exp = vm.expected_tensors(g)
    n = 0
    for line in open(need_shared("reference", "keras_resnet50_layers_detailed.txt")):
        p = line.split()
        idx, name = int(p[0]), p[1]
        layer = g["layers"][idx]
        h, w, c = map(int, p[3].split("x"))
        assert shapes[name] == (c, h, w), "%s: shape %s vs reference %s" % (name, shapes[name], (c, h, w))
        m = re.search(r"kernel=(\d+)x(\d+)x(\d+)x(\d+)\(HWIO\) stride=(\d+) pad=(\w+) bias=(\w+)", line)
        if m:
            kh, kw, ci, co, st = (int(m.group(i)) for i in range(1, 6))
            assert exp[name + ".weight"] == (co, ci, kh, kw), name
            assert layer["strides"] == [st, st] and layer["padding"] == m.group(6), name
            assert layer["use_bias"] == (m.group(7) == "True") and (name + ".bias" in exp), name
            n += 1
        m = re.search(r"eps=([\d.e-]+)", line)
        if m:
            assert abs(layer["epsilon"] - float(m.group(1))) < 1e-12 and layer["momentum"] == 0.99, name
        m = re.search(r"inputs=(\S+)", line)
        if m:
            assert layer["inputs"] == m.group(1).split(","), name
        m = re.search(r"pad\(t,b,l,r\)=\((\d+), (\d+), (\d+), (\d+)\)", line)
        if m:
            assert layer["padding"] == [int(m.group(i)) for i in range(1, 5)], name
        m = re.search(r"pool=(\d+)x(\d+) stride=(\d+) pad=(\w+)", line)
        if m:
            assert layer["pool"] == [int(m.group(1)), int(m.group(2))] and layer["strides"] == [int(m.group(3))] * 2
            assert layer["padding"] == m.group(4)
    assert n == 53, "%d convs checked" % n


def t_builders_param_counts():
    # Keras model.summary() numbers and torchvision's parameter count (+ BN buffers)
    assert vm.param_counts(vm.keras_resnet50(False)) == (23587712, 53120)
    assert vm.param_counts(vm.keras_resnet50(True)) == (25636712, 53120)
    assert vm.param_counts(vm.torchvision_resnet50()) == (25557032 + 53120, 53120)
    assert vm.param_counts(vm.squeezenet1_1()) == (722496, 0)
    tv = vm.torchvision_resnet50()
    names = [l["name"] for l in tv["layers"]]
    for n in ("conv1", "bn1", "relu", "maxpool", "layer1.0.conv1", "layer1.0.downsample.0", "layer1.0.downsample.1",
              "layer4.2.conv3", "avgpool", "fc"):
        assert n in names, n
    l = tv["layers"][names.index("layer2.0.conv2")]
    assert l["strides"] == [2, 2] and l["use_bias"] is False, l  # v1.5: stride on the 3x3
    assert tv["layers"][names.index("layer2.0.conv1")]["strides"] == [1, 1]
    assert vm.infer_shapes(tv)["layer4.2.relu_out"] == (2048, 7, 7)


# ------------------------------------------------------------------ synthetic Keras ResNet50

def t_keras_notop_convert():
    net = make_synthetic.keras_resnet50_h5(tmp("k_notop.h5"), top=False, seed=1)
    with h5py.File(tmp("k_notop.h5"), "r") as f:  # the official layout
        assert f.attrs["backend"] == b"tensorflow" and "keras_version" in f.attrs
        assert len(f.attrs["layer_names"]) == 175
        assert list(f["conv1_bn"].attrs["weight_names"]) == [b"conv1_bn/gamma:0", b"conv1_bn/beta:0",
                                                             b"conv1_bn/moving_mean:0", b"conv1_bn/moving_variance:0"]
        assert f["conv2_block1_0_conv/conv2_block1_0_conv/kernel:0"].shape == (1, 1, 64, 256)
        assert len(f["conv1_relu"].attrs["weight_names"]) == 0
    p = convert_ok(tmp("k_notop.h5"), "-o", tmp("k_notop.safetensors"))
    assert "175 layers" in p.stdout, p.stdout
    g, t = vm.read_model(tmp("k_notop.safetensors"))
    assert len(g["layers"]) == 175
    try:
        ref = [n for _, n, _ in reference_layers()]
    except Skip:
        ref = [l["name"] for l in vm.keras_resnet50(False)["layers"]]
    assert [l["name"] for l in g["layers"]] == ref
    total = sum(a.size for a in t.values())
    non = sum(a.size for n, a in t.items() if n.endswith((".running_mean", ".running_var")))
    assert (total, non) == (23587712, 53120), (total, non)
    assert vm.param_counts(g) == (23587712, 53120)
    assert g["input"]["preprocess"] == "caffe" and "classes" not in g
    # weights came through transposed, BN stats are the randomized ones
    k = net.m["conv3_block1_2_conv"].weight.detach().numpy()
    assert np.array_equal(t["conv3_block1_2_conv.weight"], k)
    rv = t["conv1_bn.running_var"]
    assert np.abs(rv - 1).max() > 0.1 and np.abs(t["conv1_bn.running_mean"]).max() > 0.01
    # header padded so that the data section is 8-byte aligned
    with open(tmp("k_notop.safetensors"), "rb") as f:
        assert int.from_bytes(f.read(8), "little") % 8 == 0


def t_keras_notop_forward():
    g, t = vm.read_model(tmp("k_notop.safetensors"))
    net = torch_ref.KerasResNet50(False).randomize_(1).eval()
    x = np.random.default_rng(2).standard_normal((2, 3, 64, 64)).astype(np.float32)
    with torch.no_grad():
        ref = net(torch.from_numpy(x)).numpy()
    y = torch_ref.run_model(g, t, x)
    e = rel_err(y, ref)
    assert e <= 1e-5, "relative error %g" % e
    assert np.abs(ref).max() > 1e-3 and np.isfinite(ref).all()


def t_keras_top_convert():
    net = make_synthetic.keras_resnet50_h5(tmp("k_top.h5"), top=True, seed=3)
    have_names = convert_mod.imagenet_classes() is not None
    if have_names:
        convert_ok(tmp("k_top.h5"), "-o", tmp("k_top.safetensors"), "--top")
    else:  # without python3-torchvision the names must be given
        print("     note: python3-torchvision not installed; ImageNet names from a generated --classes file")
        with open(tmp("names.txt"), "w") as f:
            f.write("\n".join(["tench"] + ["class%d" % i for i in range(1, 1000)]) + "\n")
        expect_clean_error(tmp("k_top.h5"), tmp("k_top.safetensors"), "--top", must_mention=("--classes",))
        convert_ok(tmp("k_top.h5"), "-o", tmp("k_top.safetensors"), "--top", "--classes", tmp("names.txt"))
    g, t = vm.read_model(tmp("k_top.safetensors"))
    assert len(g["layers"]) == 177
    assert [(l["name"], l["type"]) for l in g["layers"][-2:]] == [("avg_pool", "gap"), ("predictions", "dense")]
    assert g["layers"][-1]["activation"] == "softmax" and g["layers"][-1]["units"] == 1000
    assert len(g["classes"]) == 1000 and g["classes"][0] == "tench", g.get("classes", [None])[:1]
    assert t["predictions.weight"].shape == (1000, 2048)
    assert vm.param_counts(g) == (25636712, 53120)
    x = np.random.default_rng(4).standard_normal((2, 3, 64, 64)).astype(np.float32)
    with torch.no_grad():
        ref = net(torch.from_numpy(x)).numpy()
        w_pred = net.m["predictions"].weight.detach().numpy()
    assert np.array_equal(t["predictions.weight"], w_pred)
    y = torch_ref.run_model(g, t, x)
    e = rel_err(y, ref)
    assert e <= 1e-5, "relative error %g" % e
    # Keras Dense semantics in numpy from the h5 kernel [IN, OUT]: softmax(avg_pool @ kernel + bias)
    with torch.no_grad():
        o = torch_ref.VkrunNet(g, t, torch.float64).eval()(torch.from_numpy(x).double(), keep=True)
    feat, yd = o["avg_pool"].numpy(), o["predictions"].numpy()
    with h5py.File(tmp("k_top.h5"), "r") as f:
        kern, bias = f["probs/probs/kernel:0"][()], f["probs/probs/bias:0"][()]
    z = feat @ kern + bias
    z = np.exp(z - z.max(1, keepdims=True))
    assert rel_err(yd, z / z.sum(1, keepdims=True)) <= 1e-9
    # the same file without --top: the classifier is left out with a warning
    p = convert_ok(tmp("k_top.h5"), "-o", tmp("k_top_as_notop.safetensors"))
    assert "--top" in p.stderr
    g2, _ = vm.read_model(tmp("k_top_as_notop.safetensors"))
    assert len(g2["layers"]) == 175


def t_keras_top_tf_keras_name():
    # tf.keras names the classifier 'predictions' (keras_applications: 'probs'); both convert
    make_synthetic.keras_resnet50_h5(tmp("k_top_pred.h5"), top=True, seed=5, top_name="predictions")
    convert_ok(tmp("k_top_pred.h5"), "-o", tmp("k_top_pred.safetensors"), "--top", "--no-classes")
    g, _ = vm.read_model(tmp("k_top_pred.safetensors"))
    assert len(g["layers"]) == 177 and "classes" not in g
    os.unlink(tmp("k_top_pred.h5"))
    classes = tmp("classes.txt")
    with open(classes, "w") as f:
        f.write("\n".join("c%d" % i for i in range(1000)) + "\n")
    convert_ok(tmp("k_top.h5"), "-o", tmp("k_top_cls.safetensors"), "--top", "--classes", classes)
    g, _ = vm.read_model(tmp("k_top_cls.safetensors"))
    assert g["classes"][:2] == ["c0", "c1"]


# ------------------------------------------------------------------ synthetic torchvision ResNet50

def t_torchvision_convert_forward():
    sd = make_synthetic.torchvision_resnet50_pth(tmp("tv.pth"), seed=6)
    assert "bn1.num_batches_tracked" in sd and "layer1.0.downsample.0.weight" in sd
    convert_ok(tmp("tv.pth"), "-o", tmp("tv.safetensors"), *NAMES_ARGS)
    g, t = vm.read_model(tmp("tv.safetensors"))
    assert len(g.get("classes", [0] * 1000)) == 1000 and g["input"]["preprocess"] == "torch"
    assert vm.param_counts(g) == (25557032 + 53120, 53120)
    x = np.random.default_rng(7).standard_normal((2, 3, 64, 80)).astype(np.float32)
    y = torch_ref.run_model(g, t, x)
    assert y.shape == (2, 1000) and np.isfinite(y).all() and np.abs(y).max() > 1e-3
    try:
        import torchvision
    except ImportError:
        raise Skip("python3-torchvision not installed: converted and ran, not compared with torchvision")
    m = torchvision.models.resnet50()
    m.load_state_dict(torch.load(tmp("tv.pth")), strict=True)  # our keys are exactly torchvision's
    m.eval()
    with torch.no_grad():
        ref = m(torch.from_numpy(x)).numpy()
    e = rel_err(y, ref)
    assert e <= 1e-5, "relative error vs torchvision.models.resnet50: %g" % e


def t_torchvision_wrapped_legacy():
    # {'state_dict': {'module.' + key: ...}} saved in the legacy (non-zip) format with extra entries
    sd = torch.load(tmp("tv.pth"))
    wrapped = {"best_prec1": 76.1, "epoch": 90,
               "state_dict": {"module." + k: v for k, v in sd.items()}}
    torch.save(wrapped, tmp("tv_wrapped.th"), _use_new_zipfile_serialization=False)
    convert_ok(tmp("tv_wrapped.th"), "-o", tmp("tv_wrapped.safetensors"), *NAMES_ARGS)
    _, t1 = vm.read_model(tmp("tv.safetensors"))
    _, t2 = vm.read_model(tmp("tv_wrapped.safetensors"))
    assert list(t1) == list(t2) and all(np.array_equal(t1[k], t2[k]) for k in t1)
    os.unlink(tmp("tv_wrapped.th"))
    os.unlink(tmp("tv_wrapped.safetensors"))


# ------------------------------------------------------------------ SqueezeNet

def t_squeezenet_synthetic_keras1():
    make_synthetic.keras_squeezenet_h5(tmp("sq_syn.h5"), seed=8)
    convert_ok(tmp("sq_syn.h5"), "-o", tmp("sq_syn.safetensors"))
    g, t = vm.read_model(tmp("sq_syn.safetensors"))
    with h5py.File(tmp("sq_syn.h5"), "r") as f:
        k = f["fire2/expand3x3"]["uniform4"][()]
        b = f["fire2/expand3x3"]["fire2/expand3x3_b"][()]
    assert np.array_equal(t["fire2/expand3x3.weight"], k.transpose(3, 2, 0, 1))
    assert np.array_equal(t["fire2/expand3x3.bias"], b)
    # Keras/TF conv semantics computed in numpy straight from the HWIO kernels (catches an H/W
    # swap, which a round trip through our own transposes would not): conv1 3x3/2 valid and
    # fire2/expand3x3 3x3 'same'
    x = np.random.default_rng(10).standard_normal((2, 3, 17, 16)).astype(np.float32)
    outs = torch_ref.VkrunNet(g, t).eval()
    with torch.no_grad():
        o = outs(torch.from_numpy(x), layer="fire2/expand3x3", keep=True)
    with h5py.File(tmp("sq_syn.h5"), "r") as f:
        k1, b1 = f["conv1"]["uniform1"][()], f["conv1"]["conv1_b"][()]
    y1 = tf_conv_nhwc(x.transpose(0, 2, 3, 1), k1, b1, 2, (0, 0, 0, 0))
    assert rel_err(o["conv1"].numpy(), y1.transpose(0, 3, 1, 2)) <= 1e-5
    sq = o["fire2/relu_squeeze1x1"].numpy().transpose(0, 2, 3, 1)
    y2 = tf_conv_nhwc(sq, k, b, 1, vm.same_padding(sq.shape[1], 3, 1) + vm.same_padding(sq.shape[2], 3, 1))
    assert rel_err(o["fire2/expand3x3"].numpy(), y2.transpose(0, 3, 1, 2)) <= 1e-5


def t_squeezenet_real():
    src = need_shared(*SQUEEZE_H5)
    convert_ok(src, "-o", tmp("sq.safetensors"), "--arch", "squeezenet1_1")
    g, t = vm.read_model(tmp("sq.safetensors"))
    with h5py.File(src, "r") as f:
        names = [n.decode() for n in f.attrs["layer_names"]]
        k = f["conv1"]["uniform1"][()]
    assert [l["name"] for l in g["layers"]] == names, "layer names/order differ from the file's layer_names"
    assert np.array_equal(t["conv1.weight"], k.transpose(3, 2, 0, 1))
    assert g["input"]["preprocess"] == "caffe" and vm.param_counts(g) == (722496, 0)
    x = np.random.default_rng(9).standard_normal((2, 3, 227, 227)).astype(np.float32) * 50
    np.save(tmp("sq_x.npy"), x)
    y = torch_ref.run_model(g, t, x)
    assert y.shape == (2, 512, 13, 13) and np.isfinite(y).all() and y.max() > 0
    # the CLI gives the same, also for an inner layer
    for layer, shape in ((None, (2, 512, 13, 13)), ("fire5/concat", (2, 256, 27, 27))):
        cmd = [PYTHON, os.path.join(TOOLS, "torch_ref.py"), tmp("sq.safetensors"), "--input", tmp("sq_x.npy"),
               "--output", tmp("sq_y.npy")] + (["--layer", layer] if layer else [])
        p = subprocess.run(cmd, capture_output=True, text=True)
        assert p.returncode == 0, p.stderr
        yc = np.load(tmp("sq_y.npy"))
        assert yc.shape == shape and yc.dtype == np.float32
        if layer is None:
            e = rel_err(yc, y)  # another process: other thread count, so other rounding
            assert e <= 1e-5, "CLI output differs from run_model: relative error %g" % e


def _load_images(folder, size):
    from PIL import Image
    out = []
    for cls, sub in ((0, "cats"), (1, "dogs")):
        d = os.path.join(folder, sub)
        for fn in sorted(os.listdir(d)):
            with Image.open(os.path.join(d, fn)) as im:
                a = np.asarray(im.convert("RGB").resize((size, size), Image.BILINEAR), np.float32)
            a = a[:, :, ::-1] - np.array([103.939, 116.779, 123.68], np.float32)  # caffe: BGR, mean
            out.append((a.transpose(2, 0, 1), cls))
    return np.stack([a for a, _ in out]), np.array([c for _, c in out], np.float64)


def t_squeezenet_real_linear_probe():
    """End-to-end check of the real pretrained weights through the converter (HWIO order,
    BGR/caffe preprocessing): gap features + logistic regression separate cats from dogs."""
    need_shared(*SQUEEZE_H5)
    data = need_shared("data", "cats_dogs")
    try:
        import PIL  # noqa: F401
    except ImportError:
        raise Skip("python3-pil not installed")
    if not os.path.exists(tmp("sq.safetensors")):
        raise Skip("needs the squeezenet_real check's output")
    g, t = vm.read_model(tmp("sq.safetensors"))
    net = torch_ref.VkrunNet(g, t).eval()

    def feats(x):
        with torch.no_grad():
            return np.concatenate([net(torch.from_numpy(x[i:i + 25])).mean(dim=(2, 3)).numpy()
                                   for i in range(0, len(x), 25)]).astype(np.float64)
    xtr, ytr = _load_images(os.path.join(data, "train"), 227)
    xva, yva = _load_images(os.path.join(data, "val"), 227)
    ftr, fva = feats(xtr), feats(xva)
    mu, sd = ftr.mean(0), ftr.std(0) + 1e-6
    ftr, fva = (ftr - mu) / sd, (fva - mu) / sd
    w, b = np.zeros(ftr.shape[1]), 0.0
    for _ in range(300):
        p = 1 / (1 + np.exp(-(ftr @ w + b)))
        w -= 0.1 * (ftr.T @ (p - ytr) / len(ytr) + 1e-2 * w)
        b -= 0.1 * float(np.mean(p - ytr))
    acc = float(np.mean(((fva @ w + b) > 0) == (yva > 0.5)))
    print("     squeezenet features: val accuracy %.3f on %d images (shared/README: about 0.92)" % (acc, len(yva)))
    assert acc >= 0.84, "val accuracy %.3f (expected about 0.92; random weights give about 0.64)" % acc


# ------------------------------------------------------------------ corrupt inputs

def t_corrupt_truncated_h5():
    src = tmp("k_notop.h5")
    data = open(src, "rb").read()
    with open(tmp("trunc.h5"), "wb") as f:
        f.write(data[:len(data) // 2])
    expect_clean_error(tmp("trunc.h5"), tmp("out_trunc.safetensors"), must_mention=("trunc.h5",))


def _edit_h5_copy(src, dst, edit):
    shutil.copyfile(src, dst)
    with h5py.File(dst, "r+") as f:
        edit(f)


def t_corrupt_missing_weight():
    def drop_bias(f):
        g = f["conv2_block1_1_conv"]
        del g["conv2_block1_1_conv/bias:0"]
        g.attrs["weight_names"] = [b"conv2_block1_1_conv/kernel:0"]
    _edit_h5_copy(tmp("k_notop.h5"), tmp("missing.h5"), drop_bias)
    expect_clean_error(tmp("missing.h5"), tmp("out_missing.safetensors"),
                       must_mention=("conv2_block1_1_conv", "bias", "missing.h5"))

    def drop_layer(f):
        g = f["conv5_block3_3_bn"]
        for n in list(g.attrs["weight_names"]):
            del g[n.decode() if isinstance(n, bytes) else n]
        g.attrs["weight_names"] = np.zeros(0)
    _edit_h5_copy(tmp("k_notop.h5"), tmp("missing.h5"), drop_layer)
    expect_clean_error(tmp("missing.h5"), tmp("out_missing.safetensors"), must_mention=("conv5_block3_3_bn",))

    def dangling(f):  # weight_names lists a dataset that is not there
        del f["conv1_conv"]["conv1_conv/kernel:0"]
    _edit_h5_copy(tmp("k_notop.h5"), tmp("missing.h5"), dangling)
    expect_clean_error(tmp("missing.h5"), tmp("out_missing.safetensors"), must_mention=("conv1_conv/kernel:0",))
    os.unlink(tmp("missing.h5"))
    # torch: a key missing from the state_dict
    sd = torch.load(tmp("tv.pth"))
    del sd["layer3.4.bn2.running_var"]
    torch.save(sd, tmp("tv_missing.pth"))
    expect_clean_error(tmp("tv_missing.pth"), tmp("out_missing.safetensors"),
                       must_mention=("layer3.4.bn2.running_var", "tv_missing.pth"))
    os.unlink(tmp("tv_missing.pth"))


def t_corrupt_wrong_shape():
    def reshape(f):
        g = f["conv3_block2_2_conv"]
        del g["conv3_block2_2_conv/kernel:0"]
        g.create_dataset("conv3_block2_2_conv/kernel:0", data=np.zeros((3, 3, 128, 64), np.float32))
    _edit_h5_copy(tmp("k_notop.h5"), tmp("shape.h5"), reshape)
    expect_clean_error(tmp("shape.h5"), tmp("out_shape.safetensors"),
                       must_mention=("conv3_block2_2_conv/kernel:0", "(3, 3, 128, 64)", "(3, 3, 128, 128)"))
    os.unlink(tmp("shape.h5"))
    # Keras 1 names (SqueezeNet layout): shapes are checked too
    src = tmp("sq_syn.h5")

    def reshape_sq(f):
        g = f["fire4/squeeze1x1"]
        del g["uniform8"]
        g.create_dataset("uniform8", data=np.zeros((1, 1, 64, 32), np.float32))
    _edit_h5_copy(src, tmp("shape_sq.h5"), reshape_sq)
    expect_clean_error(tmp("shape_sq.h5"), tmp("out_shape.safetensors"), must_mention=("fire4/squeeze1x1",))
    os.unlink(tmp("shape_sq.h5"))
    sd = torch.load(tmp("tv.pth"))
    sd["fc.bias"] = torch.zeros(999)
    torch.save(sd, tmp("tv_shape.pth"))
    expect_clean_error(tmp("tv_shape.pth"), tmp("out_shape.safetensors"), must_mention=("fc.bias",))
    os.unlink(tmp("tv_shape.pth"))


def t_corrupt_not_weights():
    with open(tmp("notes.txt"), "w") as f:
        f.write("not a weights file\n")
    expect_clean_error(tmp("notes.txt"), tmp("out_txt.safetensors"), must_mention=("notes.txt",))
    with h5py.File(tmp("plain.h5"), "w") as f:
        f["x"] = np.zeros(3)
    expect_clean_error(tmp("plain.h5"), tmp("out_plain.safetensors"), must_mention=("layer_names",))
    data = open(tmp("tv.pth"), "rb").read()
    with open(tmp("trunc.pth"), "wb") as f:
        f.write(data[:len(data) // 3])
    expect_clean_error(tmp("trunc.pth"), tmp("out_trunc.safetensors"), must_mention=("trunc.pth",))
    expect_clean_error(tmp("does_not_exist.h5"), tmp("out_none.safetensors"))
    # --top on a notop file, and a pickle holding arbitrary objects (refused without --trust-pickle)
    expect_clean_error(tmp("k_notop.h5"), tmp("out_top.safetensors"), "--top", must_mention=("notop",))
    torch.save({"state_dict": {"fc.weight": torch.zeros(2)}, "obj": Skip("x")}, tmp("objects.pth"))
    expect_clean_error(tmp("objects.pth"), tmp("out_obj.safetensors"), must_mention=("--trust-pickle",))
    # a failed conversion leaves an existing output untouched
    shutil.copyfile(tmp("sq_syn.safetensors"), tmp("keep.safetensors"))
    p = convert(tmp("trunc.h5"), "-o", tmp("keep.safetensors"))
    assert p.returncode == 1
    assert open(tmp("keep.safetensors"), "rb").read() == open(tmp("sq_syn.safetensors"), "rb").read()


# ------------------------------------------------------------------ fetch script

def t_fetch_no_network():
    d = tmp("fetch")
    os.makedirs(d, exist_ok=True)
    env = dict(os.environ, VKRUN_WEIGHTS_DIR=d, VKRUN_WEIGHTS_URL="file://%s/nowhere" % TMP)
    sh = os.path.join(ROOT, "weights", "fetch_resnet50.sh")
    p = subprocess.run(["sh", sh], capture_output=True, text=True, env=env)
    assert p.returncode == 2, (p.returncode, p.stderr)
    assert "could not download" in p.stderr and "rerun" in p.stderr and d in p.stderr, p.stderr
    assert os.listdir(d) == [], os.listdir(d)
    # a file put there by hand with the wrong md5 is refused (exit 1), not converted
    shutil.copyfile(tmp("k_notop.h5"), os.path.join(d, "resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5"))
    p = subprocess.run(["sh", sh], capture_output=True, text=True, env=env)
    assert p.returncode == 1 and "md5" in p.stderr, (p.returncode, p.stderr)
    assert not os.path.exists(os.path.join(d, "resnet50_notop.safetensors"))
    # the whole path (download, md5, convert) with a local URL and the synthetic file's md5
    import hashlib
    os.unlink(os.path.join(d, "resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5"))
    md5 = hashlib.md5(open(tmp("k_notop.h5"), "rb").read()).hexdigest()
    os.makedirs(tmp("mirror"), exist_ok=True)
    os.link(tmp("k_notop.h5"), tmp("mirror/resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5"))
    env.update(VKRUN_WEIGHTS_URL="file://" + tmp("mirror"), VKRUN_TEST_NOTOP_MD5=md5)
    p = subprocess.run(["sh", sh], capture_output=True, text=True, env=env)
    assert p.returncode == 0, (p.returncode, p.stderr)
    g, _ = vm.read_model(os.path.join(d, "resnet50_notop.safetensors"))
    assert len(g["layers"]) == 175
    shutil.rmtree(d)
    shutil.rmtree(tmp("mirror"))


def main():
    print("test_convert: temp dir %s" % TMP)
    try:
        R.check("keras_builder_vs_reference", t_keras_builder_vs_reference, shared=True)
        R.check("builders_param_counts", t_builders_param_counts)
        R.check("keras_notop_convert", t_keras_notop_convert)
        R.check("keras_notop_forward_vs_torch_module", t_keras_notop_forward)
        R.check("keras_top_convert_forward", t_keras_top_convert)
        R.check("keras_top_names_and_classes", t_keras_top_tf_keras_name)
        R.check("torchvision_convert_forward_vs_torchvision", t_torchvision_convert_forward)
        R.check("torchvision_wrapped_legacy_checkpoint", t_torchvision_wrapped_legacy)
        R.check("squeezenet_synthetic_keras1_names", t_squeezenet_synthetic_keras1)
        R.check("squeezenet_real_convert_run", t_squeezenet_real, shared=True)
        R.check("squeezenet_real_linear_probe", t_squeezenet_real_linear_probe, shared=True)
        R.check("corrupt_truncated_h5", t_corrupt_truncated_h5)
        R.check("corrupt_missing_weight", t_corrupt_missing_weight)
        R.check("corrupt_wrong_shape", t_corrupt_wrong_shape)
        R.check("corrupt_not_weights", t_corrupt_not_weights)
        R.check("fetch_resnet50_no_network", t_fetch_no_network)
    finally:
        shutil.rmtree(TMP, ignore_errors=True)
    return R.finish()


if __name__ == "__main__":
    sys.exit(main())
