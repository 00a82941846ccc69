#!/usr/bin/python3
"""The library's floors, checked from its object files (ctest `architecture`).

  /usr/bin/python3 tests/check_arch.py OBJECT...   (the objects of the vkrun_lib target)

A file uses another when it references a global symbol the other defines (`nm`). It fails when
a folder of runtime/ uses a folder it may not (see ALLOWED and docs/architecture.md) or when
files call each other in a cycle.
"""
import collections
import os
import subprocess
import sys

# folder -> the folders it may use (besides itself)
ALLOWED = {
    "core": set(),
    "ref": set(),
    "ops": {"core"},
    "layers": {"core", "ops", "ref"},
    "model": {"core", "layers"},
    "graph": {"core", "ops", "layers", "model"},
    "data": {"core"},
    "comm": {"core"},
    "train": {"core", "comm", "data", "graph", "model"},
    "selftest": {"core", "ops", "ref"},
}


def unit(path):
    parts = path.replace(os.sep, "/").split("/runtime/")
    if len(parts) < 2 or not parts[-1].endswith(".o"):
        return None
    return parts[-1][:-2]  # "ops/conv2d.c"


def main(objs):
    defs, uses = {}, collections.defaultdict(set)
    units = [u for u in map(unit, objs) if u]
    for o in objs:
        u = unit(o)
        if not u:
            continue
        out = subprocess.run(["nm", o], capture_output=True, text=True, check=True).stdout
        for line in out.splitlines():
            f = line.split()
            if len(f) == 3 and f[1] in "TDBRC":
                defs[f[2]] = u
            elif len(f) == 2 and f[0] == "U":
                uses[u].add(f[1])
    edges = collections.defaultdict(set)
    bad = []
    for u, syms in uses.items():
        for s in syms:
            d = defs.get(s)
            if not d or d == u:
                continue
            edges[u].add(d)
            a, b = u.split("/")[0], d.split("/")[0]
            if a != b and b not in ALLOWED.get(a, set()):
                bad.append("%s uses %s from %s: %s/ may not use %s/" % (u, s, d, a, b))
    # file-level cycles (Tarjan)
    index, low, stack, on, cycles, n = {}, {}, [], set(), [], [0]
    sys.setrecursionlimit(100000)

    def visit(v):
        index[v] = low[v] = n[0]
        n[0] += 1
        stack.append(v)
        on.add(v)
        for w in edges.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                cycles.append(sorted(comp))

    for v in units:
        if v not in index:
            visit(v)
    unknown = sorted({u.split("/")[0] for u in units} - set(ALLOWED))
    for line in bad:
        print("FAIL " + line)
    for c in cycles:
        print("FAIL call cycle: " + " <-> ".join(c))
    for f in unknown:
        print("FAIL runtime/%s/ is not a known floor (add it to ALLOWED and docs/architecture.md)" % f)
    nedges = sum(len(v) for v in edges.values())
    ok = not bad and not cycles and not unknown and len(units) > 20
    print("%s %d files, %d uses between files, %d across floors not allowed, %d cycles" %
          ("PASS" if ok else "FAIL", len(units), nedges, len(bad), len(cycles)))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
