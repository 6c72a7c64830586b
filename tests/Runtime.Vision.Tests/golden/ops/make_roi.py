"""Goldens for RoiTests.cs: torchvision 0.14 roi_align / roi_pool / MultiScaleRoIAlign (float32).

Run with /usr/bin/python3 (Debian torch 1.13 / torchvision 0.14); writes roi.json next to this file.
Each case stores the input (or, for the multi-scale cases, the formula that makes it), the rois, the
settings, the forward output, an upstream gradient and the input gradient torchvision computes.
"""
import json
import math
import os
from collections import OrderedDict

import torch
from torchvision.ops import roi_align, roi_pool, MultiScaleRoIAlign

torch.manual_seed(0)


def t(x):
    x = x.detach().contiguous()
    return {"shape": list(x.shape), "data": [float(f"{v:.8g}") for v in x.reshape(-1).tolist()]}


def rois_for(n, h, w, scale, k, kinds):
    """k rois in image coordinates (feature size / scale), of the requested kinds."""
    ih, iw = h / scale, w / scale
    rows = []
    for i in range(k):
        kind = kinds[i % len(kinds)]
        b = float(i % n)
        if kind == "inside":
            x1, y1 = torch.rand(2).tolist()
            x1, y1 = x1 * iw * 0.6, y1 * ih * 0.6
            bw, bh = (torch.rand(2) * 0.4 + 0.1).tolist()
            x2, y2 = x1 + bw * iw, y1 + bh * ih
        elif kind == "partly":
            x1, y1 = -0.3 * iw, 0.5 * ih
            x2, y2 = 0.4 * iw, 1.4 * ih
        elif kind == "outside":
            x1, y1 = 1.3 * iw, 1.2 * ih
            x2, y2 = 1.9 * iw, 1.8 * ih
        elif kind == "tiny":
            x1, y1 = 0.37 * iw, 0.41 * ih
            x2, y2 = x1 + 0.2, y1 + 0.1
        elif kind == "huge":
            x1, y1 = -1.5 * iw, -2.0 * ih
            x2, y2 = 2.5 * iw, 2.2 * ih
        elif kind == "edge":
            x1, y1 = 0.8 * iw, 0.8 * ih
            x2, y2 = iw + 0.7 / scale, ih + 0.4 / scale
        rows.append([b, x1, y1, x2, y2])
    return torch.tensor(rows, dtype=torch.float32)


ALL = ["inside", "partly", "outside", "tiny", "huge", "edge"]


def case(name, op, x, rois, out, scale, sampling=0, aligned=False, view=None, base=None):
    x = x.detach().requires_grad_(True)
    if op == "roi_align":
        y = roi_align(x, rois, out, scale, sampling, aligned)
    else:
        y = roi_pool(x, rois, out, scale)
    gy = torch.randn(y.shape)
    (gx,) = torch.autograd.grad(y, x, gy, allow_unused=True) if y.numel() > 0 else (torch.zeros_like(x),)
    if gx is None:
        gx = torch.zeros_like(x)
    c = {"name": name, "op": op, "output": list(out), "scale": scale, "sampling": sampling, "aligned": aligned,
         "input": t(base if base is not None else x), "view": view or "none", "rois": t(rois),
         "y": t(y), "gy": t(gy), "gx": t(gx)}
    return c


cases = []
x = torch.randn(2, 3, 10, 12)
cases.append(case("align_basic_sr2", "roi_align", x, rois_for(2, 10, 12, 1.0, 8, ALL), (7, 7), 1.0, 2, False))
cases.append(case("align_aligned_sr2", "roi_align", x, rois_for(2, 10, 12, 1.0, 8, ALL), (7, 7), 1.0, 2, True))
cases.append(case("align_adaptive_half", "roi_align", x, rois_for(2, 10, 12, 0.5, 8, ALL), (3, 5), 0.5, 0, False))
cases.append(case("align_aligned_adaptive_quarter", "roi_align", x, rois_for(2, 10, 12, 0.25, 8, ALL), (4, 4), 0.25, 0, True))
cases.append(case("align_quarter_sr2", "roi_align", x, rois_for(2, 10, 12, 0.25, 6, ALL), (2, 2), 0.25, 2, False))
cases.append(case("align_zero_rois", "roi_align", x, torch.zeros(0, 5), (7, 7), 1.0, 2, False))
# Non-contiguous inputs: a permuted and a channel-sliced view.
base = torch.randn(2, 9, 11, 3)
cases.append(case("align_permuted", "roi_align", base.permute(0, 3, 1, 2), rois_for(2, 9, 11, 1.0, 6, ALL), (3, 3), 1.0, 0, True,
                  view="permute0312", base=base))
