#!/usr/bin/env python3
"""Write the seed corpus of fuzz_api (corpus/api/seed-*).

Each seed is a small scripted scenario in fuzz_api's input encoding (see
the op_* functions in fuzz_api.c): a list, a tree of typed objects with
interior pointers, finalizers (reachable, unreachable, chained, cyclic,
resurrecting, collecting inside), weak handles, root ranges added and
removed in parts, reallocation, large objects, pacing, API misuse. Run it
from anywhere; it rewrites only files named seed-*.
"""
import os
import sys

(ALLOC, ALLOC2, LINK, LINK2, UNLINK, ROOT, UNROOT, ADD_ROOTS, REMOVE_ROOTS, SET_FIN,
 REMOVE_FIN, WEAK_NEW, WEAK_GET, COLLECT, RUN_FIN, GARBAGE, REALLOC, TABLE_REALLOC,
 CHECK, PACING, QUERY, MISUSE) = range(22)

SCAN, ATOMIC = 0, 3


def typed(t):
    """Kind byte of a typed object with layout t (0-5, see types[])."""
    return 4 + 8 * t


class Seed:
    def __init__(self):
        self.b = bytearray()

    def op(self, code, *args):
        self.b.append(code)
        self.b.extend(a & 0xff for a in args)
        return self

    # dest encodings for a new object
    @staticmethod
    def to_root(rs):
        return [rs]

    @staticmethod
    def to_edge(src, word):
        return [100, src, word]

    NOWHERE = [255]

    def alloc(self, kind, size, dest):
        return self.op(ALLOC, kind, size, *dest)

    def link(self, src, word, target, off=0):
        return self.op(LINK, src, word, target, off)

    def collect(self):
        return self.op(COLLECT)

    def run_fin(self, mode=0, rs=0):
        return self.op(RUN_FIN, mode, rs)


