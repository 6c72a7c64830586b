"""Writes the loss/optimizer/schedule goldens for Runtime.Nn.Tests (Losses, Optim).

Run with Debian's python3-torch 1.13 + torchvision 0.14:
    /usr/bin/python3 tests/Runtime.Nn.Tests/golden/losses_optim/make_goldens.py
Everything is float64; the C# tests read the JSON files only.
"""
import json, math, os
import torch
import torch.nn.functional as F
from torchvision.ops import sigmoid_focal_loss

torch.set_default_dtype(torch.float64)
HERE = os.path.dirname(os.path.abspath(__file__))


def flat(t):
    return [float(v) for v in t.detach().reshape(-1).tolist()]


def leaf(shape, seed, scale=1.0):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(*shape, generator=g) * scale).requires_grad_(True)


def case(name, inputs, fn, extra):
    """inputs: dict name -> leaf tensor (float) or int tensor. fn returns the loss (any shape)."""
    out = fn()
    g = torch.Generator().manual_seed(123)
    w = torch.randn(out.shape, generator=g)
    (out * w).sum().backward()
    rec = {"name": name, "out_shape": list(out.shape), "out": flat(out), "out_weight": flat(w)}
    for k, v in inputs.items():
        rec[k] = {"shape": list(v.shape), "data": flat(v) if v.is_floating_point() else [int(x) for x in v.reshape(-1).tolist()]}
        if v.is_floating_point() and v.requires_grad:
            rec[k]["grad"] = flat(v.grad)
    rec.update(extra)
    return rec


losses = []
# cross entropy
for red in ["mean", "sum", "none"]:
    for weighted in [False, True]:
        x = leaf([6, 5], 1)
        t = torch.tensor([0, 4, -100, 2, 2, 1])
        wt = torch.tensor([0.5, 1.0, 2.0, 1.5, 0.25]) if weighted else None
        inp = {"input": x, "target": t}
        if weighted:
            inp["weight"] = wt
        losses.append(case("cross_entropy", inp, lambda: F.cross_entropy(x, t, weight=wt, ignore_index=-100, reduction=red),
                           {"reduction": red, "ignore_index": -100}))
# cross entropy over [N,C,d1,d2], custom ignore index
x = leaf([2, 4, 3, 2], 2)
t = torch.tensor([[[0, 3], [1, 255], [2, 2]], [[3, 3], [255, 0], [1, 0]]])
wt = torch.tensor([1.0, 0.5, 2.0, 3.0])
for red in ["mean", "none"]:
    x.grad = None
    losses.append(case("cross_entropy", {"input": x, "target": t, "weight": wt},
                       lambda: F.cross_entropy(x, t, weight=wt, ignore_index=255, reduction=red), {"reduction": red, "ignore_index": 255}))

# BCE with logits
for red in ["mean", "sum", "none"]:
    for mode in ["plain", "weight", "pos_weight", "both"]:
        x = leaf([4, 3], 3, 3.0)
        tt = torch.rand(4, 3, generator=torch.Generator().manual_seed(4))
        tt[0] = torch.tensor([0.0, 1.0, 1.0])
        tt = tt.requires_grad_(True)
        w = torch.tensor([[0.5], [1.0], [2.0], [0.1]]) if mode in ("weight", "both") else None
        pw = torch.tensor([1.0, 2.0, 0.5]) if mode in ("pos_weight", "both") else None
        inp = {"input": x, "target": tt}
        if w is not None:
            inp["weight"] = w
        if pw is not None:
            inp["pos_weight"] = pw
        losses.append(case("bce_with_logits", inp,
                           lambda: F.binary_cross_entropy_with_logits(x, tt, weight=w, pos_weight=pw, reduction=red), {"reduction": red}))

