#!/usr/bin/env python3
"""Times modulated deformable RoI pooling in plain PyTorch (dcn_torch.deform_roi_pool: the op vectorised with index
gathers; torchvision has none and mmcv is not installed) beside torchvision's roi_align, as
`runtime bench deform_roi_pool` times ours beside our roi_align; prints the same JSON lines (impl "torch").

Usage: /usr/bin/python3 benchmarks/torch_deform_roi.py [--shape 2,256,200,200] [--rois 512] [--output 7]
       [--sampling 2] [--scale 0.25] [--aligned] [--no-mask] [--backward] [--threads 2] [--device cpu|cuda]
Rois as benchmarks/torch_roi.py (VisionBench.BenchRois); offsets N(0, 0.3^2) and the mask U(0, 1) from a
generator seeded 1234 (not the same numbers as ours; the work is the same).
"""
import argparse
import json

import torch
import torchvision
from torchvision.ops import roi_align

import dcn_torch
import timing
from torch_roi import bench_rois


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--shape", default="2,256,200,200")
    p.add_argument("--rois", type=int, default=512)
    p.add_argument("--output", type=int, default=7)
    p.add_argument("--sampling", type=int, default=2)
    p.add_argument("--scale", type=float, default=0.25)
    p.add_argument("--aligned", action="store_true")
    p.add_argument("--no-mask", action="store_true")
    p.add_argument("--backward", action="store_true")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--device", default="cpu")
    p.add_argument("--repeat", type=int, default=None)
    a = p.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    n, c, h, w = [int(v) for v in a.shape.replace("x", ",").split(",")]
    dev = torch.device(a.device)
    g = torch.Generator().manual_seed(1234)
    x = torch.randn(n, c, h, w, generator=g).to(dev).requires_grad_(a.backward)
    rois = bench_rois(a.rois, n, h, w, a.scale).to(dev)
    size = (a.output, a.output)
    off = (torch.randn(a.rois, 2, *size, generator=g) * 0.3).to(dev).requires_grad_(a.backward)
    mask = None if a.no_mask else torch.rand(a.rois, 1, *size, generator=g).to(dev).requires_grad_(a.backward)
    leaves = [t for t in (x, off, mask) if t is not None]
    sync = (lambda: torch.cuda.synchronize()) if dev.type == "cuda" else (lambda: None)

    def run(f):
        def once():
            with torch.set_grad_enabled(a.backward):
                y = f()
                if a.backward:
                    y.backward(torch.ones_like(y))
                    for t in leaves:
                        t.grad = None
        return once

    deform = run(lambda: dcn_torch.deform_roi_pool(x, rois, off, mask, size, a.scale, a.sampling, 0.1, a.aligned))
    align = run(lambda: roi_align(x, rois, size, a.scale, a.sampling, a.aligned))
    text = f"{n}x{c}x{h}x{w}/k{a.rois}/{a.output}x{a.output}/s{a.sampling}{'a' if a.aligned else ''}@{a.scale:g}" + ("+bwd" if a.backward else "")
    outputs = a.rois * c * a.output * a.output
    for op, fn, suffix in (("deform_roi_pool", deform, "" if a.no_mask else "+mask"), ("roi_align", align, "")):
        med, mn, reps = timing.measure(fn, a.repeat, sync, after=2)
        print(json.dumps({"impl": "torch", "op": op, "shape": text + suffix, "dtype": "float32", "device": a.device,
                          "threads": torch.get_num_threads(), "repeats": reps, "median_ms": round(med, 4), "min_ms": round(mn, 4),
                          "Mout_per_s": round(outputs / 1e6 / (med / 1000), 2), "version": torchvision.__version__}), flush=True)


if __name__ == "__main__":
    main()
