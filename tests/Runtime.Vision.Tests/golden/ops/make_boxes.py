#!/usr/bin/python3
"""Goldens for Runtime.Vision.Ops boxes, NMS, anchors, BoxCoder and Matcher (torchvision 0.14).

Run with /usr/bin/python3 (torch 1.13, torchvision 0.14); writes boxes.json beside this script.
Tensors are {"shape": [...], "data": [...]}. Every case is seeded.
"""
import json
import math
import os

import numpy as np
import torch
import torchvision
from torchvision.ops import boxes as box_ops
from torchvision.models.detection import _utils as det_utils
from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.models.detection.image_list import ImageList

torch.manual_seed(20260)
out = {}


def T(t):
    t = t.detach().cpu()
    if t.dtype == torch.float32:
        # The shortest text that reads back as the same float32 (keeps the file small).
        data = [float(repr(np.float32(v))) for v in t.reshape(-1).numpy()]
    elif t.is_floating_point():
        data = [float(v) for v in t.reshape(-1).tolist()]
    else:
        data = [int(v) for v in t.reshape(-1).tolist()]
    return {"shape": list(t.shape), "data": data}


def rand_boxes(n, scale=100.0, min_size=1.0, max_size=40.0, dtype=torch.float32):
    xy = torch.rand(n, 2, dtype=torch.float64) * scale
    wh = min_size + torch.rand(n, 2, dtype=torch.float64) * (max_size - min_size)
    return torch.cat([xy, xy + wh], 1).to(dtype)


def ref_nms(boxes, scores, thr, classes=None):
    """A plain stable-order greedy NMS in the box dtype, to check torchvision's order on ties."""
    order = sorted(range(len(scores)), key=lambda i: -float(scores[i]))
    b = boxes
    area = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    kept = []
    for i in order:
        ok = True
        for j in kept:
            if classes is not None and int(classes[i]) != int(classes[j]):
                continue
            iw = torch.clamp(torch.min(b[i, 2], b[j, 2]) - torch.max(b[i, 0], b[j, 0]), min=0)
            ih = torch.clamp(torch.min(b[i, 3], b[j, 3]) - torch.max(b[i, 1], b[j, 1]), min=0)
            inter = iw * ih
            iou = inter / (area[j] + area[i] - inter)
            if float(iou) > thr:
                ok = False
                break
        if ok:
            kept.append(i)
    return kept


# ---- box_iou / generalized_box_iou (float32 and float64) ----
a = rand_boxes(7)
b = rand_boxes(5)
b[0] = a[0]  # identical pair
out["iou_a"], out["iou_b"] = T(a), T(b)
out["box_iou"] = T(box_ops.box_iou(a, b))
out["generalized_box_iou"] = T(box_ops.generalized_box_iou(a, b))
a64, b64 = a.double(), b.double()
out["box_iou64"] = T(box_ops.box_iou(a64, b64))
out["box_area"] = T(box_ops.box_area(a))

# ---- generalized_box_iou_loss and its gradient (float64) ----
p = rand_boxes(6, dtype=torch.float64)
g = rand_boxes(6, dtype=torch.float64)
g[1] = p[1] + 60.0  # disjoint pair
g[2] = p[2] + torch.tensor([1.5, -2.0, 0.5, 3.0], dtype=torch.float64)
out["giou_p"], out["giou_g"] = T(p), T(g)
for red in ["none", "mean", "sum"]:
    out["giou_loss_" + red] = T(torchvision.ops.generalized_box_iou_loss(p, g, reduction=red))
pr = p.clone().requires_grad_(True)
gr = g.clone().requires_grad_(True)
w = torch.linspace(0.5, 2.0, 6, dtype=torch.float64)
(torchvision.ops.generalized_box_iou_loss(pr, gr, reduction="none") * w).sum().backward()
out["giou_grad_w"] = T(w)
out["giou_grad_p"] = T(pr.grad)
out["giou_grad_g"] = T(gr.grad)

# ---- nms ----
nms_cases = {}


def nms_case(name, boxes, scores, thr):
    keep = torchvision.ops.nms(boxes, scores, thr)
    ref = ref_nms(boxes, scores, thr)
    assert keep.tolist() == ref, (name, keep.tolist()[:20], ref[:20])
    nms_cases[name] = {"boxes": T(boxes), "scores": T(scores), "threshold": thr, "keep": T(keep)}


