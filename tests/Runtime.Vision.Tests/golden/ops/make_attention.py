#!/usr/bin/python3
"""Goldens for the attention tests (Ops/AttentionTests.cs), in float64 torch 1.13.

Run with /usr/bin/python3 from this folder; writes attention.json next to it.
- sdpa: the explicit softmax(q k^T * scale + mask) v (torch 1.13 has no fused attention), with a
  fully masked row defined as zeros (explicit softmax gives NaN there), plus the gradients of q, k, v
  for a random output gradient.
- mha: torch.nn.MultiheadAttention outputs, head-averaged weights and gradients, seeded weights
  written under torch's state-dict names.
- axial: a position-sensitive axial attention written here from Wang et al. 2020 (Axial-DeepLab),
  y_o = sum_p softmax_p(q_o.k_p + q_o.rq[p-o] + k_p.rk[p-o]) (v_p + rv[p-o]), and an axial block
  (conv 1x1 - BN - ReLU - height attention - width attention - ReLU - conv 1x1 - BN - residual - ReLU).
"""
import json
import math
import os

import torch

torch.manual_seed(20261202)
D64 = torch.float64


def t(x):
    x = x.detach().to(D64).contiguous()
    flat = [float(f"{v:.12g}") if math.isfinite(v) else ("NaN" if math.isnan(v) else ("Infinity" if v > 0 else "-Infinity"))
            for v in x.reshape(-1).tolist()]
    return {"shape": list(x.shape), "data": flat}


def reference_sdpa(q, k, v, mask=None, causal=False, scale=None):
    """Explicit attention; mask: bool (True = may attend) or additive float; broadcast to [..., L, S]."""
    L, S = q.shape[-2], k.shape[-2]
    sc = 1.0 / math.sqrt(q.shape[-1]) if scale is None else scale
    s = q @ k.transpose(-2, -1) * sc
    allowed = torch.ones(s.shape, dtype=torch.bool)
    if mask is not None:
        if mask.dtype == torch.bool:
            allowed = allowed & mask
        else:
            s = s + mask
    if causal:
        allowed = allowed & torch.ones(L, S, dtype=torch.bool).tril()
    s = s.masked_fill(~allowed, float("-inf"))
    dead = torch.isneginf(s).all(-1, keepdim=True)
    s = torch.where(dead, torch.zeros_like(s), s)
    p = torch.where(dead, torch.zeros_like(s), torch.softmax(s, -1))
    return p @ v


def sdpa_case(name, qs, ks, vs, mask=None, causal=False, scale=None):
    q = torch.randn(qs, dtype=D64, requires_grad=True)
    k = torch.randn(ks, dtype=D64, requires_grad=True)
    v = torch.randn(vs, dtype=D64, requires_grad=True)
    out = reference_sdpa(q, k, v, mask, causal, scale)
    g = torch.randn(out.shape, dtype=D64)
    out.backward(g)
    c = {"name": name, "q": t(q), "k": t(k), "v": t(v), "out": t(out), "dout": t(g),
         "dq": t(q.grad), "dk": t(k.grad), "dv": t(v.grad), "causal": causal}
    if scale is not None:
        c["scale"] = scale
    if mask is not None:
        c["mask"] = t(mask.to(D64))
        c["mask_bool"] = mask.dtype == torch.bool
    return c


