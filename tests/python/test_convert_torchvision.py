#!/usr/bin/python3
"""torch state dicts -> vkrun (tools/converters/torchvision.py), checked against torch.

  /usr/bin/python3 tests/python/test_convert_torchvision.py --vkrun BUILD/vkrun [--keep]

torchvision resnet18 / resnet34 / resnet50 / resnet101 and vgg16 (features) with seeded random
weights and randomized BN statistics, 2x3x64x64 image-like inputs: `vkrun forward` of the converted
state dict vs the torchvision module, max|diff|/max|ref| <= 1e-4. The resnet50 graph is the one
vkrun_model.torchvision_resnet50 builds; vgg16 --top (flatten + classifier) at 224x224 the same way. With ../shared: the real CIFAR ResNet20
checkpoint (akamaster/pytorch_resnet_cifar10) vs a torch re-implementation of that network (Debian
has no CIFAR-10 package: the inputs are image-like pixels, and the predicted classes must agree).
"""

import argparse
import json
import os
import shutil
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _harness import Runner, need_shared  # noqa: E402
import _nets as N  # noqa: E402

import torch  # noqa: E402

import vkrun_model as vm  # noqa: E402
from converters import graph as vg  # noqa: E402
from converters import torchvision as tvc  # noqa: E402

torch.set_num_threads(min(2, os.cpu_count() or 1))
R = Runner()
C = None
RESNET20 = ("weights", "resnet20-12fca82f.th")


def convert_sd(model, name, *extra):
    N.save_state_dict(model, C.tmp(name + ".pth"))
    out = C.tmp(name + ".safetensors")
    N.convert(C.tmp(name + ".pth"), "-o", out, "--no-classes", *extra)
    return out


def t_resnet(depth, seed):
    import torchvision
    m = N.calibrate_bn(N.randomize(getattr(torchvision.models, "resnet%d" % depth)(), seed), 64, seed + 100)
    path = convert_sd(m, "resnet%d" % depth, "--size", "64")
    g, t = vm.read_model(path)
    assert g["name"] == "resnet%d" % depth and g["layers"][-1]["name"] == "fc", (g["name"], g["layers"][-1])
    x = N.torch_pre(N.pixels(2, 64, seed))
    ref = N.torch_forward(m, x)
    t32 = N.torch32_err(m, x, ref)
    e = N.check_parity(C, path, x, ref, "resnet%d logits" % depth, bound=N.parity_bound(t32))
    print("     resnet%d: %d layers, logits rel err %.2e (torch float32: %.2e; bound %.1e)"
          % (depth, len(g["layers"]), e, t32, N.parity_bound(t32)))


def t_resnet50_graph():
    a = tvc.resnet((3, 4, 6, 3), True)
    b = vm.torchvision_resnet50()
    assert json.dumps(a["layers"]) == json.dumps(b["layers"]), "resnet50 graphs differ"


def t_vgg16_features():
    import torchvision
    m = N.randomize(torchvision.models.vgg16(), 7)
    path = convert_sd(m, "vgg16", "--size", "64")
    g, _ = vm.read_model(path)
    assert g["layers"][-1]["name"] == "features.30" and len(g["layers"]) == 32, g["layers"][-1]
    x = N.torch_pre(N.pixels(2, 64, 8))
    e = N.check_parity(C, path, x, N.torch_forward(m.features, x), "vgg16 features")
    print("     vgg16 features: %d layers, rel err %.2e" % (len(g["layers"]), e))


def t_vgg16_top():
    import torchvision
    m = N.randomize(torchvision.models.vgg16(), 9)
    path = convert_sd(m, "vgg16top", "--top")
    g, t = vm.read_model(path, check=False)
    vg.validate(g, t)
    names = [l["name"] for l in g["layers"][-6:]]
    assert names == ["flatten", "classifier.0", "classifier.2", "classifier.3", "classifier.5", "classifier.6"], names
    assert t["classifier.0.weight"].shape == (4096, 25088)
    N.require_types(C, g)
    x = N.torch_pre(N.pixels(2, 224, 10))
    e = N.check_parity(C, path, x, N.torch_forward(m, x), "vgg16 logits")
    print("     vgg16 with top: rel err %.2e" % e)


def t_resnet20_real():
    ck = need_shared(*RESNET20)
    m, sd = N.load_resnet20(ck)
    out = C.tmp("r20.safetensors")
    N.convert(ck, "-o", out)
    g, t = vm.read_model(out)
    assert g["classes"][:2] == ["airplane", "automobile"] and len(g["layers"]) == 71
    sc = [l for l in g["layers"] if l.get("trainable", True) is False]
    assert [l["name"] for l in sc] == ["layer2.0.shortcut", "layer3.0.shortcut"], sc
    assert t["layer2.0.shortcut.weight"].shape == (32, 16, 1, 1) and t["layer2.0.shortcut.weight"][8, 0, 0, 0] == 1
    x = N.torch_pre(N.pixels(8, 32, 20))
    ref = N.torch_forward(m, x)
    y = N.vkrun_forward(C, out, x)
    e = N.rel_err(y, ref)
    assert e <= N.PARITY_BOUND, "resnet20 logits: rel err %.2e" % e
    assert (y.argmax(1) == ref.argmax(1)).all(), "predicted classes differ"
    print("     resnet20 (real checkpoint): logits rel err %.2e on 8 images" % e)


def main():
    global C
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--vkrun", required=True)
    ap.add_argument("--keep", action="store_true")
    a = ap.parse_args()
    C = N.Ctx(a.vkrun)
    try:
        R.check("resnet50_graph_matches_vkrun_model", t_resnet50_graph)
        R.check("resnet18_state_dict_forward", lambda: t_resnet(18, 1))
        R.check("resnet34_state_dict_forward", lambda: t_resnet(34, 2))
        R.check("resnet50_state_dict_forward", lambda: t_resnet(50, 4))
        R.check("resnet101_state_dict_forward", lambda: t_resnet(101, 3))
        R.check("vgg16_features_state_dict_forward", t_vgg16_features)
        R.check("vgg16_top_state_dict", t_vgg16_top)
        R.check("resnet20_cifar_real_checkpoint", t_resnet20_real, shared=True)
    finally:
        if not a.keep:
            shutil.rmtree(C.tmpdir, ignore_errors=True)
    return R.finish()


if __name__ == "__main__":
    sys.exit(main())