# smooth L1 / L1
for red in ["mean", "sum", "none"]:
    for beta in [1.0, 0.5, 0.0]:
        x = leaf([3, 4], 5)
        y = leaf([3, 4], 6)
        losses.append(case("smooth_l1", {"input": x, "target": y},
                           lambda: F.smooth_l1_loss(x, y, beta=beta, reduction=red), {"reduction": red, "beta": beta}))
    x = leaf([3, 4], 7)
    y = leaf([3, 4], 8)
    losses.append(case("l1", {"input": x, "target": y}, lambda: F.l1_loss(x, y, reduction=red), {"reduction": red}))

# sigmoid focal loss (torchvision)
for red in ["none", "mean", "sum"]:
    for alpha, gamma in [(0.25, 2.0), (-1.0, 2.0), (0.5, 0.0), (0.25, 1.5)]:
        x = leaf([5, 3], 9, 2.0)
        tt = (torch.rand(5, 3, generator=torch.Generator().manual_seed(10)) > 0.6).double()
        losses.append(case("sigmoid_focal", {"input": x, "target": tt},
                           lambda: sigmoid_focal_loss(x, tt, alpha=alpha, gamma=gamma, reduction=red),
                           {"reduction": red, "alpha": alpha, "gamma": gamma}))


# dice loss: 1 - (2 sum(p t) + 1) / (sum p + sum t + 1) per sample, p = sigmoid(x)
def dice(x, t, red):
    p = x.sigmoid().flatten(1)
    t = t.flatten(1)
    loss = 1 - (2 * (p * t).sum(1) + 1) / (p.sum(1) + t.sum(1) + 1)
    return {"none": loss, "mean": loss.mean(), "sum": loss.sum()}[red]


for red in ["none", "mean", "sum"]:
    x = leaf([3, 4, 5], 11, 2.0)
    tt = (torch.rand(3, 4, 5, generator=torch.Generator().manual_seed(12)) > 0.5).double().requires_grad_(True)
    losses.append(case("dice", {"input": x, "target": tt}, lambda: dice(x, tt, red), {"reduction": red}))

with open(os.path.join(HERE, "losses.json"), "w") as f:
    json.dump(losses, f)

# ---------------- optimizers ----------------
opt_cases = []
configs = [
    ("sgd", dict(lr=0.1)),
    ("sgd", dict(lr=0.05, momentum=0.9)),
    ("sgd", dict(lr=0.05, momentum=0.9, dampening=0.1, weight_decay=1e-2)),
    ("sgd", dict(lr=0.05, momentum=0.9, nesterov=True, weight_decay=1e-3)),
    ("adam", dict(lr=1e-2)),
    ("adam", dict(lr=1e-2, betas=(0.8, 0.95), eps=1e-6, weight_decay=0.1)),
    ("adam", dict(lr=1e-2, weight_decay=0.01, amsgrad=True)),
    ("adamw", dict(lr=1e-2)),
    ("adamw", dict(lr=1e-2, betas=(0.85, 0.99), weight_decay=0.05, amsgrad=True)),
]
for ci, (kind, kw) in enumerate(configs):
    g = torch.Generator().manual_seed(100 + ci)
    shapes = [[3, 2], [4]]
    params = [torch.randn(*s, generator=g).requires_grad_(True) for s in shapes]
    init = [flat(p) for p in params]
    cls = {"sgd": torch.optim.SGD, "adam": torch.optim.Adam, "adamw": torch.optim.AdamW}[kind]
    extra = {} if kind == "sgd" else {"foreach": False}
    opt = cls(params, **kw, **extra)
    grads, after = [], []
    for step in range(10):
        gs = [torch.randn(*s, generator=g) for s in shapes]
        for p, gg in zip(params, gs):
            p.grad = gg.clone()
        opt.step()
        grads.append([flat(x) for x in gs])
        after.append([flat(p) for p in params])
    cfg = dict(kw)
    if "betas" in cfg:
        cfg["betas"] = list(cfg["betas"])
    opt_cases.append({"kind": kind, "config": cfg, "shapes": shapes, "init": init, "grads": grads, "after": after})

