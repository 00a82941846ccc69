#!/usr/bin/python3
"""Converts pretrained weights to a vkrun model file (docs/model-format.md).

  /usr/bin/python3 tools/convert.py SRC -o OUT.safetensors [--arch ARCH] [--top] [--cut NODE] [--size N]
                                    [--preprocess caffe|torch|none] [--classes FILE | --no-classes]
                                    [--trust-pickle] [--vkrun PATH|none]

SRC is either
  - a Keras HDF5 weights file (root attribute layer_names; also a full model file with a
    model_weights group): Keras ResNet50 (keras-applications, with or without top) or SqueezeNet
    v1.1 (keras-squeezenet, notop);
  - a torch checkpoint (.pth/.pt/.th), raw or under 'state_dict', keys optionally prefixed
    'module.': torchvision resnet18/34/50/101/152, vgg11/13/16/19 (features; the classifier with
    --top), a CIFAR ResNet of akamaster/pytorch_resnet_cifar10 (converters/torchvision.py);
  - an ONNX model (.onnx): converters/onnx_import.py (ops, --cut, --top there).
The architecture is detected from the weight names; --arch only confirms it.

Every expected weight must be present with the right shape; errors name the weight and the file
and exit with status 1 (one line, names escaped). The output is held to vkrun's loader limits
(converters/limits.py), written to a temp file, loaded by `vkrun summary` when a vkrun binary is
found (--vkrun), and renamed, so a failed run never leaves a partial OUT; OUT must be a regular
file (or a symlink to one, written through) or a new name.
"""

import argparse
import collections
import os
import pickle
import shutil
import signal
import stat
import subprocess
import sys
import types
import warnings
import zipfile

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import vkrun_model as vm  # noqa: E402

# the command's name in messages: vkrun-convert when installed (its wrapper says so), else convert.py
PROG = os.environ.get("VKRUN_CONVERT_PROG") or "convert.py"

HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"
KERAS_CONV = ("kernel", "bias")
KERAS_BN = ("gamma", "beta", "moving_mean", "moving_variance")
BN_PARAMS = dict(zip(KERAS_BN, vm.LAYER_PARAMS["batchnorm"]))
# the ResNet50 classifier is 'probs' in keras_applications, 'predictions' in tf.keras,
# 'fc1000' in the older keras_applications resnet50.py; the graph always calls it 'predictions'
KERAS_TOP_NAMES = ("predictions", "probs", "fc1000")


from converters.common import ConvertError, escape, imagenet_classes, load_classes, set_classes, warn  # noqa: E402,F401
from converters import graph as vg  # noqa: E402


# --------------------------------------------------------------------------- Keras HDF5

def _attr_list(group, name):
    """Keras's load_attributes_from_hdf5_group: the attribute, or its chunks name0, name1, ..."""
    if name in group.attrs:
        vals = list(group.attrs[name])
    else:
        vals, i = [], 0
        while "%s%d" % (name, i) in group.attrs:
            vals.extend(group.attrs["%s%d" % (name, i)])
            i += 1
        if i == 0:
            return None
    return [v.decode("utf-8") if isinstance(v, bytes) else str(v) for v in vals]


def read_keras_h5(path):
    """Returns (layer_names, OrderedDict layer -> [(weight name, array), ...])."""
    import h5py
    try:
        with h5py.File(path, "r") as f:
            root = f
            names = _attr_list(f, "layer_names")
            if names is None and "model_weights" in f:
                root = f["model_weights"]
                names = _attr_list(root, "layer_names")
            if names is None:
                raise ConvertError("%s is an HDF5 file but not Keras weights (no layer_names attribute)" % path)
            weights = collections.OrderedDict()
            for ln in names:
                if ln not in root:
                    raise ConvertError("%s lists layer %r in layer_names but has no group for it" % (path, ln))
                g = root[ln]
                wn = _attr_list(g, "weight_names") or []
                arrs = []
                for w in wn:
                    if w not in g:
                        raise ConvertError("%s: layer %r lists weight %r but the dataset is missing" % (path, ln, w))
                    arrs.append((w, np.asarray(g[w][()], dtype=np.float32)))
                if arrs:
                    weights[ln] = arrs
            return names, weights
    except ConvertError:
        raise
    except (OSError, KeyError, ValueError, RuntimeError, TypeError) as e:
        raise ConvertError("cannot read Keras weights from %s (truncated or corrupt HDF5?): %s" % (path, e))


