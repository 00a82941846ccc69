#!/usr/bin/python3
"""vkrun vs PyTorch CPU, side by side on the same work in one run (issue 25's table).

  /usr/bin/python3 tools/bench_torch.py [--build build] [--threads N] [--reps R] [--rows 1,2,3,4]
                                        [--data DIR] [--quick] [--json] [--table-from FILE]

Rows (each ratio is vkrun / PyTorch: above 1 means vkrun is slower, or for row 4 has the lower
images/s; the ratio is always "how many times PyTorch's speed"):
  1. ResNet50 fp32 forward per image: (wall of batch 9 - wall of batch 1) / 8; vkrun: `vkrun
     forward` of a torchvision-layout ResNet50 with random weights (tools/make_synthetic.py);
     PyTorch: torchvision resnet50, eval mode, the same input.
  2. training step at batch 8, all layers trainable, BN in inference mode: `vkrun bench MODEL
     --batch 8 --backward --freeze 0` (its median wall_ms) vs torchvision resnet50 in eval mode,
     requires_grad everywhere, forward + cross-entropy + backward + Adam step.
  3. the tutorial job: Keras-layout ResNet50 base (random weights) + GAP + Dense(1024, 1024, 1024,
     512, relu) + Dense(2, softmax) on DATA/{train,val} (default ../shared/data/cats_dogs), features
     cached, head trained 5 epochs at batch 32 with Adam: `vkrun train` wall vs the same in PyTorch
     (decode + resize + caffe preprocessing, features once, head 5 epochs, validation each epoch).
     Skipped (with a line saying so) when DATA is absent.
  4. the offline demo network (weights/fashion_resnet.json) trained from scratch as
     tools/demo_fashion.sh does (--head 128 --freeze 0 --bn-train --batch 16) on Fashion-MNIST
     images exported by build/export_fashion_mnist: images/s of the last epoch, vkrun train
     (model.history.csv) vs the same graph in PyTorch (tools/torch_ref.VkrunNet, BN in training mode).

Each side is warmed up, then the two sides run alternately R times (interleaved, so machine
noise hits both) and the median is reported; a PyTorch sample of rows 1 and 2 is itself the
median of 3 consecutive calls.  Row 3 has no warm-up run (each run takes tens of seconds). vkrun runs with LP_NUM_THREADS=N (llvmpipe's
threads) and PyTorch with torch.set_num_threads(N), N = --threads (default: nproc).
--quick: one repetition at small sizes (forward 112x112, else 64x64 images, training step at
batch 2, few photos, one epoch): a smoke run for
ctest bench_torch_smoke, whose figures are not the benchmark's.
--json: a JSON object on stdout ({"machine", "config", "rows": [{"row", "work", "unit",
"vkrun", "torch", "ratio", "vkrun_samples", "torch_samples", ...}]}) instead of the table.
Exit status 77 when torch (or torchvision) cannot be imported.
"""

import argparse
import json
import math
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

TOOLS = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(TOOLS)
sys.path.insert(0, TOOLS)
import vkrun_model as vm  # noqa: E402



def _omp_wait_policy():
    """--omp-wait auto|active|passive, applied before torch loads libgomp (it reads the variable
    once): auto sets OMP_WAIT_POLICY=PASSIVE when the 1-minute load average exceeds the cores, since
    spinning OpenMP threads on an oversubscribed machine made PyTorch's ResNet50 several times slower
    than with passive waiting (2 cores, load 7: 1.0 s vs 0.25 s per 64x64 forward); a quiet machine
    keeps PyTorch's default (active) unless told; --quick is always passive. Returns the policy PyTorch runs under."""
    mode = "auto"
    for i, v in enumerate(sys.argv):
        if v == "--omp-wait" and i + 1 < len(sys.argv):
            mode = sys.argv[i + 1]
        elif v.startswith("--omp-wait="):
            mode = v.split("=", 1)[1]
    if "OMP_WAIT_POLICY" in os.environ:
        return os.environ["OMP_WAIT_POLICY"] + " (from the environment)"
    given = mode
    if mode == "auto":  # --quick (the ctest) always: its tiny PyTorch timings must not drown in spinning
        mode = "passive" if "--quick" in sys.argv or os.getloadavg()[0] > (os.cpu_count() or 1) else "active"
    if mode == "passive":
        os.environ["OMP_WAIT_POLICY"] = "PASSIVE"
    # active is PyTorch's default: nothing to set
    return "%s (--omp-wait %s, load %.2f)" % (mode.upper() if mode == "passive" else "default", given,
                                             os.getloadavg()[0])