sdpa = []
B, H, L, S, D, Dv = 2, 2, 5, 7, 4, 3
sdpa.append(sdpa_case("plain", (B, H, L, D), (B, H, S, D), (B, H, S, Dv)))
sdpa.append(sdpa_case("scale", (B, H, L, D), (B, H, S, D), (B, H, S, Dv), scale=0.3))
bmask = torch.rand(L, S) > 0.4
bmask[:, 0] = True
sdpa.append(sdpa_case("bool_mask", (B, H, L, D), (B, H, S, D), (B, H, S, Dv), mask=bmask))
amask = torch.randn(B, 1, L, S, dtype=D64)
amask[0, 0, 1, 2] = float("-inf")
amask[1, 0, 3, :4] = float("-inf")
sdpa.append(sdpa_case("additive_mask", (B, H, L, D), (B, H, S, D), (B, H, S, Dv), mask=amask))
sdpa.append(sdpa_case("causal", (B, H, 6, D), (B, H, 6, D), (B, H, 6, Dv), causal=True))
sdpa.append(sdpa_case("causal_l_ne_s", (B, H, 4, D), (B, H, 6, D), (B, H, 6, Dv), causal=True))
lengths = torch.tensor([7, 3])
kpm = (torch.arange(S)[None, :] < lengths[:, None]).reshape(B, 1, 1, S)
sdpa.append(sdpa_case("key_padding", (B, H, L, D), (B, H, S, D), (B, H, S, Dv), mask=kpm))
dead = torch.ones(L, S, dtype=torch.bool)
dead[2, :] = False
sdpa.append(sdpa_case("fully_masked_row", (B, H, L, D), (B, H, S, D), (B, H, S, Dv), mask=dead))
sdpa.append(sdpa_case("rank3", (3, L, D), (3, S, D), (3, S, Dv)))
sdpa.append(sdpa_case("rank2_causal_mask", (L, D), (S, D), (S, Dv), mask=bmask, causal=True))
tile_mask = torch.rand(70, 150) > 0.3
tile_mask[:, 0] = True
sdpa.append(sdpa_case("multi_tile", (1, 1, 70, 8), (1, 1, 150, 8), (1, 1, 150, 5), mask=tile_mask))
sdpa.append(sdpa_case("multi_tile_causal", (1, 2, 130, 4), (1, 2, 130, 4), (1, 2, 130, 3), causal=True))


def mha_case(name, E, heads, L, S, N, bias, batch_first, kpm=None, attn_mask=None, average=True):
    m = torch.nn.MultiheadAttention(E, heads, bias=bias, batch_first=batch_first).to(D64)
    with torch.no_grad():
        for p in m.parameters():
            p.copy_(torch.randn(p.shape, dtype=D64) * 0.5)
    shape = (lambda n: (N, n, E)) if batch_first else (lambda n: (n, N, E))
    q = torch.randn(shape(L), dtype=D64, requires_grad=True)
    k = torch.randn(shape(S), dtype=D64, requires_grad=True)
    v = torch.randn(shape(S), dtype=D64, requires_grad=True)
    m.eval()
    out, w = m(q, k, v, key_padding_mask=kpm, need_weights=True, attn_mask=attn_mask, average_attn_weights=average)
    g = torch.randn(out.shape, dtype=D64)
    out.backward(g)
    c = {"name": name, "embed_dim": E, "num_heads": heads, "bias": bias, "batch_first": batch_first,
         "average": average, "query": t(q), "key": t(k), "value": t(v), "out": t(out), "weights": t(w),
         "dout": t(g), "dquery": t(q.grad), "dkey": t(k.grad), "dvalue": t(v.grad),
         "state": {n: t(p) for n, p in m.state_dict().items()},
         "grads": {n: t(p.grad) for n, p in m.named_parameters()}}
    if kpm is not None:
        c["key_padding_mask"] = t(kpm.to(D64))
        c["key_padding_mask_bool"] = kpm.dtype == torch.bool
    if attn_mask is not None:
        c["attn_mask"] = t(attn_mask.to(D64))
        c["attn_mask_bool"] = attn_mask.dtype == torch.bool
    return c


mha = []
kp = torch.tensor([[False] * 5, [False, False, False, True, True]])
mha.append(mha_case("seq_first_kpm_float_mask", 8, 2, 4, 5, 2, True, False, kpm=kp, attn_mask=torch.randn(4, 5, dtype=D64)))
bm = torch.rand(3, 4) > 0.7  # True = masked (torch.nn.MultiheadAttention's convention)
bm[:, 0] = False
mha.append(mha_case("batch_first_no_bias_bool_mask", 6, 3, 3, 4, 2, False, True, attn_mask=bm, average=False))
mha.append(mha_case("self_attention_plain", 8, 4, 5, 5, 1, True, True))