def _keras_short(wname):
    """'conv1_conv/kernel:0' -> 'kernel'; Keras 1 names like 'uniform1' -> None."""
    base = wname.rsplit("/", 1)[-1].split(":", 1)[0]
    return base if base in KERAS_CONV + KERAS_BN else None


def _keras_layer_weights(path, lname, arrs, expected):
    """Orders a Keras layer's weights as `expected` (Keras names); by name when the file uses
    Keras 2 names ('kernel:0'), else by position as weight_names lists them (Keras 1)."""
    shorts = [_keras_short(w) for w, _ in arrs]
    if all(s is not None for s in shorts):
        by = dict(zip(shorts, arrs))
        missing = [e for e in expected if e not in by]
        if missing:
            raise ConvertError("%s: layer %r has no %s weight (it has %s)"
                               % (path, lname, "/".join(missing), ", ".join(w for w, _ in arrs)))
        extra = [w for s, (w, _) in zip(shorts, arrs) if s not in expected]
        if extra:
            raise ConvertError("%s: layer %r has unexpected weights %s" % (path, lname, ", ".join(extra)))
        return [by[e] for e in expected]
    if len(arrs) != len(expected):
        raise ConvertError("%s: layer %r has %d weights (%s), expected %d (%s)"
                           % (path, lname, len(arrs), ", ".join(w for w, _ in arrs), len(expected),
                              ", ".join(expected)))
    return list(arrs)


def convert_keras(path, args):
    names, weights = read_keras_h5(path)
    from converters import keras_apps
    if keras_apps.detect(weights):
        return keras_apps.convert(path, names, weights, args)
    if args.size or args.preprocess:
        raise ConvertError("--size / --preprocess: not for Keras ResNet50 / SqueezeNet files")
    arch = args.arch
    detected = ("resnet50" if "conv1_conv" in weights else
                "squeezenet1_1" if "fire2/squeeze1x1" in weights else None)
    if detected is None:
        raise ConvertError("%s: unknown Keras model (expected ResNet50 layers like conv1_conv or SqueezeNet "
                           "layers like fire2/squeeze1x1)" % path)
    if arch and arch != detected:
        raise ConvertError("%s holds %s weights, not %s" % (path, detected, arch))
    arch = detected
    top_name = next((n for n in KERAS_TOP_NAMES if n in weights), None)
    if arch == "squeezenet1_1":
        if args.top:
            raise ConvertError("--top: only notop SqueezeNet weights are supported")
        graph = vm.squeezenet1_1(include_drop9="drop9" in names)
        graph["source"] = "keras-squeezenet v1.1 notop (%s)" % os.path.basename(path)
    else:
        if args.top and top_name is None:
            raise ConvertError("--top: %s has no classifier weights (layer %s); it is a notop file"
                               % (path, " / ".join(KERAS_TOP_NAMES)))
        units = 1000
        if args.top:
            dense = weights[top_name]
            kern = [a for w, a in dense if a.ndim == 2]
            if not kern:
                raise ConvertError("%s: classifier layer %r has no 2-D kernel" % (path, top_name))
            units = kern[0].shape[1]
        elif top_name is not None:
            warn("%s also holds the classifier %r; it is left out (pass --top to include it)" % (path, top_name))
        graph = vm.keras_resnet50(args.top, units=units)
        graph["source"] = "keras resnet50 %s (%s)" % ("with top" if args.top else "notop", os.path.basename(path))
    shapes = vm.infer_shapes(graph)
    exp = vm.expected_tensors(graph, shapes)
    tensors = collections.OrderedDict()
    used = set()
    for layer in graph["layers"]:
        t, ln = layer["type"], layer["name"]
        if t not in vm.LAYER_PARAMS:
            continue
        src_name = top_name if (ln == "predictions" and arch == "resnet50") else ln
        keras_names = KERAS_BN if t == "batchnorm" else KERAS_CONV[:2 if layer.get("use_bias", True) else 1]
        if src_name not in weights:
            raise ConvertError("%s has no weights for layer %r (expected %s)"
                               % (path, src_name, ", ".join(keras_names)))
        used.add(src_name)
        arrs = _keras_layer_weights(path, src_name, weights[src_name], keras_names)
        for kname, (wname, a) in zip(keras_names, arrs):
            if t == "batchnorm":
                tn = vm.tensor_name(ln, BN_PARAMS[kname])
                want_src = exp[tn]
            elif kname == "kernel":
                tn = vm.tensor_name(ln, "weight")
                o = exp[tn]
                want_src = (o[2], o[3], o[1], o[0]) if t == "conv2d" else (o[1], o[0])  # HWIO / [IN,OUT]
            else:
                tn = vm.tensor_name(ln, "bias")
                want_src = exp[tn]
            if tuple(a.shape) != tuple(want_src):
                raise ConvertError("%s: weight %s/%s has shape %s, expected %s"
                                   % (path, src_name, wname, tuple(a.shape), tuple(want_src)))
            if kname == "kernel":
                a = a.transpose(3, 2, 0, 1) if t == "conv2d" else a.T  # HWIO -> OIHW, [IN,OUT] -> [OUT,IN]
            if not np.all(np.isfinite(a)):
                raise ConvertError("%s: weight %s/%s holds NaN or infinite values" % (path, src_name, wname))
            tensors[tn] = np.ascontiguousarray(a, dtype=np.float32)
    extra = [n for n in weights if n not in used and not (n == top_name and not args.top)]
    if extra:
        warn("%s: ignored weights of layers not in the %s graph: %s" % (path, arch, ", ".join(extra)))
    if arch == "resnet50" and args.top:
        set_classes(graph, load_classes(args, units, path))  # after the weights were checked
    return graph, tensors


