#!/usr/bin/python3
"""vkrun's optimizer steps (shaders/sgd.comp, shaders/adam.comp run by tests/optim_dump) against
torch.optim, an independent implementation, over 20 steps of random gradients.

  /usr/bin/python3 tests/python/test_optim.py --optim-dump build/tests/optim_dump

vkrun follows Keras's formulas; torch.optim is configured to the same mathematics:
- SGD: Keras v = m v - lr g, p += v (Nesterov: p += m v - lr g) is torch.optim.SGD with the same
  momentum and nesterov flag (torch's buffer is -v / lr).
- Adam: Keras puts epsilon outside the bias correction (p -= lr sqrt(1-b2^t)/(1-b1^t) m /
  (sqrt(v) + eps)); torch.optim.Adam divides by sqrt(v / (1-b2^t)) + eps'.  They agree exactly
  with eps' = eps / sqrt(1 - b2^t), set before each step.  Coupled L2 (g += l2 p) is Adam's
  weight_decay; decoupled weight decay (p -= lr wd p) is torch.optim.AdamW.
Bound: max |vkrun - torch| / max |p| <= 1e-6 after every step (float32 against float64:
a few ulps per step, 20 steps)."""

import argparse
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _harness import Runner  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402

BOUND = 1e-6
STEPS = 20
N = 1037  # not a multiple of the workgroup size

ap = argparse.ArgumentParser()
ap.add_argument("--optim-dump", required=True)
args = ap.parse_args()
TMP = tempfile.mkdtemp(prefix="vkrun_test_optim_")
R = Runner()


def vkrun_steps(kind, p0, grads, **hp):
    pf, gf, of = (os.path.join(TMP, f) for f in ("p.npy", "g.npy", "out.npy"))
    np.save(pf, p0.astype(np.float32))
    np.save(gf, grads.astype(np.float32))
    argv = [args.optim_dump, kind, pf, gf, of]
    for k, v in hp.items():
        argv += ["--" + k.replace("_", "-")] if v is True else ["--" + k.replace("_", "-"), repr(float(v))]
    p = subprocess.run(argv, capture_output=True, text=True)
    assert p.returncode == 0, "optim_dump failed (%d): %s" % (p.returncode, p.stderr)
    return np.load(of).astype(np.float64)


def torch_steps(make_opt, p0, grads, before_step=None):
    w = torch.nn.Parameter(torch.tensor(p0.astype(np.float32), dtype=torch.float64))
    opt = make_opt([w])
    out = []
    for t, g in enumerate(grads, 1):
        w.grad = torch.tensor(g.astype(np.float32), dtype=torch.float64)
        if before_step:
            before_step(opt, t)
        opt.step()
        out.append(w.detach().numpy().copy())
    return np.stack(out)


def compare(got, ref, what):
    err = max(float(np.abs(got[t] - ref[t]).max() / np.abs(ref[t]).max()) for t in range(len(ref)))
    moved = float(np.abs(ref[-1] - ref[0]).max() / np.abs(ref[0]).max())
    assert moved > 1e-3, "%s: the parameters barely moved (%.1e): the check would prove nothing" % (what, moved)
    assert err <= BOUND, "%s: max|vkrun - torch|/max|p| = %.2e > %.0e" % (what, err, BOUND)
    print("  %s: worst step max|diff|/max|p| = %.2e (parameters moved %.2e)" % (what, err, moved))


def data(seed):
    rng = np.random.default_rng(seed)
    p0 = rng.standard_normal(N).astype(np.float32)
    grads = (rng.standard_normal((STEPS, N)) * rng.uniform(0.01, 3, N)).astype(np.float32)
    return p0, grads


def t_sgd():
    for i, (mom, nest, lr) in enumerate([(0.0, False, 0.05), (0.9, False, 0.01), (0.8, True, 0.02)]):
        p0, g = data(10 + i)
        hp = {"lr": lr, "momentum": mom}
        if nest:
            hp["nesterov"] = True
        got = vkrun_steps("sgd", p0, g, **hp)
        ref = torch_steps(lambda ps: torch.optim.SGD(ps, lr=lr, momentum=mom, nesterov=nest), p0, g)
        compare(got, ref, "SGD lr %g momentum %g%s" % (lr, mom, " nesterov" if nest else ""))


def keras_eps(eps, b2):
    def f(opt, t):
        for grp in opt.param_groups:
            grp["eps"] = eps / np.sqrt(1 - b2 ** t)
    return f


def t_adam():
    cases = [(1e-3, 0.9, 0.999, 1e-7, 0.0, 0.0), (3e-2, 0.8, 0.99, 1e-3, 0.0, 0.0), (1e-2, 0.9, 0.999, 1e-7, 0.05, 0.0),
             (1e-2, 0.85, 0.995, 1e-6, 0.0, 0.1)]
    for i, (lr, b1, b2, eps, l2, wd) in enumerate(cases):
        p0, g = data(20 + i)
        got = vkrun_steps("adam", p0, g, lr=lr, beta1=b1, beta2=b2, eps=eps, l2=l2, weight_decay=wd)
        if wd:
            mk = lambda ps: torch.optim.AdamW(ps, lr=lr, betas=(b1, b2), eps=eps, weight_decay=wd)  # noqa: E731
        else:
            mk = lambda ps: torch.optim.Adam(ps, lr=lr, betas=(b1, b2), eps=eps, weight_decay=l2)  # noqa: E731
        ref = torch_steps(mk, p0, g, keras_eps(eps, b2))
        compare(got, ref, "%s lr %g betas %g/%g eps %g l2 %g weight decay %g" %
                ("AdamW" if wd else "Adam", lr, b1, b2, eps, l2, wd))


R.check("SGD (plain, momentum, Nesterov) vs torch.optim.SGD", t_sgd)
R.check("Adam (L2) and AdamW (decoupled decay) vs torch.optim, Keras epsilon", t_adam)
sys.exit(R.finish())
