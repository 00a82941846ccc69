#!/usr/bin/python3
"""`vkrun train` fine-tunes an imported torchvision MobileNetV2 end to end on the real cats-vs-dogs
photos (issue 14: "bring any CNN").

  /usr/bin/python3 tests/python/test_train_mobilenet.py --vkrun build/vkrun [--keep]

torchvision mobilenet_v2 with seeded random weights (there are no pretrained weights offline), a
randomized BN affine and BN running statistics measured on synthetic image-like inputs
(_nets.calibrate_bn: with random statistics the features would not depend on the image) is
exported with torch.onnx.export at 96x96 and imported by tools/convert.py with the default cut (the
features: the last ReLU6 of the 1280-channel block).
`vkrun train` puts its default head on it (GAP, Dense 1024-1024-1024-512 + ReLU, softmax), trains
the head 2 epochs on cached features and fine-tunes the whole network 1 epoch (BatchNorm in
inference mode, the default), then `vkrun evaluate` and `vkrun predict` run on the validation folder.

Checks (all need <repo>/../shared/data/cats_dogs; SKIP without):
- the import: `vkrun forward` of the features equals torch's (1e-4 relative);
- m.history.json has the two stages (head, head, fine-tune), finite losses, and the training loss
  falls over the head epochs;
- the written model loads (`vkrun summary`): the base's layers unchanged in name and order, the head
  after them;
- fine-tuning changed every base conv kernel (none bit-identical to the imported file); the first,
  a middle and the last by at most what 7 Adam steps at lr 1e-5 can move an element;
- `vkrun evaluate` on the val folder gives the last epoch's val_accuracy exactly and its val_loss
  (1e-3 relative); `vkrun predict` on the folder: probabilities sum to 1, its top class is the
  folder's class exactly for the images evaluate counts correct.
"""

import argparse
import json
import os
import shutil
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _harness import Runner, Skip, need_shared  # noqa: E402
import _nets as N  # noqa: E402

import numpy as np  # noqa: E402

SIZE = 96
HEAD_EPOCHS, FT_EPOCHS = 2, 1
A = None
C = None
R = Runner()
S = {}


def vkrun(*argv, ok=True):
    return N.run([C.vkrun] + [str(a) for a in argv], "vkrun " + str(argv[0]), ok)


def history(d):
    with open(os.path.join(d, "m.history.json")) as f:
        h = json.load(f)
    n = len(h["loss"])
    assert all(len(v) == n for v in h.values()), h
    return [{k: h[k][i] for k in h} for i in range(n)]


def base_model():
    """The path of the imported MobileNetV2 features (.safetensors), checked against torch once."""
    if "base" not in S:
        import torchvision
        try:
            import onnx  # noqa: F401
        except ImportError:
            raise Skip("python3-onnx is not installed (apt-get install -y python3-onnx)")
        m = N.calibrate_bn(N.randomize(torchvision.models.mobilenet_v2(), 1414), SIZE, 1420)
        src, out = C.tmp("mobilenet_v2.onnx"), C.tmp("mobilenet_v2.safetensors")
        N.export_onnx(m, src, SIZE)
        N.convert(src, "-o", out)
        x = N.torch_pre(N.pixels(2, SIZE, 1415))
        e = N.check_parity(C, out, x, N.torch_forward(m.features, x), "mobilenet_v2 features")
        print("     imported mobilenet_v2 features (ONNX, %dx%d): vkrun forward vs torch rel err %.2e" % (SIZE, SIZE, e))
        S["base"] = out
    return S["base"]


def t_train():
    train = need_shared("data", "cats_dogs", "train")
    val = need_shared("data", "cats_dogs", "val")
    base = base_model()
    d = C.tmp("run")
    out = os.path.join(d, "m.safetensors")
    p = vkrun("train", "--model", base, "--data", train, "--val", val, "--out", out, "--size", "%dx%d" % (SIZE, SIZE),
              "--epochs", HEAD_EPOCHS, "--fine-tune-epochs", FT_EPOCHS, "--seed", 3)
    h = history(d)
    print("     " + "; ".join("%s: loss %.4f acc %.3f val_loss %.4f val_acc %.3f (%.1fs)" % (
        e["stage"], e["loss"], e["accuracy"], e["val_loss"], e["val_accuracy"], e["epoch_seconds"]) for e in h))
    assert [e["stage"] for e in h] == ["head"] * HEAD_EPOCHS + ["fine-tune"] * FT_EPOCHS, h
    assert all(np.isfinite([e["loss"], e["val_loss"]]).all() for e in h), h
    assert h[HEAD_EPOCHS - 1]["loss"] < h[0]["loss"], "the head's training loss did not fall: %s" % (
        [e["loss"] for e in h])
    assert h[-1]["loss"] < h[0]["loss"], "the fine-tuning loss is not below the first epoch's: %s" % (
        [e["loss"] for e in h])
    assert "fine-tun" in p.stdout, p.stdout[-2000:]
    S["run"] = (d, out, h)


