"""Helpers shared by the converters: the error type, warnings, ImageNet class names."""

import ast
import importlib.util
import os
import sys


class ConvertError(Exception):
    pass


def escape(text):
    """`text` safe to print on a terminal, on one line: bytes that are not UTF-8 and characters that
    are not printable (ESC, BEL, newlines, C1 controls, ...) become \\xNN (\\uNNNN above U+00FF)."""
    if isinstance(text, bytes):
        text = text.decode("utf-8", "backslashreplace")
    text = str(text)
    if text.isprintable():
        return text
    out = []
    for ch in text:
        o = ord(ch)
        out.append(ch if ch.isprintable() else "\\x%02x" % o if o < 0x100 else "\\u%04x" % o if o < 0x10000
                   else "\\U%08x" % o)
    return "".join(out)


def warn(msg):
    sys.stderr.write("convert.py: warning: %s\n" % escape(msg))


def imagenet_classes():
    """The 1000 ImageNet class names in the standard (synset-sorted) order shared by Keras and
    torchvision, read from torchvision/models/_meta.py (Debian: python3-torchvision) without
    importing torchvision. None when torchvision is not installed."""
    try:
        spec = importlib.util.find_spec("torchvision")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.origin:
        return None
    path = os.path.join(os.path.dirname(spec.origin), "models", "_meta.py")
    try:
        with open(path, encoding="utf-8") as f:
            tree = ast.parse(f.read(), path)
    except (OSError, SyntaxError):
        return None
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "_IMAGENET_CATEGORIES" for t in node.targets):
            names = ast.literal_eval(node.value)
            if len(names) == 1000:
                return list(names)
    return None


def load_classes(args, units, src):
    if args.no_classes:
        return None
    if args.classes:
        try:
            with open(args.classes, encoding="utf-8") as f:
                names = [l.strip() for l in f if l.strip()]
        except OSError as e:
            raise ConvertError("cannot read --classes %s: %s" % (args.classes, e.strerror or e))
        if len(names) != units:
            raise ConvertError("--classes %s has %d names, the classifier in %s has %d outputs"
                               % (args.classes, len(names), src, units))
        return names
    if units != 1000:
        warn("classifier has %d outputs (not ImageNet's 1000): no class names written (use --classes FILE)" % units)
        return None
    names = imagenet_classes()
    if names is None:
        raise ConvertError("the 1000 ImageNet class names come from python3-torchvision, which is not installed: "
                           "install it (apt-get install -y python3-torchvision), or pass --classes FILE "
                           "(one name per line) or --no-classes")
    return names


def set_classes(graph, classes):
    """Puts `classes` into the graph before "layers" (key order kept readable)."""
    if classes is None:
        return
    layers = graph.pop("layers")
    graph["classes"] = list(classes)
    graph["layers"] = layers
