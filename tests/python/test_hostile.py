#!/usr/bin/python3
"""Hostile input to the vkrun CLI (issue 24, the C half): outputs onto special files, tampered
checkpoints (recorded paths, running state, optimizer state), diverging training, option and
environment values, terminal escapes in names, folders.  Each check asserts the exit status, the
message and that nothing was written where nothing may be.

  /usr/bin/python3 tests/python/test_hostile.py --vkrun build/vkrun [--only NAME]

Small synthetic image folders and a tiny architecture only (no ../shared); about a minute.
"""

import json
import os
import shutil
import stat
import struct
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _harness import tiny_arch, vkrun_test_setup  # noqa: E402

import numpy as np  # noqa: E402

args, VKRUN, TMP, R = vkrun_test_setup("vkrun_test_hostile_")


def run(*argv, env=None, ok=True, cwd=None):
    e = dict(os.environ)
    e.update(env or {})
    p = subprocess.run([VKRUN] + [str(a) for a in argv], capture_output=True, text=True, env=e, cwd=cwd,
                       errors="replace", timeout=300)
    if ok and p.returncode != 0:
        raise AssertionError("vkrun %s failed (%d):\n%s\n%s" % (argv[0], p.returncode, p.stdout[-3000:], p.stderr[-3000:]))
    return p


def refused(p, rc, *words):
    """p exited with rc (no traceback, no sanitizer report) and its stderr holds every word."""
    assert p.returncode == rc and all(w in p.stderr for w in words), (p.returncode, p.stdout[-2000:], p.stderr[-2000:])
    assert "runtime error" not in p.stderr and "Sanitizer" not in p.stderr, p.stderr


def folder(name, classes=("cats", "dogs"), per_class=6, seed=1):
    rng = np.random.default_rng(seed)
    d = os.path.join(TMP, name)
    for ci, c in enumerate(classes):
        os.makedirs(os.path.join(d, c), exist_ok=True)
        for i in range(per_class):
            img = (rng.integers(0, 255, (20, 24, 3)) * 0.3 + np.array((255 * (ci == 0), 255 * (ci == 1), 90)) *
                   0.7).astype(np.uint8)
            with open(os.path.join(d, c, "img%03d.ppm" % i), "wb") as f:
                f.write(b"P6\n24 20\n255\n" + img.tobytes())
    return d


def tiny():
    return tiny_arch(TMP, 4)


def train_args(data, out, *extra):
    return ["train", "--model", tiny(), "--data", data, "--out", out, "--batch", 4, "--head", "8", "--epochs", 2,
            "--seed", 3, "--quiet", *extra]


def listing(d):
    return sorted(os.listdir(d)) if os.path.isdir(d) else None


def checkpoint_meta(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        return json.loads(json.loads(f.read(n))["__metadata__"]["vkrun_checkpoint"])


def tamper(path, fn):
    """Rewrites the "vkrun_checkpoint" metadata of a checkpoint with fn (the tensors' bytes untouched)."""
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        head = json.loads(f.read(n))
        rest = f.read()
    ck = json.loads(head["__metadata__"]["vkrun_checkpoint"])
    fn(ck)
    head["__metadata__"]["vkrun_checkpoint"] = json.dumps(ck)
    h = json.dumps(head).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + rest)


def interrupted(name, *extra, per_class=6):
    """A run of 2 epochs of 3 steps stopped (SIGINT) after 4 steps: its folder and checkpoint."""
    d = folder(name + "_data", per_class=per_class)
    out = os.path.join(TMP, name, "m.safetensors")
    p = run(*train_args(d, out, *extra), env={"VKRUN_TEST_SIGINT_AFTER": "4"}, ok=False)
    assert p.returncode == 130 and os.path.exists(out + ".checkpoint"), p.stderr
    return os.path.dirname(out), out + ".checkpoint"


# ---------------------------------------------------------------- a checkpoint's recorded paths (item 2)

