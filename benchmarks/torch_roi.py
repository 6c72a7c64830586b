#!/usr/bin/env python3
"""Times torchvision.ops.roi_align / roi_pool as `runtime bench roi_align|roi_pool` does; prints the same JSON line (impl "torch").

Usage: /usr/bin/python3 benchmarks/torch_roi.py roi_align [--shape 2,256,200,200] [--rois 512] [--output 7]
       [--sampling 2] [--scale 0.25] [--aligned] [--backward] [--threads 2] [--device cpu|cuda]
The rois are made by the formula of VisionBench.BenchRois (src/Runtime.Cli/VisionBench.Roi.cs): with
u(i, j) = ((i * 7919 + j * 104729) * 2654435761 mod 2^32) / 2^32 and the image (H, W) / scale,
roi i = (i mod N, x1, y1, x1 + 16 + u(i,2) * W/2, y1 + 16 + u(i,3) * H/2), x1 = u(i,0) * 0.8 W, y1 = u(i,1) * 0.8 H.
"""
import argparse
import json

import torch
import torchvision
from torchvision.ops import roi_align, roi_pool

import timing


def bench_rois(k, n, h, w, scale):
    def u(i, j):
        return ((i * 7919 + j * 104729) * 2654435761 % 2**32) / 2**32

    ih, iw = h / scale, w / scale
    rows = []
    for i in range(k):
        x1, y1 = u(i, 0) * 0.8 * iw, u(i, 1) * 0.8 * ih
        rows.append([i % n, x1, y1, x1 + 16 + u(i, 2) * iw / 2, y1 + 16 + u(i, 3) * ih / 2])
    return torch.tensor(rows, dtype=torch.float32)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("op", choices=["roi_align", "roi_pool"])
    p.add_argument("--shape", default="2,256,200,200")
    p.add_argument("--rois", type=int, default=512)
    p.add_argument("--output", type=int, default=7)
    p.add_argument("--sampling", type=int, default=2)
    p.add_argument("--scale", type=float, default=0.25)
    p.add_argument("--aligned", action="store_true")
    p.add_argument("--backward", action="store_true")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--device", default="cpu")
    p.add_argument("--repeat", type=int, default=None)
    a = p.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    shape = [int(v) for v in a.shape.replace("x", ",").split(",")]
    n, c, h, w = shape
    dev = torch.device(a.device)
    torch.manual_seed(1234)
    x = torch.randn(*shape, device=dev, requires_grad=a.backward)
    rois = bench_rois(a.rois, n, h, w, a.scale).to(dev)
    size = (a.output, a.output)
    sync = (lambda: torch.cuda.synchronize()) if dev.type == "cuda" else (lambda: None)

    def once():
        with torch.set_grad_enabled(a.backward):
            y = roi_align(x, rois, size, a.scale, a.sampling, a.aligned) if a.op == "roi_align" else roi_pool(x, rois, size, a.scale)
            if a.backward:
                y.backward(torch.ones_like(y))
                x.grad = None

    med, mn, reps = timing.measure(once, a.repeat, sync, after=2)
    outputs = a.rois * c * a.output * a.output
    text = f"{n}x{c}x{h}x{w}/k{a.rois}/{a.output}x{a.output}" + (f"/s{a.sampling}{'a' if a.aligned else ''}" if a.op == "roi_align" else "") \
        + f"@{a.scale:g}" + ("+bwd" if a.backward else "")
    print(json.dumps({"impl": "torch", "op": a.op, "shape": text, "dtype": "float32", "device": a.device,
                      "threads": torch.get_num_threads(), "repeats": reps, "median_ms": round(med, 4), "min_ms": round(mn, 4),
                      "Mout_per_s": round(outputs / 1e6 / (med / 1000), 2), "version": torchvision.__version__}))


if __name__ == "__main__":
    main()
