#!/usr/bin/python3
"""Data-parallel training (docs/scaling.md): `mpirun -np 2 vkrun train` and `vkrun train --devices 0,0`
against one process at the same global batch, on lavapipe (both ranks on the one device).

  /usr/bin/python3 tests/python/test_mpi_train.py --vkrun build/vkrun --mpi ON|OFF [--mpiexec mpirun]

The reference is the single-process run of the same command: with BatchNorm in inference mode,
N ranks x batch B/N is one process at batch B up to the summation order of the gradients and the
loss sums, so
- per-epoch loss, accuracy, val_loss, val_accuracy agree to 1e-5 relative (measured: ~3e-8);
- every tensor of the final model agrees to 1e-5 absolute (measured: <= 3e-8 on weights of
  magnitude ~1);
- only rank 0 writes: rank 1 is given another --out (MPMD launch) and that folder stays empty;
checked for the head on cached features + fine-tuning (features computed in shards and gathered),
and for the uncached path with dropout and uneven shares (batch 7 on 2 ranks: 3 + 4 images).
Faults: a rank killed (SIGKILL after 7 steps) ends the job within 60 s with mpirun naming it; a
rank that hangs (SIGSTOP) makes rank 0 fail with "no answer from the other ranks" after the
timeout (VKRUN_COMM_TIMEOUT=4), within 60 s.  A checkpoint written under 2 ranks (SIGINT after
13 steps) resumes under 1 process to the uninterrupted history (1e-5 relative).
Without MPI in the build: the mpirun checks SKIP; a vkrun started as one of several MPI processes
(OMPI_COMM_WORLD_SIZE=2) refuses to run (exit 2, says how to get MPI); --devices still runs.
--bn-train --sync-bn (BatchNorm trained with batch statistics, batch 7): mpirun -np 2 (3 + 4 images),
--devices 0,0 and --devices 0,0,0,0,0 (a rank without images in the last step) match one process
with --bn-train to the same 1e-5 (measured: histories ~4e-8 relative, weights and running
statistics <= 6e-8 absolute); without --sync-bn --devices 0,0 differs from it by > 1e-3 (measured:
final tensors by 2.7e-2, the last epoch's loss by 5.5e-3); one process with --sync-bn says it has
nothing to synchronize and trains as without it; --sync-bn without --bn-train and with
--micro-batch are refused (exit 2, nothing written).
"""

import argparse
import json
import os
import re
import shutil
import struct
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _harness import Runner, Skip  # noqa: E402

import numpy as np  # noqa: E402

ap = argparse.ArgumentParser()
ap.add_argument("--vkrun", required=True)
ap.add_argument("--mpi", default="OFF", help="ON when vkrun was built with MPI")
ap.add_argument("--mpiexec", default="mpirun")
args = ap.parse_args()
VKRUN = os.path.abspath(args.vkrun)
MPI = args.mpi.upper() in ("ON", "1", "TRUE", "YES")
MPIEXEC = shutil.which(args.mpiexec) if args.mpiexec else None
TMP = tempfile.mkdtemp(prefix="vkrun_test_mpi_")
R = Runner()
ENV = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1",
           OMPI_MCA_rmaps_base_oversubscribe="1")
# The ASan build: LeakSanitizer is off in the processes mpirun starts (ASan and UBSan stay on).
# Open MPI's components are shared objects it dlopens and unloads in MPI_Finalize; what they
# leave allocated is reported at exit with frames in an "<unknown module>" that no suppression
# can name (tests/sanitizer/lsan.supp says more).  The single-process and --devices runs of this
# test keep leak detection, and run the same data-parallel code (fit_dp.c) through the local
# communicator.
MPI_ENV = {}
if "detect_leaks=1" in ENV.get("ASAN_OPTIONS", ""):
    MPI_ENV["ASAN_OPTIONS"] = ENV["ASAN_OPTIONS"].replace("detect_leaks=1", "detect_leaks=0")
LOSS_REL = 1e-5
WEIGHT_ABS = 1e-5


