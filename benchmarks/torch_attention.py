#!/usr/bin/env python3
"""Times PyTorch's attention on the shapes `runtime bench attention` / `bench axial_attention` use and
prints the same JSON lines (impl "torch"), plus the peak extra memory of one call.

torch 1.13 has no F.scaled_dot_product_attention, so "attention" is the explicit softmax(Q K^T * scale) V
(the L x S matrix is materialised) and "mha" is torch.nn.MultiheadAttention (embed = H*D, H heads,
need_weights=False) on the same tokens; "axial_attention" is a height then a width position-sensitive
axial attention written with the same tensor products as ours.

Usage: /usr/bin/python3 benchmarks/torch_attention.py [--threads 2] [--ops attention:1x8x4096x64,mha:1x8x4096x64,axial_attention:1x128x33x33]
       [--backward] [--causal] [--device cpu|cuda] [--dtype float32|float64]
Peak memory: on CUDA torch.cuda.max_memory_allocated above the memory in use before the call; on the CPU
the growth of the process's peak resident set (ru_maxrss) over the first call, which is a lower bound
once an earlier call has already raised the peak (the first timed shape is the honest one).
"""
import argparse
import json
import math
import resource

import torch

import timing


def measure(fn, sync, repeat=None):
    return timing.measure(fn, repeat, sync, before=1, budget_ms=3000, min_reps=3, max_reps=100)


def peak_extra(fn, device, sync):
    if device.type == "cuda":
        sync()
        before = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
        fn()
        sync()
        return max(0, torch.cuda.max_memory_allocated() - before)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    fn()
    return max(0, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) * 1024


def axial_ref(x, w, rq, rk, rv, heads, span, axis):
    N, C, H, W = x.shape
    seq = x.permute(0, 3, 2, 1) if axis == "H" else x.permute(0, 2, 3, 1)
    other, L = seq.shape[1], seq.shape[2]
    seq = seq.reshape(N * other, L, C)
    qkv = seq @ w.t()
    cq = C // 2
    dq, dv = cq // heads, C // heads
    q = qkv[..., :cq].reshape(-1, L, heads, dq).permute(0, 2, 1, 3)
    k = qkv[..., cq:2 * cq].reshape(-1, L, heads, dq).permute(0, 2, 1, 3)
    v = qkv[..., 2 * cq:].reshape(-1, L, heads, dv).permute(0, 2, 1, 3)
    idx = (torch.arange(L, device=x.device)[None, :] - torch.arange(L, device=x.device)[:, None] + span - 1)
    Rq, Rk, Rv = rq[idx], rk[idx], rv[idx]
    logits = q @ k.transpose(-2, -1) + torch.einsum("bhoc,opc->bhop", q, Rq) + torch.einsum("bhpc,opc->bhop", k, Rk)
    a = torch.softmax(logits, -1)
    y = a @ v + torch.einsum("bhop,opc->bhoc", a, Rv)
    y = y.permute(0, 2, 1, 3).reshape(N, other, L, C)
    return y.permute(0, 3, 2, 1) if axis == "H" else y.permute(0, 3, 1, 2)


def case(op, shape, dtype, device, backward, causal):
    g = torch.Generator().manual_seed(1234)

    def rnd(*sh):
        return torch.randn(*sh, generator=g, dtype=dtype).to(device).requires_grad_(backward)

    if op in ("attention", "mha"):
        b, h, l, d = shape or [1, 8, 4096, 64]
        if op == "attention":
            q, k, v = rnd(b, h, l, d), rnd(b, h, l, d), rnd(b, h, l, d)
            params = [q, k, v]
            mask = torch.ones(l, l, dtype=torch.bool, device=device).tril() if causal else None

            def fwd():
                s = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(d))
                if mask is not None:
                    s = s.masked_fill(~mask, float("-inf"))
                return torch.softmax(s, -1) @ v
            work = 4.0 * b * h * l * l * d * (0.5 if causal else 1) * (3.5 if backward else 1) / 1e9
        else:
            e = h * d
            m = torch.nn.MultiheadAttention(e, h, batch_first=True).to(device=device, dtype=dtype).eval()
            x = rnd(b, l, e)
            params = [x] + list(m.parameters())
            mask = torch.ones(l, l, dtype=torch.bool, device=device).triu(1) if causal else None

            def fwd():
                return m(x, x, x, need_weights=False, attn_mask=mask)[0]
            work = (4.0 * b * h * l * l * d * (0.5 if causal else 1) + 8.0 * b * l * e * e) * (3.5 if backward else 1) / 1e9
        text = "x".join(map(str, [b, h, l, d])) + ("+causal" if causal else "") + ("+bwd" if backward else "")
    elif op == "axial_attention":
        n, c, hh, ww = shape or [1, 128, 33, 33]
        heads, span = 8, max(hh, ww)
        x = rnd(n, c, hh, ww)
        ws = [(rnd(2 * c, c) / math.sqrt(c), rnd(2 * span - 1, c // 2 // heads), rnd(2 * span - 1, c // 2 // heads), rnd(2 * span - 1, c // heads))
              for _ in range(2)]
        ws = [tuple(t.detach().requires_grad_(backward) for t in w) for w in ws]
        params = [x] + [t for w in ws for t in w]

        def fwd():
            y = axial_ref(x, *ws[0], heads, span, "H")
            return axial_ref(y, *ws[1], heads, span, "W")
        work = (8.0 * n * hh * ww * c * c + 7.0 * n * hh * ww * (hh + ww) * c) * (3 if backward else 1) / 1e9
        text = "x".join(map(str, [n, c, hh, ww])) + f"h{heads}" + ("+bwd" if backward else "")
    else:
        raise SystemExit(f"unknown op {op}")

    def fn():
        with torch.set_grad_enabled(backward):
            y = fwd()
            if backward:
                y.backward(torch.ones_like(y))
                for p in params:
                    p.grad = None
    return fn, work, text


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=torch.get_num_threads())
    ap.add_argument("--ops", default="attention:1x8x4096x64,mha:1x8x4096x64,axial_attention:1x128x33x33")
    ap.add_argument("--backward", action="store_true")
    ap.add_argument("--causal", action="store_true")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    ap.add_argument("--repeat", type=int)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    dtype = getattr(torch, args.dtype)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = False
    for spec in args.ops.split(","):
        op, _, sh = spec.partition(":")
        shape = [int(v) for v in sh.split("x")] if sh else None
        fn, work, text = case(op, shape, dtype, device, args.backward, args.causal)
        peak = peak_extra(fn, device, sync)
        med, mn, reps = measure(fn, sync, args.repeat)
        print(json.dumps({"impl": "torch", "op": op, "shape": text, "dtype": args.dtype, "device": args.device,
                          "threads": args.threads, "repeats": reps, "median_ms": round(med, 4), "min_ms": round(mn, 4),
                          "GFLOP_per_s": round(work / (med / 1000), 2), "peak_extra_bytes": peak, "version": torch.__version__}), flush=True)


if __name__ == "__main__":
    main()
