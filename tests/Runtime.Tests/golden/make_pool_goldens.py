"""Writes pool.json: outputs and input gradients of torch's max/avg/adaptive pooling and
interpolate (torch 1.13) for the cases PoolTests.cs checks.

Run with Debian's python (it has torch): /usr/bin/python3 make_pool_goldens.py
Inputs are rounded to 3 decimals and computed in float64; the output gradient is a fixed random
tensor, so grad_in is d(sum(out * grad_out)) / d(input).
"""
import json
import math
import os

import torch
import torch.nn.functional as F

gen = torch.Generator().manual_seed(1234)


def rand(*shape):
    return torch.round(torch.randn(*shape, generator=gen, dtype=torch.float64) * 1000) / 1000


def flat(t):
    out = []
    for v in t.reshape(-1).tolist():
        out.append("nan" if math.isnan(v) else v)
    return out


cases = []


def add(name, op, x, params, fn):
    x = x.clone().requires_grad_(True)
    res = fn(x)
    y, idx = (res if isinstance(res, tuple) else (res, None))
    g = rand(*y.shape)
    (y * g).sum().backward()
    case = {
        "name": name, "op": op, "params": params,
        "shape": list(x.shape), "input": flat(x.detach()),
        "out_shape": list(y.shape), "output": flat(y.detach()),
        "grad_out": flat(g), "grad_in": flat(x.grad),
    }
    if idx is not None:
        case["indices"] = idx.reshape(-1).tolist()
    cases.append(case)


def maxpool(name, shape, k, s, p, d, ceil, x=None):
    x = rand(*shape) if x is None else x
    add(name, "max", x, {"k": k, "s": s, "p": p, "d": d, "ceil": ceil},
        lambda t: F.max_pool2d(t, k, s, p, d, ceil_mode=ceil, return_indices=True))


def avgpool(name, shape, k, s, p, ceil, cip, div):
    add(name, "avg", rand(*shape), {"k": k, "s": s, "p": p, "ceil": ceil, "cip": cip, "div": div},
        lambda t: F.avg_pool2d(t, k, s, p, ceil_mode=ceil, count_include_pad=cip, divisor_override=div))


def adaptive(name, shape, out):
    add(name, "adaptive", rand(*shape), {"size": out}, lambda t: F.adaptive_avg_pool2d(t, out))


def interp(name, shape, mode, size=None, scale=None, align=None, recompute=None):
    params = {"mode": mode, "size": size, "scale": scale, "align": align, "recompute": bool(recompute)}
    # torch reads a 3-D input as 1-D (temporal) data; the project treats [C, H, W] as one image.
    batched = len(shape) == 4

    def fn(t):
        y = F.interpolate(t if batched else t.unsqueeze(0), size=size, scale_factor=scale, mode=mode,
                          align_corners=align, recompute_scale_factor=recompute)
        return y if batched else y.squeeze(0)
    add(name, "interp", rand(*shape), params, fn)


# Max pooling.
maxpool("resnet_k3s2p1", [2, 2, 9, 8], [3, 3], [2, 2], [1, 1], [1, 1], False)
maxpool("ceil_k3s2", [1, 2, 7, 8], [3, 3], [2, 2], [0, 0], [1, 1], True)
# ceil mode drops a last window that would start in the right padding: 5 -> 2 outputs, not 3.
maxpool("ceil_last_window_rule", [1, 1, 5, 5], [2, 2], [3, 3], [1, 1], [1, 1], True)
maxpool("dilation_rect", [1, 2, 8, 9], [2, 3], [1, 2], [1, 0], [2, 1], False)
maxpool("dilation_ceil", [1, 1, 9, 7], [3, 3], [2, 2], [1, 1], [2, 2], True)
maxpool("unbatched", [2, 6, 5], [2, 2], [2, 2], [0, 0], [1, 1], False)
# Ties pick the first maximum in scan order.
ties = torch.tensor([[1., 3., 3., 0.], [3., 2., 1., 1.], [0., 0., 5., 5.], [0., 0., 5., 5.]], dtype=torch.float64)
maxpool("ties", [1, 1, 4, 4], [2, 2], [2, 2], [0, 0], [1, 1], False, x=ties.reshape(1, 1, 4, 4))
maxpool("ties_overlap", [1, 1, 4, 4], [3, 3], [1, 1], [1, 1], [1, 1], False, x=ties.reshape(1, 1, 4, 4))
# NaN propagates (and its position is the index).
withnan = rand(1, 1, 4, 6)
withnan[0, 0, 1, 1] = float("nan")
withnan[0, 0, 2, 4] = float("nan")
add("nan", "max", withnan, {"k": [2, 3], "s": [2, 3], "p": [0, 0], "d": [1, 1], "ceil": False},
    lambda t: F.max_pool2d(t, [2, 3], [2, 3], 0, 1, return_indices=True))