OMP_WAIT = _omp_wait_policy()

try:
    import torch
    import torch.nn as nn
    import torch.nn.functional as F
    import torchvision
except ImportError as e:  # the ctest turns this into a skip
    print("bench_torch: SKIP: PyTorch/torchvision not importable (%s); run with Debian's /usr/bin/python3 "
          "and python3-torch, python3-torchvision" % e, file=sys.stderr)
    sys.exit(77)

CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)
HEAD_UNITS = (1024, 1024, 1024, 512)


def log(*a):
    print(*a, file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- timing helpers

class Runner:
    def __init__(self, args):
        self.vkrun = os.path.join(args.build, "vkrun")
        self.env = dict(os.environ, LP_NUM_THREADS=str(args.threads))

    def run(self, argv):
        """Runs vkrun ARGV; returns (wall seconds, stdout)."""
        t0 = time.perf_counter()
        p = subprocess.run([self.vkrun] + argv, env=self.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           universal_newlines=True)
        dt = time.perf_counter() - t0
        if p.returncode != 0:
            raise RuntimeError("vkrun %s failed (%d):\n%s%s" % (" ".join(argv), p.returncode, p.stdout[-2000:],
                                                               p.stderr[-2000:]))
        return dt, p.stdout


def timed(fn, k=1):
    """Median wall seconds of k consecutive calls of fn (PyTorch runs in this process, so a
    sample can afford k > 1; a vkrun sample is one process)."""
    ts = []
    for _ in range(k):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return statistics.median(ts)


def interleave(reps, vk, th):
    """Alternates vk() and th() (each returns one sample, in seconds) reps times, swapping which
    goes first every repetition; returns the two sample lists."""
    a, b = [], []
    for r in range(reps):
        if r % 2 == 0:
            a.append(vk())
            b.append(th())
        else:
            b.append(th())
            a.append(vk())
        log("  rep %d/%d: vkrun %s, torch %s" % (r + 1, reps, fmt_list(a[-1]), fmt_list(b[-1])))
    return a, b


def fmt_list(x):
    return "%.3f" % x if isinstance(x, float) else "(" + ", ".join("%.3f" % v for v in x) + ")"


def row(num, work, unit, vk_samples, th_samples, vk_value, th_value, lower_is_better=True, **extra):
    ratio = (vk_value / th_value if lower_is_better else th_value / vk_value) if vk_value > 0 and th_value > 0 \
        else float("nan")
    d = {"row": num, "work": work, "unit": unit, "vkrun": vk_value, "torch": th_value, "ratio": ratio,
         "vkrun_samples": vk_samples, "torch_samples": th_samples}
    d.update(extra)
    return d


# --------------------------------------------------------------------------- models

def tv_resnet50():
    return torchvision.models.resnet50()  # random weights (the default initialization)


def write_vkrun_model(path, arch, seed=0):
    if not os.path.exists(path):
        g = arch()
        g["source"] += " (random weights, seed %d)" % seed
        vm.write_model(path, g, vm.random_tensors(g, seed))
    return path


# --------------------------------------------------------------------------- row 1: forward

def row_forward(a, R, work):
    size = 112 if a.quick else a.size  # 64x64: PyTorch's 8 extra images drown in a loaded machine's noise
    model = write_vkrun_model(os.path.join(work, "resnet50_tv.safetensors"), vm.torchvision_resnet50)
    rng = np.random.default_rng(1)
    x9 = rng.standard_normal((9, 3, size, size)).astype(np.float32)
    paths = {}
    for b in (1, 9):
        paths[b] = os.path.join(work, "x%d.npy" % b)
        np.save(paths[b], x9[:b])
    out = os.path.join(work, "y.npy")
    net = tv_resnet50().eval()
    xt = {b: torch.from_numpy(x9[:b].copy()) for b in (1, 9)}

    def vk():
        return tuple(R.run(["forward", model, "--input", paths[b], "--output", out])[0] for b in (1, 9))

    def th():
        with torch.no_grad():
            return tuple(timed(lambda: net(xt[b]), 3) for b in (1, 9))

    log("row 1: forward, %dx%d, batch 1 and 9" % (size, size))
    vk()  # warm-up: page cache, oneDNN primitives
    th()
    vs, ts = interleave(a.reps, vk, th)

    # --quick (a smoke run of one repetition): batch 9 / 9, since at smoke sizes PyTorch's 8 extra images
    # are within the noise of one run (CI measured batch 9 faster than batch 1); else (9 - 1) / 8
    def per_image(samples):
        b9 = statistics.median(s[1] for s in samples)
        return b9 / 9 if a.quick else (b9 - statistics.median(s[0] for s in samples)) / 8

    how = "batch 9 / 9, --quick" if a.quick else "(batch 9 - batch 1) / 8"
    return row(1, "ResNet50 %dx%d fp32 forward per image (%s, wall)" % (size, size, how), "ms",
               vs, ts, 1e3 * per_image(vs), 1e3 * per_image(ts))


# --------------------------------------------------------------------------- row 2: training step

def row_train_step(a, R, work):
    size, batch = a.size, a.step_batch
    model = write_vkrun_model(os.path.join(work, "resnet50_tv.safetensors"), vm.torchvision_resnet50)
    net = tv_resnet50().eval()  # BN in inference mode; every parameter requires grad
    opt = torch.optim.Adam(net.parameters(), lr=1e-4)
    g = torch.Generator().manual_seed(2)
    x = torch.randn(batch, 3, size, size, generator=g)
    y = torch.randint(0, 1000, (batch,), generator=g)
    last = {}

    def step():
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(net(x), y)
        loss.backward()
        opt.step()

    def vk():
        _, out = R.run(["bench", model, "--batch", str(batch), "--backward", "--freeze", "0", "--iters", "1",
                        "--height", str(size), "--width", str(size), "--json"])
        d = json.loads(out)
        last.update({k: d[k] for k in ("gpu_forward_ms", "gpu_backward_ms", "gpu_update_ms", "dispatches",
                                       "gflops") if k in d})
        return d["wall_ms"] / 1e3

    def th():
        return timed(step, 3)

    log("row 2: training step, batch %d, %dx%d" % (batch, size, size))
    th()  # warm-up: Adam state, oneDNN primitives; vkrun bench warms up itself
    vs, ts = interleave(a.reps, vk, th)
    return row(2, "ResNet50 %dx%d training step, batch %d, all layers trainable, BN inference mode"
               % (size, size, batch),
               "ms", vs, ts, 1e3 * statistics.median(vs), 1e3 * statistics.median(ts), vkrun_bench=last)


# --------------------------------------------------------------------------- row 3: the tutorial job

def list_images(d):
    classes = sorted(c for c in os.listdir(d) if os.path.isdir(os.path.join(d, c)))
    items = []
    for i, c in enumerate(classes):
        for f in sorted(os.listdir(os.path.join(d, c))):
            items.append((os.path.join(d, c, f), i))
    return classes, items


def subset(src, dst, per_class):
    """dst/<class>/ with the first per_class files of each class of src (symlinks)."""
    classes, _ = list_images(src)
    for c in classes:
        os.makedirs(os.path.join(dst, c), exist_ok=True)
        for f in sorted(os.listdir(os.path.join(src, c)))[:per_class]:
            link = os.path.join(dst, c, f)
            if not os.path.lexists(link):
                os.symlink(os.path.abspath(os.path.join(src, c, f)), link)
    return dst


def load_caffe(path, size):
    from PIL import Image
    with Image.open(path) as im:
        im = im.convert("RGB").resize((size, size), Image.BILINEAR)
        x = np.asarray(im, dtype=np.float32)[:, :, ::-1] - np.array(CAFFE_MEAN_BGR, np.float32)
    return x.transpose(2, 0, 1)


def head_module(fin, classes, units):
    layers, c = [], fin
    for u in units:
        layers += [nn.Linear(c, u), nn.ReLU()]
        c = u
    layers.append(nn.Linear(c, classes))  # softmax is in the cross-entropy
    return nn.Sequential(*layers)


def train_head_torch(head, feats, labels, vfeats, vlabels, epochs, batch, seed=1):
    opt = torch.optim.Adam(head.parameters(), lr=1e-3, eps=1e-7)
    g = torch.Generator().manual_seed(seed)
    n = feats.shape[0]
    for _ in range(epochs):
        head.train()
        perm = torch.randperm(n, generator=g)
        for i in range(0, n, batch):
            idx = perm[i:i + batch]
            opt.zero_grad(set_to_none=True)
            F.cross_entropy(head(feats[idx]), labels[idx]).backward()
            opt.step()
        head.eval()
        with torch.no_grad():
            F.cross_entropy(head(vfeats), vlabels)


def row_tutorial(a, R, work):
    import concurrent.futures
    from torch_ref import KerasResNet50
    if not (os.path.isdir(os.path.join(a.data, "train")) and os.path.isdir(os.path.join(a.data, "val"))):
        return None
    train_dir, val_dir = os.path.join(a.data, "train"), os.path.join(a.data, "val")
    if a.quick:
        train_dir = subset(train_dir, os.path.join(work, "cd_quick", "train"), 4)
        val_dir = subset(val_dir, os.path.join(work, "cd_quick", "val"), 2)
    size, epochs, batch = a.size, a.epochs, 32
    model = write_vkrun_model(os.path.join(work, "resnet50_keras.safetensors"), lambda: vm.keras_resnet50(False))
    base = KerasResNet50(include_top=False).eval()
    for p in base.parameters():
        p.requires_grad_(False)
    classes, tr = list_images(train_dir)
    _, va = list_images(val_dir)
    vk_argv = ["train", "--model", model, "--data", train_dir, "--val", val_dir, "--out",
               os.path.join(work, "tutorial_out", "model.safetensors"), "--epochs", str(epochs), "--batch",
               str(batch), "--quiet"] + (["--size", "%dx%d" % (size, size)] if size != 224 else [])

    def features(items, pool):
        xs = list(pool.map(lambda it: load_caffe(it[0], size), items))
        out = []
        with torch.no_grad():
            for i in range(0, len(xs), batch):
                out.append(base(torch.from_numpy(np.stack(xs[i:i + batch]))).mean(dim=(2, 3)))
        return torch.cat(out), torch.tensor([it[1] for it in items])

    def th():
        def job():
            with concurrent.futures.ThreadPoolExecutor(a.threads) as pool:
                f, l = features(tr, pool)
                vf, vl = features(va, pool)
            torch.manual_seed(1)
            train_head_torch(head_module(f.shape[1], len(classes), HEAD_UNITS), f, l, vf, vl, epochs, batch)
        return timed(job)

    def vk():
        return R.run(vk_argv)[0]

    log("row 3: tutorial job, %d + %d photos, %dx%d, %d epochs" % (len(tr), len(va), size, size, epochs))
    # no separate warm-up: each run is tens of seconds (rows 1 and 2 have warmed the page cache)
    vs, ts = interleave(a.reps, vk, th)
    return row(3, "tutorial job: ResNet50 base, %d + %d photos, features cached, head %d epochs, batch 32 (wall)"
               % (len(tr), len(va), epochs), "s", vs, ts, statistics.median(vs), statistics.median(ts))


# --------------------------------------------------------------------------- row 4: the demo network

def row_fashion(a, R, work):
    from PIL import Image
    from torch_ref import VkrunNet
    per_class = 4 if a.quick else 50
    epochs = 1 if a.quick else 2
    data = os.path.join(work, "fashion")
    subprocess.run([os.path.join(a.build, "export_fashion_mnist"), "--out", data, "--task", "target",
                    "--train-per-class", str(per_class), "--test-per-class", "2"], check=True,
                   stdout=subprocess.DEVNULL)
    graph_path = os.path.join(ROOT, "weights", "fashion_resnet.json")
    with open(graph_path) as f:
        graph = json.load(f)
    classes, items = list_images(os.path.join(data, "train"))
    x = torch.from_numpy(np.stack([np.asarray(Image.open(p).convert("L"), np.float32)[None] for p, _ in items]))
    y = torch.tensor([c for _, c in items])
    net = VkrunNet(graph, vm.random_tensors(graph, 0)).train()
    fin = vm.infer_shapes(graph)[graph["layers"][-1]["name"]][0]
    head = head_module(fin, len(classes), (128,))
    opt = torch.optim.Adam(list(net.parameters()) + list(head.parameters()), lr=1e-3, eps=1e-7)
    g = torch.Generator().manual_seed(1)
    batch = 16
    out = os.path.join(work, "fashion_out")
    vk_argv = ["train", "--model", graph_path, "--data", os.path.join(data, "train"), "--val",
               os.path.join(data, "test"), "--out", os.path.join(out, "model.safetensors"), "--seed", "1",
               "--batch", str(batch), "--head", "128", "--freeze", "0", "--bn-train", "--epochs", str(epochs),
               "--val-every", "1000", "--quiet"]

    def epoch():
        perm = torch.randperm(x.shape[0], generator=g)
        for i in range(0, x.shape[0], batch):
            idx = perm[i:i + batch]
            opt.zero_grad(set_to_none=True)
            F.cross_entropy(head(net(x[idx]).mean(dim=(2, 3))), y[idx]).backward()
            opt.step()

    def th():
        return x.shape[0] / timed(epoch)

    def vk():
        R.run(vk_argv)
        with open(os.path.join(out, "model.history.csv")) as f:
            rows = [r.split(",") for r in f.read().split("\n")[1:] if r]
        return x.shape[0] / float(rows[-1][6])  # images/s of the last epoch (seconds column)

    log("row 4: Fashion demo network, %d images, batch %d" % (x.shape[0], batch))
    th()  # warm-up; vkrun's first epoch is its warm-up (the last epoch is reported)
    vs, ts = interleave(a.reps, vk, th)
    return row(4, "demo network (weights/fashion_resnet.json) from scratch, 28x28, batch 16, BN training mode",
               "images/s", vs, ts, statistics.median(vs), statistics.median(ts), lower_is_better=False)


# --------------------------------------------------------------------------- machine and output

def machine(a, R):
    cpu = "?"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    dev, driver = "?", "?"
    try:
        _, out = R.run(["devices"])
        for line in out.splitlines():
            s = line.strip()
            if s.startswith("*["):
                dev = s.split("]", 1)[1].strip()
            elif s.startswith("driver:") and driver == "?":
                driver = s.split(":", 1)[1].strip()
    except RuntimeError as e:
        log(str(e))
    return {"cpu": cpu, "cores": os.cpu_count(), "threads": a.threads, "vkrun_device": dev, "vkrun_driver": driver,
            "torch": torch.__version__, "torchvision": torchvision.__version__, "omp_wait_policy": OMP_WAIT,
            "load_before": os.getloadavg(),
            "git": git_head()}


def git_head():
    try:
        return subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"], stdout=subprocess.PIPE,
                              stderr=subprocess.DEVNULL, universal_newlines=True).stdout.strip() or "?"
    except OSError:
        return "?"