def seeds():
    out = {}

    s = Seed()  # a list hanging from root 0, then dropped
    s.alloc(SCAN, 4, Seed.to_root(0))
    for i in range(1, 24):
        s.alloc(SCAN, 3 + i % 5, Seed.to_edge(i - 1, 1))
    s.collect().op(CHECK).op(UNROOT, 0).collect()
    out["list"] = s

    s = Seed()  # typed tree, interior pointers, non-pointer words
    s.alloc(typed(1), 8, Seed.to_root(3))
    for i in range(1, 16):
        s.alloc(typed(i % 6), 2 + i, Seed.to_edge((i - 1) // 2, 2 * (i % 2)))
    for i in range(4):
        s.link(i, 1, 10 + i, 200)  # a non-pointer word of a typed object
    s.collect().op(QUERY, 3, 251).op(QUERY, 5, 170).collect()
    out["typed-tree"] = s

    s = Seed()  # finalizers: reachable ones must not run, others run once
    for i in range(6):
        s.alloc(SCAN, 4, Seed.to_root(i) if i % 2 == 0 else Seed.NOWHERE)
        s.op(SET_FIN, i, 0)
    s.collect().run_fin().collect().run_fin()
    s.op(UNROOT, 0).collect().run_fin(1, 9).collect().run_fin()
    out["finalizers"] = s

    s = Seed()  # A -> B both with finalizers: A first, then B
    s.alloc(SCAN, 4, Seed.NOWHERE).alloc(SCAN, 4, Seed.to_edge(0, 0))
    s.op(SET_FIN, 0, 0).op(SET_FIN, 1, 0)
    s.collect().run_fin().collect().run_fin().collect().run_fin()
    out["finalizer-order"] = s

    s = Seed()  # a cycle through finalizable objects, and a self-loop
    s.alloc(SCAN, 4, Seed.NOWHERE).alloc(SCAN, 4, Seed.to_edge(0, 0)).link(1, 0, 0)
    s.alloc(SCAN, 2, Seed.NOWHERE).link(2, 0, 2, 7)
    s.op(SET_FIN, 0, 0).op(SET_FIN, 1, 0).op(SET_FIN, 2, 0)
    s.collect().run_fin().collect().run_fin().op(REMOVE_FIN, 1).collect().run_fin()
    out["finalizer-cycle"] = s

    s = Seed()  # finalizers that resurrect, refinalize, collect, allocate
    for i in range(5):
        s.alloc(SCAN, 5, Seed.NOWHERE).op(SET_FIN, i, 250 if i == 0 else i)
    s.alloc(ATOMIC, 9, Seed.to_root(2))
    s.collect().run_fin(1 | 2 | 4 | 8, 4).collect().run_fin(2, 5).collect().run_fin(0, 0)
    s.op(UNROOT, 4).collect().run_fin(4, 6).collect().run_fin()
    out["finalizer-behaviours"] = s

    s = Seed()  # weak handles: kept, cleared, read back, revived
    for i in range(6):
        s.alloc(SCAN, 3, Seed.to_root(i) if i < 3 else Seed.NOWHERE)
        s.op(WEAK_NEW, i, i)
    s.op(WEAK_NEW, 0, 7).op(SET_FIN, 4, 0)
    s.collect()
    for i in range(8):
        s.op(WEAK_GET, i, 200 + i)
    s.op(UNROOT, 1).op(WEAK_GET, 1, 0).collect().op(WEAK_GET, 1, 0).run_fin()
    s.op(WEAK_NEW, 4, 9).collect().op(WEAK_GET, 9, 130)
    out["weak"] = s

    s = Seed()  # root ranges added and removed in parts
    s.op(ADD_ROOTS, 1, 7).op(ADD_ROOTS, 2 + 4 * 3, 0x82).op(ADD_ROOTS, 1, 7)
    for rs in (8, 9, 10, 19, 20, 21, 26):
        s.alloc(SCAN, 2, Seed.to_root(rs))
    s.collect().op(REMOVE_ROOTS, 1).collect().op(REMOVE_ROOTS, 1)
    s.op(ADD_ROOTS, 3, 3).alloc(SCAN, 1, Seed.to_root(27)).collect()
    s.op(REMOVE_ROOTS, 0).collect().op(ADD_ROOTS, 0, 7).collect()
    out["roots"] = s

    s = Seed()  # reallocation of objects and of the root table
    s.alloc(SCAN, 6, Seed.to_root(1)).alloc(typed(1), 9, Seed.to_edge(0, 3))
    s.alloc(ATOMIC, 4, Seed.to_edge(0, 4))
    s.op(REALLOC, 0, 170, 2).op(REALLOC, 1, 3, 255).op(REALLOC, 2, 240, 101, 0, 5)
    s.op(ROOT, 40, 3, 0).op(TABLE_REALLOC, 5).op(ROOT, 90, 4, 251).collect()
    s.op(TABLE_REALLOC, 0).collect().op(TABLE_REALLOC, 2).collect()
    out["realloc"] = s

    s = Seed()  # large objects, garbage, pacing: memory limit and percent
    s.op(PACING, 1, 1).op(PACING, 0, 1)
    s.alloc(SCAN, 245, Seed.to_root(0)).alloc(ATOMIC, 251, Seed.to_root(1))
    s.alloc(typed(3), 252, Seed.to_root(2)).link(0, 5, 2, 255)
    s.op(GARBAGE, 47, 1, 250).op(GARBAGE, 40, 0, 200).collect()
    s.op(PACING, 2, 0).op(GARBAGE, 20, 2, 3).op(PACING, 3, 0).op(PACING, 1, 0)
    s.op(PACING, 0, 3).collect()
    out["large-and-pacing"] = s

    s = Seed()  # misuse and queries
    s.alloc(SCAN, 16, Seed.to_root(0)).alloc(ATOMIC, 200, Seed.to_root(1))
    for a in range(8):
        s.op(MISUSE, a, a)
    s.op(QUERY, 0, 255).op(QUERY, 1, 200).collect()
    out["misuse"] = s

    # A long mix: a bit of everything, repeated with varying arguments.
    s = Seed()
    for r in range(6):
        for i in range(8):
            s.alloc((i * 3 + r) % 8, (i * 37 + r * 11) % 230, [(i * 29 + r) % 240, i, i + r])
        s.link(r, 1, r + 3, 180).op(SET_FIN, r * 2, 190 + r).op(WEAK_NEW, r + 1, r)
        s.op(WEAK_GET, r, 150).op(GARBAGE, 10 + r, r, r * 40).op(UNROOT, r)
        s.collect().run_fin(r, r * 7)
    out["mix"] = s
    return out


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    d = os.path.join(here, "corpus", "api")
    os.makedirs(d, exist_ok=True)
    for name in os.listdir(d):
        if name.startswith("seed-"):
            os.remove(os.path.join(d, name))
    for name, s in seeds().items():
        with open(os.path.join(d, "seed-" + name), "wb") as f:
            f.write(bytes(s.b))
    return 0


if __name__ == "__main__":
    sys.exit(main())