# --------------------------------------------------------------------------- torch checkpoints

_ALLOWED_GLOBALS = {("collections", "OrderedDict"), ("torch._utils", "_rebuild_tensor_v2"),
                    ("torch._utils", "_rebuild_tensor"), ("torch._utils", "_rebuild_parameter"),
                    ("torch", "Size"), ("builtins", "set")}


class _RestrictedUnpickler(pickle.Unpickler):
    def find_class(self, module, name):
        if (module, name) in _ALLOWED_GLOBALS or (module == "torch" and name.endswith("Storage")):
            return super().find_class(module, name)
        raise pickle.UnpicklingError("refusing to load global %s.%s (not plain tensors)" % (module, name))


def _restricted_load(path):
    """Loads tensors/dicts/numbers only, also from legacy (non-zip) files, which torch 1.13's
    weights_only loader rejects when they hold a float. Uses torch.serialization internals;
    returns None when they are not there."""
    import torch.serialization as ts
    if not all(hasattr(ts, a) for a in ("_is_zipfile", "_open_zipfile_reader", "_load", "_legacy_load")):
        return None
    mod = types.ModuleType("vkrun_restricted_pickle")
    mod.Unpickler = _RestrictedUnpickler
    mod.load = lambda f, **kw: _RestrictedUnpickler(f, **kw).load()
    with open(path, "rb") as f:
        if ts._is_zipfile(f):
            with ts._open_zipfile_reader(f) as z:
                return ts._load(z, "cpu", mod, encoding="utf-8")
        return ts._legacy_load(f, "cpu", mod, encoding="utf-8")


def read_torch(path, trust_pickle=False):
    import torch
    errors = (RuntimeError, pickle.UnpicklingError, EOFError, ValueError, KeyError, TypeError,
              AttributeError, ImportError, IndexError, zipfile.BadZipFile, OSError, UnicodeDecodeError)
    try:
        if trust_pickle:
            obj = torch.load(path, map_location="cpu")
        else:
            try:
                obj = torch.load(path, map_location="cpu", weights_only=True)
            except TypeError:  # torch without weights_only
                obj = _restricted_load(path)
            except pickle.UnpicklingError as e:
                obj = _restricted_load(path)
                if obj is None:
                    raise e
    except errors as e:
        msg = str(e).split("\n")[0][:300]
        raise ConvertError("cannot read torch checkpoint %s (truncated, corrupt, or it holds objects other than "
                           "tensors; pass --trust-pickle for a file you trust): %s: %s"
                           % (path, type(e).__name__, msg))
    if isinstance(obj, dict) and "state_dict" in obj and isinstance(obj["state_dict"], dict):
        obj = obj["state_dict"]
    if not isinstance(obj, dict) or not obj:
        raise ConvertError("%s does not hold a state_dict (a dict of tensors, raw or under 'state_dict')" % path)
    sd = collections.OrderedDict()
    for k, v in obj.items():
        if not isinstance(k, str):
            raise ConvertError("%s: state_dict key %r is not a string" % (path, k))
        if k.startswith("module."):
            k = k[len("module."):]
        if not isinstance(v, torch.Tensor):
            raise ConvertError("%s: state_dict entry %r is a %s, not a tensor" % (path, k, type(v).__name__))
        sd[k] = v
    return sd