def axial_ref(x, w, rq, rk, rv, heads, span, axis, bn=None, training=False):
    """x [N, C, H, W]; w [2C, C] (q: C/2, k: C/2, v: C); r*: [2*span-1, per-head dims].
    bn: optional {"bn_similarity.*", "bn_output.*"} batch norms of the three similarity terms and the two
    output terms (Axial-DeepLab's implementation)."""
    N, C, Hh, Ww = x.shape
    seq = x.permute(0, 3, 2, 1) if axis == "H" else x.permute(0, 2, 3, 1)  # [N, other, L, C]
    n_other, L = seq.shape[1], seq.shape[2]
    seq = seq.reshape(N * n_other, L, C)
    qkv = seq @ w.t()
    cq = C // 2
    dq, dv = cq // heads, C // heads
    q = qkv[..., :cq].reshape(-1, L, heads, dq).permute(0, 2, 1, 3)
    k = qkv[..., cq:2 * cq].reshape(-1, L, heads, dq).permute(0, 2, 1, 3)
    v = qkv[..., 2 * cq:].reshape(-1, L, heads, dv).permute(0, 2, 1, 3)
    o = torch.arange(L)[:, None]
    p = torch.arange(L)[None, :]
    idx = p - o + span - 1
    Rq, Rk, Rv = rq[idx], rk[idx], rv[idx]  # [L, L, d]
    qk = q @ k.transpose(-2, -1)
    qr = torch.einsum("bhoc,opc->bhop", q, Rq)
    kr = torch.einsum("bhpc,opc->bhop", k, Rk)

    def norm(z, pre):
        return torch.nn.functional.batch_norm(z, bn[pre + ".running_mean"].clone(), bn[pre + ".running_var"].clone(),
                                              bn[pre + ".weight"], bn[pre + ".bias"], training, 0.1, 1e-5)
    if bn is None:
        logits = qk + qr + kr
    else:
        logits = norm(torch.cat([qk, qr, kr], 1), "bn_similarity").reshape(-1, 3, heads, L, L).sum(1)
    a = torch.softmax(logits, -1)
    sv = a @ v
    sve = torch.einsum("bhop,opc->bhoc", a, Rv)
    if bn is None:
        y = (sv + sve).permute(0, 2, 1, 3).reshape(N, n_other, L, C)
    else:
        both = torch.stack([sv, sve], 1).permute(0, 1, 2, 4, 3).reshape(-1, 2 * C, L)
        y = norm(both, "bn_output").reshape(-1, 2, C, L).sum(1).permute(0, 2, 1).reshape(N, n_other, L, C)
    return y.permute(0, 3, 2, 1) if axis == "H" else y.permute(0, 3, 1, 2)


