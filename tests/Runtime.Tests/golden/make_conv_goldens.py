"""Writes conv_goldens.json: Conv2d / ConvTranspose2d outputs and gradients computed by torch in float64.

Run with Debian's interpreter, which has torch:  /usr/bin/python3 make_conv_goldens.py
Inputs are rounded to 3 decimals so that they are exact enough in float32 too; each case stores the inputs,
a random output weighting `gy` (the loss is sum(y * gy)), the output and the gradients of input, weight, bias.
"""
import json
import os

import torch
import torch.nn.functional as F

torch.manual_seed(1234)


def rnd(shape):
    return torch.round(torch.randn(*shape, dtype=torch.float64) * 1000) / 1000


# name, op, input shape, weight shape, bias, stride, padding, dilation, groups, output_padding
CASES = [
    ("basic3x3", "conv", [2, 3, 6, 5], [4, 3, 3, 3], True, (1, 1), (0, 0), (1, 1), 1, (0, 0)),
    ("pad_stride", "conv", [2, 3, 7, 7], [4, 3, 3, 3], True, (2, 2), (1, 1), (1, 1), 1, (0, 0)),
    ("nonsquare", "conv", [1, 2, 6, 8], [3, 2, 2, 4], False, (1, 2), (1, 2), (1, 1), 1, (0, 0)),
    ("dilation", "conv", [2, 2, 9, 8], [3, 2, 3, 2], True, (1, 1), (2, 1), (2, 3), 1, (0, 0)),
    ("groups", "conv", [2, 4, 6, 6], [6, 2, 3, 3], True, (1, 1), (1, 1), (1, 1), 2, (0, 0)),
    ("depthwise", "conv", [2, 3, 7, 6], [3, 1, 3, 3], True, (1, 1), (1, 1), (1, 1), 3, (0, 0)),
    ("depthwise_mult_stride", "conv", [1, 2, 8, 7], [4, 1, 3, 3], False, (2, 2), (1, 1), (1, 1), 2, (0, 0)),
    ("pointwise", "conv", [2, 5, 4, 3], [3, 5, 1, 1], True, (1, 1), (0, 0), (1, 1), 1, (0, 0)),
    ("pointwise_stride2", "conv", [2, 4, 5, 5], [3, 4, 1, 1], False, (2, 2), (0, 0), (1, 1), 1, (0, 0)),
    ("k7_stride2", "conv", [1, 3, 12, 11], [4, 3, 7, 7], True, (2, 2), (3, 3), (1, 1), 1, (0, 0)),
    ("asym_pad_stride", "conv", [1, 3, 9, 6], [2, 3, 3, 2], True, (3, 2), (0, 2), (1, 2), 1, (0, 0)),
    ("noncontig", "conv", [2, 3, 5, 6], [4, 3, 3, 3], True, (1, 1), (1, 1), (1, 1), 1, (0, 0)),
    ("convT_basic", "convT", [2, 3, 4, 5], [3, 2, 3, 3], True, (1, 1), (0, 0), (1, 1), 1, (0, 0)),
    ("convT_stride_outpad", "convT", [1, 4, 4, 3], [4, 3, 3, 3], True, (2, 2), (1, 1), (1, 1), 1, (1, 1)),
    ("convT_groups", "convT", [2, 4, 3, 4], [4, 2, 3, 2], False, (2, 1), (1, 0), (1, 1), 2, (1, 0)),
    ("convT_dilation", "convT", [1, 2, 4, 4], [2, 3, 3, 3], True, (1, 2), (1, 1), (2, 2), 1, (1, 1)),
    ("convT_depthwise_k4s2", "convT", [1, 3, 3, 3], [3, 1, 4, 4], True, (2, 2), (1, 1), (1, 1), 3, (0, 0)),
    ("convT_noncontig", "convT", [1, 3, 4, 4], [3, 2, 2, 2], True, (2, 2), (0, 0), (1, 1), 1, (0, 0)),
]


def flat(t):
    return [float("%.12g" % v) for v in t.detach().reshape(-1).tolist()]


cases = []
for name, op, xs, ws, has_bias, stride, padding, dilation, groups, outpad in CASES:
    x = rnd(xs).requires_grad_()
    w = rnd(ws).requires_grad_()
    out_ch = ws[0] if op == "conv" else ws[1] * groups
    b = rnd([out_ch]).requires_grad_() if has_bias else None
    if op == "conv":
        y = F.conv2d(x, w, b, stride, padding, dilation, groups)
    else:
        y = F.conv_transpose2d(x, w, b, stride, padding, outpad, groups, dilation)
    gy = rnd(list(y.shape))
    (y * gy).sum().backward()
    case = {
        "name": name, "op": op, "stride": list(stride), "padding": list(padding), "dilation": list(dilation),
        "groups": groups, "outputPadding": list(outpad), "noncontig": name.endswith("noncontig"),
        "xShape": xs, "x": flat(x), "wShape": ws, "w": flat(w), "b": flat(b) if has_bias else None,
        "yShape": list(y.shape), "y": flat(y), "gy": flat(gy), "gx": flat(x.grad), "gw": flat(w.grad),
        "gb": flat(b.grad) if has_bias else None,
    }
    cases.append(case)

path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "conv_goldens.json")
with open(path, "w") as f:
    json.dump({"torch": torch.__version__, "cases": cases}, f, separators=(",", ":"))
print(path, os.path.getsize(path), "bytes")
