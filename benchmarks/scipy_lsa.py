#!/usr/bin/env python3
"""Times scipy.optimize.linear_sum_assignment on the matrices `runtime bench lsa` solves and prints the
same JSON lines (impl "scipy").

Usage: /usr/bin/python3 benchmarks/scipy_lsa.py [--shapes 200,100x150,150x100] [--seed 1234] [--maximize] [--repeat K]
Each shape is N or RxC; the matrix is row-major from the generator of VisionBench.Lsa.cs:
x <- x*6364136223846793005 + 1442695040888963407 (mod 2^64), value = (x >> 11) / 2^53.
"""
import argparse
import json

import numpy as np
from scipy.optimize import linear_sum_assignment

import timing


def lcg_matrix(seed, rows, cols):
    x = seed & 0xFFFFFFFFFFFFFFFF
    out = np.empty(rows * cols)
    for k in range(rows * cols):
        x = (x * 6364136223846793005 + 1442695040888963407) & 0xFFFFFFFFFFFFFFFF
        out[k] = (x >> 11) / float(1 << 53)
    return out.reshape(rows, cols)


def measure(fn, repeat=None):
    # The same protocol as `runtime bench`: one timed call sets the repeat count, two warm-ups, then the median.
    return timing.measure(fn, repeat, after=2)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--shapes", default="200")
    p.add_argument("--seed", type=int, default=1234)
    p.add_argument("--maximize", action="store_true")
    p.add_argument("--repeat", type=int)
    a = p.parse_args()
    for spec in a.shapes.split(","):
        dims = [int(v) for v in spec.split("x")]
        rows, cols = dims[0], dims[-1]
        cost = lcg_matrix(a.seed, rows, cols)
        med, mn, reps = measure(lambda: linear_sum_assignment(cost, maximize=a.maximize), a.repeat)
        print(json.dumps({"impl": "scipy", "op": "lsa_max" if a.maximize else "lsa", "shape": f"{rows}x{cols}",
                          "dtype": "float64", "device": "cpu", "threads": 1, "repeats": reps,
                          "median_ms": round(med, 4), "min_ms": round(mn, 4), "solves_per_s": round(1000 / med, 2)}))


if __name__ == "__main__":
    main()