# clip_grad_norm_
clips = []
for norm_type, max_norm in [(2.0, 1.0), (2.0, 100.0), (1.0, 0.5), (float("inf"), 0.3), (3.0, 0.7)]:
    g = torch.Generator().manual_seed(200)
    shapes = [[3, 2], [4]]
    params = [torch.zeros(*s).requires_grad_(True) for s in shapes]
    gs = [torch.randn(*s, generator=g) for s in shapes]
    for p, gg in zip(params, gs):
        p.grad = gg.clone()
    total = torch.nn.utils.clip_grad_norm_(params, max_norm, norm_type=norm_type)
    clips.append({"norm_type": "inf" if math.isinf(norm_type) else norm_type, "max_norm": max_norm, "shapes": shapes,
                  "grads": [flat(x) for x in gs], "total": float(total), "clipped": [flat(p.grad) for p in params]})

with open(os.path.join(HERE, "optim.json"), "w") as f:
    json.dump({"optimizers": opt_cases, "clip": clips}, f)

# ---------------- schedules ----------------
S = torch.optim.lr_scheduler


def run(make, steps=30, base_lr=0.1):
    p = torch.zeros(1, requires_grad=True)
    opt = torch.optim.SGD([p], lr=base_lr)
    sch = make(opt)
    lrs = []
    for _ in range(steps):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sch.step()
    return lrs


scheds = [
    {"name": "linear", "args": {"start_factor": 0.001, "end_factor": 1.0, "total_iters": 10},
     "lrs": run(lambda o: S.LinearLR(o, start_factor=0.001, end_factor=1.0, total_iters=10))},
    {"name": "linear", "args": {"start_factor": 1.0, "end_factor": 0.1, "total_iters": 20},
     "lrs": run(lambda o: S.LinearLR(o, start_factor=1.0, end_factor=0.1, total_iters=20))},
    {"name": "multistep", "args": {"milestones": [5, 12, 20], "gamma": 0.1},
     "lrs": run(lambda o: S.MultiStepLR(o, milestones=[5, 12, 20], gamma=0.1))},
    {"name": "poly", "args": {"total_iters": 25, "power": 0.9},
     "lrs": run(lambda o: S.PolynomialLR(o, total_iters=25, power=0.9))},
    {"name": "poly", "args": {"total_iters": 30, "power": 1.0},
     "lrs": run(lambda o: S.PolynomialLR(o, total_iters=30, power=1.0))},
    {"name": "cosine", "args": {"T_max": 30, "eta_min": 0.001},
     "lrs": run(lambda o: S.CosineAnnealingLR(o, T_max=30, eta_min=0.001))},
    {"name": "cosine", "args": {"T_max": 30, "eta_min": 0.0},
     "lrs": run(lambda o: S.CosineAnnealingLR(o, T_max=30, eta_min=0.0), base_lr=0.02)},
    {"name": "warmup_multistep", "args": {"start_factor": 0.01, "warmup": 5, "milestones": [10, 20], "gamma": 0.1},
     "lrs": run(lambda o: S.SequentialLR(o, [S.LinearLR(o, start_factor=0.01, total_iters=5),
                                             S.MultiStepLR(o, milestones=[10, 20], gamma=0.1)], milestones=[5]))},
    {"name": "warmup_cosine", "args": {"start_factor": 0.1, "warmup": 4, "T_max": 26, "eta_min": 0.0},
     "lrs": run(lambda o: S.SequentialLR(o, [S.LinearLR(o, start_factor=0.1, total_iters=4),
                                             S.CosineAnnealingLR(o, T_max=26)], milestones=[4]))},
]
for s in scheds:
    s.setdefault("base_lr", 0.1)
scheds[6]["base_lr"] = 0.02
with open(os.path.join(HERE, "schedules.json"), "w") as f:
    json.dump(scheds, f)
print(len(losses), "losses,", len(opt_cases), "optimizers,", len(clips), "clips,", len(scheds), "schedules")