def t_checkpoint_paths():
    """A checkpoint's `out` edited to another file: the resumed run writes beside the checkpoint and
    leaves that file alone; a copy of a checkpoint resumed in another folder writes there and leaves
    the original checkpoint in place; a recorded --tensorboard / --plots / --cache outside the
    checkpoint's folder is refused (exit 2, naming the flag and how to give it), accepted when given."""
    folder_, ck = interrupted("paths")
    victim = os.path.join(TMP, "victim")
    os.makedirs(victim)
    with open(os.path.join(victim, "precious.txt"), "w") as f:
        f.write("keep")
    copy = os.path.join(TMP, "paths_copy")
    os.makedirs(copy)
    for ext in ("", ".optimizer"):
        shutil.copy(ck + ext, os.path.join(copy, "m.safetensors.checkpoint" + ext))
    tamper(ck, lambda c: c["options"].update(out=os.path.join(victim, "precious.txt")))
    run("train", "--resume", ck, "--quiet")
    assert open(os.path.join(victim, "precious.txt"), "rb").read() == b"keep" and listing(victim) == ["precious.txt"]
    assert os.path.exists(os.path.join(folder_, "m.safetensors")) and not os.path.exists(ck)
    ck2 = os.path.join(copy, "m.safetensors.checkpoint")
    folder2, ck3 = interrupted("paths2")
    for ext in ("", ".optimizer"):
        shutil.copy(ck3 + ext, ck2 + ext)
    run("train", "--resume", ck2, "--quiet")
    assert os.path.exists(ck3) and os.path.exists(ck3 + ".optimizer"), listing(folder2)
    assert "m.safetensors" in listing(copy) and "m.history.json" in listing(copy) and not os.path.exists(ck2)
    assert not os.path.exists(os.path.join(folder2, "m.safetensors"))
    elsewhere = os.path.join(TMP, "elsewhere")
    for key, flag in (("tensorboard", "--tensorboard"), ("plots", "--plots"), ("cache_dir", "--cache")):
        tamper(ck3, lambda c: c["options"].update({key: elsewhere}))
        p = run("train", "--resume", ck3, "--quiet", ok=False)
        refused(p, 2, flag + " " + elsewhere, "outside the checkpoint's folder")
        assert not os.path.exists(elsewhere) and os.path.exists(ck3)
        tamper(ck3, lambda c: c["options"].pop(key))
    tamper(ck3, lambda c: c["options"].update(tensorboard=elsewhere))
    run("train", "--resume", ck3, "--quiet", "--tensorboard", elsewhere)  # given on the command line: written there
    assert listing(elsewhere), "no event file in --tensorboard given with --resume"


# ---------------------------------------------------------------- a checkpoint's running state (items 9, 6)

def edit_optimizer(path, fn):
    """fn(header, data: bytearray) edits an optimizer state file (safetensors) in place."""
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        head = json.loads(f.read(n))
        data = bytearray(f.read())
    fn(head, data)
    h = json.dumps(head).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + data)


