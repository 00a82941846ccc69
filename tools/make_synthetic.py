#!/usr/bin/python3
"""Writes synthetic weight files in the exact layout of the official ones, with seeded random
weights, for tests that must run without the real downloads.

  /usr/bin/python3 tools/make_synthetic.py keras-resnet50 OUT.h5 [--top] [--seed N] [--top-name probs]
  /usr/bin/python3 tools/make_synthetic.py torchvision-resnet50 OUT.pth [--seed N]
  /usr/bin/python3 tools/make_synthetic.py keras-squeezenet OUT.h5 [--seed N]
  /usr/bin/python3 tools/make_synthetic.py vkrun-model OUT.safetensors --arch ARCH [--seed N]
      (a vkrun model file with random weights, no conversion; ARCH: keras-resnet50,
      keras-resnet50-top, torchvision-resnet50, squeezenet1_1)

keras-resnet50: the weights of torch_ref.KerasResNet50 (a hand-written torch module of the Keras
layout), randomized (BN moving statistics too), saved as Keras's save_weights writes HDF5: root
attributes layer_names (bytes), backend, keras_version; one group per layer (weightless layers
included) with attribute weight_names; datasets <layer>/<layer>/kernel:0, bias:0, gamma:0, beta:0,
moving_mean:0, moving_variance:0; kernels HWIO, Dense kernel [IN, OUT]. The classifier is named
'probs' as in keras_applications (--top-name to change).
torchvision-resnet50: a state_dict with torchvision's keys (conv1.weight, bn1.running_mean,
bn1.num_batches_tracked, layer1.0.downsample.0.weight, fc.weight, ...) saved with torch.save.
keras-squeezenet: the Keras 1 layout of keras-squeezenet's weight file (weights named uniformN /
<layer>_b, listed in layer_names order, no backend attributes).

From Python: keras_resnet50_h5(path, top, seed) returns the KerasResNet50 module it saved.
"""

import argparse
import collections
import os
import sys
import tempfile

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import vkrun_model as vm  # noqa: E402


def _atomic(path, write):
    d = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".%s." % os.path.basename(path), suffix=".tmp", dir=d)
    os.close(fd)
    try:
        write(tmp)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def write_keras_h5(path, layer_names, layer_weights, keras2=True, backend="tensorflow", keras_version="2.2.4"):
    """layer_names: every layer in model.layers order; layer_weights: layer -> [(name, array)].
    keras2: dataset names '<layer>/<name>:0' and backend/keras_version attributes, as Keras 2
    writes them; otherwise names are used as given (Keras 1 style)."""
    import h5py

    def write(tmp):
        with h5py.File(tmp, "w") as f:
            # fixed-length byte strings, as Keras wrote them with h5py 2 (h5py 3 would store a
            # list of bytes as variable-length strings)
            f.attrs["layer_names"] = np.array([n.encode("utf8") for n in layer_names], dtype=np.bytes_)
            if keras2:
                f.attrs["backend"] = np.bytes_(backend.encode("utf8"))
                f.attrs["keras_version"] = np.bytes_(keras_version.encode("utf8"))
            for ln in layer_names:
                g = f.create_group(ln)
                ws = layer_weights.get(ln, [])
                names = [("%s/%s:0" % (ln, w) if keras2 else w) for w, _ in ws]
                # Keras: save_attributes_to_hdf5_group(g, 'weight_names', [...]); an empty list
                # becomes an empty float64 array, as in the real files
                g.attrs["weight_names"] = (np.array([n.encode("utf8") for n in names], dtype=np.bytes_)
                                           if names else np.zeros(0))
                for n, (_, a) in zip(names, ws):
                    d = g.create_dataset(n, a.shape, dtype=np.float32)
                    if a.size:
                        d[...] = a
    _atomic(path, write)


def keras_resnet50_h5(path, top=False, seed=0, top_name="probs"):
    import torch_ref
    net = torch_ref.KerasResNet50(include_top=top).randomize_(seed).eval()
    w = net.keras_weights()
    if top:
        w[top_name] = w.pop("predictions")
    names = [l["name"] for l in vm.keras_resnet50(top, top_name=top_name)["layers"]]
    missing = [n for n in w if n not in names]
    assert not missing, missing
    write_keras_h5(path, names, w)
    return net


