"""Goldens for DeformRoiPoolTests.cs: modulated deformable RoI pooling (DCNv2, Zhu et al. 2018, section 3).

Run with /usr/bin/python3 (Debian torch 1.13); writes deform_roi.json next to this file.

The reference below is written from the paper (and mmcv's ModulatedDeformRoIPoolPack for the conventions the paper
leaves open), in float64 PyTorch, with autograd giving the gradients:
  - a roi (batch, x1, y1, x2, y2) is scaled to the map and, when aligned (mmcv: always), shifted by half a pixel;
    not aligned, its size is grown to at least 1 (torchvision's RoIAlign);
  - it is cut into ph x pw bins of size roi_h / ph by roi_w / pw; bin (i, j) is moved by
    (gamma * roi_w * offset[k, 0, i, j], gamma * roi_h * offset[k, 1, i, j]) (normalised offsets, x first);
  - each bin averages grid_h x grid_w bilinear samples at start + i * bin + (a + 0.5) * bin / grid
    (grid = sampling_ratio, or ceil(roi size / bins) when sampling_ratio <= 0), read as RoIAlign reads them (0 outside
    [-1, size], coordinates in [-1, 0] clamped to 0, the last row / column used for both corners at the far edge);
  - the bin's mean is multiplied by mask[k, 0, i, j] (the modulation, in [0, 1]; 1 without a mask).
The offset gradient is the derivative of this function: zero along an axis where the position is clamped.
Every case stores the input, rois, offset, mask, settings, the output, an upstream gradient gy and the gradients of
sum(y * gy) with respect to input, offset and mask. The "plain" case also checks (here) that without offset and mask
the reference equals torchvision's roi_align.
"""
import json
import math
import os

import torch
from torchvision.ops import roi_align

torch.manual_seed(20261214)


def t(x):
    x = x.detach().contiguous()
    return {"shape": list(x.shape), "data": [float(v) for v in x.reshape(-1).tolist()]}


def bilinear(plane, y, x):
    """RoIAlign's bilinear read of plane [C, H, W] at positions y, x (same shape S): [C, *S]."""
    h, w = plane.shape[-2:]
    valid = (y >= -1) & (y <= h) & (x >= -1) & (x <= w)
    y = y.clamp(-1, h)
    x = x.clamp(-1, w)
    y = torch.where(y <= 0, torch.zeros_like(y), y)
    x = torch.where(x <= 0, torch.zeros_like(x), x)
    y0 = torch.floor(y).long()
    x0 = torch.floor(x).long()
    y_edge, x_edge = y0 >= h - 1, x0 >= w - 1
    y0 = torch.where(y_edge, torch.full_like(y0, h - 1), y0)
    x0 = torch.where(x_edge, torch.full_like(x0, w - 1), x0)
    y1 = torch.where(y_edge, y0, y0 + 1)
    x1 = torch.where(x_edge, x0, x0 + 1)
    y = torch.where(y_edge, y0.to(y.dtype), y)
    x = torch.where(x_edge, x0.to(x.dtype), x)
    ly, lx = y - y0, x - x0
    hy, hx = 1 - ly, 1 - lx
    v = (hy * hx * plane[:, y0, x0] + hy * lx * plane[:, y0, x1] + ly * hx * plane[:, y1, x0]
         + ly * lx * plane[:, y1, x1])
    return torch.where(valid, v, torch.zeros_like(v))


def deform_roi_pool(x, rois, offset, mask, out, scale, sampling, gamma, aligned):
    ph, pw = out
    k = rois.shape[0]
    outs = []
    for r in range(k):
        b = int(rois[r, 0])
        shift = 0.5 if aligned else 0.0
        sw, sh = rois[r, 1] * scale - shift, rois[r, 2] * scale - shift
        rw, rh = rois[r, 3] * scale - shift - sw, rois[r, 4] * scale - shift - sh
        if not aligned:
            rw, rh = max(rw, 1.0), max(rh, 1.0)
        bh, bw = rh / ph, rw / pw
        gh = sampling if sampling > 0 else int(math.ceil(rh / ph))
        gw = sampling if sampling > 0 else int(math.ceil(rw / pw))
        count = max(gh * gw, 1)
        bins = []
        for i in range(ph):
            for j in range(pw):
                y0, x0 = sh, sw
                if offset is not None:
                    x0 = x0 + gamma * rw * offset[r, 0, i, j]
                    y0 = y0 + gamma * rh * offset[r, 1, i, j]
                ys = y0 + i * bh + (torch.arange(gh, dtype=x.dtype) + 0.5) * bh / gh
                xs = x0 + j * bw + (torch.arange(gw, dtype=x.dtype) + 0.5) * bw / gw
                yy, xx = torch.meshgrid(ys, xs, indexing="ij")
                v = bilinear(x[b], yy, xx).reshape(x.shape[1], -1).sum(1) / count
                if mask is not None:
                    v = v * mask[r, 0, i, j]
                bins.append(v)
        outs.append(torch.stack(bins, 1).reshape(x.shape[1], ph, pw))
    return torch.stack(outs)