def print_table(res):
    m = res["machine"]
    print("machine: %s, %d cores, %d threads each side; vkrun device %s, driver %s; torch %s; vkrun %s"
          % (m["cpu"], m["cores"], m["threads"], m["vkrun_device"], m["vkrun_driver"], m["torch"], m["git"]))
    print("load average before / after: %s / %s; PyTorch's OMP_WAIT_POLICY %s; %d repetitions interleaved, "
          "medians%s" % (" ".join("%.2f" % v for v in m["load_before"]), " ".join("%.2f" % v for v in m["load_after"]),
                         m["omp_wait_policy"], res["config"]["reps"], " (--quick: smoke sizes, not the benchmark)" if res["config"]["quick"] else ""))
    print()
    print("| work | vkrun | PyTorch CPU | vkrun / PyTorch |")
    print("|---|---|---|---|")
    for r in res["rows"]:
        if r.get("skipped"):
            print("| %s | SKIPPED: %s | | |" % (r["work"], r["skipped"]))
            continue
        if r["unit"] == "images/s":
            print("| %s | %.1f images/s | %.1f images/s | **%.2f×** (PyTorch's images/s ÷ vkrun's) |"
                  % (r["work"], r["vkrun"], r["torch"], r["ratio"]))
        else:
            fmt = "%.1f s" if r["unit"] == "s" else "%.0f ms"
            print("| %s | %s | %s | **%.2f×** |" % (r["work"], fmt % r["vkrun"], fmt % r["torch"], r["ratio"]))
    for r in res["rows"]:
        b = r.get("vkrun_bench")
        if b:
            print("\nvkrun bench (row 2, last repetition): forward %.0f ms, backward %.0f ms, update %.0f ms GPU time; "
                  "%d dispatches; %.1f GFLOP/s" % (b.get("gpu_forward_ms", 0), b.get("gpu_backward_ms", 0),
                                                   b.get("gpu_update_ms", 0), b.get("dispatches", 0),
                                                   b.get("gflops", 0)))


