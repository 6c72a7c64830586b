"""Goldens for tests/Runtime.Nn.Tests/Modules: run with /usr/bin/python3 (Debian python3-torch 1.13, torchvision 0.14).

Writes modules.json: per layer its float64 parameters, input, upstream gradient, output and gradients
(loss = sum(output * upstream)), BatchNorm2d's running statistics after a training step, and the
state_dict keys of a small nn.Sequential. Tests read the file; they never call Python.
"""
import json
import os

import torch
from torch import nn
from torchvision.ops.misc import FrozenBatchNorm2d

torch.manual_seed(1234)
D = torch.float64


def flat(t):
    return {"shape": list(t.shape), "data": t.detach().reshape(-1).tolist()}


def run(module, x, params):
    x = x.clone().requires_grad_(True)
    y = module(x)
    g = torch.randn(y.shape, dtype=D)
    (y * g).sum().backward()
    res = {"input": flat(x), "upstream": flat(g), "output": flat(y), "input_grad": flat(x.grad)}
    for name in params:
        p = getattr(module, name)
        res[name] = flat(p)
        if p.grad is not None:
            res[name + "_grad"] = flat(p.grad)
    return res


def randomize(module, names, positive=()):
    with torch.no_grad():
        for n in names:
            t = getattr(module, n)
            t.copy_(torch.rand(t.shape, dtype=D) + 0.5 if n in positive else torch.randn(t.shape, dtype=D))


out = {}

lin = nn.Linear(4, 3).double()
randomize(lin, ["weight", "bias"])
out["linear"] = run(lin, torch.randn(2, 4, dtype=D), ["weight", "bias"])

ln = nn.LayerNorm([3, 4]).double()
randomize(ln, ["weight", "bias"])
out["layer_norm"] = run(ln, torch.randn(2, 3, 4, dtype=D) * 2 + 1, ["weight", "bias"])

bn = nn.BatchNorm2d(3).double()
randomize(bn, ["weight", "bias"])
with torch.no_grad():
    bn.running_mean.copy_(torch.randn(3, dtype=D))
    bn.running_var.copy_(torch.rand(3, dtype=D) + 0.5)
rm0, rv0 = bn.running_mean.clone(), bn.running_var.clone()
bn.train()
res = run(bn, torch.randn(2, 3, 2, 3, dtype=D) * 1.5 + 0.3, ["weight", "bias"])
res["running_mean_before"] = flat(rm0)
res["running_var_before"] = flat(rv0)
res["running_mean_after"] = flat(bn.running_mean)
res["running_var_after"] = flat(bn.running_var)
res["num_batches_tracked_after"] = int(bn.num_batches_tracked)
bn.eval()
x2 = torch.randn(2, 3, 2, 3, dtype=D)
res["eval"] = run(bn, x2, [])
out["batch_norm2d"] = res

fbn = FrozenBatchNorm2d(3).double()
randomize(fbn, ["weight", "bias", "running_mean", "running_var"], positive=("running_var",))
out["frozen_batch_norm2d"] = run(fbn, torch.randn(2, 3, 2, 2, dtype=D), ["weight", "bias", "running_mean", "running_var"])
out["frozen_batch_norm2d"]["eps"] = fbn.eps

gn = nn.GroupNorm(2, 4).double()
randomize(gn, ["weight", "bias"])
out["group_norm"] = run(gn, torch.randn(2, 4, 3, 2, dtype=D) + 0.5, ["weight", "bias"])

seq = nn.Sequential(nn.Linear(4, 3), nn.BatchNorm1d(3), nn.ReLU(), nn.Sequential(nn.Linear(3, 2, bias=False), nn.LayerNorm(2)), nn.GroupNorm(1, 2))
out["sequential_state_dict"] = [{"name": k, "shape": list(v.shape), "dtype": str(v.dtype)} for k, v in seq.state_dict().items()]
out["sequential_parameters"] = [k for k, _ in seq.named_parameters()]

out["versions"] = {"torch": torch.__version__}
with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "modules.json"), "w") as f:
    json.dump(out, f, indent=1)