def make_rois(n, h, w, scale, kinds):
    ih, iw = h / scale, w / scale
    rows = []
    for i, kind in enumerate(kinds):
        b = float(i % n)
        if kind == "inside":
            x1, y1 = (torch.rand(2, dtype=torch.float64) * torch.tensor([iw, ih]) * 0.5).tolist()
            bw, bh = ((torch.rand(2, dtype=torch.float64) * 0.35 + 0.15) * torch.tensor([iw, ih])).tolist()
            x2, y2 = x1 + bw, y1 + bh
        elif kind == "partly":
            x1, y1, x2, y2 = -0.3 * iw, 0.5 * ih, 0.45 * iw, 1.3 * ih
        elif kind == "tiny":
            x1, y1 = 0.37 * iw, 0.41 * ih
            x2, y2 = x1 + 0.3 / scale, y1 + 0.2 / scale
        elif kind == "huge":
            x1, y1, x2, y2 = -0.5 * iw, -0.6 * ih, 1.4 * iw, 1.5 * ih
        elif kind == "edge":
            x1, y1, x2, y2 = 0.7 * iw, 0.75 * ih, iw + 0.6 / scale, ih + 0.3 / scale
        rows.append([b, x1, y1, x2, y2])
    return torch.tensor(rows, dtype=torch.float64)


def case(name, n, c, h, w, kinds, out, scale, sampling, gamma, aligned, use_offset, use_mask, offset_std=0.4):
    x = torch.randn(n, c, h, w, dtype=torch.float64).requires_grad_(True)
    rois = make_rois(n, h, w, scale, kinds)
    k = rois.shape[0]
    offset = (torch.randn(k, 2, *out, dtype=torch.float64) * offset_std).requires_grad_(True) if use_offset else None
    mask = torch.rand(k, 1, *out, dtype=torch.float64).requires_grad_(True) if use_mask else None
    y = deform_roi_pool(x, rois, offset, mask, out, scale, sampling, gamma, aligned)
    gy = torch.randn_like(y)
    (y * gy).sum().backward()
    doc = {"output_size": list(out), "spatial_scale": scale, "sampling_ratio": sampling, "gamma": gamma, "aligned": aligned,
           "input": t(x), "rois": t(rois), "output": t(y), "gy": t(gy), "grad_input": t(x.grad)}
    if use_offset:
        doc["offset"], doc["grad_offset"] = t(offset), t(offset.grad)
    if use_mask:
        doc["mask"], doc["grad_mask"] = t(mask), t(mask.grad)
    if not use_offset and not use_mask:
        ref = roi_align(x.detach(), rois, out, scale, sampling, aligned)
        assert torch.allclose(ref, y.detach(), atol=1e-12), "without offset and mask the reference must be RoIAlign"
    return name, doc


cases = dict([
    case("modulated_aligned_adaptive", 2, 3, 9, 11, ["inside", "partly", "huge", "edge", "inside", "tiny"], (3, 3), 0.5, 0, 0.1,
         True, True, True),
    case("modulated_sampling2", 2, 4, 10, 8, ["inside", "inside", "partly", "edge", "tiny"], (2, 3), 1.0, 2, 0.1, False, True, True),
    case("offset_only_far", 1, 2, 7, 9, ["inside", "huge", "partly", "edge"], (3, 2), 1.0, 2, 0.2, True, True, False,
         offset_std=3.0),
    case("mask_only", 2, 2, 6, 7, ["inside", "edge", "partly"], (2, 2), 0.25, 3, 0.1, False, False, True),
    case("plain", 2, 3, 8, 8, ["inside", "partly", "tiny", "huge", "edge"], (3, 3), 0.5, 0, 0.1, True, False, False),
])

path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "deform_roi.json")
with open(path, "w") as f:
    json.dump(cases, f)
print(path, os.path.getsize(path))