def main(argv=None):
    ap = argparse.ArgumentParser(description="vkrun vs PyTorch CPU on the same work (issue 25).")
    ap.add_argument("--build", default=os.path.join(ROOT, "build"), help="vkrun's build directory (default build)")
    ap.add_argument("--threads", type=int, default=os.cpu_count(), help="threads of each side (default: nproc)")
    ap.add_argument("--reps", type=int, help="interleaved repetitions per row (default 3; --quick 1)")
    ap.add_argument("--rows", default="1,2,3,4", help="which rows (default 1,2,3,4)")
    ap.add_argument("--data", default=os.path.join(os.path.dirname(ROOT), "shared", "data", "cats_dogs"),
                    help="row 3's photos: DATA/train, DATA/val (default ../shared/data/cats_dogs)")
    ap.add_argument("--workdir", help="where models and data are written (default: a temporary folder, removed)")
    ap.add_argument("--quick", action="store_true", help="smoke run: 1 repetition, 64x64, few images, 1 epoch")
    ap.add_argument("--json", action="store_true", help="print JSON instead of the table")
    ap.add_argument("--table-from", metavar="FILE", help="print the table of a saved --json output, run nothing")
    ap.add_argument("--omp-wait", choices=("auto", "active", "passive"), default="auto",
                    help="PyTorch's OpenMP waiting: auto (passive when the load exceeds the cores, or --quick), active "
                         "(PyTorch's default), passive")
    a = ap.parse_args(argv)
    if a.table_from:
        with open(a.table_from) as f:
            print_table(json.load(f))
        return 0
    a.reps = a.reps or (1 if a.quick else 3)
    a.size = 64 if a.quick else 224
    a.step_batch = 2 if a.quick else 8
    a.epochs = 1 if a.quick else 5
    rows = [int(r) for r in a.rows.split(",") if r]
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    R = Runner(a)
    work = a.workdir or tempfile.mkdtemp(prefix="bench_torch.")
    os.makedirs(work, exist_ok=True)
    res = {"machine": machine(a, R), "config": {"reps": a.reps, "quick": a.quick, "rows": rows, "size": a.size},
           "rows": []}
    try:
        for n in rows:
            fn = {1: row_forward, 2: row_train_step, 3: row_tutorial, 4: row_fashion}[n]
            r = fn(a, R, work)
            if r is None:
                r = {"row": n, "work": "tutorial job", "skipped": "no %s/{train,val}" % a.data}
                log("row %d SKIPPED: %s" % (n, r["skipped"]))
            res["rows"].append(r)
    finally:
        if not a.workdir:
            shutil.rmtree(work, ignore_errors=True)
    res["machine"]["load_after"] = os.getloadavg()
    if a.json:
        json.dump(res, sys.stdout, indent=1)
        print()
    else:
        print_table(res)
    bad = [r["row"] for r in res["rows"] if not r.get("skipped") and not (math.isfinite(r["ratio"]) and r["ratio"] > 0)]
    if bad:
        log("bench_torch: rows %s have no positive finite ratio (a negative batch-9 - batch-1 difference is "
            "noise: rerun with more --reps)" % bad)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