def torchvision_resnet50_state_dict(seed=0, classes=1000):
    """torchvision resnet50 state_dict keys and shapes, written out by hand (not from
    torchvision), with random weights and non-identity BN statistics."""
    import torch
    g = torch.Generator().manual_seed(seed)
    sd = collections.OrderedDict()

    def conv(name, cout, cin, k):
        sd[name + ".weight"] = torch.randn(cout, cin, k, k, generator=g) * (2.0 / (cin * k * k)) ** 0.5

    def bn(name, c, scale=1.0):
        sd[name + ".weight"] = (0.5 + torch.rand(c, generator=g)) * scale
        sd[name + ".bias"] = torch.randn(c, generator=g) * 0.1
        sd[name + ".running_mean"] = torch.randn(c, generator=g) * 0.1
        sd[name + ".running_var"] = 0.5 + torch.rand(c, generator=g)
        sd[name + ".num_batches_tracked"] = torch.tensor(0, dtype=torch.int64)

    conv("conv1", 64, 3, 7)
    bn("bn1", 64)
    cin = 64
    for li, (planes, blocks) in enumerate(((64, 3), (128, 4), (256, 6), (512, 3)), 1):
        for bi in range(blocks):
            p = "layer%d.%d" % (li, bi)
            conv(p + ".conv1", planes, cin, 1)
            bn(p + ".bn1", planes)
            conv(p + ".conv2", planes, planes, 3)
            bn(p + ".bn2", planes)
            conv(p + ".conv3", planes * 4, planes, 1)
            bn(p + ".bn3", planes * 4, 0.3)
            if bi == 0:
                conv(p + ".downsample.0", planes * 4, cin, 1)
                bn(p + ".downsample.1", planes * 4)
            cin = planes * 4
    lim = (6.0 / (2048 + classes)) ** 0.5
    sd["fc.weight"] = (torch.rand(classes, 2048, generator=g) * 2 - 1) * lim
    sd["fc.bias"] = torch.randn(classes, generator=g) * 0.01
    return sd


def torchvision_resnet50_pth(path, seed=0):
    import torch
    sd = torchvision_resnet50_state_dict(seed)
    _atomic(path, lambda tmp: torch.save(sd, tmp))
    return sd


def keras_squeezenet_h5(path, seed=0):
    """Keras 1 layout of keras-squeezenet's notop weight file: kernels HWIO named uniformN,
    biases '<layer>_b', layers in the real file's order, ending with drop9."""
    rng = np.random.default_rng(seed)
    graph = vm.squeezenet1_1(include_drop9=True)
    shapes = vm.expected_tensors(graph)
    w = collections.OrderedDict()
    n = 0
    for l in graph["layers"]:
        if l["type"] != "conv2d":
            continue
        n += 1
        k, c, r, s = shapes[l["name"] + ".weight"]
        lim = (6.0 / ((c + k) * r * s)) ** 0.5
        w[l["name"]] = [("uniform%d" % n, rng.uniform(-lim, lim, (r, s, c, k)).astype(np.float32)),
                        (l["name"] + "_b", (rng.standard_normal(k) * 0.05).astype(np.float32))]
    write_keras_h5(path, [l["name"] for l in graph["layers"]], w, keras2=False)


VKRUN_ARCHS = {
    "keras-resnet50": lambda: vm.keras_resnet50(False),
    "keras-resnet50-top": lambda: vm.keras_resnet50(True, classes=["class%d" % i for i in range(1000)]),
    "torchvision-resnet50": lambda: vm.torchvision_resnet50(),
    "squeezenet1_1": lambda: vm.squeezenet1_1(),
}


def main(argv=None):
    ap = argparse.ArgumentParser(description="Write synthetic weight files in the official layouts.")
    ap.add_argument("kind", choices=("keras-resnet50", "torchvision-resnet50", "keras-squeezenet", "vkrun-model"))
    ap.add_argument("--arch", choices=sorted(VKRUN_ARCHS), help="vkrun-model: which graph")
    ap.add_argument("output")
    ap.add_argument("--top", action="store_true", help="keras-resnet50: include avg_pool + classifier")
    ap.add_argument("--top-name", default="probs", help="keras-resnet50: classifier layer name (default probs)")
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args(argv)
    if a.kind == "keras-resnet50":
        keras_resnet50_h5(a.output, a.top, a.seed, a.top_name)
    elif a.kind == "torchvision-resnet50":
        torchvision_resnet50_pth(a.output, a.seed)
    elif a.kind == "keras-squeezenet":
        keras_squeezenet_h5(a.output, a.seed)
    else:
        if not a.arch:
            ap.error("vkrun-model needs --arch")
        g = VKRUN_ARCHS[a.arch]()
        g["source"] += " (random weights, seed %d)" % a.seed
        vm.write_model(a.output, g, vm.random_tensors(g, a.seed))
    print("wrote %s" % a.output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
