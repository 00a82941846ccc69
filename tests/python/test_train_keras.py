#!/usr/bin/python3
"""`vkrun train` as a Keras user drives it (issue 13, data/logs/CLI half): augmentation flags,
split-looking folders, the last partial batch, Keras's history.json, resuming from a checkpoint
alone, did-you-mean, TensorBoard event files (read back by an independent reader written here).

  /usr/bin/python3 tests/python/test_train_keras.py --vkrun build/vkrun

Every check runs on small synthetic image folders and a tiny architecture (no ../shared).
"""

import json
import os
import re
import shutil
import struct
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _harness import ROOT, tiny_arch, vkrun_test_setup  # noqa: E402

import numpy as np  # noqa: E402

args, VKRUN, TMP, R = vkrun_test_setup("vkrun_test_keras_")


def run(*argv, env=None, ok=True):
    e = dict(os.environ)
    e.update(env or {})
    p = subprocess.run([VKRUN] + [str(a) for a in argv], capture_output=True, text=True, env=e)
    if ok and p.returncode != 0:
        raise AssertionError("vkrun %s failed (%d):\n%s\n%s" % (argv[0], p.returncode, p.stdout[-3000:], p.stderr[-3000:]))
    return p


def write_ppm(path, rng, w, h, tint):
    img = (rng.integers(0, 255, (h, w, 3)) * 0.5 + np.array(tint) * 0.5).astype(np.uint8)
    with open(path, "wb") as f:
        f.write(b"P6\n%d %d\n255\n" % (w, h) + img.tobytes())


def make_folder(name, classes, per_class, seed=1):
    rng = np.random.default_rng(seed)
    d = os.path.join(TMP, name)
    for ci, c in enumerate(classes):
        os.makedirs(os.path.join(d, c), exist_ok=True)
        for i in range(per_class):
            write_ppm(os.path.join(d, c, "img%03d.ppm" % i), rng, 40 + i % 7, 30 + i % 5,
                      (255 * (ci == 0), 255 * (ci == 1), 128))
    return d


def tiny():
    return tiny_arch(TMP, 8)


KERAS_KEYS = ("loss", "accuracy", "val_loss", "val_accuracy", "lr", "stage", "epoch_seconds")


def hist(d):
    """m.history.json (the history of d/m.safetensors): Keras's History.history, exactly these keys, one element per epoch."""
    with open(os.path.join(d, "m.history.json")) as f:
        h = json.load(f)
    assert sorted(h) == sorted(KERAS_KEYS) and len({len(h[k]) for k in KERAS_KEYS}) == 1, h
    return h


def safetensors_meta(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        return json.loads(f.read(n)).get("__metadata__", {})


def rewrite_meta(path, fn):
    """Rewrites a safetensors file's "__metadata__" with fn (the tensors' bytes untouched)."""
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        head = json.loads(f.read(n))
        rest = f.read()
    fn(head["__metadata__"])
    h = json.dumps(head).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + rest)