def convert_torch(path, args):
    from converters.torchvision import convert_state_dict
    return convert_state_dict(read_torch(path, args.trust_pickle), path, args)


# --------------------------------------------------------------------------- main

def detect(path):
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):
            raise ConvertError("%s is not a regular file" % path)
        with open(path, "rb") as f:
            head = f.read(8)
    except OSError as e:
        raise ConvertError("cannot read %s: %s" % (path, e.strerror or e))
    if head == HDF5_MAGIC:
        return "keras"
    try:
        import h5py
        if h5py.is_hdf5(path):  # HDF5 with a user block
            return "keras"
    except ImportError:
        pass
    if head[:4] == b"PK\x03\x04" or head[:1] == b"\x80":
        return "torch"
    if path.endswith((".pth", ".pt", ".th")):
        return "torch"
    if path.endswith(".onnx") or head[:1] == b"\x08":  # ONNX: protobuf field 1 (ir_version) first
        return "onnx"
    raise ConvertError("%s is neither a Keras HDF5 weights file, a torch checkpoint nor an ONNX model" % path)


def convert(path, args):
    kind = detect(path)
    if kind == "onnx":
        from converters.onnx_import import convert_onnx
        return convert_onnx(path, args)
    if args.cut and kind != "onnx":
        raise ConvertError("--cut applies to ONNX models")
    return convert_keras(path, args) if kind == "keras" else convert_torch(path, args)


# What convert.py converts besides ONNX graphs (`convert.py --list`; `vkrun summary --supported` prints
# the same lines, and ctest python_onnx checks that they agree)
ARCHITECTURES = (
    ("torch state dicts", "resnet18 resnet34 resnet50 resnet101 resnet152 vgg11 vgg13 vgg16 vgg19 mobilenet_v2 "
     "mobilenet_v3_small mobilenet_v3_large efficientnet_b0 densenet121 resnet20_cifar (any 6n+2)"),
    ("Keras h5", "ResNet50 SqueezeNet-v1.1 VGG16 MobileNetV2 EfficientNetB0"),
)


def supported_lines():
    from converters.onnx_import import supported_ops
    mapped, folded = supported_ops()
    return ["%s: %s" % kv for kv in ARCHITECTURES] + ["ONNX ops: " + " ".join(mapped),
                                                      "ONNX ops folded on constants: " + " ".join(folded)]


def find_vkrun(opt):
    """The vkrun binary that checks the written model: --vkrun, else $VKRUN, else build/vkrun beside
    tools/, else vkrun on the PATH; None when there is none, or with --vkrun none."""
    if opt:
        return None if opt == "none" else opt
    if os.environ.get("VKRUN"):
        return os.environ["VKRUN"]
    built = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "build", "vkrun")
    return built if os.access(built, os.X_OK) else shutil.which("vkrun")


def vkrun_check(vkrun, out):
    """verify() for write_model: `vkrun summary TMP` must load the temporary (vkrun's own loader)."""
    def verify(tmp):
        try:
            p = subprocess.run([vkrun, "summary", tmp], capture_output=True, timeout=600)
        except (OSError, subprocess.SubprocessError) as e:
            raise ConvertError("cannot run %s to check the model (pass --vkrun PATH, or --vkrun none): %s" % (vkrun, e))
        if p.returncode != 0:
            err = p.stderr.decode("utf-8", "backslashreplace").strip().splitlines() or ["exit %d" % p.returncode]
            raise ConvertError("vkrun refuses the converted model, so it was not written: %s"
                               % err[-1].replace(tmp, out))
    return verify