def sh(argv, env=None, ok=True, timeout=300):
    e = dict(ENV)
    if MPIEXEC and argv[0] == MPIEXEC:
        e.update(MPI_ENV)
    e.update(env or {})
    p = subprocess.run([str(a) for a in argv], capture_output=True, env=e, timeout=timeout)
    # piped, mpirun's output holds no progress bar (carriage returns: rank 0's stdout is mpirun's pty);
    # read as bytes, since text mode would turn each \r into a newline
    if MPIEXEC and argv[0] == MPIEXEC and p.returncode == 0:
        assert b"\r" not in p.stdout, "carriage returns in mpirun's piped output: %r" % p.stdout[-400:]
    p.stdout, p.stderr = p.stdout.decode(errors="replace"), p.stderr.decode(errors="replace")
    if ok and p.returncode != 0:
        raise AssertionError("%s failed (%d):\n%s\n%s" % (" ".join(map(str, argv[:4])), p.returncode, p.stdout[-3000:],
                                                          p.stderr[-3000:]))
    return p


def need_mpi():
    if not MPI:
        raise Skip("vkrun was built without MPI (apt-get install openmpi-bin libopenmpi-dev, cmake -DVKRUN_MPI=ON)")
    if not MPIEXEC:
        raise Skip("%s not found (apt-get install openmpi-bin)" % args.mpiexec)


def mpirun(np_, *argv):
    return [MPIEXEC, "--oversubscribe", "-np", np_, *argv]


def data():
    d = os.path.join(TMP, "data")
    if os.path.exists(d):
        return d
    rng = np.random.default_rng(1)
    for name, n in (("train", 13), ("val", 5)):
        for ci, c in enumerate(["a", "b", "c"]):
            os.makedirs(os.path.join(d, name, c))
            for i in range(n):
                w, h = 24 + i % 5, 20 + i % 3
                img = (rng.integers(0, 255, (h, w, 3)) * 0.5 +
                       np.array((255 * (ci == 0), 255 * (ci == 1), 128 * (ci == 2))) * 0.5).astype(np.uint8)
                with open(os.path.join(d, name, c, "i%03d.ppm" % i), "wb") as f:
                    f.write(b"P6\n%d %d\n255\n" % (w, h) + img.tobytes())
    g = {"version": 1, "name": "tiny", "input": {"name": "in", "channels": 3, "height": 16, "width": 16,
                                                 "preprocess": "torch"},
         "layers": [{"name": "in", "type": "input"},
                    {"name": "c1", "type": "conv2d", "inputs": ["in"], "filters": 8, "kernel": [3, 3],
                     "strides": [1, 1], "padding": "same", "use_bias": False},
                    {"name": "bn1", "type": "batchnorm", "inputs": ["c1"]},
                    {"name": "r1", "type": "relu", "inputs": ["bn1"]},
                    {"name": "c2", "type": "conv2d", "inputs": ["r1"], "filters": 12, "kernel": [3, 3],
                     "strides": [2, 2], "padding": "same", "use_bias": True, "activation": "relu"}]}
    with open(os.path.join(d, "tiny.json"), "w") as f:
        json.dump(g, f)
    return d


# head on cached features (2 epochs), then fine-tuning everything with BatchNorm in inference mode
def cached_args():
    d = data()
    return ["--model", os.path.join(d, "tiny.json"), "--data", os.path.join(d, "train"), "--val",
            os.path.join(d, "val"), "--head", "16", "--batch", "8", "--epochs", "2", "--fine-tune-epochs", "2",
            "--fine-tune-lr", "1e-3", "--seed", "3"]


def uncached_args():
    d = data()
    return ["--model", os.path.join(d, "tiny.json"), "--data", os.path.join(d, "train"), "--val",
            os.path.join(d, "val"), "--head", "16", "--batch", "7", "--epochs", "2", "--freeze", "3", "--seed", "5",
            "--no-cache", "--dropout", "0.3"]


def out(name):
    d = os.path.join(TMP, name)
    os.makedirs(d, exist_ok=True)
    return os.path.join(d, "m.safetensors")


def tensors(path):
    with open(path, "rb") as f:
        b = f.read()
    n = struct.unpack("<Q", b[:8])[0]
    h = json.loads(b[8:8 + n])
    o = {}
    for k, v in h.items():
        if k != "__metadata__":
            a, e = v["data_offsets"]
            o[k] = np.frombuffer(b[8 + n + a:8 + n + e], dtype=np.float32)
    return o