def t_resume_alone():
    """A checkpoint records its command: the Ctrl-C message's exact resume command, run from another
    folder, gives the uninterrupted run's history; a flag that differs from the checkpoint is refused
    naming both values; the same value is accepted.  A checkpoint of the older kind (no options,
    history as a list of epoch records) says to give the flags, and resumes when they are given."""
    d = make_folder("res", ["a", "b"], 9)
    args = ["--model", tiny(), "--data", d, "--val", d, "--batch", 4, "--head", "8", "--epochs", 2,
            "--fine-tune-epochs", 1, "--fine-tune-lr", 1e-4, "--seed", 5]
    ref = os.path.join(TMP, "res_ref", "m.safetensors")
    run("train", *args, "--out", ref)
    want = hist(os.path.dirname(ref))
    out = os.path.join(TMP, "res out's", "m.safetensors")  # a path that needs shell quoting
    p = run("train", *args, "--out", out, env={"VKRUN_TEST_SIGINT_AFTER": "7"}, ok=False)
    assert p.returncode == 130, p.stderr
    line = [l for l in p.stderr.splitlines() if "continue with: " in l]
    assert line, p.stderr
    import shlex
    cmd = shlex.split(line[0].split("continue with: ", 1)[1])
    assert cmd[:2] == ["vkrun", "train"] and cmd[2:] == ["--resume", out + ".checkpoint"], cmd
    bad = run("train", *cmd[2:], "--batch", 8, ok=False)
    assert bad.returncode == 2 and "--batch differs from the interrupted run (8 here, 4 in the checkpoint)" in \
        bad.stderr, bad.stderr
    bad = run("train", *cmd[2:], "--fine-tune-lr", 1e-3, ok=False)
    assert bad.returncode == 2 and "--fine-tune-lr differs" in bad.stderr, bad.stderr
    r = subprocess.run([VKRUN] + cmd[1:] + ["--batch", "4", "--quiet"], capture_output=True, text=True, cwd="/")
    assert r.returncode == 0, r.stderr
    got = hist(os.path.dirname(out))
    assert got == dict(want, epoch_seconds=got["epoch_seconds"]), (got, want)
    assert not os.path.exists(out + ".checkpoint")
    # the older kind of checkpoint
    p = run("train", *args, "--out", out, env={"VKRUN_TEST_SIGINT_AFTER": "7"}, ok=False)
    ck = out + ".checkpoint"

    def to_old(meta):
        c = json.loads(meta["vkrun_checkpoint"])
        del c["options"]
        h = c["history"]
        c["history"] = {"epochs": [{"epoch": i + 1, "stage": h["stage"][i], "loss": h["loss"][i],
                                    "accuracy": h["accuracy"][i], "val_loss": h["val_loss"][i],
                                    "val_accuracy": h["val_accuracy"][i], "seconds": h["epoch_seconds"][i],
                                    "images_per_s": h["images_per_s"][i]} for i in range(len(h["loss"]))],
                        "feature_cache_seconds": h["feature_cache_seconds"]}
        meta["vkrun_checkpoint"] = json.dumps(c)
    rewrite_meta(ck, to_old)
    p = run("train", "--resume", ck, ok=False)
    assert p.returncode == 2 and "did not record its options" in p.stderr and "original flags" in p.stderr, p.stderr
    run("train", *args, "--out", out, "--resume", ck)
    got = hist(os.path.dirname(out))
    assert got == dict(want, epoch_seconds=got["epoch_seconds"]), (got, want)
    print("  resumed from the checkpoint alone (cwd /): history equal to the uninterrupted run's")


# ---- an independent TensorBoard event-file reader (no project code, no tensorflow)

def crc32c(data):
    """CRC-32C, bit by bit (Castagnoli, reflected 0x82F63B78)."""
    c = 0xFFFFFFFF
    for b in data:
        c ^= b
        for _ in range(8):
            c = (c >> 1) ^ (0x82F63B78 if c & 1 else 0)
    return c ^ 0xFFFFFFFF