bx = rand_boxes(200)
nms_case("random", bx, torch.rand(200), 0.5)
bx = rand_boxes(60, scale=30.0)
nms_case("ties", bx, torch.randint(0, 4, (60,)).float() / 4, 0.3)
bx = rand_boxes(20)
bx = torch.cat([bx, bx[:10], bx[5:8]])
nms_case("duplicates", bx, torch.rand(33), 0.6)
# IoU exactly 0.5 (inter 2, union 4) and exactly 1/3: kept at threshold 0.5, dropped just below.
ex = torch.tensor([[0, 0, 3, 1], [1, 0, 4, 1], [2, 0, 5, 1], [10, 10, 12, 12], [11, 10, 13, 12]], dtype=torch.float32)
exs = torch.tensor([0.9, 0.8, 0.7, 0.6, 0.5])
nms_case("exact_threshold", ex, exs, 0.5)
nms_case("exact_threshold_below", ex, exs, 0.4999)
nms_case("exact_third", ex, exs, 1.0 / 3.0)
zb = rand_boxes(12)
zb[3, 2] = zb[3, 0]  # zero width
zb[5, 3] = zb[5, 1]  # zero height
zb[7] = zb[5]  # two identical empty boxes: IoU 0/0 never suppresses
zb[8] = torch.tensor([5.0, 5.0, 5.0, 5.0])
zb[9] = torch.tensor([5.0, 5.0, 5.0, 5.0])
nms_case("zero_area", zb, torch.rand(12), 0.1)
# Many boxes (several 64-box blocks on the GPU path), clustered so that many overlap.
centres = torch.rand(40, 2, dtype=torch.float64) * 400
idx = torch.randint(0, 40, (1500,))
c = centres[idx] + torch.randn(1500, 2, dtype=torch.float64) * 8
wh = 20 + torch.rand(1500, 2, dtype=torch.float64) * 30
big = torch.cat([c - wh / 2, c + wh / 2], 1).float()
big_scores = torch.rand(1500)
nms_case("many_05", big, big_scores, 0.5)
nms_case("many_07", big, big_scores, 0.7)
nms_case("many_64", big[:700].double(), big_scores[:700].double(), 0.6)
out["nms"] = nms_cases

# ---- batched_nms: both torchvision paths must agree on these ----
bcases = {}
for name, boxes, scores, n_cls, thr in [("small", rand_boxes(300, scale=60.0), torch.rand(300), 5, 0.5),
                                        ("many", big, big_scores, 7, 0.5)]:
    idxs = torch.randint(0, n_cls, (boxes.shape[0],))
    vanilla = box_ops._batched_nms_vanilla(boxes, scores, idxs, thr)
    trick = box_ops._batched_nms_coordinate_trick(boxes, scores, idxs, thr)
    assert vanilla.tolist() == trick.tolist(), name
    keep = torchvision.ops.batched_nms(boxes, scores, idxs, thr)
    assert keep.tolist() == ref_nms(boxes, scores, thr, idxs), name
    bcases[name] = {"boxes": T(boxes), "scores": T(scores), "idxs": T(idxs), "threshold": thr, "keep": T(keep)}
out["batched_nms"] = bcases

