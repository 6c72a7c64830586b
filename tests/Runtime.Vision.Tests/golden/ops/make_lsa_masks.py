#!/usr/bin/env python3
"""Goldens for LinearSumAssignment and Masks (tests/Runtime.Vision.Tests/Ops/{LinearSumAssignment,Masks}Tests.cs).

Run with /usr/bin/python3 (scipy 1.10, torch 1.13, torchvision 0.14); writes lsa_masks.json next to
this script. Seeded: reruns give the same file.

"lsa": scipy.optimize.linear_sum_assignment results (row and column indices, total cost) per cost
matrix. Matrices are stored as {"shape", "data"}, except "lcg" cases, whose entries the tests make
with the same generator as below (lcg_matrix), so the large ones stay out of the file.
"lsa_errors": matrices scipy refuses, with its message.
"paste": torchvision.models.detection.roi_heads.paste_masks_in_image inputs and outputs.
"""
import json
import math
import os

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment
from torchvision.models.detection.roi_heads import paste_masks_in_image


def lcg_matrix(seed, rows, cols):
    """Row-major values in [0, 1): x <- x*6364136223846793005 + 1442695040888963407 (mod 2^64), value = (x >> 11) / 2^53.
    The same formula is in Runtime.Cli/VisionBench.Lsa.cs and the tests."""
    x = seed & 0xFFFFFFFFFFFFFFFF
    out = np.empty(rows * cols)
    for k in range(rows * cols):
        x = (x * 6364136223846793005 + 1442695040888963407) & 0xFFFFFFFFFFFFFFFF
        out[k] = (x >> 11) / float(1 << 53)
    return out.reshape(rows, cols)


def num(v):
    v = float(v)
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "Infinity" if v > 0 else "-Infinity"
    return v


def tensor(a):
    a = np.asarray(a)
    return {"shape": list(a.shape), "data": [num(v) for v in a.reshape(-1)]}


rng = np.random.default_rng(20240605)
lsa_cases = []


def add(name, cost, maximize=False, store=True, lcg=None):
    r, c = linear_sum_assignment(cost, maximize=maximize)
    case = {"name": name, "maximize": maximize, "rows": [int(v) for v in r], "cols": [int(v) for v in c],
            "total": float(cost[r, c].sum())}
    if lcg is not None:
        case["lcg"] = {"seed": lcg[0], "shape": [lcg[1], lcg[2]]}
    else:
        case["cost"] = tensor(cost)
    lsa_cases.append(case)


add("1x1", np.array([[3.5]]))
add("1x4", np.array([[4.0, 2.0, 7.0, 2.5]]))
add("4x1", np.array([[4.0], [2.0], [7.0], [2.5]]))
for n in (2, 3, 5, 8, 20):
    add(f"float_square_{n}", rng.random((n, n)))
for (r, c) in ((3, 7), (7, 3), (6, 11), (11, 6), (17, 30), (30, 17)):
    add(f"float_rect_{r}x{c}", rng.standard_normal((r, c)) * 10)
for (r, c) in ((6, 6), (9, 9), (5, 12), (12, 5), (16, 16)):
    add(f"int_ties_{r}x{c}", rng.integers(0, 4, (r, c)).astype(np.float64))
for k in range(30):
    r, c = (int(v) for v in rng.integers(1, 11, 2))
    add(f"int_ties_many_{k}_{r}x{c}", rng.integers(0, 3, (r, c)).astype(np.float64), maximize=bool(k % 4 == 3))
add("all_equal_5x5", np.ones((5, 5)))
add("all_equal_3x6", np.full((3, 6), 2.0))
add("all_equal_6x3", np.full((6, 3), 2.0))
add("maximize_square_7", rng.random((7, 7)), maximize=True)
add("maximize_rect_5x9", rng.random((5, 9)), maximize=True)
add("maximize_rect_9x5", rng.random((9, 5)), maximize=True)
add("maximize_int_8x8", rng.integers(-3, 3, (8, 8)).astype(np.float64), maximize=True)
forb = rng.random((8, 8))
forb[rng.random((8, 8)) < 0.4] = np.inf
add("inf_forbidden_8x8", forb)
forb = rng.random((6, 10))
forb[rng.random((6, 10)) < 0.5] = np.inf
add("inf_forbidden_6x10", forb)
add("inf_forbidden_10x6", forb.T.copy())
forbm = rng.random((7, 7))
forbm[rng.random((7, 7)) < 0.4] = -np.inf
add("maximize_neg_inf_forbidden_7x7", forbm, maximize=True)
add("negative_and_large_5x5", np.array([[1e9, -1e9, 3, 4, 5], [2, 1e-9, -7, 0, 1], [5, 5, 5, 5, 5], [-1, -2, -3, -4, -5], [0, 0, 1e6, 0, 0]]))
add("lcg_100x150", lcg_matrix(7, 100, 150), lcg=(7, 100, 150))
add("lcg_150x100", lcg_matrix(8, 150, 100), lcg=(8, 150, 100))
add("lcg_60x60", lcg_matrix(9, 60, 60), lcg=(9, 60, 60))