def need_run():
    if "run" not in S:
        need_shared("data", "cats_dogs", "train")
        raise Skip("needs the trained model of the training check")
    return S["run"]


def t_model_loads():
    import vkrun_model as vm
    d, out, h = need_run()
    base = base_model()
    s = vkrun("summary", out).stdout
    g0, _ = vm.read_model(base, check=False)
    g1, _ = vm.read_model(out, check=False)
    n0 = [l["name"] for l in g0["layers"]]
    n1 = [l["name"] for l in g1["layers"]]
    assert n1[:len(n0)] == n0, "the base's layers changed"
    head = [l["type"] for l in g1["layers"][len(n0):]]
    acts = [l.get("activation") for l in g1["layers"][len(n0) + 1:]]
    assert head == ["gap"] + ["dense"] * 5 and acts == ["relu"] * 4 + ["softmax"], (head, acts)
    assert g1["layers"][-1]["name"] in s, s[-500:]
    print("     %d base layers + head %s" % (len(n0), head))


def t_base_changed():
    import vkrun_model as vm
    d, out, h = need_run()
    g0, t0 = vm.read_model(base_model(), check=False)
    _, t1 = vm.read_model(out, check=False)
    convs = [l["name"] for l in g0["layers"] if l["type"] == "conv2d"]
    same = [c for c in convs if np.array_equal(t0[c + ".weight"], t1[c + ".weight"])]
    assert len(convs) == 52 and not same, "%d of %d base conv kernels unchanged by fine-tuning: %s" % (
        len(same), len(convs), same[:5])
    rel = {}
    for c in (convs[0], convs[len(convs) // 2], convs[-1]):
        a, b = t0[c + ".weight"].astype(np.float64), t1[c + ".weight"].astype(np.float64)
        rel[c] = float(np.abs(b - a).max())
        # Adam moves each element by at most about lr per step: 7 steps (200 images, batch 32) at 1e-5
        assert 0 < rel[c] <= 7 * 1e-5 * 1.5, "%s moved by %.3g" % (c, rel[c])
    print("     all %d base conv kernels changed by fine-tuning; max |change| %s" % (
        len(convs), ", ".join("%s %.2e" % kv for kv in rel.items())))


def t_evaluate_predict():
    d, out, h = need_run()
    val = need_shared("data", "cats_dogs", "val")
    ev = json.loads(vkrun("evaluate", out, val, "--json").stdout)
    last = h[-1]
    assert ev["images"] == 50 and [c["name"] for c in ev["classes"]] == ["cats", "dogs"], ev
    assert abs(ev["accuracy"] - last["val_accuracy"]) < 1e-9, (ev["accuracy"], last)
    le = abs(ev["loss"] - last["val_loss"]) / max(abs(last["val_loss"]), 1e-6)
    assert le < 1e-3, "evaluate loss %.6f vs the last epoch's val_loss %.6f" % (ev["loss"], last["val_loss"])
    allp = json.loads(vkrun("predict", out, val, "--json").stdout)
    wrong = {o["image"]: o for o in ev["misclassified"]}
    assert len(allp) == 50, len(allp)
    for o in allp:
        p = o["probabilities"]
        assert len(p) == 2 and abs(sum(p) - 1) < 1e-5 and min(p) >= 0, p
        true, top = os.path.basename(os.path.dirname(o["image"])), o["top"][0]
        if o["image"] in wrong:
            assert top["class"] == wrong[o["image"]]["predicted"] != true, (o, wrong[o["image"]])
        else:
            assert top["class"] == true, o
    print("     evaluate: accuracy %.4f (= last epoch's val_accuracy), loss %.6f vs val_loss %.6f (rel %.1e); "
          "predict agrees on all 50 images" % (ev["accuracy"], ev["loss"], last["val_loss"], le))


def main():
    global A, C
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--vkrun", required=True)
    ap.add_argument("--keep", action="store_true")
    A = ap.parse_args()
    C = N.Ctx(os.path.abspath(A.vkrun))
    try:
        R.check("mobilenet_v2 (ONNX) head + fine-tuning on cats/dogs", t_train, shared=True)
        R.check("the written model loads: base unchanged in structure, default head", t_model_loads, shared=True)
        R.check("fine-tuning changed every base conv kernel", t_base_changed, shared=True)
        R.check("evaluate = the last epoch's validation; predict agrees", t_evaluate_predict, shared=True)
    finally:
        if not A.keep:
            shutil.rmtree(C.tmpdir, ignore_errors=True)
        else:
            print("kept %s" % C.tmpdir)
    return R.finish()


if __name__ == "__main__":
    sys.exit(main())
