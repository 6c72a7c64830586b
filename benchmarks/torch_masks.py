#!/usr/bin/env python3
"""Times torchvision's paste_masks_in_image as `runtime bench paste_masks` does; prints the same JSON line (impl "torch").

Usage: /usr/bin/python3 benchmarks/torch_masks.py [--shape 100,28,28] [--height 800] [--width 1200] [--threads 2]
       [--device cpu|cuda] [--repeat N]
The boxes are benchmarks/torch_roi.py's bench_rois for one image at scale 1 (the formula of VisionBench.BenchRois).
"""
import argparse
import json

import torch
import torchvision
from torchvision.models.detection.roi_heads import paste_masks_in_image

import timing
from torch_roi import bench_rois


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--shape", default="100,28,28")
    p.add_argument("--height", type=int, default=800)
    p.add_argument("--width", type=int, default=1200)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--device", default="cpu")
    p.add_argument("--repeat", type=int, default=None)
    a = p.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    n, mh, mw = [int(v) for v in a.shape.replace("x", ",").split(",")]
    dev = torch.device(a.device)
    torch.manual_seed(1234)
    masks = torch.rand(n, 1, mh, mw, device=dev)
    boxes = bench_rois(n, 1, a.height, a.width, 1.0)[:, 1:].to(dev)
    sync = (lambda: torch.cuda.synchronize()) if dev.type == "cuda" else (lambda: None)

    def once():
        paste_masks_in_image(masks, boxes, (a.height, a.width), padding=1)

    med, mn, reps = timing.measure(once, a.repeat, sync, after=2)
    print(json.dumps({"impl": "torch", "op": "paste_masks", "shape": f"{n}x{mh}x{mw}@{a.height}x{a.width}", "dtype": "float32",
                      "device": a.device, "threads": torch.get_num_threads(), "repeats": reps, "median_ms": round(med, 4),
                      "min_ms": round(mn, 4), "Mpix_per_s": round(n * a.height * a.width / 1e6 / (med / 1000), 2),
                      "version": torchvision.__version__}))


if __name__ == "__main__":
    main()