def t_checkpoint_state():
    """Tampered running state is refused naming the field (exit 1, nothing written): correct_sum
    1e6, seen -8, stage 0/2/99/-1, step 1000 and 1e30; Adam moments swapped, NaN or negative; images
    added to the class folders since the interruption.  The untampered checkpoint still resumes."""
    folder_, ck = interrupted("state", "--fine-tune-epochs", 1, "--fine-tune-lr", 1e-4)
    pristine = os.path.join(TMP, "state_pristine")
    os.makedirs(pristine)
    before = listing(folder_)  # the checkpoint, its optimizer state, the history so far
    for ext in ("", ".optimizer"):
        shutil.copy(ck + ext, pristine)

    def restore():
        for ext in ("", ".optimizer"):
            shutil.copy(os.path.join(pristine, os.path.basename(ck) + ext), ck + ext)

    for key, value in (("correct_sum", 1e6), ("seen", -8), ("stage", 0), ("stage", 2), ("stage", 99), ("stage", -1),
                       ("step", 1000), ("step", 1e30), ("step", 2.5), ("loss_sum", -1), ("base_layers", 1e30)):
        restore()
        tamper(ck, lambda c: c.update({key: value}))
        p = run("train", "--resume", ck, "--quiet", ok=False)
        refused(p, 1, ck, '"%s"' % key if key != "base_layers" else "base_layers")
        assert listing(folder_) == before, listing(folder_)

    def first(h):  # the first trained tensor's Adam state: "<tensor>/m", "<tensor>/v"
        return next(k for k in h if k.endswith("/m"))[:-2]

    def swap(h, d):  # the first tensor's two moments (of one size) trade places
        t = first(h)
        a, b = h[t + "/m"]["data_offsets"], h[t + "/v"]["data_offsets"]
        h[t + "/m"]["data_offsets"], h[t + "/v"]["data_offsets"] = b, a

    def poke(value):
        def f(h, d):
            off = h[first(h) + "/v"]["data_offsets"][0]
            d[off:off + 4] = struct.pack("<f", value)
        return f

    for what, fn in (("swapped", swap), ("nan", poke(float("nan"))), ("negative", poke(-1.0))):
        restore()
        edit_optimizer(ck + ".optimizer", fn)
        p = run("train", "--resume", ck, "--quiet", ok=False)
        refused(p, 1, ck + ".optimizer", "state \"")
        assert listing(folder_) == before, (what, listing(folder_))
    restore()
    data = checkpoint_meta(ck)["options"]["data"]
    shutil.copy(os.path.join(data, "cats", "img000.ppm"), os.path.join(data, "cats", "new.ppm"))
    p = run("train", "--resume", ck, "--quiet", ok=False)
    refused(p, 1, "not those of the interrupted run", "13 training images")
    os.remove(os.path.join(data, "cats", "new.ppm"))
    run("train", "--resume", ck, "--quiet")
    assert "m.safetensors" in listing(folder_) and not os.path.exists(ck)


def t_checkpoint_property():
    """Property test of resuming (bounded: 40 tampered checkpoints or 40 s, seeded): one field of
    the running state or of the recorded options set to a hostile value (huge, negative, fraction,
    wrong type, missing) -- every resume exits 0, 1 or 2, never crashes (no sanitizer report in the
    sanitizer build), fails with a message naming the checkpoint, and when it succeeds writes a
    model that loads."""
    import random
    import time
    rnd = random.Random(24)
    folder_, ck = interrupted("prop")
    pristine = os.path.join(TMP, "prop_pristine")
    os.makedirs(pristine)
    for ext in ("", ".optimizer"):
        shutil.copy(ck + ext, pristine)
    meta = checkpoint_meta(ck)
    keys = [k for k in meta if k not in ("options", "settings", "history")]
    okeys = sorted(meta["options"])
    values = (-1, 0, 1, 2, 3, 7, 2.5, 1e30, -1e30, 1e308, 2 ** 31, 2 ** 63, "x", "", None, [], {}, True, "DELETE")
    t0, n, outcomes = time.time(), 0, {}
    while n < 40 and time.time() - t0 < 40:
        n += 1
        for ext in ("", ".optimizer"):
            shutil.copy(os.path.join(pristine, os.path.basename(ck) + ext), ck + ext)
        opt = rnd.random() < 0.5
        key, value = rnd.choice(okeys if opt else keys), rnd.choice(values)

        def edit(c):
            d = c["options"] if opt else c
            if value == "DELETE":
                d.pop(key, None)
            else:
                d[key] = value
        tamper(ck, edit)
        p = run("train", "--resume", ck, "--quiet", ok=False)
        what = "%s%s=%r: exit %d: %s" % ("options." if opt else "", key, value, p.returncode, p.stderr[-600:])
        assert p.returncode in (0, 1, 2), what
        assert "runtime error" not in p.stderr and "Sanitizer" not in p.stderr and "Traceback" not in p.stderr, what
        if p.returncode:
            assert p.stderr.strip(), what
        else:
            run("summary", os.path.join(folder_, "m.safetensors"))
        outcomes[p.returncode] = outcomes.get(p.returncode, 0) + 1
    print("  %d tampered checkpoints in %.1f s: exit statuses %s" % (n, time.time() - t0, outcomes))