# ---- AnchorGenerator, FPN-like: 5 levels, sizes (32,)..(512,), ratios (0.5, 1, 2) ----
sizes = ((32,), (64,), (128,), (256,), (512,))
ratios = ((0.5, 1.0, 2.0),) * 5
gen = AnchorGenerator(sizes, ratios)
batch = torch.zeros(2, 3, 64, 48)
il = ImageList(batch, [(60, 45), (64, 40)])
fmaps = [torch.zeros(2, 8, 64 // s, 48 // s) for s in (4, 8, 16, 32)] + [torch.zeros(2, 8, 1, 1)]
anchors = gen(il, fmaps)
out["anchors"] = {
    "image": [64, 48],
    "feature_sizes": [list(f.shape[-2:]) for f in fmaps],
    "cell_anchors": [T(c) for c in gen.cell_anchors],
    "anchors": T(anchors[0]),
    "num_per_location": gen.num_anchors_per_location(),
}
assert torch.equal(anchors[0], anchors[1])
gen2 = AnchorGenerator(((16, 40), (100,)), ((0.25, 1.5), (0.7, 1.0, 3.0)))
il2 = ImageList(torch.zeros(1, 3, 50, 70), [(50, 70)])
f2 = [torch.zeros(1, 4, 7, 9), torch.zeros(1, 4, 3, 4)]
out["anchors_odd"] = {
    "image": [50, 70],
    "feature_sizes": [[7, 9], [3, 4]],
    "sizes": [[16, 40], [100]],
    "ratios": [[0.25, 1.5], [0.7, 1.0, 3.0]],
    "anchors": T(gen2(il2, f2)[0]),
}

# ---- BoxCoder ----
coder_cases = {}
ref = rand_boxes(10, min_size=2.0)
prop = rand_boxes(10, min_size=2.0)
for wname, weights in [("rpn", (1.0, 1.0, 1.0, 1.0)), ("rcnn", (10.0, 10.0, 5.0, 5.0))]:
    coder = det_utils.BoxCoder(weights)
    enc = coder.encode_single(ref, prop)
    codes = torch.randn(10, 8) * 2
    codes[0, 2] = 40.0  # far past the clamp (after dividing by the weight)
    codes[1, 7] = 60.0
    codes[2, 3] = -30.0
    dec = coder.decode_single(codes, prop)
    dec_list = coder.decode(codes, [prop[:4], prop[4:]])
    enc_list = coder.encode([ref[:3], ref[3:]], [prop[:3], prop[3:]])
    coder_cases[wname] = {"weights": list(weights), "encode": T(enc), "codes": T(codes), "decode": T(dec),
                          "decode_list": T(dec_list), "encode_list_0": T(enc_list[0]), "encode_list_1": T(enc_list[1])}
coder_cases["reference"] = T(ref)
coder_cases["proposals"] = T(prop)
out["box_coder"] = coder_cases

# ---- Matcher ----
gt = rand_boxes(4, scale=50.0, min_size=10.0)
anc = rand_boxes(30, scale=50.0, min_size=5.0)
anc[7] = gt[1]
anc[19] = gt[1]  # a tie for gt 1's best prediction (IoU 1 twice)
q = box_ops.box_iou(gt, anc)
mcases = {"quality": T(q)}
for allow in [False, True]:
    m = det_utils.Matcher(0.7, 0.3, allow_low_quality_matches=allow)
    mcases["matches_" + str(allow).lower()] = T(m(q))
# A hand matrix with low-quality ties: gt 0's best (0.4) appears at predictions 1 and 3.
hq = torch.tensor([[0.1, 0.4, 0.2, 0.4, 0.0], [0.05, 0.35, 0.6, 0.1, 0.2], [0.0, 0.0, 0.0, 0.0, 0.25]])
mcases["hand_quality"] = T(hq)
for allow in [False, True]:
    m = det_utils.Matcher(0.5, 0.3, allow_low_quality_matches=allow)
    mcases["hand_matches_" + str(allow).lower()] = T(m(hq))
m = det_utils.Matcher(0.5, 0.5, allow_low_quality_matches=False)
mcases["hand_equal_thresholds"] = T(m(hq))
out["matcher"] = mcases

# ---- clip / remove_small / convert ----
cb = rand_boxes(9, scale=60.0) - 10.0
out["clip_in"] = T(cb)
out["clip_out"] = T(box_ops.clip_boxes_to_image(cb, (50, 40)))
cb3 = cb.reshape(3, 3, 4)
out["clip3_out"] = T(box_ops.clip_boxes_to_image(cb3, (30, 45)))
rs = rand_boxes(12, min_size=0.0, max_size=10.0)
rs[4, 2] = rs[4, 0] + 5.0  # exactly min_size wide
out["small_in"] = T(rs)
out["small_keep"] = T(box_ops.remove_small_boxes(rs, 5.0))
cv = rand_boxes(6)
out["convert_in"] = T(cv)
for fi in ["xyxy", "xywh", "cxcywh"]:
    for fo in ["xyxy", "xywh", "cxcywh"]:
        out[f"convert_{fi}_{fo}"] = T(box_ops.box_convert(cv, fi, fo))

path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "boxes.json")
with open(path, "w") as f:
    json.dump(out, f, separators=(",", ":"))
print("wrote", path, os.path.getsize(path), "bytes")