def main(argv=None):
    ap = argparse.ArgumentParser(prog=PROG, description="Convert Keras h5 / torchvision weights to a vkrun model file.")
    ap.add_argument("src", nargs="?", help="Keras .h5 weights, torch .pth/.th checkpoint or .onnx model")
    ap.add_argument("-o", "--output", help="output .safetensors (required)")
    ap.add_argument("--list", action="store_true", help="print the architectures and ONNX ops this converts, and exit")
    ap.add_argument("--arch", help="expected architecture (detected otherwise): resnet18/34/50/101/152, vgg16, "
                    "resnet20_cifar, squeezenet1_1, ...")
    ap.add_argument("--top", action="store_true", help="include the classifier (Keras ResNet50: avg_pool + predictions; "
                    "VGG: classifier; ONNX: the whole graph)")
    ap.add_argument("--cut", metavar="NODE", help="ONNX: end the graph at this node (name or output name); default: "
                    "the input of the first pooling/classifier node")
    ap.add_argument("--size", type=int, help="input height = width (ONNX: for models without a fixed size)")
    ap.add_argument("--preprocess", choices=vm.PREPROCESS, help="input.preprocess (default: torch for ONNX and "
                    "torch checkpoints, caffe for Keras)")
    ap.add_argument("--classes", help="class names, one per line (default for 1000 outputs: ImageNet's, from torchvision)")
    ap.add_argument("--no-classes", action="store_true", help="write no class names")
    ap.add_argument("--trust-pickle", action="store_true",
                    help="torch: allow arbitrary pickled objects (only for files you trust)")
    ap.add_argument("--vkrun", metavar="PATH", help="vkrun binary that must load the result before it replaces OUT "
                    "(default: $VKRUN, build/vkrun, vkrun on the PATH; 'none': only convert.py's own checks)")
    ap.add_argument("-q", "--quiet", action="store_true")
    args = ap.parse_args(argv)
    if args.list:
        print("\n".join(supported_lines()))
        return 0
    if not args.src or not args.output:
        ap.error("the following arguments are required: src, -o/--output")
    warnings.showwarning = lambda message, category, *_a, **_k: warn("%s: %s" % (category.__name__, message))
    if argv is None:  # the command line: SIGTERM unwinds like Ctrl-C, so the temporary is removed
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        if os.path.exists(args.output) and os.path.samefile(args.src, args.output):
            raise ConvertError("output %s is the input file" % args.output)
        vm.output_target(args.output)  # refused before the work, checked again before the rename
        graph, tensors = convert(args.src, args)
        total, non = vg.param_counts(graph)
        vkrun = find_vkrun(args.vkrun)
        vg.write_model(args.output, graph, tensors, verify=vkrun_check(vkrun, args.output) if vkrun else None)
    except (ConvertError, vm.ModelError) as e:
        return _error(e)
    except OSError as e:
        return _error("%s: %s" % (getattr(e, "filename", None) or args.output, e.strerror or e))
    except MemoryError:
        return _error("%s: out of memory while converting" % args.src)
    except RecursionError:
        return _error("%s: the graph nests too deeply" % args.src)
    except Exception as e:  # noqa: BLE001 -- a bug, but the user gets one line, not a traceback
        tb = e.__traceback__
        while tb.tb_next:
            tb = tb.tb_next
        return _error("%s: internal error %s: %s (at %s:%d; please report it)"
                      % (args.src, type(e).__name__, str(e)[:300], os.path.basename(tb.tb_frame.f_code.co_filename),
                         tb.tb_lineno))
    if not args.quiet:
        print(escape("wrote %s: %s (%s), %d layers, %d params (%d non-trainable)%s"
                     % (args.output, graph["name"], graph["source"], len(graph["layers"]), total, non,
                        ", %d classes" % len(graph["classes"]) if graph.get("classes") else "")))
    return 0


def _error(msg):
    sys.stderr.write("%s: error: %s\n" % (PROG, escape(msg)))
    return 1


if __name__ == "__main__":
    sys.exit(main())