def t_checkpoint_messages():
    """Messages that name what is wrong (item 11): metadata that is not JSON, a model that is no
    checkpoint, recorded options out of range or not whole (blamed on the file, not on a flag the
    user never typed), classes that differ (both lists named)."""
    folder_, ck = interrupted("msgs")
    keep = ck + ".pristine"
    shutil.copy(ck, keep)

    def set_meta(value):
        with open(keep, "rb") as f:
            n = struct.unpack("<Q", f.read(8))[0]
            head = json.loads(f.read(n))
            rest = f.read()
        head["__metadata__"]["vkrun_checkpoint"] = value
        h = json.dumps(head).encode()
        h += b" " * (-len(h) % 8)
        with open(ck, "wb") as f:
            f.write(struct.pack("<Q", len(h)) + h + rest)

    set_meta("{not json")
    refused(run("train", "--resume", ck, ok=False), 2, ck, "not a JSON object")
    model = os.path.join(TMP, "msgs_model.safetensors")
    run(*train_args(folder("msgs_m"), model, "--epochs", 1))
    refused(run("train", "--resume", model, ok=False), 2, "is a model file but not a checkpoint")
    for key, value, words in (("batch", -5, ("recorded options are invalid", "batch > 0")),
                              ("epochs", 1e30, ('recorded option "epochs" is malformed',)),
                              ("lr", "fast", ('recorded option "lr" is malformed',))):
        shutil.copy(keep, ck)
        tamper(ck, lambda c: c["options"].update({key: value}))
        p = run("train", "--resume", ck, ok=False)
        refused(p, 1, ck, *words)
        assert "here" not in p.stderr and "--%s differs" % key not in p.stderr, p.stderr
    shutil.copy(keep, ck)
    other = folder("msgs_other", classes=("ants", "bees"))
    tamper(ck, lambda c: c["options"].update(data=other))
    refused(run("train", "--resume", ck, ok=False), 1, "trained on the classes (cats, dogs)", "has (ants, bees)")


def t_folders():
    """`predict DIR` follows symbolically linked subfolders as evaluate and train follow class
    folders; a class whose images lie more than 32 folders deep says so instead of "contains no
    images" alone."""
    real = folder("linked_real")
    d = os.path.join(TMP, "linked")
    os.makedirs(d)
    for c in ("cats", "dogs"):
        os.symlink(os.path.join(real, c), os.path.join(d, c))
    model = os.path.join(TMP, "linked_model.safetensors")
    run(*train_args(d, model, "--epochs", 1))
    p = run("predict", model, d)
    assert p.stdout.count(".ppm") == 12, p.stdout
    e = run("evaluate", model, "--data", d)
    assert "12 images" in e.stdout, e.stdout
    deep = folder("deep")
    shutil.rmtree(os.path.join(deep, "dogs"))
    leaf = os.path.join(deep, "dogs", *(["d"] * 33))
    os.makedirs(leaf)
    shutil.copy(os.path.join(deep, "cats", "img000.ppm"), leaf)
    p = run(*train_args(deep, os.path.join(TMP, "deep_out.safetensors")), ok=False)
    refused(p, 1, "contains no images", "nested deeper than 32 levels")


# ---------------------------------------------------------------- diverging training (item 6)