def history(model):
    with open(os.path.join(os.path.dirname(model), "m.history.json")) as f:
        return json.load(f)


REF = {}


def single(kind):
    if kind not in REF:
        m = out("single_" + kind)
        sh([VKRUN, "train", *(cached_args() if kind == "cached" else uncached_args()), "--out", m, "--quiet"])
        REF[kind] = m
    return REF[kind]


def compare(ref, got, what):
    ha, hb = history(ref), history(got)
    worst = 0.0
    for k in ("loss", "accuracy", "val_loss", "val_accuracy"):
        a, b = np.array(ha[k], np.float64), np.array(hb[k], np.float64)
        assert a.shape == b.shape and len(a) > 0, (k, ha[k], hb[k])
        r = float(np.max(np.abs(a - b) / np.maximum(np.abs(a), 1e-12)))
        assert r <= LOSS_REL, "%s: %s differs by %.2e relative: %s vs %s" % (what, k, r, ha[k], hb[k])
        worst = max(worst, r)
    ta, tb = tensors(ref), tensors(got)
    assert sorted(ta) == sorted(tb), what
    wd = max(float(np.max(np.abs(ta[k] - tb[k]))) for k in ta)
    mag = max(float(np.max(np.abs(ta[k]))) for k in ta)
    assert wd <= WEIGHT_ABS, "%s: final weights differ by %.2e (max |w| %.2f)" % (what, wd, mag)
    # the run trained: the loss moved (a comparison of two untrained runs would prove nothing)
    assert abs(ha["loss"][-1] - ha["loss"][0]) > 1e-3, ha["loss"]
    print("  %s: %d epochs, histories within %.1e relative, weights within %.1e (max |w| %.2f)" %
          (what, len(ha["loss"]), worst, wd, mag))


def mpmd(np_args, out0, out1, env=None, ok=True, timeout=300):
    """rank 0 with --out out0, rank 1 with --out out1 (an MPMD launch): only rank 0 may write."""
    argv = [MPIEXEC, "--oversubscribe", "-np", "1", VKRUN, "train", *np_args, "--out", out0, ":",
            "-np", "1", VKRUN, "train", *np_args, "--out", out1]
    return sh(argv, env=env, ok=ok, timeout=timeout)


def t_mpi_cached():
    need_mpi()
    ref = single("cached")
    m0, m1 = out("mpi_cached"), out("mpi_cached_rank1")
    p = mpmd(cached_args(), m0, m1)
    assert "data-parallel: 2 processes (mpi), global batch 8" in p.stdout, p.stdout
    assert "rank 1:" in p.stdout and "4 of each batch of 8" in p.stdout, p.stdout
    compare(ref, m0, "mpirun -np 2, head on cached features + fine-tuning")
    left = os.listdir(os.path.dirname(m1))
    assert left == [], "rank 1 wrote %s" % left
    assert sorted(os.listdir(os.path.dirname(m0))) == sorted(os.listdir(os.path.dirname(ref)))