def masked_crc(data):
    c = crc32c(data)
    return (((c >> 15) | (c << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def pb_fields(buf):
    """(field number, wire type, value) of a protobuf message: varint -> int, 64-bit / 32-bit ->
    raw bytes, length-delimited -> bytes."""
    i, out = 0, []
    def varint():
        nonlocal i
        v, shift = 0, 0
        while True:
            b = buf[i]
            i += 1
            v |= (b & 0x7F) << shift
            shift += 7
            if not b & 0x80:
                return v
    while i < len(buf):
        key = varint()
        num, wt = key >> 3, key & 7
        if wt == 0:
            val = varint()
        elif wt == 1:
            val, i = buf[i:i + 8], i + 8
        elif wt == 5:
            val, i = buf[i:i + 4], i + 4
        elif wt == 2:
            n = varint()
            val, i = buf[i:i + n], i + n
        else:
            raise AssertionError("wire type %d" % wt)
        out.append((num, wt, val))
    assert i == len(buf), "message overran"
    return out


def read_events(path):
    """Every record's CRCs verified; the events as dicts {wall_time, step, file_version?, scalars}."""
    data = open(path, "rb").read()
    pos, events = 0, []
    while pos < len(data):
        head = data[pos:pos + 8]
        n = struct.unpack("<Q", head)[0]
        assert struct.unpack("<I", data[pos + 8:pos + 12])[0] == masked_crc(head), "length CRC at %d" % pos
        body = data[pos + 12:pos + 12 + n]
        assert len(body) == n and struct.unpack("<I", data[pos + 12 + n:pos + 16 + n])[0] == masked_crc(body), \
            "data CRC at %d" % pos
        pos += 16 + n
        ev = {"scalars": {}}
        for num, wt, val in pb_fields(body):
            if num == 1 and wt == 1:
                ev["wall_time"] = struct.unpack("<d", val)[0]
            elif num == 2 and wt == 0:
                ev["step"] = val
            elif num == 3 and wt == 2:
                ev["file_version"] = val.decode()
            elif num == 5 and wt == 2:
                for vn, vwt, v in pb_fields(val):
                    assert vn == 1 and vwt == 2, (vn, vwt)
                    f = dict(((a, b), c) for a, b, c in pb_fields(v))
                    ev["scalars"][f[(1, 2)].decode()] = struct.unpack("<f", f[(2, 5)])[0]
            else:
                raise AssertionError("unexpected Event field %d (wire type %d)" % (num, wt))
        events.append(ev)
    return events


def t_tensorboard():
    """--tensorboard DIR: events.out.tfevents.<time>.<host> whose every CRC checks out (reader above);
    the first event is the file version; per-epoch loss/accuracy/lr/val_* equal history.json (as
    float32), batch_loss every 3 steps at global steps, its last value in an epoch (step 6 of 6) the
    epoch's loss."""
    import socket
    import time
    assert crc32c(b"123456789") == 0xE3069283  # the reader's CRC-32C: the standard check value
    d = make_folder("tb", ["a", "b"], 12)
    out = os.path.join(TMP, "tb_out", "m.safetensors")
    logdir = os.path.join(TMP, "tb_logs")
    t0 = time.time()
    p = run("train", "--model", tiny(), "--data", d, "--val", d, "--out", out, "--batch", 4, "--head", "8",
            "--epochs", 2, "--fine-tune-epochs", 1, "--fine-tune-lr", 1e-4, "--val-every", 2, "--tensorboard", logdir,
            "--tensorboard-steps", 3)
    files = os.listdir(logdir)
    assert len(files) == 1 and files[0].startswith("events.out.tfevents."), files
    stamp, host = files[0][len("events.out.tfevents."):].split(".", 1)
    assert abs(int(stamp) - t0) < 60 and host == socket.gethostname(), files[0]
    assert "tensorboard --logdir" in p.stdout, p.stdout
    ev = read_events(os.path.join(logdir, files[0]))
    assert ev[0].get("file_version") == "brain.Event:2" and not ev[0]["scalars"], ev[0]
    assert all(abs(e["wall_time"] - t0) < 600 for e in ev), ev
    h = hist(os.path.dirname(out))
    f32 = lambda x: struct.unpack("<f", struct.pack("<f", x))[0]
    epochs = [e for e in ev if "loss" in e["scalars"]]
    assert [e["step"] for e in epochs] == [0, 1, 2], epochs
    for i, e in enumerate(epochs):
        sc = e["scalars"]
        for k in ("loss", "accuracy", "lr", "val_loss", "val_accuracy"):
            want = h[k][i]
            assert (k not in sc) if want is None else sc[k] == f32(want), (i, k, sc, want)
    batches = [e for e in ev if "batch_loss" in e["scalars"]]
    assert [e["step"] for e in batches] == [3, 6, 9, 12, 15, 18], [e["step"] for e in batches]
    for i in range(3):
        assert batches[2 * i + 1]["scalars"]["batch_loss"] == f32(h["loss"][i]), (i, batches, h["loss"])
    print("  %d records, CRCs verified; epoch scalars equal history.json" % len(ev))
    # interrupted and resumed: a second file; together the epochs 0..2 once each
    logdir2 = os.path.join(TMP, "tb_logs2")
    out2 = os.path.join(TMP, "tb_out2", "m.safetensors")
    argv = ["train", "--model", tiny(), "--data", d, "--out", out2, "--batch", 4, "--head", "8", "--epochs", 3,
            "--tensorboard", logdir2]
    p = run(*argv, env={"VKRUN_TEST_SIGINT_AFTER": "8"}, ok=False)
    time.sleep(1.1)
    # the log folder lies outside the checkpoint's: the resume command given names it (issue 24)
    line = [l for l in p.stderr.splitlines() if "continue with: " in l]
    want = "vkrun train --resume %s --tensorboard %s" % (out2 + ".checkpoint", logdir2)
    assert line and line[0].split("continue with: ", 1)[1] == want, p.stderr
    run(*want.split()[1:])
    files = sorted(os.listdir(logdir2))
    steps = sorted(e["step"] for f in files for e in read_events(os.path.join(logdir2, f)) if "loss" in e["scalars"])
    assert len(files) == 2 and steps == [0, 1, 2], (files, steps)


def t_bench_json():
    """vkrun bench MODEL --json and bench --op dense --json: the figures of the text output as JSON,
    checked against FLOPs counted here (conv 3->8 3x3/2 to 8x8: 2*8*8*8*27 per image; dense 8->4
    and 4->2) and against their own totals."""
    d = make_folder("bench", ["a", "b"], 4)
    model = os.path.join(TMP, "bench_out", "m.safetensors")
    run("train", "--model", tiny(), "--data", d, "--out", model, "--batch", 4, "--head", "4", "--epochs", 1)
    per_image = {"c1": 2 * 8 * 8 * 8 * 27, "global_average_pooling2d": 0, "dense": 2 * 8 * 4, "dense_1": 2 * 4 * 2}
    for extra in ((), ("--backward",)):
        j = json.loads(run("bench", model, "--batch", 3, "--iters", 2, "--json", *extra).stdout)
        txt = run("bench", model, "--batch", 3, "--iters", 1, *extra).stdout
        names = [l.split()[1] for l in txt.splitlines() if l[:5].strip().isdigit()]
        assert [l["name"] for l in j["layers"]] == names == list(per_image), (j["layers"], names)
        assert j["batch"] == 3 and j["iters"] == 2 and j["backward"] == bool(extra) and (j["height"], j["width"]) == (16, 16)
        for l in j["layers"]:
            want = 3 * per_image[l["name"]] / 1e9  # forward FLOPs of 3 images (a training step adds its backward)
            assert (abs(l["gflop"] - want) < 1e-15) if not extra else l["gflop"] >= want, (l, want)
            assert l["forward_ms"] >= 0 and (("backward_ms" in l) == bool(extra)), l
        fwd = 3 * sum(per_image.values()) / 1e9
        assert (abs(j["gflop_per_batch"] - fwd) < 1e-15) if not extra else j["gflop_per_batch"] > fwd, j
        assert abs(j["images_per_s"] - 3 / (j["wall_ms"] / 1e3)) < 1e-6 * j["images_per_s"], j
        assert abs(j["gflops"] - j["gflop_per_batch"] / (j["wall_ms"] / 1e3)) < 1e-9 * (1 + j["gflops"]), j
        assert j["dispatches"] > 0 and j["weights_mib"] >= 0 and (j["gpu_backward_ms"] is None) != bool(extra), j
    j = json.loads(run("bench", "--op", "dense", "--batch", 1, "--iters", 1, "--json").stdout)
    rows = j["results"]
    assert [(r["shape"], r["direction"]) for r in rows] == [(s_, d_) for s_ in ("2048->1024", "1024->1024")
                                                            for d_ in ("forward", "backward-data", "backward-weight")]
    for r in rows:
        c, k = (int(v) for v in r["shape"].split("->"))
        assert r["batch"] == 1 and r["ms"] > 0 and abs(r["gflops"] * r["ms"] * 1e6 - 2 * c * k) < 1e-6 * 2 * c * k, r
    print("  bench MODEL: %d layers; bench --op dense: %d rows, %.2f GFLOP/s forward 2048->1024" %
          (len(names), len(rows), rows[0]["gflops"]))


def t_augment():
    """--augment takes the full spec: a fixed seed gives the same losses, another augmentation other
    losses; the cache-off message comes once; --augment-fine-tune keeps the head's feature cache."""
    d = make_folder("aug", ["a", "b"], 10)
    base = ["train", "--model", tiny(), "--data", d, "--epochs", 2, "--batch", 4, "--head", "8", "--seed", 3]
    spec = "flip,rotate=20,zoom=0.2,shift=0.1,brightness=0.2,contrast=0.2,resized-crop"
    p1 = run(*base, "--out", os.path.join(TMP, "aug1", "m.safetensors"), "--augment", spec)
    p2 = run(*base, "--out", os.path.join(TMP, "aug2", "m.safetensors"), "--augment", spec)
    p3 = run(*base, "--out", os.path.join(TMP, "aug3", "m.safetensors"), "--augment", "flip")
    l1, l2, l3 = (hist(os.path.join(TMP, n))["loss"] for n in ("aug1", "aug2", "aug3"))
    assert l1 == l2, (l1, l2)
    assert l1 != l3, (l1, l3)
    assert p1.stdout.count("turns the feature cache off") == 1 and "--augment-fine-tune" in p1.stdout, p1.stdout
    assert "feature cache: off" in p1.stdout, p1.stdout
    p = run(*base, "--out", os.path.join(TMP, "aug4", "m.safetensors"), "--augment", "spin=3", ok=False)
    assert p.returncode == 2 and 'unknown item "spin=3"' in p.stderr and "rotate=DEG" in p.stderr, p.stderr
    p = run(*base, "--out", os.path.join(TMP, "aug5", "m.safetensors"), "--augment", "zoom=1.5", ok=False)
    assert p.returncode == 2 and "zoom" in p.stderr, p.stderr
    p = run(*base, "--out", os.path.join(TMP, "aug6", "m.safetensors"), "--augment", spec, "--augment-fine-tune",
            "--fine-tune-epochs", 1, "--fine-tune-lr", 1e-3)
    h = hist(os.path.join(TMP, "aug6"))
    assert "feature cache: in memory" in p.stdout and "cached pooled features" in p.stdout, p.stdout
    assert "turns the feature cache off" not in p.stdout and h["stage"] == ["head", "head", "fine-tune"], (p.stdout, h)
    # the seconds each epoch waited for the loader: on the epochs that ran the loader only, within the epoch
    for out, cached_epochs in ((p1.stdout, [False] * 2), (p.stdout, [True, True, False])):
        lines = [l for l in out.splitlines() if re.match(r"(head |fine-tune )?epoch \d+/\d+:", l)]
        assert len(lines) == len(cached_epochs), out
        for l, cached in zip(lines, cached_epochs):
            m = re.search(r" - ([0-9.]+) s \([0-9.]+ img/s(, ([0-9.]+) s waiting for images)?\)$", l)
            assert m and (m.group(2) is None) == cached, l
            assert cached or 0 <= float(m.group(3)) <= float(m.group(1)) + 0.05, l
    print("  losses %s (same seed twice) vs %s (flip only)" % (l1, l3))


def t_bench_loader():
    """bench --loader DIR: the loader's images/s without and with augmentation per thread count, as
    text and JSON; a missing folder is named."""
    d = make_folder("benchld", ["a", "b"], 6)
    j = json.loads(run("bench", "--loader", d, "--size", "16x16", "--batch", 4, "--epochs", 1, "--threads", 2,
                       "--augment", "rotate=10,flip", "--json").stdout)
    assert j["images"] == 12 and j["augment"] == "flip,rotate=10", j
    assert [r["threads"] for r in j["results"]] == [1, 2], j
    assert all(r["plain_images_per_s"] > 0 and r["augment_images_per_s"] > 0 for r in j["results"]), j
    txt = run("bench", "--loader", d, "--size", "16x16", "--epochs", 1, "--threads", 1).stdout
    rows = [l.split() for l in txt.splitlines() if l.split() and l.split()[0].isdigit()]
    assert len(rows) == 1 and rows[0][0] == "1" and float(rows[0][1]) > 0, txt
    p = run("bench", "--loader", os.path.join(TMP, "no_such_folder"), ok=False)
    assert p.returncode == 1 and "no_such_folder" in p.stderr, p.stderr
    print("  %s" % j["results"])


def t_augment_checkpoint_compat():
    """A flip,crop run's checkpoint records augment=6, as checkpoints always did (VKR_LOAD_FLIP |
    VKR_LOAD_CROP), and resumes; a richer spec is recorded by name."""
    d = make_folder("augck", ["a", "b"], 8)
    out = os.path.join(TMP, "augck_out", "m.safetensors")
    argv = ["train", "--model", tiny(), "--data", d, "--out", out, "--epochs", 2, "--batch", 4, "--head", "8",
            "--augment", "flip,crop"]
    p = run(*argv, env={"VKRUN_TEST_SIGINT_AFTER": "3"}, ok=False)
    assert p.returncode == 130, (p.returncode, p.stderr)
    settings = json.loads(safetensors_meta(out + ".checkpoint")["vkrun_checkpoint"])["settings"]
    assert " augment=6 " in settings, settings
    run(*argv, "--resume", out + ".checkpoint")
    assert len(hist(os.path.dirname(out))["loss"]) == 2
    p = run(*argv[:-1], "rotate=5,flip", env={"VKRUN_TEST_SIGINT_AFTER": "3"}, ok=False)
    settings = json.loads(safetensors_meta(out + ".checkpoint")["vkrun_checkpoint"])["settings"]
    assert " augment=flip,rotate=5 " in settings, settings


def t_split_folders():
    """--data DIR holding train/ and val/ is refused with the fix; --split-folders-as-classes trains
    on them as two classes."""
    d = os.path.join(TMP, "splitds")
    make_folder(os.path.join("splitds", "train"), ["a", "b"], 4)
    make_folder(os.path.join("splitds", "val"), ["a", "b"], 4)
    out = os.path.join(TMP, "split_out", "m.safetensors")
    p = run("train", "--model", tiny(), "--data", d, "--out", out, "--batch", 4, ok=False)
    assert p.returncode == 1 and "already split" in p.stderr and "--split-folders-as-classes" in p.stderr and \
        "'%s/train'" % d in p.stderr, p.stderr
    assert not os.path.exists(out)
    p = run("train", "--model", tiny(), "--data", d, "--out", out, "--batch", 4, "--epochs", 1, "--head", "4",
            "--split-folders-as-classes")
    assert "2 classes (train: 8, val: 8)" in p.stdout, p.stdout
    print("  " + [l for l in run("train", "--model", tiny(), "--data", d, "--out", out, ok=False).stderr.splitlines()
                  if "split" in l][0][:150] + " ...")


def t_remainder_and_history():
    """22 images at batch 4: 6 steps an epoch by default (the last batch of 2 kept, as Keras), 5 with
    --drop-remainder; the accuracy is counted out of 22.  history.json is Keras's dict of lists
    (null where not validated, lr per epoch, stages) and agrees with history.csv."""
    d = make_folder("rem", ["a", "b"], 11)
    base = ["train", "--model", tiny(), "--data", d, "--val", d, "--batch", 4, "--head", "8", "--epochs", 2]
    out = os.path.join(TMP, "rem_out", "m.safetensors")
    for extra, steps in (((), 6), (("--drop-remainder",), 5), (("--keep-remainder",), 6)):
        p = run(*base, "--out", out, *extra, env={"VKRUN_TEST_SIGINT_AFTER": "1"}, ok=False)
        assert p.returncode == 130 and "step 1/%d;" % steps in p.stderr, (extra, p.stderr)
        os.remove(out + ".checkpoint")
    run(*base, "--out", out, "--val-every", 2, "--fine-tune-epochs", 1, "--fine-tune-lr", 2e-4)
    h = hist(os.path.dirname(out))
    assert h["stage"] == ["head", "head", "fine-tune"] and h["lr"] == [1e-3, 1e-3, 2e-4], h
    assert h["val_loss"][0] is None and h["val_accuracy"][0] is None and None not in h["val_loss"][1:], h
    assert all(abs(a * 22 - round(a * 22)) < 1e-9 for a in h["accuracy"]), h["accuracy"]  # out of 22 images
    assert all(s > 0 for s in h["epoch_seconds"]), h
    rows = [l.split(",") for l in open(os.path.join(os.path.dirname(out), "m.history.csv")).read().split()[1:]]
    assert [float(r[2]) for r in rows] == [round(v, 6) for v in h["loss"]] and [float(r[7]) for r in rows] == h["lr"]
    p = run("train", "--model", tiny(), "--data", d, "--batch", 32, "--out", out, "--drop-remainder", ok=False)
    assert p.returncode == 1 and "make no batch of 32" in p.stderr and "--drop-remainder" in p.stderr, p.stderr


def png_pixels(path):
    from PIL import Image
    return np.asarray(Image.open(path).convert("RGB"))


def marker_columns(px):
    m = np.all(px[150:350] == (0x55, 0x55, 0x55), axis=2).mean(axis=0)
    return np.nonzero(m >= 0.5)[0].tolist()


def t_plot_marks_fine_tuning():
    """accuracy.png and loss.png mark where fine-tuning starts with a dashed line (2 px); a run
    without fine-tuning has none."""
    d = os.path.join(TMP, "rem_out")
    if not os.path.exists(os.path.join(d, "m.history.json")):
        raise AssertionError("needs the run of the remainder check")
    for name in ("m.accuracy.png", "m.loss.png"):
        cols = marker_columns(png_pixels(os.path.join(d, name)))
        assert len(cols) == 2 and cols[1] == cols[0] + 1, (name, cols)
    data = make_folder("nomark", ["a", "b"], 4)
    out = os.path.join(TMP, "nomark_out", "m.safetensors")
    run("train", "--model", tiny(), "--data", data, "--batch", 4, "--head", "4", "--epochs", 2, "--out", out)
    assert marker_columns(png_pixels(os.path.join(TMP, "nomark_out", "m.loss.png"))) == []


def t_caching_progress():
    """On a terminal, the feature-caching bar shows images done and img/s, never "loss nan"."""
    import pty
    d = make_folder("prog", ["a", "b"], 6)
    out = os.path.join(TMP, "prog_out", "m.safetensors")
    master, slave = pty.openpty()
    p = subprocess.Popen([VKRUN, "train", "--model", tiny(), "--data", d, "--batch", "4", "--head", "4", "--epochs", "1",
                          "--out", out], stdout=slave, stderr=subprocess.PIPE)
    os.close(slave)
    buf = b""
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:
            break
        if not chunk:
            break
        buf += chunk
    p.wait()
    os.close(master)
    txt = buf.decode("utf-8", "replace")
    bars = [l for l in txt.replace("\r", "\n").splitlines() if l.startswith("features train [")]
    assert p.returncode == 0 and bars, txt
    assert "nan" not in txt and all(" images " in b and "img/s" in b for b in bars), bars
    assert "12/12 images" in txt, bars
    print("  " + bars[-1].strip())


def t_did_you_mean():
    """Every command suggests its closest flag for a typo (edit distance <= 2, a longer spelling of a
    flag, a Keras/PyTorch name), says when a known flag lacks its value, and exits 2."""
    cases = [(("train", "--batch-size", 8), "did you mean --batch?"),
             (("train", "--learning-rate", 0.1), "did you mean --lr?"),
             (("train", "--epoch", 3), "did you mean --epochs?"),
             (("train", "--val_split", 0.2), "did you mean --val-split?"),
             (("train", "--fine-tune-epoch", 2), "did you mean --fine-tune-epochs?"),
             (("train", "--batch"), "option --batch needs a value"),
             (("evaluate", "m", "--bach", 3), "did you mean --batch?"),
             (("predict", "m", "--jsn"), "did you mean --json?"),
             (("devices", "--jsn"), "did you mean --json?"),
             (("bench", "--op", "dense", "--iter", 3), "did you mean --iters?"),
             (("bench", "m", "--bakward"), "did you mean --backward?"),
             (("selftest", "--lst"), "did you mean --list?"),
             (("forward", "m", "--inptu", "x"), "did you mean --input?"),
             (("summary", "m", "--heigth", 9), "did you mean --height?"),
             # issue 31: a word that extends a flag, another form of bench, evaluate's --data
             (("train", "--augmentation", "flip"), "did you mean --augment?"),
             (("bench", "--loaders", "d"), "did you mean --loader?"),
             (("evaluate", "m", "--val", "d"), "did you mean --data?")]
    for argv, want in cases:
        p = run(*argv, ok=False)
        assert p.returncode == 2 and want in p.stderr and ("vkrun %s:" % argv[0]) in p.stderr, (argv, p.stderr)
    p = run("train", "--frobnicate", ok=False)
    assert p.returncode == 2 and "unknown option --frobnicate (see" in p.stderr and "did you mean" not in p.stderr, p.stderr
    for typo, cmd in (("trian", "train"), ("evalute", "evaluate"), ("predcit", "predict"), ("bnech", "bench")):
        p = run(typo, ok=False)
        assert p.returncode == 2 and 'unknown command "%s"; did you mean "%s"?' % (typo, cmd) in p.stderr, p.stderr
    p = run("frobnicate", ok=False)
    assert p.returncode == 2 and "did you mean" not in p.stderr and "commands:" in p.stderr, p.stderr


def t_version():
    """vkrun --version: vkrun's version and git commit, the loader's Vulkan version, each device's driver
    (the same as vkrun devices --json says)."""
    out = run("--version").stdout.splitlines()
    m = re.match(r"vkrun (\d+\.\d+\.\d+) \(git ([0-9a-f]{7}(\+changes)?|unknown)\)$", out[0])
    assert m, out
    git = subprocess.run(["git", "-C", ROOT, "rev-parse", "--short=7", "HEAD"], capture_output=True, text=True)
    if git.returncode == 0 and m.group(2) != "unknown":  # a build of this checkout names one of its commits
        commit = m.group(2).split("+")[0]  # HEAD itself when built after the last commit
        anc = subprocess.run(["git", "-C", ROOT, "merge-base", "--is-ancestor", commit, "HEAD"], capture_output=True)
        assert anc.returncode == 0, "vkrun --version names %s, not a commit of this checkout (HEAD %s)" % (
            m.group(2), git.stdout.strip())
    assert re.match(r"Vulkan loader: 1\.\d+\.\d+$", out[1]), out
    devs = json.loads(run("devices", "--json").stdout)
    want = ["device [%d] %s: driver %s %s, Vulkan %s" % (d["index"], d["name"], d["driver_name"], d["driver_info"],
                                                         d["api_version"]) for d in devs]
    assert out[2:] == want, (out, want)


def t_evaluate_split_message():
    """evaluate on a folder holding train/ and val/ names the split to evaluate on and evaluate's own command
    (it said "train on .../train" before); --split-folders-as-classes accepts the folders as classes."""
    d = os.path.join(TMP, "presplit_eval")
    for split in ("train", "val"):
        make_folder(os.path.join("presplit_eval", split), ["a", "b"], 2)
    model = os.path.join(TMP, "presplit_model", "m.safetensors")
    run("train", "--model", tiny(), "--data", os.path.join(d, "train"), "--out", model, "--batch", 4, "--head", "8",
        "--epochs", 1)
    p = run("evaluate", model, "--data", d, ok=False)
    assert p.returncode != 0 and "vkrun evaluate MODEL --data '%s/val'" % d in p.stderr, p.stderr
    p = run("evaluate", model, "--data", d, "--split-folders-as-classes", ok=False)
    assert "already split" not in p.stderr, p.stderr


def t_two_models_one_folder():
    """Two models trained into one folder keep their own history and curves (named after the model:
    a.history.json, b.loss.png, ...; the names were fixed before, and the second run overwrote them)."""
    d = make_folder("two_models", ["a", "b"], 4)
    out = os.path.join(TMP, "two_models_out")
    for name, epochs in (("a", 1), ("b", 2)):
        run("train", "--model", tiny(), "--data", d, "--out", os.path.join(out, name + ".safetensors"), "--batch", 4,
            "--head", "8", "--epochs", epochs)
    for name, epochs in (("a", 1), ("b", 2)):
        with open(os.path.join(out, name + ".history.json")) as f:
            assert len(json.load(f)["loss"]) == epochs, name
        rows = open(os.path.join(out, name + ".history.csv")).read().split()[1:]
        assert len(rows) == epochs, (name, rows)
        for png in ("accuracy", "loss"):
            assert os.path.getsize(os.path.join(out, "%s.%s.png" % (name, png))) > 0
    assert not os.path.exists(os.path.join(out, "history.json"))


def t_tensorboard_global_steps():
    """--tensorboard-steps N counts steps over the whole run, as Keras: 7 steps an epoch, N = 10 -> batch
    scalars at global steps 10 and 20 of 21 (none were written before: the count restarted each epoch)."""
    d = make_folder("tb7", ["a", "b"], 14)
    logdir = os.path.join(TMP, "tb7_logs")
    run("train", "--model", tiny(), "--data", d, "--out", os.path.join(TMP, "tb7_out", "m.safetensors"), "--batch", 4,
        "--head", "8", "--epochs", 3, "--tensorboard", logdir, "--tensorboard-steps", 10)
    files = os.listdir(logdir)
    ev = read_events(os.path.join(logdir, files[0]))
    steps = [e["step"] for e in ev if "batch_loss" in e["scalars"]]
    assert steps == [10, 20], steps


R.check("--augment SPEC: seeded, the cache-off message once; --augment-fine-tune caches the head", t_augment)
R.check("flip,crop checkpoints record augment=6 as before and resume", t_augment_checkpoint_compat)
R.check("--data with train/ and val/ refused with the fix; --split-folders-as-classes", t_split_folders)
R.check("the last partial batch is kept by default (--drop-remainder); history.json as Keras", t_remainder_and_history)
R.check("accuracy.png / loss.png mark where fine-tuning starts", t_plot_marks_fine_tuning)
R.check("the feature-caching progress bar: images and img/s, no loss nan", t_caching_progress)
R.check("--resume CHECKPOINT alone; the Ctrl-C message's command; mismatched flags refused", t_resume_alone)
R.check("--tensorboard: event files pass an independent reader (CRCs, protobuf) and equal history.json", t_tensorboard)
R.check("bench --json: the figures as JSON, FLOPs against a count made here", t_bench_json)
R.check("bench --loader: the loader's images/s, plain and augmented, per thread count", t_bench_loader)
R.check("did-you-mean for unknown flags of every command, and for commands", t_did_you_mean)
R.check("vkrun --version: version, commit, loader, drivers", t_version)
R.check("evaluate on an already split folder names evaluate's command", t_evaluate_split_message)
R.check("--tensorboard-steps counts steps over the whole run", t_tensorboard_global_steps)
R.check("two models in one folder keep their own history and curves", t_two_models_one_folder)
shutil.rmtree(TMP, ignore_errors=True)
sys.exit(R.finish())