def t_diverging():
    """Training that turns the loss or the weights non-finite stops with exit 1 and a message naming
    the epoch: --lr 1e30, --weight-decay 1e30, --class-weight cats=1e308,dogs=1e308 in the first
    epoch (no model written); --fine-tune-lr 1e30 after a finite head epoch (the head epoch's model
    is written, and `vkrun evaluate` loads it)."""
    d = folder("nan")
    for i, extra in enumerate((("--lr", 1e30), ("--weight-decay", 1e30), ("--class-weight", "cats=1e308,dogs=1e308"))):
        out = os.path.join(TMP, "nan%d" % i, "m.safetensors")
        p = run(*train_args(d, out, "--val", d, *extra), ok=False)
        refused(p, 1, "training diverged in head epoch 1/2", "was not written")
        assert not os.path.exists(out) and not os.path.exists(out + ".checkpoint"), listing(os.path.dirname(out))
    out = os.path.join(TMP, "nan_ft", "m.safetensors")
    p = run(*train_args(d, out, "--val", d, "--epochs", 1, "--fine-tune-epochs", 1, "--fine-tune-lr", 1e30), ok=False)
    refused(p, 1, "training diverged in fine-tune epoch 2/2", "holds the weights of epoch 1", "--fine-tune-lr")
    h = json.load(open(os.path.join(os.path.dirname(out), "m.history.json")))
    assert h["stage"] == ["head"] and h["loss"][0] is not None, h
    p = run("evaluate", out, "--data", d)
    assert "accuracy" in p.stdout, p.stdout


# ---------------------------------------------------------------- names printed escaped (item 4)

def t_escaped_names():
    """A model, layer and class names holding ESC [2J (clear screen), an OSC title sequence and a
    C1 CSI reach the terminal as \\xNN from summary, forward, train, predict and evaluate."""
    evil = "\x1b[2J\x1b]0;pwned\x07\u009b1m"
    arch = os.path.join(TMP, "evil.json")
    g = {"version": 1, "name": "tiny" + evil, "input": {"name": "in" + evil, "channels": 3, "height": 16, "width": 16,
                                                         "preprocess": "torch"},
         "layers": [{"name": "in" + evil, "type": "input"},
                    {"name": "c1" + evil, "type": "conv2d", "inputs": ["in" + evil], "filters": 4, "kernel": [3, 3],
                     "strides": [2, 2], "padding": "same", "use_bias": True, "activation": "relu"}]}
    with open(arch, "w") as f:
        json.dump(g, f)
    d = folder("evil", classes=("cats" + evil, "dogs"))
    out = os.path.join(TMP, "evil_out", "m.safetensors")
    x = os.path.join(TMP, "evil_x.npy")
    np.save(x, np.zeros((1, 3, 16, 16), np.float32))
    img = os.path.join(d, "cats" + evil, "img000.ppm")
    runs = [run("summary", arch), run("train", "--model", arch, "--data", d, "--out", out, "--batch", 4, "--head", "8", "--epochs", 1),
            run("summary", out), run("predict", out, img), run("evaluate", out, "--data", d, "--errors", 100),
            run("forward", out, "--input", x, "--output", os.path.join(TMP, "evil_z.npy"), "--layer", "c1" + evil)]
    for p in runs:
        both = p.stdout + p.stderr
        assert "\x1b" not in both and "\x07" not in both and "\u009b" not in both, repr(both[:3000])
        assert "\\x1b[2J\\x1b]0;pwned\\x07\\xc2\\x9b1m" in both, both[:3000]


# ---------------------------------------------------------------- outputs onto special files (item 3)

def t_special_outputs():
    """`train --out` and `forward --output` onto a FIFO (and, as root, a character device made
    here) are refused before any work: exit 1, the FIFO stays a FIFO, no history or plots beside it."""
    d = folder("special")
    out_dir = os.path.join(TMP, "special_out")
    os.makedirs(out_dir)
    fifo = os.path.join(out_dir, "m.safetensors")
    os.mkfifo(fifo)
    p = run(*train_args(d, fifo), ok=False)
    refused(p, 1, fifo, "FIFO", "not a regular file")
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode) and listing(out_dir) == ["m.safetensors"], listing(out_dir)
    if os.geteuid() == 0:
        dev = os.path.join(out_dir, "null")
        os.mknod(dev, 0o600 | stat.S_IFCHR, os.makedev(1, 3))
        p = run(*train_args(d, dev), ok=False)
        refused(p, 1, "character device")
        assert stat.S_ISCHR(os.lstat(dev).st_mode) and listing(out_dir) == ["m.safetensors", "null"]
    model = os.path.join(TMP, "special_model.safetensors")
    run(*train_args(d, model, "--epochs", 1))
    x = os.path.join(TMP, "special_x.npy")
    np.save(x, np.zeros((1, 3, 16, 16), np.float32))
    p = run("forward", model, "--input", x, "--output", fifo, ok=False)
    refused(p, 1, "FIFO")
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)