# Average pooling.
avgpool("avg_k3s2p1", [2, 2, 7, 6], [3, 3], [2, 2], [1, 1], False, True, None)
avgpool("avg_nopad_count_ceil", [1, 2, 7, 6], [3, 3], [2, 2], [1, 1], True, False, None)
avgpool("avg_ceil_include_pad", [1, 1, 6, 6], [3, 3], [2, 2], [0, 0], True, True, None)
avgpool("avg_ceil_pad", [1, 1, 5, 6], [2, 3], [2, 2], [1, 1], True, True, None)
avgpool("avg_divisor", [1, 2, 5, 7], [2, 3], [2, 1], [1, 1], False, True, 5)
avgpool("avg_divisor_ceil_nopad", [1, 1, 6, 5], [3, 2], [2, 2], [1, 1], True, False, 3)
avgpool("avg_unbatched", [3, 4, 6], [2, 2], [2, 2], [0, 0], False, True, None)

# Adaptive average pooling (non-divisible sizes make overlapping bins).
adaptive("adaptive_7x9_3x4", [2, 2, 7, 9], [3, 4])
adaptive("adaptive_5x5_2x3", [1, 2, 5, 5], [2, 3])
adaptive("adaptive_up_4x3_6x7", [1, 1, 4, 3], [6, 7])
adaptive("adaptive_global", [2, 3, 5, 4], [1, 1])
adaptive("adaptive_unbatched", [2, 6, 5], [4, 4])

# Interpolation.
interp("nearest_size_up", [1, 2, 5, 7], "nearest", size=[8, 11])
interp("nearest_size_down", [1, 2, 5, 7], "nearest", size=[3, 4])
interp("nearest_2x", [2, 2, 4, 3], "nearest", scale=[2.0, 2.0])
interp("nearest_scale_frac", [1, 2, 5, 7], "nearest", scale=[1.5, 0.6])
interp("nearest_scale_frac_keep", [1, 1, 6, 7], "nearest", scale=[1.7, 2.3])
interp("nearest_scale_frac_recompute", [1, 1, 6, 7], "nearest", scale=[1.7, 2.3], recompute=True)
interp("nearest_scale_half", [1, 2, 6, 7], "nearest", scale=[0.5, 0.5])
interp("nearest_same_size_scale", [1, 1, 5, 5], "nearest", scale=[1.1, 1.1])
interp("nearest_unbatched", [2, 3, 4], "nearest", size=[5, 9])
interp("bilinear_up_false", [1, 2, 4, 5], "bilinear", size=[9, 13], align=False)
interp("bilinear_up_true", [1, 2, 4, 5], "bilinear", size=[9, 13], align=True)
interp("bilinear_down_false", [1, 2, 7, 6], "bilinear", size=[3, 2], align=False)
interp("bilinear_down_true", [1, 2, 7, 6], "bilinear", size=[3, 2], align=True)
interp("bilinear_to_one_true", [1, 1, 4, 5], "bilinear", size=[1, 3], align=True)
interp("bilinear_scale_keep", [1, 2, 5, 6], "bilinear", scale=[1.5, 2.5], align=False)
interp("bilinear_scale_frac_keep", [1, 1, 6, 7], "bilinear", scale=[0.7, 1.3], align=False)
interp("bilinear_scale_frac_recompute", [1, 1, 6, 7], "bilinear", scale=[0.7, 1.3], align=False, recompute=True)
interp("bilinear_scale_align", [1, 1, 6, 7], "bilinear", scale=[1.7, 0.6], align=True)
interp("bilinear_2x", [2, 2, 4, 3], "bilinear", scale=[2.0, 2.0], align=False)

out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "pool.json")
with open(out, "w") as f:
    json.dump({"torch": torch.__version__, "cases": cases}, f, separators=(",", ":"))
print(out, len(cases), "cases", os.path.getsize(out), "bytes")