base2 = torch.randn(2, 6, 8, 9)
cases.append(case("align_sliced", "roi_align", base2[:, ::2], rois_for(2, 8, 9, 0.5, 6, ALL), (5, 4), 0.5, 2, False,
                  view="channels_step2", base=base2))

cases.append(case("pool_basic", "roi_pool", x, rois_for(2, 10, 12, 1.0, 8, ALL), (3, 3), 1.0))
cases.append(case("pool_half", "roi_pool", x, rois_for(2, 10, 12, 0.5, 8, ALL), (4, 2), 0.5))
cases.append(case("pool_quarter", "roi_pool", x, rois_for(2, 10, 12, 0.25, 6, ALL), (7, 7), 0.25))
cases.append(case("pool_zero_rois", "roi_pool", x, torch.zeros(0, 5), (7, 7), 1.0))
cases.append(case("pool_permuted", "roi_pool", base.permute(0, 3, 1, 2), rois_for(2, 9, 11, 1.0, 6, ALL), (2, 3), 1.0,
                  view="permute0312", base=base))


# Multi-scale: FPN-like maps of a 256x256 batch (strides 4, 8, 16, 32), values made by a formula the
# test repeats: x[flat i] = sin(0.37 * i + level) (float64, then float32).
def fpn_maps(n, c, sizes):
    maps = OrderedDict()
    for level, s in enumerate(sizes):
        i = torch.arange(n * c * s * s, dtype=torch.float64)
        maps[str(level)] = torch.sin(0.37 * i + level).to(torch.float32).reshape(n, c, s, s)
    return maps


def boxes_of(sizes, seed):
    g = torch.Generator().manual_seed(seed)
    out = []
    for s in sizes:
        cx, cy = (torch.rand(2, generator=g) * 200 + 28).tolist()
        ar = float(torch.rand(1, generator=g) * 1.0 + 0.5)
        w, h = s * math.sqrt(ar), s / math.sqrt(ar)
        out.append([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2])
    return torch.tensor(out, dtype=torch.float32)


ms = []
image_sizes = [(256, 240), (230, 256)]
boxes = [boxes_of([20, 70, 130, 250, 40, 160], 1), boxes_of([90, 30, 200, 240, 12], 2)]
for name, names, canon, grad in [("ms_four_levels", ["0", "1", "2", "3"], 112, True),
                                  ("ms_default_canonical", ["0", "1", "2", "3"], 224, False),
                                  ("ms_one_level", ["1"], 224, True)]:
    maps = fpn_maps(2, 2, [64, 32, 16, 8])
    maps["pool"] = torch.zeros(2, 2, 4, 4)
    for v in maps.values():
        v.requires_grad_(True)
    m = MultiScaleRoIAlign(names, 7 if name != "ms_one_level" else (3, 4), 2, canonical_scale=canon)
    y = m(maps, boxes, image_sizes)
    gy = torch.randn(y.shape)
    used = [maps[k] for k in names]
    grads = torch.autograd.grad(y, used, gy) if grad else []
    levels = m.map_levels(boxes).tolist() if len(names) > 1 else [0] * sum(len(b) for b in boxes)
    ms.append({"name": name, "names": names, "canonical_scale": canon, "output": list(m.output_size),
               "map_sizes": [64, 32, 16, 8], "channels": 2, "image_sizes": [list(s) for s in image_sizes],
               "boxes": [t(b) for b in boxes], "scales": m.scales, "levels": levels,
               "y": t(y), "gy": t(gy), "gx": [t(g) for g in grads]})

path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "roi.json")
with open(path, "w") as f:
    json.dump({"cases": cases, "multiscale": ms}, f, separators=(",", ":"))
print(path, os.path.getsize(path), "bytes")