def t_mpi_uncached():
    need_mpi()
    ref = single("uncached")
    m = out("mpi_uncached")
    # 512-byte buckets: several per step, each started while the backward pass still runs
    p = sh(mpirun(2, VKRUN, "train", *uncached_args(), "--bucket-mb", "0.00048828125", "--out", m))
    assert "3 of each batch of 7" in p.stdout and "4 of each batch of 7" in p.stdout, p.stdout
    sums = [tuple(map(int, x.split(" of ")))
            for x in re.findall(r"(\d+ of \d+) gradient bucket sums started during the backward pass", p.stdout)]
    assert len(sums) == 2 and all(e == n and n >= 2 * 6 for e, n in sums), (sums, p.stdout[-2000:])
    compare(ref, m, "mpirun -np 2, uncached, dropout, batch 7 as 3 + 4, %d buckets per step, all started during "
                    "the backward pass" % (sums[0][1] // 6))


def t_devices():
    ref = single("cached")
    m = out("devices")
    p = sh([VKRUN, "train", *cached_args(), "--devices", "0,0", "--out", m])
    assert "data-parallel: 2 processes (local)" in p.stdout, p.stdout
    assert "per-rank" not in p.stdout, p.stdout
    compare(ref, m, "--devices 0,0")
    # --bn-train under data-parallel says that the statistics are per rank
    p = sh([VKRUN, "train", *cached_args(), "--devices", "0,0", "--bn-train", "--fine-tune-epochs", "0",
            "--epochs", "1", "--out", out("devices_bn")])
    assert "--bn-train: each rank normalizes with the batch statistics of its own share" in p.stdout, p.stdout
    # fp16's loss scaling decides per process: refused under data-parallel, nothing written
    p = sh([VKRUN, "train", *cached_args(), "--devices", "0,0", "--precision", "fp16", "--out", out("devices_fp16")],
           ok=False)
    assert p.returncode == 2 and "--precision fp16 with data-parallel training" in p.stderr, (p.returncode, p.stderr)
    assert not os.listdir(os.path.dirname(out("devices_fp16"))), os.listdir(os.path.dirname(out("devices_fp16")))


# BatchNorm trained with batch statistics (--freeze 1: bn1 and the conv before it train, so bn1's
# input gradient is used), batch 7 over 2 ranks as 3 + 4 images
def sync_args():
    d = data()
    return ["--model", os.path.join(d, "tiny.json"), "--data", os.path.join(d, "train"), "--val",
            os.path.join(d, "val"), "--head", "16", "--batch", "7", "--epochs", "2", "--freeze", "1", "--seed", "5",
            "--no-cache", "--bn-train"]


def weight_diff(ref, got):
    ta, tb = tensors(ref), tensors(got)
    return max(float(np.max(np.abs(ta[k] - tb[k]))) for k in ta)


def t_sync_bn():
    ref = out("single_sync")
    sh([VKRUN, "train", *sync_args(), "--out", ref, "--quiet"])
    runs = []
    if MPI and MPIEXEC:
        m = out("mpi_sync")
        p = sh(mpirun(2, VKRUN, "train", *sync_args(), "--sync-bn", "--out", m))
        assert "3 of each batch of 7" in p.stdout and "4 of each batch of 7" in p.stdout, p.stdout
        runs.append((m, p, "mpirun -np 2 --bn-train --sync-bn, batch 7 as 3 + 4"))
    else:
        print("  (mpirun part skipped: vkrun built without MPI; the --devices runs below use the same code)")
    m = out("devices_sync")
    runs.append((m, sh([VKRUN, "train", *sync_args(), "--sync-bn", "--devices", "0,0", "--out", m]),
                 "--devices 0,0 --bn-train --sync-bn, batch 7 as 3 + 4"))
    # 5 ranks: shares 1,1,2,1,2; the last step's 4 images leave rank 0 without any (it exchanges zeros
    # and still updates its running statistics)
    m = out("devices5_sync")
    runs.append((m, sh([VKRUN, "train", *sync_args(), "--sync-bn", "--devices", "0,0,0,0,0", "--out", m]),
                 "--devices 0,0,0,0,0 --bn-train --sync-bn, a rank without images in the last step"))
    for m, p, what in runs:
        assert "the batch statistics are synchronized across ranks" in p.stdout, p.stdout
        compare(ref, m, what)
    # without --sync-bn each rank normalizes with its own share's statistics: not the single process
    m = out("devices_nosync")
    sh([VKRUN, "train", *sync_args(), "--devices", "0,0", "--out", m])
    wd, hd = weight_diff(ref, m), abs(history(ref)["loss"][-1] - history(m)["loss"][-1])
    assert wd > 1e-3 and hd > 1e-3, (wd, hd)
    print("  without --sync-bn: final weights differ by %.1e, last epoch's loss by %.1e" % (wd, hd))
    # one process: nothing to synchronize, said, and the same run
    m = out("single_sync_flag")
    p = sh([VKRUN, "train", *sync_args(), "--sync-bn", "--out", m])
    assert "--sync-bn: one process, whose batch statistics are those of the whole batch already" in p.stdout, p.stdout
    assert weight_diff(ref, m) == 0 and history(ref)["loss"] == history(m)["loss"]
    # refused before training, nothing written: without --bn-train, with --micro-batch
    for extra, msg in ((["--sync-bn"], "without --bn-train BatchNorm uses its running statistics"),
                       (["--bn-train", "--sync-bn", "--micro-batch", "2"], "--sync-bn with --micro-batch is not")):
        argv = [a for a in sync_args() if a != "--bn-train"] + extra
        o = out("sync_refused")
        p = sh([VKRUN, "train", *argv, "--devices", "0,0", "--out", o], ok=False)
        assert p.returncode == 2 and msg in p.stderr, (p.returncode, p.stderr)
        assert not os.listdir(os.path.dirname(o)), os.listdir(os.path.dirname(o))


def t_kill():
    need_mpi()
    t0 = time.time()
    p = sh(mpirun(2, VKRUN, "train", *cached_args(), "--out", out("kill"), "--quiet"),
           env={"VKRUN_TEST_RANK_SIGNAL": "1:7:kill"}, ok=False, timeout=120)
    dt = time.time() - t0
    assert p.returncode != 0 and dt < 60, (p.returncode, dt)
    msg = p.stdout + p.stderr
    assert "rank 1" in msg and "signal 9" in msg, msg[-2000:]
    assert not os.path.exists(out("kill")), "a model was written by a failed run"
    print("  rank 1 killed: the job ended in %.1f s (exit %d): %s" %
          (dt, p.returncode, [ln for ln in msg.splitlines() if "signal 9" in ln][0].strip()))


def t_hang():
    need_mpi()
    t0 = time.time()
    p = sh(mpirun(2, VKRUN, "train", *cached_args(), "--out", out("hang"), "--quiet"),
           env={"VKRUN_TEST_RANK_SIGNAL": "1:7:stop", "VKRUN_COMM_TIMEOUT": "4"}, ok=False, timeout=120)
    dt = time.time() - t0
    assert p.returncode != 0 and dt < 60, (p.returncode, dt)
    line = [ln for ln in p.stderr.splitlines() if "no answer from the other ranks" in ln]
    assert line and "rank 0 of 2" in line[0] and "for 4 s" in line[0], p.stderr[-2000:]
    print("  rank 1 stopped: rank 0 gave up after %.1f s: %s" % (dt, line[0].strip()))


def t_resume_fewer_ranks():
    need_mpi()
    ref = single("cached")
    m = out("ckpt")
    p = sh(mpirun(2, VKRUN, "train", *cached_args(), "--out", m, "--quiet"), env={"VKRUN_TEST_SIGINT_AFTER": "13"},
           ok=False)
    assert p.returncode != 0 and "checkpoint" in p.stderr and os.path.exists(m + ".checkpoint"), p.stderr[-2000:]
    assert len(history(m)["loss"]) == 2, history(m)  # stopped in the fine-tuning stage (5 steps per epoch)
    sh([VKRUN, "train", "--resume", m + ".checkpoint", "--quiet"])
    compare(ref, m, "2 ranks interrupted at step 13, resumed in 1 process")


def t_refuse_without_mpi():
    p = sh([VKRUN, "train", *cached_args(), "--out", out("refuse")], env={"OMPI_COMM_WORLD_SIZE": "2"}, ok=False)
    assert p.returncode == 2 and "built without MPI" in p.stderr and "libopenmpi-dev" in p.stderr, p.stderr
    assert not os.listdir(os.path.dirname(out("refuse")))


R.check("mpi_cached_matches_single", t_mpi_cached)
R.check("mpi_uncached_dropout_uneven", t_mpi_uncached)
R.check("devices_0_0_matches_single", t_devices)
R.check("sync_bn_matches_single", t_sync_bn)
R.check("mpi_rank_killed", t_kill)
R.check("mpi_rank_hangs_timeout", t_hang)
R.check("checkpoint_2_ranks_resumes_on_1", t_resume_fewer_ranks)
if not MPI:
    R.check("refuses_under_mpirun_without_mpi", t_refuse_without_mpi)
rc = R.finish()
shutil.rmtree(TMP, ignore_errors=True)
sys.exit(rc)