err_cases = []
for name, m, mx in [
    ("nan", [[1.0, 2.0], [float("nan"), 0.0]], False),
    ("neg_inf", [[1.0, -np.inf, 2.0], [3.0, 4.0, 5.0]], False),
    ("pos_inf_maximize", [[1.0, 2.0], [3.0, np.inf]], True),
    ("infeasible_row", [[np.inf, np.inf], [1.0, 2.0]], False),
    ("infeasible_col", [[np.inf, 1.0], [np.inf, 2.0]], False),
    ("infeasible_hall", [[1.0, np.inf, np.inf], [2.0, np.inf, np.inf], [1.0, 1.0, 1.0]], False),
    ("infeasible_maximize", [[-np.inf, 1.0], [-np.inf, 2.0]], True),
    ("infeasible_rect", [[np.inf, np.inf, np.inf, 1.0], [np.inf, np.inf, np.inf, 2.0]], False),
]:
    a = np.array(m)
    try:
        linear_sum_assignment(a, maximize=mx)
        raise SystemExit(f"scipy accepted {name}")
    except ValueError as e:
        err_cases.append({"name": name, "maximize": mx, "cost": tensor(a), "message": str(e)})

# ---------------------------------------------------------------- paste_masks_in_image
torch.manual_seed(5)
paste_cases = []


def add_paste(name, masks, boxes, img, padding):
    out = paste_masks_in_image(masks, boxes, img, padding=padding)
    paste_cases.append({"name": name, "padding": padding, "image": list(img), "masks": tensor(masks.double().numpy()),
                        "boxes": tensor(boxes.double().numpy()), "boxes_dtype": str(boxes.dtype).replace("torch.", ""),
                        "masks_dtype": str(masks.dtype).replace("torch.", ""), "out": tensor(out.double().numpy())})


boxes = torch.tensor([
    [3.2, 4.7, 12.9, 15.1],      # inside
    [-5.5, -3.0, 6.4, 8.8],      # past the top-left corner
    [15.3, 10.2, 30.0, 26.5],    # past the bottom-right corner
    [7.0, 7.0, 7.6, 8.2],        # tiny (about 1 px)
    [10.1, 2.2, 11.9, 3.4],      # tiny (2 px)
    [-2.0, 5.0, 25.0, 9.0],      # wider than the image
], dtype=torch.float32)
masks = torch.rand(6, 1, 7, 7)
add_paste("six_masks_pad1", masks, boxes, (20, 24), 1)
add_paste("six_masks_pad0", masks, boxes, (20, 24), 0)
add_paste("six_masks_pad2", masks, boxes, (20, 24), 2)
masks28 = torch.rand(3, 1, 28, 28)
boxes28 = torch.tensor([[1.5, 2.5, 30.25, 20.75], [20.0, 0.0, 39.9, 31.9], [-10.0, 12.0, 8.0, 40.0]], dtype=torch.float32)
add_paste("m28_pad1", masks28, boxes28, (32, 40), 1)
add_paste("m28_float64", masks28.double(), boxes28.double(), (32, 40), 1)
add_paste("m28_int64_boxes", masks28, torch.tensor([[1, 2, 30, 20], [20, 0, 39, 31], [-10, 12, 8, 40]]), (32, 40), 1)

doc = {"lsa": lsa_cases, "lsa_errors": err_cases, "paste": paste_cases}
path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "lsa_masks.json")
with open(path, "w") as f:
    json.dump(doc, f, separators=(",", ":"))
print(path, os.path.getsize(path), "bytes")
