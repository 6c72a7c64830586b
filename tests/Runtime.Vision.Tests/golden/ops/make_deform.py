"""Goldens for DeformConvTests: torchvision 0.14's deform_conv2d forward and all five gradients.

Run with /usr/bin/python3 (torch 1.13, torchvision 0.14): writes deform.json next to this script.
Every case is computed in float64; the gradients are those of sum(y * gy) for the stored gy.
"""
import json
import os

import torch
from torchvision.ops import deform_conv2d

torch.manual_seed(20261202)


def t(x):
    return {"shape": list(x.shape), "data": [float(v) for v in x.detach().reshape(-1).tolist()]}


def case(name, b, cin, h, w, cout, k, stride, padding, dilation, og, groups, use_mask, use_bias, offset_fn):
    kh, kw = k
    x = torch.randn(b, cin, h, w, dtype=torch.float64)
    weight = torch.randn(cout, cin // groups, kh, kw, dtype=torch.float64) * 0.5
    bias = torch.randn(cout, dtype=torch.float64) if use_bias else None
    oh = (h + 2 * padding[0] - dilation[0] * (kh - 1) - 1) // stride[0] + 1
    ow = (w + 2 * padding[1] - dilation[1] * (kw - 1) - 1) // stride[1] + 1
    offset = offset_fn((b, 2 * og * kh * kw, oh, ow))
    mask = torch.rand(b, og * kh * kw, oh, ow, dtype=torch.float64) if use_mask else None
    leaves = [x, offset, weight] + ([mask] if use_mask else []) + ([bias] if use_bias else [])
    for leaf in leaves:
        leaf.requires_grad_(True)
    y = deform_conv2d(x, offset, weight, bias, stride=stride, padding=padding, dilation=dilation, mask=mask)
    gy = torch.randn_like(y)
    (y * gy).sum().backward()
    out = {
        "stride": list(stride), "padding": list(padding), "dilation": list(dilation),
        "input": t(x), "offset": t(offset), "weight": t(weight), "output": t(y), "gy": t(gy),
        "grad_input": t(x.grad), "grad_offset": t(offset.grad), "grad_weight": t(weight.grad),
    }
    if use_mask:
        out["mask"] = t(mask)
        out["grad_mask"] = t(mask.grad)
    if use_bias:
        out["bias"] = t(bias)
        out["grad_bias"] = t(bias.grad)
    return name, out


def smooth(shape):
    return torch.randn(*shape, dtype=torch.float64) * 1.5


def awkward(shape):
    # Integer moves (samples on pixels and on the image border, including exactly -1 and H), half pixels, and
    # moves far outside the image, mixed with smooth ones.
    choices = torch.tensor([-9.0, -2.0, -1.0, 0.0, 1.0, 2.0, 3.0, 0.5, -0.5, 6.0, 7.0, 12.0], dtype=torch.float64)
    pick = choices[torch.randint(len(choices), shape)]
    keep = torch.rand(*shape) < 0.25
    return torch.where(keep, torch.randn(*shape, dtype=torch.float64) * 2.0, pick)


cases = dict([
    case("mask", 2, 4, 6, 6, 3, (3, 3), (1, 1), (1, 1), (1, 1), 1, 1, True, True, smooth),
    case("nomask", 2, 4, 6, 6, 3, (3, 3), (1, 1), (1, 1), (1, 1), 1, 1, False, True, smooth),
    case("groups2", 1, 4, 5, 6, 4, (3, 3), (1, 1), (1, 1), (1, 1), 2, 2, True, True, smooth),
    case("offset_groups2_nomask", 2, 6, 5, 5, 4, (3, 3), (1, 1), (1, 1), (1, 1), 2, 1, False, True, smooth),
    case("stride2_dilation2", 1, 3, 9, 8, 2, (3, 3), (2, 2), (2, 2), (2, 2), 1, 1, True, False, smooth),
    case("rect", 1, 2, 5, 7, 3, (2, 3), (1, 2), (0, 1), (1, 1), 1, 1, True, True, smooth),
    case("awkward", 2, 3, 6, 6, 2, (3, 3), (1, 1), (1, 1), (1, 1), 1, 1, True, False, awkward),
])

path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "deform.json")
with open(path, "w") as f:
    json.dump(cases, f)
print(path, os.path.getsize(path))
