#!/usr/bin/env python3
"""Times torchvision.ops.nms / batched_nms on the boxes `runtime bench nms|batched_nms` uses; prints the same
JSON lines (impl "torch").

Usage: /usr/bin/python3 benchmarks/torch_boxes.py [--ops nms,batched_nms] [--boxes 10000] [--classes 10]
                                                  [--iou 0.5] [--threads 2] [--device cpu|cuda]

The boxes (the same formula as src/Runtime.Cli/VisionBench.Boxes.cs, integer hashing so both sides get
bit-identical float32 inputs): u(k) = (splitmix64(k) >> 40) / 2^24; C = max(1, N // 100) clusters with
centre (1000 u(2^30 + 2c), 1000 u(2^30 + 2c + 1)); box i of cluster c = i % C has centre = cluster centre +
60 (u(8i) - 0.5, u(8i+1) - 0.5), size (16 + 64 u(8i+2), 16 + 64 u(8i+3)), score u(8i+4), class
floor(K u(8i+5)); corners computed in double, then stored as float32.
"""
import argparse
import json
import math

import torch
import torchvision

import timing

M64 = (1 << 64) - 1


def mix(z):
    z = (z + 0x9E3779B97F4A7C15) & M64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M64
    return z ^ (z >> 31)


def u(k):
    return (mix(k) >> 40) / 16777216.0


def bench_boxes(n, classes):
    clusters = max(1, n // 100)
    boxes, scores, cls = [], [], []
    for i in range(n):
        c, k = i % clusters, 8 * i
        cx = 1000 * u((1 << 30) + 2 * c) + 60 * (u(k) - 0.5)
        cy = 1000 * u((1 << 30) + 2 * c + 1) + 60 * (u(k + 1) - 0.5)
        w, h = 16 + 64 * u(k + 2), 16 + 64 * u(k + 3)
        boxes.append([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2])
        scores.append(u(k + 4))
        cls.append(math.floor(classes * u(k + 5)))
    return (torch.tensor(boxes, dtype=torch.float64).float(), torch.tensor(scores, dtype=torch.float64).float(),
            torch.tensor(cls, dtype=torch.int64))


def measure(fn, sync):
    return timing.measure(fn, sync=sync, before=3)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--ops", default="nms,batched_nms")
    p.add_argument("--boxes", type=int, default=10000)
    p.add_argument("--classes", type=int, default=10)
    p.add_argument("--iou", type=float, default=0.5)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--device", default="cpu")
    a = p.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    dev = torch.device(a.device)
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    boxes, scores, cls = bench_boxes(a.boxes, a.classes)
    boxes, scores, cls = boxes.to(dev), scores.to(dev), cls.to(dev)
    iou_text = repr(a.iou) if a.iou != int(a.iou) else str(int(a.iou))
    for op in a.ops.split(","):
        if op == "nms":
            fn = lambda: torchvision.ops.nms(boxes, scores, a.iou)
            shape = f"{a.boxes}x4iou{iou_text}"
        elif op == "batched_nms":
            fn = lambda: torchvision.ops.batched_nms(boxes, scores, cls, a.iou)
            shape = f"{a.boxes}x4c{a.classes}iou{iou_text}"
        else:
            raise SystemExit(f"unknown op {op}")
        kept = int(fn().numel())
        med, mn, reps = measure(fn, sync)
        print(json.dumps({"impl": "torch", "op": op, "shape": shape, "dtype": "float32", "device": str(dev),
                          "threads": torch.get_num_threads(), "repeats": reps, "median_ms": round(med, 4),
                          "min_ms": round(mn, 4), "kbox_per_s": round(a.boxes / (med / 1000) / 1e3, 2), "kept": kept}))


if __name__ == "__main__":
    main()