def axial_params(C, heads, span):
    cq = C // 2
    return {"qkv.weight": torch.randn(2 * C, C, dtype=D64) / math.sqrt(C),
            "relative_q": torch.randn(2 * span - 1, cq // heads, dtype=D64) * 0.5,
            "relative_k": torch.randn(2 * span - 1, cq // heads, dtype=D64) * 0.5,
            "relative_v": torch.randn(2 * span - 1, C // heads, dtype=D64) * 0.5}


axial = []
for axis in ("H", "W"):
    C, heads, span = 8, 2, 7
    prm = {n: p.requires_grad_() for n, p in axial_params(C, heads, span).items()}
    x = torch.randn(2, C, 5, 6, dtype=D64, requires_grad=True)
    y = axial_ref(x, prm["qkv.weight"], prm["relative_q"], prm["relative_k"], prm["relative_v"], heads, span, axis)
    g = torch.randn(y.shape, dtype=D64)
    y.backward(g)
    axial.append({"name": "axial_" + axis, "axis": axis, "channels": C, "heads": heads, "span": span,
                  "x": t(x), "out": t(y), "dout": t(g), "dx": t(x.grad),
                  "state": {n: t(p) for n, p in prm.items()}, "grads": {n: t(p.grad) for n, p in prm.items()}})

# With the batch-normalised similarity and output terms, in eval (running statistics) and train mode.
for axis, training in (("H", False), ("W", True)):
    C, heads, span = 8, 2, 7
    prm = {n: p.requires_grad_() for n, p in axial_params(C, heads, span).items()}
    bn = {}
    for pre, nf in (("bn_similarity", 3 * heads), ("bn_output", 2 * C)):
        bn[pre + ".weight"] = (torch.rand(nf, dtype=D64) + 0.5).requires_grad_()
        bn[pre + ".bias"] = (torch.randn(nf, dtype=D64) * 0.1).requires_grad_()
        bn[pre + ".running_mean"] = torch.randn(nf, dtype=D64) * 0.1
        bn[pre + ".running_var"] = torch.rand(nf, dtype=D64) + 0.5
    x = torch.randn(2, C, 5, 6, dtype=D64, requires_grad=True)
    y = axial_ref(x, prm["qkv.weight"], prm["relative_q"], prm["relative_k"], prm["relative_v"], heads, span, axis, bn, training)
    g = torch.randn(y.shape, dtype=D64)
    y.backward(g)
    state = {n: t(p) for n, p in list(prm.items()) + list(bn.items())}
    for pre in ("bn_similarity", "bn_output"):
        state[pre + ".num_batches_tracked"] = t(torch.tensor(0))
    grads = {n: t(p.grad) for n, p in list(prm.items()) + list(bn.items()) if p.grad is not None}
    axial.append({"name": "axial_bn_" + axis, "axis": axis, "channels": C, "heads": heads, "span": span, "bn": True, "train": training,
                  "x": t(x), "out": t(y), "dout": t(g), "dx": t(x.grad), "state": state, "grads": grads})

# Axial block in eval mode (batch norm from running statistics).
C, inner, heads, span = 8, 4, 2, 6
st = {"conv_down.weight": torch.randn(inner, C, 1, 1, dtype=D64) / math.sqrt(C),
      "conv_up.weight": torch.randn(C, inner, 1, 1, dtype=D64) / math.sqrt(inner)}
for bn, n in (("bn1", inner), ("bn2", C)):
    st[bn + ".weight"] = torch.rand(n, dtype=D64) + 0.5
    st[bn + ".bias"] = torch.randn(n, dtype=D64) * 0.1
    st[bn + ".running_mean"] = torch.randn(n, dtype=D64) * 0.1
    st[bn + ".running_var"] = torch.rand(n, dtype=D64) + 0.5
    st[bn + ".num_batches_tracked"] = torch.tensor(0)
for part in ("height", "width"):
    for n, p in axial_params(inner, heads, span).items():
        st[part + "." + n] = p
x = torch.randn(2, C, 5, 6, dtype=D64, requires_grad=True)


def bn_eval(z, pre):
    sh = (1, -1, 1, 1)
    return (z - st[pre + ".running_mean"].view(sh)) / torch.sqrt(st[pre + ".running_var"].view(sh) + 1e-5) * st[pre + ".weight"].view(sh) + st[pre + ".bias"].view(sh)


z = torch.relu(bn_eval(torch.nn.functional.conv2d(x, st["conv_down.weight"]), "bn1"))
z = axial_ref(z, st["height.qkv.weight"], st["height.relative_q"], st["height.relative_k"], st["height.relative_v"], heads, span, "H")
z = axial_ref(z, st["width.qkv.weight"], st["width.relative_q"], st["width.relative_k"], st["width.relative_v"], heads, span, "W")
z = bn_eval(torch.nn.functional.conv2d(torch.relu(z), st["conv_up.weight"]), "bn2")
yb = torch.relu(z + x)
gb = torch.randn(yb.shape, dtype=D64)
yb.backward(gb)
block = {"channels": C, "inner": inner, "heads": heads, "span": span, "x": t(x), "out": t(yb), "dout": t(gb), "dx": t(x.grad),
         "state": {n: t(p) for n, p in st.items()}}

here = os.path.dirname(os.path.abspath(__file__))
with open(os.path.join(here, "attention.json"), "w") as f:
    json.dump({"sdpa": sdpa, "mha": mha, "axial": axial, "axial_block": block}, f)