# ---------------------------------------------------------------- evaluate with nothing misclassified (item 5)

def t_evaluate_all_correct():
    """evaluate on a folder of which the model gets every image right (no misclassified list): the
    report, exit 0 (was: qsort of NULL, UBSan's 'null pointer passed as argument 1', rc 1)."""
    d = folder("allright")
    model = os.path.join(TMP, "allright_model", "m.safetensors")
    run(*train_args(d, model, "--epochs", 1))
    img = os.path.join(d, "cats", "img000.ppm")
    p = run("predict", model, img, "--json")
    cls = json.loads(p.stdout)[0]["top"][0]["class"]  # the model's answer: right by construction below
    one = os.path.join(TMP, "allright_one", cls)
    os.makedirs(one)
    shutil.copy(img, one)
    p = run("evaluate", model, "--data", os.path.dirname(one), ok=False)
    assert p.returncode == 0 and "runtime error" not in p.stderr, (p.returncode, p.stderr)
    assert "accuracy" in p.stdout and "1.0000" in p.stdout, p.stdout


# ---------------------------------------------------------------- option and environment values (item 10)

def t_option_values():
    """--lr-schedule step:99999999999999:0.5 (int overflow), VKRUN_DEVICES=',,x,,' and --epochs 0
    (with no fine-tuning: an untrained model) are refused, exit 2, nothing written;
    VKRUN_DEVICE_MEMORY_LIMIT=lots / -5 / 1K are refused naming the variable."""
    d = folder("opts")
    out = os.path.join(TMP, "opts_out", "m.safetensors")
    os.makedirs(os.path.dirname(out))
    p = run(*train_args(d, out, "--lr-schedule", "step:99999999999999:0.5"), ok=False)
    refused(p, 2, "--lr-schedule", "99999999999999")
    p = run(*train_args(d, out), env={"VKRUN_DEVICES": ",,x,,"}, ok=False)
    refused(p, 2, "VKRUN_DEVICES", ",,x,,")
    p = run(*train_args(d, out, "--epochs", 0), ok=False)
    refused(p, 2, "nothing to train")
    assert listing(os.path.dirname(out)) == [], listing(os.path.dirname(out))
    for v in ("lots", "-5", "1K"):
        p = run(*train_args(d, out), env={"VKRUN_DEVICE_MEMORY_LIMIT": v}, ok=False)
        refused(p, 1, "VKRUN_DEVICE_MEMORY_LIMIT=%s" % v, "MiB")
        assert listing(os.path.dirname(out)) == [], listing(os.path.dirname(out))


R.check("a checkpoint's recorded paths: rebased beside it or refused; a copy leaves the original", t_checkpoint_paths)
R.check("a checkpoint's running state and optimizer state validated; its images compared", t_checkpoint_state)
R.check("checkpoint messages name the file and the problem", t_checkpoint_messages)
R.check("property: tampered checkpoints resume cleanly or fail with a message", t_checkpoint_property)
R.check("predict follows linked folders as evaluate does; folders too deep are named", t_folders)
R.check("diverging training: exit 1 naming the epoch, the last finite model kept", t_diverging)
R.check("names from files printed with terminal sequences escaped", t_escaped_names)
R.check("train --out / forward --output onto a FIFO or a device: refused, nothing written", t_special_outputs)
R.check("evaluate with nothing misclassified: the report, exit 0", t_evaluate_all_correct)
R.check("option and environment values: overflow, empty device entries, --epochs 0, memory limit", t_option_values)
rc = R.finish()
shutil.rmtree(TMP, ignore_errors=True)
sys.exit(rc)
