#!/usr/bin/env python3
"""Times torchvision.ops.deform_conv2d and F.conv2d of the same shape, interleaved run by run, and prints the
JSON lines of `runtime bench deform_conv2d` (impl "torch").

Usage: /usr/bin/python3 benchmarks/torch_deform.py [--threads 2] [--shape 2x256x64x64] [--out 256] [--kernel 3]
       [--stride 1] [--padding 1] [--dilation 1] [--groups 1] [--offset-groups 1] [--no-mask] [--backward] [--repeat R]
Inputs are drawn as `runtime bench` draws them: x, weight, bias, offset ~ N(0, 1), mask ~ U(0, 1).
"""
import argparse
import json
import statistics
import time

import torch
import torchvision
from torchvision.ops import deform_conv2d


def timed(fn):
    t0 = time.perf_counter()
    fn()
    return (time.perf_counter() - t0) * 1000


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=torch.get_num_threads())
    ap.add_argument("--shape", default="2x256x64x64")
    ap.add_argument("--out", type=int, default=None)
    ap.add_argument("--kernel", type=int, default=3)
    ap.add_argument("--stride", type=int, default=1)
    ap.add_argument("--padding", type=int, default=None)
    ap.add_argument("--dilation", type=int, default=1)
    ap.add_argument("--groups", type=int, default=1)
    ap.add_argument("--offset-groups", type=int, default=1)
    ap.add_argument("--no-mask", action="store_true")
    ap.add_argument("--backward", action="store_true")
    ap.add_argument("--repeat", type=int, default=None)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(1234)
    n, c, h, w = [int(v) for v in a.shape.replace(",", "x").split("x")]
    k, s, d, g, og = a.kernel, a.stride, a.dilation, a.groups, a.offset_groups
    p = k // 2 if a.padding is None else a.padding
    cout = a.out or c
    oh = (h + 2 * p - d * (k - 1) - 1) // s + 1
    ow = (w + 2 * p - d * (k - 1) - 1) // s + 1
    bwd = a.backward
    x = torch.randn(n, c, h, w, requires_grad=bwd)
    wt = torch.randn(cout, c // g, k, k, requires_grad=bwd)
    b = torch.randn(cout, requires_grad=bwd)
    off = torch.randn(n, 2 * og * k * k, oh, ow, requires_grad=bwd)
    mask = None if a.no_mask else torch.rand(n, og * k * k, oh, ow, requires_grad=bwd)
    leaves = [x, wt, b, off] + ([] if mask is None else [mask])

    def run(f):
        def fn():
            with torch.set_grad_enabled(bwd):
                y = f()
                if bwd:
                    y.sum().backward()
                    for t in leaves:
                        t.grad = None
        return fn

    deform = run(lambda: deform_conv2d(x, off, wt, b, stride=s, padding=p, dilation=d, mask=mask))
    conv = run(lambda: torch.nn.functional.conv2d(x, wt, b, s, p, d, g))
    first = timed(deform) + timed(conv)
    for _ in range(2):
        deform()
        conv()
    reps = a.repeat or int(min(100, max(5, 2000 / max(first, 0.01))))
    td, tc = [], []
    for _ in range(reps):
        td.append(timed(deform))
        tc.append(timed(conv))
    macs = n * cout * oh * ow * (c // g) * k * k
    work = (3 if bwd else 1) * 2.0 * macs / 1e9
    geo = f"{n}x{c}x{h}x{w}>{cout}k{k}x{k}s{s}p{p}" + (f"d{d}" if d != 1 else "") + (f"g{g}" if g != 1 else "")
    suffix = "+bwd" if bwd else ""
    for op, text, times in (("deform_conv2d", geo + f"og{og}" + ("" if mask is None else "+mask") + suffix, td),
                            ("conv2d", geo + suffix, tc)):
        med = statistics.median(times)
        print(json.dumps({"impl": "torch", "op": op, "shape": text, "dtype": "float32", "device": "cpu",
                          "threads": a.threads, "repeats": reps, "median_ms": round(med, 4), "min_ms": round(min(times), 4),
                          "GFLOP_per_s": round(work / (med / 1000), 2),
                          "version": f"torch {torch.__version__}, torchvision {torchvision.__version__}"}))


if __name__ == "__main__":
    main()
